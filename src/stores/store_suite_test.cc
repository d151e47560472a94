// Copyright (c) uttm developers.
//
// The backup store contract, parameterised over every store whose data lives in one descriptor:
// memfd, file (buffered, O_DIRECT, without O_TMPFILE) and io_uring (and io_uring refused, its
// fallback). Real memfds and files, real bytes, space checked with fstat().st_blocks, faults
// injected with the store.* fault points. (The compressed and encrypted stores have suites of
// their own beside them.)
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "testing/page_buffer.h"
#include "testing/proc_status.h"
#include "uttm/backup_store.h"
#include "uttm/backup_store_factory.h"
#include "uttm/fault_injection.h"
#include "uttm/file_store.h"
#include "uttm/memfd_store.h"
#include "uttm/stats.h"
#include "uttm/units.h"
#include "uttm/uring_store.h"

namespace uttm {
namespace {

using Pages = testing::PatternPages;
using testing::FdPath;
using testing::SamePage;

enum class Kind { kMemfd, kFile, kFileDirect, kFileNoTmpfile, kUring, kUringRefused };

struct Flavour {
  const char* name;
  Kind kind;
};
void PrintTo(const Flavour& f, std::ostream* os) { *os << f.name; }

class BackupStoreTest : public ::testing::TestWithParam<Flavour> {
 protected:
  static void SetUpTestSuite() { RegisterUringStoreKind(); }
  void SetUp() override {
    char tmpl[] = "/tmp/uttm-backup-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    static std::atomic<int> serial{0};
    memfd_name_ = "uttm-test-" + std::to_string(::getpid()) + "-" + std::to_string(serial++);
    auto store = Make("");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    FaultInjection::DisarmAll();
    ::rmdir(dir_.c_str());
  }

  bool is_file() const { return GetParam().kind != Kind::kMemfd; }
  bool is_uring() const {
    return GetParam().kind == Kind::kUring || GetParam().kind == Kind::kUringRefused;
  }
  bool is_direct() const { return GetParam().kind == Kind::kFileDirect || is_uring(); }
  // Stores with a helper thread that checksums one chunk while the next is moved (the io_uring
  // store checksums on the calling thread while its requests are in flight).
  bool has_helper() const { return !is_uring(); }
  // Requests the store's io_uring took (0 when the kernel refused it).
  std::uint64_t UringRequests() const { return stats_.Get(Stat::kStoreUringRequests); }

  // The spec of this flavour plus `extra` options (",cap=32K").
  std::string Spec(const std::string& extra) const {
    switch (GetParam().kind) {
      case Kind::kMemfd:
        return "memfd,allow_without_swap,name=" + memfd_name_ + extra;
      case Kind::kFile:
        return "file:" + dir_ + extra;
      case Kind::kFileDirect:
        return "file:" + dir_ + ",direct" + extra;
      case Kind::kFileNoTmpfile:
        return "file:" + dir_ + ",no_tmpfile" + extra;
      case Kind::kUring:
      case Kind::kUringRefused:
        return "uring:" + dir_ + extra;
    }
    return "";
  }
  Result<std::unique_ptr<BackupStore>> Make(const std::string& extra, Stats* stats = nullptr) {
    std::optional<ScopedFault> refuse;
    if (GetParam().kind == Kind::kUringRefused)
      refuse.emplace(FaultPoint::kStoreUringRefused, FaultSpec{});
    return CreateBackupStore(Spec(extra), stats != nullptr ? stats : &stats_);
  }

  // The descriptor of the (only) store made by this test, found through /proc/self/fd.
  int StoreFd() const {
    DIR* d = ::opendir("/proc/self/fd");
    int found = -1;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      int fd = std::atoi(e->d_name);
      std::string link = FdPath(fd);
      bool match = is_file() ? link.rfind(dir_ + "/", 0) == 0
                             : link.rfind("/memfd:" + memfd_name_ + " ", 0) == 0;
      if (match) found = fd;
    }
    ::closedir(d);
    return found;
  }

  std::uint64_t StoreBlocks() const {
    struct stat st {};
    EXPECT_EQ(::fstat(StoreFd(), &st), 0);
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
  }

  std::vector<BackupHandle> BackupAll(Pages& pages, std::size_t first, std::size_t n,
                                      const BackupFlags& flags = {}) {
    std::vector<BackupHandle> handles(n);
    Result<std::size_t> r = store_->BackupPages(pages.page(first), n, flags, handles.data());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) {
      EXPECT_EQ(*r, n);
    }
    return handles;
  }

