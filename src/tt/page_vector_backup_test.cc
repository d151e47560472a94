// Copyright (c) uttm developers.
//
// Page vectors against real backup stores: legacy swap (ttm_tt_swapin_basic, ttm_tt_fini_shmem),
// backup/purge/restore (ttm_pool_backup, ttm_pool_restore_and_alloc), partial backups and failed
// restores, fault injection, RSS and threads.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "tt/test_util.h"
#include "uttm/fault_injection.h"
#include "uttm/file_store.h"
#include "uttm/memfd_store.h"
#include "uttm/page_vector.h"

namespace uttm {
namespace {

using testing_util::RssAnonBytes;
using testing_util::UnderSanitizer;

std::unique_ptr<BackupStore> FileStore(std::uint64_t capacity = 0) {
  FileStoreOptions options;
  options.capacity_bytes = capacity;
  auto s = NewFileStore(options);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(*s);
}

std::unique_ptr<PageVector> Make(MemoryContext* ctx, std::size_t pages,
                                 Caching caching = Caching::kWriteCombined) {
  auto v = PageVector::Create(ctx, {.size = Bytes(pages * kPageSize), .caching = caching});
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return std::move(*v);
}

// Fills a populated vector with a pattern unique per (seed, byte) and returns a copy.
std::vector<std::byte> Fill(PageVector* v, unsigned seed) {
  std::vector<std::byte> data(v->num_pages().in_bytes().value());
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < data.size(); i += 8) {
    std::uint64_t x = rng();
    std::memcpy(&data[i], &x, 8);
  }
  EXPECT_TRUE(v->Write(0, data).ok());
  return data;
}

void ExpectContents(PageVector* v, const std::vector<std::byte>& data) {
  ASSERT_TRUE(v->is_populated());
  std::vector<std::byte> out(data.size());
  ASSERT_TRUE(v->Read(0, out).ok());
  ASSERT_TRUE(out == data) << "contents differ";
}

std::size_t CountKind(const PageVector& v, PageVector::SlotKind kind) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < v.num_pages().value(); ++i) n += v.slot_kind(i) == kind;
  return n;
}

// Restores, retrying after every error; returns the number of failed attempts.
int RestoreWithRetries(PageVector* v, OperationContext& op, BackupStore* store = nullptr) {
  int failures = 0;
  for (;;) {
    Status s = v->Restore(op, store);
    if (s.ok()) return failures;
    EXPECT_TRUE(s.code() == Errc::kInterrupted || s.code() == Errc::kNoMemory ||
                s.code() == Errc::kIo)
        << s.ToString();
    EXPECT_TRUE(v->is_backed_up());
    // After a failed restore the vector is charged for exactly the pages it holds.
    EXPECT_EQ(v->context().pages_allocated().value(), v->resident_pages().value());
    EXPECT_EQ(v->is_partial(), v->resident_pages().value() > 0);
    if (++failures > 100000) return failures;
  }
}

TEST(ttm_tt, ttm_tt_swapin_basic) {
  MemoryContext ctx;
  OperationContext op;
  auto store = FileStore();
  auto v = Make(&ctx, 37, Caching::kCached);
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 1);
  auto swapped = v->Swapout(store.get());
  ASSERT_TRUE(swapped.ok()) << swapped.status().ToString();
  EXPECT_EQ(swapped->value(), 37u);
  EXPECT_TRUE(v->flags() & kPageVectorSwapped);
  EXPECT_FALSE(v->is_populated());
  EXPECT_EQ(store->BytesUsed(), 37 * kPageSize);
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
  ASSERT_TRUE(v->Populate(op).ok());
  EXPECT_FALSE(v->flags() & kPageVectorSwapped);
  EXPECT_EQ(store->BytesUsed(), 0u);
  ExpectContents(v.get(), data);
}

TEST(ttm_tt, ttm_tt_fini_shmem) {
  MemoryContext ctx;
  OperationContext op;
  auto store = FileStore();
  auto v = Make(&ctx, 8);
  ASSERT_TRUE(v->Populate(op).ok());
  ASSERT_TRUE(v->Swapout(store.get()).ok());
  EXPECT_GT(store->BytesUsed(), 0u);
  v.reset();
  EXPECT_EQ(store->BytesUsed(), 0u);
  EXPECT_EQ(ctx.provider().pages_in_use(), ctx.pool().pooled_pages());
}

