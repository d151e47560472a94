// Copyright (c) uttm developers.
//
// fence.h: a one-shot completion shared between the code that does work (the simulated GPU
// engine, a copy thread) and the code that must wait for it (the kernel's dma_fence).
//
// A Fence is created unsignalled with a (context, seqno) pair: fences of one context complete in
// seqno order, so a later fence of a context supersedes an earlier one (reservation slots rely on
// this). It is signalled exactly once, optionally with an error that is kept for waiters to read.
// Fences are shared through FenceRef (std::shared_ptr); whoever holds a reference may wait.
//
// Waiting honours the OperationContext:
//   no_wait_gpu                        -> kBusy when the fence is not yet signalled (no wait);
//   interruptible and ctx.stop requested, or the "wait.interrupt" fault point fires
//                                      -> kInterrupted (nothing changed, wait again later);
//   a bounded timeout expires          -> kTimedOut. (TTM's ttm_bo_wait_ctx turns its own 15 s
//                                         limit into EBUSY; that mapping belongs to the buffer
//                                         object layer, not here.)
// A wait that sees the fence signalled returns OK even if the fence carries an error: like
// dma_fence_wait, waiting and the work's outcome are separate; read the outcome with error().
//
// Thread-safety: every method is thread-safe. Callbacks run exactly once, on the thread that
// signals (or not at all if removed first), with no fence lock held, so they may signal other
// fences or add callbacks.
#ifndef UTTM_FENCE_H_
#define UTTM_FENCE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "uttm/export.h"
#include "uttm/mutex.h"
#include "uttm/operation_context.h"
#include "uttm/status.h"
#include "uttm/thread_annotations.h"

namespace uttm {

class Fence;
using FenceRef = std::shared_ptr<Fence>;

// "Wait without a time limit".
inline constexpr std::chrono::nanoseconds kWaitForever = std::chrono::nanoseconds::max();

class UTTM_EXPORT Fence {
 public:
  // Receives the fence that was signalled (its error() is final by then).
  using Callback = std::function<void(const Fence&)>;
  using CallbackId = std::uint64_t;

  // A new unsignalled fence. `context` should come from AllocateContext() (or be shared by all
  // fences of one timeline); `seqno` grows along the timeline.
  static FenceRef Create(std::uint64_t context, std::uint64_t seqno);
  // A fence that is already signalled (with `error`, OK by default), for "nothing to wait for".
  static FenceRef CreateSignaled(Status error = Status());
  // Returns `count` consecutive fresh context numbers (the first one); never returns 0.
  static std::uint64_t AllocateContext(std::uint64_t count = 1);

  Fence(std::uint64_t context, std::uint64_t seqno);
  Fence(const Fence&) = delete;
  Fence& operator=(const Fence&) = delete;
  ~Fence();

  std::uint64_t context() const { return context_; }
  std::uint64_t seqno() const { return seqno_; }

  // Completes the fence, records `error` (OK = success) and runs the callbacks. Returns kInvalid
  // if the fence was already signalled (the first outcome stays).
  Status Signal(Status error = Status()) UTTM_EXCLUDES(mu_);
  bool IsSignaled() const UTTM_EXCLUDES(mu_);
  // The error the fence was signalled with; OK while unsignalled or on success.
  Status error() const UTTM_EXCLUDES(mu_);
  // True when this fence completes no earlier than `other`: same context and seqno >= other's.
  bool IsLaterOrSame(const Fence& other) const {
    return context_ == other.context_ && seqno_ >= other.seqno_;
  }

  // Waits for the signal. OK once signalled; kBusy (no_wait_gpu), kInterrupted, kTimedOut as in
  // the file comment. `timeout` counts from the call.
  Status Wait(const OperationContext& ctx, std::chrono::nanoseconds timeout = kWaitForever) const
      UTTM_EXCLUDES(mu_);

  // Registers `cb` to run when the fence is signalled. Returns its id, or kNotFound when the
  // fence is already signalled (then `cb` is not called: the caller handles that case, as with
  // dma_fence_add_callback's ENOENT).
  Result<CallbackId> AddCallback(Callback cb) UTTM_EXCLUDES(mu_);
  // Unregisters a callback. True if it was removed before running; false if it already ran (or
  // is running) or the id is unknown.
  bool RemoveCallback(CallbackId id) UTTM_EXCLUDES(mu_);

  // Waits for every fence (nullptr entries are skipped); the timeout covers the whole call.
  static Status WaitAll(std::span<const FenceRef> fences, const OperationContext& ctx,
                        std::chrono::nanoseconds timeout = kWaitForever);
  // Waits until at least one fence is signalled and returns the index of a signalled one.
  // kInvalid when the span holds no fence.
  static Result<std::size_t> WaitAny(std::span<const FenceRef> fences, const OperationContext& ctx,
                                     std::chrono::nanoseconds timeout = kWaitForever);

 private:
  struct Entry {
    CallbackId id;
    Callback cb;
  };

  const std::uint64_t context_;
  const std::uint64_t seqno_;
  mutable Mutex mu_;
  mutable CondVar cv_;
  bool signaled_ UTTM_GUARDED_BY(mu_) = false;
  Status error_ UTTM_GUARDED_BY(mu_);
  CallbackId next_id_ UTTM_GUARDED_BY(mu_) = 1;
  std::vector<Entry> callbacks_ UTTM_GUARDED_BY(mu_);
};

}  // namespace uttm

#endif  // UTTM_FENCE_H_