  void ExpectRestores(const std::vector<BackupHandle>& handles, Pages& expect, std::size_t first) {
    Pages out(handles.size());
    out.Zero();
    OperationContext ctx;
    std::size_t copied = 99;
    Status s = store_->CopyPages(handles.data(), handles.size(), out.data(), ctx, &copied);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(copied, handles.size());
    for (std::size_t i = 0; i < handles.size(); ++i) {
      ASSERT_TRUE(SamePage(out.page(i), expect.page(first + i))) << "page " << i;
    }
  }

  std::string dir_;
  std::string memfd_name_;
  Stats stats_;
  std::unique_ptr<BackupStore> store_;
};

TEST_P(BackupStoreTest, RoundTripsManyRandomRunsExactly) {
  std::mt19937_64 rng(1);
  struct Run {
    std::unique_ptr<Pages> pages;
    std::vector<BackupHandle> handles;
  };
  std::vector<Run> runs;
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 40; ++i) {
    Run run;
    run.pages = std::make_unique<Pages>(1 + rng() % 200, rng());
    run.handles = BackupAll(*run.pages, 0, run.pages->count());
    for (BackupHandle h : run.handles) {
      ASSERT_TRUE(h.valid());
      ASSERT_TRUE(seen.insert(h.value()).second) << "handle " << h.value() << " handed out twice";
    }
    runs.push_back(std::move(run));
    // Drop every third run so later runs reuse its slots.
    if (i % 3 == 2) {
      store_->Drop(runs[i - 1].handles.data(), runs[i - 1].handles.size());
      for (BackupHandle h : runs[i - 1].handles) seen.erase(h.value());
      runs[i - 1].handles.clear();
    }
  }
  std::uint64_t live = 0;
  for (Run& run : runs) {
    if (run.handles.empty()) continue;
    live += run.handles.size();
    ExpectRestores(run.handles, *run.pages, 0);
  }
  EXPECT_EQ(store_->BytesUsed(), live * kPageSize);
  EXPECT_EQ(stats_.Current(Stat::kStoreBytesUsed), static_cast<std::int64_t>(live * kPageSize));

  // One CopyPages over handles of many runs in shuffled order.
  std::vector<std::pair<BackupHandle, const std::byte*>> mix;
  for (Run& run : runs) {
    for (std::size_t i = 0; i < run.handles.size(); ++i) {
      mix.push_back({run.handles[i], run.pages->page(i)});
    }
  }
  std::shuffle(mix.begin(), mix.end(), rng);
  std::vector<BackupHandle> handles;
  for (auto& m : mix) handles.push_back(m.first);
  Pages out(handles.size());
  ASSERT_TRUE(store_->CopyPages(handles.data(), handles.size(), out.data(), {}).ok());
  for (std::size_t i = 0; i < mix.size(); ++i) ASSERT_TRUE(SamePage(out.page(i), mix[i].second));

  for (Run& run : runs) store_->Drop(run.handles.data(), run.handles.size());
  EXPECT_EQ(store_->BytesUsed(), 0u);
  EXPECT_EQ(stats_.Current(Stat::kStoreBytesUsed), 0);
  EXPECT_GT(stats_.Get(Stat::kStoreBytesWritten), 0u);
  EXPECT_GT(stats_.Get(Stat::kStoreBytesRead), 0u);
}

