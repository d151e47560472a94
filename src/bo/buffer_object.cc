// Copyright (c) uttm developers.
//
// Buffer object life cycle, validation, moves and eviction (ttm_bo.c, ttm_bo_util.c).
#include "uttm/buffer_object.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "base/check.h"
#include "bo/touch_range.h"
#include "uttm/fault_injection.h"
#include "uttm/lru_cursor.h"
#include "uttm/lru_walk.h"

namespace uttm {
namespace {

// TTM's ttm_bo_wait_ctx bound on synchronous waits in move cleanup.
constexpr std::chrono::seconds kMoveWaitTimeout{15};

bool ManagerUsable(const ResourceManager* man) { return man != nullptr && man->use_type(); }

}  // namespace

BufferObject::BufferObject(Device* device, const BoOptions& options)
    : device_(device),
      type_(options.type),
      size_(options.size),
      page_alignment_(options.page_alignment),
      caching_(options.caching),
      tt_flags_(options.tt_flags),
      element_size_(options.element_size),
      client_(device->budgets() == nullptr ? nullptr
              : options.client != nullptr  ? options.client
                                           : device->budgets()->root()),
      own_resv_(std::make_unique<Reservation>()),
      resv_(options.resv != nullptr ? options.resv : own_resv_.get()),
      priority_(options.priority) {
  device_->bo_count_.fetch_add(1, std::memory_order_relaxed);
  device_->stats().GaugeAdd(Stat::kBufferObjects, 1);
}

BufferObject::~BufferObject() {
  device_->bo_count_.fetch_sub(1, std::memory_order_relaxed);
  device_->stats().GaugeAdd(Stat::kBufferObjects, -1);
}

// Returns with the reservation held (a hand-over the analysis cannot follow).
Result<BoRef> BufferObject::CreateReserved(Device* device, const BoOptions& options,
                                           const Placement& placement,
                                           OperationContext& ctx) UTTM_NO_THREAD_SAFETY_ANALYSIS {
  if (device == nullptr) return Status(Errc::kInvalid, "buffer object without a device");
  if (options.size.value() == 0) return Status(Errc::kInvalid, "buffer object of size 0");
  if (options.priority >= kNumPriorities) {
    return Status(Errc::kInvalid, "buffer object priority must be 0..3");
  }
  if (options.type != BoType::kDevice && options.type != BoType::kKernel &&
      options.type != BoType::kSg) {
    return Status(Errc::kInvalid, "unknown buffer object type");
  }
  if (options.element_size > 4 || options.element_size == 3) {
    return Status(Errc::kInvalid, "buffer object element size " +
                                      std::to_string(options.element_size) +
                                      " (expected 0, 1, 2 or 4)");
  }
  if (options.client != nullptr && &options.client->tree() != device->budgets()) {
    return Status(Errc::kInvalid, "buffer object client " + options.client->path() +
                                      " is not of the device's budget tree");
  }

  BoRef bo = BoRef::Adopt(new BufferObject(device, options));
  if (options.resv == nullptr) {
    bool locked = bo->resv()->TryLock();
    UTTM_CHECK(locked, "a fresh reservation must be free");
  } else if (!options.resv->IsLocked()) {
    return Status(Errc::kInvalid, "a shared reservation must be held by the caller");
  }
  Status s = bo->resv()->ReserveFences(1);
  if (s.ok()) s = bo->Validate(placement, ctx);
  if (!s.ok()) {
    if (options.resv == nullptr) bo->resv()->Unlock();
    return s;  // dropping `bo` releases it
  }
  return bo;
}

Result<BoRef> BufferObject::Create(Device* device, const BoOptions& options,
                                   const Placement& placement, OperationContext& ctx) {
  UTTM_ASSIGN_OR_RETURN(BoRef bo, CreateReserved(device, options, placement, ctx));
  if (options.resv == nullptr) {
    bo->resv()->AssertHeld();
    bo->Unreserve();
  }
  return bo;
}

// ---------------------------------------------------------------------------------------------
// References and release

void BufferObject::Put() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) Release();
}

bool BufferObject::GetUnlessZero() {
  int cur = refs_.load(std::memory_order_relaxed);
  while (cur > 0) {
    if (refs_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) return true;
  }
  return false;
}

void BufferObject::Release() {
  if (deleted()) {
    // The last reference of a zombie (held by the delayed-delete queue or a walk): its memory
    // was already cleaned up.
    Destroy();
    return;
  }
  if (!ghost_) device_->funcs().ReleaseNotify(*this);
  // Individualize: an object sharing a reservation takes a private copy of its fences, so
  // later try-locks do not contend with the shared group.
  if (resv_ != own_resv_.get()) {
    Reservation* shared = resv_;
    if (own_resv_->TryLock()) {
      own_resv_->CopyFences(*shared);
      own_resv_->AssertHeld();
      own_resv_->Unlock();
    }
    MutexLock lock(device_->lru().lock());
    resv_ = own_resv_.get();
  }
  bool idle = resv()->TestSignaled(ResvUsage::kBookkeep);
  if (idle && type_ != BoType::kSg && resv()->TryLock()) {
    CleanupMemtypeUse();
    resv()->Unlock();
    Destroy();
    return;
  }
  // Busy or contended: keep it as a zombie until the delayed-delete worker (or a walk) can clean
  // it up. It stays on the LRU so reclaim sees it.
  // While the count is zero no walker can take the object (GetUnlessZero fails), so its state
  // is changed here without the reservation; the zombie is published by the store of its queue
  // reference, after which a walker may lock it and clean it up.
  deleted_.store(true, std::memory_order_release);
  const bool was_pinned = pin_count_ > 0;
  {
    MutexLock lock(device_->lru().lock());
    if (resource_) {
      // A pinned zombie is made available to the shrinkers (unless nothing is left to reclaim).
      pin_count_ = 0;
      device_->lru().SetUnevictable(resource_.get(), WantsUnevictable());
      device_->lru().MoveToTail(resource_.get());
    }
  }
  if (was_pinned && resource_) device_->funcs().PinNotify(*this);
  refs_.store(1, std::memory_order_release);
  device_->QueueDelayedDelete(this);
}

