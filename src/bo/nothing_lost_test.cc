// Copyright (c) uttm developers.
//
// Scenario tests for the object-layer paths where contents or memory used to get lost: a memcpy
// move of a backed-up or swapped-out object, CPU writes to an object without a resource, the
// page vector an imported object gets when it is gutted while busy, and the resource and page
// vector a failed move leaves behind. Each test failed before its fix.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "testing/bo_content.h"
#include "testing/shrinker_device.h"
#include "testing/test_device.h"
#include "uttm/bo_shrinker.h"
#include "uttm/bo_swapout.h"
#include "uttm/buffer_object.h"
#include "uttm/fault_injection.h"
#include "uttm/invariants.h"
#include "uttm/memfd_store.h"
#include "uttm/sim_gpu.h"

namespace uttm {
namespace {

using testing::ExpectContent;
using testing::Fill;
using testing::PlacementOf;
using testing::TestDevice;

constexpr std::uint64_t kPages = 16;

class NothingLostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The legacy split: these tests drive the watermark swapout and the shrinker on one device.
    ASSERT_TRUE(rig_.Init(PageCount(256), /*owns_tt=*/false).ok());
    dev_->AddArena(testing::kMemMock2, PageCount(64));
  }

  void TearDown() override {
    (*dev_)->FlushDelayedDeletes();
    dev_.reset();
    EXPECT_EQ(memory_->pages_allocated().value(), 0u);
    EXPECT_EQ(store_->BytesUsed(), 0u);
  }

