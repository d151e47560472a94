// Copyright (c) uttm developers.
//
// Clean copies of buffer objects under the driver shrinker: an object restored and only read is
// given up again without a write; every way it can be written (a write mapping, Write, a fence
// that may write) makes the next backup write it; a full store gives the clean copies' space to
// backups. Real pages, a real file store, the test driver; contents depend on the object, the
// version and the offset.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "testing/content.h"
#include "testing/test_device.h"
#include "uttm/bo_shrink.h"
#include "uttm/bo_shrinker.h"
#include "uttm/buffer_object.h"
#include "uttm/fence.h"
#include "uttm/file_store.h"
#include "uttm/mapping.h"

namespace uttm {
namespace {

using testing::PlacementOf;
using testing::TestDevice;

constexpr std::uint64_t kMiB = 1u << 20;
constexpr std::uint64_t kPagesPerMiB = kMiB / kPageSize;

class CleanCopyShrinkTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(/*capacity=*/0); }

  void Make(std::uint64_t capacity) {
    bos_.clear();
    dev_.reset();
    shrinker_.reset();
    MemoryContextOptions mo;
    mo.stats = &stats_;
    memory_ = std::make_unique<MemoryContext>(mo);
    FileStoreOptions fo;
    fo.stats = &stats_;
    fo.capacity_bytes = capacity;
    auto fs = NewFileStore(fo);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    store_ = std::move(*fs);
    dev_ = std::make_unique<TestDevice>(PageCount(256), Bytes(256 * kMiB), memory_.get(),
                                        store_.get(), [&](DeviceFuncs* driver) {
                                          shrinker_ = std::make_unique<BoShrinker>(driver);
                                          return shrinker_->funcs();
                                        });
    ASSERT_TRUE(shrinker_->Attach(dev_->get()).ok());
  }

  void TearDown() override {
    bos_.clear();
    if (dev_) (*dev_)->FlushDelayedDeletes();
    dev_.reset();
    shrinker_.reset();
    if (store_) {
      EXPECT_EQ(store_->BytesUsed(), 0u);
    }
    EXPECT_EQ(stats_.Current(Stat::kCleanPages), 0);
  }

