// Copyright (c) uttm developers.
//
// The tiered store over real tiers: a compressed RAM store with a small cap above a file store.
// Page contents come from (test, batch, page) seeds, so a page restored from the wrong tier,
// slot or batch is caught. The lower tier's failures are real: a file store at its cap (ENOSPC)
// and a file size limit (EFBIG from the kernel).
#include "uttm/tiered_store.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "testing/page_buffer.h"
#include "testing/proc_status.h"
#include "uttm/backup_store_factory.h"
#include "uttm/compressed_store.h"
#include "uttm/fault_injection.h"
#include "uttm/stats.h"
#include "uttm/units.h"
#include "uttm/uring_store.h"

namespace uttm {
namespace {

using Pages = testing::PatternPages;

class TieredStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    RegisterCompressedStoreKinds();
    RegisterUringStoreKind();
    RegisterTieredStoreKind();
  }
  void SetUp() override {
    char tmpl[] = "/tmp/uttm-tier-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    store_.reset();
    FaultInjection::DisarmAll();
    ::rmdir(dir_.c_str());
  }

  // An upper tier of 512 KiB of compressed RAM (about a hundred of these incompressible pages)
  // over `lower`.
  void Make(const std::string& lower) {
    auto s = CreateBackupStore("tier:lz4,cap=512K+" + lower, &stats_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  // Backs up `batches` batches of `per` pages, batch b with seed base + b. Returns the handles
  // of the pages stored (all, unless `allow_partial`).
  std::vector<std::vector<BackupHandle>> BackupBatches(std::size_t batches, std::size_t per,
                                                       std::uint64_t base,
                                                       bool allow_partial = false) {
    std::vector<std::vector<BackupHandle>> out;
    for (std::size_t b = 0; b < batches; ++b) {
      Pages pages(per, base + b);
      std::vector<BackupHandle> h(per);
      Result<std::size_t> r = store_->BackupPages(pages.data(), per, {}, h.data());
      if (!allow_partial) {
        EXPECT_TRUE(r.ok() && *r == per) << r.status().ToString();
      }
      h.resize(r.ok() ? *r : 0);
      out.push_back(std::move(h));
    }
    return out;
  }

  // Restores batch b's handles and checks every page against seed base + b.
  void ExpectBatch(const std::vector<BackupHandle>& h, std::uint64_t seed, std::size_t per) {
    Pages want(per, seed);
    Pages got(std::max<std::size_t>(h.size(), 1));
    std::size_t copied = 0;
    Status s = store_->CopyPages(h.data(), h.size(), got.data(), {}, &copied);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(copied, h.size());
    for (std::size_t i = 0; i < h.size(); ++i) {
      ASSERT_TRUE(testing::SamePage(got.page(i), want.page(i))) << "seed " << seed << " page " << i;
    }
  }

  // Disk space held by the lower tier's file (the one open descriptor into dir_).
  std::uint64_t LowerFileBytes() const {
    for (int fd = 0; fd < 1024; ++fd) {
      if (testing::FdPath(fd).rfind(dir_ + "/", 0) != 0) continue;
      struct stat st {};
      if (::fstat(fd, &st) == 0) return static_cast<std::uint64_t>(st.st_blocks) * 512;
    }
    ADD_FAILURE() << "no lower tier file in " << dir_;
    return 0;
  }

  std::string dir_;
  Stats stats_;
  std::unique_ptr<BackupStore> store_;
};

TEST_F(TieredStoreTest, AFullUpperTierWritesItsColdestPagesBackAndEveryPageComesBack) {
  Make("file:" + dir_);
  EXPECT_NE(store_->Describe().find("compressed RAM"), std::string::npos) << store_->Describe();
  EXPECT_NE(store_->Describe().find(" over file:"), std::string::npos) << store_->Describe();
  constexpr std::size_t kBatches = 40, kPer = 32;  // 1280 pages, over ten times the upper tier
  auto handles = BackupBatches(kBatches, kPer, 100);
  EXPECT_GT(stats_.Get(Stat::kTierWritebackPages), 1000u);
  EXPECT_EQ(stats_.Get(Stat::kTierWritebackErrors), 0u);
  // The newest batch is still in RAM, the oldest went to the file: restores read both tiers.
  ExpectBatch(handles.back(), 100 + kBatches - 1, kPer);
  EXPECT_EQ(stats_.Get(Stat::kTierLowerReads), 0u);
  for (std::size_t b = 0; b < kBatches; ++b) ExpectBatch(handles[b], 100 + b, kPer);
  EXPECT_GT(stats_.Get(Stat::kTierLowerReads), 0u);
  EXPECT_GT(stats_.Get(Stat::kTierUpperReads), 0u);
  ASSERT_GT(LowerFileBytes(), 1000u * kPageSize);
  for (auto& h : handles) store_->Drop(h.data(), h.size());
  EXPECT_EQ(LowerFileBytes(), 0u) << "dropped pages still hold disk space in the lower tier";
}

// Copies make pages recently used: a batch read again and again stays in RAM while the others
// are written back around it.
TEST_F(TieredStoreTest, PagesReadOftenStayInTheUpperTier) {
  Make("file:" + dir_);
  auto hot = BackupBatches(1, 16, 7);
  for (int round = 0; round < 20; ++round) {
    BackupBatches(1, 32, 1000 + static_cast<std::uint64_t>(round));
    ExpectBatch(hot[0], 7, 16);
  }
  ASSERT_GT(stats_.Get(Stat::kTierWritebackPages), 300u);
  EXPECT_EQ(stats_.Get(Stat::kTierLowerReads), 0u) << "the hot batch was written back";
}

// Handles stay valid while their entries move between tiers under backups, copies and drops
// from several threads.
TEST_F(TieredStoreTest, HandlesStayValidWhileEntriesMoveUnderManyThreads) {
  Make("file:" + dir_);
  std::atomic<int> failures{0};
  auto worker = [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    struct Kept {
      std::vector<BackupHandle> h;
      std::uint64_t seed;
    };
    std::vector<Kept> kept;
    for (int it = 0; it < 120 && failures == 0; ++it) {
      const std::uint64_t seed = static_cast<std::uint64_t>(t) * 100000 + static_cast<unsigned>(it);
      Pages pages(8, seed);
      std::vector<BackupHandle> h(8);
      Result<std::size_t> r = store_->BackupPages(pages.data(), 8, {}, h.data());
      if (!r.ok() || *r != 8) ++failures;
      kept.push_back({h, seed});
      const std::size_t pick = rng() % kept.size();
      Pages got(8);
      Pages want(8, kept[pick].seed);
      if (!store_->CopyPages(kept[pick].h.data(), 8, got.data(), {}).ok() ||
          std::memcmp(got.data(), want.data(), 8 * kPageSize) != 0) {
        ++failures;
      }
      if (rng() % 3 == 0) {
        const std::size_t drop = rng() % kept.size();
        store_->Drop(kept[drop].h.data(), 8);
        kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(drop));
      }
    }
    for (Kept& k : kept) store_->Drop(k.h.data(), 8);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t);
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(stats_.Get(Stat::kTierWritebackPages), 0u);
  EXPECT_EQ(LowerFileBytes(), 0u);
}

// ENOSPC in the lower tier (a file store at its cap): the writeback fails, its entries stay in
// RAM, the error is counted and the backup that needed the room is partial; nothing stored is
// lost.
TEST_F(TieredStoreTest, AFullLowerTierKeepsEntriesInTheUpperTierAndLosesNothing) {
  Make("file:" + dir_ + ",cap=256K");
  auto handles = BackupBatches(20, 32, 300, /*allow_partial=*/true);
  std::size_t stored = 0;
  for (auto& h : handles) stored += h.size();
  EXPECT_LT(stored, 20u * 32) << "both tiers together hold far less than 640 pages";
  EXPECT_GT(stored, 64u + 32);
  EXPECT_GT(stats_.Get(Stat::kTierWritebackErrors), 0u);
  Pages one(1, 999);
  BackupHandle h;
  Result<std::size_t> r = store_->BackupPages(one.data(), 1, {}, &h);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kNoSpace) << r.status().ToString();
  for (std::size_t b = 0; b < handles.size(); ++b) {
    if (!handles[b].empty()) ExpectBatch(handles[b], 300 + b, 32);
  }
}