TEST(PageVectorSwapTest, SwapoutFailureLeavesVectorUnchanged) {
  MemoryContext ctx;
  OperationContext op;
  auto store = FileStore();
  auto v = Make(&ctx, 64);
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 2);
  {
    // The store takes 20 pages (a short backup), then every write fails.
    ScopedFault fault(FaultPoint::kStoreWrite, {.after = 20});
    EXPECT_EQ(v->Swapout(store.get()).status().code(), Errc::kIo);
  }
  EXPECT_EQ(store->BytesUsed(), 0u);
  ExpectContents(v.get(), data);
  ASSERT_TRUE(v->Swapout(store.get()).ok());
  {
    // A failure on the first page: nothing came back, the vector stays swapped.
    ScopedFault fault(FaultPoint::kStoreRead, {.times = 1});
    EXPECT_EQ(v->Populate(op).code(), Errc::kIo);
  }
  EXPECT_TRUE(v->flags() & kPageVectorSwapped);
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
  EXPECT_TRUE(v->CheckConsistency().ok());
  {
    // A failure after 10 pages: those 10 stay, the rest is a per-page backup to go on from.
    ScopedFault fault(FaultPoint::kStoreRead, {.after = 10, .times = 1});
    EXPECT_EQ(v->Populate(op).code(), Errc::kIo);
  }
  EXPECT_FALSE(v->flags() & kPageVectorSwapped);
  EXPECT_TRUE(v->is_backed_up());
  EXPECT_TRUE(v->is_partial());
  EXPECT_EQ(v->usage().resident_pages, 10u);
  EXPECT_EQ(v->usage().backup_pages, 54u);
  EXPECT_EQ(ctx.pages_allocated().value(), 10u);
  EXPECT_EQ(store->BytesUsed(), 54 * kPageSize);
  Status consistent = v->CheckConsistency();
  EXPECT_TRUE(consistent.ok()) << consistent.ToString();
  ASSERT_TRUE(v->Restore(op).ok());
  ExpectContents(v.get(), data);
  EXPECT_EQ(store->BytesUsed(), 0u);
}

// An interruptible swap-in interrupted every 300 pages finishes in about n / 300 calls: each call
// keeps what it brought back (it used to start over, so a 2048-page object never came back).
TEST(PageVectorSwapTest, AnInterruptedSwapInGoesOnFromWhereItStopped) {
  MemoryContext ctx;
  OperationContext op;
  op.interruptible = true;
  auto store = FileStore();
  auto v = Make(&ctx, 2048);
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 5);
  ASSERT_TRUE(v->Swapout(store.get()).ok());
  int calls = 0;
  {
    ScopedFault fault(FaultPoint::kStoreInterrupt, {.interval = 300});
    for (; calls < 100 && !v->is_populated(); ++calls) {
      Status s = v->is_backed_up() ? v->Restore(op) : v->Populate(op);
      ASSERT_TRUE(s.ok() || s.code() == Errc::kInterrupted) << s.ToString();
      Status consistent = v->CheckConsistency();
      ASSERT_TRUE(consistent.ok()) << consistent.ToString();
    }
  }
  EXPECT_TRUE(v->is_populated());
  EXPECT_LE(calls, 2048 / 300 + 2);
  ExpectContents(v.get(), data);
  EXPECT_EQ(store->BytesUsed(), 0u);
  EXPECT_EQ(ctx.pages_allocated().value(), 2048u);
}

TEST(PageVectorBackupTest, BackupRestoreRoundTripFreesPagesAndStore) {
  Stats stats;
  MemoryContext ctx({.stats = &stats});
  OperationContext op;
  auto store = FileStore();
  auto v = Make(&ctx, 1027);
  v->AttachBackupStore(store.get());
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 3);
  auto n = v->Backup({});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->value(), 1027u);
  EXPECT_TRUE(v->is_backed_up());
  EXPECT_EQ(CountKind(*v, PageVector::SlotKind::kHandle), 1027u);
  // Every page went straight back to the OS, or to the pool's bounded store of recycled pages
  // for the next restore.
  EXPECT_EQ(ctx.provider().pages_in_use(), ctx.pool().recycled_pages());
  EXPECT_LE(ctx.pool().recycled_pages(), PagePoolOptions{}.recycle_pages.value());
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
  auto again = v->Backup({});  // everything is in the store already
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->value(), 0u);
  ASSERT_TRUE(v->Restore(op).ok());
  EXPECT_FALSE(v->is_backed_up());
  ExpectContents(v.get(), data);
  EXPECT_EQ(store->BytesUsed(), 0u);
  EXPECT_EQ(op.pages_restored, 1027u);
  EXPECT_EQ(stats.Get(Stat::kPagesBackedUp), 1027u);
  EXPECT_EQ(ctx.pages_allocated().value(), 1027u);
}