  BoRef MakeBo(std::uint64_t object, std::uint32_t version = 1) {
    OperationContext ctx;
    auto bo =
        BufferObject::Create(dev_->get(), {.size = Bytes(kMiB)}, PlacementOf(kMemSystem), ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    if (!bo.ok()) return BoRef();
    EXPECT_TRUE((*bo)->Write(0, testing::Content({object, version}, 0, kMiB), ctx).ok());
    bos_.push_back(*bo);
    return *bo;
  }

  // Backs the object up with the shrink helper (as the shrinker's walk does); its page count.
  std::int64_t ShrinkBo(BufferObject& bo) {
    OperationContext ctx;
    EXPECT_TRUE(bo.TryReserve());
    bo.resv()->AssertHeld();
    Result<std::int64_t> r = Shrink(ctx, bo, ShrinkFlags{.allow_move = true});
    bo.resv()->Unlock();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : -1;
  }

  // Maps the object for reading (restoring it) and checks every byte.
  bool ReadMatches(const BoRef& bo, std::uint64_t object, std::uint32_t version) {
    OperationContext ctx;
    Result<Mapping> m = Mapping::Create(bo, kMapRead, ctx);
    if (!m.ok()) return false;
    return !testing::FindMismatch({object, version}, 0, m->span()).has_value();
  }

  bool Resident(BufferObject& bo) {
    if (!bo.TryReserve()) return false;
    bo.resv()->AssertHeld();
    const bool r = bo.tt() != nullptr && bo.tt()->is_populated();
    bo.resv()->Unlock();
    return r;
  }

  PageCount CleanPages(BufferObject& bo) {
    EXPECT_TRUE(bo.TryReserve());
    bo.resv()->AssertHeld();
    const PageCount n = bo.tt() != nullptr ? bo.tt()->clean_pages() : PageCount(0);
    bo.resv()->Unlock();
    return n;
  }

  static void ValidateTo(BufferObject& bo, MemType type) {
    OperationContext ctx;
    ASSERT_TRUE(bo.Reserve(ctx).ok());
    bo.resv()->AssertHeld();
    Status s = bo.Validate(PlacementOf(type), ctx);
    bo.Unreserve();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::uint64_t Written() const { return stats_.Get(Stat::kStoreBytesWritten); }

  Stats stats_;
  std::unique_ptr<MemoryContext> memory_;
  std::unique_ptr<BackupStore> store_;
  std::unique_ptr<BoShrinker> shrinker_;
  std::unique_ptr<TestDevice> dev_;
  std::vector<BoRef> bos_;
};

TEST_F(CleanCopyShrinkTest, AnObjectOnlyReadIsGivenUpAgainWithoutAWrite) {
  BoRef a = MakeBo(1);
  EXPECT_EQ(ShrinkBo(*a), static_cast<std::int64_t>(kPagesPerMiB));
  EXPECT_EQ(Written(), kMiB);
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(ReadMatches(a, 1, 1)) << round;
    EXPECT_EQ(CleanPages(*a).value(), kPagesPerMiB);
    EXPECT_EQ(ShrinkBo(*a), static_cast<std::int64_t>(kPagesPerMiB));
    EXPECT_FALSE(Resident(*a));
  }
  EXPECT_EQ(Written(), kMiB) << "only the first backup wrote";
  EXPECT_EQ(stats_.Get(Stat::kPagesBackedUpClean), 3 * kPagesPerMiB);
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  ASSERT_TRUE(ReadMatches(a, 1, 1));
}

TEST_F(CleanCopyShrinkTest, AWriteMappingMakesTheNextBackupWrite) {
  BoRef a = MakeBo(1);
  ShrinkBo(*a);
  {
    OperationContext ctx;
    Result<Mapping> m = Mapping::Create(a, kMapRead | kMapWrite, ctx);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(CleanPages(*a).value(), 0u);
    testing::FillContent({1, 2}, 0, m->span());
  }
  const std::uint64_t before = Written();
  ShrinkBo(*a);
  EXPECT_EQ(Written() - before, kMiB);
  ASSERT_TRUE(ReadMatches(a, 1, 2));
}

TEST_F(CleanCopyShrinkTest, ANestedWriteMappingDropsTheCopyToo) {
  BoRef a = MakeBo(1);
  ShrinkBo(*a);
  OperationContext ctx;
  Result<Mapping> reader = Mapping::Create(a, kMapRead, ctx);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(CleanPages(*a).value(), kPagesPerMiB);
  {
    Result<Mapping> writer = Mapping::Create(a, kMapWrite, ctx);
    ASSERT_TRUE(writer.ok());
    EXPECT_EQ(CleanPages(*a).value(), 0u);
    testing::FillContent({1, 3}, 0, writer->span());
  }
  reader->reset();
  ShrinkBo(*a);
  ASSERT_TRUE(ReadMatches(a, 1, 3));
}

TEST_F(CleanCopyShrinkTest, ACpuWriteDropsTheCopy) {
  BoRef a = MakeBo(1);
  ShrinkBo(*a);
  ASSERT_TRUE(ReadMatches(a, 1, 1));
  OperationContext ctx;
  std::vector<std::byte> patch = testing::Content({1, 4}, 4096 * 7 + 12, 100);
  ASSERT_TRUE(a->Write(4096 * 7 + 12, patch, ctx).ok());
  EXPECT_EQ(CleanPages(*a).value(), 0u);
  const std::uint64_t before = Written();
  ShrinkBo(*a);
  EXPECT_EQ(Written() - before, kMiB);
  std::vector<std::byte> got(100);
  ASSERT_TRUE(a->Read(4096 * 7 + 12, got, ctx).ok());
  EXPECT_TRUE(got == patch);
}

// The GPU writes under a fence: any usage but kRead may write, so the copy goes stale; a read
// fence leaves it.
TEST_F(CleanCopyShrinkTest, AFenceThatMayWriteDropsTheCopyAReadFenceDoesNot) {
  BoRef a = MakeBo(1);
  ShrinkBo(*a);
  ASSERT_TRUE(ReadMatches(a, 1, 1));
  auto add_fence = [&](ResvUsage usage) {
    OperationContext ctx;
    ASSERT_TRUE(a->Reserve(ctx).ok());
    a->resv()->AssertHeld();
    ASSERT_TRUE(a->resv()->ReserveFences(1).ok());
    ASSERT_TRUE(a->resv()->AddFence(Fence::CreateSignaled(), usage).ok());
    a->Unreserve();
  };
  add_fence(ResvUsage::kRead);
  std::uint64_t before = Written();
  ShrinkBo(*a);
  EXPECT_EQ(Written(), before) << "a read fence keeps the copy";
  for (ResvUsage usage : {ResvUsage::kWrite, ResvUsage::kBookkeep, ResvUsage::kKernel}) {
    ASSERT_TRUE(ReadMatches(a, 1, 1));
    ASSERT_EQ(CleanPages(*a).value(), kPagesPerMiB);
    add_fence(usage);
    before = Written();
    ShrinkBo(*a);
    EXPECT_EQ(Written() - before, kMiB) << "usage " << static_cast<int>(usage);
  }
  ASSERT_TRUE(ReadMatches(a, 1, 1));
}

// A move in from device memory copies new bytes into the pages: the copy must go.
TEST_F(CleanCopyShrinkTest, AMoveFromVramDropsTheCopy) {
  BoRef a = MakeBo(1);
  ShrinkBo(*a);
  ASSERT_TRUE(ReadMatches(a, 1, 1));
  ValidateTo(*a, kMemVram);
  OperationContext ctx;
  std::vector<std::byte> patch = testing::Content({1, 5}, 0, 64);
  ASSERT_TRUE(a->Write(0, patch, ctx).ok());  // into VRAM
  ValidateTo(*a, kMemSystem);
  EXPECT_EQ(CleanPages(*a).value(), 0u);
  ShrinkBo(*a);
  std::vector<std::byte> got(64);
  ASSERT_TRUE(a->Read(0, got, ctx).ok());
  EXPECT_TRUE(got == patch);
}

// A store with room for 2.5 objects: A's copy is kept (the store is under half full then); B and
// C fill the rest, and C's backup finds the store full: the shrinker drops A's copy and C goes.
TEST_F(CleanCopyShrinkTest, AFullStoreGivesTheCleanCopiesSpaceToBackups) {
  Make(kMiB * 5 / 2);
  BoRef b = MakeBo(2);
  BoRef c = MakeBo(3);
  BoRef a = MakeBo(1);
  ShrinkBo(*a);
  ASSERT_TRUE(ReadMatches(a, 1, 1));
  ASSERT_EQ(CleanPages(*a).value(), kPagesPerMiB);
  // Oldest first: B, C, then A (restored last). Enough target for B and C only.
  ShrinkControl sc;
  sc.nr_to_scan = 2 * kPagesPerMiB;
  sc.reclaim = ReclaimContext{.may_fs = true, .may_io = true, .background = false};
  shrinker_->Scan(sc);
  EXPECT_FALSE(Resident(*b));
  // C went only partly (half a MiB was left); the next scan, of one object, finds the store
  // full.
  sc.nr_to_scan = 1;
  shrinker_->Scan(sc);
  EXPECT_FALSE(Resident(*b));
  EXPECT_FALSE(Resident(*c));
  ASSERT_TRUE(c->TryReserve());
  c->resv()->AssertHeld();
  EXPECT_EQ(c->tt()->resident_pages().value(), 0u) << "C is wholly in the store";
  c->resv()->Unlock();
  EXPECT_EQ(CleanPages(*a).value(), 0u);
  EXPECT_GE(stats_.Get(Stat::kCleanPagesDropped), kPagesPerMiB);
  EXPECT_TRUE(Resident(*a));
  ASSERT_TRUE(shrinker_->CheckAccounting().ok());
  ASSERT_TRUE(ReadMatches(a, 1, 1));
  ASSERT_TRUE(ReadMatches(b, 2, 1));
  ASSERT_TRUE(ReadMatches(c, 3, 1));
}

}  // namespace
}  // namespace uttm
