// Copyright (c) uttm developers.
//
// exec_context.h: lock a set of reservations together, backing off and retrying on contention
// (the kernel's drm_exec).
//
//   ExecContext exec(ExecContext::kInterruptible, stop);
//   Status st = exec.Run([&](ExecContext& e) -> Status {
//     UTTM_RETURN_IF_ERROR(e.Prepare(&resv_a, 1));   // lock + reserve one fence slot
//     UTTM_RETURN_IF_ERROR(e.Prepare(&resv_b, 1));
//     return Status();
//   });
//   if (st.ok()) { ... add fences; the locks drop when `exec` goes out of scope ... }
//
// Run calls the body until it gets through without contention. When a Lock/Prepare meets
// kDeadlock, the context unlocks everything, remembers the contended reservation and the body's
// kDeadlock makes Run LockSlow that reservation first and call the body again (a later Lock of
// it inside the body is then a no-op). The same holds for a kDeadlock met by an eviction walk
// inside the body (a BufferObject::Validate that ticket-locks a victim): the walk records the
// victim's reservation in the ticket, the context backs off and LockSlows it first, and holds it
// as an eviction victim (WwAcquireContext::IsVictim) that the next pass's walks may evict, until
// the body locks it as a member or the context unlocks. The ticket keeps its age across retries, so
// the context only gets older and eventually wins. A body that swallows kDeadlock is a bug: Run
// notices and returns kInvalid. Any other error from the body unlocks everything and is returned.
//
// Flags: kInterruptible waits honour `stop` (kInterrupted); kIgnoreDuplicates makes locking a
// reservation this context already holds a success (else it is kAlready).
//
// References: Prepare/Lock take an optional `keep_alive` (e.g. the shared_ptr of the buffer
// object that owns the reservation); it is held until that reservation is unlocked.
//
// Reuse: after a successful Run the reservations stay locked; call Fini() before running another
// transaction with the same context (the ticket, and so the context's age, is kept).
//
// Thread-safety: an ExecContext is used by one thread at a time. Reservations it holds are released
// by Fini() or the destructor.
#ifndef UTTM_EXEC_CONTEXT_H_
#define UTTM_EXEC_CONTEXT_H_

#include <memory>
#include <span>
#include <stop_token>
#include <utility>
#include <vector>

#include "uttm/export.h"
#include "uttm/operation_context.h"
#include "uttm/reservation.h"
#include "uttm/status.h"
#include "uttm/ww_acquire_context.h"

namespace uttm {

class UTTM_EXPORT ExecContext {
 public:
  enum Flags : unsigned {
    kNone = 0,
    kInterruptible = 1u << 0,
    kIgnoreDuplicates = 1u << 1,
  };

  explicit ExecContext(unsigned flags = kNone, std::stop_token stop = {},
                       WwClass ww_class = WwClass::kWaitDie);
  ~ExecContext() { Fini(); }
  ExecContext(const ExecContext&) = delete;
  ExecContext& operator=(const ExecContext&) = delete;

  // Runs `body` (callable as Status(ExecContext&)) until it completes without contention. See
  // the file comment.
  template <typename Body>
  Status Run(Body&& body) {
    while (true) {
      UTTM_RETURN_IF_ERROR(BeginPass());
      Status status = body(*this);
      UTTM_RETURN_IF_ERROR(EndPass(std::move(status)));
      if (!retry_) return Status();
    }
  }

  // Locks `resv` with this context's ticket and keeps it locked. kDeadlock means "return it from
  // the body" (everything was already unlocked); kAlready without kIgnoreDuplicates;
  // kInterrupted; kInvalid (null).
  Status Lock(Reservation* resv, std::shared_ptr<const void> keep_alive = nullptr);
  // Lock + ReserveFences(num_fences).
  Status Prepare(Reservation* resv, unsigned num_fences,
                 std::shared_ptr<const void> keep_alive = nullptr);
  // Locks every reservation of `resvs` with Prepare.
  Status PrepareArray(std::span<Reservation* const> resvs, unsigned num_fences);
  // Unlocks one reservation held by this context early (drm_exec_unlock_obj). kNotFound if not
  // held.
  Status Unlock(Reservation* resv);
  // Unlocks everything and drops the references; the context may Run again afterwards.
  void Fini();

  // Reservations currently held, in locking order.
  std::vector<Reservation*> locked() const;
  bool IsLocked(const Reservation* resv) const;
  // The reservation that caused the last back-off (null if none is pending).
  Reservation* contended() const { return contended_.resv; }
  // How many times Run had to back off and retry (statistics for tests and benchmarks).
  unsigned retries() const { return retries_; }
  WwAcquireContext& ticket() { return ticket_; }

 private:
  struct Entry {
    Reservation* resv = nullptr;
    std::shared_ptr<const void> keep_alive;
    bool victim = false;  // locked after an eviction walk's back-off, not by the body
  };

  Status BeginPass();
  Status EndPass(Status body_status);
  void UnlockAll();
  OperationContext LockContext() const;

  const unsigned flags_;
  const std::stop_token stop_;
  WwAcquireContext ticket_;
  std::vector<Entry> objects_;
  Entry contended_;  // to LockSlow at the start of the next pass
  Entry prelocked_;  // locked by BeginPass; the body's Lock of it is a no-op
  bool retry_ = false;
  unsigned retries_ = 0;
};

}  // namespace uttm

#endif  // UTTM_EXEC_CONTEXT_H_
