// Copyright (c) uttm developers.
//
// bo_swapout.h: the legacy watermark swapout (TTM's ttm_bo_swapout, ttm_device_swapout,
// ttm_global_swapout in drivers/gpu/drm/ttm/ttm_bo.c and ttm_device.c).
//
// GlobalSwapout walks the devices drawing pages from one MemoryContext (TTM's global device list;
// here each context keeps its own, so two runtimes never swap each other's objects); the first
// device that swaps something out goes to the back of the list (round-robin fairness) and its
// result is returned. DeviceSwapout tries each use_tt manager
// (SYSTEM first) with try-locks only and stops at the first object swapped. Every swapout has a
// reason (the 2023 TTM swapout RFC's ttm_shrink_reason):
//   kWatermark  a populate found pages_limit reached (InstallWatermarkSwapout): the path below;
//   kPurge      only don't-need objects (and zombies), purged: the cheap first answer to pressure
//               (every other object is skipped);
//   kSwap       everything eligible is backed up: the debug trigger (TtShrink) and hibernation
//               (SwapoutAll).
// The reasons pick objects; uttm's reclaim from memory pressure stays the driver's own shrinker
// (bo_shrinker.h), as the RFC's review asked (TTM offers the walk and the helpers, the driver
// registers the shrinker): its purge pass is kPurge's work, its backup pass kSwap's.
// Per object:
//   pinned, not eviction-valuable, no page vector, unpopulated, EXTERNAL or already swapped:
//     skipped;
//   a zombie (deleted): waits idle, is cleaned up, counts its pages; a zombie still busy ends the
//     walk with kNoSpace (the RFC: its EBUSY becomes ENOSPC) instead of being skipped;
//   kDontNeed: purged (as xe purges in its swap notifier); with kPurge anything else is skipped;
//   on a device with budgets (budget.h), an object whose client is within its effective min in
//   the object's region: skipped; within its low: skipped unless a first round over every
//   manager found nothing else to swap out;
//   outside SYSTEM: moved to SYSTEM first (kNoMemory/kNoSpace: skipped);
//   then waits idle, SwapNotify, PageVector::Swapout to the device's backup store, and the
//   resource moves to the unevictable list. The pages come back on the next populate.
//
// InstallWatermarkSwapout plugs GlobalSwapout into MemoryContext::set_over_limit, so a populate
// over pages_limit swaps other objects out first (and fails with kNoMemory if nothing can go).
//
// Errors: the first error other than "skipped" ends the walk and is returned.
// Locking: never blocks on a reservation. Unlike TTM, which holds ttm_global_mutex across
// ttm_global_swapout, no device-list lock is held while a device is walked (its GPU waits and
// moves, which may populate and so swap out again from inside): the walk visits a snapshot whose
// devices cannot be removed until it is done, so driver callbacks run from it must not destroy a
// device of that context.
#ifndef UTTM_BO_SWAPOUT_H_
#define UTTM_BO_SWAPOUT_H_

#include <cstdint>

#include "uttm/device.h"
#include "uttm/export.h"
#include "uttm/memory_context.h"
#include "uttm/operation_context.h"
#include "uttm/status.h"

namespace uttm {

// Why a swapout runs (see the file comment).
enum class ShrinkReason { kWatermark, kPurge, kSwap };
UTTM_EXPORT const char* ShrinkReasonName(ShrinkReason reason);

// Swaps out (or purges) at least one object of `device`. Returns pages freed (0: nothing
// possible).
UTTM_EXPORT Result<std::uint64_t> DeviceSwapout(Device& device, OperationContext& ctx,
                                                ShrinkReason reason = ShrinkReason::kWatermark);

// One round over the devices whose page vectors draw on `memory` (ttm_global_swapout, with the
// memory context as the scope of "global"): the first device that frees something wins and
// goes to the back of the list. Returns pages freed (0: nothing possible).
UTTM_EXPORT Result<std::uint64_t> GlobalSwapout(OperationContext& ctx, MemoryContext& memory,
                                                ShrinkReason reason = ShrinkReason::kWatermark);

// Swaps out everything it can from `device` (hibernation; ttm_device_prepare_hibernation), for
// kSwap. Returns the total pages freed.
UTTM_EXPORT Result<std::uint64_t> SwapoutAll(Device& device, OperationContext& ctx);

// The debugfs tt_shrink trigger: the result of one GlobalSwapout over `memory` for kSwap with a
// default operation context.
UTTM_EXPORT Result<std::uint64_t> TtShrink(MemoryContext& memory);

// memory.set_over_limit(GlobalSwapout over the devices using `memory`).
UTTM_EXPORT void InstallWatermarkSwapout(MemoryContext& memory);

}  // namespace uttm

#endif  // UTTM_BO_SWAPOUT_H_
