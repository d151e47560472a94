// Copyright (c) uttm developers.
//
// The legacy watermark swapout (ttm_bo_swapout, ttm_global_swapout): populate over pages_limit
// swaps other objects out round-robin across devices; EXTERNAL vectors are never touched; with
// nothing to swap the limit is hard (kNoMemory); the shrink reasons (a purge-only swapout
// touches nothing but don't-need objects); a busy zombie ends the walk.
#include "uttm/bo_swapout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "testing/content.h"
#include "testing/test_device.h"
#include "uttm/buffer_object.h"
#include "uttm/fence.h"
#include "uttm/file_store.h"

namespace uttm {
namespace {

using testing::PlacementOf;
using testing::TestDevice;

constexpr std::uint64_t kMiB = 1u << 20;

class BoSwapoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MemoryContextOptions mo;
    mo.stats = &stats_;
    mo.pages_limit = PageCount(8 * 256);  // 8 MiB
    memory_ = std::make_unique<MemoryContext>(mo);
    InstallWatermarkSwapout(*memory_);
    for (int i = 0; i < 2; ++i) {
      auto fs = NewFileStore();
      ASSERT_TRUE(fs.ok());
      stores_.push_back(std::move(fs).value());
      devs_.push_back(std::make_unique<TestDevice>(PageCount(256), Bytes(256 * kMiB), memory_.get(),
                                                   stores_.back().get()));
    }
  }
  void TearDown() override {
    bos_.clear();
    devs_.clear();
  }

  Result<BoRef> MakeBo(int dev, std::uint8_t fill, std::uint32_t tt_flags = 0,
                       MemType type = kMemTt) {
    OperationContext ctx;
    BoOptions opts;
    opts.size = Bytes(kMiB);
    opts.tt_flags = tt_flags;
    UTTM_ASSIGN_OR_RETURN(BoRef bo,
                          BufferObject::Create(devs_[dev]->get(), opts, PlacementOf(type), ctx));
    UTTM_RETURN_IF_ERROR(bo->Write(0, testing::Content({fill}, 0, kMiB), ctx));
    bos_.push_back({bo, dev, fill});
    return bo;
  }

  static bool Swapped(BufferObject& bo) {
    if (!bo.TryReserve()) return false;
    bo.resv()->AssertHeld();
    const bool s = bo.tt() != nullptr && bo.tt()->is_swapped();
    bo.resv()->Unlock();
    return s;
  }

  static bool Holds(BufferObject& bo, std::uint8_t fill) {
    OperationContext ctx;
    std::vector<std::byte> got(kMiB);
    if (!bo.Read(0, got, ctx).ok()) return false;
    return !testing::FindMismatch({fill}, 0, got).has_value();
  }

  struct Item {
    BoRef bo;
    int dev;
    std::uint8_t fill;
  };
  Stats stats_;
  std::unique_ptr<MemoryContext> memory_;
  std::vector<std::unique_ptr<BackupStore>> stores_;
  std::vector<std::unique_ptr<TestDevice>> devs_;
  std::vector<Item> bos_;
};

TEST_F(BoSwapoutTest, PopulateOverTheLimitSwapsOutRoundRobinAcrossDevices) {
  // 8 objects fill the limit (4 per device); 8 more each push one out.
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(MakeBo(i % 2, static_cast<std::uint8_t>(i + 1)).ok()) << i;
    EXPECT_LE(memory_->pages_allocated().value(), memory_->pages_limit().value());
  }
  int swapped[2] = {0, 0};
  for (Item& it : bos_) swapped[it.dev] += Swapped(*it.bo) ? 1 : 0;
  EXPECT_EQ(swapped[0] + swapped[1], 8);
  // Round-robin: the device that gave pages goes to the back, so both give alike.
  EXPECT_LE(std::abs(swapped[0] - swapped[1]), 1) << swapped[0] << " " << swapped[1];
  EXPECT_GE(stats_.Get(Stat::kPagesSwappedOut), 8u * 256u);
  EXPECT_EQ(stats_.Get(Stat::kSwapouts), 8u);  // whole objects, one count each
  // Swapped-out resources sit on the unevictable list; contents come back exactly.
  for (Item& it : bos_) {
    if (Swapped(*it.bo)) {
      EXPECT_TRUE(it.bo->resource()->unevictable());
      EXPECT_EQ(it.bo->resource()->mem_type(), kMemSystem);
    }
  }
  for (Item& it : bos_) EXPECT_TRUE(Holds(*it.bo, it.fill)) << int{it.fill};
  EXPECT_LE(memory_->pages_allocated().value(), memory_->pages_limit().value());
}

