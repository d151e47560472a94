// Copyright (c) uttm developers.
//
// Tests of the shrink helpers, the driver shrinker (purge, backup without __GFP_FS, writeback only
// from kswapd, trylock only, zombies and ghosts), madvise and the direct-reclaim hook, against the
// test driver with real pages and a real FileStore.
#include "uttm/bo_shrinker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "testing/content.h"
#include "testing/test_device.h"
#include "tt/test_util.h"
#include "uttm/bo_shrink.h"
#include "uttm/bo_swapout.h"
#include "uttm/buffer_object.h"
#include "uttm/fault_injection.h"
#include "uttm/fence.h"
#include "uttm/file_store.h"
#include "uttm/reclaimer.h"
#include "uttm/sim_gpu.h"
#include "uttm/tt_manager.h"

namespace uttm {
namespace {

using testing::PlacementOf;
using testing::TestDevice;
using testing_util::RssAnonBytes;

constexpr std::uint64_t kMiB = 1u << 20;

// A FileStore seen through a forwarder that records which writes asked for writeback.
class ObservedStore final : public BackupStore {
 public:
  explicit ObservedStore(std::unique_ptr<BackupStore> inner) : inner_(std::move(inner)) {}
  Result<std::size_t> BackupPages(const std::byte* src, std::size_t count, const BackupFlags& f,
                                  BackupHandle* handles) override {
    if (refuse_plain_ && !f.writeback) return Status(Errc::kBusy, "test: writeback only");
    Note(f, count);
    return inner_->BackupPages(src, count, f, handles);
  }
  Result<std::size_t> BackupPageList(const std::byte* const* pages, std::size_t count,
                                     const BackupFlags& f, BackupHandle* handles) override {
    if (refuse_plain_ && !f.writeback) return Status(Errc::kBusy, "test: writeback only");
    Note(f, count);
    return inner_->BackupPageList(pages, count, f, handles);
  }
  Status CopyPages(const BackupHandle* h, std::size_t count, std::byte* dst,
                   const OperationContext& ctx, std::size_t* copied) override {
    return inner_->CopyPages(h, count, dst, ctx, copied);
  }
  Status CopyPageList(const BackupHandle* h, std::size_t count, std::byte* const* dst,
                      const OperationContext& ctx, std::size_t* copied) override {
    return inner_->CopyPageList(h, count, dst, ctx, copied);
  }
  void Drop(const BackupHandle* h, std::size_t count) override { inner_->Drop(h, count); }
  // Backs up and drops 64 pages directly, so the store's checksum worker thread exists (its own
  // memory, ASan's share included, is not what an RSS check of buffer objects measures).
  void StartChecksumWorker() {
    constexpr std::size_t kPages = 64;
    std::unique_ptr<std::byte, decltype(&std::free)> buf(
        static_cast<std::byte*>(std::aligned_alloc(kPageSize, kPages * kPageSize)), &std::free);
    std::memset(buf.get(), 1, kPages * kPageSize);
    std::vector<BackupHandle> h(kPages);
    Result<std::size_t> n = inner_->BackupPages(buf.get(), kPages, {}, h.data());
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    inner_->Drop(h.data(), *n);
  }
  std::uint64_t BytesAvailable() const override {
    return room_override_ >= 0 ? static_cast<std::uint64_t>(room_override_)
                               : inner_->BytesAvailable();
  }
  std::uint64_t BytesUsed() const override { return inner_->BytesUsed(); }
  Status Flush() override { return inner_->Flush(); }
  std::string Describe() const override { return inner_->Describe(); }

  std::atomic<std::uint64_t> pages_plain{0};
  std::atomic<std::uint64_t> pages_writeback{0};
  // >= 0: report this much room (a full store), whatever the file system has.
  std::int64_t room_override_ = -1;
  bool refuse_plain_ = false;

 private:
  void Note(const BackupFlags& f, std::size_t count) {
    (f.writeback ? pages_writeback : pages_plain) += count;
  }
  std::unique_ptr<BackupStore> inner_;
};

class BoShrinkerTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeDevice(/*with_store=*/true); }

  void MakeDevice(bool with_store, PowerHook* power = nullptr, PageCount pages_limit = {},
                  Bytes provider_limit = {}, Bytes tt_budget = Bytes(1024 * kMiB),
                  bool owns_tt = true) {
    MemoryContextOptions mo;
    mo.stats = &stats_;
    mo.pages_limit = pages_limit;
    mo.provider_byte_limit = provider_limit;
    memory_ = std::make_unique<MemoryContext>(mo);
    if (with_store) {
      auto fs = NewFileStore();
      ASSERT_TRUE(fs.ok()) << fs.status().ToString();
      store_ = std::make_unique<ObservedStore>(std::move(fs).value());
    }
    BoShrinkerOptions so;
    so.power = power;
    so.owns_tt = owns_tt;
    dev_ = std::make_unique<TestDevice>(PageCount(256), tt_budget, memory_.get(), store_.get(),
                                        [&](DeviceFuncs* driver) {
                                          shrinker_ = std::make_unique<BoShrinker>(driver, so);
                                          return shrinker_->funcs();
                                        });
    ASSERT_TRUE(shrinker_->Attach(dev_->get()).ok());
  }

