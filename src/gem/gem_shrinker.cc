// Copyright (c) uttm developers.
//
// gem_shrinker.cc: see gem_shrinker.h.
#include "uttm/gem_shrinker.h"

#include <new>
#include <vector>

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

// The objects an eviction pass is about to take, oldest first, up to `pages`: their write-back
// starts now, all at once, so that each eviction then finds its I/O in flight or done instead of
// waiting for its own pages alone (one object at a time kept the disk's queue nearly empty).
void GemShrinker::StartWriteback(GemLru& lru, std::uint64_t pages) {
  // At most 64 objects, in room reserved beforehand: nothing is allocated under the LRU lock, and
  // a reclaim path that cannot allocate simply skips this head start.
  constexpr std::size_t kMaxObjects = 64;
  std::vector<GemRef> next;
  try {
    next.reserve(kMaxObjects);
  } catch (const std::bad_alloc&) {
    return;
  }
  {
    MutexLock lock(lru.lock());
    std::uint64_t seen = 0;
    lru.ForEach([&](GemShmemObject& obj) {
      if (seen >= pages || next.size() == kMaxObjects || !obj.GetUnlessZero()) return;
      next.push_back(GemRef::Adopt(&obj));
      seen += obj.num_pages().value();
    });
  }
  for (const GemRef& obj : next) {
    if (!obj->resv()->TryLock()) continue;
    obj->resv()->AssertHeld();
    if (obj->IsEvictable()) obj->backing().StartWriteback();
    obj->resv()->Unlock();
  }
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
  const bool writeback = rc.may_io && !device_->lazy_release();
  for (const Stage& stage : stages) {
    if (!stage.allowed || freed >= target) continue;
    OperationContext ctx;
    ctx.no_wait_gpu = !stage.wait;
    GemLru& lru = stage.purge ? device_->dontneed() : device_->willneed();
    if (!stage.purge && writeback) StartWriteback(lru, target - freed);
    freed += GemLruScan(lru, target - freed, &remaining,
                        [&](GemShmemObject& obj)
                            UTTM_NO_THREAD_SAFETY_ANALYSIS -> Result<std::uint64_t> {
                              // GemLruScan holds the reservation (try-locked) while it calls this.
                              obj.resv()->AssertHeld();
                              return stage.purge ? obj.Purge(ctx) : obj.Evict(writeback, ctx);
                            });
  }
  sc.nr_scanned = freed;
  // msm answers SHRINK_STOP also when it freed pages but nothing is left; the kernel then drops
  // that count. uttm's reclaimer counts what was freed, so only "nothing freed" stops it.
  return freed > 0 ? freed : kShrinkStop;
}

}  // namespace uttm