// A partial backup: backup.partial backs up ceil(n/2) pages; the rest stay pages; restore is exact;
// destroying a partially backed-up vector leaks nothing.
TEST(PageVectorBackupTest, PartialBackupScenario) {
  for (bool destroy_before_restore : {false, true}) {
    MemoryContext ctx;
    OperationContext op;
    auto store = FileStore();
    auto v = Make(&ctx, 101);
    ASSERT_TRUE(v->Populate(op).ok());
    auto data = Fill(v.get(), 4);
    {
      ScopedFault fault(FaultPoint::kBackupPartial, {.times = 1});
      auto n = v->Backup({}, store.get());
      ASSERT_TRUE(n.ok());
      EXPECT_EQ(n->value(), 51u);
    }
    EXPECT_TRUE(v->is_backed_up());
    EXPECT_EQ(CountKind(*v, PageVector::SlotKind::kHandle), 51u);
    EXPECT_EQ(CountKind(*v, PageVector::SlotKind::kPage), 50u);
    EXPECT_EQ(ctx.provider().pages_in_use(), 50u + ctx.pool().recycled_pages());
    // Only what went to the store is uncharged: the 50 leftover pages are still counted.
    EXPECT_TRUE(v->is_partial());
    EXPECT_EQ(v->resident_pages().value(), 50u);
    EXPECT_EQ(ctx.pages_allocated().value(), 50u);
    if (destroy_before_restore) {
      v.reset();
    } else {
      ASSERT_TRUE(v->Restore(op).ok());
      ExpectContents(v.get(), data);
      v.reset();
    }
    EXPECT_EQ(store->BytesUsed(), 0u);
    EXPECT_EQ(ctx.provider().pages_in_use(), ctx.pool().pooled_pages());
    EXPECT_EQ(ctx.pages_allocated().value(), 0u);
  }
}

// A Partial vector is continued by the next backup: the leftovers go to the same store, the
// charge follows the pages held at every step, and a restore brings back every page exactly.
TEST(PageVectorBackupTest, NextBackupContinuesAPartialOne) {
  MemoryContext ctx;
  OperationContext op;
  auto store = FileStore();
  auto other = FileStore();
  auto v = Make(&ctx, 300);
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 9);
  {
    ScopedFault fault(FaultPoint::kStoreWrite, {.after = 120, .times = 1});
    auto n = v->Backup({}, store.get());
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(n->value(), 120u);
  }
  ASSERT_TRUE(v->is_partial());
  EXPECT_EQ(v->resident_pages().value(), 180u);
  EXPECT_EQ(ctx.pages_allocated().value(), 180u);
  EXPECT_EQ(store->BytesUsed(), 120 * kPageSize);
  // The rest of a vector cannot go to a different store.
  EXPECT_EQ(v->Backup({}, other.get()).status().code(), Errc::kInvalid);
  EXPECT_EQ(v->resident_pages().value(), 180u);
  auto rest = v->Backup({}, store.get());
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->value(), 180u);
  EXPECT_FALSE(v->is_partial());
  EXPECT_TRUE(v->is_backed_up());
  EXPECT_EQ(v->resident_pages().value(), 0u);
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
  EXPECT_EQ(ctx.provider().pages_in_use(), ctx.pool().pooled_pages());
  EXPECT_EQ(CountKind(*v, PageVector::SlotKind::kHandle), 300u);
  ASSERT_TRUE(v->Restore(op, store.get()).ok());
  ExpectContents(v.get(), data);
  EXPECT_EQ(ctx.pages_allocated().value(), 300u);
  EXPECT_EQ(store->BytesUsed(), 0u);
}