  void TearDown() override {
    bos_.clear();
    if (dev_) (*dev_)->FlushDelayedDeletes();
    if (shrinker_) {
      EXPECT_EQ(shrinker_->shrinkable_pages(), 0u);
      EXPECT_EQ(shrinker_->purgeable_pages(), 0u);
    }
    dev_.reset();
    shrinker_.reset();
  }

  // A populated TT object of `bytes` filled with a pattern derived from `seed`.
  BoRef MakeBo(std::uint64_t bytes, std::uint32_t seed, MemType type = kMemTt) {
    OperationContext ctx;
    BoOptions opts;
    opts.size = Bytes(bytes);
    auto bo = BufferObject::Create(dev_->get(), opts, PlacementOf(type), ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    if (!bo.ok()) return BoRef();
    std::vector<std::byte> data = Pattern(bytes, seed);
    EXPECT_TRUE((*bo)->Write(0, data, ctx).ok());
    bos_.push_back(*bo);
    return *bo;
  }

  static std::vector<std::byte> Pattern(std::uint64_t bytes, std::uint32_t seed) {
    return testing::Content({seed, 1}, 0, bytes);
  }

  static bool Matches(BufferObject& bo, std::uint32_t seed) {
    OperationContext ctx;
    std::vector<std::byte> got(bo.size().value());
    if (!bo.Read(0, got, ctx).ok()) return false;
    return got == Pattern(got.size(), seed);
  }

  static bool AllZero(BufferObject& bo) {
    OperationContext ctx;
    std::vector<std::byte> got(bo.size().value());
    if (!bo.Read(0, got, ctx).ok()) return false;
    for (std::byte b : got) {
      if (b != std::byte{0}) return false;
    }
    return true;
  }

  bool Populated(BufferObject& bo) {
    if (!bo.TryReserve()) return false;
    bo.resv()->AssertHeld();
    const bool p = bo.tt() != nullptr && bo.tt()->is_populated() && !bo.tt()->is_swapped();
    bo.resv()->Unlock();
    return p;
  }

  void ExpectAccountingExact() {
    Result<ShrinkAccounting> a = shrinker_->CheckAccounting();
    EXPECT_TRUE(a.ok()) << a.status().ToString();
  }

  // Scans, then checks the accounting (unless another thread may hold a reservation).
  std::uint64_t Scan(std::uint64_t nr, ReclaimContext rc, std::uint64_t* scanned = nullptr,
                     bool check = true) {
    ShrinkControl sc;
    sc.nr_to_scan = nr;
    sc.nr_scanned = nr;
    sc.reclaim = rc;
    const std::uint64_t r = shrinker_->Scan(sc);
    if (scanned != nullptr) *scanned = sc.nr_scanned;
    if (check) ExpectAccountingExact();
    return r;
  }

  std::uint64_t CountOf(ReclaimContext rc) {
    ShrinkControl sc;
    sc.reclaim = rc;
    return shrinker_->Count(sc);
  }

  bool SetAdvice(BufferObject& bo, Madvice advice) {
    OperationContext ctx;
    Result<bool> r = bo.Madvise(advice, ctx);
    EXPECT_TRUE(r.ok());
    return r.ok() && *r;
  }

  Stats stats_;
  std::unique_ptr<MemoryContext> memory_;
  std::unique_ptr<ObservedStore> store_;
  std::unique_ptr<BoShrinker> shrinker_;
  std::unique_ptr<TestDevice> dev_;
  std::vector<BoRef> bos_;
};

constexpr ReclaimContext kDirect{.may_fs = true, .may_io = true, .background = false};
constexpr ReclaimContext kBackground{.may_fs = true, .may_io = true, .background = true};
constexpr ReclaimContext kNoFs{.may_fs = false, .may_io = false, .background = false};

TEST_F(BoShrinkerTest, AccountingFollowsPopulateMadviseAndRelease) {
  BoRef a = MakeBo(kMiB, 1);
  BoRef b = MakeBo(2 * kMiB, 2);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 768u);
  EXPECT_EQ(shrinker_->purgeable_pages(), 0u);
  EXPECT_TRUE(SetAdvice(*b, Madvice::kDontNeed));
  EXPECT_EQ(shrinker_->shrinkable_pages(), 256u);
  EXPECT_EQ(shrinker_->purgeable_pages(), 512u);
  ExpectAccountingExact();
  EXPECT_TRUE(SetAdvice(*b, Madvice::kWillNeed));
  EXPECT_EQ(shrinker_->purgeable_pages(), 0u);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 768u);
  bos_.clear();
  b.reset();
  (*dev_)->FlushDelayedDeletes();
  EXPECT_EQ(shrinker_->shrinkable_pages(), 256u);
  ExpectAccountingExact();
}