void BufferObject::FinishDelayedDelete() {
  Status locked = resv()->Lock(nullptr);
  UTTM_CHECK(locked.ok(), "delayed delete could not lock a zombie");
  resv()->AssertHeld();
  CleanupMemtypeUse();
  resv()->Unlock();
  Put();
}

Status BufferObject::EvictFirst(Device& device, ResourceManager* man, OperationContext& ctx) {
  BoRef bo;
  MemType mem_type;
  {
    MutexLock lock(device.lru().lock());
    LruCursor cursor(&device.lru());
    Resource* res = cursor.First(man);
    cursor.Fini();
    if (res == nullptr) return Status(Errc::kNotFound, "LRU is empty");
    mem_type = res->mem_type();
    if (res->bo() == nullptr || !res->bo()->GetUnlessZero()) return Status();
    bo = BoRef::Adopt(res->bo());
  }
  UTTM_RETURN_IF_ERROR(bo->Reserve(ctx, nullptr, ctx.no_wait_gpu));
  bo->resv()->AssertHeld();
  Status s;
  if (bo->resource() == nullptr || bo->resource()->mem_type() != mem_type) {
    s = Status();  // moved meanwhile
  } else if (bo->deleted()) {
    s = bo->WaitIdle(ctx);
    if (s.ok()) bo->CleanupMemtypeUse();
  } else {
    s = bo->Evict(ctx);
  }
  bo->resv()->Unlock();
  return s;
}

Status BufferObject::EvictAll(Device& device, ResourceManager* man, OperationContext& ctx) {
  for (;;) {
    Status s = EvictFirst(device, man, ctx);
    if (s.code() == Errc::kNotFound) break;
    if (!s.ok()) return s;
  }
  device.FlushDelayedDeletes();
  if (FenceRef fence = man->move_fence()) return fence->Wait(ctx);
  return Status();
}

Status BufferObject::EvictAsVictim(OperationContext& ctx) {
  resv()->AssertHeld();
  Status s;
  if (deleted() || is_ghost()) {
    s = WaitIdle(ctx);
    if (s.ok()) CleanupMemtypeUse();
  } else {
    s = Evict(ctx);
  }
  if (s.code() == Errc::kNoSpace || s.code() == Errc::kNoMemory) {
    return Status(Errc::kBusy, "victim could not move");
  }
  return s;
}

Status BufferObject::ReclaimBudget(Device& device, BudgetGroup* group, MemType type,
                                   OperationContext& ctx) {
  BudgetTree* budgets = device.budgets();
  const int region = device.budget_region(type);
  ResourceManager* man = device.manager(type);
  if (budgets == nullptr || region < 0 || group == nullptr || &group->tree() != budgets ||
      man == nullptr) {
    return Status(Errc::kInvalid, "ReclaimBudget: no budgets, region or group on this device");
  }
  auto at_target = [&] { return group->current(region) <= group->Read(region).max; };
  std::int64_t evicted = 0;
  std::uint64_t reclaimed = 0;
  auto evict_one = [&](BufferObject& victim, OperationContext& wctx) -> Result<std::int64_t> {
    victim.resv()->AssertHeld();
    if (ctx.interruptible && ctx.stop.stop_requested()) {
      return Status(Errc::kInterrupted, "budget reclaim interrupted");
    }
    BudgetGroup* owner = victim.budget_group();
    if (victim.pin_count() > 0 || victim.resource() == nullptr || owner == nullptr ||
        !owner->IsWithin(group)) {
      return std::int64_t{0};
    }
    const std::uint64_t bytes = victim.resource()->charge().bytes();
    UTTM_RETURN_IF_ERROR(victim.EvictAsVictim(wctx));
    ++evicted;
    reclaimed += bytes;
    device.stats().Add(Stat::kEvictions);
    budgets->CountEviction(nullptr, owner, region, false);
    return std::int64_t{at_target() ? 1 : 0};
  };
  // A few walks while they make progress (objects may be added meanwhile), as dmem's bounded
  // reclaim retries.
  for (int walk = 0; walk < 4 && !at_target(); ++walk) {
    evicted = 0;
    LruWalkArg arg{.ctx = &ctx, .ticket = nullptr, .trylock_only = true, .owner = nullptr};
    Result<std::int64_t> got = LruWalkForEvict(&device, man, arg, 1, evict_one);
    if (!got.ok()) {
      if (reclaimed > 0) budgets->CountReclaim(group, region, reclaimed);
      return got.status();
    }
    if (evicted == 0) break;
  }
  if (reclaimed > 0 || !at_target()) budgets->CountReclaim(group, region, reclaimed);
  if (at_target()) return Status();
  return Status(Errc::kBusy, "budget group " + group->path() + " still holds " +
                                 std::to_string(group->current(region)) + " bytes in " +
                                 budgets->RegionName(region) + " (max " +
                                 std::to_string(group->Read(region).max) +
                                 "): the rest is pinned, busy or could not move");
}

