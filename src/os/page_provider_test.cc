// Copyright (c) uttm developers.
#include "uttm/page_provider.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <string>
#include <vector>

#include "os/asan.h"
#include "uttm/fault_injection.h"

namespace uttm {
namespace {

TEST(PageProviderTest, AllocatesAlignedZeroedChunksOfEveryOrder) {
  Stats stats;
  PageProvider provider({.stats = &stats});
  for (unsigned order = 0; order <= kMaxPageOrder; ++order) {
    auto chunk = provider.Allocate(PageOrder(order));
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(chunk->addr) % chunk->bytes(), 0u);
    for (std::size_t i = 0; i < chunk->bytes(); i += 512) EXPECT_EQ(chunk->addr[i], std::byte{0});
    std::memset(chunk->addr, 0x5a, chunk->bytes());
    provider.Free(*chunk);
  }
  EXPECT_EQ(provider.pages_in_use(), 0u);
  EXPECT_EQ(stats.Current(Stat::kProviderPages), 0);
  EXPECT_EQ(stats.Peak(Stat::kProviderPages), 512);
}

TEST(PageProviderTest, FreedMemoryReadsZeroWhenHandedOutAgain) {
  PageProvider provider;
  auto a = provider.Allocate(PageOrder(0));
  ASSERT_TRUE(a.ok());
  std::byte* addr = a->addr;
  std::memset(addr, 0x77, kPageSize);
  provider.Free(*a);
  // The buddy allocator hands out the lowest free block first, so the same page comes back.
  auto b = provider.Allocate(PageOrder(0));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->addr, addr);
  for (std::size_t i = 0; i < kPageSize; ++i) ASSERT_EQ(b->addr[i], std::byte{0});
  provider.Free(*b);
}

TEST(PageProviderTest, BuddiesMergeBackIntoHugeChunks) {
  PageProvider provider({.region_size = Bytes(2 << 20)});
  std::vector<PageChunk> chunks;
  for (int i = 0; i < 512; ++i) {
    auto c = provider.Allocate(PageOrder(0));
    ASSERT_TRUE(c.ok());
    chunks.push_back(*c);
  }
  EXPECT_EQ(provider.regions(), 1u);
  provider.Free(chunks);  // one madvise over the whole 2 MiB
  auto huge = provider.Allocate(PageOrder(9));
  ASSERT_TRUE(huge.ok());
  EXPECT_EQ(provider.regions(), 1u);  // the merged block was reused, no growth
  provider.Free(*huge);
}

TEST(PageProviderTest, GrowsByAnotherRegionWhenFull) {
  PageProvider provider({.region_size = Bytes(2 << 20)});
  auto a = provider.Allocate(PageOrder(9));
  auto b = provider.Allocate(PageOrder(9));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(provider.regions(), 2u);
  provider.Free(*a);
  provider.Free(*b);
}

TEST(PageProviderTest, ByteLimitAndFaultGiveNoMemory) {
  Stats stats;
  PageProvider provider({.byte_limit = Bytes(8 * kPageSize), .stats = &stats});
  auto a = provider.Allocate(PageOrder(3));
  ASSERT_TRUE(a.ok());
  auto b = provider.Allocate(PageOrder(0));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Errc::kNoMemory);
  provider.Free(*a);
  {
    ScopedFault fault(FaultPoint::kPageAlloc, {.times = 1});
    auto c = provider.Allocate(PageOrder(0));
    EXPECT_EQ(c.status().code(), Errc::kNoMemory);
  }
  EXPECT_TRUE(provider.Allocate(PageOrder(0)).ok());
  EXPECT_EQ(stats.Get(Stat::kProviderAllocFailures), 2u);
  EXPECT_EQ(provider.Allocate(PageOrder(10)).status().code(), Errc::kInvalid);
}

// Pages a chunk holds are resident (as the kernel's pages are) when it is handed out, unless
// prefaulting is off; a chunk whose pages the OS cannot supply is an error, and the address
// range goes back to the free lists and to the OS.
TEST(PageProviderTest, ChunksArePrefaultedUnlessAskedNotTo) {
  auto resident = [](const PageChunk& c) {
    std::vector<unsigned char> vec(c.pages());
    EXPECT_EQ(::mincore(c.addr, c.bytes(), vec.data()), 0);
    std::size_t n = 0;
    for (unsigned char v : vec) n += v & 1;
    return n;
  };
  Stats stats;
  PageProvider provider({.huge_pages = false, .stats = &stats});
  auto a = provider.Allocate(PageOrder(4));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(resident(*a), 16u);

  PageProvider lazy({.huge_pages = false, .prefault = false, .stats = &stats});
  auto b = lazy.Allocate(PageOrder(4));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(resident(*b), 0u);
  lazy.Free(*b);

  {
    ScopedFault fault(FaultPoint::kPagePrefault, {.times = 1});
    auto c = provider.Allocate(PageOrder(6));
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), Errc::kNoMemory);
    EXPECT_NE(c.status().message().find("could not supply 64 pages"), std::string::npos)
        << c.status().ToString();
  }
  EXPECT_EQ(provider.pages_in_use(), 16u);
  EXPECT_EQ(stats.Get(Stat::kProviderAllocFailures), 1u);
  // The range is free again: a retry gets memory, with its pages resident and zero.
  auto d = provider.Allocate(PageOrder(6));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(resident(*d), 64u);
  for (std::size_t i = 0; i < d->bytes(); i += 256) ASSERT_EQ(d->addr[i], std::byte{0});
  provider.Free(*a);
  provider.Free(*d);
  EXPECT_EQ(provider.pages_in_use(), 0u);
}

TEST(PageProviderTest, FreeRangeOfSplitChunkReleasesPagesIndividually) {
  PageProvider provider;
  auto c = provider.Allocate(PageOrder(4));
  ASSERT_TRUE(c.ok());
  provider.FreeRange(c->addr + 3 * kPageSize, 5);
  EXPECT_EQ(provider.pages_in_use(), 11u);
  provider.FreeRange(c->addr, 3);
  provider.FreeRange(c->addr + 8 * kPageSize, 8);
  EXPECT_EQ(provider.pages_in_use(), 0u);
}

}  // namespace
}  // namespace uttm

namespace uttm {
namespace {

#ifdef UTTM_HAVE_ASAN_
TEST(PageProviderDeathTest, UseAfterFreeOfAPageCrashesUnderAsan) {
  PageProvider provider;
  auto c = provider.Allocate(PageOrder(0));
  ASSERT_TRUE(c.ok());
  volatile std::byte* p = c->addr;
  provider.Free(*c);
  EXPECT_DEATH(p[100] = std::byte{1}, "use-after-poison");
}
#endif

}  // namespace
}  // namespace uttm
