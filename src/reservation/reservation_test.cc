// Copyright (c) uttm developers.
//
// Reservation locking: the ttm_bo_test reserve cases (same names) at the reservation level, the
// wait-die and wound-wait rules, and the fence slots.
#include "uttm/reservation.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "reservation/test_util.h"
#include "uttm/fault_injection.h"
#include "uttm/stats.h"

namespace uttm {
namespace {

using std::chrono::milliseconds;

using testing::Eventually;

// The caller holds `held`. On another thread, `waiter` locks `other` (if given) and then `held`;
// that must block (not die) until the caller unlocks `held`, and then succeed.
void ExpectWaitsForHolder(Reservation& held, Reservation* other, WwAcquireContext* waiter)
    UTTM_RELEASE(held) UTTM_NO_THREAD_SAFETY_ANALYSIS {
  std::atomic<bool> got{false};
  std::thread t([&] {
    if (other) {
      ASSERT_TRUE(other->Lock(waiter).ok());
    }
    EXPECT_TRUE(held.Lock(waiter).ok());
    got = true;
    held.AssertHeld();
    held.Unlock();
    if (other) {
      other->AssertHeld();
      other->Unlock();
    }
  });
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_FALSE(got.load());
  held.Unlock();
  t.join();
  EXPECT_TRUE(got.load());
}

// --- ttm_bo_test reserve cases ---

struct ReserveCase {
  const char* description;
  bool interruptible;
  bool no_wait;
};

class TtmBoReserve : public ::testing::TestWithParam<ReserveCase> {};

TEST_P(TtmBoReserve, ttm_bo_reserve_optimistic_no_ticket) {
  Reservation resv;
  ReserveOptions opts{.interruptible = GetParam().interruptible, .no_wait = GetParam().no_wait};
  ASSERT_TRUE(resv.Reserve(nullptr, opts).ok());
  resv.AssertHeld();
  EXPECT_TRUE(resv.IsLocked());
  EXPECT_EQ(resv.LockingTicket(), nullptr);
  resv.AssertHeld();
  resv.Unlock();
  EXPECT_FALSE(resv.IsLocked());
}

INSTANTIATE_TEST_SUITE_P(
    ttm_bo, TtmBoReserve,
    ::testing::Values(ReserveCase{"Cannot be interrupted and sleeps", false, false},
                      ReserveCase{"Cannot be interrupted, locks straight away", false, true},
                      ReserveCase{"Can be interrupted, sleeps", true, false}),
    [](const auto& info) {
      return std::string(info.param.interruptible ? "Interruptible" : "Uninterruptible") +
             (info.param.no_wait ? "NoWait" : "Sleeps");
    });

TEST(ttm_bo, ttm_bo_reserve_locked_no_sleep) {
  Reservation resv;
  ASSERT_TRUE(resv.TryLock());
  resv.AssertHeld();
  EXPECT_EQ(resv.Reserve(nullptr, {.interruptible = false, .no_wait = true}), Errc::kBusy);
  resv.Unlock();
}

TEST(ttm_bo, ttm_bo_reserve_no_wait_ticket) {
  Reservation resv;
  WwAcquireContext ticket;
  EXPECT_EQ(resv.Reserve(&ticket, {.interruptible = false, .no_wait = true}), Errc::kBusy);
  EXPECT_FALSE(resv.IsLocked());
}

TEST(ttm_bo, ttm_bo_reserve_double_resv) {
  Reservation resv;
  WwAcquireContext ticket;
  ASSERT_TRUE(resv.Reserve(&ticket, {}).ok());
  resv.AssertHeld();
  EXPECT_EQ(resv.Reserve(&ticket, {}), Errc::kAlready);
  EXPECT_EQ(ticket.acquired(), 1);
  resv.AssertHeld();
  resv.Unlock();
  EXPECT_EQ(ticket.acquired(), 0);
}

TEST(ttm_bo, ttm_bo_reserve_interrupted) {
  Reservation resv;
  ASSERT_TRUE(resv.TryLock());
  resv.AssertHeld();
  std::stop_source stop;
  std::atomic<bool> started{false};
  auto waiter = std::async(std::launch::async, [&] {
    WwAcquireContext ticket;
    started = true;
    return resv.Reserve(&ticket, {.interruptible = true, .stop = stop.get_token()});
  });
  ASSERT_TRUE(Eventually([&] { return started.load(); }));
  std::this_thread::sleep_for(milliseconds(20));  // let it block
  stop.request_stop();
  EXPECT_EQ(waiter.get(), Errc::kInterrupted);
  EXPECT_TRUE(resv.IsLocked());
  EXPECT_EQ(resv.LockingTicket(), nullptr) << "the interrupted waiter must not own it";
  resv.Unlock();
}

// The upstream case: the reservation is held by an older ticket; a younger ticket that already
// holds another reservation must back off.
TEST(ttm_bo, ttm_bo_reserve_deadlock) {
  Reservation bo1, bo2;
  WwAcquireContext older;
  WwAcquireContext younger;
  ASSERT_TRUE(older.IsOlderThan(younger));
  ASSERT_TRUE(bo2.Lock(&older).ok());
  bo2.AssertHeld();
  ASSERT_TRUE(bo1.Reserve(&younger, {}).ok());
  bo1.AssertHeld();
  const std::uint64_t backoffs = Stats::Default().Get(Stat::kResvBackoffs);
  EXPECT_EQ(bo2.Reserve(&younger, {}), Errc::kDeadlock);
  EXPECT_EQ(Stats::Default().Get(Stat::kResvBackoffs), backoffs + 1);
  EXPECT_TRUE(bo2.IsLockedBy(&older));
  bo1.AssertHeld();
  bo1.Unlock();
  bo2.AssertHeld();
  bo2.Unlock();
}

// --- Locking rules ---

TEST(Reservation, TryLockAndOwnership) {
  Reservation resv;
  WwAcquireContext ticket;
  EXPECT_FALSE(resv.IsLocked());
  ASSERT_TRUE(resv.TryLock());
  resv.AssertHeld();
  EXPECT_FALSE(resv.TryLock());
  EXPECT_FALSE(resv.IsLockedBy(&ticket));
  resv.Unlock();
  ASSERT_TRUE(resv.Lock(&ticket).ok());
  resv.AssertHeld();
  EXPECT_TRUE(resv.IsLockedBy(&ticket));
  EXPECT_EQ(resv.LockingTicket(), &ticket);
  EXPECT_FALSE(resv.TryLock());
  resv.AssertHeld();
  resv.Unlock();
  EXPECT_FALSE(resv.IsLockedBy(&ticket));
}

TEST(Reservation, MisuseIsRejected) {
  Reservation wd(WwClass::kWaitDie), ww(WwClass::kWoundWait), other;
  WwAcquireContext ticket(WwClass::kWaitDie);
  EXPECT_EQ(ww.Lock(&ticket), Errc::kInvalid);
  EXPECT_EQ(wd.LockSlow(nullptr, {}), Errc::kInvalid);
  ASSERT_TRUE(wd.Lock(&ticket).ok());
  wd.AssertHeld();
  EXPECT_EQ(other.LockSlow(&ticket, {}), Errc::kInvalid) << "LockSlow while holding";
  ticket.Done();
  EXPECT_EQ(other.Lock(&ticket), Errc::kInvalid) << "Lock after Done";
  wd.AssertHeld();
  wd.Unlock();
}

TEST(Reservation, BlockingLockWaitsForUnlock) {
  Reservation resv;
  ASSERT_TRUE(resv.TryLock());
  resv.AssertHeld();
  const std::uint64_t contended = Stats::Default().Get(Stat::kResvContended);
  std::atomic<bool> got{false};
  std::thread t([&] {
    ASSERT_TRUE(resv.Lock(nullptr).ok());
    resv.AssertHeld();
    got = true;
    resv.Unlock();
  });
  // The waiter is counted once it parks (other tests in this process only add to the counter).
  EXPECT_TRUE(Eventually([&] { return Stats::Default().Get(Stat::kResvContended) > contended; }));
  EXPECT_FALSE(got.load());
  resv.Unlock();
  t.join();
  EXPECT_TRUE(got.load());
}

TEST(Reservation, WaitInterruptFaultPointWhileContended) {
  Reservation resv;
  ASSERT_TRUE(resv.TryLock());
  resv.AssertHeld();
  OperationContext ctx;
  ctx.interruptible = true;
  {
    ScopedFault fault(FaultPoint::kWaitInterrupt, FaultSpec{.times = 1});
    EXPECT_EQ(resv.Lock(nullptr, ctx), Errc::kInterrupted);
  }
  resv.Unlock();
  ScopedFault fault(FaultPoint::kWaitInterrupt, FaultSpec{});
  EXPECT_TRUE(resv.Lock(nullptr, ctx).ok()) << "an uncontended lock never waits";
  resv.AssertHeld();
  resv.Unlock();
}

TEST(Reservation, WaitDieOlderWaitsForYoungerHolder) {
  Reservation a, b;
  WwAcquireContext older;
  WwAcquireContext younger;
  ASSERT_TRUE(a.Lock(&younger).ok());
  a.AssertHeld();
  ExpectWaitsForHolder(a, &b, &older);  // older holds b, meets the younger holder: waits
}

TEST(Reservation, WaitDieFirstLockNeverDies) {
  // A ticket holding nothing simply waits, even for an older holder.
  Reservation a;
  WwAcquireContext older;
  WwAcquireContext younger;
  ASSERT_TRUE(a.Lock(&older).ok());
  a.AssertHeld();
  ExpectWaitsForHolder(a, nullptr, &younger);
}

TEST(Reservation, LockSlowAfterBackOff) {
  Reservation a, b;
  WwAcquireContext older;
  WwAcquireContext younger;
  ASSERT_TRUE(b.Lock(&older).ok());
  b.AssertHeld();
  ASSERT_TRUE(a.Lock(&younger).ok());
  a.AssertHeld();
  ASSERT_EQ(b.Lock(&younger), Errc::kDeadlock);
  a.Unlock();  // back off
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(10));
    b.AssertHeld();
    b.Unlock();  // the older transaction finishes (unlocked from another thread on purpose)
  });
  ASSERT_TRUE(b.LockSlow(&younger, {}).ok());
  b.AssertHeld();
  ASSERT_TRUE(a.Lock(&younger).ok());
  a.AssertHeld();
  EXPECT_EQ(younger.acquired(), 2);
  t.join();
  a.Unlock();
  b.Unlock();
}