  BoRef Make(const Placement& placement, BoType type = BoType::kDevice) {
    OperationContext ctx;
    BoOptions opts;
    opts.size = Bytes(kPages * kPageSize);
    opts.type = type;
    auto bo = BufferObject::Create(dev_->get(), opts, placement, ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    return bo.ok() ? *bo : BoRef();
  }

  Status Validate(BufferObject& bo, const Placement& placement) {
    OperationContext ctx;
    Status s = bo.Reserve(ctx);
    if (!s.ok()) return s;
    bo.resv()->AssertHeld();
    s = bo.Validate(placement, ctx);
    bo.Unreserve();
    return s;
  }

  std::uint64_t Shrink() { return rig_.Shrink(); }

  // Swaps out everything on the device (the watermark path's SwapoutAll); expects `pages`.
  void SwapoutAllExpecting(std::uint64_t pages) {
    OperationContext ctx;
    Result<std::uint64_t> swapped = SwapoutAll(*dev_->get(), ctx);
    ASSERT_TRUE(swapped.ok()) << swapped.status().ToString();
    ASSERT_EQ(*swapped, pages);
  }

  testing::ShrinkerDevice rig_;
  Stats& stats_ = rig_.stats;
  std::unique_ptr<MemoryContext>& memory_ = rig_.memory;
  std::unique_ptr<BackupStore>& store_ = rig_.store;
  std::unique_ptr<BoShrinker>& shrinker_ = rig_.shrinker;
  std::unique_ptr<TestDevice>& dev_ = rig_.dev;
};

// The test driver moves TT -> VRAM with BufferObject::MoveMemcpy, as a simple driver would.
TEST_F(NothingLostTest, MemcpyMoveOfABackedUpObjectRestoresItFirst) {
  BoRef bo = Make(PlacementOf(kMemTt));
  Fill(*bo, 1);
  ASSERT_EQ(Shrink(), kPages);
  ASSERT_TRUE(bo->tt()->is_backed_up());
  ASSERT_EQ(store_->BytesUsed(), kPages * kPageSize);
  ASSERT_TRUE(Validate(*bo, PlacementOf(kMemVram)).ok());
  ASSERT_EQ(bo->resource()->mem_type(), kMemVram);
  // The contents came back from the store before the copy, and the store's copy is gone.
  EXPECT_EQ(store_->BytesUsed(), 0u);
  EXPECT_FALSE(bo->tt()->is_backed_up());
  EXPECT_FALSE(bo->tt()->is_populated());
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  ExpectContent(*bo, 1);
}

TEST_F(NothingLostTest, MemcpyMoveOfASwappedOutObjectSwapsItInFirst) {
  BoRef bo = Make(PlacementOf(kMemSystem));
  Fill(*bo, 2);
  SwapoutAllExpecting(kPages);
  ASSERT_TRUE(
      Validate(*bo, PlacementOf(testing::kMemMock2)).ok());  // arena memory the CPU can reach
  EXPECT_EQ(store_->BytesUsed(), 0u);
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  ExpectContent(*bo, 2);
}

TEST_F(NothingLostTest, CpuWritesToAnObjectCreatedWithoutAPlacementAreKept) {
  BoRef bo = Make(Placement());
  ASSERT_EQ(bo->resource(), nullptr);
  Fill(*bo, 3);
  // Its pages sit under a SYSTEM resource, so the LRU and the shrinker reach them ...
  ASSERT_NE(bo->resource(), nullptr);
  EXPECT_EQ(bo->resource()->mem_type(), kMemSystem);
  EXPECT_EQ(shrinker_->shrinkable_pages(), kPages);
  // ... and a move into device memory copies them instead of starting from nothing.
  ASSERT_TRUE(Validate(*bo, PlacementOf(kMemVram)).ok());
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  ExpectContent(*bo, 3);
}

TEST_F(NothingLostTest, CpuWritesToAGuttedObjectCanBeBackedUpAndRestored) {
  BoRef bo = Make(PlacementOf(kMemTt));
  Fill(*bo, 4);
  ASSERT_TRUE(Validate(*bo, Placement()).ok());  // gutted: contents dropped by contract
  ASSERT_EQ(bo->resource(), nullptr);
  Fill(*bo, 4, 2);
  ASSERT_EQ(Shrink(), kPages);  // reachable: backed up like any other object
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  ExpectContent(*bo, 4, 2);
}

TEST_F(NothingLostTest, SimGpuMovesCpuWrittenPagesOfAnObjectWithoutAPlacementIntoVram) {
  SimGpuOptions so;
  so.vram_size = Bytes(64 * kPageSize);
  so.memory = memory_.get();
  so.backup_store = store_.get();
  auto gpu = SimGpu::Create(so);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  {
    OperationContext ctx;
    BoOptions opts;
    opts.size = Bytes(kPages * kPageSize);
    auto bo = BufferObject::Create((*gpu)->device(), opts, Placement(), ctx);
    ASSERT_TRUE(bo.ok());
    Fill(**bo, 5);
    ASSERT_TRUE(Validate(**bo, PlacementOf(kMemVram)).ok());
    (*gpu)->Drain();
    EXPECT_EQ((*bo)->resource()->mem_type(), kMemVram);
    ExpectContent(**bo, 5);
  }
  (*gpu)->Drain();
  (*gpu)->device()->FlushDelayedDeletes();
  gpu->reset();
}

TEST_F(NothingLostTest, AnImportedObjectGuttedWhileBusyKeepsAnExternalPageVector) {
  BoRef bo = Make(PlacementOf(kMemTt), BoType::kSg);
  ASSERT_NE(bo->tt(), nullptr);
  ASSERT_NE(bo->tt()->flags() & kPageVectorExternal, 0u);
  FenceRef busy = Fence::Create(Fence::AllocateContext(), 1);
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  ASSERT_TRUE(bo->resv()->ReserveFences(1).ok());
  ASSERT_TRUE(bo->resv()->AddFence(busy, ResvUsage::kBookkeep).ok());
  ASSERT_TRUE(bo->Validate(Placement(), ctx).ok());  // busy: the old pages go to a ghost
  ASSERT_NE(bo->tt(), nullptr);
  EXPECT_NE(bo->tt()->flags() & kPageVectorExternal, 0u);
  bo->Unreserve();
  ASSERT_TRUE(busy->Signal().ok());
}

// VRAM -> SYSTEM goes through a TEMPORARY TT resource; the copy into it fails.
TEST_F(NothingLostTest, AFailedMemcpyMoveFreesItsResourceAndItsPageVector) {
  BoRef bo = Make(PlacementOf(kMemVram));
  Fill(*bo, 6);
  Status s;
  {
    ScopedFault fault(FaultPoint::kMoveCopy, FaultSpec{.times = 1});
    OperationContext ctx;
    s = BufferObject::EvictFirst(*(*dev_).get(), (*dev_)->manager(kMemVram), ctx);
  }
  EXPECT_EQ(s.code(), Errc::kIo) << s.ToString();
  // The TT resource of the failed hop went back to its manager (and off the LRU) ...
  EXPECT_EQ((*dev_)->manager(kMemTt)->usage(), 0u);
  {
    MutexLock lock((*dev_)->lru().lock());
    for (unsigned p = 0; p < kNumPriorities; ++p) {
      EXPECT_TRUE((*dev_)->manager(kMemTt)->lru(p).empty());
    }
  }
  // ... and the page vector populated for it holds no pages: the object is still in VRAM.
  EXPECT_EQ(bo->resource()->mem_type(), kMemVram);
  EXPECT_TRUE(bo->tt() == nullptr || !bo->tt()->is_populated());
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  ExpectContent(*bo, 6);
  OperationContext ctx;
  ASSERT_TRUE(BufferObject::EvictFirst(*(*dev_).get(), (*dev_)->manager(kMemVram), ctx)
                  .ok());  // works without the fault
  ExpectContent(*bo, 6);
}

// A shrink the store takes only half of: the object keeps the other half, charged and counted
// shrinkable, stays on its LRU, and the next shrink continues it.
TEST_F(NothingLostTest, APartialBackupStaysShrinkableAndTheNextShrinkCompletesIt) {
  BoRef bo = Make(PlacementOf(kMemTt));
  Fill(*bo, 7);
  {
    ScopedFault fault(FaultPoint::kBackupPartial, FaultSpec{.times = 1});
    ASSERT_EQ(Shrink(), kPages / 2);
  }
  ASSERT_TRUE(bo->tt()->is_partial());
  EXPECT_EQ(bo->tt()->resident_pages().value(), kPages / 2);
  EXPECT_EQ(memory_->pages_allocated().value(), kPages / 2);
  EXPECT_EQ(shrinker_->shrinkable_pages(), kPages / 2);
  EXPECT_EQ(store_->BytesUsed(), kPages / 2 * kPageSize);
  auto accounting = shrinker_->CheckAccounting();
  ASSERT_TRUE(accounting.ok()) << accounting.status().ToString();
  EXPECT_EQ(Shrink(), kPages / 2);
  EXPECT_FALSE(bo->tt()->is_partial());
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 0u);
  EXPECT_EQ(store_->BytesUsed(), kPages * kPageSize);
  ExpectContent(*bo, 7);
  EXPECT_EQ(memory_->pages_allocated().value(), kPages);
  EXPECT_EQ(shrinker_->shrinkable_pages(), kPages);
}