// A write error of the lower tier (the kernel's EFBIG past RLIMIT_FSIZE): the same.
TEST_F(TieredStoreTest, ALowerTierWriteErrorIsReportedAndLosesNothing) {
  Make("file:" + dir_);
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = old;
  limit.rlim_cur = 128 * 1024;  // 32 pages of lower tier
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  auto handles = BackupBatches(12, 32, 500, /*allow_partial=*/true);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_GT(stats_.Get(Stat::kTierWritebackErrors), 0u);
  std::size_t stored = 0;
  for (std::size_t b = 0; b < handles.size(); ++b) {
    stored += handles[b].size();
    if (!handles[b].empty()) ExpectBatch(handles[b], 500 + b, 32);
  }
  EXPECT_GT(stored, 32u);
  // With the limit gone the lower tier takes writebacks again.
  auto more = BackupBatches(8, 32, 700);
  for (std::size_t b = 0; b < more.size(); ++b) ExpectBatch(more[b], 700 + b, 32);
}

// A corrupt page in the lower tier is its checksum's error, with the pages before it copied.
TEST_F(TieredStoreTest, CorruptionInTheLowerTierIsAnErrorNeverData) {
  Make("file:" + dir_);
  auto handles = BackupBatches(10, 32, 800);
  ASSERT_GT(stats_.Get(Stat::kTierWritebackPages), 32u);  // batch 0 is in the file
  ScopedFault corrupt(FaultPoint::kStoreCorrupt, {.after = 5, .times = 1});
  Pages got(32);
  std::size_t copied = 0;
  Status s = store_->CopyPages(handles[0].data(), 32, got.data(), {}, &copied);
  EXPECT_EQ(s.code(), Errc::kIo) << s.ToString();
  EXPECT_EQ(copied, 5u);
  Pages want(32, 800);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_TRUE(testing::SamePage(got.page(i), want.page(i)));
  FaultInjection::DisarmAll();
  ExpectBatch(handles[0], 800, 32);  // the stored page itself is intact
}