// Scattered pages (as a page vector of order-0 pages has them) go through pwritev / preadv.
TEST_P(BackupStoreTest, ScatteredPageListsRoundTripWithVectoredIo) {
  constexpr std::size_t kPages = 600;
  Pages pages(kPages, 20);
  std::mt19937_64 rng(21);
  std::vector<std::size_t> order(kPages);
  for (std::size_t i = 0; i < kPages; ++i) order[i] = i;
  // Shuffle within blocks of 8, so the list has both adjacent runs and jumps.
  for (std::size_t i = 0; i + 8 <= kPages; i += 16) std::shuffle(&order[i], &order[i + 8], rng);
  std::vector<const std::byte*> src(kPages);
  for (std::size_t i = 0; i < kPages; ++i) src[i] = pages.page(order[i]);
  std::vector<BackupHandle> handles(kPages);
  {
    ScopedFault fault(FaultPoint::kStoreShortWrite, {.interval = 3});
    Result<std::size_t> r = store_->BackupPageList(src.data(), kPages, {}, handles.data());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(*r, kPages);
  }
  // Restore into scattered destinations, in reverse page order.
  Pages out(kPages);
  out.Zero();
  std::vector<std::byte*> dst(kPages);
  for (std::size_t i = 0; i < kPages; ++i) dst[i] = out.page(kPages - 1 - i);
  std::size_t copied = 0;
  ASSERT_TRUE(store_->CopyPageList(handles.data(), kPages, dst.data(), {}, &copied).ok());
  EXPECT_EQ(copied, kPages);
  for (std::size_t i = 0; i < kPages; ++i) ASSERT_TRUE(SamePage(dst[i], src[i])) << i;

  // A write failure in the middle of a list is a partial backup as well.
  store_->Drop(handles.data(), kPages);
  ScopedFault fault(FaultPoint::kStoreWrite, {.after = 300, .times = 1});
  Result<std::size_t> r = store_->BackupPageList(src.data(), kPages, {}, handles.data());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 300u);
  ASSERT_TRUE(store_->CopyPageList(handles.data(), 300, dst.data(), {}, &copied).ok());
  for (std::size_t i = 0; i < 300; ++i) ASSERT_TRUE(SamePage(dst[i], src[i])) << i;
  EXPECT_EQ(store_->BytesUsed(), 300 * kPageSize);
  std::vector<const std::byte*> null_page = {src[0], nullptr};
  EXPECT_EQ(store_->BackupPageList(null_page.data(), 2, {}, handles.data()).code(), Errc::kInvalid);
}

TEST_P(BackupStoreTest, DropReturnsSpaceToTheSystemAndSlotsAreReused) {
  constexpr std::size_t kPages = 4096;  // 16 MiB
  Pages pages(kPages, 3);
  std::vector<BackupHandle> first = BackupAll(pages, 0, kPages);
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_GE(StoreBlocks(), kPages * kPageSize) << "the data is really stored";
  store_->Drop(first.data(), first.size());
  EXPECT_LT(StoreBlocks(), 64 * kPageSize) << "hole punching gave the space back";
  EXPECT_EQ(store_->BytesUsed(), 0u);

  std::vector<BackupHandle> second = BackupAll(pages, 0, kPages);
  std::set<std::uint64_t> a, b;
  for (BackupHandle h : first) a.insert(h.value());
  for (BackupHandle h : second) b.insert(h.value());
  EXPECT_EQ(a, b) << "dropped slots are reused";
  ExpectRestores(second, pages, 0);
}

