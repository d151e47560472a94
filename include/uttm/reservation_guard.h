// Copyright (c) uttm developers.
//
// reservation_guard.h: holds a buffer object's reservation for a scope (ttm_bo_reserve /
// ttm_bo_unreserve as RAII).
//
//   auto guard = uttm::ReservationGuard::Acquire(*bo, ctx);
//   if (!guard.ok()) return guard.status();     // kInterrupted, kBusy (no_wait), kDeadlock
//   bo->Validate(placement, ctx);               // the calls that need the reservation
//   // the guard's end unreserves, which also bumps the object to its LRU tail
//
// Errors: those of BufferObject::Reserve. Thread-safety: a guard belongs to the thread that
// acquired it (the reservation is a mutex); it may be moved but not shared.
#ifndef UTTM_RESERVATION_GUARD_H_
#define UTTM_RESERVATION_GUARD_H_

#include <utility>

#include "uttm/buffer_object.h"
#include "uttm/export.h"
#include "uttm/operation_context.h"
#include "uttm/status.h"

namespace uttm {

class UTTM_EXPORT ReservationGuard {
 public:
  // Reserves `bo` (waiting unless ctx asks otherwise; interruptible with ctx.interruptible).
  static Result<ReservationGuard> Acquire(BufferObject& bo, const OperationContext& ctx,
                                          bool no_wait = false);
  // A guard for a reservation the caller already holds (adopted: it will be unreserved).
  static ReservationGuard Adopt(BufferObject& bo) { return ReservationGuard(&bo); }

  ReservationGuard(ReservationGuard&& other) noexcept : bo_(std::exchange(other.bo_, nullptr)) {}
  ReservationGuard& operator=(ReservationGuard&& other) noexcept {
    if (this != &other) {
      Release();
      bo_ = std::exchange(other.bo_, nullptr);
    }
    return *this;
  }
  ReservationGuard(const ReservationGuard&) = delete;
  ReservationGuard& operator=(const ReservationGuard&) = delete;
  ~ReservationGuard() { Release(); }

  // Unreserves now (no-op when already released).
  void Release();
  BufferObject* object() const { return bo_; }
  explicit operator bool() const { return bo_ != nullptr; }

 private:
  explicit ReservationGuard(BufferObject* bo) : bo_(bo) {}
  BufferObject* bo_;
};

}  // namespace uttm

#endif  // UTTM_RESERVATION_GUARD_H_
