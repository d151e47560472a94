// Copyright (c) uttm developers.
//
// BuddyAllocator tests: the portable cases of the kernel's gpu_buddy_test.c (suite GpuBuddy,
// named after the upstream cases; sizes in bytes with a 4 KiB chunk, as upstream), our own
// cases, and a randomized check against a bitmap model. Upstream draws a random seed per run; we
// run fixed seeds so failures reproduce. fragmentation_performance lives in
// bench/allocator_bench.cc.
#include "resource/buddy_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "resource/buddy_math.h"

namespace uttm {
namespace {

constexpr std::uint64_t SZ_4K = 4096;
constexpr std::uint64_t SZ_8K = 8192;
constexpr std::uint64_t SZ_16K = 16384;
constexpr std::uint64_t SZ_32K = 32768;
constexpr std::uint64_t SZ_64K = 65536;
constexpr std::uint64_t SZ_128K = 128 * 1024;
constexpr std::uint64_t SZ_256K = 256 * 1024;
constexpr std::uint64_t SZ_512K = 512 * 1024;
constexpr std::uint64_t SZ_1M = 1024 * 1024;
constexpr std::uint64_t SZ_2M = 2 * SZ_1M;
constexpr std::uint64_t SZ_4M = 4 * SZ_1M;
constexpr std::uint64_t SZ_8M = 8 * SZ_1M;
constexpr std::uint64_t SZ_16M = 16 * SZ_1M;
constexpr std::uint64_t SZ_1G = 1024 * SZ_1M;
constexpr std::uint64_t SZ_2G = 2 * SZ_1G;
constexpr std::uint64_t SZ_8G = 8 * SZ_1G;

using Blocks = std::vector<BuddyBlockId>;

std::uint64_t GetSize(unsigned order, std::uint64_t chunk) {
  return (std::uint64_t{1} << order) * chunk;
}

std::uint64_t Total(const BuddyAllocator& mm, const Blocks& blocks) {
  std::uint64_t total = 0;
  for (BuddyBlockId b : blocks) total += mm.BlockSize(b);
  return total;
}

std::uint64_t RoundUp(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// Moves the first block of *from to the end of *to (list_move_tail of the first entry).
void MoveFirst(Blocks* from, Blocks* to) {
  ASSERT_FALSE(from->empty()) << "alloc_blocks has no blocks";
  to->push_back(from->front());
  from->erase(from->begin());
}

TEST(GpuBuddy, gpu_test_buddy_alloc_limit) {
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(std::numeric_limits<std::uint64_t>::max(), SZ_4K).ok());
  EXPECT_EQ(mm.max_order(), BuddyAllocator::kMaxOrder);
  const std::uint64_t size = mm.chunk_size() << mm.max_order();
  Blocks allocated;
  ASSERT_TRUE(mm.AllocBlocks(0, size, size, mm.chunk_size(), 0, &allocated).ok());
  ASSERT_EQ(allocated.size(), 1u);
  EXPECT_EQ(mm.BlockOrder(allocated[0]), mm.max_order());
  EXPECT_EQ(mm.BlockSize(allocated[0]), (std::uint64_t{1} << mm.max_order()) * mm.chunk_size());
  ASSERT_TRUE(mm.FreeBlocks(&allocated, 0).ok());
  EXPECT_TRUE(mm.Fini().ok());
}

TEST(GpuBuddy, gpu_test_buddy_alloc_optimistic) {
  const unsigned max_order = 16;
  const std::uint64_t mm_size = SZ_4K * ((std::uint64_t{1} << (max_order + 1)) - 1);
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(mm_size, SZ_4K).ok());
  EXPECT_EQ(mm.max_order(), max_order);
  Blocks blocks, tmp;
  for (unsigned order = 0; order <= max_order; ++order) {
    const std::uint64_t size = GetSize(order, mm.chunk_size());
    ASSERT_TRUE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok()) << "order " << order;
    MoveFirst(&tmp, &blocks);
  }
  const std::uint64_t size = GetSize(0, mm.chunk_size());
  EXPECT_FALSE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok()) << "should be full";
  ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  EXPECT_TRUE(mm.Validate().ok());
  EXPECT_TRUE(mm.Fini().ok());
}

TEST(GpuBuddy, gpu_test_buddy_alloc_pessimistic) {
  const unsigned max_order = 16;
  const std::uint64_t mm_size = SZ_4K << max_order;
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(mm_size, SZ_4K).ok());
  EXPECT_EQ(mm.max_order(), max_order);
  Blocks blocks, tmp;
  for (unsigned order = 0; order < max_order; ++order) {
    const std::uint64_t size = GetSize(order, mm.chunk_size());
    ASSERT_TRUE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok()) << "order " << order;
    MoveFirst(&tmp, &blocks);
  }
  std::uint64_t size = GetSize(0, mm.chunk_size());
  ASSERT_TRUE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok()) << "final alloc";
  MoveFirst(&tmp, &blocks);
  for (unsigned order = max_order; order-- > 0;) {
    size = GetSize(order, mm.chunk_size());
    EXPECT_FALSE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok()) << "should be full";
  }
  ASSERT_TRUE(mm.FreeBlock(blocks.back()).ok());
  blocks.pop_back();
  // Freeing in increasing size makes ever larger blocks available.
  unsigned order = 1;
  for (BuddyBlockId b : blocks) {
    ASSERT_TRUE(mm.FreeBlock(b).ok());
    size = GetSize(order, mm.chunk_size());
    ASSERT_TRUE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok()) << "order " << order;
    ASSERT_EQ(tmp.size(), 1u);
    ASSERT_TRUE(mm.FreeBlock(tmp[0]).ok());
    tmp.clear();
    ++order;
  }
  blocks.clear();
  size = GetSize(max_order, mm.chunk_size());
  ASSERT_TRUE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok()) << "realloc";
  ASSERT_TRUE(mm.FreeBlocks(&tmp, 0).ok());
  EXPECT_TRUE(mm.Fini().ok());
}