// Regression cases of 2026 xe fixes: pinned pages are not reclaimable, so they leave the counts
// while pinned; advice given while pinned applies at unpin; nested pins subtract once.
TEST_F(BoShrinkerTest, PinnedPagesLeaveTheCountsAndComeBackExactlyOnUnpin) {
  BoRef a = MakeBo(kMiB, 1);
  BoRef b = MakeBo(2 * kMiB, 2);
  auto pin = [](BufferObject& bo, bool on) {
    ASSERT_TRUE(bo.TryReserve());
    bo.resv()->AssertHeld();
    on ? bo.Pin() : bo.Unpin();
    bo.Unreserve();
  };
  pin(*b, true);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 256u);
  ExpectAccountingExact();
  // Don't-need, then will-need, while pinned: nothing moves until unpin, then all of b is
  // shrinkable again, none purgeable.
  EXPECT_TRUE(SetAdvice(*b, Madvice::kDontNeed));
  EXPECT_EQ(shrinker_->purgeable_pages(), 0u);
  EXPECT_TRUE(SetAdvice(*b, Madvice::kWillNeed));
  pin(*b, false);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 768u);
  EXPECT_EQ(shrinker_->purgeable_pages(), 0u);
  ExpectAccountingExact();
  // Don't-need while pinned: purgeable from the unpin on.
  pin(*b, true);
  EXPECT_TRUE(SetAdvice(*b, Madvice::kDontNeed));
  pin(*b, false);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 256u);
  EXPECT_EQ(shrinker_->purgeable_pages(), 512u);
  ExpectAccountingExact();
  // Nested pins (two users of one object): subtracted once, counted again after the last unpin.
  pin(*a, true);
  pin(*a, true);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 0u);
  pin(*a, false);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 0u);
  ExpectAccountingExact();
  pin(*a, false);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 256u);
  EXPECT_EQ(shrinker_->purgeable_pages(), 512u);
  ExpectAccountingExact();
  // A pinned object is never scanned: only b's purgeable pages can go.
  pin(*a, true);
  EXPECT_EQ(Scan(4096, kDirect), 512u);
  EXPECT_TRUE(Populated(*a));
  pin(*a, false);
  EXPECT_TRUE(Matches(*a, 1));
}

// xe's 2026 regressions for shared and imported objects: nested pins of an object that shares
// another's reservation subtract its pages once and give them back after the last unpin;
// pinning an imported (sg) object, whose pages the shrinker never counts, changes nothing.
TEST_F(BoShrinkerTest, NestedPinsOfSharedAndImportedObjectsKeepTheCountsExact) {
  BoRef owner = MakeBo(kMiB, 3);
  OperationContext ctx;
  BoOptions shared_opts;
  shared_opts.size = Bytes(kMiB);
  shared_opts.resv = owner->resv();
  ASSERT_TRUE(owner->Reserve(ctx).ok());  // a shared reservation is held by its creator
  owner->resv()->AssertHeld();
  auto shared = BufferObject::Create(dev_->get(), shared_opts, PlacementOf(kMemTt), ctx);
  owner->Unreserve();
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  ASSERT_TRUE((*shared)->Write(0, Pattern(kMiB, 4), ctx).ok());
  BoOptions sg_opts;
  sg_opts.size = Bytes(kMiB);
  sg_opts.type = BoType::kSg;
  auto imported = BufferObject::Create(dev_->get(), sg_opts, PlacementOf(kMemTt), ctx);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  auto pin = [](BufferObject& bo, bool on) {
    ASSERT_TRUE(bo.TryReserve());
    bo.resv()->AssertHeld();
    on ? bo.Pin() : bo.Unpin();
    bo.Unreserve();
  };
  ASSERT_EQ(shrinker_->shrinkable_pages(), 512u);  // owner and shared; never the imported one
  pin(**shared, true);
  pin(**shared, true);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 256u);
  pin(**shared, false);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 256u);
  ExpectAccountingExact();
  pin(**shared, false);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 512u);
  pin(**imported, true);
  pin(**imported, true);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 512u);
  pin(**imported, false);
  pin(**imported, false);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 512u);
  ExpectAccountingExact();
  pin(*owner, true);  // both objects of one reservation pinned, then unpinned
  pin(**shared, true);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 0u);
  pin(*owner, false);
  pin(**shared, false);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 512u);
  EXPECT_EQ(shrinker_->purgeable_pages(), 0u);
  ExpectAccountingExact();
  EXPECT_TRUE(Matches(**shared, 4));
  EXPECT_TRUE(Matches(*owner, 3));
}

TEST_F(BoShrinkerTest, NoFsCountsPurgeableOnlyAndScanPurgesThenStops) {
  BoRef keep = MakeBo(kMiB, 1);
  BoRef junk = MakeBo(kMiB, 2);
  ASSERT_TRUE(SetAdvice(*junk, Madvice::kDontNeed));
  EXPECT_EQ(CountOf(kNoFs), 256u);
  EXPECT_EQ(CountOf(kDirect), 512u);
  std::uint64_t scanned = 0;
  EXPECT_EQ(Scan(1024, kNoFs, &scanned), 256u);
  EXPECT_EQ(scanned, 256u);
  EXPECT_TRUE(Populated(*keep));
  EXPECT_FALSE(Populated(*junk));
  EXPECT_EQ(store_->pages_plain + store_->pages_writeback, 0u);
  // Nothing purgeable left and no backup allowed: nothing is scanned.
  EXPECT_EQ(CountOf(kNoFs), kShrinkEmpty);
  EXPECT_EQ(Scan(1024, kNoFs, &scanned), kShrinkStop);
  EXPECT_EQ(scanned, 0u);
  EXPECT_TRUE(Matches(*keep, 1));
}

