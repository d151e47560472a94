// Copyright (c) uttm developers.
//
// reclaim_bench: cost of the reclaim framework, as ratios against baselines of the same run.
//
//   BM_ShrinkRoundOverhead/N   one Reclaimer round over N shrinkers, arranged so the arithmetic
//                              asks each for exactly one Scan of 128, versus calling Count+Scan
//                              on the same N shrinkers directly. Counters: thread-CPU ns per
//                              shrinker for both, and overhead_ratio = reclaimer / direct.
//   BM_EventTo256MiBFreed      a ReclaimThread sleeping in poll() on an eventfd pressure source
//                              (the shape of a cgroup v1 pressure_level registration); the
//                              benchmark writes the eventfd and measures until the episode that
//                              freed 256 MiB of populated memory (2 MiB chunks, munmap) ended.
//                              p50/p99 over repetitions, against munmapping the same 256 MiB
//                              directly (ratio_p50 = event-to-freed / direct munmap).
//   BM_WakeTo256MiBFreed       the same with ReclaimThread::Wake(65536) as the trigger.

#include <benchmark/benchmark.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "shrink/test_shrinkers.h"
#include "uttm/reclaim_thread.h"
#include "uttm/reclaimer.h"

namespace {

using Clock = std::chrono::steady_clock;

// CPU time of this thread in ns: immune to the descheduling of a loaded 2-core machine.
double ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}
using uttm::testing::ChunkShrinker;

// A shrinker whose work is bookkeeping only: the benchmark measures the framework around it.
class CheapShrinker : public uttm::Shrinker {
 public:
  std::uint64_t Count(const uttm::ShrinkControl&) override { return kFreeable; }
  std::uint64_t Scan(uttm::ShrinkControl& sc) override {
    scanned_.fetch_add(sc.nr_to_scan, std::memory_order_relaxed);
    return sc.nr_to_scan;
  }
  const char* name() const override { return "cheap"; }
  int seeks() const override { return 4; }  // delta = freeable >> priority
  // At priority 12: delta = 128 = one batch, deferred stays 0.
  static constexpr std::uint64_t kFreeable = std::uint64_t{128} << 12;

 private:
  std::atomic<std::uint64_t> scanned_{0};
};

void BM_ShrinkRoundOverhead(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<std::unique_ptr<CheapShrinker>> shrinkers;
  uttm::Stats stats;
  uttm::Reclaimer reclaimer(&stats);
  for (int i = 0; i < n; ++i) {
    shrinkers.push_back(std::make_unique<CheapShrinker>());
    if (!reclaimer.Register(shrinkers.back().get()).ok()) state.SkipWithError("register");
  }
  uttm::ReclaimContext ctx;
  constexpr int kInner = 200;
  double direct_ns = 0, framework_ns = 0;
  std::uint64_t rounds = 0;
  for (auto _ : state) {
    const double t0 = ThreadCpuNs();
    for (int k = 0; k < kInner; ++k) {
      for (auto& s : shrinkers) {
        uttm::ShrinkControl sc;
        sc.reclaim = ctx;
        benchmark::DoNotOptimize(s->Count(sc));
        sc.nr_to_scan = sc.nr_scanned = 128;
        benchmark::DoNotOptimize(s->Scan(sc));
      }
    }
    const double t1 = ThreadCpuNs();
    for (int k = 0; k < kInner; ++k) {
      uttm::ShrinkResult r = reclaimer.ShrinkRound(ctx, uttm::kDefPriority);
      benchmark::DoNotOptimize(r);
    }
    const double t2 = ThreadCpuNs();
    direct_ns += t1 - t0;
    framework_ns += t2 - t1;
    rounds += kInner;
  }
  const double per = static_cast<double>(rounds) * n;
  state.counters["direct_ns_per_shrinker"] = direct_ns / per;
  state.counters["reclaimer_ns_per_shrinker"] = framework_ns / per;
  state.counters["overhead_ratio"] = framework_ns / direct_ns;
  state.counters["scans_per_round"] =
      static_cast<double>(stats.Get(uttm::Stat::kShrinkerScans)) / static_cast<double>(rounds);
  for (auto& s : shrinkers) (void)reclaimer.Unregister(s.get());
}
BENCHMARK(BM_ShrinkRoundOverhead)->Arg(1)->Arg(8)->Arg(64)->Unit(benchmark::kMicrosecond);