TEST(GpuBuddy, gpu_test_buddy_alloc_pathological) {
  const unsigned max_order = 3;
  const std::uint64_t mm_size = SZ_4K << max_order;
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(mm_size, SZ_4K).ok());
  EXPECT_EQ(mm.max_order(), max_order);
  std::deque<BuddyBlockId> blocks;
  Blocks holes, tmp;
  for (unsigned top = max_order; top > 0; --top) {
    if (!blocks.empty()) {  // make room by freeing the largest allocated block
      ASSERT_TRUE(mm.FreeBlock(blocks.front()).ok());
      blocks.pop_front();
    }
    for (unsigned order = top; order-- > 0;) {
      const std::uint64_t size = GetSize(order, mm.chunk_size());
      ASSERT_TRUE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok())
          << "order " << order << " top " << top;
      ASSERT_FALSE(tmp.empty());
      blocks.push_back(tmp.front());
      tmp.erase(tmp.begin());
    }
    std::uint64_t size = GetSize(0, mm.chunk_size());
    ASSERT_TRUE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok()) << "hole";
    MoveFirst(&tmp, &holes);
    size = GetSize(top, mm.chunk_size());
    EXPECT_FALSE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok()) << "top " << top;
  }
  ASSERT_TRUE(mm.FreeBlocks(&holes, 0).ok());
  // Nothing larger than a chunk is available now.
  for (unsigned order = 1; order <= max_order; ++order) {
    const std::uint64_t size = GetSize(order, mm.chunk_size());
    EXPECT_FALSE(mm.AllocBlocks(0, mm_size, size, size, 0, &tmp).ok()) << "order " << order;
  }
  EXPECT_TRUE(mm.Validate().ok());
  Blocks rest(blocks.begin(), blocks.end());
  ASSERT_TRUE(mm.FreeBlocks(&rest, 0).ok());
  EXPECT_TRUE(mm.Fini().ok());
}

TEST(GpuBuddy, gpu_test_buddy_alloc_contiguous) {
  const std::uint64_t ps = SZ_4K, mm_size = 16 * 3 * SZ_4K;
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  Blocks left, middle, right, allocated;
  const std::uint64_t n_pages = mm_size / ps;
  for (std::uint64_t i = 0; i < n_pages; ++i) {
    Blocks* list = i % 3 == 0 ? &left : i % 3 == 1 ? &middle : &right;
    ASSERT_TRUE(mm.AllocBlocks(0, mm_size, ps, ps, 0, list).ok());
  }
  EXPECT_FALSE(mm.AllocBlocks(0, mm_size, 3 * ps, ps, kBuddyContiguous, &allocated).ok());
  ASSERT_TRUE(mm.FreeBlocks(&middle, 0).ok());
  EXPECT_FALSE(mm.AllocBlocks(0, mm_size, 3 * ps, ps, kBuddyContiguous, &allocated).ok());
  EXPECT_FALSE(mm.AllocBlocks(0, mm_size, 2 * ps, ps, kBuddyContiguous, &allocated).ok());
  ASSERT_TRUE(mm.FreeBlocks(&right, 0).ok());
  EXPECT_FALSE(mm.AllocBlocks(0, mm_size, 3 * ps, ps, kBuddyContiguous, &allocated).ok());
  // Enough contiguous space for 2 chunks exists, possibly only across non-buddies.
  ASSERT_TRUE(mm.AllocBlocks(0, mm_size, 2 * ps, ps, kBuddyContiguous, &allocated).ok());
  ASSERT_TRUE(mm.FreeBlocks(&left, 0).ok());
  ASSERT_TRUE(mm.AllocBlocks(0, mm_size, 3 * ps, ps, kBuddyContiguous, &allocated).ok());
  EXPECT_EQ(Total(mm, allocated), ps * 2 + ps * 3);
  EXPECT_TRUE(mm.Validate().ok());
  ASSERT_TRUE(mm.FreeBlocks(&allocated, 0).ok());
  EXPECT_TRUE(mm.Fini().ok());
}

// The try-harder path itself: a free order-1 block plus an adjacent free chunk that is not its
// buddy, once on the right (RHS walk) and once on the left (LHS walk).
TEST(GpuBuddy, ContiguousTryHarderSpansNonBuddies) {
  const std::uint64_t ps = SZ_4K;
  for (std::uint64_t extra : {std::uint64_t{4}, std::uint64_t{1}}) {
    BuddyAllocator mm;
    ASSERT_TRUE(mm.Init(8 * ps, ps).ok());
    Blocks freed, kept;
    for (std::uint64_t p = 0; p < 8; ++p) {
      const bool to_free = p == 2 || p == 3 || p == extra;
      ASSERT_TRUE(mm.AllocBlocks(p * ps, (p + 1) * ps, ps, ps, 0, to_free ? &freed : &kept).ok());
    }
    ASSERT_TRUE(mm.FreeBlocks(&freed, 0).ok());
    Blocks got;
    ASSERT_TRUE(mm.AllocBlocks(0, 8 * ps, 3 * ps, ps, kBuddyContiguous, &got).ok()) << extra;
    EXPECT_EQ(Total(mm, got), 3 * ps);
    std::uint64_t lo = ~std::uint64_t{0};
    for (BuddyBlockId b : got) lo = std::min(lo, mm.BlockOffset(b));
    EXPECT_EQ(lo, std::min<std::uint64_t>(2, extra) * ps);
    EXPECT_EQ(mm.avail(), 0u);
    ASSERT_TRUE(mm.FreeBlocks(&got, 0).ok());
    ASSERT_TRUE(mm.FreeBlocks(&kept, 0).ok());
    EXPECT_TRUE(mm.Fini().ok());
  }
}

