// Copyright (c) uttm developers.
#include "uttm/bo_shrinker.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "uttm/bo_shrink.h"
#include "uttm/lru_walk.h"
#include "uttm/memory_context.h"
#include "uttm/tt_manager.h"

namespace uttm {
namespace {

constexpr std::int64_t kStoreRoomRefreshNs = 50'000'000;
constexpr std::int64_t kStoreFullRetryNs = 1'000'000'000;

std::int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The shrinker handles page vectors of its own (not imported ones, unless mappable).
bool Countable(const PageVector& tt) {
  const std::uint32_t f = tt.flags();
  return (f & kPageVectorExternal) == 0 || (f & kPageVectorExternalMappable) != 0;
}

// Pages the shrinker can take from `tt`: all of a populated vector, what a partial one holds.
std::uint64_t HeldPages(const PageVector& tt) { return tt.resident_pages().value(); }

}  // namespace

// The accounting decorator: forwards every callback to the driver and reports populate,
// unpopulate and madvise changes to the shrinker.
class BoShrinker::Funcs final : public DeviceFuncs {
 public:
  Funcs(BoShrinker* owner, DeviceFuncs* driver) : owner_(owner), driver_(driver) {}

  Result<std::unique_ptr<PageVector>> TtCreate(BufferObject& bo, std::uint32_t flags) override {
    // xe's rule: the shrinker's vectors are EXTERNAL_MAPPABLE (imported ones stay as they are).
    if (owner_->options_.owns_tt && (flags & kPageVectorExternal) == 0) {
      flags |= kPageVectorExternalMappable;
    }
    return driver_->TtCreate(bo, flags);
  }
  Status TtPopulate(BufferObject& bo, PageVector& tt, OperationContext& ctx) override {
    Status s = driver_->TtPopulate(bo, tt, ctx);
    owner_->Track(bo, tt);  // a failed restore may hold pages too
    return s;
  }
  void TtUnpopulate(BufferObject& bo, PageVector& tt) override {
    driver_->TtUnpopulate(bo, tt);
    owner_->Track(bo, tt);
  }
  bool EvictionValuable(const BufferObject& bo, const Place& place) override {
    return driver_->EvictionValuable(bo, place);
  }
  void EvictFlags(const BufferObject& bo, Placement* placement) override {
    driver_->EvictFlags(bo, placement);
  }
  Status Move(BufferObject& bo, bool evict, OperationContext& ctx,
              std::unique_ptr<Resource>& new_res, Place* hop) override {
    return driver_->Move(bo, evict, ctx, new_res, hop);
  }
  std::byte* AccessMemory(const Resource& res) override { return driver_->AccessMemory(res); }
  void SwapNotify(BufferObject& bo) override { driver_->SwapNotify(bo); }
  void ReleaseNotify(BufferObject& bo) override { driver_->ReleaseNotify(bo); }
  void DeleteMemNotify(BufferObject& bo) override { driver_->DeleteMemNotify(bo); }
  void MadviseNotify(BufferObject& bo) override {
    driver_->MadviseNotify(bo);
    owner_->OnMadvise(bo);
  }
  void PinNotify(BufferObject& bo) override {
    driver_->PinNotify(bo);
    if (bo.tt() != nullptr) owner_->Track(bo, *bo.tt());
  }