TEST_F(BoShrinkerTest, MadviseContractRetainedAndStickyPurge) {
  BoRef bo = MakeBo(kMiB, 7);
  OperationContext ctx;
  EXPECT_EQ(bo->Madvise(Madvice::kPurged, ctx).code(), Errc::kInvalid);
  EXPECT_TRUE(SetAdvice(*bo, Madvice::kDontNeed));
  EXPECT_TRUE(SetAdvice(*bo, Madvice::kWillNeed));  // not purged yet: retained
  EXPECT_TRUE(SetAdvice(*bo, Madvice::kDontNeed));
  EXPECT_EQ(Scan(256, kNoFs), 256u);
  EXPECT_EQ(bo->madvice(), Madvice::kPurged);
  EXPECT_FALSE(SetAdvice(*bo, Madvice::kWillNeed));
  EXPECT_FALSE(SetAdvice(*bo, Madvice::kDontNeed));
  EXPECT_EQ(bo->madvice(), Madvice::kPurged);
  // Comes back zeroed, and counts as shrinkable again once populated.
  EXPECT_TRUE(AllZero(*bo));
  EXPECT_EQ(shrinker_->shrinkable_pages(), 256u);
  EXPECT_EQ(shrinker_->purgeable_pages(), 0u);
  ExpectAccountingExact();
}

TEST_F(BoShrinkerTest, PurgeComesBeforeBackup) {
  BoRef keep = MakeBo(kMiB, 1);
  BoRef junk = MakeBo(kMiB, 2);
  ASSERT_TRUE(SetAdvice(*junk, Madvice::kDontNeed));
  // Room for exactly one object's pages: the purge pass runs first and suffices.
  EXPECT_EQ(Scan(256, kDirect), 256u);
  EXPECT_FALSE(Populated(*junk));
  EXPECT_TRUE(Populated(*keep));
  EXPECT_EQ(store_->pages_plain.load(), 0u);
}

TEST_F(BoShrinkerTest, BackupReleasesMemoryAndRestoresExactly) {
  constexpr int kBos = 16;  // 64 MiB: allocator noise stays well inside the 10 % slack
  for (int i = 0; i < kBos; ++i) MakeBo(4 * kMiB, 100 + i);
  // Pages freed by the backup may land in the pool; the pool shrinker returns them.
  Reclaimer reclaimer(&stats_);
  ASSERT_TRUE(RegisterDeviceReclaim(&reclaimer, shrinker_.get(), memory_.get()).ok());
  store_->StartChecksumWorker();
  const std::uint64_t rss_before = RssAnonBytes();
  ShrinkResult r = reclaimer.Shrink(kDirect, kDefPriority, kBos * 1024);
  EXPECT_GE(r.freed, kBos * 1024u);
  // Pages a backup gives up wait in the pool (recycled, at most PagePoolOptions::recycle_pages)
  // for the next restore, and the pool's shrinker counts them as freed when it releases them:
  // a second round may be needed to back everything up.
  for (int round = 0; round < 4 && shrinker_->shrinkable_pages() > 0; ++round) {
    (void)reclaimer.Shrink(kDirect, kDefPriority, kBos * 1024);
  }
  ExpectAccountingExact();
  EXPECT_EQ(shrinker_->shrinkable_pages(), 0u);
  (void)reclaimer.Shrink(kDirect, 0, ~std::uint64_t{0} >> 2);  // drain the pool too
  const std::uint64_t rss_after = RssAnonBytes();
  if (rss_before != 0) {
    EXPECT_GE(rss_before - std::min(rss_before, rss_after), kBos * 4 * kMiB * 9 / 10)
        << "before " << rss_before << " after " << rss_after;
  }
  EXPECT_EQ(store_->pages_plain.load(), kBos * 1024u);
  EXPECT_EQ(store_->pages_writeback.load(), 0u);  // direct reclaim never asks for writeback
  for (int i = 0; i < kBos; ++i) {
    EXPECT_TRUE(Matches(*bos_[i], 100 + i)) << i;
    EXPECT_TRUE(SetAdvice(*bos_[i], Madvice::kWillNeed));  // retained
  }
  EXPECT_EQ(shrinker_->shrinkable_pages(), kBos * 1024u);
  ExpectAccountingExact();
  UnregisterDeviceReclaim(&reclaimer, shrinker_.get(), memory_.get());
}

TEST_F(BoShrinkerTest, WritebackOnlyInBackgroundWithIo) {
  BoRef a = MakeBo(kMiB, 1);
  // The store takes only writes that ask for writeback, so passes A and B skip the object and
  // only pass C (background reclaim with may_io) can back it up.
  store_->refuse_plain_ = true;
  EXPECT_EQ(Scan(4096, kDirect), 0u);  // scanned (pass A tried it) but nothing freed
  ReclaimContext bg_noio = kBackground;
  bg_noio.may_io = false;
  EXPECT_EQ(Scan(4096, bg_noio), 0u);
  EXPECT_EQ(store_->pages_writeback.load(), 0u);
  EXPECT_TRUE(Populated(*a));
  EXPECT_EQ(Scan(4096, kBackground), 256u);
  EXPECT_EQ(store_->pages_writeback.load(), 256u);
  EXPECT_FALSE(Populated(*a));
  store_->refuse_plain_ = false;
  EXPECT_TRUE(Matches(*a, 1));
  // Only read since its restore: given up again without a write (its clean copy).
  EXPECT_EQ(Scan(4096, kBackground), 256u);
  EXPECT_EQ(store_->pages_writeback.load() + store_->pages_plain.load(), 256u);
  EXPECT_EQ(stats_.Get(Stat::kPagesBackedUpClean), 256u);
  // Written: without the refusal, pass A does the work and never asks for writeback.
  {
    OperationContext ctx;
    ASSERT_TRUE(a->Write(0, Pattern(kMiB, 1), ctx).ok());
  }
  EXPECT_EQ(Scan(4096, kBackground), 256u);
  EXPECT_EQ(store_->pages_writeback.load(), 256u);
  EXPECT_EQ(store_->pages_plain.load(), 256u);
  EXPECT_TRUE(Matches(*a, 1));
}

