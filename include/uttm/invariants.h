// Copyright (c) uttm developers.
//
// invariants.h: whole-system consistency checks over devices, their LRU lists, buffer objects,
// page vectors, the page pools and the backup stores (what the kernel's CONFIG_DRM_TTM debug
// checks and KUnit suites assert piecemeal, in one walk).
//
// CheckDeviceInvariants(device) checks one device:
//   * every list link is consistent (n->next->prev == n) and every resource is on exactly one
//     list: the unevictable list when it is marked unevictable, else its manager's list for its
//     priority; each manager's usage is the sum of its listed resources' sizes;
//   * every listed resource belongs to a live buffer object whose resource it is, with the
//     object's priority, and is unevictable exactly when the object is pinned or its page vector
//     is swapped out or fully backed up (BufferObject::UpdateLruState);
//   * an object in a device-only domain (a manager without page vectors) holds no pages and no
//     backup in its page vector; an object in a non-SYSTEM page-vector domain (TT) has its pages
//     present; every page vector passes PageVector::CheckConsistency;
//   * a pinned object is never purged and its page vector is populated when it lives in TT.
// CheckInvariants(memory, options) checks every device that draws pages from `memory` and then
// the totals no single device can see:
//   * pages charged to the context equal the sum of what the page vectors of those devices say
//     they have charged (a charged vector that no device reaches is a leak of budget);
//   * pages the context's provider has handed out equal the pages in its pools plus the pages
//     the page vectors hold (no page is leaked or counted twice);
//   * for each backup store used by those vectors: every handle is held by exactly one vector,
//     and the store's live pages equal the handles held (no slot leaks);
//   * each BoShrinker in `options` recounts to its kept counters (BoShrinker::CheckAccounting).
// The totals assume that every page vector of the context belongs to a buffer object of those
// devices, and that the stores serve only them (true for a runtime; not for a test that makes
// bare PageVectors beside devices).
//
// Errors: kCorrupt with a message naming the first violation found; kBusy when an object was
// locked by someone else (the check needs a quiescent point and only try-locks).
// Thread-safety: REQUIRES a quiescent point: no other thread creates, moves, shrinks or releases
// objects of the checked devices while a check runs (the delayed-delete worker is flushed first).
// Cost: linear in the objects and pages; cheap enough to run after every operation in tests.
#ifndef UTTM_INVARIANTS_H_
#define UTTM_INVARIANTS_H_

#include <vector>

#include "uttm/bo_shrinker.h"
#include "uttm/device.h"
#include "uttm/export.h"
#include "uttm/memory_context.h"
#include "uttm/status.h"

namespace uttm {

struct InvariantOptions {
  // Shrinkers whose kept counters are recounted (null entries are ignored).
  std::vector<BoShrinker*> shrinkers;
};

// Checks one device. See the file comment.
UTTM_EXPORT Status CheckDeviceInvariants(Device& device);

// Checks `memory`, every device drawing pages from it, their stores and the given shrinkers.
UTTM_EXPORT Status CheckInvariants(MemoryContext& memory, const InvariantOptions& options = {});

}  // namespace uttm

#endif  // UTTM_INVARIANTS_H_