TEST(GpuBuddy, gpu_test_buddy_alloc_clear) {
  const std::uint64_t ps = SZ_4K;
  const unsigned max_order = 12;
  std::uint64_t mm_size = SZ_4K << max_order;
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  EXPECT_EQ(mm.max_order(), max_order);
  Blocks allocated, dirty, clean;

  // Free some space as cleared, then alternate dirty and clear requests within that amount.
  ASSERT_TRUE(mm.AllocBlocks(0, mm_size, 5 * ps, ps, kBuddyTopDown, &allocated).ok());
  ASSERT_TRUE(mm.FreeBlocks(&allocated, kBuddyCleared).ok());
  for (int i = 0; i < 10; ++i) {
    if (i % 2 == 0) {
      ASSERT_TRUE(mm.AllocBlocks(0, mm_size, ps, ps, 0, &dirty).ok());
    } else {
      ASSERT_TRUE(mm.AllocBlocks(0, mm_size, ps, ps, kBuddyClear, &clean).ok());
    }
  }
  for (BuddyBlockId b : clean) EXPECT_TRUE(mm.BlockIsClear(b));
  for (BuddyBlockId b : dirty) EXPECT_FALSE(mm.BlockIsClear(b));
  ASSERT_TRUE(mm.FreeBlocks(&clean, kBuddyCleared).ok());
  // Asking for more clear memory than exists falls back to dirty blocks.
  ASSERT_TRUE(mm.AllocBlocks(0, mm_size, 10 * ps, ps, kBuddyClear, &clean).ok());
  ASSERT_TRUE(mm.FreeBlocks(&clean, kBuddyCleared).ok());
  ASSERT_TRUE(mm.FreeBlocks(&dirty, 0).ok());
  EXPECT_TRUE(mm.Validate().ok());
  ASSERT_TRUE(mm.Fini().ok());

  // Fragment into alternating clear/dirty chunks; larger clear requests must force-merge and
  // get dirty blocks.
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  const std::uint64_t n_pages = mm_size / ps;
  for (std::uint64_t i = 0; i < n_pages; ++i) {
    ASSERT_TRUE(mm.AllocBlocks(0, mm_size, ps, ps, 0, i % 2 == 0 ? &dirty : &clean).ok());
  }
  ASSERT_TRUE(mm.FreeBlocks(&clean, kBuddyCleared).ok());
  ASSERT_TRUE(mm.FreeBlocks(&dirty, 0).ok());
  for (unsigned order = 1; order <= max_order; ++order) {
    const std::uint64_t size = SZ_4K << order;
    ASSERT_TRUE(mm.AllocBlocks(0, mm_size, size, size, kBuddyClear, &allocated).ok())
        << "order " << order;
    for (BuddyBlockId b : allocated) {
      if (size != mm_size) {
        EXPECT_FALSE(mm.BlockIsClear(b)) << "order " << order;
      }
    }
    EXPECT_EQ(Total(mm, allocated), size);
    ASSERT_TRUE(mm.FreeBlocks(&allocated, 0).ok());
    ASSERT_TRUE(mm.Validate().ok());
  }
  ASSERT_TRUE(mm.Fini().ok());

  // Non-power-of-two size: cleared frees in each root, then fini force-merges every root.
  mm_size = (SZ_4K << max_order) + (SZ_4K << (max_order - 2));
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  EXPECT_EQ(mm.max_order(), max_order);
  ASSERT_TRUE(mm.AllocBlocks(0, SZ_4K << max_order, 4 * ps, ps, kBuddyRange, &allocated).ok());
  ASSERT_TRUE(mm.FreeBlocks(&allocated, kBuddyCleared).ok());
  ASSERT_TRUE(mm.AllocBlocks(0, SZ_4K << max_order, 2 * ps, ps, kBuddyClear, &allocated).ok());
  ASSERT_TRUE(mm.FreeBlocks(&allocated, kBuddyCleared).ok());
  ASSERT_TRUE(mm.AllocBlocks(SZ_4K << max_order, mm_size, ps, ps, kBuddyRange, &allocated).ok());
  ASSERT_TRUE(mm.FreeBlocks(&allocated, kBuddyCleared).ok());
  ASSERT_TRUE(mm.Fini().ok());

  // ResetClear merges split blocks back and sets one state everywhere.
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  const std::uint64_t pages = mm_size / ps;
  for (std::uint64_t i = 0; i < pages; ++i) {
    if (i % 2 == 0) {
      ASSERT_TRUE(mm.AllocBlocks(0, mm_size, ps, ps, 0, &allocated).ok());
    }
  }
  ASSERT_TRUE(mm.FreeBlocks(&allocated, kBuddyCleared).ok());
  mm.ResetClear(false);
  EXPECT_EQ(mm.clear_avail(), 0u);
  for (std::uint64_t i = 0; i < pages; ++i) {
    if (i % 2 != 0) {
      ASSERT_TRUE(mm.AllocBlocks(0, mm_size, ps, ps, 0, &allocated).ok());
    }
  }
  ASSERT_TRUE(mm.FreeBlocks(&allocated, kBuddyCleared).ok());
  mm.ResetClear(true);
  EXPECT_EQ(mm.clear_avail(), mm_size);
  int free_blocks = 0;
  mm.ForEachFreeBlock([&](std::uint64_t, std::uint64_t, bool) { ++free_blocks; });
  EXPECT_EQ(free_blocks, static_cast<int>(mm.root_count()));
  EXPECT_TRUE(mm.Validate().ok());
  ASSERT_TRUE(mm.Fini().ok());
}