// No reference is left, so nobody else can reach the object: its cleanup needs no reservation
// (it is try-locked only so that the driver callbacks see it held when it is free).
void BufferObject::Destroy() UTTM_NO_THREAD_SAFETY_ANALYSIS {
  // Whatever is left (a zombie cleaned by the worker has nothing) goes now.
  if (resource_ || tt_) {
    bool locked = resv()->TryLock();
    CleanupMemtypeUse();
    if (locked) resv()->Unlock();
  }
  BufferObject* parent = ghost_parent_;
  delete this;
  if (parent != nullptr) parent->Put();
}

void BufferObject::CleanupMemtypeUse() {
  if (resource_ && !ghost_) device_->funcs().DeleteMemNotify(*this);
  // Ghosts too: the driver's accounting must see every vector that held pages go.
  DestroyTt();
  if (resource_) ResourceFree(std::move(resource_));
  {
    MutexLock lock(device_->lru().lock());
    bulk_move_ = nullptr;
  }
}

// ---------------------------------------------------------------------------------------------
// Reservation

Status BufferObject::Reserve(const OperationContext& ctx, WwAcquireContext* ticket, bool no_wait) {
  ReserveOptions opts;
  opts.interruptible = ctx.interruptible;
  opts.no_wait = no_wait;
  opts.stop = ctx.stop;
  return resv()->Reserve(ticket, opts);
}

Status BufferObject::ReserveSlowpath(const OperationContext& ctx, WwAcquireContext* ticket) {
  return resv()->LockSlow(ticket, ctx);
}

bool BufferObject::TryReserve() { return resv()->TryLock(); }

void BufferObject::Unreserve() {
  {
    MutexLock lock(device_->lru().lock());
    if (resource_) device_->lru().MoveToTail(resource_.get());
  }
  resv()->AssertHeld();
  resv()->Unlock();
}

// ---------------------------------------------------------------------------------------------
// Resources

Status BufferObject::ChargeFor(MemType type, BudgetCharge* out, BudgetGroup** limiting) {
  *out = BudgetCharge();
  if (limiting != nullptr) *limiting = nullptr;
  const int region = device_->budget_region(type);
  if (client_ == nullptr || region < 0) return Status();
  UTTM_RETURN_IF_ERROR(device_->budgets()->TryCharge(client_, region, size_.value(), limiting));
  *out = BudgetCharge(client_, region, size_.value());
  return Status();
}

Result<std::unique_ptr<Resource>> BufferObject::ResourceAlloc(const Place& place,
                                                              BudgetCharge* charge) {
  ResourceManager* man = device_->manager(place.mem_type);
  if (!ManagerUsable(man)) return Status(Errc::kNoSpace, "memory type not available");
  BudgetCharge own;
  if (charge == nullptr) {
    UTTM_RETURN_IF_ERROR(ChargeFor(place.mem_type, &own, nullptr));
    charge = &own;
  }
  AllocRequest req{
      .size = size_, .page_alignment = page_alignment_, .bo = this, .priority = priority_};
  UTTM_ASSIGN_OR_RETURN(std::unique_ptr<Resource> res, man->Alloc(req, place));
  res->set_charge(std::move(*charge));
  res->set_bo(this);
  MutexLock lock(device_->lru().lock());
  res->set_bulk_move(bulk_move_);
  device_->lru().AddResource(res.get(), priority_, pin_count_ > 0);
  return res;
}

void BufferObject::ResourceFree(std::unique_ptr<Resource> res) {
  if (!res) return;
  res->ReleaseCharge();
  {
    MutexLock lock(device_->lru().lock());
    device_->lru().RemoveResource(res.get());
    res->set_bo(nullptr);
  }
  ResourceManager* man = res->manager();
  man->Free(std::move(res));
}

void BufferObject::AssignResource(std::unique_ptr<Resource> res) {
  std::unique_ptr<Resource> old = std::move(resource_);
  resource_ = std::move(res);
  if (old) ResourceFree(std::move(old));
  UpdateLruState();
}

bool BufferObject::WantsUnevictable() const {
  const bool swapped =
      tt_ && tt_->is_swapped() && !tt_->is_partial() && resource_->manager()->use_tt();
  return pin_count_ > 0 || swapped;
}

void BufferObject::UpdateLruState() {
  if (!resource_) return;
  MutexLock lock(device_->lru().lock());
  device_->lru().SetUnevictable(resource_.get(), WantsUnevictable());
}

bool BufferObject::ResourceCompatible(const Resource& res, const Placement& placement,
                                      bool evicting) const {
  if (res.placement_flags() & kPlaceTemporary) return false;
  for (const Place& place : placement.places) {
    if (res.mem_type() != place.mem_type) continue;
    if (place.flags & (evicting ? kPlaceDesired : kPlaceFallback)) continue;
    // The manager judges range and contiguity (CONTIGUOUS included) for its own resources.
    if (res.manager()->Compatible(res, place, size_)) return true;
  }
  return false;
}

