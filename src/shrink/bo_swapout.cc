// Copyright (c) uttm developers.
#include "uttm/bo_swapout.h"

#include "bo/bo_internal.h"

#include "uttm/bo_shrink.h"
#include "uttm/buffer_object.h"
#include "uttm/lru_walk.h"
#include "uttm/stats.h"

namespace uttm {
namespace {

Status Skip(const char* why) { return Status(Errc::kBusy, why); }

// ttm_bo_swapout_cb, with the RFC's reason, and the budgets' protection of the object's client
// (bo_shrinker.h), by ProtectionRound.
Result<std::int64_t> SwapoutOne(BufferObject& bo, OperationContext& ctx, ShrinkReason reason,
                                ProtectionRound round, bool* hit_low) {
  bo.resv()->AssertHeld();
  const Resource* res = bo.resource();
  if (bo.pin_count() > 0 || res == nullptr) return Skip("pinned or not placed");
  if (!bo.device().funcs().EvictionValuable(bo, Place{.mem_type = res->mem_type()})) {
    return Skip("not eviction-valuable");
  }
  PageVector* tt = bo.tt();
  // EXTERNAL vectors are not the pool's; EXTERNAL_MAPPABLE ones are a driver shrinker's.
  if (tt == nullptr || !tt->is_populated() || tt->is_swapped() ||
      (tt->flags() & (kPageVectorExternal | kPageVectorExternalMappable)) != 0) {
    return Skip("no swappable page vector");
  }
  const std::int64_t pages = static_cast<std::int64_t>(tt->num_pages().value());
  if (bo.deleted()) {
    Status idle = bo.WaitIdle(ctx);
    if (idle.code() == Errc::kBusy) {
      return Status(Errc::kNoSpace, "a busy zombie ends the swapout walk");
    }
    UTTM_RETURN_IF_ERROR(idle);
    internal::BoInternal::CleanupMemtypeUse(bo);
    return pages;
  }
  if (bo.madvice() == Madvice::kDontNeed) {
    return Shrink(ctx, bo, ShrinkFlags{.purge = true, .writeback = false, .allow_move = true});
  }
  if (reason == ShrinkReason::kPurge) return Skip("not purgeable (a purge-only swapout)");
  if (BudgetTree* budgets = bo.device().budgets(); budgets != nullptr) {
    const int region = bo.device().budget_region(res->mem_type());
    if (!budgets->MayReclaim(bo.budget_group(), region, round, hit_low)) {
      return Skip("its client is protected in this round");
    }
  }
  if (res->mem_type() != kMemSystem) {
    Status s = bo.Validate(Placement{Place{.mem_type = kMemSystem}}, ctx);
    if (s.code() == Errc::kNoMemory || s.code() == Errc::kNoSpace) return Skip("no room in SYSTEM");
    UTTM_RETURN_IF_ERROR(s);
  }
  UTTM_RETURN_IF_ERROR(bo.WaitIdle(ctx));
  BackupStore* store = bo.device().backup_store();
  if (store == nullptr) return Skip("device has no backup store");
  bo.device().funcs().SwapNotify(bo);
  tt = bo.tt();
  if (tt == nullptr || !tt->is_populated()) return std::int64_t{0};
  Result<PageCount> r = tt->Swapout(store);
  if (r.ok()) {
    // As ttm_tt_swapout ends in ttm_tt_unpopulate: the driver's accounting sees the pages go.
    bo.device().funcs().TtUnpopulate(bo, *tt);
    bo.device().stats().Add(Stat::kSwapouts);
    // Swapped: to the unevictable list. A failed object keeps its LRU place, so this walk does
    // not meet it again at the tail (with a full store that was an endless loop).
    internal::BoInternal::UpdateLruState(bo);
  }
  if (!r.ok()) {
    if (r.code() == Errc::kNoMemory) return Skip("no memory for the swapout");
    // A full store ends the walk (as an error ends ttm_lru_walk_for_evict): every other object
    // would fail the same way, each after writing pages that are then thrown away.
    if (r.code() == Errc::kNoSpace) {
      return Status(Errc::kNoSpace, "backup store full: " + std::string(r.status().message()));
    }
    return r.status();
  }
  return static_cast<std::int64_t>(r->value());
}

}  // namespace

const char* ShrinkReasonName(ShrinkReason reason) {
  switch (reason) {
    case ShrinkReason::kWatermark:
      return "watermark";
    case ShrinkReason::kPurge:
      return "purge";
    case ShrinkReason::kSwap:
      return "swap";
  }
  return "?";
}

Result<std::uint64_t> DeviceSwapout(Device& device, OperationContext& ctx, ShrinkReason reason) {
  // Every page vector of the device is its shrinker's (EXTERNAL_MAPPABLE): nothing to walk.
  if (device.shrinker_owns_tt()) return std::uint64_t{0};
  OperationContext walk_ctx = ctx;
  walk_ctx.trylock_only = true;
  // Objects of clients above their high first (when any has one); of low-protected clients
  // only in a last round, when nothing else was found.
  bool hit_low = false;
  const bool any_high = device.budgets() != nullptr && device.budgets()->HasHighLimits();
  for (ProtectionRound round :
       {ProtectionRound::kOverHigh, ProtectionRound::kUnprotected, ProtectionRound::kLow}) {
    if (round == ProtectionRound::kOverHigh && !any_high) continue;
    if (round == ProtectionRound::kLow && !hit_low) break;
    for (MemType t = 0; t < kNumMemTypes; ++t) {
      ResourceManager* man = device.manager(t);
      if (man == nullptr || !man->use_tt()) continue;
      LruWalkArg arg{.ctx = &walk_ctx, .ticket = nullptr, .trylock_only = true};
      Result<std::int64_t> r =
          LruWalkForEvict(&device, man, arg, 1, [&](BufferObject& bo, OperationContext& c) {
            return SwapoutOne(bo, c, reason, round, &hit_low);
          });
      if (!r.ok()) return r.status();
      if (*r > 0) {
        ctx.pages_backed_up += static_cast<std::uint64_t>(*r);
        return static_cast<std::uint64_t>(*r);
      }
    }
  }
  return std::uint64_t{0};
}

Result<std::uint64_t> GlobalSwapout(OperationContext& ctx, MemoryContext& memory,
                                    ShrinkReason reason) {
  Device* winner = nullptr;
  Result<std::uint64_t> result = std::uint64_t{0};
  Device::ForEachDevice(memory, [&](Device& dev) {
    if (winner != nullptr) return;
    Result<std::uint64_t> r = DeviceSwapout(dev, ctx, reason);
    result = r;
    if (r.ok() && *r > 0) winner = &dev;
  });
  if (winner != nullptr) Device::RotateToBack(winner);
  return result;
}

Result<std::uint64_t> SwapoutAll(Device& device, OperationContext& ctx) {
  std::uint64_t total = 0;
  for (;;) {
    UTTM_ASSIGN_OR_RETURN(std::uint64_t n, DeviceSwapout(device, ctx, ShrinkReason::kSwap));
    if (n == 0) return total;
    total += n;
  }
}

Result<std::uint64_t> TtShrink(MemoryContext& memory) {
  OperationContext ctx;
  return GlobalSwapout(ctx, memory, ShrinkReason::kSwap);
}

void InstallWatermarkSwapout(MemoryContext& memory) {
  MemoryContext* m = &memory;
  memory.set_over_limit([m](const OperationContext& caller) -> Result<std::uint64_t> {
    OperationContext ctx = caller;
    ctx.trylock_only = true;
    return GlobalSwapout(ctx, *m, ShrinkReason::kWatermark);
  });
}

}  // namespace uttm