TEST(GpuBuddy, gpu_test_buddy_alloc_range) {
  const std::uint64_t ps = SZ_4K;
  std::mt19937 prng(0x5eed);
  BuddyAllocator mm;
  Blocks blocks, tmp;
  std::uint64_t mm_size = SZ_16M;

  // The whole mm as one exact range.
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  ASSERT_TRUE(mm.AllocBlocks(0, mm_size, mm_size, ps, 0, &blocks).ok());
  for (BuddyBlockId b : blocks) EXPECT_LE(mm.BlockOffset(b) + mm.BlockSize(b), mm_size);
  EXPECT_EQ(Total(mm, blocks), mm_size);
  EXPECT_EQ(mm.avail(), 0u);
  EXPECT_FALSE(mm.AllocBlocks(0, ps, ps, ps, 0, &tmp).ok()) << "mm is full";
  ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  EXPECT_EQ(mm.avail(), mm_size);
  ASSERT_TRUE(mm.Fini().ok());

  // Four quarters as exact ranges.
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  const std::uint64_t quarter = mm_size / 4;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(mm.AllocBlocks(i * quarter, (i + 1) * quarter, quarter, ps, 0, &blocks).ok());
  }
  EXPECT_EQ(mm.avail(), 0u);
  ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  ASSERT_TRUE(mm.Fini().ok());

  // Single chunks at the start, middle and end.
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  ASSERT_TRUE(mm.AllocBlocks(0, ps, ps, ps, 0, &blocks).ok());
  ASSERT_TRUE(mm.AllocBlocks(mm_size / 2, mm_size / 2 + ps, ps, ps, 0, &blocks).ok());
  ASSERT_TRUE(mm.AllocBlocks(mm_size - ps, mm_size, ps, ps, 0, &blocks).ok());
  EXPECT_EQ(Total(mm, blocks), 3 * ps);
  ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  ASSERT_TRUE(mm.Fini().ok());

  // Multiple roots: each root exactly, then the whole non-power-of-two mm across roots.
  mm_size = SZ_4M + SZ_2M + SZ_1M;
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  EXPECT_GT(mm.root_count(), 1u);
  ASSERT_TRUE(mm.AllocBlocks(0, SZ_4M, SZ_4M, ps, 0, &blocks).ok());
  ASSERT_TRUE(mm.AllocBlocks(SZ_4M, SZ_4M + SZ_2M, SZ_2M, ps, 0, &blocks).ok());
  ASSERT_TRUE(mm.AllocBlocks(SZ_4M + SZ_2M, mm_size, SZ_1M, ps, 0, &blocks).ok());
  EXPECT_EQ(mm.avail(), 0u);
  ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  ASSERT_TRUE(mm.AllocBlocks(0, mm_size, mm_size, ps, 0, &blocks).ok());
  EXPECT_EQ(mm.avail(), 0u);
  ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  ASSERT_TRUE(mm.Fini().ok());

  // Random contiguous slices allocated as exact ranges in random order.
  mm_size = SZ_16M;
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  {
    constexpr int kRanges = 16;
    std::uint64_t ranges[kRanges + 1];
    std::uint64_t remaining = mm_size;
    ranges[0] = 0;
    for (int i = 0; i < kRanges - 1; ++i) {
      const std::uint64_t max_chunk = remaining - (kRanges - 1 - i) * ps;
      const std::uint64_t sz = std::max(RoundUp(prng() % max_chunk, ps), ps);
      ranges[i + 1] = ranges[i] + sz;
      remaining -= sz;
    }
    ranges[kRanges] = mm_size;
    std::vector<int> order(kRanges);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), prng);
    for (int idx : order) {
      const std::uint64_t start = ranges[idx], end = ranges[idx + 1];
      ASSERT_TRUE(mm.AllocBlocks(start, end, end - start, ps, 0, &blocks).ok())
          << start << "-" << end;
    }
    EXPECT_EQ(mm.avail(), 0u);
    ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  }
  ASSERT_TRUE(mm.Fini().ok());

  // A partially allocated range cannot be taken; the free half still can.
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  ASSERT_TRUE(mm.AllocBlocks(0, mm_size / 2, mm_size / 2, ps, 0, &blocks).ok());
  EXPECT_FALSE(mm.AllocBlocks(0, mm_size, mm_size, ps, 0, &tmp).ok());
  EXPECT_FALSE(mm.AllocBlocks(0, mm_size / 2, mm_size / 2, ps, 0, &tmp).ok());
  ASSERT_TRUE(mm.AllocBlocks(mm_size / 2, mm_size, mm_size / 2, ps, 0, &blocks).ok());
  EXPECT_EQ(mm.avail(), 0u);
  EXPECT_TRUE(tmp.empty());
  ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  ASSERT_TRUE(mm.Fini().ok());

  // Checkerboard: a range over [allocated, free] fails, the free chunk alone works.
  mm_size = SZ_64K;
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  for (std::uint64_t off = 0; off < mm_size; off += 2 * ps) {
    ASSERT_TRUE(mm.AllocBlocks(off, off + ps, ps, ps, 0, &blocks).ok());
  }
  EXPECT_FALSE(mm.AllocBlocks(0, 2 * ps, 2 * ps, ps, 0, &tmp).ok());
  ASSERT_TRUE(mm.AllocBlocks(ps, 2 * ps, ps, ps, 0, &blocks).ok());
  EXPECT_TRUE(mm.Validate().ok());
  ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  ASSERT_TRUE(mm.Fini().ok());

  // Misaligned start, unaligned size, end past the mm.
  mm_size = SZ_16M;
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  EXPECT_EQ(mm.AllocBlocks(ps / 2, ps / 2 + ps, ps, ps, 0, &tmp).code(), Errc::kInvalid);
  EXPECT_EQ(mm.AllocBlocks(0, ps + 1, ps + 1, ps, 0, &tmp).code(), Errc::kInvalid);
  EXPECT_EQ(mm.AllocBlocks(mm_size, mm_size + ps, ps, ps, 0, &tmp).code(), Errc::kInvalid);
  ASSERT_TRUE(mm.Fini().ok());

  // Free and re-allocate the same exact range (merge on free, re-split on alloc).
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(mm.AllocBlocks(SZ_4M, SZ_4M + SZ_2M, SZ_2M, ps, 0, &blocks).ok()) << i;
    for (BuddyBlockId b : blocks) {
      EXPECT_GE(mm.BlockOffset(b), SZ_4M);
      EXPECT_LE(mm.BlockOffset(b) + mm.BlockSize(b), SZ_4M + SZ_2M);
    }
    EXPECT_EQ(Total(mm, blocks), SZ_2M);
    ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  }
  EXPECT_EQ(mm.avail(), mm_size);
  ASSERT_TRUE(mm.Fini().ok());

  // Power-of-two exact ranges at their natural alignment.
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  ASSERT_TRUE(mm.AllocBlocks(0, SZ_4K, SZ_4K, ps, 0, &blocks).ok());
  ASSERT_TRUE(mm.AllocBlocks(SZ_64K, 2 * SZ_64K, SZ_64K, ps, 0, &blocks).ok());
  ASSERT_TRUE(mm.AllocBlocks(SZ_1M, 2 * SZ_1M, SZ_1M, ps, 0, &blocks).ok());
  ASSERT_TRUE(mm.AllocBlocks(SZ_4M, 2 * SZ_4M, SZ_4M, ps, 0, &blocks).ok());
  EXPECT_EQ(Total(mm, blocks), SZ_4K + SZ_64K + SZ_1M + SZ_4M);
  ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  ASSERT_TRUE(mm.Fini().ok());
}

