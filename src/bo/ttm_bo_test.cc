// Copyright (c) uttm developers.
//
// Port of upstream drivers/gpu/drm/ttm/tests/ttm_bo_test.c (suite ttm_bo), case names kept.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "testing/test_device.h"
#include "uttm/buffer_object.h"
#include "uttm/lru_bulk_move.h"

namespace uttm {
namespace {

using namespace unit_literals;
using testing::PlacementOf;
using testing::TestDevice;

constexpr Bytes kBoSize = 8_KiB;

class TtmBoTest : public ::testing::Test {
 protected:
  BoRef MakeBo(MemType type = kMemSystem, unsigned priority = 0, Reservation* resv = nullptr) {
    OperationContext ctx;
    BoOptions opts;
    opts.size = kBoSize;
    opts.priority = priority;
    opts.resv = resv;
    auto bo = resv ? BufferObject::CreateReserved(dev_.get(), opts, PlacementOf(type), ctx)
                   : BufferObject::Create(dev_.get(), opts, PlacementOf(type), ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    return std::move(bo).value();
  }

  static std::vector<Resource*> Order(ListHead& list) {
    std::vector<Resource*> out;
    for (ListNode* n = list.front(); n != nullptr && !list.is_end(n); n = n->next()) {
      if (n->kind() == kLruResource) out.push_back(Resource::FromLruNode(n));
    }
    return out;
  }

  TestDevice dev_;
};

struct ReserveParams {
  const char* name;
  bool interruptible;
  bool no_wait;
};

class TtmBoReserveOptimistic : public TtmBoTest,
                               public ::testing::WithParamInterface<ReserveParams> {};

TEST_P(TtmBoReserveOptimistic, ttm_bo_reserve_optimistic_no_ticket) {
  BoRef bo = MakeBo();
  OperationContext ctx;
  ctx.interruptible = GetParam().interruptible;
  ASSERT_TRUE(bo->Reserve(ctx, nullptr, GetParam().no_wait).ok());
  bo->resv()->AssertHeld();
  bo->Unreserve();
}

INSTANTIATE_TEST_SUITE_P(ttm_bo, TtmBoReserveOptimistic,
                         ::testing::Values(ReserveParams{"uninterruptible", false, false},
                                           ReserveParams{"interruptible", true, false},
                                           ReserveParams{"no_wait", false, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(TtmBoTest, ttm_bo_reserve_locked_no_sleep) {
  BoRef bo = MakeBo();
  OperationContext ctx;
  ASSERT_TRUE(bo->TryReserve());
  bo->resv()->AssertHeld();
  EXPECT_EQ(bo->Reserve(ctx, nullptr, /*no_wait=*/true).code(), Errc::kBusy);
  bo->Unreserve();
}

TEST_F(TtmBoTest, ttm_bo_reserve_no_wait_ticket) {
  BoRef bo = MakeBo();
  OperationContext ctx;
  WwAcquireContext ticket;
  EXPECT_EQ(bo->Reserve(ctx, &ticket, /*no_wait=*/true).code(), Errc::kBusy);
}

TEST_F(TtmBoTest, ttm_bo_reserve_double_resv) {
  BoRef bo = MakeBo();
  OperationContext ctx;
  WwAcquireContext ticket;
  ASSERT_TRUE(bo->Reserve(ctx, &ticket).ok());
  bo->resv()->AssertHeld();
  EXPECT_EQ(bo->Reserve(ctx, &ticket).code(), Errc::kAlready);
  bo->Unreserve();
}

TEST_F(TtmBoTest, ttm_bo_reserve_interrupted) {
  BoRef bo = MakeBo();
  ASSERT_TRUE(bo->TryReserve());
  bo->resv()->AssertHeld();
  std::stop_source stop;
  OperationContext ctx;
  ctx.interruptible = true;
  ctx.stop = stop.get_token();
  std::thread interrupter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stop.request_stop();
  });
  Status s = bo->Reserve(ctx);
  interrupter.join();
  EXPECT_EQ(s.code(), Errc::kInterrupted);
  bo->Unreserve();
}

TEST_F(TtmBoTest, ttm_bo_reserve_deadlock) {
  BoRef bo1 = MakeBo();
  BoRef bo2 = MakeBo();
  OperationContext ctx;
  WwAcquireContext older;
  WwAcquireContext younger;
  ASSERT_TRUE(bo2->Reserve(ctx, &older).ok());
  bo2->resv()->AssertHeld();
  ASSERT_TRUE(bo1->Reserve(ctx, &younger).ok());
  bo1->resv()->AssertHeld();
  // The younger ticket meets a lock held by an older one: it must back off.
  EXPECT_EQ(bo2->Reserve(ctx, &younger).code(), Errc::kDeadlock);
  bo1->Unreserve();
  bo2->Unreserve();
}

TEST_F(TtmBoTest, ttm_bo_unreserve_basic) {
  BoRef bo1 = MakeBo(kMemTt, 1);
  BoRef bo2 = MakeBo(kMemTt, 1);
  OperationContext ctx;
  ASSERT_TRUE(bo1->Reserve(ctx).ok());
  bo1->resv()->AssertHeld();
  bo1->Unreserve();
  MutexLock lock(dev_->lru().lock());
  EXPECT_EQ(Order(dev_->manager(kMemTt)->lru(1)),
            (std::vector<Resource*>{bo2->resource(), bo1->resource()}));
}

TEST_F(TtmBoTest, ttm_bo_unreserve_pinned) {
  BoRef bo = MakeBo(kMemTt);
  BoRef other = MakeBo(kMemTt);
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  bo->Pin();
  bo->Unreserve();
  {
    MutexLock lock(dev_->lru().lock());
    EXPECT_EQ(Order(dev_->lru().unevictable()), std::vector<Resource*>{bo->resource()});
    EXPECT_EQ(Order(dev_->manager(kMemTt)->lru(0)), std::vector<Resource*>{other->resource()});
  }
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  bo->Unpin();
  bo->Unreserve();
}

TEST_F(TtmBoTest, ttm_bo_unreserve_bulk) {
  Reservation shared;
  LruBulkMove bulk(&dev_->lru());
  ASSERT_TRUE(shared.TryLock());
  shared.AssertHeld();
  BoRef bo1 = MakeBo(kMemTt, 0, &shared);
  BoRef bo2 = MakeBo(kMemTt, 0, &shared);
  bo1->resv()->AssertHeld();  // both share `shared`
  bo2->resv()->AssertHeld();
  bo1->SetBulkMove(&bulk);
  bo2->SetBulkMove(&bulk);
  bo1->Unreserve();  // unlocks `shared`
  {
    MutexLock lock(dev_->lru().lock());
    EXPECT_EQ(bulk.range(kMemTt, 0).last, bo1->resource());
    EXPECT_EQ(bulk.range(kMemTt, 0).first, bo2->resource());
  }
  ASSERT_TRUE(shared.TryLock());
  shared.AssertHeld();
  bo1->resv()->AssertHeld();
  bo2->resv()->AssertHeld();
  bo1->SetBulkMove(nullptr);
  bo2->SetBulkMove(nullptr);
  shared.Unlock();
  bo1.reset();
  bo2.reset();
  dev_->FlushDelayedDeletes();
}

TEST_F(TtmBoTest, ttm_bo_put_basic) {
  BoRef bo = MakeBo(kMemTt);
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  ASSERT_TRUE(bo->Populate(ctx).ok());
  bo->Unreserve();
  EXPECT_EQ(dev_->manager(kMemTt)->usage(), kBoSize.value());
  bo.reset();
  EXPECT_EQ(dev_->bo_count(), 0u);
  EXPECT_EQ(dev_->manager(kMemTt)->usage(), 0u);
}

TEST_F(TtmBoTest, ttm_bo_put_shared_resv) {
  Reservation external;
  ASSERT_TRUE(external.TryLock());
  external.AssertHeld();
  ASSERT_TRUE(external.ReserveFences(1).ok());
  ASSERT_TRUE(external.AddFence(Fence::CreateSignaled(), ResvUsage::kBookkeep).ok());
  BoRef bo = MakeBo(kMemSystem, 0, &external);
  external.Unlock();
  bo.reset();
  EXPECT_EQ(dev_->bo_count(), 0u);  // signalled fences: released at once, no zombie
}

TEST_F(TtmBoTest, ttm_bo_pin_basic) {
  BoRef bo = MakeBo();
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  for (int i = 0; i < 3; ++i) bo->Pin();
  EXPECT_EQ(bo->pin_count(), 3);
  for (int i = 0; i < 3; ++i) bo->Unpin();
  bo->Unreserve();
}

TEST_F(TtmBoTest, ttm_bo_pin_unpin_resource) {
  LruBulkMove bulk(&dev_->lru());
  BoRef bo = MakeBo(kMemTt);
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  bo->SetBulkMove(&bulk);
  bo->Pin();
  {
    MutexLock lock(dev_->lru().lock());
    EXPECT_EQ(bulk.range(kMemTt, 0).first, nullptr);
    EXPECT_EQ(bulk.range(kMemTt, 0).last, nullptr);
  }
  bo->Unpin();
  {
    MutexLock lock(dev_->lru().lock());
    EXPECT_EQ(bulk.range(kMemTt, 0).last, bo->resource());
  }
  bo->SetBulkMove(nullptr);
  bo->Unreserve();
}

TEST_F(TtmBoTest, ttm_bo_multiple_pin_one_unpin) {
  LruBulkMove bulk(&dev_->lru());
  BoRef bo = MakeBo(kMemTt);
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  bo->SetBulkMove(&bulk);
  bo->Pin();
  bo->Pin();
  bo->Unpin();
  {
    MutexLock lock(dev_->lru().lock());
    EXPECT_EQ(bulk.range(kMemTt, 0).first, nullptr);
  }
  bo->Unpin();
  {
    MutexLock lock(dev_->lru().lock());
    EXPECT_EQ(bulk.range(kMemTt, 0).first, bo->resource());
  }
  bo->SetBulkMove(nullptr);
  bo->Unreserve();
}

}  // namespace
}  // namespace uttm
