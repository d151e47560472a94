// Copyright (c) uttm developers.
//
// operation_context.h: the per-call policy and statistics block (TTM's ttm_operation_ctx).
//
// Every state-changing call (validate, populate, restore, evict, shrink) takes an
// OperationContext. Policy goes in; statistics come out. A context belongs to one caller and one
// thread at a time; it is not synchronised.
#ifndef UTTM_OPERATION_CONTEXT_H_
#define UTTM_OPERATION_CONTEXT_H_

#include <cstdint>
#include <stop_token>

namespace uttm {

class Reservation;

struct OperationContext {
  // --- Policy (inputs) ---

  // Waits may be interrupted: when `stop` is requested (or the "wait" fault point fires) a wait
  // returns kInterrupted and the operation keeps its state so it can be called again.
  bool interruptible = false;
  // Never wait for the device (fences): return kBusy where a wait would be needed.
  bool no_wait_gpu = false;
  // Allocation may fail instead of retrying hard (kernel __GFP_RETRY_MAYFAIL): a charge over the
  // page limit runs one round of direct reclaim, not up to 16, and does not wait for other
  // threads' progress, before it returns kNoMemory.
  bool gfp_retry_mayfail = false;
  // Buffer objects sharing `resv` (which the caller already holds) may be evicted by this call.
  bool allow_res_evict = false;
  const Reservation* resv = nullptr;
  // Only try-lock buffer objects during LRU walks (reclaim paths must never block on a lock).
  bool trylock_only = false;
  // Interrupt source for interruptible waits (the user-space stand-in for a pending signal).
  std::stop_token stop;

  // --- Statistics (outputs, accumulated; the caller resets them) ---

  // Bytes moved between placements by this context (a multihop counts every hop).
  std::uint64_t bytes_moved = 0;
  // Pages written to a backup store and pages read back from one.
  std::uint64_t pages_backed_up = 0;
  std::uint64_t pages_restored = 0;
  // Pages whose contents were dropped by contract (purgeable buffers).
  std::uint64_t pages_purged = 0;

  // True when an interruptible wait should stop now.
  bool interrupt_requested() const { return interruptible && stop.stop_requested(); }
};

}  // namespace uttm

#endif  // UTTM_OPERATION_CONTEXT_H_
