// Copyright (c) uttm developers.
//
// reclaimer.h: the shrinker registry and the reclaim driver (the kernel's mm/shrinker.c
// do_shrink_slab plus the priority loop of do_try_to_free_pages).
//
// One round at priority p calls, for every registered shrinker:
//   freeable = Count();              0 -> skip ("can't tell"), kShrinkEmpty -> skip (empty)
//   nr       = deferred work, taken (set to 0) so concurrent rounds do not repeat it
//   delta    = (freeable >> p) * 4 / seeks      (seeks == 0: freeable / 2)
//   total    = min((nr >> p) + delta, 2 * freeable)
//   while total >= batch || total >= freeable:
//       Scan(nr_to_scan = min(batch, total)); kShrinkStop -> stop; total -= nr_scanned
//   deferred += clamp(nr + delta - scanned, 0, 2 * freeable)
// Shrink() runs rounds from a start priority (kDefPriority = 12) down to 0 and stops as soon as
// the pages freed reach the target, like the kernel's reclaim loop. A shrinker that answers
// kShrinkStop is not called again within the same Shrink() call (its "reclaim context").
//
// Registration is safe while rounds run: Unregister() removes the shrinker from future rounds
// and waits until no call into it is in flight (the kernel's shrinker_free), so the caller may
// destroy it right after. Unregister() from inside the shrinker's own Count/Scan is refused.
//
// Thread-safety: every method is thread-safe; rounds may run concurrently from many threads
// (direct reclaim in several allocating threads plus the reclaim thread).
#ifndef UTTM_RECLAIMER_H_
#define UTTM_RECLAIMER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "uttm/export.h"
#include "uttm/mutex.h"
#include "uttm/reclaim_hook.h"
#include "uttm/shrinker.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

// The kernel's DEF_PRIORITY: the first round scans 1/4096 of each shrinker (times 4/seeks).
inline constexpr int kDefPriority = 12;

// Inspection copy of one shrinker's counters (monotonic since Register, except last_count and
// deferred which are current values).
struct ShrinkerSnapshot {
  std::string name;
  int seeks = kDefaultSeeks;
  std::uint64_t batch = kDefaultShrinkBatch;
  std::uint64_t last_count = 0;   // last Count() answer (kShrinkEmpty shown as 0)
  bool last_empty = false;        // last Count() answered kShrinkEmpty
  std::uint64_t count_calls = 0;  // Count() calls
  std::uint64_t scan_calls = 0;   // Scan() calls
  std::uint64_t scanned = 0;      // sum of nr_scanned
  std::uint64_t freed = 0;        // sum of pages freed
  std::uint64_t stops = 0;        // Scan() answers of kShrinkStop
  std::uint64_t deferred = 0;     // work carried to the next round
};

// What a Shrink() call did.
struct ShrinkResult {
  std::uint64_t freed = 0;    // pages freed
  std::uint64_t scanned = 0;  // pages scanned (sum of nr_scanned)
  int rounds = 0;             // priority rounds run
  int last_priority = -1;     // priority of the last round (-1: no round)
};

class UTTM_EXPORT Reclaimer final : public ReclaimHook {
 public:
  // `stats` receives kShrinkerScans and kShrinkerPagesFreed; nullptr means Stats::Default().
  explicit Reclaimer(Stats* stats = nullptr);
  // REQUIRES: no round in flight. Shrinkers still registered are forgotten (not destroyed).
  ~Reclaimer() override;
  Reclaimer(const Reclaimer&) = delete;
  Reclaimer& operator=(const Reclaimer&) = delete;

  // Adds `shrinker` (not owned; it must outlive its registration). Errors: kInvalid when null,
  // when its batch()/seeks() is out of range (seeks < 0), or when already registered.
  Status Register(Shrinker* shrinker);
  // Removes `shrinker` and waits until no call into it is running. Errors: kNotFound when not
  // registered; kDeadlock when called from inside that shrinker's own Count/Scan.
  Status Unregister(Shrinker* shrinker);

  // Runs do_shrink_slab rounds from `start_priority` down to 0 until `target_pages` are freed
  // (target 0: one round only). Errors: none; out-of-range priorities are clamped to [0, 12].
  ShrinkResult Shrink(const ReclaimContext& ctx, int start_priority, std::uint64_t target_pages);
  // One round over every shrinker at `priority` (the kernel's shrink_slab).
  ShrinkResult ShrinkRound(const ReclaimContext& ctx, int priority);

  // Direct reclaim: Shrink({background = false}, kDefPriority, target_pages).
  std::uint64_t ReclaimDirect(std::uint64_t target_pages);
  // ReclaimHook: Shrink(ctx, kDefPriority, target_pages).freed. Returns 0 when called from inside
  // a Scan of this Reclaimer (no recursion).
  std::uint64_t ReclaimPages(std::uint64_t target_pages, const ReclaimContext& ctx) override;
  // Shrink passes of this reclaimer running right now (background and direct, any thread).
  std::uint32_t reclaims_in_flight() const override {
    return in_flight_.load(std::memory_order_acquire);
  }

  // The first registered shrinker's blocked() that is not OK.
  Status ShortfallReason() const override;

  // Sum of the current Count() answers (no Scan), for watermark decisions and reports.
  std::uint64_t CountFreeable(const ReclaimContext& ctx);

  std::size_t num_shrinkers() const;
  // The Stats this reclaimer reports to (never null).
  Stats* stats() const { return stats_; }
  std::vector<ShrinkerSnapshot> Snapshot() const;
  // One line per shrinker: "name count=.. scans=.. scanned=.. freed=.. deferred=.. stops=..".
  std::string DebugString() const;

 private:
  struct Entry;
  struct RoundState;

  // Registers the current thread as inside `entry` (for recursion checks) and pins it; returns
  // false when it is being unregistered.
  bool Pin(Entry* entry);
  void Unpin(Entry* entry);
  std::uint64_t DoShrinkOne(Entry* entry, const ReclaimContext& ctx, int priority,
                            std::uint64_t* scanned, bool* stopped);
  std::vector<std::shared_ptr<Entry>> LiveEntries() const;

  Stats* const stats_;
  std::atomic<std::uint32_t> in_flight_{0};
  mutable Mutex mu_;
  CondVar unpinned_;
  std::vector<std::shared_ptr<Entry>> entries_ UTTM_GUARDED_BY(mu_);
};

}  // namespace uttm

#endif  // UTTM_RECLAIMER_H_