// A restore that fails half-way leaves a Partial vector charged for what it brought back; a
// backup then gives that progress back to the store, and the next restore completes exactly.
TEST(PageVectorBackupTest, FailedRestoreIsPartialAndCanBeBackedUpAgain) {
  MemoryContext ctx;
  OperationContext op;
  auto store = FileStore();
  auto v = Make(&ctx, 200);
  v->AttachBackupStore(store.get());
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 10);
  ASSERT_TRUE(v->Backup({}).ok());
  {
    ScopedFault fault(FaultPoint::kStoreRead, {.after = 90, .times = 1});
    EXPECT_EQ(v->Restore(op).code(), Errc::kIo);
  }
  ASSERT_TRUE(v->is_partial());
  const std::uint64_t held = v->resident_pages().value();
  EXPECT_GT(held, 0u);
  EXPECT_LT(held, 200u);
  EXPECT_EQ(ctx.pages_allocated().value(), held);
  auto n = v->Backup({});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->value(), held);
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
  EXPECT_FALSE(v->is_partial());
  ASSERT_TRUE(v->Restore(op).ok());
  ExpectContents(v.get(), data);
  EXPECT_EQ(store->BytesUsed(), 0u);
}

TEST(PageVectorBackupTest, BusyWhenStoreFullUnlessPurging) {
  MemoryContext ctx;
  OperationContext op;
  auto full = FileStore(4 * kPageSize);
  auto filler = Make(&ctx, 4);
  ASSERT_TRUE(filler->Populate(op).ok());
  ASSERT_TRUE(filler->Backup({}, full.get()).ok());
  auto v = Make(&ctx, 8);
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 5);
  EXPECT_EQ(v->Backup({}, full.get()).status().code(), Errc::kBusy);
  ExpectContents(v.get(), data);
  // A memfd store without swap reports no room either (the kernel's rule).
  auto memfd = NewMemfdStore(MemfdStoreOptions{});
  ASSERT_TRUE(memfd.ok());
  EXPECT_EQ(v->Backup({}, memfd->get()).status().code(), Errc::kBusy);
  auto purged = v->Backup({.purge = true}, full.get());
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged->value(), 8u);
}

TEST(PageVectorBackupTest, StoreCapacityGivesPartialBackup) {
  MemoryContext ctx;
  OperationContext op;
  auto store = FileStore(10 * kPageSize);
  auto v = Make(&ctx, 16);
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 6);
  auto n = v->Backup({}, store.get());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->value(), 10u);
  EXPECT_EQ(CountKind(*v, PageVector::SlotKind::kPage), 6u);
  ASSERT_TRUE(v->Restore(op).ok());
  ExpectContents(v.get(), data);
}

struct BackupFaultParam {
  const char* name;
  FaultPoint point;
  FaultSpec spec;
  Errc error_if_nothing_stored;
};

class PageVectorBackupFault : public ::testing::TestWithParam<BackupFaultParam> {};

// A store write failure after k pages, a short write, ENOSPC: nothing lost, the vector is
// partially backed up (or unchanged if nothing was stored), and a later backup completes.
TEST_P(PageVectorBackupFault, NothingLostAndRetryCompletes) {
  MemoryContext ctx;
  OperationContext op;
  auto store = FileStore();
  auto v = Make(&ctx, 700);
  v->AttachBackupStore(store.get());
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 7);
  {
    ScopedFault fault(GetParam().point, GetParam().spec);
    auto n = v->Backup({});
    if (GetParam().spec.after == 0) {
      ASSERT_FALSE(n.ok());
      EXPECT_EQ(n.status().code(), GetParam().error_if_nothing_stored);
      EXPECT_TRUE(v->is_populated());
      ExpectContents(v.get(), data);
      ASSERT_TRUE(v->Backup({}).ok());
    } else {
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      EXPECT_GT(n->value(), 0u);
      EXPECT_TRUE(v->is_backed_up());
    }
  }
  ASSERT_TRUE(v->Restore(op).ok());
  ExpectContents(v.get(), data);
  // The full backup now succeeds, and so does the restore.
  auto n = v->Backup({});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->value(), 700u);
  ASSERT_TRUE(v->Restore(op).ok());
  ExpectContents(v.get(), data);
  v.reset();
  EXPECT_EQ(store->BytesUsed(), 0u);
  EXPECT_EQ(ctx.provider().pages_in_use(), ctx.pool().pooled_pages());
}