TEST_F(BoShrinkerTest, NoStoreMeansCountExcludesShrinkableAndBackupIsBusy) {
  bos_.clear();
  dev_.reset();
  shrinker_.reset();
  store_.reset();
  MakeDevice(/*with_store=*/false);
  BoRef a = MakeBo(kMiB, 1);
  BoRef junk = MakeBo(kMiB, 2);
  ASSERT_TRUE(SetAdvice(*junk, Madvice::kDontNeed));
  EXPECT_EQ(CountOf(kDirect), 256u);  // purgeable only: no room for backups
  {
    OperationContext ctx;
    ASSERT_TRUE(a->TryReserve());
    a->resv()->AssertHeld();
    Result<std::int64_t> r = Shrink(ctx, *a, ShrinkFlags{.allow_move = true});
    EXPECT_EQ(r.code(), Errc::kBusy);
    a->resv()->Unlock();
  }
  EXPECT_TRUE(Populated(*a));
  std::uint64_t scanned = 0;
  EXPECT_EQ(Scan(1024, kBackground, &scanned), 256u);  // only the purge freed anything
  EXPECT_GE(scanned, 256u);
  EXPECT_TRUE(Populated(*a));
  EXPECT_TRUE(Matches(*a, 1));
}

// A store that refuses a write with ENOSPC ends the scan at that object (every other one would
// fail alike) and counts as full from then on, so reclaim stops asking; nothing is lost.
TEST_F(BoShrinkerTest, AnEnospcEndsTheScanAndTheStoreCountsAsFull) {
  BoRef a = MakeBo(kMiB, 1);
  BoRef b = MakeBo(kMiB, 2);
  BoRef c = MakeBo(kMiB, 3);
  EXPECT_EQ(CountOf(kDirect), 768u);
  {
    ScopedFault full(FaultPoint::kStoreNoSpace, FaultSpec{});
    EXPECT_EQ(Scan(4096, kDirect), 0u);
    EXPECT_EQ(FaultInjection::Failures(FaultPoint::kStoreNoSpace), 1u);  // one write tried
  }
  EXPECT_EQ(CountOf(kDirect), kShrinkEmpty);  // nothing purgeable, and no room in the store
  EXPECT_TRUE(Matches(*a, 1));
  EXPECT_TRUE(Matches(*b, 2));
  EXPECT_TRUE(Matches(*c, 3));
}

TEST_F(BoShrinkerTest, FullStoreLimitsCount) {
  MakeBo(kMiB, 1);
  store_->room_override_ = 10 * kPageSize;
  ShrinkControl refresh;  // a Scan refreshes the cached store room (nothing to scan: 0 pages)
  EXPECT_EQ(shrinker_->Scan(refresh), kShrinkStop);
  EXPECT_EQ(CountOf(kDirect), 10u);
  store_->room_override_ = -1;
}

TEST_F(BoShrinkerTest, NeverBlocksOnAContendedReservation) {
  BoRef held = MakeBo(kMiB, 1);
  std::atomic<bool> locked{false};
  std::atomic<bool> release{false};
  std::thread holder([&] {
    OperationContext ctx;
    ASSERT_TRUE(held->Reserve(ctx).ok());
    held->resv()->AssertHeld();
    locked = true;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    held->resv()->AssertHeld();
    held->resv()->Unlock();
  });
  while (!locked) std::this_thread::yield();
  ShrinkControl sc;
  sc.nr_to_scan = 1024;
  sc.reclaim = kBackground;
  // The only object is locked elsewhere: nothing scanned, no wait, kShrinkStop.
  EXPECT_EQ(shrinker_->Scan(sc), kShrinkStop);
  EXPECT_EQ(sc.nr_scanned, 0u);
  BoRef other = MakeBo(kMiB, 2);
  sc.nr_to_scan = 1024;
  EXPECT_EQ(shrinker_->Scan(sc), 256u);
  EXPECT_FALSE(Populated(*other));
  EXPECT_EQ(shrinker_->CheckAccounting().code(), Errc::kBusy);  // cannot recompute a locked one
  release = true;
  holder.join();
  ExpectAccountingExact();
  EXPECT_TRUE(Populated(*held));
  EXPECT_TRUE(Matches(*other, 2));
}

// Adds an unsignalled fence to `bo`.
FenceRef MakeBusy(BufferObject& bo) {
  FenceRef f = Fence::Create(Fence::AllocateContext(), 1);
  OperationContext ctx;
  EXPECT_TRUE(bo.Reserve(ctx).ok());
  bo.resv()->AssertHeld();
  EXPECT_TRUE(bo.resv()->ReserveFences(1).ok());
  EXPECT_TRUE(bo.resv()->AddFence(f, ResvUsage::kWrite).ok());
  bo.resv()->Unlock();
  return f;
}

TEST_F(BoShrinkerTest, DirectReclaimNeverWaitsForTheDeviceBackgroundDoes) {
  BoRef busy = MakeBo(kMiB, 1);
  FenceRef f = MakeBusy(*busy);
  std::uint64_t scanned = 0;
  EXPECT_EQ(Scan(1024, kDirect, &scanned), kShrinkStop);
  EXPECT_TRUE(Populated(*busy));
  std::thread signaller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    (void)f->Signal();
  });
  EXPECT_EQ(Scan(1024, kBackground), 256u);
  signaller.join();
  EXPECT_FALSE(Populated(*busy));
  EXPECT_TRUE(Matches(*busy, 1));
}