Status BufferObject::AddMoveFence(ResourceManager* man, const OperationContext& ctx) {
  resv()->AssertHeld();
  FenceRef fence = man->move_fence();
  if (!fence || fence->IsSignaled()) return Status();
  if (ctx.no_wait_gpu) return Status(Errc::kBusy, "memory type has a pipelined move pending");
  UTTM_RETURN_IF_ERROR(resv()->ReserveFences(1));
  return resv()->AddFence(std::move(fence), ResvUsage::kKernel);
}

// ttm_bo_alloc_resource with the 2026 budget rules: the budget is charged once per place, before
// the manager is asked, and the charge is kept across eviction retries; it is given back only
// when the place is given up (the BudgetCharge going out of scope).
Result<std::unique_ptr<Resource>> BufferObject::AllocResource(const Placement& placement,
                                                              OperationContext& ctx,
                                                              bool force_space,
                                                              bool* over_budget_out) {
  if (over_budget_out != nullptr) *over_budget_out = false;
  Status over_budget;  // the last place refused by a group's max, for the error
  for (const Place& place : placement.places) {
    ResourceManager* man = device_->manager(place.mem_type);
    if (!ManagerUsable(man)) continue;
    if (place.flags & (force_space ? kPlaceDesired : kPlaceFallback)) continue;
    bool may_evict = force_space && place.mem_type != kMemSystem;
    BudgetCharge charge;
    BudgetGroup* limiting = nullptr;
    if (Status cs = ChargeFor(place.mem_type, &charge, &limiting); !cs.ok()) {
      if (cs.code() != Errc::kNoSpace) return cs;
      over_budget = cs;
      if (!may_evict) continue;
      // Over a group's max: only that group's own subtree gives way (dmem's limit pool).
      Status s = EvictUntil(man, place, ctx, limiting, [&]() -> Result<bool> {
        return ChargeFor(place.mem_type, &charge, nullptr).ok();
      });
      if (s.code() == Errc::kBusy) continue;
      if (!s.ok()) return s;
    }
    // A group below its protection may evict even in the first pass ("drm/ttm: Be more
    // aggressive when allocating below protection limit").
    const int region = device_->budget_region(place.mem_type);
    if (!may_evict && charge.held() && place.mem_type != kMemSystem &&
        (device_->budgets()->BelowMin(client_, region) ||
         device_->budgets()->BelowLow(client_, region))) {
      may_evict = true;
    }
    std::unique_ptr<Resource> res;
    Result<std::unique_ptr<Resource>> r = ResourceAlloc(place, &charge);
    if (r.ok()) {
      res = std::move(r).value();
    } else if (r.code() == Errc::kNoSpace || r.code() == Errc::kAgain) {
      if (!may_evict) continue;
      Status s = EvictUntil(man, place, ctx, nullptr, [&]() -> Result<bool> {
        Result<std::unique_ptr<Resource>> again = ResourceAlloc(place, &charge);
        if (again.ok()) {
          res = std::move(again).value();
          return true;
        }
        if (again.code() == Errc::kNoSpace || again.code() == Errc::kAgain) return false;
        return again.status();
      });
      if (s.code() == Errc::kBusy) continue;
      if (!s.ok()) return s;
    } else {
      return r.status();
    }
    Status fence = AddMoveFence(man, ctx);
    if (fence.code() == Errc::kBusy) {
      ResourceFree(std::move(res));
      continue;
    }
    if (!fence.ok()) {
      ResourceFree(std::move(res));
      return fence;
    }
    return res;
  }
  if (!over_budget.ok()) {
    if (over_budget_out != nullptr) *over_budget_out = true;
    return over_budget;
  }
  return Status(Errc::kNoSpace, "no placement has room");
}

Result<std::unique_ptr<Resource>> BufferObject::MemSpace(const Placement& placement,
                                                         OperationContext& ctx) {
  auto res = AllocResource(placement, ctx, false);
  if (res.code() != Errc::kNoSpace) return res;
  return AllocResource(placement, ctx, true);
}

// ---------------------------------------------------------------------------------------------
// Eviction

