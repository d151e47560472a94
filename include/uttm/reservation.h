// Copyright (c) uttm developers.
//
// reservation.h: the lock and fence slots of one or more buffer objects (the kernel's dma_resv).
//
// A Reservation is a wound/wait mutex (see ww_acquire_context.h) plus a list of fence slots. It
// protects the placement state of every buffer object that points at it (several objects may
// share one Reservation, e.g. all objects of one VM, so they are locked together).
//
// Locking (the ttm_bo_reserve mapping):
//   Lock(ticket, ctx)   OK; kAlready when `ticket` already holds it; kDeadlock when the ticket must
//                       back off (unlock everything it holds, then LockSlow this one); kInterrupted
//                       when ctx.interruptible and ctx.stop is requested (or the "wait.interrupt"
//                       fault point fires) while blocked. ticket may be null: a plain blocking
//                       lock.
//   Reserve(ticket, o)  the ttm_bo_reserve form: o.no_wait tries once and returns kBusy when
//                       contended; no_wait together with a ticket is misuse and returns kBusy.
//   LockSlow(ticket,c)  the back-off path: the ticket must hold nothing; waits for the lock.
//   TryLock()           never blocks, takes no ticket: the only form allowed under the LRU lock.
//   Unlock()            releases; unreserved fence slots are dropped.
// Clang's analysis cannot follow Status-returning locks: after a successful Lock/LockSlow/
// Reserve, call AssertHeld() so the analysis knows; TryLock is a normal try-acquire.
//
// Fences: each slot holds a fence and its usage. Usages are ordered kKernel < kWrite < kRead <
// kBookkeep; a query "up to U" covers every slot whose usage is <= U (kRead therefore means
// "everything an implicit reader must wait for": kernel moves and writers too). Adding a fence
// needs the lock and a slot reserved with ReserveFences (reservations are reset on Unlock); a
// new fence replaces a slot whose fence is signalled, or a same-context, earlier-or-same fence
// of a usage >= the new one. Readers (TestSignaled, Wait, GetFences) need no lock: they work on
// a snapshot.
//
// Thread-safety: all methods are thread-safe; fence-slot writers must hold the reservation.
#ifndef UTTM_RESERVATION_H_
#define UTTM_RESERVATION_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <stop_token>
#include <vector>

#include "uttm/export.h"
#include "uttm/fence.h"
#include "uttm/mutex.h"
#include "uttm/operation_context.h"
#include "uttm/status.h"
#include "uttm/thread_annotations.h"
#include "uttm/ww_acquire_context.h"

namespace uttm {

// How a fence in a slot relates to the protected memory, from the most to the least urgent.
enum class ResvUsage : std::uint8_t {
  kKernel = 0,    // memory management (moves, clears): everyone waits for these
  kWrite = 1,     // implicit-sync writers
  kRead = 2,      // implicit-sync readers
  kBookkeep = 3,  // explicitly synchronised work; only memory management waits for it
};
// "kernel", "write", "read", "bookkeep".
UTTM_EXPORT const char* ResvUsageName(ResvUsage usage);

// Options of the ttm_bo_reserve form.
struct ReserveOptions {
  bool interruptible = false;
  bool no_wait = false;
  std::stop_token stop{};
};

// A fence together with the usage of its slot.
struct FenceSlot {
  FenceRef fence;
  ResvUsage usage;
};

class UTTM_CAPABILITY("reservation") UTTM_EXPORT Reservation {
 public:
  explicit Reservation(WwClass ww_class = WwClass::kWaitDie);
  // Aborts (debug builds) if still locked or waited on.
  ~Reservation();
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;

  WwClass ww_class() const { return class_; }

  // --- Locking ---

  // See the file comment. kInvalid when the ticket's class differs from this reservation's or
  // the ticket is marked Done().
  Status Lock(WwAcquireContext* ticket, const OperationContext& ctx);
  Status Lock(WwAcquireContext* ticket) { return Lock(ticket, OperationContext()); }
  Status Reserve(WwAcquireContext* ticket, const ReserveOptions& options);
  // REQUIRES: `ticket` holds no reservation (it backed off). Never returns kDeadlock.
  Status LockSlow(WwAcquireContext* ticket, const OperationContext& ctx);
  bool TryLock() UTTM_TRY_ACQUIRE(true);
  void Unlock() UTTM_RELEASE();