 private:
  BoShrinker* const owner_;
  DeviceFuncs* const driver_;
};

BoShrinker::BoShrinker(DeviceFuncs* driver, BoShrinkerOptions options)
    : options_(std::move(options)), funcs_(std::make_unique<Funcs>(this, driver)) {}

BoShrinker::~BoShrinker() = default;

DeviceFuncs* BoShrinker::funcs() { return funcs_.get(); }

Status BoShrinker::Attach(Device* device) {
  if (device == nullptr) return Status(Errc::kInvalid, "BoShrinker::Attach: null device");
  if (&device->funcs() != funcs_.get()) {
    return Status(Errc::kInvalid,
                  "BoShrinker::Attach: the device was not created with this shrinker's funcs()");
  }
  Device* expected = nullptr;
  if (!device_.compare_exchange_strong(expected, device)) {
    return Status(Errc::kInvalid, "BoShrinker::Attach: already attached");
  }
  if (options_.owns_tt) {
    device->set_shrinker_owns_tt(true);
    for (MemType t = 0; t < kNumMemTypes; ++t) {
      if (auto* tt = dynamic_cast<TtManager*>(device->manager(t))) tt->set_shrinker_bounded(true);
    }
  }
  RefreshStoreRoom(true);
  return Status::Ok();
}

Status BoShrinker::blocked() const {
  if (store_full_at_bytes_.load(std::memory_order_relaxed) == 0) return Status();
  return Status(Errc::kNoSpace, std::string("backup store full: shrinker ") + name() +
                                    " cannot back anything up until the store has room");
}

// ---------------------------------------------------------------------------------------------
// Accounting

void BoShrinker::Adjust(bool purgeable, std::int64_t pages) {
  std::atomic<std::uint64_t>& counter = purgeable ? purgeable_ : shrinkable_;
  if (pages >= 0) {
    counter.fetch_add(static_cast<std::uint64_t>(pages), std::memory_order_relaxed);
  } else {
    counter.fetch_sub(static_cast<std::uint64_t>(-pages), std::memory_order_relaxed);
  }
}

void BoShrinker::Track(const BufferObject& bo, const PageVector& tt) {
  // Pinned pages are not reclaimable: no record while pinned (however often), one on unpin.
  const std::uint64_t pages = Countable(tt) && bo.pin_count() == 0 ? HeldPages(tt) : 0;
  if (pages == 0) {
    Forget(&tt);
    return;
  }
  MutexLock lock(&mu_);
  auto [it, inserted] = records_.try_emplace(&tt, Record{});
  if (!inserted) Adjust(it->second.purgeable, -static_cast<std::int64_t>(it->second.pages));
  // The record follows the object's advice; a ghost keeps the bucket it was handed over with.
  if (inserted || !bo.is_ghost()) it->second.purgeable = bo.madvice() == Madvice::kDontNeed;
  it->second.pages = pages;
  Adjust(it->second.purgeable, static_cast<std::int64_t>(pages));
}

void BoShrinker::Forget(const PageVector* tt) {
  MutexLock lock(&mu_);
  auto it = records_.find(tt);
  if (it == records_.end()) return;
  Adjust(it->second.purgeable, -static_cast<std::int64_t>(it->second.pages));
  records_.erase(it);
}

void BoShrinker::OnMadvise(BufferObject& bo) {
  const PageVector* tt = bo.tt();
  if (tt == nullptr) return;
  const bool purgeable = bo.madvice() == Madvice::kDontNeed;
  MutexLock lock(&mu_);
  auto it = records_.find(tt);
  if (it == records_.end() || it->second.purgeable == purgeable) return;
  Adjust(it->second.purgeable, -static_cast<std::int64_t>(it->second.pages));
  it->second.purgeable = purgeable;
  Adjust(purgeable, static_cast<std::int64_t>(it->second.pages));
}

void BoShrinker::RefreshStoreRoom(bool force) {
  const std::int64_t now = NowNs();
  if (!force && now - store_room_at_ns_.load(std::memory_order_relaxed) < kStoreRoomRefreshNs) {
    return;
  }
  store_room_at_ns_.store(now, std::memory_order_relaxed);
  Device* dev = device_.load(std::memory_order_acquire);
  BackupStore* store = dev != nullptr ? dev->backup_store() : nullptr;
  std::uint64_t room = store != nullptr ? store->BytesAvailable() / kPageSize : 0;
  // A store that refused a write with ENOSPC is full whatever it reports, until it holds less
  // than it did then (something was dropped): otherwise every scan would try, fail and be
  // counted again, and the reclaim thread would spin on it.
  // It is tried again after a second at most (the space may come from elsewhere).
  const std::uint64_t full_at = store_full_at_bytes_.load(std::memory_order_relaxed);
  if (full_at != 0 && store != nullptr) {
    const bool expired =
        now - store_full_since_ns_.load(std::memory_order_relaxed) > kStoreFullRetryNs;
    if (store->BytesUsed() + 1 < full_at || expired) {
      store_full_at_bytes_.store(0, std::memory_order_relaxed);
    } else {
      room = 0;
    }
  }
  store_room_pages_.store(room, std::memory_order_relaxed);
}

Result<ShrinkAccounting> BoShrinker::CheckAccounting() {
  Device* dev = device_.load(std::memory_order_acquire);
  if (dev == nullptr) return Status(Errc::kInvalid, "BoShrinker::CheckAccounting: not attached");
  // Collect referenced objects under the LRU lock, then inspect each under its reservation.
  std::vector<BoRef> bos;
  {
    MutexLock lock(dev->lru().lock());
    std::vector<ListHead*> lists;
    for (MemType t = 0; t < kNumMemTypes; ++t) {
      ResourceManager* man = dev->manager(t);
      if (man == nullptr) continue;
      for (unsigned p = 0; p < kNumPriorities; ++p) lists.push_back(&man->lru(p));
    }
    lists.push_back(&dev->lru().unevictable());
    for (ListHead* list : lists) {
      for (ListNode* n = list->front(); n != nullptr && !list->is_end(n); n = n->next()) {
        Resource* res = Resource::FromLruNode(n);
        if (res == nullptr || res->bo() == nullptr) continue;
        if (res->bo()->GetUnlessZero()) bos.push_back(BoRef::Adopt(res->bo()));
      }
    }
  }
  ShrinkAccounting want;
  for (BoRef& bo : bos) {
    if (!bo->TryReserve()) return Status(Errc::kBusy, "CheckAccounting: an object is locked");
    bo->resv()->AssertHeld();
    const PageVector* tt = bo->tt();
    if (tt != nullptr && Countable(*tt) && bo->pin_count() == 0 && HeldPages(*tt) > 0) {
      bool purgeable = bo->madvice() == Madvice::kDontNeed;
      if (bo->is_ghost()) {
        // A ghost keeps the bucket its vector had when it was handed over.
        MutexLock lock(&mu_);
        auto it = records_.find(tt);
        purgeable = it != records_.end() && it->second.purgeable;
      }
      (purgeable ? want.purgeable : want.shrinkable) += HeldPages(*tt);
    }
    bo->resv()->Unlock();
  }
  const std::uint64_t have_s = shrinkable_pages();
  const std::uint64_t have_p = purgeable_pages();
  if (have_s != want.shrinkable || have_p != want.purgeable) {
    return Status(Errc::kInvalid,
                  "shrinker accounting mismatch: kept shrinkable=" + std::to_string(have_s) +
                      " purgeable=" + std::to_string(have_p) +
                      ", recomputed shrinkable=" + std::to_string(want.shrinkable) +
                      " purgeable=" + std::to_string(want.purgeable));
  }
  return want;
}

// ---------------------------------------------------------------------------------------------
// Count and scan

namespace {

// Pages of the device's memory whose backup copy is kept (clean): freed without store space.
std::uint64_t CleanPages(const Device* dev) {
  if (dev == nullptr) return 0;
  return static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, dev->memory().stats().Current(Stat::kCleanPages)));
}

}  // namespace

