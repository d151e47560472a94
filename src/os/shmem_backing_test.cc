// Copyright (c) uttm developers.
//
// The backing file of a GEM shmem object: created lazily, every byte kept across unmap and map,
// lazy release versus immediate write-back (the page cache really emptied), truncation, a real
// full file system, and bad directories.
#include "uttm/shmem_backing.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "testing/content.h"
#include "testing/proc_status.h"

namespace uttm {
namespace {

constexpr std::uint64_t kPages = 256;
constexpr std::uint64_t kSize = kPages * kPageSize;

std::unique_ptr<ShmemBacking> Make(const std::string& dir, std::uint64_t size = kSize,
                                   bool large_folios = true) {
  ShmemBackingOptions o;
  o.directory = dir;
  o.large_folios = large_folios;
  Result<std::unique_ptr<ShmemBacking>> b = ShmemBacking::Create(Bytes(size), o);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? std::move(b).value() : nullptr;
}

TEST(ShmemBackingTest, EveryByteSurvivesLazyAndImmediateRelease) {
  std::unique_ptr<ShmemBacking> b = Make(::testing::TempDir());
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->has_file());
  Result<std::byte*> p = b->Map();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(b->has_file());
  testing::FillContent({21, 1}, 0, std::span(*p, kSize));
  // Lazy: unmapped, the pages stay in the page cache for the kernel to reclaim.
  ASSERT_TRUE(b->Unmap(/*writeback=*/false).ok());
  EXPECT_EQ(b->CachedPages(), kPages);
  p = b->Map();
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(testing::FindMismatch({21, 1}, 0, std::span(*p, kSize)).has_value());
  testing::FillContent({21, 2}, 0, std::span(*p, kSize));
  // Immediate: written back and dropped from the page cache before Unmap returns.
  ASSERT_TRUE(b->Unmap(/*writeback=*/true).ok());
  EXPECT_EQ(b->CachedPages(), 0u);
  p = b->Map();
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(testing::FindMismatch({21, 2}, 0, std::span(*p, kSize)).has_value());
  // Truncate: the contents go, the next map reads zeros.
  ASSERT_TRUE(b->Truncate().ok());
  EXPECT_FALSE(b->mapped());
  EXPECT_EQ(b->CachedPages(), 0u);
  p = b->Map();
  ASSERT_TRUE(p.ok());
  for (std::uint64_t i = 0; i < kSize; i += 511) ASSERT_EQ((*p)[i], std::byte{0}) << i;
}

// What the file system under `dir` gives a MADV_HUGEPAGE mapping of a file read back from disk:
// pages in large folios out of `bytes`, or nullopt when that cannot be seen (no root).
std::optional<std::uint64_t> RawLargeFolioPages(const std::string& dir, std::size_t bytes) {
  const int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return std::nullopt;
  std::vector<char> data(bytes, 'x');
  std::optional<std::uint64_t> n;
  if (pwrite(fd, data.data(), bytes, 0) == static_cast<ssize_t>(bytes) && fdatasync(fd) == 0 &&
      posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0) {
    void* p = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      madvise(p, bytes, MADV_HUGEPAGE);
      if (madvise(p, bytes, MADV_POPULATE_READ) == 0) n = testing::PagesInLargeFolios(p, bytes);
      munmap(p, bytes);
    }
  }
  close(fd);
  return n;
}

TEST(ShmemBackingTest, ASwapInComesBackInLargeFoliosWhereTheFileSystemHasThem) {
  constexpr std::uint64_t kBig = 4 << 20;
  const std::optional<std::uint64_t> raw = RawLargeFolioPages(::testing::TempDir(), kBig);
  if (!raw.has_value()) GTEST_SKIP() << "page frames are not readable here (needs root)";
  if (*raw == 0) {
    GTEST_SKIP() << "the file system under " << ::testing::TempDir()
                 << " gives a MADV_HUGEPAGE mapping no large folios";
  }
  for (const bool large : {true, false}) {
    SCOPED_TRACE(large ? "large folios" : "single pages");
    std::unique_ptr<ShmemBacking> b = Make(::testing::TempDir(), kBig, large);
    ASSERT_TRUE(b);
    Result<std::byte*> p = b->Map();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    testing::FillContent({22, large ? 1u : 2u}, 0, std::span(*p, kBig));
    ASSERT_TRUE(b->Unmap(/*writeback=*/true).ok());
    ASSERT_EQ(b->CachedPages(), 0u);
    p = b->Map();  // read back from the disk
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_FALSE(testing::FindMismatch({22, large ? 1u : 2u}, 0, std::span(*p, kBig)).has_value());
    const std::optional<std::uint64_t> in_large = testing::PagesInLargeFolios(*p, kBig);
    ASSERT_TRUE(in_large.has_value());
    if (large) {
      // As many as the raw mapping got (the whole file on this machine).
      EXPECT_GE(*in_large, *raw) << "of " << kBig / kPageSize << " pages";
    } else {
      // readahead(2) of the whole file first: single pages (mm/readahead.c).
      EXPECT_LT(*in_large, *raw) << "of " << kBig / kPageSize << " pages";
    }
  }
}

TEST(ShmemBackingTest, AFullFileSystemIsReportedAtMapNeverAtAWrite) {
  char dir[] = "/tmp/uttm-gem-full-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  if (mount("uttm-test", dir, "tmpfs", 0, "size=1m") != 0) {
    const int err = errno;
    rmdir(dir);
    GTEST_SKIP() << "cannot mount a 1 MiB tmpfs to fill (" << std::strerror(err) << ")";
  }
  {
    std::unique_ptr<ShmemBacking> b = Make(dir, 4 << 20);  // 4 MiB on a 1 MiB file system
    ASSERT_TRUE(b);
    Result<std::byte*> p = b->Map();
    EXPECT_EQ(p.code(), Errc::kNoSpace) << p.status().ToString();
    EXPECT_FALSE(b->mapped());
    std::unique_ptr<ShmemBacking> small = Make(dir, 256 << 10);
    ASSERT_TRUE(small);
    p = small->Map();
    ASSERT_TRUE(p.ok()) << p.status().ToString() << " (the failed reservation was given back)";
    std::memset(*p, 1, 256 << 10);
  }
  umount(dir);
  rmdir(dir);
}

TEST(ShmemBackingTest, BadDirectoriesAndSizesAreClearErrors) {
  ShmemBackingOptions o;
  o.directory = "/nonexistent/uttm";
  Result<std::unique_ptr<ShmemBacking>> b = ShmemBacking::Create(Bytes(kSize), o);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.code(), Errc::kInvalid);
  EXPECT_NE(b.status().ToString().find("/nonexistent/uttm"), std::string::npos);
  o.directory = "/proc/self/status";
  b = ShmemBacking::Create(Bytes(kSize), o);
  EXPECT_EQ(b.code(), Errc::kInvalid);
  EXPECT_NE(b.status().ToString().find("not a directory"), std::string::npos);
  o.directory = "";
  EXPECT_EQ(ShmemBacking::Create(Bytes(0), o).code(), Errc::kInvalid);
  b = ShmemBacking::Create(Bytes(100), o);  // rounded up to a page
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->size().value(), kPageSize);
  EXPECT_EQ((*b)->describe(), "memfd");
}

}  // namespace
}  // namespace uttm