INSTANTIATE_TEST_SUITE_P(
    Faults, PageVectorBackupFault,
    ::testing::Values(
        BackupFaultParam{"write_error_at_start", FaultPoint::kStoreWrite, {.times = 1}, Errc::kIo},
        BackupFaultParam{"write_error_after_300",
                         FaultPoint::kStoreWrite,
                         {.after = 300, .times = 1},
                         Errc::kIo},
        BackupFaultParam{
            "short_write", FaultPoint::kStoreShortWrite, {.after = 1, .times = 3}, Errc::kOk},
        BackupFaultParam{
            "nospace_at_start", FaultPoint::kStoreNoSpace, {.times = 1}, Errc::kNoSpace},
        BackupFaultParam{
            "nospace_after_100", FaultPoint::kStoreNoSpace, {.after = 100}, Errc::kNoSpace}),
    [](const auto& info) { return std::string(info.param.name); });

struct RestoreFaultParam {
  const char* name;
  FaultPoint point;
  FaultSpec spec;
  bool interruptible;
};

class PageVectorRestoreFault : public ::testing::TestWithParam<RestoreFaultParam> {};

// The restore faults: read failure, checksum mismatch, EINTR mid-restore, page
// allocation failure. Each failed call keeps its state; retries complete with exact contents.
TEST_P(PageVectorRestoreFault, ResumesWithExactContents) {
  MemoryContext ctx;
  OperationContext op;
  op.interruptible = GetParam().interruptible;
  auto store = FileStore();
  auto v = Make(&ctx, 1500);
  v->AttachBackupStore(store.get());
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 8);
  {
    ScopedFault partial(FaultPoint::kBackupPartial, {.times = 1});
    ASSERT_TRUE(v->Backup({}).ok());  // a mix of handles and leftover pages
  }
  int failures;
  {
    ScopedFault fault(GetParam().point, GetParam().spec);
    failures = RestoreWithRetries(v.get(), op);
  }
  EXPECT_GT(failures, 0);
  ExpectContents(v.get(), data);
  EXPECT_EQ(store->BytesUsed(), 0u);
  v.reset();
  EXPECT_EQ(ctx.provider().pages_in_use(), ctx.pool().pooled_pages());
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Faults, PageVectorRestoreFault,
    ::testing::Values(
        RestoreFaultParam{"store_read", FaultPoint::kStoreRead, {.interval = 97}, false},
        RestoreFaultParam{"checksum_mismatch", FaultPoint::kStoreCorrupt, {.interval = 113}, false},
        RestoreFaultParam{"eintr", FaultPoint::kRestoreInterrupt, {.interval = 2}, true},
        RestoreFaultParam{"store_eintr", FaultPoint::kStoreInterrupt, {.interval = 50}, true},
        RestoreFaultParam{"page_alloc", FaultPoint::kPageAlloc, {.after = 1, .times = 12}, false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(PageVectorRestoreTest, StopTokenInterruptsAndDestroyMidRestoreLeaksNothing) {
  // No recycled pages: the restore's chunks must come from the provider, whose failure is the
  // interruption tested.
  MemoryContextOptions mo;
  mo.recycle_pages = PageCount(0);
  MemoryContext ctx(mo);
  auto store = FileStore();
  OperationContext op;
  auto v = Make(&ctx, 1024 + 512);
  v->AttachBackupStore(store.get());
  ASSERT_TRUE(v->Populate(op).ok());
  auto data = Fill(v.get(), 9);
  ASSERT_TRUE(v->Backup({}).ok());
  // Interrupt after the first order-9 chunk is in.
  std::stop_source stop;
  OperationContext intr;
  intr.interruptible = true;
  intr.stop = stop.get_token();
  {
    ScopedFault fault(FaultPoint::kPageAlloc, {.after = 1});  // only the first chunk arrives
    EXPECT_EQ(v->Restore(intr).code(), Errc::kNoMemory);
  }
  EXPECT_TRUE(v->is_restoring());
  stop.request_stop();
  EXPECT_EQ(v->Restore(intr).code(), Errc::kInterrupted);
  EXPECT_TRUE(v->is_restoring());
  EXPECT_GT(store->BytesUsed(), 0u);
  v.reset();  // committed pages, in-flight chunk and remaining handles all released
  EXPECT_EQ(store->BytesUsed(), 0u);
  EXPECT_EQ(ctx.provider().pages_in_use(), ctx.pool().pooled_pages());
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
}

// A restore may get pages another vector's backup just gave up (recycled, uncleared): every
// page is overwritten, and a purged slot reads as zeros, not as that other vector's bytes.
TEST(PageVectorRestoreTest, RecycledPagesNeverShowAnotherVectorsBytes) {
  Stats stats;
  MemoryContext ctx({.stats = &stats});
  OperationContext op;
  auto store = FileStore();
  auto purged = Make(&ctx, 512, Caching::kCached);
  ASSERT_TRUE(purged->Populate(op).ok());
  Fill(purged.get(), 11);
  ASSERT_TRUE(purged->Backup({.purge = true}).ok());
  auto other = Make(&ctx, 512, Caching::kCached);
  ASSERT_TRUE(other->Populate(op).ok());
  auto data = Fill(other.get(), 12);
  ASSERT_TRUE(other->Backup({}, store.get()).ok());
  ASSERT_EQ(ctx.pool().recycled_pages(), 512u);
  ASSERT_TRUE(purged->Restore(op).ok());
  EXPECT_EQ(stats.Get(Stat::kPoolRecycleHits), 1u) << "the purged vector got the recycled chunk";
  std::vector<std::byte> got(512 * kPageSize);
  ASSERT_TRUE(purged->Read(0, got).ok());
  for (std::size_t i = 0; i < got.size(); i += 8) ASSERT_EQ(got[i], std::byte{0}) << i;
  ASSERT_TRUE(other->Restore(op).ok());
  ExpectContents(other.get(), data);
}

TEST(PageVectorRssTest, Backup512MiBToFileStoreReleasesMemory) {
  if (UnderSanitizer()) GTEST_SKIP() << "sanitizer shadow memory distorts RSS";
  MemoryContext ctx;
  OperationContext op;
  auto store = FileStore();
  const std::size_t pages = (std::size_t{512} << 20) / kPageSize;
  auto v = Make(&ctx, pages, Caching::kCached);
  ASSERT_TRUE(v->Populate(op).ok());
  for (std::size_t i = 0; i < pages; ++i) std::memset(v->PageAddress(i), static_cast<int>(i), 64);
  const std::uint64_t before = RssAnonBytes();
  auto n = v->Backup({}, store.get());
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n->value(), pages);
  const std::uint64_t after = RssAnonBytes();
  EXPECT_GE(before - std::min(before, after), (std::uint64_t{512} << 20) * 9 / 10)
      << "RssAnon before " << before << " after " << after;
  ASSERT_TRUE(v->Restore(op).ok());
  for (std::size_t i = 0; i < pages; i += 4099) {
    ASSERT_EQ(v->PageAddress(i)[0], static_cast<std::byte>(i & 0xff));
  }
}

// Threads populate, back up and restore their own vectors through one shared store and pool.
TEST(PageVectorThreadTest, SharedStoreAndPool) {
  MemoryContext ctx({.page_pool_size = PageCount(256)});
  auto store = FileStore();
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      OperationContext op;
      op.interruptible = true;
      for (int round = 0; round < 6; ++round) {
        const std::size_t pages = 17 + 61 * static_cast<std::size_t>(t + round);
        auto v = Make(&ctx, pages, round % 2 ? Caching::kWriteCombined : Caching::kCached);
        if (!v->Populate(op).ok()) {
          ++failures;
          continue;
        }
        auto data = Fill(v.get(), static_cast<unsigned>(t * 100 + round));
        if (!v->Backup({}, store.get()).ok()) ++failures;
        if (RestoreWithRetries(v.get(), op, store.get()) != 0) ++failures;
        std::vector<std::byte> out(data.size());
        if (!v->Read(0, out).ok() || out != data) ++failures;
        if (round % 3 == 0) v->Unpopulate();
      }
    });
  }
  // The pool shrinker runs concurrently, as reclaim would.
  std::atomic<bool> done{false};
  std::thread shrinker([&] {
    while (!done.load()) {
      ShrinkControl sc;
      sc.nr_to_scan = 64;
      if (ctx.pool().shrinker().Count(sc) != kShrinkEmpty) ctx.pool().shrinker().Scan(sc);
      std::this_thread::yield();
    }
  });
  for (auto& th : threads) th.join();
  done.store(true);
  shrinker.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->BytesUsed(), 0u);
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
}

}  // namespace
}  // namespace uttm
