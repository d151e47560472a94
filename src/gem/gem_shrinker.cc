// Copyright (c) uttm developers.
//
// gem_shrinker.cc: see gem_shrinker.h.
#include "uttm/gem_shrinker.h"

#include "uttm/gem_device.h"
#include "uttm/gem_lru.h"
#include "uttm/gem_shmem_object.h"

namespace uttm {

GemShrinker::GemShrinker(GemDevice* device)
    : device_(device), name_("uttm-gem-" + device->name()) {}

std::uint64_t GemShrinker::Count(const ShrinkControl&) {
  std::uint64_t n = device_->purgeable_pages();
  if (device_->can_evict()) n += device_->evictable_pages();
  return n != 0 ? n : kShrinkEmpty;
}

std::uint64_t GemShrinker::Scan(ShrinkControl& sc) {
  const std::uint64_t target = sc.nr_to_scan;
  const ReclaimContext& rc = sc.reclaim;
  const bool evict = device_->can_evict() && rc.may_fs;
  std::uint64_t freed = 0;
  std::uint64_t remaining = 0;
  // The stages, cheapest first (msm_gem_shrinker_scan): purge, evict, then (background reclaim
  // only, where waiting for the device is allowed) the same again waiting for busy objects.
  struct Stage {
    bool purge;
    bool wait;
    bool allowed;
  };
  const Stage stages[] = {
      {true, false, true},
      {false, false, evict},
      {true, true, rc.background},
      {false, true, evict && rc.background},
  };
  for (const Stage& stage : stages) {
    if (!stage.allowed || freed >= target) continue;
    OperationContext ctx;
    ctx.no_wait_gpu = !stage.wait;
    GemLru& lru = stage.purge ? device_->dontneed() : device_->willneed();
    freed += GemLruScan(lru, target - freed, &remaining,
                        [&](GemShmemObject& obj)
                            UTTM_NO_THREAD_SAFETY_ANALYSIS -> Result<std::uint64_t> {
                              // GemLruScan holds the reservation (try-locked) while it calls this.
                              obj.resv()->AssertHeld();
                              const bool writeback = rc.may_io && !device_->lazy_release();
                              return stage.purge ? obj.Purge(ctx) : obj.Evict(writeback, ctx);
                            });
  }
  sc.nr_scanned = freed;
  // msm answers SHRINK_STOP also when it freed pages but nothing is left; the kernel then drops
  // that count. uttm's reclaimer counts what was freed, so only "nothing freed" stops it.
  return freed > 0 ? freed : kShrinkStop;
}

}  // namespace uttm