TEST_F(BoSwapoutTest, ExternalVectorsAreNeverCountedNorSwapped) {
  Result<BoRef> ext = MakeBo(0, 0xEE, kPageVectorExternal);
  ASSERT_TRUE(ext.ok()) << ext.status().ToString();
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  ASSERT_TRUE(MakeBo(0, 1).ok());
  ASSERT_TRUE(MakeBo(0, 2, 0, kMemSystem).ok());
  OperationContext ctx;
  Result<std::uint64_t> n = SwapoutAll(*devs_[0]->get(), ctx);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 512u);
  EXPECT_FALSE(Swapped(**ext));
  EXPECT_TRUE((*ext)->tt()->is_populated());
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  for (Item& it : bos_) EXPECT_TRUE(Holds(*it.bo, it.fill));
}

TEST_F(BoSwapoutTest, TtShrinkSwapsOneObjectAndPinnedOnesStay) {
  Result<BoRef> pinned = MakeBo(1, 9);
  ASSERT_TRUE(pinned.ok());
  ASSERT_TRUE((*pinned)->TryReserve());
  (*pinned)->resv()->AssertHeld();
  (*pinned)->Pin();
  (*pinned)->resv()->Unlock();
  ASSERT_TRUE(MakeBo(1, 10).ok());
  Result<std::uint64_t> r = TtShrink(*memory_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 256u);
  r = TtShrink(*memory_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);  // only the pinned one is left
  EXPECT_FALSE(Swapped(**pinned));
  ASSERT_TRUE((*pinned)->TryReserve());
  (*pinned)->resv()->AssertHeld();
  (*pinned)->Unpin();
  (*pinned)->resv()->Unlock();
  for (Item& it : bos_) EXPECT_TRUE(Holds(*it.bo, it.fill));
}

TEST_F(BoSwapoutTest, WithNothingToSwapTheLimitIsHard) {
  // A third device without a store on the same context: its objects cannot go anywhere.
  devs_.push_back(
      std::make_unique<TestDevice>(PageCount(256), Bytes(256 * kMiB), memory_.get(), nullptr));
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(MakeBo(2, 1).ok());
  Result<BoRef> over = MakeBo(2, 2);
  EXPECT_EQ(over.code(), Errc::kNoMemory);
  EXPECT_LE(memory_->pages_allocated().value(), memory_->pages_limit().value());
}

TEST_F(BoSwapoutTest, APurgeOnlySwapoutPurgesDontNeedObjectsAndNothingElse) {
  Result<BoRef> a = MakeBo(0, 1), b = MakeBo(0, 2), c = MakeBo(0, 3);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  OperationContext ctx;
  ASSERT_TRUE((*b)->Madvise(Madvice::kDontNeed, ctx).ok());
  Result<std::uint64_t> r = DeviceSwapout(*devs_[0]->get(), ctx, ShrinkReason::kPurge);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 256u);
  EXPECT_EQ(memory_->pages_allocated().value(), 512u) << "only the don't-need object went";
  r = DeviceSwapout(*devs_[0]->get(), ctx, ShrinkReason::kPurge);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u) << "nothing else is purgeable";
  EXPECT_FALSE(Swapped(**a));
  EXPECT_FALSE(Swapped(**c));
  EXPECT_EQ(stats_.Get(Stat::kSwapouts), 0u);
  // A swap for the same device backs the others up.
  r = DeviceSwapout(*devs_[0]->get(), ctx, ShrinkReason::kSwap);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 256u);
  EXPECT_TRUE(Swapped(**a));
  Result<bool> retained = (*b)->Madvise(Madvice::kWillNeed, ctx);
  ASSERT_TRUE(retained.ok());
  EXPECT_FALSE(*retained) << "the purge is reported";
  EXPECT_TRUE(Holds(**a, 1));
  EXPECT_TRUE(Holds(**c, 3));
  std::vector<std::byte> got(kMiB, std::byte{1});
  ASSERT_TRUE((*b)->Read(0, got, ctx).ok());
  EXPECT_EQ(std::count(got.begin(), got.end(), std::byte{0}), static_cast<std::ptrdiff_t>(kMiB))
      << "a purged buffer reads zeros";
  EXPECT_STREQ(ShrinkReasonName(ShrinkReason::kPurge), "purge");
}