// A restore that fails half-way keeps what it brought back; those pages are counted, so the
// shrinker can take them back, and a later read still finds every byte.
TEST_F(NothingLostTest, PagesOfAFailedRestoreCanBeReclaimed) {
  BoRef bo = Make(PlacementOf(kMemTt));
  Fill(*bo, 8);
  ASSERT_EQ(Shrink(), kPages);
  {
    ScopedFault fault(FaultPoint::kStoreRead, FaultSpec{.after = 5, .times = 1});
    std::vector<std::byte> out(kPageSize);
    OperationContext ctx;
    EXPECT_EQ(bo->Read(0, out, ctx).code(), Errc::kIo);
  }
  ASSERT_TRUE(bo->tt()->is_partial());
  const std::uint64_t held = bo->tt()->resident_pages().value();
  EXPECT_GT(held, 0u);
  EXPECT_LT(held, kPages);
  EXPECT_EQ(memory_->pages_allocated().value(), held);
  EXPECT_EQ(shrinker_->shrinkable_pages(), held);
  auto accounting = shrinker_->CheckAccounting();
  ASSERT_TRUE(accounting.ok()) << accounting.status().ToString();
  EXPECT_EQ(Shrink(), held);
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 0u);
  ExpectContent(*bo, 8);
}

// Gutting a pinned object would drop the memory a pin promises to keep (found by the fuzzer).
TEST_F(NothingLostTest, APinnedObjectIsNotGutted) {
  BoRef bo = Make(PlacementOf(kMemTt));
  Fill(*bo, 9);
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  bo->Pin();
  const Resource* before = bo->resource();
  EXPECT_EQ(bo->Validate(Placement(), ctx).code(), Errc::kInvalid);
  EXPECT_EQ(bo->resource(), before);
  bo->Unpin();
  bo->Unreserve();
  ExpectContent(*bo, 9);
}

// A store that refuses every write (ENOSPC): a watermark swapout tries each object once and
// ends, each object keeps its place, its pages and its contents. (The failed object used to be
// bumped to the LRU tail, where the same walk met it again: an endless loop.)
// A full store ends the swapout walk at the first failure (every other object would fail alike,
// each after writing pages that are thrown away), with an error that says so; it used to revisit
// failed objects forever. Nothing is lost.
TEST_F(NothingLostTest, SwapoutIntoAFullStoreEndsWithAClearError) {
  std::vector<BoRef> bos;
  for (std::uint64_t i = 0; i < 3; ++i) {
    bos.push_back(Make(PlacementOf(kMemSystem)));
    Fill(*bos.back(), 20 + i);
  }
  const std::uint64_t errors_before = stats_.Get(Stat::kStoreWriteErrors);
  {
    ScopedFault full(FaultPoint::kStoreNoSpace, FaultSpec{});
    OperationContext ctx;
    Result<std::uint64_t> swapped = SwapoutAll(*dev_->get(), ctx);
    ASSERT_EQ(swapped.code(), Errc::kNoSpace) << swapped.status().ToString();
    EXPECT_NE(swapped.status().message().find("backup store full"), std::string_view::npos)
        << swapped.status().ToString();
  }
  EXPECT_EQ(stats_.Get(Stat::kStoreWriteErrors) - errors_before, 1u);
  EXPECT_EQ(store_->BytesUsed(), 0u);
  for (std::uint64_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(bos[i]->tt()->is_populated());
    ExpectContent(*bos[i], 20 + i);
  }
}

