// Copyright (c) uttm developers.
//
// bo_shrink.h: the per-object shrink helpers drivers build their shrinkers from (TTM's
// ttm_bo_shrink_suitable, ttm_bo_shrink_avoid_wait and ttm_bo_shrink in ttm_bo_util.c).
//
// Shrink(ctx, bo, flags) with the reservation held:
//   1. allow_move and not in SYSTEM: Validate to SYSTEM; kNoMemory/kNoSpace become kBusy, other
//      errors are returned. (allow_move = false for zombies and ghosts: they are purged in place.)
//   2. WaitIdle(ctx): kBusy with no_wait_gpu, kInterrupted.
//   3. The resource leaves its bulk move (keeping its LRU position) while PageVector::Backup runs
//      with the vector's (or else the device's) store.
//   4. Something backed up: the resource goes to the unevictable list. Either way it rejoins its
//      bulk move (a no-op for the unevictable list until it is populated again).
//   5. kInterrupted, and kNoSpace from the store (it is full: no other object will fit either, so
//      the caller's walk should end, as ttm_lru_walk_for_evict ends on an error), are returned;
//      other errors become kBusy ("skip this object").
// Returns the pages backed up or purged; after a successful one the driver's TtUnpopulate runs on
// the emptied vector so its accounting sees the pages go. After a purge (flags.purge) of an object
// the user marked kDontNeed, the object is marked kPurged (its contents read back as zeros).
//
// Locking: REQUIRES the object's reservation; never takes another object's reservation.
#ifndef UTTM_BO_SHRINK_H_
#define UTTM_BO_SHRINK_H_

#include <cstdint>

#include "uttm/buffer_object.h"
#include "uttm/export.h"
#include "uttm/operation_context.h"
#include "uttm/shrinker.h"
#include "uttm/status.h"

namespace uttm {

struct ShrinkFlags {
  // Drop the contents instead of backing them up (pages go straight back to the OS).
  bool purge = false;
  // Ask the store to start writeback now.
  bool writeback = false;
  // Move the object to SYSTEM first when it is elsewhere (not for zombies or ghosts).
  bool allow_move = false;
};

// Has a page vector, populated (and not swapped), not pinned, and idle unless waiting is allowed
// (!ctx.no_wait_gpu). Read under the reservation.
UTTM_EXPORT bool ShrinkSuitable(const BufferObject& bo, const OperationContext& ctx);

// Direct reclaim must not wait for the device; background reclaim may.
inline bool ShrinkAvoidWait(const ReclaimContext& rc) { return !rc.background; }

// See the file comment. Returns pages freed or backed up (0: nothing to do), kBusy (skip),
// kInterrupted, kNoSpace (the store is full), or a validate error other than kNoMemory/kNoSpace.
UTTM_EXPORT Result<std::int64_t> Shrink(OperationContext& ctx, BufferObject& bo,
                                        const ShrinkFlags& flags);

// Drops the clean copies (PageVector::DropCleanCopy) of the device's evictable objects, each
// taken with a trylock (a locked object keeps its copy), to give their store space to backups
// when the store is full. Returns the pages whose copy went. Locking: takes the LRU lock and
// object reservations (trylock); the caller may hold one object's reservation (it is skipped),
// not the LRU lock.
UTTM_EXPORT std::uint64_t DropCleanCopies(Device& device);

}  // namespace uttm

#endif  // UTTM_BO_SHRINK_H_