TEST_F(BoShrinkerTest, ZombieIsPurgedInPlaceWithoutAMove) {
  BoRef bo = MakeBo(kMiB, 1);
  FenceRef f = MakeBusy(*bo);
  bos_.clear();
  bo.reset();  // busy: becomes a zombie that stays on the TT LRU
  EXPECT_EQ(shrinker_->shrinkable_pages(), 256u);
  // Direct reclaim does not wait for it.
  EXPECT_EQ(Scan(1024, kNoFs), kShrinkStop);
  const int moves = dev_->driver.moves;
  std::thread signaller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    (void)f->Signal();
  });
  // Background reclaim waits for it in the purge pass (no backup even without may_fs). The
  // delayed-delete worker is held, so the shrinker is the one that frees it.
  (*dev_)->PauseDelayedDeletes();
  ReclaimContext bg_nofs = kBackground;
  bg_nofs.may_fs = false;
  std::uint64_t freed = Scan(1024, bg_nofs, nullptr, /*check=*/false);
  signaller.join();
  EXPECT_EQ(freed, 256u);                        // purged in place
  EXPECT_EQ(dev_->driver.moves, moves);          // allow_move is false for zombies
  EXPECT_EQ(store_->pages_plain.load(), 0u);     // nothing backed up
  EXPECT_EQ(shrinker_->shrinkable_pages(), 0u);  // and nothing left counted
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  (*dev_)->ResumeDelayedDeletes();
  (*dev_)->FlushDelayedDeletes();
  ExpectAccountingExact();
}

// A device power state the test controls.
class TestPower final : public PowerHook {
 public:
  bool GetIfActive() override {
    if (!awake) return false;
    ++refs;
    return true;
  }
  void Get() override {
    awake = true;
    ++blocking_gets;
    ++refs;
  }
  void Put() override { --refs; }
  void QueueWake() override { ++wakes_queued; }
  std::atomic<bool> awake{false};
  std::atomic<int> refs{0};
  std::atomic<int> blocking_gets{0};
  std::atomic<int> wakes_queued{0};
};

TEST_F(BoShrinkerTest, SuspendedDeviceDirectQueuesWakeBackgroundWakes) {
  TestPower power;
  bos_.clear();
  dev_.reset();
  shrinker_.reset();
  MakeDevice(true, &power);
  BoRef tt_bo = MakeBo(kMiB, 1, kMemTt);       // needs a move to SYSTEM: needs the device
  BoRef sys_bo = MakeBo(kMiB, 2, kMemSystem);  // already in SYSTEM: does not
  EXPECT_EQ(Scan(1024, kDirect), 256u);
  EXPECT_FALSE(Populated(*sys_bo));
  EXPECT_TRUE(Populated(*tt_bo));
  EXPECT_GE(power.wakes_queued.load(), 1);
  EXPECT_EQ(power.blocking_gets.load(), 0);
  EXPECT_EQ(Scan(1024, kBackground), 256u);
  EXPECT_FALSE(Populated(*tt_bo));
  EXPECT_EQ(power.blocking_gets.load(), 1);
  EXPECT_EQ(power.refs.load(), 0);
  EXPECT_TRUE(Matches(*tt_bo, 1));
  EXPECT_TRUE(Matches(*sys_bo, 2));
}

TEST_F(BoShrinkerTest, ShrinkHelpersFollowTheirContract) {
  BoRef bo = MakeBo(kMiB, 3);
  OperationContext ctx;
  ASSERT_TRUE(bo->TryReserve());
  bo->resv()->AssertHeld();
  EXPECT_TRUE(ShrinkSuitable(*bo, ctx));
  bo->Pin();
  EXPECT_FALSE(ShrinkSuitable(*bo, ctx));
  bo->Unpin();
  EXPECT_TRUE(ShrinkAvoidWait(kDirect));
  EXPECT_FALSE(ShrinkAvoidWait(kBackground));
  Result<std::int64_t> r = Shrink(ctx, *bo, ShrinkFlags{.allow_move = true});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 256);
  EXPECT_EQ(bo->resource()->mem_type(), kMemSystem);
  EXPECT_TRUE(bo->resource()->unevictable());  // backed up: on the unevictable list
  EXPECT_FALSE(ShrinkSuitable(*bo, ctx));
  bo->resv()->Unlock();
  // The shrinker did not do this one: its accounting was told nothing. Restore re-adds it.
  EXPECT_TRUE(Matches(*bo, 3));
}