Status BufferObject::EvictUntil(ResourceManager* man, const Place& place, OperationContext& ctx,
                                const BudgetGroup* limit,
                                const std::function<Result<bool>()>& goal) {
  WwAcquireContext* ticket = const_cast<WwAcquireContext*>(resv()->LockingTicket());
  BudgetTree* budgets = device_->budgets();
  const int region = device_->budget_region(place.mem_type);
  const bool budgeted = budgets != nullptr && client_ != nullptr && region >= 0;
  // The allocating group's protection: below min it may take low-protected objects at once;
  // below low only unprotected ones; either way never its own group's.
  const bool below_min = budgeted && budgets->BelowMin(client_, region);
  const bool below_low = budgeted && budgets->BelowLow(client_, region);
  bool ignore_low = below_min;
  bool hit_low = false;
  // A first walk takes only objects of groups above their high (uttm's dmem.high: the soft
  // limit is enforced by who is evicted first).
  bool over_high_only = budgets != nullptr && region >= 0 && budgets->HasHighLimits(region);
  std::int64_t evicted = 0;
  auto evict_one = [&](BufferObject& victim, OperationContext& wctx) -> Result<std::int64_t> {
    victim.resv()->AssertHeld();  // the walk hands over reserved victims
    if (victim.pin_count() > 0 || victim.resource() == nullptr) return std::int64_t{0};
    BudgetGroup* victim_group = victim.budget_group();
    if (over_high_only && !budgets->OverHigh(victim_group, region)) return std::int64_t{0};
    bool breach = false;
    if (budgeted) {
      if ((below_min || below_low) && victim_group == client_) return std::int64_t{0};
      if (!budgets->EvictValuable(limit, client_, victim_group, region, ignore_low, &hit_low)) {
        return std::int64_t{0};
      }
      breach = budgets->BelowLow(victim_group, region);
    }
    // Asked of zombies and ghosts too (ttm_bo_evict_cb): one outside the wanted range is not
    // worth waiting for.
    if (!device_->funcs().EvictionValuable(victim, place)) return std::int64_t{0};
    UTTM_RETURN_IF_ERROR(victim.EvictAsVictim(wctx));
    ++evicted;
    device_->stats().Add(Stat::kEvictions);
    if (budgeted) budgets->CountEviction(client_, victim_group, region, breach);
    UTTM_ASSIGN_OR_RETURN(bool done, goal());
    return std::int64_t{done ? 1 : 0};
  };

  auto walk = [&](WwAcquireContext* lock_ticket) -> Result<std::int64_t> {
    LruWalkArg arg{.ctx = &ctx,
                   .ticket = lock_ticket,
                   .trylock_only = lock_ticket == nullptr,
                   .owner = ticket};
    return LruWalkForEvict(device_, man, arg, 1, evict_one);
  };
  Result<std::int64_t> got = std::int64_t{0};
  if (over_high_only) {
    got = walk(nullptr);
    if (!got.ok()) return got.status();
    if (*got > 0) return Status();
    over_high_only = false;
  }
  got = walk(nullptr);
  if (!got.ok()) return got.status();
  if (*got > 0) return Status();
  // Only low-protected objects were in the way: take them too (TTM's try_low pass), unless the
  // allocation is itself protected by low only.
  const bool may_try_low = !(below_low && !below_min);
  if (hit_low && !ignore_low && may_try_low) {
    ignore_low = true;
    got = walk(nullptr);
    if (!got.ok()) return got.status();
    if (*got > 0) return Status();
  }
  if (ticket != nullptr && !ctx.trylock_only) {
    // One ticketed lock per walk; keep walking while walks make progress.
    do {
      evicted = 0;
      got = walk(ticket);
      if (!got.ok()) return got.status();
      if (*got > 0) return Status();
    } while (evicted > 0);
  }
  return Status(Errc::kBusy, "nothing evictable");
}

Status BufferObject::Evict(OperationContext& ctx) {
  Placement placement;
  device_->funcs().EvictFlags(*this, &placement);
  if (placement.empty()) {
    UTTM_RETURN_IF_ERROR(WaitIdle(ctx));
    return PipelineGutting();
  }
  UTTM_ASSIGN_OR_RETURN(std::unique_ptr<Resource> res, MemSpace(placement, ctx));
  return MoveWithHops(std::move(res), /*evict=*/true, ctx);
}

// ---------------------------------------------------------------------------------------------
// Moves

std::uint32_t BufferObject::TtFlags(bool zero_alloc) const {
  std::uint32_t flags = tt_flags_;
  if (type_ == BoType::kSg)
    flags |= kPageVectorExternal;  // imported pages: never pooled or counted
  if (type_ == BoType::kDevice && zero_alloc) flags |= kPageVectorZeroAlloc;
  return flags;
}

Status BufferObject::CreateTt(bool zero_alloc) {
  if (tt_) return Status();
  UTTM_ASSIGN_OR_RETURN(tt_, device_->funcs().TtCreate(*this, TtFlags(zero_alloc)));
  if (!tt_) return Status(Errc::kNoMemory, "driver could not create a page vector");
  tt_->set_keep_clean_copy(device_->keep_clean_copies());
  tt_->set_element_size(element_size_);
  AttachTouchRange();
  return Status();
}

void BufferObject::ReleaseTtPages() {
  if (!tt_) return;
  const bool had_pages = tt_->is_populated() || tt_->resident_pages().value() > 0;
  // A backup's handles and leftovers go (their contents are dropped with the object's).
  if (tt_->is_swapped()) tt_->DiscardBackup();
  // The driver hears of every vector that loses pages (its accounting, the shrinker's records).
  if (had_pages || tt_->is_populated()) device_->funcs().TtUnpopulate(*this, *tt_);
}

void BufferObject::DestroyTt() {
  if (!tt_) return;
  ReleaseTtPages();
  tt_->DetachRange();
  tt_.reset();
}

Status BufferObject::AssignSystemResource() {
  UTTM_ASSIGN_OR_RETURN(std::unique_ptr<Resource> res,
                        ResourceAlloc(Place{.mem_type = kMemSystem}));
  AssignResource(std::move(res));
  return Status();
}

