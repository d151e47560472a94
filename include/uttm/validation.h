// Copyright (c) uttm developers.
//
// validation.h: a transaction that locks and validates a set of buffer objects of one device
// with exhaustive eviction (xe_validation in drivers/gpu/drm/xe/xe_validation.c, in user space).
//
//   Validation v(device);
//   Status s = v.Run([&](ExecContext& exec) -> Status {
//     for (BufferObject* bo : set) {
//       UTTM_RETURN_IF_ERROR(exec.Prepare(bo->resv(), 1));
//       bo->resv()->AssertHeld();
//       UTTM_RETURN_IF_ERROR(bo->Validate(vram, ctx));
//     }
//     return Status();
//   });
//   if (s.ok()) { ... every object is placed and locked: add fences, submit ... }
//   v.Fini();  // or let it go out of scope
//
// The body runs inside an ExecContext (exec_context.h) whose ticket the validations' eviction
// walks use: a victim held by another transaction is ticket-locked (one per walk); a kDeadlock
// there makes the context back off, lock that victim first and run the body again, holding it as
// an eviction victim that the next pass may evict. Each pass holds the device's validation lock
// shared. When the body still fails for lack of room (kNoMemory or kNoSpace: other transactions
// held what it had to evict), the transaction runs once more holding the lock exclusively: no
// other Validation runs meanwhile, so every object it must evict can be locked, and a set of
// objects that fits into the placement together does fit. A second failure is final.
//
// Errors: the body's (kInterrupted, a driver's move error, ...), or kNoMemory / kNoSpace after
// the exclusive retry. kDeadlock never escapes (the context retries).
//
// Thread-safety: one thread runs a Validation at a time; the locks it holds (the validation lock
// and the reservations) are released by Fini or the destructor. Never nest two Validations of one
// device in one thread (the exclusive retry would wait for the outer one's shared hold).
#ifndef UTTM_VALIDATION_H_
#define UTTM_VALIDATION_H_

#include <stop_token>

#include "uttm/device.h"
#include "uttm/exec_context.h"
#include "uttm/export.h"
#include "uttm/status.h"

namespace uttm {

class UTTM_EXPORT Validation {
 public:
  explicit Validation(Device* device, unsigned exec_flags = ExecContext::kNone,
                      std::stop_token stop = {});
  ~Validation() { Fini(); }
  Validation(const Validation&) = delete;
  Validation& operator=(const Validation&) = delete;

  // Runs `body` (callable as Status(ExecContext&)) as described above; on success the objects it
  // locked stay locked (and the validation lock held) until Fini.
  template <typename Body>
  Status Run(Body&& body) {
    Fini();
    LockShared();
    Status s = exec_.Run(body);
    if (s.code() == Errc::kNoMemory || s.code() == Errc::kNoSpace) {
      exec_.Fini();
      LockExclusive();
      exclusive_retry_ = true;
      ++exclusive_retries_;
      s = exec_.Run(body);
    }
    if (!s.ok()) Fini();
    return s;
  }
  // Unlocks every reservation and the validation lock.
  void Fini();

  ExecContext& exec() { return exec_; }
  // Back-offs of the context over every Run so far (wound-wait contention, own or the walks').
  unsigned backoffs() const { return exec_.retries(); }
  // Whether the last Run needed the exclusive retry, and how many Runs did.
  bool exclusive_retry() const { return exclusive_retry_; }
  unsigned exclusive_retries() const { return exclusive_retries_; }

 private:
  void LockShared();
  void LockExclusive();

  Device* const device_;
  ExecContext exec_;
  enum class Held { kNone, kShared, kExclusive } held_ = Held::kNone;
  bool exclusive_retry_ = false;
  unsigned exclusive_retries_ = 0;
};

}  // namespace uttm

#endif  // UTTM_VALIDATION_H_