// When the page provider itself refuses (its byte limit), the pool's allocation path reclaims
// directly through the hook and retries: no populate fails while older objects can be backed up.
TEST_F(BoShrinkerTest, ProviderExhaustionReclaimsDirectlyInThePool) {
  bos_.clear();
  dev_.reset();
  shrinker_.reset();
  MakeDevice(true, nullptr, PageCount{}, Bytes(8 * kMiB));
  Reclaimer reclaimer(&stats_);
  ASSERT_TRUE(RegisterDeviceReclaim(&reclaimer, shrinker_.get(), memory_.get()).ok());
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(MakeBo(kMiB, 500 + i)) << i;
  EXPECT_GT(store_->pages_plain.load(), 0u);
  ExpectAccountingExact();
  for (int i = 0; i < 16; ++i) EXPECT_TRUE(Matches(*bos_[i], 500 + i)) << i;
  ExpectAccountingExact();
  UnregisterDeviceReclaim(&reclaimer, shrinker_.get(), memory_.get());
  // Without the hook the same allocation fails.
  std::vector<BoRef> more;
  bool failed = false;
  for (int i = 0; i < 16 && !failed; ++i) {
    OperationContext ctx;
    BoOptions opts;
    opts.size = Bytes(kMiB);
    Result<BoRef> bo = BufferObject::Create(dev_->get(), opts, PlacementOf(kMemTt), ctx);
    if (!bo.ok()) {
      EXPECT_EQ(bo.code(), Errc::kNoMemory);
      failed = true;
    } else {
      more.push_back(*bo);
    }
  }
  EXPECT_TRUE(failed);
}

// The analogue of xe_bo_shrink_kunit, sized for CI: 2x a 256 MiB page budget in 16 MiB objects,
// a purgeable share first, every populate over the budget reclaiming directly through the
// MemoryContext's hook; then everything is validated back to TT and verified byte for byte.
TEST_F(BoShrinkerTest, OvercommitTwiceTheBudgetAndRestoreExactly) {
  // 256 MiB in release; 64 MiB under the sanitizers (same shape, 4x faster).
  const std::uint64_t kBudget = (testing_util::UnderSanitizer() ? 64 : 256) * kMiB;
  constexpr std::uint64_t kBoSize = 16 * kMiB;
  const int kBos = static_cast<int>(2 * kBudget / kBoSize);
  const int kPurgeable = kBos / 4;
  bos_.clear();
  dev_.reset();
  shrinker_.reset();
  MakeDevice(true, nullptr, PageCount(kBudget / kPageSize));
  Reclaimer reclaimer(&stats_);
  ASSERT_TRUE(RegisterDeviceReclaim(&reclaimer, shrinker_.get(), memory_.get()).ok());
  for (int i = 0; i < kBos; ++i) {
    BoRef bo = MakeBo(kBoSize, 1000 + i);
    ASSERT_TRUE(bo) << i;
    if (i < kPurgeable) {
      ASSERT_TRUE(SetAdvice(*bo, Madvice::kDontNeed));
    }
    EXPECT_LE(memory_->pages_allocated().value(), memory_->pages_limit().value());
  }
  ExpectAccountingExact();
  int purged = 0;
  for (int i = 0; i < kBos; ++i) {
    BufferObject& bo = *bos_[i];
    OperationContext ctx;
    ctx.interruptible = true;
    Status s;
    for (int attempt = 0; attempt < 100; ++attempt) {
      s = bo.Reserve(ctx);
      if (!s.ok()) continue;
      bo.resv()->AssertHeld();
      s = bo.Validate(PlacementOf(kMemTt), ctx);
      if (s.ok()) s = bo.Populate(ctx);
      bo.Unreserve();
      if (s.code() != Errc::kInterrupted) break;
    }
    ASSERT_TRUE(s.ok()) << i << ": " << s.ToString();
    if (i < kPurgeable) {
      const bool retained = SetAdvice(bo, Madvice::kWillNeed);
      if (!retained) {
        ++purged;
        EXPECT_TRUE(AllZero(bo)) << i;
      } else {
        EXPECT_TRUE(Matches(bo, 1000 + i)) << i;
      }
    } else {
      EXPECT_TRUE(Matches(bo, 1000 + i)) << i;
      EXPECT_TRUE(SetAdvice(bo, Madvice::kWillNeed)) << i;
    }
  }
  EXPECT_GT(purged, 0);
  EXPECT_GT(store_->pages_plain.load(), 0u);
  EXPECT_GT(stats_.Get(Stat::kPagesPurged), 0u);
  ExpectAccountingExact();
  UnregisterDeviceReclaim(&reclaimer, shrinker_.get(), memory_.get());
}