Status BufferObject::HandleMoveMem(std::unique_ptr<Resource>& new_res, bool evict,
                                   OperationContext& ctx, Place* hop) {
  // Pages without a resource (none should exist, see Access) are filed under SYSTEM first, so
  // the driver copies them instead of treating the move as one from nothing.
  if (!resource_ && tt_ && (tt_->is_populated() || tt_->is_swapped())) {
    UTTM_RETURN_IF_ERROR(AssignSystemResource());
  }
  bool old_use_tt = !resource_ || resource_->manager()->use_tt();
  ResourceManager* new_man = new_res->manager();
  if (new_man->use_tt()) {
    UTTM_RETURN_IF_ERROR(CreateTt(old_use_tt));
    if (new_res->mem_type() != kMemSystem) UTTM_RETURN_IF_ERROR(Populate(ctx));
  }
  resv()->AssertHeld();
  UTTM_RETURN_IF_ERROR(resv()->ReserveFences(1));
  Status s = device_->funcs().Move(*this, evict, ctx, new_res, hop);
  if (!s.ok()) {
    // The object stays in device memory: the page vector made for the move holds nothing of
    // value (ttm_bo_handle_move_mem destroys it too).
    if (s.code() != Errc::kMultihop && !old_use_tt && tt_) DestroyTt();
    return s;
  }
  UTTM_CHECK(new_res == nullptr, "driver Move succeeded without taking the new resource");
  // Contents copied in from device memory: a clean copy the vector had is stale.
  if (!old_use_tt && tt_) tt_->DropCleanCopy();
  ctx.bytes_moved += size_.value();
  device_->stats().Add(Stat::kBytesMoved, size_.value());
  return Status();
}

Status BufferObject::BounceTempBuffer(const Place& hop, OperationContext& ctx) {
  Placement hop_placement{hop};
  UTTM_ASSIGN_OR_RETURN(std::unique_ptr<Resource> hop_res, MemSpace(hop_placement, ctx));
  Place nested;
  Status s = HandleMoveMem(hop_res, false, ctx, &nested);
  if (!s.ok()) {
    if (hop_res) ResourceFree(std::move(hop_res));
    if (s.code() == Errc::kMultihop) {
      return Status(Errc::kInvalid, "driver asked for a multihop from a bounce placement");
    }
  }
  return s;
}

Status BufferObject::MoveWithHops(std::unique_ptr<Resource> new_res, bool evict,
                                  OperationContext& ctx) {
  for (int hops = 0;; ++hops) {
    Place hop;
    Status s = HandleMoveMem(new_res, evict, ctx, &hop);
    if (s.ok()) return s;
    if (s.code() != Errc::kMultihop || hops >= 4) {
      if (new_res) ResourceFree(std::move(new_res));
      if (s.code() == Errc::kMultihop) return Status(Errc::kInvalid, "multihop loop");
      return s;
    }
    hop.flags |= kPlaceTemporary;
    Status b = BounceTempBuffer(hop, ctx);
    if (!b.ok()) {
      ResourceFree(std::move(new_res));
      return b;
    }
  }
}

Status BufferObject::Validate(const Placement& placement, OperationContext& ctx) {
  if (placement.empty()) {
    if (pin_count_ > 0) return Status(Errc::kInvalid, "a pinned buffer object cannot be gutted");
    return PipelineGutting();
  }
  bool force_space = false;
  bool over_budget = false;
  Status ret;
  do {
    if (resource_ && ResourceCompatible(*resource_, placement, force_space)) return Status();
    if (pin_count_ > 0) return Status(Errc::kInvalid, "a pinned buffer object cannot move");
    Result<std::unique_ptr<Resource>> res =
        AllocResource(placement, ctx, force_space, &over_budget);
    force_space = !force_space;
    if (res.code() == Errc::kNoSpace) {
      ret = res.status();
      continue;
    }
    if (!res.ok()) return res.status();
    ret = MoveWithHops(std::move(res).value(), /*evict=*/false, ctx);
    if (!ret.ok()) return ret;
  } while (!ret.ok() && force_space);
  if (ret.code() == Errc::kNoSpace) {
    // A client over its own max is not out of memory: the error names its group.
    if (device_->propagate_nospace() || over_budget) return ret;
    return Status(Errc::kNoMemory, "no space in any placement");
  }
  if (!resource_ || resource_->mem_type() == kMemSystem) UTTM_RETURN_IF_ERROR(CreateTt(true));
  return Status();
}

void BufferObject::MoveNull(std::unique_ptr<Resource> new_res) {
  AssignResource(std::move(new_res));
}

Status BufferObject::MoveMemcpy(OperationContext& ctx, std::unique_ptr<Resource> new_res) {
  Status s = CopyMove(ctx, new_res);
  // On failure the object stays where it was; the resource it did not move into goes back to its
  // manager (destroying it while it is on the LRU would corrupt the list).
  if (!s.ok() && new_res) ResourceFree(std::move(new_res));
  return s;
}

