// Copyright (c) uttm developers.
//
// The backup store contract (backup_store.h) over every store uttm has, made from its spec the
// way a user makes it: memfd, file, io_uring, compressed RAM (lz4, zstd), encryption over a file
// and over compressed RAM, and tiers. Only the public BackupStore API and the store.* fault
// points are used, so every store answers the same questions: do the leading pages it reports
// come back exactly, after faults, interruptions and from several threads, and is misuse an
// error. Contents depend on (test, run, page) seeds, so a misplaced or stale page is caught.
// (store_suite_test.cc adds what only stores kept in one descriptor do.)
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "testing/page_buffer.h"
#include "testing/redis_server.h"
#include "uttm/backup_store_factory.h"
#include "uttm/compressed_store.h"
#include "uttm/encrypted_store.h"
#include "uttm/fault_injection.h"
#include "uttm/redis_store.h"
#include "uttm/stats.h"
#include "uttm/tiered_store.h"
#include "uttm/units.h"
#include "uttm/uring_store.h"

namespace uttm {
namespace {

using Pages = testing::PatternPages;
using testing::SamePage;

struct Kind {
  const char* name;
  const char* spec;  // "DIR" is replaced by the test's directory, "REDIS" by a server's socket
};
void PrintTo(const Kind& k, std::ostream* os) { *os << k.name; }

class StoreContractTest : public ::testing::TestWithParam<Kind> {
 protected:
  static void SetUpTestSuite() {
    RegisterCompressedStoreKinds();
    RegisterEncryptedStoreOption();
    RegisterUringStoreKind();
    RegisterTieredStoreKind();
    RegisterRedisStoreKind();
  }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }
  void SetUp() override {
    char tmpl[] = "/tmp/uttm-contract-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string spec = GetParam().spec;
    for (std::size_t at; (at = spec.find("DIR")) != std::string::npos;) spec.replace(at, 3, dir_);
    if (std::size_t at = spec.find("REDIS"); at != std::string::npos) {
      if (redis_ == nullptr) redis_ = new testing::RedisServer();  // one for the suite
      if (!redis_->ok()) GTEST_SKIP() << "no Redis server to test against: " << redis_->why();
      spec.replace(at, 5, redis_->unix_address());
    }
    auto s = CreateBackupStore(spec, &stats_);
    ASSERT_TRUE(s.ok()) << spec << ": " << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    FaultInjection::DisarmAll();
    ::rmdir(dir_.c_str());
  }

  // Backs up all of `pages` (in as many calls as the store's partial answers take).
  std::vector<BackupHandle> BackupAll(Pages& pages) {
    std::vector<BackupHandle> h(pages.count());
    for (std::size_t done = 0; done < pages.count();) {
      Result<std::size_t> r =
          store_->BackupPages(pages.page(done), pages.count() - done, {}, h.data() + done);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) break;
      done += *r;
    }
    return h;
  }

  // Copies `h` back and checks page i against page first + i of `want`.
  void ExpectRestores(const std::vector<BackupHandle>& h, Pages& want, std::size_t first = 0) {
    Pages out(h.size());
    std::size_t copied = 0;
    Status s = store_->CopyPages(h.data(), h.size(), out.data(), {}, &copied);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(copied, h.size());
    for (std::size_t i = 0; i < h.size(); ++i) {
      ASSERT_TRUE(SamePage(out.page(i), want.page(first + i))) << "page " << i;
    }
  }

  std::string dir_;
  Stats stats_;
  std::unique_ptr<BackupStore> store_;
  static inline testing::RedisServer* redis_ = nullptr;
};