// Gutting drops the contents by contract; a swapped-out or backed-up object's store copy goes
// with them (it used to stay in the store, unreachable, and came back on the next populate).
TEST_F(NothingLostTest, GuttingDropsTheStoreCopyOfASwappedOutOrBackedUpObject) {
  BoRef swapped = Make(PlacementOf(kMemSystem));
  Fill(*swapped, 30);
  SwapoutAllExpecting(kPages);
  BoRef backed = Make(PlacementOf(kMemTt));
  Fill(*backed, 31);
  ASSERT_EQ(Shrink(), kPages);
  ASSERT_EQ(store_->BytesUsed(), 2 * kPages * kPageSize);
  for (BufferObject* bo : {swapped.get(), backed.get()}) {
    ASSERT_TRUE(Validate(*bo, Placement()).ok());
    std::vector<std::byte> data(kPages * kPageSize, std::byte{0xff});
    OperationContext ctx;
    ASSERT_TRUE(bo->Read(0, data, ctx).ok());
    for (std::size_t i = 0; i < data.size(); ++i) {
      ASSERT_EQ(data[i], std::byte{0}) << "byte " << i << " of a gutted object";
    }
  }
  EXPECT_EQ(store_->BytesUsed(), 0u);
}

// Gutting drops the contents; placing the object in device memory again must not show what the
// memory held before (the test driver used to take a null move into uncleared VRAM).
TEST_F(NothingLostTest, AGuttedObjectPlacedInVramAgainReadsZeros) {
  BoRef bo = Make(PlacementOf(kMemVram));
  Fill(*bo, 32);
  const std::uint64_t start = bo->resource()->start();
  ASSERT_TRUE(Validate(*bo, Placement()).ok());
  ASSERT_TRUE(Validate(*bo, PlacementOf(kMemVram)).ok());
  ASSERT_EQ(bo->resource()->start(), start);  // the same VRAM range, still holding the old bytes
  std::vector<std::byte> data(kPages * kPageSize, std::byte{0xff});
  OperationContext ctx;
  ASSERT_TRUE(bo->Read(0, data, ctx).ok());
  for (std::size_t i = 0; i < data.size(); ++i) {
    ASSERT_EQ(data[i], std::byte{0}) << "byte " << i << " of a gutted object";
  }
}

// Gutting a busy, backed-up object hands its resource and vector to a ghost; the ghost's vector
// has nothing left to reclaim, so its resource stays unevictable (it used to be made evictable
// and was then walked by every shrink).
TEST_F(NothingLostTest, AGhostOfABackedUpObjectStaysUnevictable) {
  BoRef bo = Make(PlacementOf(kMemTt));
  Fill(*bo, 33);
  ASSERT_EQ(Shrink(), kPages);
  ASSERT_TRUE(bo->resource()->unevictable());
  FenceRef busy = Fence::Create(Fence::AllocateContext(), 1);
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  ASSERT_TRUE(bo->resv()->ReserveFences(1).ok());
  ASSERT_TRUE(bo->resv()->AddFence(busy, ResvUsage::kBookkeep).ok());
  ASSERT_TRUE(bo->Validate(Placement(), ctx).ok());  // busy: the backed-up vector goes to a ghost
  bo->Unreserve();
  Status s = CheckInvariants(*memory_);
  EXPECT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(busy->Signal().ok());
  (*dev_)->FlushDelayedDeletes();
  EXPECT_EQ(store_->BytesUsed(), 0u);  // the ghost took the store copy with it
}

// A pinned object released while busy loses its pin (ttm_bo_release makes it available to the
// shrinkers); if its vector is backed up there is nothing to reclaim, so it stays unevictable.
TEST_F(NothingLostTest, APinnedBackedUpObjectReleasedWhileBusyStaysUnevictable) {
  BoRef bo = Make(PlacementOf(kMemSystem));
  Fill(*bo, 34);
  ASSERT_EQ(Shrink(), kPages);
  FenceRef busy = Fence::Create(Fence::AllocateContext(), 1);
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  bo->Pin();
  ASSERT_TRUE(bo->resv()->ReserveFences(1).ok());
  ASSERT_TRUE(bo->resv()->AddFence(busy, ResvUsage::kBookkeep).ok());
  bo->Unreserve();
  bo.reset();  // a zombie until the fence signals
  Status s = CheckInvariants(*memory_);
  EXPECT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(busy->Signal().ok());
  (*dev_)->FlushDelayedDeletes();
  EXPECT_EQ(store_->BytesUsed(), 0u);
}

}  // namespace
}  // namespace uttm
