// Copyright (c) uttm developers.
//
// shmem_tt_funcs.cc: see shmem_tt_funcs.h.
#include "uttm/shmem_tt_funcs.h"

#include <algorithm>
#include <cmath>

#include "uttm/buffer_object.h"
#include "uttm/shmem_tt.h"

namespace uttm {

ShmemTtFuncs::ShmemTtFuncs(DeviceFuncs* driver, const ShmemTtFuncsOptions& options)
    : driver_(driver), share_(std::clamp(options.share, 0.0, 1.0)), backing_(options.backing) {}

void ShmemTtFuncs::Bind(Device* device) {
  shrinker_ = std::make_unique<ShmemTtShrinker>(device, backing_);
}

Result<std::unique_ptr<PageVector>> ShmemTtFuncs::TtCreate(BufferObject& bo, std::uint32_t flags) {
  if ((flags & kPageVectorExternal) == 0 && share_ > 0) {
    const std::uint64_t k = created_.fetch_add(1, std::memory_order_relaxed);
    if (std::floor(static_cast<double>(k + 1) * share_) >
        std::floor(static_cast<double>(k) * share_)) {
      made_.fetch_add(1, std::memory_order_relaxed);
      return CreateShmemTt(bo, shrinker_ != nullptr ? shrinker_->backing_options() : backing_,
                           flags);
    }
  }
  return driver_->TtCreate(bo, flags);
}

Status ShmemTtFuncs::TtPopulate(BufferObject& bo, PageVector& tt, OperationContext& ctx) {
  return driver_->TtPopulate(bo, tt, ctx);
}
void ShmemTtFuncs::TtUnpopulate(BufferObject& bo, PageVector& tt) { driver_->TtUnpopulate(bo, tt); }
bool ShmemTtFuncs::EvictionValuable(const BufferObject& bo, const Place& place) {
  if (bo.tt() != nullptr && bo.tt()->is_shmem()) return false;
  return driver_->EvictionValuable(bo, place);
}
void ShmemTtFuncs::EvictFlags(const BufferObject& bo, Placement* placement) {
  driver_->EvictFlags(bo, placement);
}
Status ShmemTtFuncs::Move(BufferObject& bo, bool evict, OperationContext& ctx,
                          std::unique_ptr<Resource>& new_res, Place* hop) {
  return driver_->Move(bo, evict, ctx, new_res, hop);
}
std::byte* ShmemTtFuncs::AccessMemory(const Resource& res) { return driver_->AccessMemory(res); }
void ShmemTtFuncs::SwapNotify(BufferObject& bo) { driver_->SwapNotify(bo); }
void ShmemTtFuncs::ReleaseNotify(BufferObject& bo) { driver_->ReleaseNotify(bo); }
void ShmemTtFuncs::DeleteMemNotify(BufferObject& bo) { driver_->DeleteMemNotify(bo); }
void ShmemTtFuncs::MadviseNotify(BufferObject& bo) { driver_->MadviseNotify(bo); }
void ShmemTtFuncs::PinNotify(BufferObject& bo) { driver_->PinNotify(bo); }

}  // namespace uttm
