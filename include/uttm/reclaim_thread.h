// Copyright (c) uttm developers.
//
// reclaim_thread.h: background reclaim (the kswapd role).
//
// A real thread that sleeps in poll() on a wake eventfd and on every pressure source's event
// fds, with a timeout of `period`. Each wake-up it samples every source. When one is at or above
// its high watermark (default 90 % of its limit), or a kernel event or Wake() arrived, it runs an
// *episode*: it calls Reclaimer::Shrink with ReclaimContext{background = true, may_fs, may_io}
// and re-samples, until every source is at or below its low watermark (default 80 %) and any
// Wake() target is met, or until the shrinkers make no progress. Starting at the high mark and
// stopping at the low mark is the hysteresis that keeps it from thrashing around one value.
//
// Kernel events are a last alarm (cgroup v1 fires only at the limit here): an event starts an
// episode even below the high watermark, with at least `event_target_pages`.
//
// Every episode is recorded (trigger, pages freed, duration, usage before and after) in a
// bounded history for reports and the "pressure event to 256 MiB freed" benchmark.
//
// Thread-safety: all methods are thread-safe. Start/Stop are idempotent; the destructor stops.
#ifndef UTTM_RECLAIM_THREAD_H_
#define UTTM_RECLAIM_THREAD_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "uttm/export.h"
#include "uttm/mutex.h"
#include "uttm/pressure_source.h"
#include "uttm/reclaimer.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm {

struct ReclaimThreadOptions {
  // Periodic check interval (the kernel wakes kswapd from allocations; we also poll samples).
  std::chrono::milliseconds period{25};
  // Watermarks as fractions of each source's limit. REQUIRES 0 < low < high <= 1.
  double high_watermark = 0.90;
  double low_watermark = 0.80;
  // Context of background reclaim. `background` is forced to true.
  ReclaimContext context{true, true, true};
  // Minimum pages an episode started by a kernel event tries to free.
  std::uint64_t event_target_pages = 16384;  // 64 MiB
  // Episodes kept in History().
  std::size_t history_capacity = 4096;
};

enum class ReclaimTrigger { kWatermark, kEvent, kWake };
UTTM_EXPORT const char* ReclaimTriggerName(ReclaimTrigger trigger);

struct ReclaimEpisode {
  std::uint64_t id = 0;
  ReclaimTrigger trigger = ReclaimTrigger::kWatermark;
  PressureLevel level = PressureLevel::kNone;  // highest event level (kEvent)
  std::string source;                          // the source that started it ("wake" for Wake)
  std::chrono::steady_clock::time_point start;
  std::chrono::nanoseconds duration{0};
  std::uint64_t target_pages = 0;  // initial target
  std::uint64_t freed_pages = 0;
  int shrink_calls = 0;
  std::uint64_t usage_before = 0;  // bytes, of the starting source (0 for Wake)
  std::uint64_t usage_after = 0;
  std::uint64_t limit_bytes = 0;
};

class UTTM_EXPORT ReclaimThread {
 public:
  // `reclaimer` is not owned and must outlive this object.
  ReclaimThread(Reclaimer* reclaimer, ReclaimThreadOptions options = {});
  ~ReclaimThread();
  ReclaimThread(const ReclaimThread&) = delete;
  ReclaimThread& operator=(const ReclaimThread&) = delete;

  // Adds a pressure source (owned). Errors: kInvalid when null or when the thread is running.
  Status AddSource(std::unique_ptr<PressureSource> source);

  // Starts the thread. Errors: kInvalid for bad watermarks/period, kAlready when running,
  // kIo when the wake eventfd cannot be created.
  Status Start();
  // Stops and joins the thread; an episode in progress finishes its current Shrink call first.
  void Stop();
  bool running() const;

  // Wakes the thread now; it frees at least `target_pages` (0: only what the watermarks ask).
  // Safe from any thread, including signal-free allocation paths (one eventfd write).
  void Wake(std::uint64_t target_pages = 0);

  // Number of episodes completed so far.
  std::uint64_t episodes() const;
  // Waits until at least `n` episodes completed or `timeout` passed. Returns true when reached.
  bool WaitForEpisodes(std::uint64_t n, std::chrono::milliseconds timeout) const;
  // The recorded episodes, oldest first (at most history_capacity).
  std::vector<ReclaimEpisode> History() const;
  // One line per episode ("#id trigger source freed=.. in .. us").
  std::string HistoryString() const;
  // Description of every source (what is armed, fallbacks).
  std::string DescribeSources() const;

 private:
  struct Need {
    std::uint64_t pages = 0;
    const PressureSource* source = nullptr;
    MemorySample sample;
  };
  void Run();
  // Pages needed to bring every source down to its low watermark (`above_high`: whether any is
  // at or above its high watermark).
  Need ComputeNeed(bool* above_high);
  void RunEpisode(ReclaimTrigger trigger, PressureLevel level, const Need& need,
                  std::uint64_t explicit_target);

  Reclaimer* const reclaimer_;
  const ReclaimThreadOptions options_;
  int wake_fd_ = -1;
  std::atomic<std::uint64_t> wake_target_{0};
  std::atomic<bool> stop_{false};

  mutable Mutex mu_;
  mutable CondVar episode_done_;
  std::thread thread_ UTTM_GUARDED_BY(mu_);
  bool running_ UTTM_GUARDED_BY(mu_) = false;
  // Sources are added before Start and read only by the thread while it runs.
  std::vector<std::unique_ptr<PressureSource>> sources_;
  std::deque<ReclaimEpisode> history_ UTTM_GUARDED_BY(mu_);
  std::uint64_t episodes_ UTTM_GUARDED_BY(mu_) = 0;
};

}  // namespace uttm

#endif  // UTTM_RECLAIM_THREAD_H_
