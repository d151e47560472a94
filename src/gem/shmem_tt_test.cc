// Copyright (c) uttm developers.
//
// File-backed page vectors of buffer objects (i915's shmem tt): the file comes with the
// first populate, shrinking a will-need object releases its pages to the file (written back now
// or left to the kernel) and every byte comes back, a don't-need object is purged, a failure
// undoes the swapped mark, a busy object is not waited for when asked, and TTM's own paths (page
// accounting, watermark swapout, the buffer-object shrinker) never touch these vectors.
#include "uttm/shmem_tt.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "testing/bo_content.h"
#include "testing/content.h"
#include "testing/test_device.h"
#include "uttm/bo_shrinker.h"
#include "uttm/bo_swapout.h"
#include "uttm/fault_injection.h"
#include "uttm/fence.h"
#include "uttm/mapping.h"
#include "uttm/memory_context.h"
#include "uttm/reclaimer.h"
#include "uttm/shmem_tt_funcs.h"
#include "uttm/shmem_tt_shrinker.h"

namespace uttm {
namespace {

using testing::ExpectContent;
using testing::Fill;
using testing::PlacementOf;
using testing::TestDevice;

constexpr std::uint64_t kPages = 128;

class ShmemTtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    memory_ = std::make_unique<MemoryContext>(MemoryContextOptions{.stats = &stats_});
    dev_ = std::make_unique<TestDevice>(PageCount(256), Bytes(64 << 20), memory_.get(), nullptr,
                                        [this](DeviceFuncs* d) {
                                          // The driver side of i915: every object file-backed.
                                          ShmemTtFuncsOptions o;
                                          o.share = 1.0;
                                          o.backing.directory = ::testing::TempDir();
                                          funcs_ = std::make_unique<ShmemTtFuncs>(d, o);
                                          return funcs_.get();
                                        });
    funcs_->Bind(dev_->get());
    shrinker_ = funcs_->shrinker();
  }
  void TearDown() override {
    FaultInjection::DisarmAll();
    (*dev_)->FlushDelayedDeletes();
    EXPECT_EQ(shrinker_->resident_pages(), 0u) << "every object was released";
    dev_.reset();
    EXPECT_EQ(memory_->pages_allocated().value(), 0u) << "file-backed vectors are never charged";
  }
  BoRef Make(std::uint64_t id) {
    OperationContext ctx;
    auto bo = BufferObject::Create(dev_->get(), {.size = Bytes(kPages * kPageSize)},
                                   PlacementOf(kMemSystem), ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    if (!bo.ok()) return BoRef();
    Fill(**bo, id);
    return *bo;
  }
  Result<std::uint64_t> Shrink(BufferObject& bo, ShmemShrinkFlags flags) {
    OperationContext ctx;
    UTTM_RETURN_IF_ERROR(bo.Reserve(ctx));
    bo.resv()->AssertHeld();
    Result<std::uint64_t> r = ShmemTtShrink(bo, flags);
    bo.Unreserve();
    return r;
  }

  Stats stats_;
  std::unique_ptr<MemoryContext> memory_;
  std::unique_ptr<ShmemTtFuncs> funcs_;
  std::unique_ptr<TestDevice> dev_;
  ShmemTtShrinker* shrinker_ = nullptr;
};

TEST_F(ShmemTtTest, TheFileComesWithTheFirstPopulate) {
  OperationContext ctx;
  auto bo = BufferObject::Create(dev_->get(), {.size = Bytes(kPages * kPageSize)},
                                 PlacementOf(kMemSystem), ctx);
  ASSERT_TRUE(bo.ok()) << bo.status().ToString();
  ASSERT_NE((*bo)->tt(), nullptr);
  EXPECT_TRUE((*bo)->tt()->is_shmem());
  EXPECT_TRUE((*bo)->tt()->flags() & kPageVectorExternal);
  EXPECT_TRUE((*bo)->tt()->flags() & kPageVectorExternalMappable);
  EXPECT_EQ((*bo)->tt()->shmem(), nullptr) << "no file before the first populate";
  Fill(**bo, 1);
  ASSERT_NE((*bo)->tt()->shmem(), nullptr);
  EXPECT_TRUE((*bo)->tt()->shmem()->has_file());
  EXPECT_EQ((*bo)->tt()->shmem()->CachedPages(), kPages);
  EXPECT_TRUE((*bo)->tt()->CheckConsistency().ok());
  std::size_t runs = (*bo)->tt()->ForEachRun([](std::size_t, std::byte*, std::size_t) {});
  EXPECT_EQ(runs, 1u) << "one shared mapping: one contiguous run";
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  ExpectContent(**bo, 1);
}

TEST_F(ShmemTtTest, ShrinkingReleasesThePagesAndEveryByteComesBack) {
  BoRef now = Make(2);
  BoRef lazy = Make(3);
  Result<std::uint64_t> r = Shrink(*now, {.writeback = true});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, kPages);
  EXPECT_TRUE(now->tt()->is_swapped());
  EXPECT_FALSE(now->tt()->is_populated());
  EXPECT_EQ(now->tt()->shmem()->CachedPages(), 0u) << "written back and dropped at once";
  r = Shrink(*lazy, {.writeback = false});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kPages);
  EXPECT_EQ(lazy->tt()->shmem()->CachedPages(), kPages) << "left for the kernel's own reclaim";
  EXPECT_EQ(stats_.Get(Stat::kGemPagesEvicted), 2 * kPages);
  // Shrinking again finds nothing: already swapped.
  r = Shrink(*now, {.writeback = true});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);
  ExpectContent(*now, 2);
  ExpectContent(*lazy, 3);
  EXPECT_FALSE(now->tt()->is_swapped());
  EXPECT_TRUE(now->tt()->CheckConsistency().ok());
}

