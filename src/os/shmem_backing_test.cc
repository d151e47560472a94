// Copyright (c) uttm developers.
//
// The backing file of a GEM shmem object: created lazily, every byte kept across unmap and map,
// lazy release versus immediate write-back (the page cache really emptied), truncation, a real
// full file system, and bad directories.
#include "uttm/shmem_backing.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "testing/content.h"

namespace uttm {
namespace {

constexpr std::uint64_t kPages = 256;
constexpr std::uint64_t kSize = kPages * kPageSize;

std::unique_ptr<ShmemBacking> Make(const std::string& dir, std::uint64_t size = kSize) {
  ShmemBackingOptions o;
  o.directory = dir;
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
