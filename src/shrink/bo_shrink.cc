// Copyright (c) uttm developers.
#include "uttm/bo_shrink.h"

#include "bo/bo_internal.h"

#include "uttm/device.h"
#include "uttm/lru_walk.h"
#include "uttm/placement.h"
#include "uttm/resource_manager.h"

namespace uttm {

bool ShrinkSuitable(const BufferObject& bo, const OperationContext& ctx) {
  const PageVector* tt = bo.tt();
  // Pages held: a populated vector, or a partial one (the rest of a backup, a failed restore).
  if (tt == nullptr || tt->resident_pages().value() == 0) return false;
  if (bo.pin_count() > 0) return false;
  return !ctx.no_wait_gpu || bo.resv()->TestSignaled(ResvUsage::kBookkeep);
}

Result<std::int64_t> Shrink(OperationContext& ctx, BufferObject& bo, const ShrinkFlags& flags) {
  bo.resv()->AssertHeld();
  if (bo.tt() == nullptr) return Status(Errc::kBusy, "object has no page vector");
  if (flags.allow_move && bo.resource() != nullptr && bo.resource()->mem_type() != kMemSystem) {
    Status s = bo.Validate(Placement{Place{.mem_type = kMemSystem}}, ctx);
    if (s.code() == Errc::kNoMemory || s.code() == Errc::kNoSpace) {
      return Status(Errc::kBusy, "no room to move the object to SYSTEM");
    }
    UTTM_RETURN_IF_ERROR(s);
  }
  UTTM_RETURN_IF_ERROR(bo.WaitIdle(ctx));
  PageVector* tt = bo.tt();
  if (tt == nullptr || tt->resident_pages().value() == 0) return std::int64_t{0};

  // Out of its bulk move while the pages go (the kernel's del_bulk_move); the LRU position is
  // kept, so a failed object is not revisited by the walk that found it.
  LruBulkMove* bulk = nullptr;
  if (Resource* res = bo.resource(); res != nullptr) {
    MutexLock lock(bo.device().lru().lock());
    bulk = res->bulk_move();
    if (bulk != nullptr) bo.device().lru().SetBulkMove(res, nullptr);
  }
  // A clean copy is given up without a write only if nothing may have written the pages since.
  internal::BoInternal::DropStaleCleanCopy(bo);
  BackupOptions opts{.purge = flags.purge, .writeback = flags.writeback};
  Result<PageCount> r = tt->Backup(
      opts, tt->backup_store() != nullptr ? tt->backup_store() : bo.device().backup_store());
  const bool backed_up = r.ok() && r->value() > 0;
  // Fully backed up: to the unevictable list (pinned or swapped objects live there); a partial
  // vector still holds pages and stays on its LRU list.
  if (backed_up) internal::BoInternal::UpdateLruState(bo);
  if (bulk != nullptr && bo.resource() != nullptr) {
    MutexLock lock(bo.device().lru().lock());
    bo.device().lru().SetBulkMove(bo.resource(), bulk);
  }
  if (!r.ok()) {
    if (r.code() == Errc::kInterrupted || r.code() == Errc::kNoSpace) return r.status();
    return Status(Errc::kBusy, r.status().message());
  }
  const std::uint64_t pages = r->value();
  if (pages > 0) {
    // The vector lost its pages outside TtUnpopulate: tell the driver (its accounting), as
    // ttm_tt_swapout does. A no-op for the pages themselves.
    bo.device().funcs().TtUnpopulate(bo, *tt);
    if (flags.purge) {
      ctx.pages_purged += pages;
      if (bo.madvice() == Madvice::kDontNeed) internal::BoInternal::MarkPurged(bo);
    } else {
      ctx.pages_backed_up += pages;
    }
  }
  return static_cast<std::int64_t>(pages);
}

std::uint64_t DropCleanCopies(Device& device) {
  std::uint64_t dropped = 0;
  for (MemType t = 0; t < kNumMemTypes; ++t) {
    ResourceManager* man = device.manager(t);
    if (man == nullptr || !man->use_tt()) continue;
    OperationContext ctx;
    ctx.interruptible = false;
    ctx.trylock_only = true;
    ctx.no_wait_gpu = true;
    LruWalkArg arg{.ctx = &ctx, .ticket = nullptr, .trylock_only = true};
    ReservedBoCursor cursor(&device, man, arg);
    for (;;) {
      Result<BufferObject*> next = cursor.Next();
      if (!next.ok() || *next == nullptr) break;
      PageVector* tt = (*next)->tt();
      if (tt == nullptr || !tt->has_clean_copy()) continue;
      dropped += tt->clean_pages().value();
      tt->DropCleanCopy();
    }
  }
  return dropped;
}

}  // namespace uttm