TEST(Reservation, WoundWaitYoungerWaitsForOlderHolder) {
  Reservation a(WwClass::kWoundWait), b(WwClass::kWoundWait);
  WwAcquireContext older(WwClass::kWoundWait);
  WwAcquireContext younger(WwClass::kWoundWait);
  ASSERT_TRUE(a.Lock(&older).ok());
  a.AssertHeld();
  ExpectWaitsForHolder(a, &b, &younger);  // wound-wait: the younger waits, it does not die
  EXPECT_FALSE(older.wounded());
  EXPECT_FALSE(younger.wounded());
}

TEST(Reservation, WoundWaitWoundWakesBlockedVictim) {
  Reservation a(WwClass::kWoundWait), c(WwClass::kWoundWait);
  WwAcquireContext older(WwClass::kWoundWait);  // created first: older
  ASSERT_TRUE(c.TryLock());
  c.AssertHeld();
  std::promise<void> younger_has_a;
  auto younger_result = std::async(std::launch::async, [&] {
    WwAcquireContext younger(WwClass::kWoundWait);
    EXPECT_TRUE(older.IsOlderThan(younger));
    EXPECT_TRUE(a.Lock(&younger).ok());
    a.AssertHeld();
    younger_has_a.set_value();
    Status st = c.Lock(&younger);  // blocks on the third party until wounded
    a.Unlock();                    // back off
    return st;
  });
  younger_has_a.get_future().wait();
  std::this_thread::sleep_for(milliseconds(10));
  ASSERT_TRUE(a.Lock(&older).ok());  // wounds the younger holder, then waits for it
  a.AssertHeld();
  EXPECT_EQ(younger_result.get(), Errc::kDeadlock);
  EXPECT_TRUE(a.IsLockedBy(&older));
  a.Unlock();
  c.Unlock();
}

