// Copyright (c) uttm developers.
//
// wait_util.h (internal): pieces shared by the blocking waits of fences and reservations.
//   Deadline / DeadlineAfter   a relative timeout turned into an absolute steady_clock point;
//   InterruptNow               the "interruptible and (stop requested or wait.interrupt fires)"
//                              test made once before a wait blocks;
//   StopWaker                  wakes a CondVar (under its Mutex) when ctx.stop is requested, for
//                              waits that also need a deadline (CondVar has no stop+deadline form);
//   Parker                     a wake-up slot (one per ticket, or one per plain blocking Lock
//                              call): reservation waiters park on it so that whoever must wake
//                              them (an unlock, a wound) can do so without taking the lock of
//                              the reservation they wait on. Its mutex is a leaf: nothing is
//                              locked while it is held.
#ifndef UTTM_SRC_RESERVATION_WAIT_UTIL_H_
#define UTTM_SRC_RESERVATION_WAIT_UTIL_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>

#include "uttm/fault_injection.h"
#include "uttm/mutex.h"
#include "uttm/operation_context.h"
#include "uttm/thread_annotations.h"

namespace uttm::internal {

using Deadline = std::optional<std::chrono::steady_clock::time_point>;

// No deadline for kWaitForever (nanoseconds::max()) or anything that would overflow the clock.
inline Deadline DeadlineAfter(std::chrono::nanoseconds timeout) {
  if (timeout >= std::chrono::hours(24 * 365 * 100)) return std::nullopt;
  return std::chrono::steady_clock::now() + timeout;
}

// True when an interruptible wait must give up now. Consults the fault point, so call it once
// per wait, before blocking.
inline bool InterruptNow(const OperationContext& ctx) {
  if (!ctx.interruptible) return false;
  return ctx.stop.stop_requested() || ShouldFail(FaultPoint::kWaitInterrupt);
}

// Construct before locking `mu` (the callback runs inline when stop is already requested).
class StopWaker {
 public:
  StopWaker(const OperationContext& ctx, Mutex* mu, CondVar* cv) {
    if (ctx.interruptible && ctx.stop.stop_possible()) cb_.emplace(ctx.stop, Wake{mu, cv});
  }

 private:
  struct Wake {
    Mutex* mu;
    CondVar* cv;
    void operator()() const {
      MutexLock lock(mu);
      cv->SignalAll();
    }
  };
  std::optional<std::stop_callback<Wake>> cb_;
};

struct Parker {
  Mutex mu;
  CondVar cv;
  std::uint64_t seq UTTM_GUARDED_BY(mu) = 0;

  std::uint64_t Seq() UTTM_EXCLUDES(mu) {
    MutexLock lock(&mu);
    return seq;
  }
  void Wake() UTTM_EXCLUDES(mu) {
    MutexLock lock(&mu);
    ++seq;
    cv.SignalAll();
  }
  // Waits until Wake() was called after Seq() returned `seen`, or (interruptible) stop.
  void WaitChange(std::uint64_t seen, const OperationContext& ctx) UTTM_EXCLUDES(mu) {
    MutexLock lock(&mu);
    auto changed = [&]() UTTM_NO_THREAD_SAFETY_ANALYSIS { return seq != seen; };
    if (ctx.interruptible) {
      cv.WaitInterruptible(&mu, ctx.stop, changed);
    } else {
      while (!changed()) cv.Wait(&mu);
    }
  }
};

}  // namespace uttm::internal

#endif  // UTTM_SRC_RESERVATION_WAIT_UTIL_H_