// "drm/xe: Increase the XE_PL_TT watermark": with the shrinker owning the TT domain, a TT budget
// far below what the objects need is no cap (TT holds more than its budget; the shrinker moves the
// objects it backs up to SYSTEM, as xe's does); the page limit bounds the memory, enforced by
// direct reclaim through the shrinker; the watermark swapout never touches the shrinker's
// EXTERNAL_MAPPABLE vectors; every byte comes back. With the legacy split the budget caps TT.
TEST_F(BoShrinkerTest, TheTtDomainIsTheShrinkersNotACap) {
  constexpr std::uint64_t kBo = kMiB, kLimit = 8 * kMiB, kTt = 4 * kMiB;
  constexpr int kBos = 24;
  for (bool owns : {true, false}) {
    bos_.clear();
    dev_.reset();
    shrinker_.reset();
    MakeDevice(true, nullptr, PageCount(kLimit / kPageSize), {}, Bytes(kTt), owns);
    InstallWatermarkSwapout(*memory_);
    Reclaimer reclaimer(&stats_);
    ASSERT_TRUE(RegisterDeviceReclaim(&reclaimer, shrinker_.get(), memory_.get()).ok());
    const std::uint64_t swapouts0 = stats_.Get(Stat::kSwapouts);
    auto* tt = static_cast<TtManager*>((*dev_)->manager(kMemTt));
    std::uint64_t peak_tt = 0;
    // Legacy: the fifth object finds TT full (this test driver evicts TT only to a type it
    // does not install), so creating it fails; owned: all 24 fit.
    const int make = owns ? kBos : static_cast<int>(kTt / kBo);
    for (int i = 0; i < make; ++i) {
      ASSERT_TRUE(MakeBo(kBo, 500 + i)) << i << (owns ? " owned" : " legacy");
      EXPECT_LE(memory_->pages_allocated().value(), memory_->pages_limit().value());
      peak_tt = std::max(peak_tt, tt->allocated().value());
    }
    if (!owns) {
      OperationContext ctx;
      BoOptions opts;
      opts.size = Bytes(kBo);
      Result<BoRef> over = BufferObject::Create(dev_->get(), opts, PlacementOf(kMemTt), ctx);
      EXPECT_FALSE(over.ok()) << "TT is full at its budget";
    }
    if (owns) {
      EXPECT_TRUE(tt->shrinker_bounded());
      // Objects fill TT up to the page limit, past the budget; the shrinker takes the oldest
      // to SYSTEM as it backs them up (xe's shrinker moves before it backs up).
      EXPECT_GT(peak_tt, kTt) << "the TT budget is no cap";
      EXPECT_EQ(stats_.Get(Stat::kSwapouts), swapouts0) << "the watermark path took nothing";
      EXPECT_TRUE(bos_.back()->tt()->flags() & kPageVectorExternalMappable);
      EXPECT_GT(store_->pages_plain.load() + store_->pages_writeback.load(), 0u)
          << "the shrinker backed objects up";
    } else {
      EXPECT_FALSE(tt->shrinker_bounded());
      EXPECT_LE(peak_tt, kTt) << "the legacy split: the budget caps TT";
    }
    for (std::size_t i = 0; i < bos_.size(); ++i) {
      EXPECT_TRUE(Matches(*bos_[i], 500 + static_cast<std::uint32_t>(i))) << i;
    }
    ExpectAccountingExact();
    UnregisterDeviceReclaim(&reclaimer, shrinker_.get(), memory_.get());
  }
}

// A pipelined move leaves a ghost holding the old TT pages until the engine's copy is done. The
// shrinker purges a ghost in place (never backs it up: its contents are dead), but only once its
// fence has signalled, so the copy reads the pages it needs: the moved object is exact.
TEST(BoShrinkerGhostTest, AGhostIsPurgedInPlaceAfterItsCopyFinished) {
  MemoryContextOptions mo;
  auto memory = std::make_unique<MemoryContext>(mo);
  auto store = NewFileStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::unique_ptr<BoShrinker> shrinker;
  SimGpuOptions so;
  so.name = "ghost-gpu";
  so.vram_size = Bytes(4u << 20);
  so.memory = memory.get();
  so.backup_store = store->get();
  so.pipeline_moves = true;
  so.wrap_funcs = [&](DeviceFuncs* driver) {
    shrinker = std::make_unique<BoShrinker>(driver);
    return shrinker->funcs();
  };
  auto gpu = SimGpu::Create(so);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  ASSERT_TRUE(shrinker->Attach((*gpu)->device()).ok());
  OperationContext ctx;
  constexpr std::uint64_t kPages = 64;
  auto bo = BufferObject::Create((*gpu)->device(), BoOptions{.size = Bytes(kPages * kPageSize)},
                                 Placement{Place{.mem_type = kMemTt}}, ctx);
  ASSERT_TRUE(bo.ok()) << bo.status().ToString();
  const std::vector<std::byte> content = testing::Content({77}, 0, kPages * kPageSize);
  ASSERT_TRUE((*bo)->Write(0, content, ctx).ok());
  ASSERT_TRUE((*bo)->Reserve(ctx).ok());
  (*bo)->resv()->AssertHeld();
  // A job keeps the engine busy, so the TT -> VRAM copy queued behind it is still pending when
  // Validate returns: the old TT pages go to a ghost.
  ASSERT_TRUE((*gpu)->SubmitJob(**bo, std::chrono::milliseconds(50)).ok());
  ASSERT_TRUE((*bo)->Validate(Placement{Place{.mem_type = kMemVram}}, ctx).ok());
  (*bo)->Unreserve();
  EXPECT_EQ(shrinker->shrinkable_pages(), kPages);  // the ghost's vector, still counted
  (*gpu)->device()->PauseDelayedDeletes();          // the shrinker, not the worker, frees it
  ShrinkControl sc;
  sc.nr_to_scan = 4096;
  sc.reclaim = ReclaimContext{.may_fs = false, .may_io = false, .background = true};
  EXPECT_EQ(shrinker->Scan(sc), kPages);  // purge pass: waits for the copy, then purges
  EXPECT_EQ(shrinker->shrinkable_pages(), 0u);
  EXPECT_EQ(memory->pages_allocated().value(), 0u);
  EXPECT_EQ((*store)->BytesUsed(), 0u);  // never backed up
  (*gpu)->device()->ResumeDelayedDeletes();
  std::vector<std::byte> got(content.size());
  ASSERT_TRUE((*bo)->Read(0, got, ctx).ok());
  EXPECT_FALSE(testing::FindMismatch({77}, 0, got).has_value());
  bo->reset();
  (*gpu)->Drain();
  (*gpu)->device()->FlushDelayedDeletes();
}

}  // namespace
}  // namespace uttm