TEST(Reservation, WoundWaitWoundedTicketDiesOnNextContendedLock) {
  Reservation a(WwClass::kWoundWait), b(WwClass::kWoundWait);
  WwAcquireContext older(WwClass::kWoundWait);
  WwAcquireContext younger(WwClass::kWoundWait);
  ASSERT_TRUE(a.Lock(&younger).ok());
  a.AssertHeld();
  ASSERT_TRUE(b.TryLock());
  b.AssertHeld();
  std::atomic<bool> got{false};
  std::thread t([&] {
    ASSERT_TRUE(a.Lock(&older).ok());  // wounds `younger`, waits
    a.AssertHeld();
    got = true;
    a.Unlock();
  });
  ASSERT_TRUE(Eventually([&] { return younger.wounded(); }));
  // Once wounded, the younger ticket's next contended lock fails instead of blocking.
  EXPECT_EQ(b.Lock(&younger), Errc::kDeadlock);
  EXPECT_FALSE(got.load());
  a.Unlock();
  t.join();
  EXPECT_TRUE(got.load());
  b.Unlock();
  // After backing off completely the wound is forgotten.
  ASSERT_TRUE(a.Lock(&younger).ok());
  a.AssertHeld();
  ASSERT_TRUE(b.Lock(&younger).ok());
  b.AssertHeld();
  a.Unlock();
  b.Unlock();
}