void ExpectInside(const BuddyAllocator& mm, const Blocks& blocks, std::uint64_t start,
                  std::uint64_t end) {
  for (BuddyBlockId b : blocks) {
    EXPECT_GE(mm.BlockOffset(b), start);
    EXPECT_LE(mm.BlockOffset(b) + mm.BlockSize(b), end);
  }
}

void RangeBias(std::uint32_t seed) {
  std::mt19937 prng(seed);
  const std::uint64_t bias_size = SZ_1M;
  std::uint64_t ps = std::bit_ceil(static_cast<std::uint64_t>(prng() % bias_size));
  ps = std::max(SZ_4K, ps);
  const std::uint64_t mm_size = (SZ_8M - 1) & ~(ps - 1);  // multiple roots
  SCOPED_TRACE(testing::Message() << "seed " << seed << " ps " << ps << " mm " << mm_size);
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  Blocks allocated;
  const std::uint64_t count = mm_size / bias_size;
  std::vector<std::uint64_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), prng);

  // Uniform bias windows in random order, several patterns in each; nothing may leak out.
  for (std::uint64_t i = 0; i < count; ++i) {
    Blocks tmp;
    const std::uint64_t bias_start = order[i] * bias_size;
    const std::uint64_t bias_end = bias_start + bias_size;
    std::uint64_t bias_rem = bias_size;
    EXPECT_FALSE(mm.AllocBlocks(bias_start, bias_end, bias_size + ps, bias_size, kBuddyRange,
                                &allocated)
                     .ok());  // internal round_up too big
    EXPECT_FALSE(
        mm.AllocBlocks(bias_start, bias_end, bias_size + ps, ps, kBuddyRange, &allocated).ok());
    EXPECT_FALSE(
        mm.AllocBlocks(bias_start + ps, bias_end, bias_size, ps, kBuddyRange, &allocated).ok());
    EXPECT_FALSE(mm.AllocBlocks(bias_start + ps, bias_end - ps, bias_size >> 1, bias_size >> 1,
                                kBuddyRange, &allocated)
                     .ok());  // misaligned
    ASSERT_TRUE(mm.AllocBlocks(bias_start, bias_end, bias_size, bias_size, kBuddyRange, &tmp).ok());
    ExpectInside(mm, tmp, bias_start, bias_end);
    ASSERT_TRUE(mm.FreeBlocks(&tmp, 0).ok());
    ASSERT_TRUE(mm.AllocBlocks(bias_start, bias_end, ps, bias_size, kBuddyRange, &tmp).ok());
    ExpectInside(mm, tmp, bias_start, bias_end);
    ASSERT_TRUE(mm.FreeBlocks(&tmp, 0).ok());

    std::uint64_t size = std::max(RoundUp(prng() % bias_rem, ps), ps);
    ASSERT_TRUE(mm.AllocBlocks(bias_start, bias_end, size, ps, kBuddyRange, &tmp).ok());
    ExpectInside(mm, tmp, bias_start, bias_end);
    bias_rem -= size;
    EXPECT_FALSE(
        mm.AllocBlocks(bias_start, bias_end, bias_rem + ps, ps, kBuddyRange, &allocated).ok());
    if (bias_rem != 0) {
      size = std::max(RoundUp(prng() % bias_rem, ps), ps);
      const std::size_t before = allocated.size();
      ASSERT_TRUE(mm.AllocBlocks(bias_start, bias_end, size, ps, kBuddyRange, &allocated).ok());
      ExpectInside(mm, Blocks(allocated.begin() + before, allocated.end()), bias_start, bias_end);
      ASSERT_TRUE(mm.FreeBlocks(&tmp, 0).ok());  // leave some space unallocated
    } else {
      allocated.insert(allocated.end(), tmp.begin(), tmp.end());
    }
    ASSERT_TRUE(mm.Validate().ok());
  }
  ASSERT_TRUE(mm.FreeBlocks(&allocated, 0).ok());
  ASSERT_TRUE(mm.Fini().ok());

  // Free-form: a random window that grows in random directions until it covers the mm.
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  std::uint64_t bias_start = RoundUp(prng() % (mm_size - ps), ps);
  std::uint64_t bias_end = RoundUp(bias_start + prng() % (mm_size - bias_start), ps);
  bias_end = std::max(bias_end, bias_start + ps);
  std::uint64_t bias_rem = bias_end - bias_start;
  do {
    const std::uint64_t size = std::max(RoundUp(prng() % bias_rem, ps), ps);
    const std::size_t before = allocated.size();
    ASSERT_TRUE(mm.AllocBlocks(bias_start, bias_end, size, ps, kBuddyRange, &allocated).ok())
        << bias_start << "-" << bias_end << " size " << size;
    ExpectInside(mm, Blocks(allocated.begin() + before, allocated.end()), bias_start, bias_end);
    bias_rem -= size;
    do {
      const std::uint64_t old_start = bias_start, old_end = bias_end;
      if (bias_start != 0) bias_start -= RoundUp(prng() % bias_start, ps);
      if (bias_end != mm_size) bias_end += RoundUp(prng() % (mm_size - bias_end), ps);
      bias_rem += old_start - bias_start;
      bias_rem += bias_end - old_end;
    } while (bias_rem == 0 && (bias_start != 0 || bias_end != mm_size));
  } while (bias_rem != 0);
  EXPECT_EQ(bias_start, 0u);
  EXPECT_EQ(bias_end, mm_size);
  EXPECT_FALSE(mm.AllocBlocks(bias_start, bias_end, ps, ps, kBuddyRange, &allocated).ok());
  ASSERT_TRUE(mm.FreeBlocks(&allocated, 0).ok());
  ASSERT_TRUE(mm.Fini().ok());

  // Clear requests in a window while nothing is clear: the fallback gives dirty blocks.
  ASSERT_TRUE(mm.Init(mm_size, ps).ok());
  bias_start = RoundUp(prng() % (mm_size - ps), ps);
  bias_end = RoundUp(bias_start + prng() % (mm_size - bias_start), ps);
  bias_end = std::max(bias_end, bias_start + ps);
  bias_rem = bias_end - bias_start;
  const std::uint64_t size = std::max(RoundUp(prng() % bias_rem, ps), ps);
  ASSERT_TRUE(
      mm.AllocBlocks(bias_start, bias_end, size, ps, kBuddyClear | kBuddyRange, &allocated).ok());
  for (BuddyBlockId b : allocated) EXPECT_FALSE(mm.BlockIsClear(b));
  ExpectInside(mm, allocated, bias_start, bias_end);
  ASSERT_TRUE(mm.FreeBlocks(&allocated, 0).ok());
  ASSERT_TRUE(mm.Fini().ok());
}