  bool IsLocked() const;
  bool IsLockedBy(const WwAcquireContext* ticket) const;
  // The ticket that holds the lock, or null (unlocked, or locked without a ticket).
  const WwAcquireContext* LockingTicket() const;
  // Tells the analysis the caller holds the lock; aborts (debug builds) if it is not locked.
  void AssertHeld() const UTTM_ASSERT_CAPABILITY(this);

  // --- Fence slots ---

  // Makes sure `num_fences` more fences can be added. REQUIRES the lock.
  Status ReserveFences(unsigned num_fences) UTTM_REQUIRES(this);
  // Adds `fence` with `usage` (see the file comment). kInvalid: null fence, or no reserved slot.
  Status AddFence(FenceRef fence, ResvUsage usage) UTTM_REQUIRES(this);
  // Reserves and adds every fence of `fences` with `usage`.
  Status AddFences(std::span<const FenceRef> fences, ResvUsage usage) UTTM_REQUIRES(this);
  // Replaces this reservation's fences by a copy of `src`'s slots (ghost objects).
  void CopyFences(const Reservation& src) UTTM_REQUIRES(this);
  // Drops every slot whose fence is signalled; returns how many were dropped.
  std::size_t PruneSignaled() UTTM_REQUIRES(this);
  // How many fences that may write (any usage but kRead) were ever added or copied in: a buffer
  // object compares it with an earlier reading to tell whether the GPU may have written since.
  std::uint64_t write_fences_added() const;

  // Snapshot of the fences with usage <= `usage`.
  std::vector<FenceRef> GetFences(ResvUsage usage) const;
  // Snapshot of all slots.
  std::vector<FenceSlot> GetSlots() const;
  // Calls `fn` for each slot with usage <= `usage` (on a snapshot, no lock held during calls).
  void ForEachFence(ResvUsage usage, const std::function<void(const FenceSlot&)>& fn) const;
  std::size_t num_fences() const;
  // True when every fence with usage <= `usage` is signalled.
  bool TestSignaled(ResvUsage usage) const;
  // Waits for every fence with usage <= `usage` (Fence::Wait rules: kBusy with no_wait_gpu,
  // kInterrupted, kTimedOut; the timeout covers the whole call).
  Status Wait(ResvUsage usage, const OperationContext& ctx,
              std::chrono::nanoseconds timeout = kWaitForever) const;

 private:
  Status LockInternal(WwAcquireContext* ticket, const OperationContext& ctx, bool slow);
  void TakeLocked(WwAcquireContext* ticket) UTTM_REQUIRES(mu_);
  void WakeWaiters() UTTM_REQUIRES(mu_);
  void ResetStaleReservation() UTTM_REQUIRES(fence_mu_);

  const WwClass class_;

  // State of the wound/wait lock.
  mutable Mutex mu_;
  bool locked_ UTTM_GUARDED_BY(mu_) = false;
  WwAcquireContext* holder_ UTTM_GUARDED_BY(mu_) = nullptr;
  std::vector<internal::Parker*> waiters_ UTTM_GUARDED_BY(mu_);

  // Fence slots: written with the reservation held (and fence_mu_), read under fence_mu_ only.
  mutable Mutex fence_mu_;
  std::vector<FenceSlot> slots_ UTTM_GUARDED_BY(fence_mu_);
  std::size_t capacity_ UTTM_GUARDED_BY(fence_mu_) = 0;
  std::uint64_t write_fences_added_ UTTM_GUARDED_BY(fence_mu_) = 0;
  // Which lock period capacity_ belongs to (compared with lock_seq_, bumped on every lock).
  std::uint64_t capacity_seq_ UTTM_GUARDED_BY(fence_mu_) = 0;
  std::atomic<std::uint64_t> lock_seq_{0};
};

}  // namespace uttm

#endif  // UTTM_RESERVATION_H_
