// Copyright (c) uttm developers.
//
// shmem_tt_shrinker.cc: see shmem_tt_shrinker.h.
#include "uttm/shmem_tt_shrinker.h"

#include <algorithm>

#include "uttm/buffer_object.h"
#include "uttm/lru_walk.h"
#include "uttm/resource_manager.h"
#include "uttm/shmem_tt.h"

namespace uttm {

ShmemTtShrinker::ShmemTtShrinker(Device* device, const ShmemBackingOptions& backing)
    : device_(device), name_("uttm-shmem-tt-" + device->name()), backing_(backing) {
  backing_.mapped_pages = &mapped_pages_;
  backing_.mapped_backings = &mapped_backings_;
}

std::uint64_t ShmemTtShrinker::resident_pages() const {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(mapped_pages_.load(), 0));
}

std::uint64_t ShmemTtShrinker::Count(const ShrinkControl&) {
  const std::uint64_t count = resident_pages();
  const auto objects = static_cast<std::uint64_t>(std::max<std::int64_t>(mapped_backings_, 1));
  // i915_gem_shrinker_count: the batch follows the average object, at least 128 pages.
  const std::uint64_t old = batch_.load(std::memory_order_relaxed);
  batch_.store(std::max<std::uint64_t>((old + 2 * count / objects) / 2, 128),
               std::memory_order_relaxed);
  return count != 0 ? count : kShrinkEmpty;
}

std::uint64_t ShmemTtShrinker::Scan(ShrinkControl& sc) {
  const ReclaimContext& rc = sc.reclaim;
  std::uint64_t freed = 0;
  std::uint64_t scanned = 0;
  if (!rc.may_fs) {
    sc.nr_scanned = 0;
    return kShrinkStop;
  }
  const ShmemShrinkFlags flags{.writeback = rc.background && rc.may_io,
                               .no_gpu_wait = !rc.background};
  // The purge list first (don't-need objects), then the shrink list (the rest).
  for (bool purge_pass : {true, false}) {
    for (MemType t = 0; t < kNumMemTypes && freed < sc.nr_to_scan; ++t) {
      ResourceManager* man = device_->manager(t);
      if (man == nullptr || !man->use_tt()) continue;
      OperationContext ctx;
      ctx.trylock_only = true;
      ctx.no_wait_gpu = flags.no_gpu_wait;
      LruWalkArg arg{.ctx = &ctx, .ticket = nullptr, .trylock_only = true};
      ReservedBoCursor cursor(device_, man, arg);
      while (freed < sc.nr_to_scan) {
        Result<BufferObject*> next = cursor.Next();
        if (!next.ok() || *next == nullptr) break;
        BufferObject& bo = **next;
        bo.resv()->AssertHeld();  // the cursor hands over reserved objects
        if (bo.tt() == nullptr || !bo.tt()->is_shmem()) continue;
        if ((bo.madvice() == Madvice::kDontNeed) != purge_pass) continue;
        if (bo.pin_count() > 0) continue;
        scanned += bo.num_pages().value();
        Result<std::uint64_t> r = ShmemTtShrink(bo, flags);
        if (r.ok()) freed += *r;
      }
    }
  }
  sc.nr_scanned = scanned;
  return scanned != 0 && freed != 0 ? freed : kShrinkStop;
}

}  // namespace uttm
