// Copyright (c) uttm developers.
//
// shmem_tt.h: buffer objects whose page vector lives in a file (i915's TTM shmem tt, "drm/i915/ttm:
// add tt shmem backend" as merged in drivers/gpu/drm/i915/gem/i915_gem_ttm.c).
//
// A driver's TtCreate returns CreateShmemTt(...) for the objects it wants file-backed (i915: the
// shrinkable objects allowed only in system memory, with cached pages). The vector is EXTERNAL
// and EXTERNAL_MAPPABLE: the page limit never counts it, TTM's watermark swapout and the
// buffer-object shrinker never touch it, and the driver's EvictionValuable should refuse it
// (i915_ttm_eviction_valuable). Its file is created at the first populate, so an object that only
// ever lives in VRAM never gets one. ShmemTtShrink is what the driver's own shrinker calls for
// each object (i915_ttm_shrink):
//
//   no page vector, not file-backed, not populated, or not in a page-vector domain → 0
//   busy → kBusy with no_gpu_wait, else waits for it (kInterrupted, kBusy on timeout)
//   "don't need" → purged: the file is truncated, the advice becomes kPurged (sticky)
//   purged or already swapped → 0
//   otherwise → marked swapped and its pages released to the file: with `writeback` written and
//               dropped now, else left to the kernel's lazy reclaim; a failure undoes the mark
//
// and returns the pages released. The next CPU access or validation populates the vector again
// from the file, every byte as it was.
//
// Thread-safety: ShmemTtShrink needs the object's reservation (annotated).
#ifndef UTTM_SHMEM_TT_H_
#define UTTM_SHMEM_TT_H_

#include <cstdint>
#include <memory>

#include "uttm/buffer_object.h"
#include "uttm/export.h"
#include "uttm/page_vector.h"
#include "uttm/shmem_backing.h"
#include "uttm/status.h"

namespace uttm {

// The file-backed page vector of `bo` (for DeviceFuncs::TtCreate): its size, in the object's
// device memory context, with `page_flags` and EXTERNAL | EXTERNAL_MAPPABLE.
UTTM_EXPORT Result<std::unique_ptr<PageVector>> CreateShmemTt(const BufferObject& bo,
                                                              const ShmemBackingOptions& options,
                                                              std::uint32_t page_flags);

struct ShmemShrinkFlags {
  // Write the released pages back now (and drop them from the page cache).
  bool writeback = false;
  // Do not wait for a busy object (kBusy instead).
  bool no_gpu_wait = false;
};

// i915_ttm_shrink (see the file comment). Returns the pages released or purged.
UTTM_EXPORT Result<std::uint64_t> ShmemTtShrink(BufferObject& bo, const ShmemShrinkFlags& flags)
    UTTM_REQUIRES(bo.resv());

}  // namespace uttm

#endif  // UTTM_SHMEM_TT_H_
