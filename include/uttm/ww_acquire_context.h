// Copyright (c) uttm developers.
//
// ww_acquire_context.h: the "ticket" of a multi-reservation transaction (the kernel's
// ww_acquire_ctx).
//
// A ticket gets a stamp from a process-wide counter when it is created: a smaller stamp is an
// older transaction. When two tickets contend for reservations, the age decides who backs off
// (kDeadlock: drop every reservation of the ticket, LockSlow the contended one, lock the rest
// again), so a set of tickets can never deadlock and the oldest always makes progress. A ticket
// keeps its stamp across back-offs, so a transaction that retries only gets older.
//
// Two algorithms exist, chosen per ticket and per Reservation (they must match):
//   kWaitDie    (the kernel's reservation_ww_class, DEFINE_WD_CLASS): a younger ticket that
//               already holds something and meets an older holder dies (kDeadlock) at once; an
//               older ticket waits for a younger holder.
//   kWoundWait  (DEFINE_WW_CLASS): an older ticket that meets a younger holder "wounds" it and
//               waits; the wounded ticket gets kDeadlock the next time it would have to block
//               (including while it is blocked). A younger ticket waits for an older holder.
// See docs/reservations.md.
//
// Thread-safety: a ticket is used by one thread at a time (it may move between threads with
// proper hand-off). Other threads only read its stamp and set its wound flag (synchronised). Every
// reservation locked with a ticket must be unlocked before the ticket is destroyed.
#ifndef UTTM_WW_ACQUIRE_CONTEXT_H_
#define UTTM_WW_ACQUIRE_CONTEXT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "uttm/export.h"

namespace uttm {

class Reservation;
namespace internal {
struct Parker;
}  // namespace internal

// Which back-off algorithm a ticket and a reservation use.
enum class WwClass { kWaitDie, kWoundWait };

class UTTM_EXPORT WwAcquireContext {
 public:
  // A fresh ticket, younger than every ticket created before it.
  explicit WwAcquireContext(WwClass ww_class = WwClass::kWaitDie);
  // Aborts (debug builds) if reservations are still held with this ticket.
  ~WwAcquireContext();
  WwAcquireContext(const WwAcquireContext&) = delete;
  WwAcquireContext& operator=(const WwAcquireContext&) = delete;

  std::uint64_t stamp() const { return stamp_; }
  WwClass ww_class() const { return class_; }
  // True when this ticket is older (wins contention against) `other`.
  bool IsOlderThan(const WwAcquireContext& other) const { return stamp_ < other.stamp_; }
  // Number of reservations currently locked with this ticket.
  int acquired() const { return acquired_.load(std::memory_order_acquire); }
  // True when an older ticket wounded this one (kWoundWait): its next blocking lock backs off.
  bool wounded() const { return wounded_.load(std::memory_order_acquire); }
  // Marks the acquire phase finished (ww_acquire_done): further Lock calls with this ticket are
  // API misuse (kInvalid) until every reservation has been unlocked.
  void Done() { done_ = true; }
  bool done() const { return done_; }

  // --- Back-off from locks taken on the ticket's behalf (owner thread only) ---
  // An eviction walk that ticket-locks a victim for this ticket and meets kDeadlock records the
  // contended reservation here (with what keeps it alive) before it returns kDeadlock; the
  // ExecContext running the transaction takes it, backs off and LockSlows it first on the retry.
  // A caller without an ExecContext takes it itself.
  void SetContended(Reservation* resv, std::shared_ptr<const void> keep_alive);
  Reservation* TakeContended(std::shared_ptr<const void>* keep_alive);
  // Reservations this ticket holds only as eviction victims (locked after a back-off, not
  // members of the transaction): an eviction walk of this ticket may evict their objects.
  void AddVictim(const Reservation* resv);
  void RemoveVictim(const Reservation* resv);
  bool IsVictim(const Reservation* resv) const;

 private:
  friend class Reservation;

  const std::uint64_t stamp_;
  const WwClass class_;
  // Where this ticket's waits park, so that a wound can wake it (see reservation.cc).
  const std::unique_ptr<internal::Parker> parker_;
  std::atomic<int> acquired_{0};
  std::atomic<bool> wounded_{false};
  bool done_ = false;  // owner thread only
  // Owner thread only.
  Reservation* contended_ = nullptr;
  std::shared_ptr<const void> contended_keep_alive_;
  std::vector<const Reservation*> victims_;
};

}  // namespace uttm

#endif  // UTTM_WW_ACQUIRE_CONTEXT_H_