TEST_F(ShmemTtTest, ADontNeedObjectIsPurgedAndStaysPurged) {
  BoRef bo = Make(4);
  OperationContext ctx;
  ASSERT_TRUE(bo->Madvise(Madvice::kDontNeed, ctx).ok());
  Result<std::uint64_t> r = Shrink(*bo, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, kPages);
  EXPECT_EQ(bo->madvice(), Madvice::kPurged);
  EXPECT_EQ(bo->tt()->shmem()->CachedPages(), 0u);
  Result<bool> retained = bo->Madvise(Madvice::kWillNeed, ctx);
  ASSERT_TRUE(retained.ok());
  EXPECT_FALSE(*retained);
  std::vector<std::byte> got(kPages * kPageSize, std::byte{1});
  ASSERT_TRUE(bo->Read(0, got, ctx).ok());
  for (std::size_t i = 0; i < got.size(); i += 1021) ASSERT_EQ(got[i], std::byte{0}) << i;
}

TEST_F(ShmemTtTest, AFailedWriteBackUndoesTheSwappedMark) {
  BoRef bo = Make(5);
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kGemWriteback, {.times = 1}).ok());
  Result<std::uint64_t> r = Shrink(*bo, {.writeback = true});
  EXPECT_EQ(r.code(), Errc::kIo);
  EXPECT_FALSE(bo->tt()->is_swapped());
  EXPECT_TRUE(bo->tt()->is_populated());
  ExpectContent(*bo, 5);
  // A failed read on the way back leaves it swapped; the next access brings it back whole.
  ASSERT_TRUE(Shrink(*bo, {.writeback = true}).ok());
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kGemSwapIn, {.times = 1}).ok());
  std::vector<std::byte> got(kPages * kPageSize);
  OperationContext ctx;
  EXPECT_EQ(bo->Read(0, got, ctx).code(), Errc::kIo);
  EXPECT_TRUE(bo->tt()->is_swapped());
  ExpectContent(*bo, 5);
}

