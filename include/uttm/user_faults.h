// Copyright (c) uttm developers.
//
// user_faults.h: CPU touches of missing pages, answered in user space (userfaultfd(2)).
//
// A UserFaults owns one userfaultfd and a few service threads. A caller adds ranges of its own
// anonymous private mappings, each with a handler; the kernel then stops a thread that touches a
// page missing from such a range and a service thread calls the range's handler, which is
// expected to put pages there (by moving them in with mremap, say). When the handler returns, the
// service wakes every thread waiting on the range; a thread that finds its page still missing
// faults again, and its handler is called again. This is how uttm restores an evicted buffer
// object when the CPU touches its mapping (mapping.h, kMapRestoreOnTouch), the way a kernel
// driver's fault handler (ttm_bo_vm_fault) brings an object back.
//
// Registration is per mapping, not per range: the kernel forgets it where a range's pages are
// replaced by mremap(MREMAP_FIXED), and keeps it on the empty mapping MREMAP_DONTUNMAP leaves
// behind. So a caller that moves pages in and out calls Arm before each move out (a range with
// pages present may be armed: only missing pages fault).
//
// A handler that cannot act now (a lock it would have to wait for) returns kBusy: the fault is
// retried about every millisecond while the service goes on with other faults, so one busy object
// never stalls the touches of others. Any other error ends the attempts for that fault (the
// handler has dealt with the range, e.g. made it inaccessible, and the thread is woken).
//
// Errors: Open gives kNotSupported when the kernel refuses userfaultfd to the process (seccomp, a
// kernel without it, vm.unprivileged_userfaultfd = 0 for an unprivileged process), with the reason;
// AddRange and Arm give kInvalid for a range that is not page aligned or not anonymous private
// memory of this process, kNoMemory when the kernel cannot split its mappings. Forked children
// are not served (their copies of the ranges read as zeros where pages are missing).
// Thread-safety: every method may be called from any thread, handlers included; handlers run on
// the service threads, several at a time (for the same range too: the fault of a second thread
// touching it), and must not touch a range of this service themselves.
#ifndef UTTM_USER_FAULTS_H_
#define UTTM_USER_FAULTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "uttm/export.h"
#include "uttm/status.h"

namespace uttm {

class UTTM_EXPORT UserFaults {
 public:
  // Receives the faults of one range.
  class Handler {
   public:
    virtual ~Handler() = default;
    // A thread touched `address` (inside the range) and no page is there; `write` when the access
    // was a write. OK or an error: kBusy to be called again shortly, anything else to give up on
    // this fault. Runs on a service thread.
    virtual Status OnFault(std::byte* address, bool write) = 0;
  };

  // Opens the userfaultfd and starts `threads` service threads (0: one per CPU, at most 4), which
  // take faults as they come, so that the restores of different ranges overlap. kNotSupported
  // (with the kernel's answer) where userfaultfd is refused.
  static Result<std::unique_ptr<UserFaults>> Open(unsigned threads = 0);
  // Stops the service threads. Every range must have been removed.
  ~UserFaults();
  UserFaults(const UserFaults&) = delete;
  UserFaults& operator=(const UserFaults&) = delete;

  // Serves [base, base + bytes) with `handler` (shared: a fault being handled keeps it alive after
  // RemoveRange) and arms it. kInvalid for a range overlapping one already added.
  Status AddRange(std::byte* base, std::size_t bytes, std::shared_ptr<Handler> handler);
  // Disarms and forgets the range added at `base` (threads waiting on it are woken); no-op when
  // there is none. The handler may still be running once more when this returns.
  void RemoveRange(std::byte* base);
  // Arms [base, base + bytes) (inside an added range) again: call before moving its pages out.
  Status Arm(std::byte* base, std::size_t bytes);

  // Faults served (handler called), retried after kBusy, and given up.
  std::uint64_t faults() const;
  std::uint64_t retries() const;
  std::uint64_t failures() const;

 private:
  struct Impl;
  explicit UserFaults(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace uttm

#endif  // UTTM_USER_FAULTS_H_
