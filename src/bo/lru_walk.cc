// Copyright (c) uttm developers.
#include "uttm/lru_walk.h"

namespace uttm {

ReservedBoCursor::ReservedBoCursor(Device* device, ResourceManager* man, const LruWalkArg& arg)
    : device_(device), man_(man), arg_(arg), cursor_(&device->lru()) {}

ReservedBoCursor::~ReservedBoCursor() {
  ReleaseCurrent();
  MutexLock lock(device_->lru().lock());
  cursor_.Fini();
}

void ReservedBoCursor::ReleaseCurrent() UTTM_NO_THREAD_SAFETY_ANALYSIS {
  if (bo_ == nullptr) return;
  if (needs_unlock_) bo_->resv()->Unlock();
  BufferObject* bo = bo_;
  bo_ = nullptr;
  needs_unlock_ = false;
  bo->Put();
}

Result<BufferObject*> ReservedBoCursor::Next() UTTM_NO_THREAD_SAFETY_ANALYSIS {
  ReleaseCurrent();
  OperationContext& ctx = *arg_.ctx;
  Lru& lru = device_->lru();
  lru.lock()->Lock();
  for (;;) {
    Resource* res = started_ ? cursor_.Next() : cursor_.First(man_);
    started_ = true;
    if (res == nullptr) break;
    BufferObject* bo = res->bo();
    if (bo == nullptr) continue;
    bool locked = false;
    bool needs_unlock = false;
    if (ctx.allow_res_evict && ctx.resv != nullptr && bo->resv() == ctx.resv) {
      locked = true;  // the caller already holds this reservation
    } else if (arg_.owner != nullptr && bo->resv()->IsLockedBy(arg_.owner) &&
               arg_.owner->IsVictim(bo->resv())) {
      locked = true;  // the caller's transaction holds it as an eviction victim
    } else if (bo->resv()->TryLock()) {
      locked = needs_unlock = true;
    }
    if (!locked &&
        (arg_.ticket == nullptr || ctx.no_wait_gpu || arg_.trylock_only || ctx.trylock_only)) {
      continue;
    }
    if (!bo->GetUnlessZero()) {
      if (needs_unlock) bo->resv()->Unlock();
      continue;
    }
    MemType mem_type = res->mem_type();
    lru.lock()->Unlock();
    Status lock_status;
    if (!locked) {
      lock_status = bo->resv()->Lock(arg_.ticket, ctx);
      if (lock_status.ok()) {
        locked = needs_unlock = true;
        arg_.ticket = nullptr;  // one ticketed lock per walk; back to try-locking
      }
    }
    if (locked && bo->resource() != nullptr && bo->resource()->mem_type() == mem_type) {
      bo_ = bo;
      needs_unlock_ = needs_unlock;
      return bo;
    }
    if (needs_unlock) bo->resv()->Unlock();
    if (lock_status.code() == Errc::kDeadlock && arg_.owner != nullptr) {
      // The transaction must back off and lock this one first: the ticket keeps it (and a
      // reference on its object) for the retry.
      bo->Get();
      arg_.owner->SetContended(
          bo->resv(), std::shared_ptr<const void>(bo, [](const void* p) {
            const_cast<BufferObject*>(static_cast<const BufferObject*>(p))->Put();
          }));
    }
    bo->Put();
    if (!lock_status.ok()) {
      if (lock_status.code() == Errc::kDeadlock) {
        lru.lock()->Lock();
        cursor_.Fini();
        lru.lock()->Unlock();
        return Status(Errc::kDeadlock,
                      "wound-wait back-off during an eviction walk: unlock everything and retry "
                      "with the contended reservation locked first");
      }
      if (lock_status.code() != Errc::kAlready) {
        lru.lock()->Lock();
        cursor_.Fini();
        lru.lock()->Unlock();
        return lock_status;
      }
    }
    lru.lock()->Lock();
  }
  cursor_.Fini();
  lru.lock()->Unlock();
  return static_cast<BufferObject*>(nullptr);
}

}  // namespace uttm