TEST_P(StoreContractTest, RandomRunsComeBackExactlyInAnyOrder) {
  std::mt19937 rng(5);
  struct Run {
    std::unique_ptr<Pages> pages;
    std::vector<BackupHandle> h;
  };
  std::vector<Run> runs;
  for (int i = 0; i < 24; ++i) {
    Run r;
    r.pages = std::make_unique<Pages>(1 + rng() % 200, 1000 + static_cast<std::uint64_t>(i));
    r.h = BackupAll(*r.pages);
    runs.push_back(std::move(r));
  }
  std::shuffle(runs.begin(), runs.end(), rng);
  for (Run& r : runs) ExpectRestores(r.h, *r.pages);
  for (Run& r : runs) store_->Drop(r.h.data(), r.h.size());
  // The space is reusable: a second round fits as the first did.
  Pages again(300, 77);
  ExpectRestores(BackupAll(again), again);
}

TEST_P(StoreContractTest, ScatteredPageListsComeBackToScatteredDestinations) {
  constexpr std::size_t kCount = 300;
  Pages pages(kCount, 8);
  std::vector<const std::byte*> src(kCount);
  for (std::size_t i = 0; i < kCount; ++i) src[i] = pages.page((i * 7) % kCount);
  std::vector<BackupHandle> h(kCount);
  for (std::size_t done = 0; done < kCount;) {
    Result<std::size_t> r =
        store_->BackupPageList(src.data() + done, kCount - done, {}, h.data() + done);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    done += *r;
  }
  Pages out(kCount);
  std::vector<std::byte*> dst(kCount);
  for (std::size_t i = 0; i < kCount; ++i) dst[i] = out.page(kCount - 1 - i);
  std::size_t copied = 0;
  ASSERT_TRUE(store_->CopyPageList(h.data(), kCount, dst.data(), {}, &copied).ok());
  EXPECT_EQ(copied, kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(SamePage(dst[i], src[i])) << "page " << i;
  }
}

// A write failure at page 37: what the store reports stored comes back exactly, and the rest can
// be backed up again.
TEST_P(StoreContractTest, AWriteFailureLosesNoPageItReportedStored) {
  for (FaultPoint point : {FaultPoint::kStoreWrite, FaultPoint::kStoreNoSpace}) {
    SCOPED_TRACE(FaultInjection::Name(point));
    Pages pages(100, 9 + static_cast<unsigned>(point));
    std::vector<BackupHandle> h(100);
    std::size_t stored = 0;
    {
      ScopedFault fault(point, {.after = 37, .times = 1});
      Result<std::size_t> r = store_->BackupPages(pages.data(), 100, {}, h.data());
      ASSERT_TRUE(r.ok()) << r.status().ToString();  // 37 pages were stored before it
      stored = *r;
      EXPECT_EQ(FaultInjection::Failures(point), 1u);
    }
    EXPECT_GE(stored, 37u);
    std::vector<BackupHandle> first(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(stored));
    ExpectRestores(first, pages);
    if (stored < 100) {
      Result<std::size_t> r =
          store_->BackupPages(pages.page(stored), 100 - stored, {}, h.data() + stored);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(*r, 100 - stored);
    }
    ExpectRestores(h, pages);
    store_->Drop(h.data(), h.size());
  }
}

// A read failure and a corrupted read: an error, the pages before it copied exactly, the stored
// page itself intact for a later copy.
TEST_P(StoreContractTest, ReadFailuresAndCorruptionAreErrorsNeverData) {
  Pages pages(40, 11);
  std::vector<BackupHandle> h = BackupAll(pages);
  for (FaultPoint point : {FaultPoint::kStoreRead, FaultPoint::kStoreCorrupt}) {
    SCOPED_TRACE(FaultInjection::Name(point));
    Pages out(40);
    std::size_t copied = 99;
    {
      ScopedFault fault(point, {.after = 5, .times = 1});
      Status s = store_->CopyPages(h.data(), 40, out.data(), {}, &copied);
      EXPECT_EQ(s.code(), Errc::kIo) << s.ToString();
    }
    ASSERT_LE(copied, 5u);
    for (std::size_t i = 0; i < copied; ++i) ASSERT_TRUE(SamePage(out.page(i), pages.page(i)));
    ExpectRestores(h, pages);
  }
}

