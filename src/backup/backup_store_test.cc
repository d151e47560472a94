// Copyright (c) uttm developers.
//
// Tests of what only the memfd and file backup stores do (defaults, directories, reserves, the
// page cache); their contract is tested with every other store's in
// src/stores/store_suite_test.cc.
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "testing/forwarding_store.h"
#include "testing/page_buffer.h"
#include "testing/proc_status.h"
#include "uttm/backup_store.h"
#include "uttm/backup_store_factory.h"
#include "uttm/fault_injection.h"
#include "uttm/file_store.h"
#include "uttm/memfd_store.h"
#include "uttm/stats.h"
#include "uttm/units.h"

namespace uttm {
namespace {

using Pages = testing::PatternPages;
using testing::FdPath;
using testing::SamePage;

template <typename F>
FileStoreOptions FileOpts(F set) {
  FileStoreOptions o;
  set(o);
  return o;
}
template <typename F>
MemfdStoreOptions MemfdOpts(F set) {
  MemfdStoreOptions o;
  set(o);
  return o;
}

// The base class's BackupPageList / CopyPageList (for stores without vectored I/O), exercised
// through a store that forwards only the required methods to a real memfd store.
using testing::ForwardingStore;

TEST(BackupStoreDefaultsTest, PageListsSplitIntoAdjacentRuns) {
  auto base = CreateBackupStore("memfd,allow_without_swap");
  ASSERT_TRUE(base.ok());
  ForwardingStore store(std::move(base).value());
  Pages pages(12, 22);
  // Runs: [0..4), [8..12), [4..8) -> three BackupPages calls.
  std::vector<const std::byte*> src;
  for (std::size_t i : {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7}) src.push_back(pages.page(i));
  std::vector<BackupHandle> handles(12);
  Result<std::size_t> r = store.BackupPageList(src.data(), 12, {}, handles.data());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 12u);
  EXPECT_EQ(store.calls, 3);
  Pages out(12);
  std::vector<std::byte*> dst;
  for (std::size_t i = 0; i < 12; ++i) dst.push_back(out.page(i));
  std::size_t copied = 0;
  ASSERT_TRUE(store.CopyPageList(handles.data(), 12, dst.data(), {}, &copied).ok());
  EXPECT_EQ(copied, 12u);
  for (std::size_t i = 0; i < 12; ++i) EXPECT_TRUE(SamePage(dst[i], src[i]));

  // A failure in the second run: the first run stays stored, the count says so.
  store.Drop(handles.data(), 12);
  {
    ScopedFault fault(FaultPoint::kStoreWrite, {.after = 6, .times = 1});
    r = store.BackupPageList(src.data(), 12, {}, handles.data());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 6u);
  }
  {
    ScopedFault fault(FaultPoint::kStoreRead, {.after = 5, .times = 1});
    EXPECT_EQ(store.CopyPageList(handles.data(), 6, dst.data(), {}, &copied).code(), Errc::kIo);
    EXPECT_EQ(copied, 5u);
  }
  EXPECT_EQ(store.BackupPageList(src.data(), 0, {}, handles.data()).code(), Errc::kInvalid);
}

// --- Store-specific behaviour ---

TEST(MemfdStoreTest, DefaultFollowsTheFreeSwapRule) {
  struct sysinfo info {};
  ASSERT_EQ(::sysinfo(&info), 0);
  const std::uint64_t free_swap = static_cast<std::uint64_t>(info.freeswap) * info.mem_unit;
  auto store = NewMemfdStore();
  ASSERT_TRUE(store.ok());
  Pages page(1, 16);
  Result<BackupHandle> h = (*store)->BackupPage(page.data(), {});
  if (free_swap == 0) {
    EXPECT_EQ((*store)->BytesAvailable(), 0u);
    EXPECT_EQ(h.code(), Errc::kNoSpace);
    EXPECT_NE(h.status().message().find("swap"), std::string::npos) << h.status().ToString();
  } else {
    EXPECT_GT((*store)->BytesAvailable(), 0u);
    EXPECT_TRUE(h.ok());
  }
}

