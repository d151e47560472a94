// Copyright (c) uttm developers.
//
// reclaim_hook.h: the direct-reclaim entry point an allocator calls when it is short of memory.
//
// A page provider (or any allocator with a limit) that cannot get memory, or that would pass its
// limit, calls ReclaimPages(target, ctx) with a *direct* context (background = false) and then
// retries its allocation once before failing with kNoMemory. The Reclaimer implements it by
// running every registered shrinker synchronously in the caller's thread.
//
// Thread-safety: ReclaimPages may be called from any thread, concurrently, and while the caller
// holds its own locks (shrinkers only try-lock objects). It must not be called from inside a
// shrinker's Scan of the same Reclaimer (recursion is refused and returns 0).
#ifndef UTTM_RECLAIM_HOOK_H_
#define UTTM_RECLAIM_HOOK_H_

#include <cstdint>

#include "uttm/export.h"
#include "uttm/shrinker.h"
#include "uttm/status.h"

namespace uttm {

class UTTM_EXPORT ReclaimHook {
 public:
  virtual ~ReclaimHook() = default;
  // Tries to free about `target_pages` 4 KiB pages in context `ctx`. Returns the pages actually
  // freed (0 when nothing could be freed). Never blocks on the GPU unless ctx.background.
  virtual std::uint64_t ReclaimPages(std::uint64_t target_pages, const ReclaimContext& ctx) = 0;
  // Reclaim passes running right now on any thread (0 when unknown). A charge whose own reclaim
  // freed nothing waits while others run: they hold objects it could not lock, and will free
  // them or let them go.
  virtual std::uint32_t reclaims_in_flight() const { return 0; }
  // After a ReclaimPages that freed nothing: what blocks reclaim (Shrinker::blocked of a
  // registered shrinker, e.g. a full backup store), for the allocation's error; OK if unknown.
  virtual Status ShortfallReason() const { return Status(); }
};

}  // namespace uttm

#endif  // UTTM_RECLAIM_HOOK_H_
