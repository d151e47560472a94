// Copyright (c) uttm developers.
//
// LRU walks at the buffer-object level (the walk rules of ttm_lru_walk_for_evict and the bo LRU
// cursor in ttm_bo_util.c): ReservedBoCursor, eviction order, contention, concurrent bumps and
// frees, zombies, ghosts, pipelined eviction, the two validation passes, and an ExecContext
// transaction over several objects. Cases already in ttm_bo_validate_test.cc (move fence signaled /
// not signaled, deleted / pinned eviction) are not repeated.
#include "uttm/lru_walk.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "base/check.h"
#include "testing/bo_content.h"
#include "testing/test_device.h"
#include "uttm/buffer_object.h"
#include "uttm/exec_context.h"

namespace uttm {
namespace {

using testing::ExpectContent;
using testing::Fill;

using namespace unit_literals;
using testing::kMemMock1;
using testing::PlacementOf;
using testing::PlaceOf;
using testing::TestDevice;
using testing::TestDriver;

// Holds a reservation from another thread until Release() (a real contender).
class ForeignLock {
 public:
  // `before_unlock` runs on the holding thread right before it unlocks (e.g. moves the object).
  explicit ForeignLock(Reservation* resv, std::function<void()> before_unlock = nullptr)
      : resv_(resv), before_unlock_(std::move(before_unlock)) {
    std::promise<void> locked;
    auto ready = locked.get_future();
    thread_ = std::thread([this, p = std::move(locked)]() mutable {
      Status s = resv_->Lock(nullptr);
      UTTM_CHECK(s.ok(), "foreign lock failed");
      resv_->AssertHeld();
      p.set_value();
      release_.get_future().wait();
      if (before_unlock_) before_unlock_();
      resv_->Unlock();
    });
    ready.wait();
  }
  ~ForeignLock() { Release(); }
  void Release() {
    std::call_once(released_, [this] {
      release_.set_value();
      thread_.join();
    });
  }
  // Releases after `delay` from another thread (while the test blocks on the lock).
  std::thread ReleaseLater(std::chrono::milliseconds delay) {
    return std::thread([this, delay] {
      std::this_thread::sleep_for(delay);
      Release();
    });
  }

 private:
  Reservation* resv_;
  std::function<void()> before_unlock_;
  std::promise<void> release_;
  std::once_flag released_;
  std::thread thread_;
};

// A driver that completes arena-to-arena moves "asynchronously": it copies the bytes, then hands
// the new resource over with MoveAccelCleanup and `fence` (pending until the test signals it).
class AccelDriver : public TestDriver {
 public:
  FenceRef fence;
  bool pipeline = false;
  Status Move(BufferObject& bo, bool evict, OperationContext& ctx,
              std::unique_ptr<Resource>& new_res, Place* hop) override {
    const Resource* old = bo.resource();
    std::byte* src = old != nullptr ? AccessMemory(*old) : nullptr;
    std::byte* dst = AccessMemory(*new_res);
    if (old == nullptr && dst != nullptr && (bo.tt() == nullptr || !bo.tt()->is_populated())) {
      // Fresh device memory: the engine clears it, ordered after the manager's move fence (which
      // the object carries), so no CPU wait here. The copies of this test's engine are done by
      // the time Move returns, so the CPU stands in for it.
      std::memset(dst, 0, bo.size().value());
      bo.resv()->AssertHeld();
      bo.MoveNull(std::move(new_res));
      return Status();
    }
    if (!fence || src == nullptr || dst == nullptr) {
      return TestDriver::Move(bo, evict, ctx, new_res, hop);
    }
    std::memcpy(dst, src, bo.size().value());
    bo.resv()->AssertHeld();
    return bo.MoveAccelCleanup(fence, evict, pipeline, std::move(new_res));
  }
};

class LruWalkTest : public ::testing::Test {
 protected:
  BoRef Make(MemType type, Bytes size = 64_KiB, unsigned priority = 0, std::uint32_t flags = 0) {
    OperationContext ctx;
    BoOptions opts{.size = size, .priority = priority};
    auto bo = BufferObject::Create(dev_.get(), opts, PlacementOf(type, flags), ctx);
    UTTM_CHECK(bo.ok(), "test object creation failed");
    return std::move(bo).value();
  }
  void Pin(BufferObject& bo, bool pin) {
    OperationContext ctx;
    ASSERT_TRUE(bo.Reserve(ctx).ok());
    bo.resv()->AssertHeld();
    pin ? bo.Pin() : bo.Unpin();
    bo.Unreserve();
  }
  Status ValidateLocked(BufferObject& bo, const Placement& p, OperationContext& ctx) {
    UTTM_RETURN_IF_ERROR(bo.Reserve(ctx));
    bo.resv()->AssertHeld();
    Status s = bo.Validate(p, ctx);
    bo.Unreserve();
    return s;
  }
  // Walks `type` and returns the objects yielded, checking each is locked and referenced.
  std::vector<BufferObject*> Walk(MemType type, WwAcquireContext* ticket = nullptr,
                                  OperationContext* ctx_in = nullptr) {
    OperationContext local;
    LruWalkArg arg{.ctx = ctx_in != nullptr ? ctx_in : &local, .ticket = ticket};
    ReservedBoCursor cursor(dev_.get(), dev_->manager(type), arg);
    std::vector<BufferObject*> out;
    for (;;) {
      auto next = cursor.Next();
      EXPECT_TRUE(next.ok()) << next.status().ToString();
      if (!next.ok() || *next == nullptr) break;
      EXPECT_TRUE((*next)->resv()->IsLocked());
      EXPECT_GE((*next)->refcount(), 2);  // the test's and the cursor's
      EXPECT_EQ((*next)->resource()->mem_type(), type);
      out.push_back(*next);
    }
    return out;
  }