TEST_P(BackupStoreTest, SharedByManyVectorsFromManyThreads) {
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::vector<std::vector<BackupHandle>> kept(kThreads);
  std::vector<std::unique_ptr<Pages>> kept_pages(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      for (int iter = 0; iter < 30; ++iter) {
        auto pages = std::make_unique<Pages>(1 + rng() % 320, rng());
        std::vector<BackupHandle> h(pages->count());
        Result<std::size_t> r = store_->BackupPages(pages->data(), pages->count(), {}, h.data());
        if (!r.ok() || *r != pages->count()) {
          ++failures;
          return;
        }
        Pages out(pages->count());
        if (!store_->CopyPages(h.data(), h.size(), out.data(), {}).ok() ||
            std::memcmp(out.data(), pages->data(), pages->count() * kPageSize) != 0) {
          ++failures;
          return;
        }
        if (iter == 29) {
          kept[t] = std::move(h);
          kept_pages[t] = std::move(pages);
        } else {
          store_->Drop(h.data(), h.size());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  std::set<std::uint64_t> seen;
  for (int t = 0; t < kThreads; ++t) {
    for (BackupHandle h : kept[t]) ASSERT_TRUE(seen.insert(h.value()).second);
    ExpectRestores(kept[t], *kept_pages[t], 0);
  }
}

TEST_P(BackupStoreTest, WriteFailureAfterKPagesIsAPartialBackup) {
  constexpr std::size_t kPages = 20, kGood = 7;
  Pages pages(kPages, 4);
  std::vector<BackupHandle> handles(kPages);
  {
    ScopedFault fault(FaultPoint::kStoreWrite, {.after = kGood, .times = 1});
    Result<std::size_t> r = store_->BackupPages(pages.data(), kPages, {}, handles.data());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, kGood);
  }
  EXPECT_EQ(store_->BytesUsed(), kGood * kPageSize) << "the failed pages hold no slots";
  EXPECT_EQ(stats_.Get(Stat::kStoreWriteErrors), 1u);
  handles.resize(kGood);
  ExpectRestores(handles, pages, 0);
  // The caller still holds pages kGood..: backing them up now works.
  std::vector<BackupHandle> rest = BackupAll(pages, kGood, kPages - kGood);
  ExpectRestores(rest, pages, kGood);

  // A failure on the very first page is an error, and nothing is held.
  store_->Drop(handles.data(), handles.size());
  store_->Drop(rest.data(), rest.size());
  ScopedFault fault(FaultPoint::kStoreWrite, {.times = 1});
  Result<std::size_t> r = store_->BackupPages(pages.data(), kPages, {}, handles.data());
  EXPECT_EQ(r.code(), Errc::kIo);
  EXPECT_EQ(store_->BytesUsed(), 0u);
}

TEST_P(BackupStoreTest, NoSpaceMidRunIsAPartialBackup) {
  Pages pages(10, 5);
  std::vector<BackupHandle> handles(10);
  {
    ScopedFault fault(FaultPoint::kStoreNoSpace, {.after = 4, .times = 1});
    Result<std::size_t> r = store_->BackupPages(pages.data(), 10, {}, handles.data());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 4u);
  }
  handles.resize(4);
  ExpectRestores(handles, pages, 0);
  ScopedFault fault(FaultPoint::kStoreNoSpace, {.times = 1});
  std::vector<BackupHandle> more(6);
  Result<std::size_t> r = store_->BackupPages(pages.page(4), 6, {}, more.data());
  EXPECT_EQ(r.code(), Errc::kNoSpace) << r.status().ToString();
  EXPECT_EQ(store_->BytesUsed(), 4 * kPageSize);
}

// A real limit, not a fault point: RLIMIT_FSIZE makes the kernel cut a write short at the limit
// and fail the next one (EFBIG), exactly like a file system that fills up mid-run.
TEST_P(BackupStoreTest, RealWriteLimitMidRunIsAPartialBackup) {
  constexpr std::size_t kPages = 20, kFit = 10;
  Pages pages(kPages, 19);
  std::vector<BackupHandle> handles(kPages);
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = old;
  limit.rlim_cur = kFit * kPageSize + 2048;  // page kFit would be half written
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  Result<std::size_t> r = store_->BackupPages(pages.data(), kPages, {}, handles.data());
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  ::signal(SIGXFSZ, old_handler);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, kFit);
  EXPECT_EQ(store_->BytesUsed(), kFit * kPageSize);
  EXPECT_EQ(stats_.Get(Stat::kStoreWriteErrors), 1u);
  handles.resize(kFit);
  ExpectRestores(handles, pages, 0);
  // Without the limit the rest goes in (reusing the slots of the failed pages).
  std::vector<BackupHandle> rest = BackupAll(pages, kFit, kPages - kFit);
  ExpectRestores(rest, pages, kFit);
}

TEST_P(BackupStoreTest, CapacityCapGivesPartialBackupThenNoSpace) {
  auto small = Make(",cap=32K");  // 8 pages
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  store_ = std::move(small).value();
  EXPECT_EQ(store_->BytesAvailable(), 8 * kPageSize);
  Pages pages(12, 6);
  std::vector<BackupHandle> handles(12);
  Result<std::size_t> r = store_->BackupPages(pages.data(), 12, {}, handles.data());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 8u);
  EXPECT_EQ(store_->BytesAvailable(), 0u);
  r = store_->BackupPages(pages.page(8), 4, {}, handles.data() + 8);
  EXPECT_EQ(r.code(), Errc::kNoSpace);
  store_->Drop(handles.data(), 4);
  r = store_->BackupPages(pages.page(8), 4, {}, handles.data() + 8);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4u);
  std::vector<BackupHandle> tail(handles.begin() + 4, handles.end());
  ExpectRestores(tail, pages, 4);
}