TEST(GpuBuddy, gpu_test_buddy_alloc_range_bias) {
  for (std::uint32_t seed : {1u, 2u, 3u, 0xdeadu, 0xbeefu, 77u}) RangeBias(seed);
}

TEST(GpuBuddy, gpu_test_buddy_alloc_exceeds_max_order) {
  const std::uint64_t mm_size = SZ_8G + SZ_2G, size = SZ_8G + SZ_1G, min_block_size = SZ_8G;
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(mm_size, SZ_4K).ok());
  Blocks blocks;
  ASSERT_TRUE(mm.AllocBlocks(0, mm_size, size, SZ_4K, kBuddyContiguous, &blocks).ok());
  EXPECT_EQ(Total(mm, blocks), size);
  ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
  EXPECT_EQ(mm.AllocBlocks(0, mm_size, size, min_block_size, 0, &blocks).code(), Errc::kInvalid);
  EXPECT_EQ(mm.AllocBlocks(0, mm_size, size, min_block_size, kBuddyRange, &blocks).code(),
            Errc::kInvalid);
  EXPECT_EQ(mm.AllocBlocks(0, mm_size, size, SZ_4K, kBuddyContiguous | kBuddyRange, &blocks).code(),
            Errc::kInvalid);
  EXPECT_TRUE(blocks.empty());
  ASSERT_TRUE(mm.Fini().ok());
}

TEST(GpuBuddy, gpu_test_buddy_offset_aligned_allocation) {
  const std::uint64_t mm_size = SZ_4M;
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(mm_size, SZ_4K).ok());
  const std::uint64_t num_blocks = mm_size / SZ_256K;
  Blocks allocated, freed;
  for (std::uint64_t i = 0; i < num_blocks; ++i) {
    ASSERT_TRUE(mm.AllocBlocks(0, mm_size, SZ_8K, SZ_256K, 0, &allocated).ok()) << i;
  }
  for (BuddyBlockId b : allocated) {
    EXPECT_EQ(mm.BlockSize(b), SZ_8K);
    EXPECT_EQ(mm.BlockOffset(b) % SZ_256K, 0u);
  }
  ASSERT_TRUE(mm.FreeBlocks(&allocated, 0).ok());
  for (std::uint64_t i = 0; i < num_blocks; ++i) {
    ASSERT_TRUE(mm.AllocBlocks(0, mm_size, SZ_16K, SZ_256K, 0, &allocated).ok()) << i;
  }
  for (BuddyBlockId b : allocated) {
    EXPECT_EQ(mm.BlockSize(b), SZ_16K);
    EXPECT_EQ(mm.BlockOffset(b) % SZ_256K, 0u);
  }
  // Free every other block, then the freed aligned slots (and only those) are usable again.
  Blocks kept;
  for (std::size_t i = 0; i < allocated.size(); ++i) {
    (i % 2 == 0 ? freed : kept).push_back(allocated[i]);
  }
  allocated = kept;
  ASSERT_TRUE(mm.FreeBlocks(&freed, 0).ok());
  for (std::uint64_t i = 0; i < num_blocks / 2; ++i) {
    ASSERT_TRUE(mm.AllocBlocks(0, mm_size, SZ_16K, SZ_256K, 0, &allocated).ok()) << i;
  }
  EXPECT_FALSE(mm.AllocBlocks(0, mm_size, SZ_16K, SZ_256K, 0, &allocated).ok());
  EXPECT_TRUE(mm.Validate().ok());
  ASSERT_TRUE(mm.FreeBlocks(&allocated, 0).ok());
  ASSERT_TRUE(mm.Fini().ok());
}

