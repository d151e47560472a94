// Copyright (c) uttm developers.
//
// What only the io_uring store does: requests in flight together, short transfers continued,
// a real refusal of io_uring (a seccomp filter, as container runtimes install) falling back
// with one message, and its spec and options. The backup store contract itself runs over this
// store in src/stores/store_suite_test.cc.
#include "uttm/uring_store.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "testing/child_process.h"
#include "testing/page_buffer.h"
#include "uttm/backup_store_factory.h"
#include "uttm/fault_injection.h"
#include "uttm/stats.h"
#include "uttm/units.h"

namespace uttm {
namespace {

using Pages = testing::PatternPages;
using testing::ChildResult;
using testing::RefuseWithSeccomp;
using testing::RunInChild;

class UringStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { RegisterUringStoreKind(); }
  void SetUp() override {
    char tmpl[] = "/tmp/uttm-uring-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    FaultInjection::DisarmAll();
    ::rmdir(dir_.c_str());
  }

  std::string dir_;
  Stats stats_;
};

// Backs up and restores `pages` through `store`; true when every byte came back.
bool RoundTrip(BackupStore& store, Pages& pages) {
  std::vector<BackupHandle> h(pages.count());
  Result<std::size_t> r = store.BackupPages(pages.data(), pages.count(), {}, h.data());
  if (!r.ok() || *r != pages.count()) return false;
  Pages out(pages.count());
  if (!store.CopyPages(h.data(), h.size(), out.data(), {}).ok()) return false;
  store.Drop(h.data(), h.size());
  return std::memcmp(out.data(), pages.data(), pages.count() * kPageSize) == 0;
}

TEST_F(UringStoreTest, ALargeBackupGoesOutAsManyRequestsAtOnce) {
  auto store = CreateBackupStore("uring:" + dir_ + ",depth=4", &stats_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_NE((*store)->Describe().find("io_uring, 4 in flight"), std::string::npos)
      << (*store)->Describe();
  constexpr std::size_t kCount = 2048;  // 8 MiB: eight 1 MiB requests, four at a time
  Pages pages(kCount, 3);
  std::vector<BackupHandle> h(kCount);
  ASSERT_EQ((*store)->BackupPages(pages.data(), kCount, {}, h.data()).value(), kCount);
  EXPECT_EQ(stats_.Get(Stat::kStoreUringRequests), 8u);
  // Read back in reverse page order: every page its own request, 64 windows of four.
  Pages out(kCount);
  std::vector<BackupHandle> reversed(h.rbegin(), h.rend());
  ASSERT_TRUE((*store)->CopyPages(reversed.data(), kCount, out.data(), {}).ok());
  for (std::size_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(testing::SamePage(out.page(i), pages.page(kCount - 1 - i))) << i;
  }
  EXPECT_EQ(stats_.Get(Stat::kStoreUringRequests), 8u + kCount);
  EXPECT_EQ(stats_.Get(Stat::kStoreUringResubmits), 0u);
}

// A request the kernel completes only in part is submitted again for the rest (store.short_write
// cuts real io_uring requests short).
TEST_F(UringStoreTest, ShortRequestsAreSubmittedAgainForTheRest) {
  auto store = CreateBackupStore("uring:" + dir_, &stats_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Pages pages(1024, 4);
  ScopedFault fault(FaultPoint::kStoreShortWrite, {.interval = 2});
  EXPECT_TRUE(RoundTrip(**store, pages));
  EXPECT_GT(stats_.Get(Stat::kStoreUringResubmits), 0u);
  EXPECT_GT(FaultInjection::Failures(FaultPoint::kStoreShortWrite), 0u);
}

// A process whose seccomp profile refuses io_uring still gets a working store: it says so once
// on stderr (for two stores), in Describe, and moves its pages with pwritev / preadv.
TEST_F(UringStoreTest, ARefusedIoUringFallsBackAndSaysSoOnce) {
  const ChildResult r = RunInChild([&] {
    if (!RefuseWithSeccomp(__NR_io_uring_setup)) return 3;
    Stats stats;
    for (int i = 0; i < 2; ++i) {
      auto store = CreateBackupStore("uring:" + dir_, &stats);
      if (!store.ok()) return 4;
      if ((*store)->Describe().find("io_uring refused: Operation not permitted") ==
          std::string::npos) {
        return 5;
      }
      Pages pages(600, 40 + static_cast<std::uint64_t>(i));
      if (!RoundTrip(**store, pages)) return 6;
    }
    return stats.Get(Stat::kStoreUringRequests) == 0 ? 0 : 7;
  });
  ASSERT_NE(r.code, 3) << "the kernel refused the seccomp filter";
  EXPECT_EQ(r.code, 0) << r.err;
  const std::string said = "io_uring_setup failed (Operation not permitted)";
  ASSERT_NE(r.err.find(said), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(said, r.err.find(said) + 1), std::string::npos) << "said twice: " << r.err;
}

// A ring that worked until the kernel refused io_uring_enter (a profile applied later): the
// batch that met the refusal is finished with pwritev / preadv, and so is every later one.
TEST_F(UringStoreTest, ARingRefusedLaterFinishesItsBatchWithoutIt) {
  const ChildResult r = RunInChild([&] {
    Stats stats;
    auto store = CreateBackupStore("uring:" + dir_, &stats);
    if (!store.ok()) return 4;
    Pages before(600, 50);
    std::vector<BackupHandle> hb(600);
    Result<std::size_t> b = (*store)->BackupPages(before.data(), 600, {}, hb.data());
    if (!b.ok() || *b != 600 || stats.Get(Stat::kStoreUringRequests) == 0) return 5;
    if (!RefuseWithSeccomp(__NR_io_uring_enter)) return 3;
    Pages after(600, 51);
    if (!RoundTrip(**store, after)) return 6;
    Pages out(600);
    if (!(*store)->CopyPages(hb.data(), 600, out.data(), {}).ok() ||
        std::memcmp(out.data(), before.data(), 600 * kPageSize) != 0) {
      return 7;
    }
    return 0;
  });
  ASSERT_NE(r.code, 3) << "the kernel refused the seccomp filter";
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("io_uring_enter failed (Operation not permitted)"), std::string::npos)
      << r.err;
}

TEST_F(UringStoreTest, SpecsAndOptionsAreValidatedWithClearErrors) {
  struct Bad {
    std::string spec;
    const char* names;
  };
  const std::vector<Bad> bad = {
      {"uring:", "empty directory"},
      {"uring:" + dir_ + ",depth=0", "depth=0"},
      {"uring:" + dir_ + ",depth=65", "depth=65"},
      {"uring:" + dir_ + ",depth=4K", "depth=4K"},
      {"uring:" + dir_ + ",cap=12Q", "cap=12Q"},
      {"uring:" + dir_ + ",direct", "\"direct\""},
  };
  for (const Bad& b : bad) {
    auto store = CreateBackupStore(b.spec, &stats_);
    ASSERT_FALSE(store.ok()) << b.spec;
    EXPECT_EQ(store.code(), Errc::kInvalid) << b.spec;
    EXPECT_NE(store.status().message().find(b.names), std::string::npos)
        << store.status().ToString();
  }
  UringStoreOptions o;
  o.directory = dir_;
  o.queue_depth = 0;
  EXPECT_EQ(NewUringStore(o).code(), Errc::kInvalid);
  o.queue_depth = 8;
  o.capacity_bytes = 100;
  EXPECT_EQ(NewUringStore(o).code(), Errc::kInvalid);
  o.capacity_bytes = 0;
  o.directory = dir_ + "/missing";
  auto missing = NewUringStore(o);
  EXPECT_EQ(missing.code(), Errc::kNotFound);
  EXPECT_NE(missing.status().message().find("uring store: directory " + dir_ + "/missing"),
            std::string::npos)
      << missing.status().ToString();
}

}  // namespace
}  // namespace uttm