  // A device of the test's own on the accel driver, with `pages`-page VRAM and MOCK1 arenas.
  std::unique_ptr<Device> MakeArenaDevice(const char* name, std::uint64_t pages) {
    auto device = Device::Create(&driver_, DeviceOptions{.name = name});
    UTTM_CHECK(device.ok(), "test device creation failed");
    UTTM_CHECK((*device)
                   ->SetManager(std::make_unique<testing::ArenaManager>(kMemVram, PageCount(pages)))
                   .ok(),
               "VRAM arena");
    UTTM_CHECK(
        (*device)
            ->SetManager(std::make_unique<testing::ArenaManager>(kMemMock1, PageCount(pages)))
            .ok(),
        "MOCK1 arena");
    return std::move(device).value();
  }

  // Validates a new 64 KiB object into pages [16, 32) of `d`'s VRAM while a busy `what` (a zombie
  // or a ghost) holds [0, 16) under `busy`, which signals half a second later: a walk that waited
  // for it would return only then, with it freed. Expects neither, and the object at 16.
  BoRef ValidateIntoUpperHalf(Device* d, const FenceRef& busy, const char* what) {
    OperationContext ctx;
    auto want = BufferObject::Create(d, BoOptions{.size = 64_KiB}, Placement(), ctx);
    EXPECT_TRUE(want.ok());
    if (!want.ok()) return BoRef();
    std::thread signaller([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      (void)busy->Signal();
    });
    Place upper{.fpfn = 16, .lpfn = 32, .mem_type = kMemVram};
    Status s = ValidateLocked(**want, Placement{upper}, ctx);
    const bool alive = !busy->IsSignaled();
    const std::uint64_t usage = d->manager(kMemVram)->usage();
    signaller.join();
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (s.ok()) {
      EXPECT_EQ((*want)->resource()->start(), 16u);
    }
    EXPECT_TRUE(alive) << "the validation waited for the " << what;
    EXPECT_EQ(usage, (128_KiB).value()) << "the " << what << " no longer held its range";
    return std::move(want).value();
  }