// --- Fence slots ---

class ResvFences : public ::testing::Test {
 protected:
  Reservation resv_;
  std::uint64_t ctx_ = Fence::AllocateContext(4);
};

TEST_F(ResvFences, AddNeedsReservedSlotAndReservationEndsWithUnlock) {
  ASSERT_TRUE(resv_.TryLock());
  resv_.AssertHeld();
  EXPECT_EQ(resv_.AddFence(Fence::Create(ctx_, 1), ResvUsage::kWrite), Errc::kInvalid);
  EXPECT_EQ(resv_.AddFence(nullptr, ResvUsage::kWrite), Errc::kInvalid);
  ASSERT_TRUE(resv_.ReserveFences(2).ok());
  EXPECT_TRUE(resv_.AddFence(Fence::Create(ctx_, 1), ResvUsage::kWrite).ok());
  EXPECT_TRUE(resv_.AddFence(Fence::Create(ctx_ + 1, 1), ResvUsage::kRead).ok());
  EXPECT_EQ(resv_.AddFence(Fence::Create(ctx_ + 2, 1), ResvUsage::kRead), Errc::kInvalid);
  ASSERT_TRUE(resv_.ReserveFences(1).ok());
  resv_.Unlock();
  ASSERT_TRUE(resv_.TryLock());
  resv_.AssertHeld();
  EXPECT_EQ(resv_.AddFence(Fence::Create(ctx_ + 2, 1), ResvUsage::kRead), Errc::kInvalid)
      << "reservations do not survive Unlock";
  EXPECT_EQ(resv_.num_fences(), 2u);
  resv_.Unlock();
}

TEST_F(ResvFences, LaterFenceOfSameContextReplacesSlot) {
  ASSERT_TRUE(resv_.TryLock());
  resv_.AssertHeld();
  ASSERT_TRUE(resv_.ReserveFences(1).ok());
  FenceRef f1 = Fence::Create(ctx_, 1);
  FenceRef f2 = Fence::Create(ctx_, 2);
  ASSERT_TRUE(resv_.AddFence(f1, ResvUsage::kRead).ok());
  // Same context, later, more urgent usage: replaces without a new slot.
  ASSERT_TRUE(resv_.AddFence(f2, ResvUsage::kWrite).ok());
  ASSERT_EQ(resv_.num_fences(), 1u);
  EXPECT_EQ(resv_.GetSlots()[0].fence, f2);
  EXPECT_EQ(resv_.GetSlots()[0].usage, ResvUsage::kWrite);
  // An earlier fence, or a less urgent usage, does not replace: it needs its own slot.
  EXPECT_EQ(resv_.AddFence(Fence::Create(ctx_, 3), ResvUsage::kBookkeep), Errc::kInvalid);
  // A signalled fence's slot is reused by anything.
  ASSERT_TRUE(f2->Signal().ok());
  FenceRef other = Fence::Create(ctx_ + 1, 1);
  ASSERT_TRUE(resv_.AddFence(other, ResvUsage::kBookkeep).ok());
  EXPECT_EQ(resv_.num_fences(), 1u);
  EXPECT_EQ(resv_.GetSlots()[0].fence, other);
  resv_.Unlock();
}

