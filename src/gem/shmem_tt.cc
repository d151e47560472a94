// Copyright (c) uttm developers.
//
// shmem_tt.cc: see shmem_tt.h.
#include "uttm/shmem_tt.h"

#include "bo/bo_internal.h"
#include "uttm/device.h"
#include "uttm/resource_manager.h"

namespace uttm {

Result<std::unique_ptr<PageVector>> CreateShmemTt(const BufferObject& bo,
                                                  const ShmemBackingOptions& options,
                                                  std::uint32_t page_flags) {
  PageVectorOptions o;
  o.size = bo.size();
  o.flags = page_flags;
  o.shmem = &options;
  return PageVector::Create(&bo.device().memory(), o);
}

Result<std::uint64_t> ShmemTtShrink(BufferObject& bo, const ShmemShrinkFlags& flags) {
  PageVector* tt = bo.tt();
  const Resource* res = bo.resource();
  if (tt == nullptr || !tt->is_shmem() || res == nullptr || !res->manager()->use_tt()) {
    return std::uint64_t{0};
  }
  if (tt->shmem() == nullptr || !tt->shmem()->has_file()) return std::uint64_t{0};
  OperationContext ctx;
  ctx.no_wait_gpu = flags.no_gpu_wait;
  UTTM_RETURN_IF_ERROR(bo.WaitIdle(ctx));
  Stats& stats = bo.device().memory().stats();
  if (bo.madvice() == Madvice::kDontNeed) {
    UTTM_ASSIGN_OR_RETURN(PageCount purged, tt->ShmemPurge());
    internal::BoInternal::MarkPurged(bo);
    internal::BoInternal::UpdateLruState(bo);
    stats.Add(Stat::kGemPagesPurged, purged.value());
    return purged.value();
  }
  if (bo.madvice() == Madvice::kPurged || tt->is_swapped() || !tt->is_populated()) {
    return std::uint64_t{0};
  }
  UTTM_ASSIGN_OR_RETURN(PageCount released, tt->ShmemSwapout(flags.writeback));
  internal::BoInternal::UpdateLruState(bo);
  stats.Add(Stat::kGemPagesEvicted, released.value());
  return released.value();
}

}  // namespace uttm