  AccelDriver driver_;
  TestDevice dev_{PageCount(256)};
};

TEST_F(LruWalkTest, CursorYieldsLockedReferencedOldestFirstPriorityZeroFirst) {
  BoRef a = Make(kMemVram, 64_KiB, 1);
  BoRef b = Make(kMemVram, 64_KiB, 0);
  BoRef pinned = Make(kMemVram, 64_KiB, 0);
  BoRef c = Make(kMemVram, 64_KiB, 0);
  BoRef d = Make(kMemVram, 64_KiB, 3);
  Pin(*pinned, true);
  std::vector<BufferObject*> order = Walk(kMemVram);
  EXPECT_EQ(order, (std::vector<BufferObject*>{b.get(), c.get(), a.get(), d.get()}));
  // Everything was released again.
  for (BufferObject* bo : {a.get(), b.get(), c.get(), d.get()}) {
    EXPECT_FALSE(bo->resv()->IsLocked());
    EXPECT_EQ(bo->refcount(), 1);
  }
  // Using b marks it most recently used: it moves behind c.
  OperationContext ctx;
  ASSERT_TRUE(b->Reserve(ctx).ok());
  b->resv()->AssertHeld();
  b->Unreserve();
  EXPECT_EQ(Walk(kMemVram), (std::vector<BufferObject*>{c.get(), b.get(), a.get(), d.get()}));
  Pin(*pinned, false);
}

// A 2026 xe fix: shared and imported objects move to the LRU tail when used, like the others. An
// object sharing another's reservation and an imported (sg) object each go to the tail when
// reserved and released.
TEST_F(LruWalkTest, SharedAndImportedObjectsMoveToTheTailWhenUsed) {
  OperationContext ctx;
  BoRef owner = Make(kMemTt);
  BoOptions shared_opts{.size = 64_KiB};
  shared_opts.resv = owner->resv();
  ASSERT_TRUE(owner->Reserve(ctx).ok());  // a shared reservation is held by its creator
  owner->resv()->AssertHeld();
  auto shared = BufferObject::Create(dev_.get(), shared_opts, PlacementOf(kMemTt), ctx);
  owner->Unreserve();  // the owner was used: to the tail
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  BoOptions sg_opts{.size = 64_KiB};
  sg_opts.type = BoType::kSg;
  auto imported = BufferObject::Create(dev_.get(), sg_opts, PlacementOf(kMemTt), ctx);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  BoRef last = Make(kMemTt);
  using Order = std::vector<BufferObject*>;
  EXPECT_EQ(Walk(kMemTt), (Order{shared->get(), owner.get(), imported->get(), last.get()}));
  auto use = [&](BufferObject& bo) {
    ASSERT_TRUE(bo.Reserve(ctx).ok());
    bo.resv()->AssertHeld();
    bo.Unreserve();
  };
  use(**shared);
  EXPECT_EQ(Walk(kMemTt), (Order{owner.get(), imported->get(), last.get(), shared->get()}));
  use(**imported);
  EXPECT_EQ(Walk(kMemTt), (Order{owner.get(), last.get(), shared->get(), imported->get()}));
  use(*owner);
  EXPECT_EQ(Walk(kMemTt), (Order{last.get(), shared->get(), imported->get(), owner.get()}));
}

TEST_F(LruWalkTest, ContendedObjectSkippedWithTrylockTakenOnceWithTicket) {
  BoRef a = Make(kMemVram);
  BoRef b = Make(kMemVram);
  BoRef c = Make(kMemVram);
  BoRef d = Make(kMemVram);
  {
    ForeignLock hold_b(b->resv());
    EXPECT_EQ(Walk(kMemVram), (std::vector<BufferObject*>{a.get(), c.get(), d.get()}));
    // trylock_only and no_wait_gpu forbid the ticketed lock.
    WwAcquireContext ticket;
    OperationContext no_wait;
    no_wait.no_wait_gpu = true;
    EXPECT_EQ(Walk(kMemVram, &ticket, &no_wait),
              (std::vector<BufferObject*>{a.get(), c.get(), d.get()}));
  }
  // b and c held elsewhere; b is released while the walk blocks on it with the ticket; c is
  // skipped because the walk has used its one ticketed lock.
  ForeignLock hold_b(b->resv());
  ForeignLock hold_c(c->resv());
  std::thread releaser = hold_b.ReleaseLater(std::chrono::milliseconds(20));
  WwAcquireContext ticket;
  std::vector<BufferObject*> order = Walk(kMemVram, &ticket);
  releaser.join();
  EXPECT_EQ(order, (std::vector<BufferObject*>{a.get(), b.get(), d.get()}));
  EXPECT_EQ(ticket.acquired(), 0);
}

TEST_F(LruWalkTest, ObjectMovedAwayWhileWaitingIsSkipped) {
  BoRef a = Make(kMemVram);
  BoRef b = Make(kMemVram);
  BoRef c = Make(kMemVram);
  BufferObject* moved = b.get();
  // The holder moves b to TT before unlocking: the walk, blocked on b, must notice.
  ForeignLock hold_b(b->resv(), [moved] {
    OperationContext ctx;
    moved->resv()->AssertHeld();  // ForeignLock runs this holding b's reservation
    Status s = moved->Validate(PlacementOf(kMemTt), ctx);
    UTTM_CHECK(s.ok(), "move to TT failed");
  });
  std::thread releaser = hold_b.ReleaseLater(std::chrono::milliseconds(20));
  WwAcquireContext ticket;
  OperationContext ctx;
  LruWalkArg arg{.ctx = &ctx, .ticket = &ticket};
  ReservedBoCursor cursor(dev_.get(), dev_->manager(kMemVram), arg);
  auto first = cursor.Next();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, a.get());
  auto second = cursor.Next();  // blocks on b, finds it in TT, goes on
  releaser.join();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, c.get());
  EXPECT_EQ(b->resource()->mem_type(), kMemTt);
  EXPECT_EQ(b->refcount(), 1);
  EXPECT_FALSE(b->resv()->IsLocked());
}