Status BufferObject::CopyMove(OperationContext& ctx, std::unique_ptr<Resource>& new_res) {
  UTTM_RETURN_IF_ERROR(WaitIdle(ctx));
  if (ShouldFail(FaultPoint::kMoveCopy)) {
    return Status(Errc::kIo, "injected failure of a copy between placements");
  }
  const Resource* old = resource_.get();
  bool old_tt = old == nullptr || old->manager()->use_tt();
  bool new_tt = new_res->manager()->use_tt();
  // A source swapped out or backed up comes back first (ttm_bo_move_memcpy populates a swapped
  // tt): its contents are in the store, and the restore drops the store's copy.
  if (old_tt && tt_ && tt_->is_swapped()) UTTM_RETURN_IF_ERROR(Populate(ctx));
  // Source: page vector (may be unpopulated: then zeroes), device memory, or nothing.
  auto src_page = [&](std::size_t i) -> const std::byte* {
    if (old_tt) return (tt_ && tt_->is_populated()) ? tt_->PageAddress(i) : nullptr;
    std::byte* base = device_->funcs().AccessMemory(*old);
    return base == nullptr ? nullptr : base + i * kPageSize;
  };
  std::byte* dst_base = new_tt ? nullptr : device_->funcs().AccessMemory(*new_res);
  if (new_tt) {
    UTTM_RETURN_IF_ERROR(CreateTt(true));
    UTTM_RETURN_IF_ERROR(Populate(ctx));
  } else if (dst_base == nullptr) {
    return Status(Errc::kFault, "destination memory is not CPU accessible");
  }
  if (!old_tt && src_page(0) == nullptr && old != nullptr) {
    return Status(Errc::kFault, "source memory is not CPU accessible");
  }
  const std::size_t pages = num_pages().value();
  for (std::size_t i = 0; i < pages; ++i) {
    std::byte* dst = new_tt ? tt_->PageAddress(i) : dst_base + i * kPageSize;
    const std::byte* src = src_page(i);
    if (src == nullptr) {
      std::memset(dst, 0, kPageSize);
    } else {
      std::memcpy(dst, src, kPageSize);
    }
  }
  // Leaving page-vector memory for device memory: the pages are no longer needed.
  if (old_tt && !new_tt && tt_) {
    if (tt_->is_populated()) device_->funcs().TtUnpopulate(*this, *tt_);
  }
  AssignResource(std::move(new_res));
  return Status();
}

Status BufferObject::MoveAccelCleanup(FenceRef fence, bool evict, bool pipeline,
                                      std::unique_ptr<Resource> new_res) {
  Status s = AccelCleanup(std::move(fence), evict, pipeline, new_res);
  if (!s.ok() && new_res) ResourceFree(std::move(new_res));
  return s;
}

Status BufferObject::AccelCleanup(FenceRef fence, bool evict, bool pipeline,
                                  std::unique_ptr<Resource>& new_res) {
  resv()->AssertHeld();
  UTTM_RETURN_IF_ERROR(resv()->ReserveFences(1));
  UTTM_RETURN_IF_ERROR(resv()->AddFence(fence, ResvUsage::kKernel));
  bool old_tt = !resource_ || resource_->manager()->use_tt();
  if (!evict) {
    if (resource_) {
      bool keep_tt = new_res->manager()->use_tt();
      std::unique_ptr<PageVector> tt_keep;
      if (keep_tt) tt_keep = std::move(tt_);
      Status s = TransferToGhost();
      if (keep_tt) tt_ = std::move(tt_keep);
      UTTM_RETURN_IF_ERROR(s);
    }
  } else if (pipeline && !old_tt && resource_) {
    resource_->manager()->SetMoveFence(fence);
    ResourceFree(std::move(resource_));
  } else if (resource_) {
    OperationContext wait_ctx;
    Status s = fence->Wait(wait_ctx, kMoveWaitTimeout);
    if (s.code() == Errc::kTimedOut) return Status(Errc::kBusy, "move did not finish in time");
    UTTM_RETURN_IF_ERROR(s);
    if (!new_res->manager()->use_tt() && tt_ && tt_->is_populated()) {
      device_->funcs().TtUnpopulate(*this, *tt_);
    }
    ResourceFree(std::move(resource_));
  }
  AssignResource(std::move(new_res));
  return Status();
}

Status BufferObject::TransferToGhost() {
  BoOptions opts;
  opts.type = BoType::kKernel;
  opts.size = size_;
  opts.priority = priority_;
  opts.caching = caching_;
  auto* ghost = new BufferObject(device_, opts);
  ghost->ghost_ = true;
  Get();
  ghost->ghost_parent_ = this;
  bool locked = ghost->resv()->TryLock();
  UTTM_CHECK(locked, "a fresh ghost reservation must be free");
  ghost->resv()->CopyFences(*resv_);
  ghost->resource_ = std::move(resource_);
  if (tt_) tt_->DetachRange();  // a restore-on-touch range stays with this object
  ghost->tt_ = std::move(tt_);
  {
    MutexLock lock(device_->lru().lock());
    if (ghost->resource_) {
      ghost->resource_->set_bo(ghost);
      device_->lru().SetBulkMove(ghost->resource_.get(), nullptr);
      // Unpinned, but a swapped-out vector has nothing left to reclaim: unevictable still.
      device_->lru().SetUnevictable(ghost->resource_.get(), ghost->WantsUnevictable());
      device_->lru().MoveToTail(ghost->resource_.get());
    }
  }
  ghost->resv()->AssertHeld();
  ghost->resv()->Unlock();
  ghost->Put();  // busy until the fence signals: becomes a zombie cleaned up later
  return Status();
}

Status BufferObject::PipelineGutting() {
  if (!resource_ && tt_ && !tt_->is_populated()) return Status();
  bool idle = resv()->TestSignaled(ResvUsage::kBookkeep);
  if (idle) {
    if (!tt_) {
      UTTM_RETURN_IF_ERROR(CreateTt(true));
    } else {
      ReleaseTtPages();
    }
    if (resource_) ResourceFree(std::move(resource_));
    return Status();
  }
  // Busy: the old memory goes to a ghost that waits for the fences; we get a fresh, cleared
  // page vector so no old content can leak.
  std::unique_ptr<PageVector> fresh;
  UTTM_ASSIGN_OR_RETURN(fresh, device_->funcs().TtCreate(*this, TtFlags(/*zero_alloc=*/true)));
  UTTM_RETURN_IF_ERROR(TransferToGhost());
  tt_ = std::move(fresh);
  AttachTouchRange();
  return Status();
}