TEST_P(BackupStoreTest, ShortWritesAreResumed) {
  Pages pages(64, 7);
  ScopedFault fault(FaultPoint::kStoreShortWrite, {});  // every write call stops halfway
  std::vector<BackupHandle> handles = BackupAll(pages, 0, 64);
  std::vector<BackupHandle> single = BackupAll(pages, 5, 1);
  EXPECT_GT(FaultInjection::Failures(FaultPoint::kStoreShortWrite), 2u);
  ExpectRestores(handles, pages, 0);
  ExpectRestores(single, pages, 5);
}

TEST_P(BackupStoreTest, ReadFailureIsKIoAndARetrySucceeds) {
  Pages pages(10, 8);
  std::vector<BackupHandle> handles = BackupAll(pages, 0, 10);
  Pages out(10);
  std::size_t copied = 0;
  {
    ScopedFault fault(FaultPoint::kStoreRead, {.after = 3, .times = 1});
    Status s = store_->CopyPages(handles.data(), 10, out.data(), {}, &copied);
    EXPECT_EQ(s.code(), Errc::kIo) << s.ToString();
    EXPECT_EQ(copied, 3u);
    for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(SamePage(out.page(i), pages.page(i)));
  }
  EXPECT_EQ(stats_.Get(Stat::kStoreReadErrors), 1u);
  ExpectRestores(handles, pages, 0);  // handles stay valid
}

TEST_P(BackupStoreTest, InjectedCorruptionIsCaughtByTheChecksum) {
  Pages pages(10, 9);
  std::vector<BackupHandle> handles = BackupAll(pages, 0, 10);
  Pages out(10);
  std::size_t copied = 0;
  {
    ScopedFault fault(FaultPoint::kStoreCorrupt, {.after = 2, .times = 1});
    Status s = store_->CopyPages(handles.data(), 10, out.data(), {}, &copied);
    EXPECT_EQ(s.code(), Errc::kIo);
    EXPECT_NE(s.message().find("handle " + std::to_string(handles[2].value())), std::string::npos)
        << s.ToString();
    EXPECT_EQ(copied, 2u);
    EXPECT_FALSE(SamePage(out.page(2), pages.page(2)));
  }
  EXPECT_EQ(stats_.Get(Stat::kChecksumFailures), 1u);
  ExpectRestores(handles, pages, 0);
}

TEST_P(BackupStoreTest, BytesChangedBehindTheStoresBackAreCaught) {
  Pages pages(6, 10);
  std::vector<BackupHandle> handles = BackupAll(pages, 0, 6);
  ASSERT_TRUE(store_->Flush().ok());
  const int fd = StoreFd();
  ASSERT_GE(fd, 0);
  // Flip one bit of the page behind handle 3, with an aligned buffer (works with O_DIRECT too).
  Pages buf(1);
  const off_t off = static_cast<off_t>((handles[3].value() - 1) * kPageSize);
  ASSERT_EQ(::pread(fd, buf.data(), kPageSize, off), static_cast<ssize_t>(kPageSize));
  buf.data()[1234] ^= std::byte{1};
  ASSERT_EQ(::pwrite(fd, buf.data(), kPageSize, off), static_cast<ssize_t>(kPageSize));

  Pages out(6);
  std::size_t copied = 0;
  Status s = store_->CopyPages(handles.data(), 6, out.data(), {}, &copied);
  EXPECT_EQ(s.code(), Errc::kIo);
  EXPECT_NE(s.message().find("handle " + std::to_string(handles[3].value())), std::string::npos);
  EXPECT_NE(s.message().find("checksum"), std::string::npos);
  EXPECT_EQ(copied, 3u);
  // The other pages are intact.
  std::vector<BackupHandle> others = {handles[0], handles[1], handles[2], handles[4], handles[5]};
  Pages good(5);
  ASSERT_TRUE(store_->CopyPages(others.data(), 5, good.data(), {}).ok());
  EXPECT_TRUE(SamePage(good.page(3), pages.page(4)));
  EXPECT_EQ(stats_.Get(Stat::kChecksumFailures), 1u);
}