TEST_F(LruWalkTest, ConcurrentBumpsNeitherSkipNorLoop) {
  constexpr int kObjects = 16;
  std::vector<BoRef> bos;
  for (int i = 0; i < kObjects; ++i) bos.push_back(Make(kMemVram, 16_KiB));
  std::atomic<bool> stop{false};
  std::atomic<int> bumps{0};
  // The bumper moves objects to the LRU tail directly under the LRU lock (as a command
  // submission does), so it never contends for reservations with the walk.
  std::thread bumper([&] {
    unsigned i = 0;
    Lru& lru = dev_->lru();
    while (!stop.load() && bumps.load() < 20000) {
      MutexLock lock(lru.lock());
      lru.MoveToTail(bos[i++ % kObjects]->resource());
      bumps.fetch_add(1);
    }
  });
  while (bumps.load() == 0) std::this_thread::yield();
  for (int round = 0; round < 20; ++round) {
    std::set<BufferObject*> seen;
    std::size_t yields = 0;
    for (BufferObject* bo : Walk(kMemVram)) {
      seen.insert(bo);
      ++yields;
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kObjects)) << "round " << round;
    EXPECT_LE(yields, static_cast<std::size_t>(kObjects) + 20000u);
  }
  stop = true;
  bumper.join();
}

TEST_F(LruWalkTest, ObjectFreedWhileCursorIsParkedOnIt) {
  BoRef a = Make(kMemVram);
  BoRef b = Make(kMemVram);
  BoRef c = Make(kMemVram);
  OperationContext ctx;
  LruWalkArg arg{.ctx = &ctx};
  ReservedBoCursor cursor(dev_.get(), dev_->manager(kMemVram), arg);
  auto first = cursor.Next();
  ASSERT_TRUE(first.ok() && *first == a.get());
  // The test drops its reference: the cursor's keeps a alive until it advances.
  a.reset();
  EXPECT_EQ(dev_->bo_count(), 3u);
  // Another thread frees b (the next one in line) while the cursor is parked.
  std::thread([&] { b.reset(); }).join();
  auto second = cursor.Next();  // releases a (the last reference), skips the freed b
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, c.get());
  dev_->FlushDelayedDeletes();
  EXPECT_EQ(dev_->bo_count(), 1u);
  EXPECT_EQ(dev_->manager(kMemVram)->usage(), (64_KiB).value());
  auto end = cursor.Next();
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, nullptr);
}