// ---------------------------------------------------------------------------------------------
// Pin, populate, wait, priority, bulk

void BufferObject::Pin() {
  if (pin_count_++ == 0) {
    UpdateLruState();
    device_->funcs().PinNotify(*this);
  }
}

void BufferObject::Unpin() {
  UTTM_CHECK(pin_count_ > 0, "Unpin of an object that is not pinned");
  if (--pin_count_ == 0) {
    UpdateLruState();
    device_->funcs().PinNotify(*this);
  }
}

Status BufferObject::Populate(OperationContext& ctx) {
  if (!tt_) return Status();
  bool was_swapped = tt_->is_swapped();
  if (tt_->is_populated() && !was_swapped) return Status();
  Status s = device_->funcs().TtPopulate(*this, *tt_, ctx);
  // A restore that kept clean copies: they hold as long as no fence that may write is added.
  if (tt_->has_clean_copy()) clean_mark_ = resv()->write_fences_added();
  // Restored, or partly (a failed restore holds pages): back on an evictable list.
  if (was_swapped) UpdateLruState();
  return s;
}

Result<bool> BufferObject::Madvise(Madvice advice, const OperationContext& ctx) {
  if (advice != Madvice::kWillNeed && advice != Madvice::kDontNeed) {
    return Status(Errc::kInvalid, "Madvise: advice must be kWillNeed or kDontNeed");
  }
  UTTM_RETURN_IF_ERROR(Reserve(ctx));
  resv()->AssertHeld();
  const bool retained = madv_ != Madvice::kPurged;
  if (retained && madv_ != advice) {
    madv_ = advice;
    device_->funcs().MadviseNotify(*this);
  }
  resv()->Unlock();
  return retained;
}

void BufferObject::DropStaleCleanCopy() {
  if (tt_ && tt_->has_clean_copy() && resv()->write_fences_added() != clean_mark_) {
    tt_->DropCleanCopy();
  }
}

void BufferObject::MarkPurged() {
  if (madv_ == Madvice::kPurged) return;
  madv_ = Madvice::kPurged;
  device_->funcs().MadviseNotify(*this);
}

Status BufferObject::WaitIdle(const OperationContext& ctx) {
  if (resv()->TestSignaled(ResvUsage::kBookkeep)) return Status();
  if (ctx.no_wait_gpu) return Status(Errc::kBusy, "buffer object is busy");
  Status s = resv()->Wait(ResvUsage::kBookkeep, ctx, kMoveWaitTimeout);
  if (s.code() == Errc::kTimedOut) return Status(Errc::kBusy, "buffer object stayed busy");
  return s;
}

void BufferObject::SetPriority(unsigned priority) {
  UTTM_CHECK(priority < kNumPriorities, "priority out of range");
  priority_ = priority;
  if (!resource_) return;
  MutexLock lock(device_->lru().lock());
  device_->lru().SetPriority(resource_.get(), priority);
}

void BufferObject::SetBulkMove(LruBulkMove* bulk) {
  MutexLock lock(device_->lru().lock());
  bulk_move_ = bulk;
  if (resource_) device_->lru().SetBulkMove(resource_.get(), bulk);
}

// ---------------------------------------------------------------------------------------------
// CPU access

Status BufferObject::Access(std::uint64_t offset, std::byte* buf, std::size_t len, bool write,
                            OperationContext& ctx) {
  if (offset > size_.value() || len > size_.value() - offset) {
    return Status(Errc::kInvalid, "access beyond the end of the buffer object");
  }
  UTTM_RETURN_IF_ERROR(Reserve(ctx));
  resv()->AssertHeld();
  Status s = WaitIdle(ctx);
  if (s.ok()) {
    if (!resource_ || resource_->manager()->use_tt()) {
      // Pages only ever live under a resource, so the LRU and the shrinkers reach them: an object
      // gutted or created without a placement is filed under SYSTEM when the CPU first uses it.
      if (!resource_) s = AssignSystemResource();
      if (s.ok() && !tt_) s = CreateTt(true);
      if (s.ok()) s = Populate(ctx);
      if (s.ok()) {
        s = write ? tt_->Write(offset, std::span<const std::byte>(buf, len))
                  : tt_->Read(offset, std::span<std::byte>(buf, len));
      }
    } else {
      std::byte* base = device_->funcs().AccessMemory(*resource_);
      if (base == nullptr) {
        s = Status(Errc::kFault, "buffer object memory is not CPU accessible");
      } else if (write) {
        std::memcpy(base + offset, buf, len);
      } else {
        std::memcpy(buf, base + offset, len);
      }
    }
  }
  Unreserve();
  return s;
}

Status BufferObject::Read(std::uint64_t offset, std::span<std::byte> out, OperationContext& ctx) {
  return Access(offset, out.data(), out.size(), false, ctx);
}

Status BufferObject::Write(std::uint64_t offset, std::span<const std::byte> data,
                           OperationContext& ctx) {
  return Access(offset, const_cast<std::byte*>(data.data()), data.size(), true, ctx);
}

}  // namespace uttm