TEST_P(StoreContractTest, AnInterruptedCopyStopsWithItsCountAndResumes) {
  Pages pages(60, 12);
  std::vector<BackupHandle> h = BackupAll(pages);
  Pages out(60);
  OperationContext ctx;
  ctx.interruptible = true;
  std::size_t copied = 0;
  {
    ScopedFault fault(FaultPoint::kStoreInterrupt, {.after = 7, .times = 1});
    Status s = store_->CopyPages(h.data(), 60, out.data(), ctx, &copied);
    EXPECT_EQ(s.code(), Errc::kInterrupted) << s.ToString();
  }
  ASSERT_LE(copied, 7u);
  std::size_t rest = 0;
  ASSERT_TRUE(store_->CopyPages(h.data() + copied, 60 - copied, out.page(copied), ctx, &rest).ok());
  EXPECT_EQ(copied + rest, 60u);
  for (std::size_t i = 0; i < 60; ++i) ASSERT_TRUE(SamePage(out.page(i), pages.page(i))) << i;
}

TEST_P(StoreContractTest, ManyThreadsShareOneStore) {
  std::atomic<int> bad{0};
  auto worker = [&](int t) {
    for (int it = 0; it < 30 && bad == 0; ++it) {
      const std::uint64_t seed = static_cast<std::uint64_t>(t) * 1000 + static_cast<unsigned>(it);
      Pages pages(16, seed);
      std::vector<BackupHandle> h(16);
      std::size_t done = 0;
      while (done < 16) {
        Result<std::size_t> r = store_->BackupPages(pages.page(done), 16 - done, {}, &h[done]);
        if (!r.ok()) break;
        done += *r;
      }
      Pages out(16);
      if (done != 16 || !store_->CopyPages(h.data(), 16, out.data(), {}).ok() ||
          std::memcmp(out.data(), pages.data(), 16 * kPageSize) != 0) {
        ++bad;
      }
      store_->Drop(h.data(), 16);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t);
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_P(StoreContractTest, MisuseIsAnErrorNeverACrash) {
  Pages pages(3, 13);
  std::vector<BackupHandle> h = BackupAll(pages);
  Pages out(3);
  EXPECT_EQ(store_->BackupPages(pages.data(), 0, {}, h.data()).code(), Errc::kInvalid);
  EXPECT_EQ(store_->CopyPage(BackupHandle(), out.data(), {}).code(), Errc::kInvalid);
  EXPECT_EQ(store_->CopyPage(BackupHandle(999999), out.data(), {}).code(), Errc::kInvalid);
  store_->DropPage(h[1]);
  store_->DropPage(h[1]);  // a second drop is ignored
  store_->DropPage(BackupHandle());
  EXPECT_EQ(store_->CopyPage(h[1], out.data(), {}).code(), Errc::kInvalid);
  ASSERT_TRUE(store_->CopyPage(h[2], out.data(), {}).ok());
  EXPECT_TRUE(SamePage(out.data(), pages.page(2)));
  EXPECT_FALSE(store_->Describe().empty());
  EXPECT_TRUE(store_->Flush().ok());
}

INSTANTIATE_TEST_SUITE_P(
    Stores, StoreContractTest,
    ::testing::Values(Kind{"Memfd", "memfd,allow_without_swap"}, Kind{"File", "file:DIR"},
                      Kind{"Uring", "uring:DIR"}, Kind{"Lz4", "lz4"}, Kind{"Zstd", "zstd"},
                      Kind{"EncryptedFile", "file:DIR,encrypt"},
                      Kind{"EncryptedLz4", "lz4,encrypt"},
                      Kind{"TierLz4OverFile", "tier:lz4,cap=512K+file:DIR"},
                      Kind{"TierZstdOverUring", "tier:zstd,cap=512K+uring:DIR"},
                      Kind{"Redis", "redis:REDIS"}, Kind{"EncryptedRedis", "redis:REDIS,encrypt"},
                      Kind{"TierLz4OverRedis", "tier:lz4,cap=512K+redis:REDIS"},
                      Kind{"Lz4OverFileOverRedis",
                           "tier:lz4,cap=256K+tier:file:DIR,cap=512K+redis:REDIS,value=64K"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace uttm
