// Copyright (c) uttm developers.
//
// Lock protocol. mu_ guards the lock state and the list of parked waiters. A thread that must
// block reads its parker's sequence number, re-checks everything under mu_, registers on
// waiters_, drops mu_ and sleeps until the sequence changes. Unlock bumps the parker of every
// registered waiter (all of them re-evaluate: the new holder decides who dies or gets wounded).
// A wound sets the victim ticket's flag, then bumps the victim's parker; since the victim reads
// its sequence before it tests the flag, the wound cannot be missed. Lock order:
// Reservation::mu_ -> Parker::mu (leaf); fence_mu_ -> Fence::mu_ (leaf); mu_ and fence_mu_ are
// never held together.
#include "uttm/reservation.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <utility>

#include "base/check.h"
#include "reservation/wait_util.h"
#include "uttm/stats.h"

namespace uttm {
namespace {
std::atomic<std::uint64_t> g_next_stamp{1};
constexpr unsigned kMaxReserve = 1u << 20;
}  // namespace

WwAcquireContext::WwAcquireContext(WwClass ww_class)
    : stamp_(g_next_stamp.fetch_add(1, std::memory_order_relaxed)),
      class_(ww_class),
      parker_(std::make_unique<internal::Parker>()) {}

WwAcquireContext::~WwAcquireContext() {
  UTTM_DCHECK(acquired() == 0, "ticket destroyed while it still holds reservations");
}

void WwAcquireContext::SetContended(Reservation* resv, std::shared_ptr<const void> keep_alive) {
  contended_ = resv;
  contended_keep_alive_ = std::move(keep_alive);
}

Reservation* WwAcquireContext::TakeContended(std::shared_ptr<const void>* keep_alive) {
  Reservation* r = std::exchange(contended_, nullptr);
  *keep_alive = std::move(contended_keep_alive_);
  contended_keep_alive_.reset();
  return r;
}

void WwAcquireContext::AddVictim(const Reservation* resv) {
  if (!IsVictim(resv)) victims_.push_back(resv);
}

void WwAcquireContext::RemoveVictim(const Reservation* resv) { std::erase(victims_, resv); }

bool WwAcquireContext::IsVictim(const Reservation* resv) const {
  return std::find(victims_.begin(), victims_.end(), resv) != victims_.end();
}

const char* ResvUsageName(ResvUsage usage) {
  switch (usage) {
    case ResvUsage::kKernel:
      return "kernel";
    case ResvUsage::kWrite:
      return "write";
    case ResvUsage::kRead:
      return "read";
    case ResvUsage::kBookkeep:
      return "bookkeep";
  }
  return "?";
}

Reservation::Reservation(WwClass ww_class) : class_(ww_class) {}

Reservation::~Reservation() {
  MutexLock lock(&mu_);
  UTTM_DCHECK(!locked_, "reservation destroyed while locked");
  UTTM_DCHECK(waiters_.empty(), "reservation destroyed while waited on");
}

void Reservation::TakeLocked(WwAcquireContext* ticket) {
  locked_ = true;
  // Only written under mu_, so no read-modify-write is needed.
  lock_seq_.store(lock_seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  holder_ = ticket;
  if (ticket) ticket->acquired_.fetch_add(1, std::memory_order_acq_rel);
}

void Reservation::WakeWaiters() {
  for (internal::Parker* parker : waiters_) parker->Wake();
}

Status Reservation::Lock(WwAcquireContext* ticket, const OperationContext& ctx) {
  return LockInternal(ticket, ctx, /*slow=*/false);
}

Status Reservation::LockSlow(WwAcquireContext* ticket, const OperationContext& ctx) {
  return LockInternal(ticket, ctx, /*slow=*/true);
}

Status Reservation::Reserve(WwAcquireContext* ticket, const ReserveOptions& options) {
  if (options.no_wait) {
    // ttm_bo_reserve: a ticketed transaction must be able to back off, so "don't wait" with a
    // ticket is a caller bug, answered with EBUSY.
    if (ticket) return Status(Errc::kBusy, "Reserve: no_wait together with a ticket");
    MutexLock lock(&mu_);
    if (locked_) return Status(Errc::kBusy, "Reserve: reservation is locked (no_wait)");
    TakeLocked(nullptr);
    return Status();
  }
  OperationContext ctx;
  ctx.interruptible = options.interruptible;
  ctx.stop = options.stop;
  return LockInternal(ticket, ctx, /*slow=*/false);
}

Status Reservation::LockInternal(WwAcquireContext* ticket, const OperationContext& ctx, bool slow) {
  if (ticket) {
    if (ticket->class_ != class_) {
      return Status(Errc::kInvalid, "Lock: ticket and reservation use different ww classes");
    }
    if (ticket->done_) return Status(Errc::kInvalid, "Lock: ticket is marked Done()");
    if (ticket->acquired() == 0) {
      // Nobody can wound a ticket that holds nothing (only holders are wounded), so a plain
      // check-then-clear is race-free; it keeps the uncontended path free of a fenced store.
      if (ticket->wounded_.load(std::memory_order_relaxed)) {
        ticket->wounded_.store(false, std::memory_order_relaxed);
      }
    } else if (slow) {
      return Status(Errc::kInvalid, "LockSlow: the ticket still holds reservations");
    }
  } else if (slow) {
    return Status(Errc::kInvalid, "LockSlow: needs a ticket");
  }

  // A ticketed wait parks on the ticket's parker (a wound must find it); a plain wait on one
  // made here, only when it has to wait.
  std::optional<internal::Parker> local_parker;
  internal::Parker* me = ticket ? ticket->parker_.get() : nullptr;
  bool registered = false;
  bool checked_interrupt = false;
  Status result;
  mu_.Lock();
  if (ticket && holder_ == ticket) {
    mu_.Unlock();
    return Status(Errc::kAlready, "Lock: already reserved by this ticket");
  }
  while (true) {
    if (!locked_) {
      TakeLocked(ticket);
      break;
    }
    // Read before the wound test below (a wound sets the flag, then bumps the sequence); unlock
    // wake-ups need mu_, which is held from the test above until we park.
    if (me == nullptr) me = &local_parker.emplace();
    const std::uint64_t seen = me->Seq();
    if (ticket && ticket->acquired() > 0) {
      const bool die = class_ == WwClass::kWaitDie
                           ? (holder_ != nullptr && holder_->IsOlderThan(*ticket))
                           : ticket->wounded_.load(std::memory_order_seq_cst);
      if (die) {
        Stats::Default().Add(Stat::kResvBackoffs);
        result = Status(Errc::kDeadlock, class_ == WwClass::kWaitDie
                                             ? "Lock: an older ticket holds it; back off"
                                             : "Lock: wounded by an older ticket; back off");
        break;
      }
    }
    if (ticket && class_ == WwClass::kWoundWait && holder_ != nullptr &&
        ticket->IsOlderThan(*holder_) && holder_->acquired() > 0 &&
        !holder_->wounded_.load(std::memory_order_seq_cst)) {
      // The holder cannot finish before it unlocks, and it might wait for us: make it back off.
      holder_->wounded_.store(true, std::memory_order_seq_cst);
      holder_->parker_->Wake();
    }
    if (ctx.interruptible) {
      const bool interrupt =
          ctx.stop.stop_requested() || (!checked_interrupt && internal::InterruptNow(ctx));
      checked_interrupt = true;
      if (interrupt) {
        result = Status(Errc::kInterrupted, "Lock: interrupted while waiting");
        break;
      }
    }
    if (!registered) {
      waiters_.push_back(me);
      registered = true;
      Stats::Default().Add(Stat::kResvContended);
    }
    mu_.Unlock();
    me->WaitChange(seen, ctx);
    mu_.Lock();
  }
  if (registered) waiters_.erase(std::find(waiters_.begin(), waiters_.end(), me));
  mu_.Unlock();
  return result;
}

bool Reservation::TryLock() {
  MutexLock lock(&mu_);
  if (locked_) return false;
  TakeLocked(nullptr);
  return true;
}

void Reservation::Unlock() {
  MutexLock lock(&mu_);
  UTTM_CHECK(locked_, "Reservation::Unlock of an unlocked reservation");
  if (holder_) holder_->acquired_.fetch_sub(1, std::memory_order_acq_rel);
  holder_ = nullptr;
  locked_ = false;
  WakeWaiters();
}

bool Reservation::IsLocked() const {
  MutexLock lock(&mu_);
  return locked_;
}

bool Reservation::IsLockedBy(const WwAcquireContext* ticket) const {
  MutexLock lock(&mu_);
  return locked_ && ticket != nullptr && holder_ == ticket;
}

const WwAcquireContext* Reservation::LockingTicket() const {
  MutexLock lock(&mu_);
  return holder_;
}

void Reservation::AssertHeld() const { UTTM_DCHECK(IsLocked(), "reservation is not locked"); }

// Reserved slots do not outlive the lock (the kernel enforces this in debug builds; we always
// do): a reservation made under an earlier lock is dropped here instead of in Unlock, which
// keeps Unlock to one mutex.
void Reservation::ResetStaleReservation() {
  const std::uint64_t seq = lock_seq_.load(std::memory_order_acquire);
  if (capacity_seq_ != seq) {
    capacity_seq_ = seq;
    capacity_ = slots_.size();
  }
}

Status Reservation::ReserveFences(unsigned num_fences) {
  if (num_fences > kMaxReserve) return Status(Errc::kInvalid, "ReserveFences: count too large");
  MutexLock lock(&fence_mu_);
  ResetStaleReservation();
  capacity_ = std::max(capacity_, slots_.size() + num_fences);
  slots_.reserve(capacity_);
  return Status();
}

Status Reservation::AddFence(FenceRef fence, ResvUsage usage) {
  if (!fence) return Status(Errc::kInvalid, "AddFence: null fence");
  if (static_cast<unsigned>(usage) > static_cast<unsigned>(ResvUsage::kBookkeep)) {
    return Status(Errc::kInvalid, "AddFence: bad usage");
  }
  MutexLock lock(&fence_mu_);
  ResetStaleReservation();
  if (usage != ResvUsage::kRead) ++write_fences_added_;
  for (FenceSlot& slot : slots_) {
    const bool supersedes = fence->IsLaterOrSame(*slot.fence) && slot.usage >= usage;
    if (supersedes || slot.fence->IsSignaled()) {
      slot.fence = std::move(fence);
      slot.usage = usage;
      return Status();
    }
  }
  if (slots_.size() >= capacity_) {
    return Status(Errc::kInvalid, "AddFence: no reserved slot (call ReserveFences first)");
  }
  slots_.push_back(FenceSlot{std::move(fence), usage});
  return Status();
}

Status Reservation::AddFences(std::span<const FenceRef> fences, ResvUsage usage) {
  for (const FenceRef& fence : fences) {
    if (!fence) return Status(Errc::kInvalid, "AddFences: null fence");
  }
  UTTM_RETURN_IF_ERROR(ReserveFences(static_cast<unsigned>(fences.size())));
  for (const FenceRef& fence : fences) UTTM_RETURN_IF_ERROR(AddFence(fence, usage));
  return Status();
}

void Reservation::CopyFences(const Reservation& src) {
  if (&src == this) return;
  std::vector<FenceSlot> copy = src.GetSlots();
  MutexLock lock(&fence_mu_);
  ResetStaleReservation();
  ++write_fences_added_;  // the copied fences may write
  slots_ = std::move(copy);
  capacity_ = std::max(capacity_, slots_.size());
}

std::uint64_t Reservation::write_fences_added() const {
  MutexLock lock(&fence_mu_);
  return write_fences_added_;
}

std::size_t Reservation::PruneSignaled() {
  MutexLock lock(&fence_mu_);
  ResetStaleReservation();
  const std::size_t before = slots_.size();
  std::erase_if(slots_, [](const FenceSlot& slot) { return slot.fence->IsSignaled(); });
  return before - slots_.size();
}

std::vector<FenceRef> Reservation::GetFences(ResvUsage usage) const {
  std::vector<FenceRef> out;
  MutexLock lock(&fence_mu_);
  for (const FenceSlot& slot : slots_) {
    if (slot.usage <= usage) out.push_back(slot.fence);
  }
  return out;
}

std::vector<FenceSlot> Reservation::GetSlots() const {
  MutexLock lock(&fence_mu_);
  return slots_;
}

void Reservation::ForEachFence(ResvUsage usage,
                               const std::function<void(const FenceSlot&)>& fn) const {
  for (const FenceSlot& slot : GetSlots()) {
    if (slot.usage <= usage) fn(slot);
  }
}

std::size_t Reservation::num_fences() const {
  MutexLock lock(&fence_mu_);
  return slots_.size();
}

bool Reservation::TestSignaled(ResvUsage usage) const {
  for (const FenceRef& fence : GetFences(usage)) {
    if (!fence->IsSignaled()) return false;
  }
  return true;
}

Status Reservation::Wait(ResvUsage usage, const OperationContext& ctx,
                         std::chrono::nanoseconds timeout) const {
  std::vector<FenceRef> fences = GetFences(usage);
  return Fence::WaitAll(fences, ctx, timeout);
}

}  // namespace uttm