// A zombie (released while busy) stays on the LRU; the walk yields it and EvictFirst reclaims it
// (waiting for its fence, or kBusy with no_wait_gpu).
TEST_F(LruWalkTest, ZombieOnLruIsReclaimedByEvictFirst) {
  BoRef live = Make(kMemVram);
  BoRef victim = Make(kMemVram);
  FenceRef busy = Fence::Create(Fence::AllocateContext(), 1);
  OperationContext ctx;
  ASSERT_TRUE(victim->Reserve(ctx).ok());
  victim->resv()->AssertHeld();
  ASSERT_TRUE(victim->resv()->ReserveFences(1).ok());
  ASSERT_TRUE(victim->resv()->AddFence(busy, ResvUsage::kBookkeep).ok());
  victim->Unreserve();
  BufferObject* zombie = victim.get();
  victim.reset();
  // Bump `live` so the zombie is first on the LRU.
  ASSERT_TRUE(live->Reserve(ctx).ok());
  live->resv()->AssertHeld();
  live->Unreserve();
  std::vector<BufferObject*> order = Walk(kMemVram);
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], zombie);
  EXPECT_TRUE(order[0]->deleted());
  OperationContext no_wait;
  no_wait.no_wait_gpu = true;
  EXPECT_EQ(BufferObject::EvictFirst(*dev_.get(), dev_->manager(kMemVram), no_wait).code(),
            Errc::kBusy);
  std::thread signaller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    (void)busy->Signal();
  });
  Status s = BufferObject::EvictFirst(*dev_.get(), dev_->manager(kMemVram), ctx);
  signaller.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(dev_->manager(kMemVram)->usage(), (64_KiB).value());  // only `live` is left
  EXPECT_EQ(live->resource()->mem_type(), kMemVram);
  dev_->FlushDelayedDeletes();
  EXPECT_EQ(dev_->bo_count(), 1u);
}

// An eviction for a range asks the driver whether each victim is worth it, zombies and ghosts
// included (ttm_bo_evict_cb): a busy zombie outside the range is neither waited for nor freed.
TEST_F(LruWalkTest, AZombieOutsideTheRangeIsNotEvictedForIt) {
  std::unique_ptr<Device> device = MakeArenaDevice("ranged", 32);
  Device* d = device.get();
  driver_.bad_evict = true;  // VRAM evicts to MOCK1
  OperationContext ctx;
  auto low = BufferObject::Create(d, BoOptions{.size = 64_KiB}, PlacementOf(kMemVram), ctx);
  auto high = BufferObject::Create(d, BoOptions{.size = 64_KiB}, PlacementOf(kMemVram), ctx);
  ASSERT_TRUE(low.ok() && high.ok());
  ASSERT_EQ((*low)->resource()->start(), 0u);
  ASSERT_EQ((*high)->resource()->start(), 16u);
  FenceRef busy = Fence::Create(Fence::AllocateContext(), 1);
  ASSERT_TRUE((*low)->Reserve(ctx).ok());
  (*low)->resv()->AssertHeld();
  ASSERT_TRUE((*low)->resv()->ReserveFences(1).ok());
  ASSERT_TRUE((*low)->resv()->AddFence(busy, ResvUsage::kBookkeep).ok());
  (*low)->Unreserve();
  low->reset();  // a busy zombie at [0, 16)
  ASSERT_TRUE((*high)->Reserve(ctx).ok());
  (*high)->resv()->AssertHeld();
  (*high)->Unreserve();  // the zombie is first on the LRU
  BoRef want = ValidateIntoUpperHalf(d, busy, "zombie");
  EXPECT_EQ((*high)->resource()->mem_type(), kMemMock1);  // `high` made room
  want.reset();
  high->reset();
  d->FlushDelayedDeletes();
  EXPECT_EQ(d->bo_count(), 0u);
}