// Large backups are checksummed on the store's helper thread while they are written; each
// page's checksum must still be that page's, which a flipped bit behind one page shows.
TEST_P(BackupStoreTest, LargeBackupsAreChecksummedOnTheHelperThread) {
  std::vector<const char*> extras = {""};
  if (has_helper()) extras.push_back(",inline_checksum");
  for (const char* extra : extras) {
    SCOPED_TRACE(extra);
    store_.reset();
    Stats stats;
    auto made = Make(extra, &stats);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    store_ = std::move(made).value();
    constexpr std::size_t kCount = 1024;  // 4 MiB: four 1 MiB write chunks
    Pages pages(kCount, 77);
    std::vector<BackupHandle> handles = BackupAll(pages, 0, kCount);
    const bool parallel = has_helper() && std::string(extra).empty();
    EXPECT_EQ(stats.Get(Stat::kStoreParallelChecksums), parallel ? 4u : 0u);
    // Four 1 MiB requests, in flight together.
    EXPECT_EQ(stats.Get(Stat::kStoreUringRequests), GetParam().kind == Kind::kUring ? 4u : 0u);
    ExpectRestores(handles, pages, 0);
    // A restore verifies each 1 MiB chunk on the helper while it reads the next (the last one,
    // with nothing left to read, inline).
    EXPECT_EQ(stats.Get(Stat::kStoreParallelVerifies), parallel ? 3u : 0u);

    ASSERT_TRUE(store_->Flush().ok());
    const int fd = StoreFd();
    ASSERT_GE(fd, 0);
    Pages buf(1);
    const off_t off = static_cast<off_t>((handles[700].value() - 1) * kPageSize);
    ASSERT_EQ(::pread(fd, buf.data(), kPageSize, off), static_cast<ssize_t>(kPageSize));
    buf.data()[77] ^= std::byte{4};
    ASSERT_EQ(::pwrite(fd, buf.data(), kPageSize, off), static_cast<ssize_t>(kPageSize));
    Pages out(kCount);
    std::size_t copied = 0;
    Status s = store_->CopyPages(handles.data(), kCount, out.data(), {}, &copied);
    EXPECT_EQ(s.code(), Errc::kIo) << s.ToString();
    EXPECT_EQ(copied, 700u);
    EXPECT_EQ(stats.Get(Stat::kChecksumFailures), 1u);
    for (std::size_t i = 0; i < 700; ++i) ASSERT_TRUE(SamePage(out.page(i), pages.page(i))) << i;
    for (std::size_t b = 0; b < kPageSize; ++b) {
      ASSERT_EQ(out.page(700)[b], std::byte{0}) << "corrupt bytes left in the page";
    }
    store_->Drop(handles.data(), handles.size());
    store_.reset();  // before `stats` goes
  }
}

// Every failure of a multi-chunk restore, with the helper thread verifying one chunk while the
// next is read: the copied count stops exactly at the first failing page.
TEST_P(BackupStoreTest, FailuresOfAPipelinedRestoreStopAtTheFirstBadPage) {
  constexpr std::size_t kCount = 1024;  // four 1 MiB read chunks
  Pages pages(kCount, 21);
  std::vector<BackupHandle> handles = BackupAll(pages, 0, kCount);
  auto restore = [&](const OperationContext& ctx, std::size_t* copied) {
    Pages out(kCount);
    Status s = store_->CopyPages(handles.data(), kCount, out.data(), ctx, copied);
    for (std::size_t i = 0; i < *copied; ++i) {
      EXPECT_TRUE(SamePage(out.page(i), pages.page(i))) << "page " << i;
    }
    return s;
  };
  std::size_t copied = 0;
  for (std::size_t at : {std::size_t{300}, std::size_t{256}}) {  // mid-chunk and on a boundary
    ScopedFault fault(FaultPoint::kStoreRead, {.after = at, .times = 1});
    Status s = restore({}, &copied);
    EXPECT_EQ(s.code(), Errc::kIo) << s.ToString();
    EXPECT_EQ(copied, at);
    EXPECT_NE(s.message().find("handle " + std::to_string(handles[at].value())), std::string::npos)
        << s.ToString();
  }
  {
    OperationContext ctx;
    ctx.interruptible = true;
    ScopedFault fault(FaultPoint::kStoreInterrupt, {.after = 600, .times = 1});
    Status s = restore(ctx, &copied);
    EXPECT_EQ(s.code(), Errc::kInterrupted) << s.ToString();
    EXPECT_EQ(copied, 600u);
  }
  if (has_helper()) {
    EXPECT_GT(stats_.Get(Stat::kStoreParallelVerifies), 0u);
  }
  if (GetParam().kind == Kind::kUring) {
    EXPECT_GT(UringRequests(), 0u);
  }
  ExpectRestores(handles, pages, 0);  // and every handle still restores
}