TEST_F(ShmemTtTest, FileFaultsAtCreateExtendAndTruncateLoseNothing) {
  OperationContext ctx;
  auto bo = BufferObject::Create(dev_->get(), {.size = Bytes(kPages * kPageSize)},
                                 PlacementOf(kMemSystem), ctx);
  ASSERT_TRUE(bo.ok()) << bo.status().ToString();
  const std::vector<std::byte> v1 = testing::Content({7, 1}, 0, kPages * kPageSize);
  // The file cannot be made, then its blocks cannot be reserved: the write fails whole.
  for (FaultPoint p : {FaultPoint::kGemCreate, FaultPoint::kGemExtend}) {
    ASSERT_TRUE(FaultInjection::Arm(p, {.times = 1}).ok());
    Status s = (*bo)->Write(0, v1, ctx);
    EXPECT_FALSE(s.ok()) << FaultInjection::Name(p);
    if (p == FaultPoint::kGemExtend) {
      EXPECT_EQ(s.code(), Errc::kNoSpace) << s.ToString();
    }
    EXPECT_FALSE((*bo)->tt()->is_populated());
  }
  ASSERT_TRUE((*bo)->Write(0, v1, ctx).ok());
  ExpectContent(**bo, 7);
  // A purge whose truncate fails keeps the object whole and not purged.
  ASSERT_TRUE((*bo)->Madvise(Madvice::kDontNeed, ctx).ok());
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kGemTruncate, {.times = 1}).ok());
  EXPECT_EQ(Shrink(**bo, {}).code(), Errc::kIo);
  EXPECT_EQ((*bo)->madvice(), Madvice::kDontNeed);
  ASSERT_TRUE((*bo)->Madvise(Madvice::kWillNeed, ctx).ok());
  ExpectContent(**bo, 7);
}

TEST_F(ShmemTtTest, ABusyObjectIsNotWaitedForWhenAsked) {
  BoRef bo = Make(6);
  FenceRef fence = Fence::Create(Fence::AllocateContext(), 1);
  {
    OperationContext ctx;
    ASSERT_TRUE(bo->Reserve(ctx).ok());
    bo->resv()->AssertHeld();
    ASSERT_TRUE(bo->resv()->ReserveFences(1).ok());
    ASSERT_TRUE(bo->resv()->AddFence(fence, ResvUsage::kWrite).ok());
    bo->Unreserve();
  }
  EXPECT_EQ(Shrink(*bo, {.no_gpu_wait = true}).code(), Errc::kBusy);
  EXPECT_TRUE(bo->tt()->is_populated());
  ASSERT_TRUE(fence->Signal().ok());
  Result<std::uint64_t> r = Shrink(*bo, {.no_gpu_wait = true});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kPages);
  ExpectContent(*bo, 6);
}

TEST_F(ShmemTtTest, TtmsOwnPathsNeverTouchThem) {
  std::vector<BoRef> bos;
  for (std::uint64_t i = 0; i < 4; ++i) bos.push_back(Make(10 + i));
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  Result<std::uint64_t> swapped = TtShrink(*memory_);
  ASSERT_TRUE(swapped.ok()) << swapped.status().ToString();
  EXPECT_EQ(*swapped, 0u) << "the watermark swapout skips EXTERNAL vectors";
  for (const BoRef& bo : bos) {
    EXPECT_TRUE(bo->tt()->is_populated());
    EXPECT_EQ(bo->tt()->Backup({}).code(), Errc::kInvalid);
    EXPECT_EQ(bo->tt()->Swapout(nullptr).code(), Errc::kInvalid);
  }
  for (std::uint64_t i = 0; i < bos.size(); ++i) ExpectContent(*bos[i], 10 + i);
}