// The same for a ghost: a pipelined move leaves a busy ghost holding [0, 16); a validation that
// needs [16, 32) neither waits for it nor frees it, and evicts the object that is in the way.
TEST_F(LruWalkTest, AGhostOutsideTheRangeIsNotEvictedForIt) {
  std::unique_ptr<Device> device = MakeArenaDevice("ranged", 32);
  Device* d = device.get();
  OperationContext ctx;
  auto low = BufferObject::Create(d, BoOptions{.size = 64_KiB}, PlacementOf(kMemVram), ctx);
  auto high = BufferObject::Create(d, BoOptions{.size = 64_KiB}, PlacementOf(kMemVram), ctx);
  ASSERT_TRUE(low.ok() && high.ok());
  ASSERT_EQ((*low)->resource()->start(), 0u);
  ASSERT_EQ((*high)->resource()->start(), 16u);
  Fill(**low, 21);
  Fill(**high, 22);
  FenceRef busy = Fence::Create(Fence::AllocateContext(), 1);
  driver_.fence = busy;  // the copy engine's move of `low` completes with `busy`
  ASSERT_TRUE((*low)->Reserve(ctx).ok());
  (*low)->resv()->AssertHeld();
  ASSERT_TRUE((*low)->Validate(PlacementOf(kMemMock1), ctx).ok());
  (*low)->Unreserve();
  driver_.fence = nullptr;  // later moves are plain copies
  ASSERT_EQ(d->bo_count(), 3u) << "the two objects and the ghost of low's move";
  ASSERT_TRUE((*high)->Reserve(ctx).ok());
  (*high)->resv()->AssertHeld();
  (*high)->Unreserve();      // the ghost is first on the LRU
  driver_.bad_evict = true;  // VRAM evicts to MOCK1
  BoRef want = ValidateIntoUpperHalf(d, busy, "ghost");
  EXPECT_EQ((*high)->resource()->mem_type(), kMemMock1);  // `high` made room
  ExpectContent(**low, 21);
  ExpectContent(**high, 22);
  want.reset();
  high->reset();
  low->reset();
  d->FlushDelayedDeletes();
  EXPECT_EQ(d->bo_count(), 0u);
}

// A validation holding a ticket, whose only possible victim is locked elsewhere: the try-lock
// walk finds nothing, the ticketed walk in EvictUntil blocks on the victim until it is released
// and then evicts it. Without a ticket the same validation fails.
TEST_F(LruWalkTest, ATicketedValidationWaitsForALockedVictimAndEvictsIt) {
  std::unique_ptr<Device> device = MakeArenaDevice("ticketed", 16);
  Device* d = device.get();
  driver_.bad_evict = true;  // VRAM evicts to MOCK1
  OperationContext ctx;
  auto victim = BufferObject::Create(d, BoOptions{.size = 64_KiB}, PlacementOf(kMemVram), ctx);
  ASSERT_TRUE(victim.ok());
  Fill(**victim, 12);
  auto want = BufferObject::Create(d, BoOptions{.size = 64_KiB}, Placement(), ctx);
  ASSERT_TRUE(want.ok());
  {
    ForeignLock held((*victim)->resv());
    EXPECT_EQ(ValidateLocked(**want, PlacementOf(kMemVram), ctx).code(), Errc::kNoMemory);
  }
  ForeignLock held((*victim)->resv());
  std::thread releaser = held.ReleaseLater(std::chrono::milliseconds(30));
  WwAcquireContext ticket;
  ASSERT_TRUE((*want)->Reserve(ctx, &ticket).ok());
  (*want)->resv()->AssertHeld();
  Status s = (*want)->Validate(PlacementOf(kMemVram), ctx);
  (*want)->Unreserve();
  releaser.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ((*want)->resource()->mem_type(), kMemVram);
  EXPECT_EQ((*victim)->resource()->mem_type(), kMemMock1);
  ExpectContent(**victim, 12);
  victim->reset();
  want->reset();
  d->FlushDelayedDeletes();
}