TEST_F(TieredStoreTest, AnIoUringLowerTierWorksTheSame) {
  Make("uring:" + dir_);
  auto handles = BackupBatches(20, 32, 900);
  for (std::size_t b = 0; b < handles.size(); ++b) ExpectBatch(handles[b], 900 + b, 32);
  EXPECT_GT(stats_.Get(Stat::kTierLowerReads), 0u);
}

TEST_F(TieredStoreTest, SpecsAreValidatedWithClearErrors) {
  const std::pair<std::string, std::string> bad[] = {
      {"tier:lz4", "tier:UPPER+LOWER"},
      {"tier", "tier:UPPER+LOWER"},
      {"tier:+file", "upper tier's spec is empty"},
      {"tier:lz4+", "lower tier's spec is empty"},
      {"tier:lz4,bogus+file", "upper tier"},
      {"tier:lz4+nfs:/x", "lower tier"},
  };
  for (const auto& [spec, names] : bad) {
    Result<std::unique_ptr<BackupStore>> s = CreateBackupStore(spec, &stats_);
    ASSERT_FALSE(s.ok()) << spec;
    EXPECT_EQ(s.code(), Errc::kInvalid) << spec;
    EXPECT_NE(s.status().message().find(names), std::string::npos) << s.status().ToString();
  }
  EXPECT_EQ(NewTieredStore(nullptr, nullptr).code(), Errc::kInvalid);
  EXPECT_TRUE(CreateBackupStore("tier:zstd,cap=1M+uring:" + dir_ + ",depth=4", &stats_).ok());
}

}  // namespace
}  // namespace uttm