std::uint64_t BoShrinker::Count(const ShrinkControl& sc) {
  std::uint64_t n = purgeable_.load(std::memory_order_relaxed);
  if (sc.reclaim.may_fs) {
    RefreshStoreRoom(false);
    // Clean pages need no room in the store; the others as much as they hold.
    n += std::min(store_room_pages_.load(std::memory_order_relaxed) +
                      CleanPages(device_.load(std::memory_order_acquire)),
                  shrinkable_.load(std::memory_order_relaxed));
  }
  return n != 0 ? n : kShrinkEmpty;
}

Result<std::int64_t> BoShrinker::ShrinkOne(BufferObject& bo, Pass pass, const ReclaimContext& rc,
                                           OperationContext& ctx, ProtectionRound round,
                                           bool* hit_low, bool* have_pm, std::uint64_t* scanned) {
  bo.resv()->AssertHeld();
  PageVector* tt = bo.tt();
  if (tt == nullptr || !Countable(*tt)) return Status(Errc::kBusy, "not shrinkable");
  if (!ShrinkSuitable(bo, ctx)) return Status(Errc::kBusy, "not suitable");
  const bool dead = bo.is_ghost() || bo.deleted();
  const bool purge = dead || bo.madvice() == Madvice::kDontNeed;
  if (pass == Pass::kPurge && !purge) return Status(Errc::kBusy, "not purgeable");
  const Resource* res = bo.resource();
  // The client's protection in the region the object is in (purging ignores it).
  if (BudgetTree* budgets = bo.device().budgets(); !purge && budgets != nullptr && res != nullptr) {
    const int region = bo.device().budget_region(res->mem_type());
    if (!budgets->MayReclaim(bo.budget_group(), region, round, hit_low)) {
      return Status(Errc::kBusy, "its client is protected in this round");
    }
  }
  if (!dead && res != nullptr &&
      !bo.device().funcs().EvictionValuable(bo, Place{.mem_type = res->mem_type()})) {
    return Status(Errc::kBusy, "not eviction-valuable");
  }
  // A live object outside SYSTEM moves there first, which may need the device awake.
  const bool needs_move = !dead && res != nullptr && res->mem_type() != kMemSystem;
  if (needs_move && options_.power != nullptr && !*have_pm) {
    if (options_.power->GetIfActive()) {
      *have_pm = true;
    } else if (rc.background) {
      options_.power->Get();
      *have_pm = true;
    } else {
      options_.power->QueueWake();
      return Status(Errc::kBusy, "device suspended; wake queued");
    }
  }
  *scanned += tt->num_pages().value();
  const ShrinkFlags flags{
      .purge = purge, .writeback = pass == Pass::kWriteback && !purge, .allow_move = !dead};
  // On success Shrink reports the emptied vector through TtUnpopulate: the record goes.
  Result<std::int64_t> r = Shrink(ctx, bo, flags);
  if (!r.ok() && !purge && (r.code() == Errc::kNoSpace || r.code() == Errc::kBusy)) {
    // The store is full, but the clean copies kept for resident objects are reclaimable store
    // space (a copy is kept only to save a write): drop them, then try this object again.
    Device* dev = device_.load(std::memory_order_acquire);
    BackupStore* store = dev->backup_store();
    const bool full =
        r.code() == Errc::kNoSpace || (store != nullptr && store->BytesAvailable() < kPageSize);
    if (full && CleanPages(dev) > 0 && DropCleanCopies(*dev) > 0) {
      r = Shrink(ctx, bo, flags);
    }
  }
  return r;
}