// A pipelined (fenced) move leaves a ghost holding the old memory; it sits on the LRU of the old
// type and is reclaimed by EvictFirst once the fence signals. The moved contents are intact.
TEST_F(LruWalkTest, GhostOfPipelinedMoveIsOnLruAndReclaimable) {
  // This case needs the accel driver: a device of its own.
  std::unique_ptr<Device> device = MakeArenaDevice("accel", 64);
  Device* d = device.get();
  OperationContext ctx;
  auto bo = BufferObject::Create(d, BoOptions{.size = 64_KiB}, PlacementOf(kMemVram), ctx);
  ASSERT_TRUE(bo.ok());
  Fill(**bo, 3);
  driver_.fence = Fence::Create(Fence::AllocateContext(), 1);
  ASSERT_TRUE((*bo)->Reserve(ctx).ok());
  (*bo)->resv()->AssertHeld();
  ASSERT_TRUE((*bo)->Validate(PlacementOf(kMemMock1), ctx).ok());
  (*bo)->Unreserve();
  EXPECT_EQ((*bo)->resource()->mem_type(), kMemMock1);
  EXPECT_EQ(d->bo_count(), 2u);  // the object and its ghost
  EXPECT_EQ(d->manager(kMemVram)->usage(), (64_KiB).value());
  {
    LruWalkArg arg{.ctx = &ctx};
    ReservedBoCursor cursor(d, d->manager(kMemVram), arg);
    auto ghost = cursor.Next();
    ASSERT_TRUE(ghost.ok());
    ASSERT_NE(*ghost, nullptr);
    EXPECT_TRUE((*ghost)->is_ghost());
    EXPECT_TRUE((*ghost)->deleted());
  }
  std::thread signaller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    (void)driver_.fence->Signal();
  });
  Status s = BufferObject::EvictFirst(*d, d->manager(kMemVram), ctx);
  signaller.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(d->manager(kMemVram)->usage(), 0u);
  driver_.fence = nullptr;
  ExpectContent(**bo, 3);
  bo->reset();
  d->FlushDelayedDeletes();
  EXPECT_EQ(d->bo_count(), 0u);
}