// A page list may name one destination page twice; the restore must not read into a page the
// helper thread is still checking.
TEST_P(BackupStoreTest, APageListNamingOnePageTwiceRestoresWithoutFalseChecksumErrors) {
  constexpr std::size_t kCount = 512;
  Pages pages(kCount, 22);
  std::vector<BackupHandle> handles = BackupAll(pages, 0, kCount);
  Pages out(256);
  std::vector<std::byte*> dst(kCount);
  for (std::size_t i = 0; i < kCount; ++i) dst[i] = out.page(i % 256);
  std::size_t copied = 0;
  Status s = store_->CopyPageList(handles.data(), kCount, dst.data(), {}, &copied);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(copied, kCount);
  for (std::size_t i = 0; i < 256; ++i) EXPECT_TRUE(SamePage(out.page(i), pages.page(256 + i)));
  // Twice in a row, within one run of consecutive slots: each page is checked against its own
  // bytes, and the later of the two lands.
  for (std::size_t i = 0; i < kCount; ++i) dst[i] = out.page(i / 2);
  s = store_->CopyPageList(handles.data(), kCount, dst.data(), {}, &copied);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(copied, kCount);
  for (std::size_t i = 0; i < 256; ++i) EXPECT_TRUE(SamePage(out.page(i), pages.page(2 * i + 1)));
  EXPECT_EQ(stats_.Get(Stat::kChecksumFailures), 0u);
}

