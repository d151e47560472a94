// Copyright (c) uttm developers.
//
// reservation_guard.cc: see reservation_guard.h.

#include "uttm/reservation_guard.h"

namespace uttm {

Result<ReservationGuard> ReservationGuard::Acquire(BufferObject& bo, const OperationContext& ctx,
                                                   bool no_wait) {
  UTTM_RETURN_IF_ERROR(bo.Reserve(ctx, nullptr, no_wait));
  return ReservationGuard(&bo);
}

void ReservationGuard::Release() {
  if (bo_ == nullptr) return;
  BufferObject* bo = std::exchange(bo_, nullptr);
  bo->resv()->AssertHeld();
  bo->Unreserve();
}

}  // namespace uttm