TEST_F(ResvFences, UsageFilterIsUpTo) {
  ASSERT_TRUE(resv_.TryLock());
  resv_.AssertHeld();
  FenceRef k = Fence::Create(ctx_, 1), w = Fence::Create(ctx_ + 1, 1),
           r = Fence::Create(ctx_ + 2, 1), b = Fence::Create(ctx_ + 3, 1);
  ASSERT_TRUE(resv_.ReserveFences(4).ok());
  ASSERT_TRUE(resv_.AddFence(b, ResvUsage::kBookkeep).ok());
  ASSERT_TRUE(resv_.AddFence(r, ResvUsage::kRead).ok());
  ASSERT_TRUE(resv_.AddFence(w, ResvUsage::kWrite).ok());
  ASSERT_TRUE(resv_.AddFence(k, ResvUsage::kKernel).ok());
  resv_.Unlock();
  EXPECT_EQ(resv_.GetFences(ResvUsage::kKernel).size(), 1u);
  EXPECT_EQ(resv_.GetFences(ResvUsage::kWrite).size(), 2u);
  EXPECT_EQ(resv_.GetFences(ResvUsage::kRead).size(), 3u);
  EXPECT_EQ(resv_.GetFences(ResvUsage::kBookkeep).size(), 4u);
  int seen = 0;
  resv_.ForEachFence(ResvUsage::kWrite, [&](const FenceSlot& slot) {
    EXPECT_LE(slot.usage, ResvUsage::kWrite);
    ++seen;
  });
  EXPECT_EQ(seen, 2);

  EXPECT_FALSE(resv_.TestSignaled(ResvUsage::kKernel));
  ASSERT_TRUE(k->Signal().ok());
  EXPECT_TRUE(resv_.TestSignaled(ResvUsage::kKernel));
  EXPECT_FALSE(resv_.TestSignaled(ResvUsage::kWrite));
  ASSERT_TRUE(w->Signal().ok());
  ASSERT_TRUE(r->Signal(Status(Errc::kIo, "failed job")).ok());
  EXPECT_TRUE(resv_.TestSignaled(ResvUsage::kRead)) << "an error still counts as signalled";
  EXPECT_FALSE(resv_.TestSignaled(ResvUsage::kBookkeep));
  OperationContext ctx;
  EXPECT_TRUE(resv_.Wait(ResvUsage::kRead, ctx).ok());
  ctx.no_wait_gpu = true;
  EXPECT_EQ(resv_.Wait(ResvUsage::kBookkeep, ctx), Errc::kBusy);
  ctx.no_wait_gpu = false;
  EXPECT_EQ(resv_.Wait(ResvUsage::kBookkeep, ctx, milliseconds(5)), Errc::kTimedOut);
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(10));
    (void)b->Signal();
  });
  EXPECT_TRUE(resv_.Wait(ResvUsage::kBookkeep, ctx).ok());
  t.join();
  ASSERT_TRUE(resv_.TryLock());
  resv_.AssertHeld();
  EXPECT_EQ(resv_.PruneSignaled(), 4u);
  EXPECT_EQ(resv_.num_fences(), 0u);
  resv_.Unlock();
}

TEST_F(ResvFences, WaitInterrupted) {
  ASSERT_TRUE(resv_.TryLock());
  resv_.AssertHeld();
  ASSERT_TRUE(
      resv_.AddFences(std::vector<FenceRef>{Fence::Create(ctx_, 1)}, ResvUsage::kKernel).ok());
  resv_.Unlock();
  testing::InterruptAfter interrupt(milliseconds(10));
  EXPECT_EQ(resv_.Wait(ResvUsage::kKernel, interrupt.ctx()), Errc::kInterrupted);
}

TEST_F(ResvFences, CopyFencesForGhostObjects) {
  Reservation ghost;
  ASSERT_TRUE(resv_.TryLock());
  resv_.AssertHeld();
  std::vector<FenceRef> fences = {Fence::Create(ctx_, 1), Fence::Create(ctx_ + 1, 1)};
  ASSERT_TRUE(resv_.AddFences(fences, ResvUsage::kWrite).ok());
  ASSERT_TRUE(ghost.TryLock());
  ghost.AssertHeld();
  ghost.CopyFences(resv_);
  resv_.Unlock();
  ghost.Unlock();
  ASSERT_EQ(ghost.num_fences(), 2u);
  EXPECT_EQ(ghost.GetFences(ResvUsage::kWrite), fences);
  EXPECT_FALSE(ghost.TestSignaled(ResvUsage::kWrite));
  for (auto& f : fences) ASSERT_TRUE(f->Signal().ok());
  EXPECT_TRUE(ghost.TestSignaled(ResvUsage::kBookkeep));
  EXPECT_STREQ(ResvUsageName(ResvUsage::kBookkeep), "bookkeep");
}

}  // namespace
}  // namespace uttm
