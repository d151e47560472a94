// Copyright (c) uttm developers.
#include "uttm/fence.h"

#include <atomic>
#include <optional>
#include <utility>

#include "reservation/wait_util.h"

namespace uttm {
namespace {

std::atomic<std::uint64_t> g_next_context{1};

Status Interrupted() { return Status(Errc::kInterrupted, "fence wait interrupted"); }
Status TimedOut() { return Status(Errc::kTimedOut, "fence wait timed out"); }
Status NoWaitBusy() { return Status(Errc::kBusy, "fence not signalled and no_wait_gpu is set"); }

}  // namespace

FenceRef Fence::Create(std::uint64_t context, std::uint64_t seqno) {
  return std::make_shared<Fence>(context, seqno);
}

FenceRef Fence::CreateSignaled(Status error) {
  FenceRef fence = Create(AllocateContext(), 1);
  (void)fence->Signal(std::move(error));
  return fence;
}

std::uint64_t Fence::AllocateContext(std::uint64_t count) {
  return g_next_context.fetch_add(count == 0 ? 1 : count, std::memory_order_relaxed);
}

Fence::Fence(std::uint64_t context, std::uint64_t seqno) : context_(context), seqno_(seqno) {}

Fence::~Fence() = default;

Status Fence::Signal(Status error) {
  std::vector<Entry> callbacks;
  {
    MutexLock lock(&mu_);
    if (signaled_) return Status(Errc::kInvalid, "fence signalled twice");
    signaled_ = true;
    error_ = std::move(error);
    callbacks.swap(callbacks_);
    cv_.SignalAll();
  }
  for (Entry& entry : callbacks) entry.cb(*this);
  return Status();
}

bool Fence::IsSignaled() const {
  MutexLock lock(&mu_);
  return signaled_;
}

Status Fence::error() const {
  MutexLock lock(&mu_);
  return error_;
}

Status Fence::Wait(const OperationContext& ctx, std::chrono::nanoseconds timeout) const {
  if (IsSignaled()) return Status();
  if (ctx.no_wait_gpu) return NoWaitBusy();
  if (internal::InterruptNow(ctx)) return Interrupted();
  if (timeout <= std::chrono::nanoseconds::zero()) return TimedOut();
  const internal::Deadline deadline = internal::DeadlineAfter(timeout);
  internal::StopWaker waker(ctx, &mu_, &cv_);
  MutexLock lock(&mu_);
  while (!signaled_) {
    if (ctx.interrupt_requested()) return Interrupted();
    if (deadline) {
      if (std::chrono::steady_clock::now() >= *deadline) return TimedOut();
      cv_.WaitUntil(&mu_, *deadline);
    } else {
      cv_.Wait(&mu_);
    }
  }
  return Status();
}

Result<Fence::CallbackId> Fence::AddCallback(Callback cb) {
  if (!cb) return Status(Errc::kInvalid, "AddCallback: empty callback");
  MutexLock lock(&mu_);
  if (signaled_) return Status(Errc::kNotFound, "fence already signalled");
  CallbackId id = next_id_++;
  callbacks_.push_back(Entry{id, std::move(cb)});
  return id;
}

bool Fence::RemoveCallback(CallbackId id) {
  MutexLock lock(&mu_);
  for (auto it = callbacks_.begin(); it != callbacks_.end(); ++it) {
    if (it->id == id) {
      callbacks_.erase(it);
      return true;
    }
  }
  return false;
}

Status Fence::WaitAll(std::span<const FenceRef> fences, const OperationContext& ctx,
                      std::chrono::nanoseconds timeout) {
  const internal::Deadline deadline = internal::DeadlineAfter(timeout);
  for (const FenceRef& fence : fences) {
    if (!fence) continue;
    std::chrono::nanoseconds left = kWaitForever;
    if (deadline) {
      left = std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline -
                                                                  std::chrono::steady_clock::now());
      if (left < std::chrono::nanoseconds::zero()) left = std::chrono::nanoseconds::zero();
    }
    UTTM_RETURN_IF_ERROR(fence->Wait(ctx, left));
  }
  return Status();
}

namespace {

// Shared between WaitAny and the callbacks it registers (which may outlive the call).
struct AnyWaiter {
  Mutex mu;
  CondVar cv;
  std::optional<std::size_t> index UTTM_GUARDED_BY(mu);
};

}  // namespace

Result<std::size_t> Fence::WaitAny(std::span<const FenceRef> fences, const OperationContext& ctx,
                                   std::chrono::nanoseconds timeout) {
  bool any = false;
  for (std::size_t i = 0; i < fences.size(); ++i) {
    if (!fences[i]) continue;
    any = true;
    if (fences[i]->IsSignaled()) return i;
  }
  if (!any) return Status(Errc::kInvalid, "WaitAny: no fence given");
  if (ctx.no_wait_gpu) return NoWaitBusy();
  if (internal::InterruptNow(ctx)) return Interrupted();
  if (timeout <= std::chrono::nanoseconds::zero()) return TimedOut();
  const internal::Deadline deadline = internal::DeadlineAfter(timeout);

  auto waiter = std::make_shared<AnyWaiter>();
  std::vector<std::optional<CallbackId>> ids(fences.size());
  for (std::size_t i = 0; i < fences.size(); ++i) {
    if (!fences[i]) continue;
    Result<CallbackId> id = fences[i]->AddCallback([waiter, i](const Fence&) {
      MutexLock lock(&waiter->mu);
      if (!waiter->index) waiter->index = i;
      waiter->cv.SignalAll();
    });
    if (id.ok()) {
      ids[i] = *id;
    } else {
      MutexLock lock(&waiter->mu);  // already signalled
      if (!waiter->index) waiter->index = i;
    }
  }

  Result<std::size_t> result = Status(Errc::kTimedOut, "fence wait timed out");
  {
    internal::StopWaker waker(ctx, &waiter->mu, &waiter->cv);
    MutexLock lock(&waiter->mu);
    while (true) {
      if (waiter->index) {
        result = *waiter->index;
        break;
      }
      if (ctx.interrupt_requested()) {
        result = Interrupted();
        break;
      }
      if (deadline) {
        if (std::chrono::steady_clock::now() >= *deadline) break;
        waiter->cv.WaitUntil(&waiter->mu, *deadline);
      } else {
        waiter->cv.Wait(&waiter->mu);
      }
    }
  }
  for (std::size_t i = 0; i < fences.size(); ++i) {
    if (ids[i]) fences[i]->RemoveCallback(*ids[i]);
  }
  return result;
}

}  // namespace uttm