bool BoShrinker::Walk(Pass pass, const ReclaimContext& rc, std::uint64_t target,
                      ProtectionRound round, bool* hit_low, bool* have_pm, std::uint64_t* scanned,
                      std::uint64_t* freed) {
  Device* dev = device_.load(std::memory_order_acquire);
  for (MemType t = 0; t < kNumMemTypes && *scanned < target; ++t) {
    ResourceManager* man = dev->manager(t);
    if (man == nullptr || !man->use_tt()) continue;
    OperationContext ctx;
    ctx.interruptible = false;
    ctx.trylock_only = true;
    ctx.no_wait_gpu = pass == Pass::kIdle || (pass == Pass::kPurge && ShrinkAvoidWait(rc));
    LruWalkArg arg{.ctx = &ctx, .ticket = nullptr, .trylock_only = true};
    ReservedBoCursor cursor(dev, man, arg);
    for (;;) {
      Result<BufferObject*> next = cursor.Next();
      if (!next.ok()) return false;
      if (*next == nullptr) break;
      Result<std::int64_t> r = ShrinkOne(**next, pass, rc, ctx, round, hit_low, have_pm, scanned);
      if (r.ok()) {
        *freed += static_cast<std::uint64_t>(*r);
      } else if (r.code() == Errc::kNoSpace) {
        // The store is full: no backup can succeed; remember it (RefreshStoreRoom) and stop.
        BackupStore* store = dev->backup_store();
        store_full_since_ns_.store(NowNs(), std::memory_order_relaxed);
        store_full_at_bytes_.store((store != nullptr ? store->BytesUsed() : 0) + 1,
                                   std::memory_order_relaxed);
        return false;
      } else if (r.code() != Errc::kBusy && r.code() != Errc::kAlready) {
        return false;
      }
      if (*scanned >= target) break;
    }
  }
  return true;
}