TEST_F(ShmemTtTest, ASwappedObjectCanBeDestroyedMappedWithDiscardOrGutted) {
  // Destroyed while swapped: the file's contents are dropped with it (this crashed once).
  BoRef gone = Make(30);
  ASSERT_TRUE(Shrink(*gone, {.writeback = true}).ok());
  gone.reset();
  // Mapped with discard while swapped: nothing is read back, the caller writes every byte.
  BoRef bo = Make(31);
  ASSERT_TRUE(Shrink(*bo, {.writeback = false}).ok());
  OperationContext ctx;
  {
    auto map = Mapping::Create(bo, kMapWrite | kMapDiscard, ctx);
    ASSERT_TRUE(map.ok()) << map.status().ToString();
    EXPECT_EQ(bo->tt()->shmem()->CachedPages(), kPages) << "a fresh zeroed file, mapped";
    for (std::size_t i = 0; i < map->size(); i += 997) ASSERT_EQ(map->data()[i], std::byte{0});
    testing::FillContent({31, 2}, 0, map->span());
  }
  ExpectContent(*bo, 31, 2);
  // Gutted (validated to no placement) while swapped: the contents go, the object reads zeros.
  ASSERT_TRUE(Shrink(*bo, {.writeback = true}).ok());
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  ASSERT_TRUE(bo->Validate(Placement{}, ctx).ok());
  bo->Unreserve();
  std::vector<std::byte> got(kPages * kPageSize, std::byte{1});
  ASSERT_TRUE(bo->Read(0, got, ctx).ok());
  for (std::size_t i = 0; i < got.size(); i += 1021) ASSERT_EQ(got[i], std::byte{0}) << i;
}

TEST_F(ShmemTtTest, TheShrinkerCountsResidentMemoryAndPurgesBeforeItShrinks) {
  std::vector<BoRef> bos;
  for (std::uint64_t i = 0; i < 4; ++i) bos.push_back(Make(20 + i));
  ShmemTtShrinker& s = *shrinker_;
  EXPECT_EQ(s.Count({}), 4 * kPages);
  EXPECT_GE(s.batch(), 128u);
  OperationContext ctx;
  ASSERT_TRUE(bos[1]->Madvise(Madvice::kDontNeed, ctx).ok());
  ASSERT_TRUE(bos[3]->Madvise(Madvice::kDontNeed, ctx).ok());
  // Without may_fs nothing may be released to the files.
  ShrinkControl sc;
  sc.nr_to_scan = kPages;
  sc.reclaim.may_fs = false;
  EXPECT_EQ(s.Scan(sc), kShrinkStop);
  EXPECT_EQ(s.Count({}), 4 * kPages);
  // The purge list first: two objects' worth takes exactly the don't-need ones.
  sc = ShrinkControl{};
  sc.nr_to_scan = 2 * kPages;
  EXPECT_EQ(s.Scan(sc), 2 * kPages);
  EXPECT_EQ(bos[1]->madvice(), Madvice::kPurged);
  EXPECT_EQ(bos[3]->madvice(), Madvice::kPurged);
  EXPECT_TRUE(bos[0]->tt()->is_populated());
  EXPECT_TRUE(bos[2]->tt()->is_populated());
  EXPECT_EQ(s.Count({}), 2 * kPages);
  // Then the shrink list, through a reclaimer as the reclaim thread would.
  Reclaimer reclaimer(&stats_);
  ASSERT_TRUE(reclaimer.Register(&s).ok());
  ShrinkResult r = reclaimer.Shrink({.background = true}, kDefPriority, 2 * kPages);
  EXPECT_GE(r.freed, 2 * kPages);
  EXPECT_TRUE(bos[0]->tt()->is_swapped());
  EXPECT_TRUE(bos[2]->tt()->is_swapped());
  EXPECT_EQ(s.Count({}), kShrinkEmpty);
  ASSERT_TRUE(reclaimer.Unregister(&s).ok());
  ExpectContent(*bos[0], 20);
  ExpectContent(*bos[2], 22);
  EXPECT_EQ(s.Count({}), 2 * kPages);
}

}  // namespace
}  // namespace uttm