// A child process of fork() has no copy of the helper thread its parent started: the child's
// backups checksum inline instead of waiting for a thread that does not exist.
TEST_P(BackupStoreTest, AForkedChildBacksUpWithoutTheParentsHelperThread) {
  Pages pages(512, 5);
  std::vector<BackupHandle> handles = BackupAll(pages, 0, 512);
  if (has_helper()) {
    ASSERT_GT(stats_.Get(Stat::kStoreParallelChecksums), 0u);
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(20);  // a hang ends as SIGALRM, not as a stuck test
    Pages more(512, 6);
    std::vector<BackupHandle> h(512);
    Result<std::size_t> r = store_->BackupPages(more.data(), 512, {}, h.data());
    Pages out(512);
    const bool ok = r.ok() && *r == 512 && store_->CopyPages(h.data(), 512, out.data(), {}).ok() &&
                    std::memcmp(out.data(), more.data(), 512 * kPageSize) == 0;
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "child ended by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ExpectRestores(handles, pages, 0);
}

TEST_P(BackupStoreTest, InterruptibleCopyStopsWithCountAndResumes) {
  Pages pages(12, 11);
  std::vector<BackupHandle> handles = BackupAll(pages, 0, 12);
  Pages out(12);
  std::stop_source stop;
  OperationContext ctx;
  ctx.interruptible = true;
  ctx.stop = stop.get_token();
  std::size_t copied = 99;
  {
    ScopedFault fault(FaultPoint::kStoreInterrupt, {.after = 5, .times = 1});
    Status s = store_->CopyPages(handles.data(), 12, out.data(), ctx, &copied);
    EXPECT_EQ(s.code(), Errc::kInterrupted);
    EXPECT_EQ(copied, 5u);
  }
  for (std::size_t i = 0; i < 5; ++i) EXPECT_TRUE(SamePage(out.page(i), pages.page(i)));
  // Resume from where it stopped.
  ASSERT_TRUE(store_->CopyPages(handles.data() + 5, 7, out.page(5), ctx, &copied).ok());
  EXPECT_EQ(copied, 7u);
  for (std::size_t i = 0; i < 12; ++i) EXPECT_TRUE(SamePage(out.page(i), pages.page(i)));

  // A stop request interrupts before any page; a non-interruptible context ignores it.
  stop.request_stop();
  EXPECT_EQ(store_->CopyPages(handles.data(), 12, out.data(), ctx, &copied).code(),
            Errc::kInterrupted);
  EXPECT_EQ(copied, 0u);
  ctx.interruptible = false;
  EXPECT_TRUE(store_->CopyPages(handles.data(), 12, out.data(), ctx, &copied).ok());
}

TEST_P(BackupStoreTest, TheStoreIsPrivate) {
  Pages pages(2, 12);
  BackupAll(pages, 0, 2);
  const int fd = StoreFd();
  ASSERT_GE(fd, 0);
  const std::string link = FdPath(fd);
  EXPECT_NE(link.find("(deleted)"), std::string::npos) << link;
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  // Nothing is visible in the directory.
  DIR* d = ::opendir(dir_.c_str());
  ASSERT_NE(d, nullptr);
  int entries = 0;
  while (dirent* e = ::readdir(d)) entries += e->d_name[0] != '.' || e->d_name[1] > '.';
  ::closedir(d);
  EXPECT_EQ(entries, 0);
}

TEST_P(BackupStoreTest, MisuseGetsClearErrors) {
  Pages pages(3, 13);
  std::vector<BackupHandle> handles(3);
  EXPECT_EQ(store_->BackupPages(pages.data(), 0, {}, handles.data()).code(), Errc::kInvalid);
  EXPECT_EQ(store_->BackupPages(nullptr, 1, {}, handles.data()).code(), Errc::kInvalid);
  handles = BackupAll(pages, 0, 3);
  Pages out(3);
  std::size_t copied = 0;
  // A never-issued handle, 0, and a dropped handle: kInvalid naming it, earlier pages copied.
  std::vector<BackupHandle> bad = {handles[0], BackupHandle(999999)};
  Status s = store_->CopyPages(bad.data(), 2, out.data(), {}, &copied);
  EXPECT_EQ(s.code(), Errc::kInvalid);
  EXPECT_NE(s.message().find("999999"), std::string::npos) << s.ToString();
  EXPECT_EQ(copied, 1u);
  BackupHandle zero;
  EXPECT_EQ(store_->CopyPage(zero, out.data(), {}).code(), Errc::kInvalid);
  store_->DropPage(handles[1]);
  store_->DropPage(handles[1]);  // double drop is ignored
  store_->DropPage(zero);
  EXPECT_EQ(store_->CopyPage(handles[1], out.data(), {}).code(), Errc::kInvalid);
  EXPECT_TRUE(store_->CopyPage(handles[2], out.data(), {}).ok());
  EXPECT_EQ(store_->BytesUsed(), 2 * kPageSize);
  if (is_direct()) {
    EXPECT_EQ(store_->BackupPages(pages.data() + 8, 1, {}, handles.data()).code(), Errc::kInvalid);
    EXPECT_EQ(store_->CopyPage(handles[2], out.data() + 8, {}).code(), Errc::kInvalid);
  }
}

TEST_P(BackupStoreTest, WritebackFlushAndAvailability) {
  EXPECT_GT(store_->BytesAvailable(), 16 * kPageSize);
  Pages pages(256, 14);
  std::vector<BackupHandle> handles = BackupAll(pages, 0, 256, {.writeback = true});
  ASSERT_TRUE(store_->Flush().ok());
  ExpectRestores(handles, pages, 0);
  EXPECT_FALSE(store_->Describe().empty());
  const char* prefix = is_uring() ? "uring:" : is_file() ? "file:" : "memfd";
  EXPECT_EQ(store_->Describe().rfind(prefix, 0), 0u) << store_->Describe();
  if (GetParam().kind == Kind::kUring) {
    EXPECT_NE(store_->Describe().find("io_uring"), std::string::npos) << store_->Describe();
    EXPECT_GT(UringRequests(), 0u);
  }
  if (GetParam().kind == Kind::kUringRefused) {
    EXPECT_NE(store_->Describe().find("io_uring refused"), std::string::npos) << store_->Describe();
    EXPECT_EQ(UringRequests(), 0u);
  }
}

TEST_P(BackupStoreTest, SinglePageHelpers) {
  Pages pages(1, 15);
  Result<BackupHandle> h = store_->BackupPage(pages.data(), {});
  ASSERT_TRUE(h.ok());
  Pages out(1);
  ASSERT_TRUE(store_->CopyPage(*h, out.data(), {}).ok());
  EXPECT_TRUE(SamePage(out.data(), pages.data()));
  store_->DropPage(*h);
  EXPECT_EQ(store_->BytesUsed(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Stores, BackupStoreTest,
                         ::testing::Values(Flavour{"Memfd", Kind::kMemfd},
                                           Flavour{"File", Kind::kFile},
                                           Flavour{"FileDirect", Kind::kFileDirect},
                                           Flavour{"FileNoTmpfile", Kind::kFileNoTmpfile},
                                           Flavour{"Uring", Kind::kUring},
                                           Flavour{"UringRefused", Kind::kUringRefused}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace uttm