// A pressure source whose event is an eventfd the benchmark writes (like pressure_level).
class EventFdSource : public uttm::PressureSource {
 public:
  EventFdSource() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~EventFdSource() override { close(fd_); }
  const char* name() const override { return "eventfd"; }
  uttm::Result<uttm::MemorySample> Sample() override { return uttm::MemorySample{}; }
  void AppendPollFds(std::vector<pollfd>* fds) const override { fds->push_back({fd_, POLLIN, 0}); }
  uttm::PressureLevel ConsumeEvents(const pollfd* fds, std::size_t n) override {
    std::uint64_t v;
    if (n == 1 && (fds[0].revents & POLLIN) && read(fd_, &v, sizeof(v)) == sizeof(v)) {
      return uttm::PressureLevel::kCritical;
    }
    return uttm::PressureLevel::kNone;
  }
  std::string Describe() const override { return "eventfd"; }
  int fd() const { return fd_; }

 private:
  int fd_;
};

constexpr int kChunks256MiB = 128;
constexpr std::uint64_t kPages256MiB = kChunks256MiB * ChunkShrinker::kChunkPages;

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

// Baseline: munmap 128 populated 2 MiB chunks directly. Microseconds.
double DirectMunmapUs() {
  std::vector<void*> chunks;
  for (int i = 0; i < kChunks256MiB; ++i) chunks.push_back(uttm::testing::MapPopulated(2 << 20));
  auto t0 = Clock::now();
  for (void* p : chunks) munmap(p, 2 << 20);
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

void RunTriggerTo256MiB(benchmark::State& state, bool use_event) {
  constexpr int kReps = 12;
  uttm::Reclaimer reclaimer;
  ChunkShrinker chunks("bench-chunks");
  (void)reclaimer.Register(&chunks);
  uttm::ReclaimThreadOptions o;
  o.period = std::chrono::milliseconds(1000);  // only the trigger wakes it
  o.event_target_pages = kPages256MiB;
  uttm::ReclaimThread thread(&reclaimer, o);
  auto source = std::make_unique<EventFdSource>();
  EventFdSource* ev = source.get();
  (void)thread.AddSource(std::move(source));
  if (!thread.Start().ok()) state.SkipWithError("start");
  std::vector<double> lat_us, base_us;
  std::uint64_t freed = 0;
  for (auto _ : state) {
    for (int rep = 0; rep < kReps; ++rep) {
      for (int i = 0; i < kChunks256MiB; ++i) {
        if (!chunks.AddChunk()) state.SkipWithError("mmap");
      }
      const std::uint64_t before = thread.episodes();
      const auto t0 = Clock::now();
      if (use_event) {
        const std::uint64_t one = 1;
        if (write(ev->fd(), &one, sizeof(one)) != sizeof(one)) state.SkipWithError("eventfd");
      } else {
        thread.Wake(kPages256MiB);
      }
      if (!thread.WaitForEpisodes(before + 1, std::chrono::seconds(10))) {
        state.SkipWithError("no episode");
        break;
      }
      const uttm::ReclaimEpisode ep = thread.History().back();
      freed += ep.freed_pages;
      const auto end = ep.start + ep.duration;
      lat_us.push_back(std::chrono::duration<double, std::micro>(end - t0).count());
      base_us.push_back(DirectMunmapUs());
    }
  }
  thread.Stop();
  (void)reclaimer.Unregister(&chunks);
  if (lat_us.empty()) return;
  const double p50 = Percentile(lat_us, 0.5), p99 = Percentile(lat_us, 0.99);
  const double b50 = Percentile(base_us, 0.5);
  state.counters["p50_us"] = p50;
  state.counters["p99_us"] = p99;
  state.counters["direct_munmap_p50_us"] = b50;
  state.counters["ratio_p50"] = p50 / b50;
  state.counters["MiB_freed_per_rep"] =
      static_cast<double>(freed * uttm::kPageSize) / (1 << 20) / static_cast<double>(lat_us.size());
}

void BM_EventTo256MiBFreed(benchmark::State& state) { RunTriggerTo256MiB(state, true); }
void BM_WakeTo256MiBFreed(benchmark::State& state) { RunTriggerTo256MiB(state, false); }
BENCHMARK(BM_EventTo256MiBFreed)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_WakeTo256MiBFreed)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
