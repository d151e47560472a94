// Copyright (c) uttm developers.
//
// device_funcs.h: the driver callbacks of a device (TTM's ttm_device_funcs).
//
// A driver (the simulated GPU, a test driver, later a CUDA backend) implements this small class.
// The core calls it with the buffer object's reservation held. Callbacks must not take the
// device LRU lock themselves; they may call the BufferObject move helpers (MoveNull,
// MoveMemcpy, MoveAccelCleanup) that do. Those helpers are annotated UTTM_REQUIRES(resv()); a
// callback tells clang's analysis that the reservation is held with bo.resv()->AssertHeld().
//
//   TtCreate     make the page vector for a buffer object (default: a cached PageVector of the
//                object's size in the device's MemoryContext, with the given flags).
//   TtPopulate   give the page vector its pages (default: restore if backed up, else populate).
//   TtUnpopulate take them back (default: PageVector::Unpopulate).
//   EvictionValuable  would evicting `bo` help an allocation at `place`? (default: SYSTEM: yes;
//                else the manager's Intersects).
//   EvictFlags   where an evicted object goes; an empty placement purges it ("gutting"). Must not
//                need a multihop.
//   Move         move `bo` into `new_res` (allocated by the caller). On success the driver has
//                handed `new_res` to one of the move helpers. Returns kMultihop with `*hop` set
//                to a TEMPORARY place when the move must bounce through it; `new_res` is then
//                left untouched. Any other error leaves the object where it was. A Move may
//                wait for the device and may populate page vectors (a charge over the page
//                limit then runs the watermark swapout, possibly from inside one): no device
//                list lock is held around it (MemoryContext::ForEachUser runs unlocked). It
//                must not destroy a device of its own memory context.
//   AccessMemory CPU address of a non-page-vector resource (VRAM) or null if not CPU visible.
//   SwapNotify, ReleaseNotify, DeleteMemNotify: hooks before a legacy swapout, the final release,
//                and freeing the backing memory.
//   MadviseNotify the object's purgeability advice changed (BufferObject::Madvise, MarkPurged);
//                the reclaim accounting (BoShrinker) moves its pages between counters.
//   PinNotify    the object's pin count went from 0 to 1 or back to 0 (BufferObject::Pin,
//                Unpin, and the release of a pinned object); pinned pages cannot be reclaimed,
//                so the reclaim accounting leaves them out while pinned (as xe_bo_pin does).
//   TtUnpopulate is also called for ghosts' page vectors and, with the vector already
//                unpopulated, right after a legacy swapout or a shrink (backup/purge) took its
//                pages (as TTM's ttm_tt_swapout ends in ttm_tt_unpopulate), so accounting sees
//                every page leave.
//
// Thread-safety: callbacks are invoked concurrently for different buffer objects.
#ifndef UTTM_DEVICE_FUNCS_H_
#define UTTM_DEVICE_FUNCS_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "uttm/export.h"
#include "uttm/operation_context.h"
#include "uttm/page_vector.h"
#include "uttm/placement.h"
#include "uttm/resource.h"
#include "uttm/status.h"

namespace uttm {

class BufferObject;

class UTTM_EXPORT DeviceFuncs {
 public:
  virtual ~DeviceFuncs() = default;

  virtual Result<std::unique_ptr<PageVector>> TtCreate(BufferObject& bo, std::uint32_t page_flags);
  virtual Status TtPopulate(BufferObject& bo, PageVector& tt, OperationContext& ctx);
  virtual void TtUnpopulate(BufferObject& bo, PageVector& tt);

  virtual bool EvictionValuable(const BufferObject& bo, const Place& place);
  virtual void EvictFlags(const BufferObject& bo, Placement* placement) = 0;
  virtual Status Move(BufferObject& bo, bool evict, OperationContext& ctx,
                      std::unique_ptr<Resource>& new_res, Place* hop) = 0;
  virtual std::byte* AccessMemory(const Resource& res);

  virtual void SwapNotify(BufferObject& bo);
  virtual void ReleaseNotify(BufferObject& bo);
  virtual void DeleteMemNotify(BufferObject& bo);
  virtual void MadviseNotify(BufferObject& bo);
  virtual void PinNotify(BufferObject& bo);
};

}  // namespace uttm

#endif  // UTTM_DEVICE_FUNCS_H_