// A pipelined eviction out of device memory frees the old range at once and records the fence on
// the manager; the next allocation there waits for it (or is kBusy with no_wait_gpu).
TEST_F(LruWalkTest, PipelinedEvictionMoveFence) {
  std::unique_ptr<Device> device = MakeArenaDevice("accel", 16);
  Device* d = device.get();
  driver_.bad_evict = true;  // VRAM evicts to MOCK1
  OperationContext ctx;
  auto victim = BufferObject::Create(d, BoOptions{.size = 64_KiB}, PlacementOf(kMemVram), ctx);
  ASSERT_TRUE(victim.ok());
  Fill(**victim, 9);
  FenceRef fence = Fence::Create(Fence::AllocateContext(), 1);
  driver_.fence = fence;
  driver_.pipeline = true;
  ASSERT_TRUE(BufferObject::EvictFirst(*d, d->manager(kMemVram), ctx).ok());
  EXPECT_EQ((*victim)->resource()->mem_type(), kMemMock1);
  EXPECT_EQ(d->manager(kMemVram)->usage(), 0u);  // freed at once
  EXPECT_EQ(d->manager(kMemVram)->move_fence(), fence);
  driver_.fence = nullptr;

  auto next = BufferObject::Create(d, BoOptions{.size = 64_KiB}, Placement(), ctx);
  ASSERT_TRUE(next.ok());
  OperationContext no_wait;
  no_wait.no_wait_gpu = true;
  EXPECT_EQ(ValidateLocked(**next, PlacementOf(kMemVram), no_wait).code(), Errc::kNoMemory);
  EXPECT_EQ((*next)->resource(), nullptr);
  // Waiting is allowed: the allocation succeeds and the object carries the move fence.
  {
    Status s = ValidateLocked(**next, PlacementOf(kMemVram), ctx);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_EQ((*next)->resource()->mem_type(), kMemVram);
  EXPECT_EQ((*next)->WaitIdle(no_wait).code(), Errc::kBusy);
  ASSERT_TRUE(fence->Signal().ok());
  EXPECT_TRUE((*next)->WaitIdle(no_wait).ok());
  ExpectContent(**victim, 9);
  victim->reset();
  next->reset();
  d->FlushDelayedDeletes();
}

TEST_F(LruWalkTest, EvictionOrderLowPriorityFirstThenOldest) {
  // VRAM (1 MiB) full of four 256 KiB objects.
  BoRef a = Make(kMemVram, 256_KiB, 1);
  BoRef b = Make(kMemVram, 256_KiB, 0);
  BoRef c = Make(kMemVram, 256_KiB, 0);
  BoRef d = Make(kMemVram, 256_KiB, 1);
  std::vector<BufferObject*> evicted;
  std::vector<BoRef> newcomers;  // priority 3: evicted last
  for (int i = 0; i < 3; ++i) {
    BoRef n = Make(kMemSystem, 256_KiB, 3);
    OperationContext ctx;
    ASSERT_TRUE(ValidateLocked(*n, PlacementOf(kMemVram), ctx).ok());
    for (BufferObject* bo : {a.get(), b.get(), c.get(), d.get()}) {
      if (bo->resource()->mem_type() == kMemSystem &&
          std::find(evicted.begin(), evicted.end(), bo) == evicted.end()) {
        evicted.push_back(bo);
      }
    }
    ASSERT_EQ(evicted.size(), static_cast<std::size_t>(i + 1));
    newcomers.push_back(std::move(n));
  }
  EXPECT_EQ(evicted, (std::vector<BufferObject*>{b.get(), c.get(), a.get()}));
}

TEST_F(LruWalkTest, DesiredOnlyWithoutEvictionFallbackOnlyWithEviction) {
  BoRef occupant = Make(kMemVram, 1_MiB);
  // Pass 1 tries VRAM (desired) without evicting and finds no room; pass 2 skips the desired
  // place and takes the fallback: the occupant stays.
  BoRef y = Make(kMemSystem, 64_KiB);
  OperationContext ctx;
  Placement desired_first{PlaceOf(kMemVram, kPlaceDesired), PlaceOf(kMemTt, kPlaceFallback)};
  ASSERT_TRUE(ValidateLocked(*y, desired_first, ctx).ok());
  EXPECT_EQ(y->resource()->mem_type(), kMemTt);
  EXPECT_EQ(occupant->resource()->mem_type(), kMemVram);
  // A plain VRAM place is tried in both passes; the fallback TT is skipped in pass 1, and pass 2
  // meets VRAM first and evicts for it.
  BoRef z = Make(kMemSystem, 64_KiB);
  Placement plain_first{PlaceOf(kMemVram), PlaceOf(kMemTt, kPlaceFallback)};
  ASSERT_TRUE(ValidateLocked(*z, plain_first, ctx).ok());
  EXPECT_EQ(z->resource()->mem_type(), kMemVram);
  EXPECT_EQ(occupant->resource()->mem_type(), kMemSystem);
  // Only a fallback place: pass 1 has nothing to try; pass 2 takes it.
  BoRef w = Make(kMemSystem, 64_KiB);
  ASSERT_TRUE(ValidateLocked(*w, PlacementOf(kMemTt, kPlaceFallback), ctx).ok());
  EXPECT_EQ(w->resource()->mem_type(), kMemTt);
}

// drm_exec style: lock several objects' reservations in one transaction and validate them
// together, while another thread briefly holds one of them.
TEST_F(LruWalkTest, ExecContextLocksAndValidatesSeveralObjects) {
  std::vector<BoRef> bos;
  for (int i = 0; i < 4; ++i) {
    bos.push_back(Make(kMemSystem, 128_KiB));
    Fill(*bos.back(), static_cast<std::uint8_t>(20 + i));
  }
  ForeignLock hold(bos[2]->resv());
  std::thread releaser = hold.ReleaseLater(std::chrono::milliseconds(20));
  ExecContext exec(ExecContext::kInterruptible);
  OperationContext ctx;
  Status s = exec.Run([&](ExecContext& e) -> Status {
    for (BoRef& bo : bos) UTTM_RETURN_IF_ERROR(e.Prepare(bo->resv(), 1));
    for (BoRef& bo : bos) {
      bo->resv()->AssertHeld();  // prepared above
      UTTM_RETURN_IF_ERROR(bo->Validate(PlacementOf(kMemVram), ctx));
    }
    return Status();
  });
  releaser.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(exec.locked().size(), bos.size());
  for (BoRef& bo : bos) {
    EXPECT_TRUE(bo->resv()->IsLocked());
    EXPECT_EQ(bo->resource()->mem_type(), kMemVram);
  }
  exec.Fini();
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(bos[i]->resv()->IsLocked());
    ExpectContent(*bos[i], static_cast<std::uint8_t>(20 + i));
  }
  EXPECT_EQ(dev_->manager(kMemVram)->usage(), (512_KiB).value());
}

}  // namespace
}  // namespace uttm
