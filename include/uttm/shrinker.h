// Copyright (c) uttm developers.
//
// shrinker.h: the count/scan contract of a shrinker (the kernel's struct shrinker).
//
// A shrinker owns some reclaimable memory (pooled pages, purgeable or backup-able buffer
// objects). A reclaimer asks it how much it could free (Count) and then asks it to free some
// (Scan), in batches, following the kernel's do_shrink_slab arithmetic. Units are 4 KiB pages.
//
//   Count: the number of freeable pages, kShrinkEmpty when there is nothing at all, or 0 when it
//          cannot tell right now (skip it this round). Must be cheap and must not block.
//   Scan:  try to free about `nr_to_scan` pages; set `nr_scanned` to the work actually done
//          (pre-set to nr_to_scan); return the pages freed, or kShrinkStop when no progress is
//          possible in this context (e.g. everything is locked), so no more calls are made.
//
// The ReclaimContext replaces gfp flags: may_fs (backup allowed), may_io (writeback allowed),
// background (the kswapd role: may wait for the device) versus direct reclaim (must not).
//
// Thread-safety: Count and Scan may be called from any thread, concurrently with the owner's
// other operations; implementations lock their own state and only try-lock buffer objects.
#ifndef UTTM_SHRINKER_H_
#define UTTM_SHRINKER_H_

#include <cstdint>

#include "uttm/export.h"
#include "uttm/status.h"

namespace uttm {

inline constexpr std::uint64_t kShrinkStop = ~std::uint64_t{0};
inline constexpr std::uint64_t kShrinkEmpty = ~std::uint64_t{0} - 1;
inline constexpr std::uint64_t kDefaultShrinkBatch = 128;
inline constexpr int kDefaultSeeks = 2;

struct ReclaimContext {
  // May write contents to a backup store (the kernel's __GFP_FS).
  bool may_fs = true;
  // May start writeback to the store's medium (the kernel's __GFP_IO).
  bool may_io = true;
  // Background reclaim (the reclaim thread, kswapd's role): may wait for the device. Direct
  // reclaim (an allocation that is short of memory) must not.
  bool background = false;
};

struct ShrinkControl {
  std::uint64_t nr_to_scan = 0;
  std::uint64_t nr_scanned = 0;
  ReclaimContext reclaim;
};

class UTTM_EXPORT Shrinker {
 public:
  virtual ~Shrinker() = default;
  virtual std::uint64_t Count(const ShrinkControl& sc) = 0;
  virtual std::uint64_t Scan(ShrinkControl& sc) = 0;
  // Name for reports ("uttm-pool", "sim-gpu0").
  virtual const char* name() const = 0;
  // Relative cost of recreating what this shrinker frees (kernel seeks; 0 = half of Count).
  virtual int seeks() const { return kDefaultSeeks; }
  // Pages per Scan call (0 = kDefaultShrinkBatch).
  virtual std::uint64_t batch() const { return 0; }
  // Why this shrinker cannot free what it holds right now (a full backup store), for the error
  // of an allocation that reclaim could not help; OK when nothing blocks it.
  virtual Status blocked() const { return Status(); }
};

}  // namespace uttm

#endif  // UTTM_SHRINKER_H_