TEST(MemfdStoreTest, AllowWithoutSwapReportsAvailableMemory) {
  auto store = NewMemfdStore(MemfdOpts([](MemfdStoreOptions& o) { o.allow_without_swap = true; }));
  ASSERT_TRUE(store.ok());
  struct sysinfo info {};
  ASSERT_EQ(::sysinfo(&info), 0);
  const std::uint64_t total = static_cast<std::uint64_t>(info.totalram) * info.mem_unit;
  const std::uint64_t avail = (*store)->BytesAvailable();
  EXPECT_GT(avail, 0u);
  EXPECT_LE(avail, total + static_cast<std::uint64_t>(info.totalswap) * info.mem_unit);
  EXPECT_EQ(NewMemfdStore(MemfdOpts([](MemfdStoreOptions& o) { o.capacity_bytes = 100; })).code(),
            Errc::kInvalid);
  EXPECT_EQ(NewMemfdStore(MemfdOpts([](MemfdStoreOptions& o) { o.name = ""; })).code(),
            Errc::kInvalid);
}

TEST(FileStoreTest, BadDirectoriesAreReported) {
  auto missing =
      NewFileStore(FileOpts([](FileStoreOptions& o) { o.directory = "/nonexistent/uttm-dir"; }));
  EXPECT_EQ(missing.code(), Errc::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/uttm-dir"), std::string::npos);
  auto not_dir =
      NewFileStore(FileOpts([](FileStoreOptions& o) { o.directory = "/proc/self/status"; }));
  EXPECT_EQ(not_dir.code(), Errc::kInvalid);
  EXPECT_EQ(NewFileStore(FileOpts([](FileStoreOptions& o) { o.capacity_bytes = 1; })).code(),
            Errc::kInvalid);
}

TEST(FileStoreTest, ReserveLimitsAdmissionAndAvailability) {
  auto store =
      NewFileStore(FileOpts([](FileStoreOptions& o) { o.reserve_bytes = std::uint64_t{1} << 62; }));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->BytesAvailable(), 0u);
  Pages page(1, 17);
  Result<BackupHandle> h = (*store)->BackupPage(page.data(), {});
  EXPECT_EQ(h.code(), Errc::kNoSpace);
  EXPECT_NE(h.status().message().find("reserve"), std::string::npos);
}

TEST(FileStoreTest, DefaultDirectoryIsTmpdir) {
  char tmpl[] = "/tmp/uttm-tmpdir-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const char* old = std::getenv("TMPDIR");
  std::string saved = old ? old : "";
  ::setenv("TMPDIR", tmpl, 1);
  auto store = NewFileStore();
  if (old) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Describe(), std::string("file:") + tmpl);
  store->reset();
  ::rmdir(tmpl);
}

TEST(FileStoreTest, FlushDropsThePageCache) {
  char tmpl[] = "/tmp/uttm-flush-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  auto store = NewFileStore(FileOpts([&](FileStoreOptions& o) { o.directory = tmpl; }));
  ASSERT_TRUE(store.ok());
  Pages pages(512, 18);
  std::vector<BackupHandle> h(512);
  ASSERT_TRUE((*store)->BackupPages(pages.data(), 512, {}, h.data()).ok());
  int fd = -1;
  for (int i = 3; i < 1024; ++i) {
    if (FdPath(i).rfind(std::string(tmpl) + "/", 0) == 0) fd = i;
  }
  ASSERT_GE(fd, 0);
  auto resident = [&] {
    void* map = ::mmap(nullptr, 512 * kPageSize, PROT_READ, MAP_SHARED, fd, 0);
    EXPECT_NE(map, MAP_FAILED);
    std::vector<unsigned char> vec(512);
    EXPECT_EQ(::mincore(map, 512 * kPageSize, vec.data()), 0);
    ::munmap(map, 512 * kPageSize);
    return std::count_if(vec.begin(), vec.end(), [](unsigned char c) { return c & 1; });
  };
  EXPECT_GT(resident(), 0);
  ASSERT_TRUE((*store)->Flush().ok());
  EXPECT_LT(resident(), 16) << "Flush wrote the pages out and dropped them from the page cache";
  store->reset();
  ::rmdir(tmpl);
}

}  // namespace
}  // namespace uttm