std::uint64_t BoShrinker::Scan(ShrinkControl& sc) {
  Device* dev = device_.load(std::memory_order_acquire);
  if (dev == nullptr) return kShrinkStop;
  const ReclaimContext& rc = sc.reclaim;
  const std::uint64_t target = sc.nr_to_scan;
  std::uint64_t scanned = 0;
  std::uint64_t freed = 0;
  bool have_pm = false;
  bool hit_low = false;
  bool ok =
      Walk(Pass::kPurge, rc, target, ProtectionRound::kLow, &hit_low, &have_pm, &scanned, &freed);
  // The backup passes: clients above their high first (when any has one), then unprotected
  // ones, then once more taking low-protected clients' objects if those were all that was left.
  const bool any_high = dev->budgets() != nullptr && dev->budgets()->HasHighLimits();
  for (ProtectionRound round :
       {ProtectionRound::kOverHigh, ProtectionRound::kUnprotected, ProtectionRound::kLow}) {
    if (!ok || scanned >= target || !rc.may_fs) break;
    if (round == ProtectionRound::kOverHigh && !any_high) continue;
    if (round == ProtectionRound::kLow && !hit_low) break;
    ok = Walk(Pass::kIdle, rc, target, round, &hit_low, &have_pm, &scanned, &freed);
    if (ok && scanned < target && !ShrinkAvoidWait(rc)) {
      ok = Walk(Pass::kWait, rc, target, round, &hit_low, &have_pm, &scanned, &freed);
    }
    if (ok && scanned < target && rc.may_io && rc.background) {
      ok = Walk(Pass::kWriteback, rc, target, round, &hit_low, &have_pm, &scanned, &freed);
    }
  }
  if (have_pm) options_.power->Put();
  RefreshStoreRoom(true);
  sc.nr_scanned = scanned;
  return scanned != 0 ? freed : kShrinkStop;
}

// ---------------------------------------------------------------------------------------------

Status RegisterDeviceReclaim(Reclaimer* reclaimer, BoShrinker* shrinker, MemoryContext* memory) {
  if (reclaimer == nullptr) return Status(Errc::kInvalid, "RegisterDeviceReclaim: null reclaimer");
  if (shrinker != nullptr) UTTM_RETURN_IF_ERROR(reclaimer->Register(shrinker));
  if (memory != nullptr) {
    Status s = reclaimer->Register(&memory->pool().shrinker());
    if (!s.ok()) {
      if (shrinker != nullptr) (void)reclaimer->Unregister(shrinker);
      return s;
    }
    memory->set_reclaim_hook(reclaimer);
  }
  return Status::Ok();
}

void UnregisterDeviceReclaim(Reclaimer* reclaimer, BoShrinker* shrinker, MemoryContext* memory) {
  if (reclaimer == nullptr) return;
  if (memory != nullptr) {
    memory->set_reclaim_hook(nullptr);
    (void)reclaimer->Unregister(&memory->pool().shrinker());
  }
  if (shrinker != nullptr) (void)reclaimer->Unregister(shrinker);
}

}  // namespace uttm
