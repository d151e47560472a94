// Copyright (c) uttm developers.
//
// gem_shrinker.h: the staged shrinker of a GemDevice (msm_gem_shrinker.c's model, built on
// GemLruScan).
//
//   Count  purgeable pages + (eviction possible ? evictable pages : 0); kShrinkEmpty when 0.
//   Scan   progressively more expensive stages until nr_to_scan pages are freed:
//            1. purge idle "don't need" objects;
//            2. evict idle evictable objects (when eviction is possible and may_fs allows
//               writing to the backing file; may_io, unless the device asks for lazy release,
//               decides whether their pages are written back and dropped now, or left to the
//               kernel's lazy reclaim). Write-back goes in batches of up to 256 MiB: the batch
//               is evicted lazily, its I/O started together, then waited for object by object;
//               an object whose write-back fails is swapped back in (counted in
//               writeback_failures(); its pages are not counted as freed);
//            3. background reclaim only (the reclaim thread): purge, waiting up to 10 ms for
//               each busy object;
//            4. background reclaim only: evict, waiting likewise.
//          Locked objects are skipped (never waited for); pinned ones are on no scanned list.
//          Returns the pages freed, or kShrinkStop when nothing was freed or nothing is left.
//
// Register it with a Reclaimer (Runtime::AddGemDevice does). Thread-safety: as shrinker.h.
#ifndef UTTM_GEM_SHRINKER_H_
#define UTTM_GEM_SHRINKER_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "uttm/export.h"
#include "uttm/operation_context.h"
#include "uttm/shrinker.h"

namespace uttm {

class GemDevice;
class GemLru;

class UTTM_EXPORT GemShrinker final : public Shrinker {
 public:
  explicit GemShrinker(GemDevice* device);
  std::uint64_t Count(const ShrinkControl& sc) override;
  std::uint64_t Scan(ShrinkControl& sc) override;
  const char* name() const override { return name_.c_str(); }

  // Write-backs that failed in the eviction stage (their objects were swapped back in).
  std::uint64_t writeback_failures() const { return writeback_failures_.load(); }

 private:
  std::uint64_t EvictWithWriteback(GemLru& lru, std::uint64_t target, std::uint64_t* remaining,
                                   const OperationContext& ctx);

  GemDevice* const device_;
  const std::string name_;
  std::atomic<std::uint64_t> writeback_failures_{0};
};

}  // namespace uttm

#endif  // UTTM_GEM_SHRINKER_H_