TEST_F(BoSwapoutTest, ABusyZombieEndsTheSwapoutWalk) {
  FenceRef fence = Fence::Create(Fence::AllocateContext(), 1);
  {
    Result<BoRef> z = MakeBo(0, 7);
    ASSERT_TRUE(z.ok());
    ASSERT_TRUE((*z)->TryReserve());
    (*z)->resv()->AssertHeld();
    ASSERT_TRUE((*z)->resv()->ReserveFences(1).ok());
    ASSERT_TRUE((*z)->resv()->AddFence(fence, ResvUsage::kWrite).ok());
    (*z)->resv()->Unlock();
    bos_.clear();  // the last reference goes while the fence is pending: a zombie
  }
  ASSERT_TRUE(MakeBo(0, 8).ok());
  OperationContext ctx;
  ctx.no_wait_gpu = true;
  Result<std::uint64_t> r = DeviceSwapout(*devs_[0]->get(), ctx, ShrinkReason::kSwap);
  EXPECT_EQ(r.code(), Errc::kNoSpace) << "the zombie (first on the LRU) ends the walk";
  EXPECT_FALSE(Swapped(*bos_[0].bo)) << "the walk did not go past it";
  ASSERT_TRUE(fence->Signal().ok());
  devs_[0]->get()->FlushDelayedDeletes();
  r = DeviceSwapout(*devs_[0]->get(), ctx, ShrinkReason::kSwap);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 256u);
  EXPECT_TRUE(Swapped(*bos_[0].bo));
  EXPECT_TRUE(Holds(*bos_[0].bo, 8));
}

// A driver whose first TT -> SYSTEM move takes a bounce buffer from the same memory context.
class BounceDriver final : public DeviceFuncs {
 public:
  BounceDriver(DeviceFuncs* inner, MemoryContext* memory) : inner_(inner), memory_(memory) {}
  void EvictFlags(const BufferObject& bo, Placement* placement) override {
    inner_->EvictFlags(bo, placement);
  }
  std::byte* AccessMemory(const Resource& res) override { return inner_->AccessMemory(res); }
  Status Move(BufferObject& bo, bool evict, OperationContext& ctx,
              std::unique_ptr<Resource>& new_res, Place* hop) override {
    if (!bounced_ && bo.resource() != nullptr && bo.resource()->mem_type() == kMemTt &&
        new_res->mem_type() == kMemSystem) {
      bounced_ = true;
      // The memory context is full: this populate runs the watermark swapout again, from inside
      // the swapout that asked for this move.
      Result<std::unique_ptr<PageVector>> bounce =
          PageVector::Create(memory_, PageVectorOptions{.size = Bytes(kMiB)});
      UTTM_RETURN_IF_ERROR(bounce.status());
      UTTM_RETURN_IF_ERROR((*bounce)->Populate(ctx));
      nested_swapouts_ok = true;
    }
    return inner_->Move(bo, evict, ctx, new_res, hop);
  }
  bool nested_swapouts_ok = false;

 private:
  DeviceFuncs* const inner_;
  MemoryContext* const memory_;
  bool bounced_ = false;
};

TEST_F(BoSwapoutTest, AMoveThatPopulatesInsideTheSwapoutDoesNotDeadlock) {
  std::unique_ptr<BounceDriver> bounce;
  devs_.push_back(std::make_unique<TestDevice>(
      PageCount(256), Bytes(256 * kMiB), memory_.get(), stores_[0].get(), [&](DeviceFuncs* d) {
        bounce = std::make_unique<BounceDriver>(d, memory_.get());
        return bounce.get();
      }));
  // Fill the limit (8 MiB) with this device's TT objects.
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(MakeBo(2, static_cast<std::uint8_t>(40 + i)).ok());
  ASSERT_EQ(memory_->pages_allocated().value(), memory_->pages_limit().value());
  OperationContext ctx;
  Result<std::uint64_t> r = GlobalSwapout(ctx, *memory_, ShrinkReason::kSwap);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 256u);
  EXPECT_TRUE(bounce->nested_swapouts_ok) << "the bounce buffer was populated over the limit";
  int swapped = 0;
  for (Item& it : bos_) swapped += Swapped(*it.bo) ? 1 : 0;
  EXPECT_EQ(swapped, 2) << "the nested swapout made room for the bounce, the outer one for itself";
  for (Item& it : bos_) EXPECT_TRUE(Holds(*it.bo, it.fill)) << int{it.fill};
  bos_.clear();
  devs_.pop_back();  // before the driver it was created with
}

}  // namespace
}  // namespace uttm
