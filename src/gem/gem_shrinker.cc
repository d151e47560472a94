// Copyright (c) uttm developers.
//
// gem_shrinker.cc: see gem_shrinker.h.
#include "uttm/gem_shrinker.h"

#include <algorithm>
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

// The write-back eviction stage, a batch of up to 256 MiB at a time: each victim is evicted
// lazily (the driver tears its mappings down; the pages leave the mapping and stay dirty in the
// page cache) and its write-back started at once, so the disk writes it while the next victim is
// unmapped; then each is waited for and its pages dropped. The disk sees the batch queued
// together, and pages nobody maps are written without the write-protect walk a mapped page
// needs. A write-back that fails swaps its object back in with its pages marked dirty
// again: nothing is lost, and its pages do not count as freed.
std::uint64_t GemShrinker::EvictWithWriteback(GemLru& lru, std::uint64_t target,
                                              std::uint64_t* remaining,
                                              const OperationContext& ctx) {
  constexpr std::uint64_t kBatchPages = std::uint64_t{256} << 20 >> kPageShift;
  constexpr std::size_t kBatchObjects = 1024;
  std::vector<GemRef> batch;
  try {
    batch.reserve(kBatchObjects);
  } catch (const std::bad_alloc&) {
    // No room to track a batch: each victim is written back on its own (capacity stays 0).
  }
  std::uint64_t freed = 0;
  while (freed < target) {
    batch.clear();
    std::uint64_t got = GemLruScan(
        lru, std::min(target - freed, kBatchPages), remaining,
        [&](GemShmemObject& obj) UTTM_NO_THREAD_SAFETY_ANALYSIS -> Result<std::uint64_t> {
          obj.resv()->AssertHeld();
          if (batch.size() == batch.capacity()) return obj.Evict(true, ctx);
          Result<std::uint64_t> r = obj.Evict(/*writeback=*/false, ctx);
          if (r.ok()) {
            // Its I/O starts now, while the next victim is being unmapped.
            obj.backing().StartWriteback();
            obj.Get();
            batch.push_back(GemRef::Adopt(&obj));
          }
          return r;
        });
    if (got == 0) break;
    // An object someone locked meanwhile is being used again: its pages are still in the page
    // cache (the write-back of the others goes on; the kernel reclaims it lazily if need be).
    auto locked = [](const GemRef& o, auto&& fn) {
      if (!o->resv()->TryLock()) return;
      o->resv()->AssertHeld();
      if (o->evicted()) fn();
      o->resv()->Unlock();
    };
    bool failed = false;
    for (const GemRef& o : batch) {
      locked(o, [&]() UTTM_NO_THREAD_SAFETY_ANALYSIS {
        o->resv()->AssertHeld();
        if (o->backing().FinishWriteback().ok()) return;
        ++writeback_failures_;
        failed = true;
        // The page cache holds the only good copy: back into the mapping, dirty again.
        if (device_->funcs().SwapIn(*o).ok()) got -= o->num_pages().value();
      });
    }
    freed += got;
    if (failed) break;  // the disk refused a write: no second try in this scan
  }
  return freed;
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
    if (!stage.purge && writeback) {
      freed += EvictWithWriteback(lru, target - freed, &remaining, ctx);
      continue;
    }
    freed += GemLruScan(lru, target - freed, &remaining,
                        [&](GemShmemObject& obj)
                            UTTM_NO_THREAD_SAFETY_ANALYSIS -> Result<std::uint64_t> {
                              // GemLruScan holds the reservation (try-locked) while it calls this.
                              obj.resv()->AssertHeld();
                              return stage.purge ? obj.Purge(ctx) : obj.Evict(false, ctx);
                            });
  }
  sc.nr_scanned = freed;
  // msm answers SHRINK_STOP also when it freed pages but nothing is left; the kernel then drops
  // that count. uttm's reclaimer counts what was freed, so only "nothing freed" stops it.
  return freed > 0 ? freed : kShrinkStop;
}

}  // namespace uttm