// Upstream checks the free tree's subtree_max_alignment augmentation; we keep no such field, so
// the same scenario checks the observable equivalent: the best offset alignment among free
// blocks, after each stage of aligned allocations and each reverse-order free.
TEST(GpuBuddy, gpu_test_buddy_subtree_offset_alignment_stress) {
  const std::uint64_t mm_size = SZ_2M;
  const std::uint64_t alignments[] = {SZ_1M,  SZ_512K, SZ_256K, SZ_128K,
                                      SZ_64K, SZ_32K,  SZ_16K,  SZ_8K};
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(mm_size, SZ_4K).ok());
  Blocks allocated[std::size(alignments)];
  for (std::size_t i = 0; i < std::size(alignments); ++i) {
    const std::uint64_t align = alignments[i];
    while (mm.AllocBlocks(0, mm_size, SZ_4K, align, 0, &allocated[i]).ok()) {
      EXPECT_EQ(mm.BlockOffset(allocated[i].back()) % align, 0u);
    }
    EXPECT_EQ(mm.MaxFreeAlignmentLog2(), static_cast<int>(internal::BuddyIlog2(align)) - 1);
  }
  for (std::size_t i = std::size(alignments); i-- > 0;) {
    ASSERT_TRUE(mm.FreeBlocks(&allocated[i], 0).ok());
    EXPECT_GE(mm.MaxFreeAlignmentLog2(), static_cast<int>(internal::BuddyIlog2(alignments[i])));
  }
  EXPECT_TRUE(mm.Validate().ok());
  ASSERT_TRUE(mm.Fini().ok());
}

// ---- our own cases ----

TEST(BuddyAllocator, InitAndArgumentErrors) {
  BuddyAllocator mm;
  Blocks out;
  EXPECT_EQ(mm.AllocBlocks(0, 4096, 4096, 4096, 0, &out).code(), Errc::kInvalid);  // no init
  EXPECT_EQ(mm.Init(4096, 3000).code(), Errc::kInvalid);
  EXPECT_EQ(mm.Init(1000, 4096).code(), Errc::kInvalid);
  ASSERT_TRUE(mm.Init(10 * SZ_4K + 100, SZ_4K).ok());  // rounded down to 10 chunks
  EXPECT_EQ(mm.size(), 10 * SZ_4K);
  EXPECT_EQ(mm.root_count(), 2u);                           // 8 + 2 chunks
  EXPECT_EQ(mm.Init(SZ_1M, SZ_4K).code(), Errc::kInvalid);  // already initialised
  EXPECT_EQ(mm.AllocBlocks(0, mm.size(), SZ_4K, SZ_4K * 3, 0, &out).code(), Errc::kInvalid);
  EXPECT_EQ(mm.AllocBlocks(0, mm.size(), SZ_4K, 1024, 0, &out).code(), Errc::kInvalid);
  EXPECT_EQ(mm.AllocBlocks(0, mm.size(), 0, SZ_4K, 0, &out).code(), Errc::kInvalid);
  EXPECT_EQ(mm.AllocBlocks(0, mm.size(), SZ_4K, SZ_4K, 0, nullptr).code(), Errc::kInvalid);
  EXPECT_EQ(mm.AllocBlocks(0, mm.size(), 11 * SZ_4K, SZ_4K, 0, &out).code(), Errc::kInvalid);
  // 9 contiguous chunks exceed the largest order; try harder finds them across both roots.
  ASSERT_TRUE(mm.AllocBlocks(0, mm.size(), 9 * SZ_4K, SZ_4K, kBuddyContiguous, &out).ok());
  EXPECT_EQ(Total(mm, out), 9 * SZ_4K);
  EXPECT_EQ(mm.AllocBlocks(0, mm.size(), 2 * SZ_4K, SZ_4K, kBuddyContiguous, &out).code(),
            Errc::kNoSpace);
  ASSERT_TRUE(mm.FreeBlocks(&out, kBuddyCleared).ok());
  EXPECT_EQ(mm.clear_avail(), 9 * SZ_4K);
  EXPECT_EQ(mm.FreeBlock(12345).code(), Errc::kInvalid);
  ASSERT_TRUE(mm.AllocBlocks(0, mm.size(), 3 * SZ_4K, SZ_4K, 0, &out).ok());
  Blocks bad = {out[0], 999999};
  EXPECT_EQ(mm.FreeBlocks(&bad, 0).code(), Errc::kInvalid);
  EXPECT_TRUE(mm.BlockIsAllocated(out[0]));  // nothing was freed
  Blocks twice = {out[0], out[1], out[0]};
  EXPECT_EQ(mm.FreeBlocks(&twice, 0).code(), Errc::kInvalid);
  EXPECT_TRUE(mm.BlockIsAllocated(out[0]));
  EXPECT_TRUE(mm.BlockIsAllocated(out[1]));
  EXPECT_TRUE(mm.Validate().ok());
  EXPECT_EQ(mm.Fini().code(), Errc::kBusy);
  ASSERT_TRUE(mm.FreeBlocks(&out, 0).ok());
  EXPECT_TRUE(mm.Fini().ok());
  EXPECT_FALSE(mm.initialized());
}

TEST(BuddyAllocator, TopDownTakesHighestOffsets) {
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(64 * SZ_4K, SZ_4K).ok());
  Blocks low, high;
  ASSERT_TRUE(mm.AllocBlocks(0, mm.size(), 4 * SZ_4K, SZ_4K, kBuddyTopDown, &high).ok());
  ASSERT_EQ(high.size(), 1u);
  EXPECT_EQ(mm.BlockOffset(high[0]), 60 * SZ_4K);
  ASSERT_TRUE(mm.AllocBlocks(0, mm.size(), SZ_4K, SZ_4K, kBuddyTopDown, &high).ok());
  EXPECT_EQ(mm.BlockOffset(high[1]), 59 * SZ_4K);
  ASSERT_TRUE(mm.FreeBlocks(&high, 0).ok());
  EXPECT_TRUE(mm.Fini().ok());
}

