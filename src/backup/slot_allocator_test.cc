// Copyright (c) uttm developers.
#include "backup/slot_allocator.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace uttm::internal {
namespace {

std::uint64_t Total(const std::vector<SlotExtent>& v) {
  std::uint64_t n = 0;
  for (const SlotExtent& e : v) n += e.count;
  return n;
}

TEST(SlotAllocatorTest, RunsComeFromTheTailAsOneExtent) {
  SlotAllocator a(1000);
  std::vector<SlotExtent> out;
  EXPECT_EQ(a.Allocate(10, &out), 10u);
  EXPECT_EQ(a.Allocate(5, &out), 5u);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (SlotExtent{0, 10}));
  EXPECT_EQ(out[1], (SlotExtent{10, 5}));
  EXPECT_EQ(a.used(), 15u);
  EXPECT_EQ(a.tail(), 15u);
}

TEST(SlotAllocatorTest, BestFitReusesTheSmallestHoleThatFits) {
  SlotAllocator a(1000);
  std::vector<SlotExtent> out;
  a.Allocate(100, &out);
  a.Free(10, 20);  // hole [10, 30)
  a.Free(50, 5);   // hole [50, 55)
  out.clear();
  EXPECT_EQ(a.Allocate(4, &out), 4u);
  EXPECT_EQ(out[0], (SlotExtent{50, 4}));  // the 5-hole, not the 20-hole
  out.clear();
  EXPECT_EQ(a.Allocate(20, &out), 20u);
  EXPECT_EQ(out[0], (SlotExtent{10, 20}));
  out.clear();
  EXPECT_EQ(a.Allocate(2, &out), 2u);  // only one free slot (54) below the tail: go to the tail
  EXPECT_EQ(out[0], (SlotExtent{100, 2}));
}

TEST(SlotAllocatorTest, FreeMergesNeighboursAndShrinksTheTail) {
  SlotAllocator a(1000);
  std::vector<SlotExtent> out;
  a.Allocate(30, &out);
  a.Free(0, 10);
  a.Free(20, 10);  // touches the tail: tail shrinks to 20
  EXPECT_EQ(a.tail(), 20u);
  EXPECT_EQ(a.free_extents(), 1u);
  a.Free(10, 10);  // merges with [0,10) and reaches the tail
  EXPECT_EQ(a.tail(), 0u);
  EXPECT_EQ(a.free_extents(), 0u);
  EXPECT_EQ(a.used(), 0u);
}

TEST(SlotAllocatorTest, AtCapacityGathersHolesLargestFirstThenStops) {
  SlotAllocator a(20);
  std::vector<SlotExtent> out;
  EXPECT_EQ(a.Allocate(18, &out), 18u);
  a.Free(2, 3);  // hole of 3
  a.Free(8, 5);  // hole of 5
  out.clear();
  EXPECT_EQ(a.Allocate(30, &out), 10u);  // 5 + 3 + 2 tail slots
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], (SlotExtent{8, 5}));
  EXPECT_EQ(out[1], (SlotExtent{2, 3}));
  EXPECT_EQ(out[2], (SlotExtent{18, 2}));
  out.clear();
  EXPECT_EQ(a.Allocate(1, &out), 0u);
  EXPECT_EQ(a.available(), 0u);
}

// Random allocate/free against a bitmap model: no slot is ever handed out twice, counts agree.
TEST(SlotAllocatorTest, RandomOperationsMatchABitmapModel) {
  constexpr std::uint64_t kMax = 4096;
  SlotAllocator a(kMax);
  std::vector<bool> taken(kMax, false);
  std::vector<SlotExtent> live;
  std::mt19937_64 rng(42);
  std::uint64_t used = 0;
  for (int step = 0; step < 20000; ++step) {
    if (live.empty() || rng() % 2 == 0) {
      std::vector<SlotExtent> out;
      const std::uint64_t want = 1 + rng() % 64;
      const std::uint64_t got = a.Allocate(want, &out);
      ASSERT_EQ(got, Total(out));
      ASSERT_EQ(got, std::min(want, kMax - used));
      for (const SlotExtent& e : out) {
        for (std::uint64_t s = e.start; s < e.start + e.count; ++s) {
          ASSERT_LT(s, kMax);
          ASSERT_FALSE(taken[s]) << "slot " << s << " handed out twice";
          taken[s] = true;
        }
        live.push_back(e);
      }
      used += got;
    } else {
      const std::size_t i = rng() % live.size();
      SlotExtent e = live[i];
      live[i] = live.back();
      live.pop_back();
      // Free a random part and keep the rest live.
      const std::uint64_t part = 1 + rng() % e.count;
      a.Free(e.start, part);
      for (std::uint64_t s = e.start; s < e.start + part; ++s) taken[s] = false;
      if (part < e.count) live.push_back({e.start + part, e.count - part});
      used -= part;
    }
    ASSERT_EQ(a.used(), used);
  }
}

}  // namespace
}  // namespace uttm::internal