TEST(BuddyAllocator, TrimKeepsRequestedPartAndFreesTheRest) {
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(SZ_1M, SZ_4K).ok());
  Blocks got, trimmed;
  ASSERT_TRUE(mm.AllocBlocks(0, SZ_1M, SZ_64K, SZ_64K, 0, &got).ok());
  ASSERT_EQ(got.size(), 1u);
  const std::uint64_t base = mm.BlockOffset(got[0]);
  const std::uint64_t from = base + SZ_16K;
  EXPECT_EQ(mm.TrimBlock(got[0], &from, SZ_64K, &trimmed).code(), Errc::kInvalid);
  EXPECT_EQ(mm.TrimBlock(got[0], nullptr, 100, &trimmed).code(), Errc::kInvalid);
  ASSERT_TRUE(mm.TrimBlock(got[0], &from, 5 * SZ_4K, &trimmed).ok());
  EXPECT_EQ(Total(mm, trimmed), 5 * SZ_4K);
  for (BuddyBlockId b : trimmed) {
    EXPECT_GE(mm.BlockOffset(b), from);
    EXPECT_LE(mm.BlockOffset(b) + mm.BlockSize(b), from + 5 * SZ_4K);
  }
  EXPECT_EQ(mm.avail(), SZ_1M - 5 * SZ_4K);
  EXPECT_TRUE(mm.Validate().ok());
  ASSERT_TRUE(mm.FreeBlocks(&trimmed, 0).ok());
  EXPECT_EQ(mm.avail(), SZ_1M);
  EXPECT_TRUE(mm.Fini().ok());
}

TEST(BuddyAllocator, DebugStringShowsTotalsAndOrders) {
  BuddyAllocator mm;
  ASSERT_TRUE(mm.Init(12 * SZ_4K, SZ_4K).ok());
  Blocks b;
  ASSERT_TRUE(mm.AllocBlocks(0, mm.size(), SZ_4K, SZ_4K, 0, &b).ok());
  const std::string s = mm.DebugString();
  EXPECT_NE(s.find("chunk_size: 4096, total: 49152, free: 45056"), std::string::npos) << s;
  EXPECT_NE(s.find("order- 3 free: 1 blocks"), std::string::npos) << s;
  ASSERT_TRUE(mm.FreeBlocks(&b, 0).ok());
  EXPECT_TRUE(mm.Fini().ok());
}

// Randomized operations against a bitmap model: blocks are in range, aligned, disjoint; avail
// and clear_avail match; a plain request fails only when the model lacks the space; freeing
// everything restores one free block per root.
TEST(BuddyAllocator, RandomizedAgainstBitmapModel) {
  constexpr std::uint64_t kChunks = 1000;  // not a power of two: several roots
  for (std::uint32_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed);
    BuddyAllocator mm;
    ASSERT_TRUE(mm.Init(kChunks, 1).ok());
    std::vector<bool> used(kChunks, false);
    std::vector<Blocks> live;
    std::uint64_t model_used = 0;
    for (int step = 0; step < 3000; ++step) {
      const unsigned op = rng() % 10;
      if (op < 4 && !live.empty()) {
        const std::size_t i = rng() % live.size();
        for (BuddyBlockId b : live[i]) {
          for (std::uint64_t u = mm.BlockOffset(b); u < mm.BlockOffset(b) + mm.BlockSize(b); ++u) {
            used[u] = false;
          }
          model_used -= mm.BlockSize(b);
        }
        ASSERT_TRUE(mm.FreeBlocks(&live[i], rng() % 2 ? kBuddyCleared : 0).ok());
        live[i] = std::move(live.back());
        live.pop_back();
        continue;
      }
      const std::uint64_t min_block = std::uint64_t{1} << (rng() % 4);
      const std::uint64_t size = 1 + rng() % 40;
      unsigned flags = 0;
      std::uint64_t start = 0, end = kChunks;
      if (rng() % 3 == 0) {
        flags |= kBuddyRange;
        start = rng() % (kChunks - 64);
        end = start + 64 + rng() % (kChunks - start - 63);
      }
      if (rng() % 4 == 0) flags |= kBuddyTopDown;
      if (rng() % 4 == 0) flags |= kBuddyClear;
      if (rng() % 5 == 0) flags |= kBuddyContiguous;
      const bool aligned = size % min_block == 0;
      Blocks out;
      Status st = mm.AllocBlocks(start, end, size, min_block, flags, &out);
      if (!st.ok()) {
        ASSERT_TRUE(st.code() == Errc::kNoSpace || st.code() == Errc::kInvalid) << st.ToString();
        EXPECT_TRUE(out.empty());
        if (flags == 0 && min_block == 1) {
          ASSERT_GT(size + model_used, kChunks) << step;
        }
        continue;
      }
      std::uint64_t total = 0, lo = ~std::uint64_t{0}, hi = 0;
      for (BuddyBlockId b : out) {
        const std::uint64_t off = mm.BlockOffset(b), bs = mm.BlockSize(b);
        if (flags & kBuddyRange) {
          ASSERT_GE(off, start);
          ASSERT_LE(off + bs, end);
        }
        if (!(flags & kBuddyContiguous) && aligned) {
          ASSERT_EQ(off % min_block, 0u);
        }
        for (std::uint64_t u = off; u < off + bs; ++u) {
          ASSERT_FALSE(used[u]) << "overlap at " << u;
          used[u] = true;
        }
        total += bs;
        lo = std::min(lo, off);
        hi = std::max(hi, off + bs);
      }
      ASSERT_GE(total, size);
      if (flags & kBuddyContiguous) {
        ASSERT_EQ(hi - lo, total) << "not contiguous";
      }
      if (!(flags & kBuddyContiguous) && aligned) {
        ASSERT_EQ(total, size);
      }
      model_used += total;
      live.push_back(std::move(out));
      if (step % 25 == 0) {
        ASSERT_TRUE(mm.Validate().ok()) << mm.Validate().ToString();
        ASSERT_EQ(mm.avail(), kChunks - model_used);
        ASSERT_LE(mm.clear_avail(), mm.avail());
      }
    }
    for (auto& blocks : live) ASSERT_TRUE(mm.FreeBlocks(&blocks, 0).ok());
    EXPECT_EQ(mm.avail(), kChunks);
    ASSERT_TRUE(mm.Validate().ok());
    mm.ResetClear(false);
    int free_blocks = 0;
    mm.ForEachFreeBlock([&](std::uint64_t, std::uint64_t, bool) { ++free_blocks; });
    EXPECT_EQ(free_blocks, static_cast<int>(mm.root_count()));
    EXPECT_TRUE(mm.Fini().ok());
  }
}

}  // namespace
}  // namespace uttm
