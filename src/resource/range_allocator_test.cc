// Copyright (c) uttm developers.
//
// RangeAllocator tests: the portable cases of the kernel's drm_mm_test.c (suite DrmMm, named
// after the upstream cases), then our own cases and a randomized check against a bitmap model.
#include "resource/range_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "resource/range_bins.h"

namespace uttm {
namespace {

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

std::vector<std::pair<std::uint64_t, std::uint64_t>> Holes(const RangeAllocator& mm) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> holes;
  mm.ForEachHole([&](std::uint64_t s, std::uint64_t e) { holes.emplace_back(s, e); });
  return holes;
}

// drm_mm_test.c assert_one_hole / assert_no_holes.
void ExpectOneHole(const RangeAllocator& mm, std::uint64_t start, std::uint64_t end) {
  auto holes = Holes(mm);
  ASSERT_EQ(holes.size(), 1u);
  EXPECT_EQ(holes[0].first, start);
  EXPECT_EQ(holes[0].second, end);
  EXPECT_EQ(mm.hole_count(), 1u);
}

void ExpectNoHoles(RangeAllocator& mm) {
  EXPECT_TRUE(Holes(mm).empty());
  EXPECT_EQ(mm.hole_count(), 0u);
  mm.ForEachNode([](const RangeNode& n) { EXPECT_EQ(n.hole_after(), 0u); });
  RangeNode probe;
  EXPECT_EQ(mm.InsertNode(&probe, 1).code(), Errc::kNoSpace);
}

TEST(DrmMm, drm_test_mm_init) {
  const std::uint64_t size = 4096;
  RangeAllocator mm(0, size);
  EXPECT_TRUE(mm.clean());
  ExpectOneHole(mm, 0, size);

  RangeNode tmp;
  tmp.SetPlacement(0, size);
  ASSERT_TRUE(mm.ReserveNode(&tmp).ok());
  ExpectNoHoles(mm);

  ASSERT_TRUE(mm.RemoveNode(&tmp).ok());
  ExpectOneHole(mm, 0, size);
  EXPECT_TRUE(mm.Validate().ok());
}

TEST(DrmMm, drm_test_mm_debug) {
  RangeAllocator mm(0, 4096);
  RangeNode nodes[2];
  nodes[0].SetPlacement(512, 1024);
  ASSERT_TRUE(mm.ReserveNode(&nodes[0]).ok());
  nodes[1].SetPlacement(4096 - 512 - 1024, 1024);
  ASSERT_TRUE(mm.ReserveNode(&nodes[1]).ok());
  const std::string dump = mm.DebugString();
  // Two used ranges, three holes and the totals line.
  EXPECT_NE(dump.find("0x0000000000000200-0x0000000000000600: 1024: used"), std::string::npos)
      << dump;
  EXPECT_NE(dump.find("0x0000000000000a00-0x0000000000000e00: 1024: used"), std::string::npos)
      << dump;
  EXPECT_NE(dump.find("0x0000000000000600-0x0000000000000a00: 1024: free"), std::string::npos);
  EXPECT_NE(dump.find("total: 4096, used 2048 free 2048 (2 nodes, 3 holes)"), std::string::npos)
      << dump;
  ASSERT_TRUE(mm.RemoveNode(&nodes[0]).ok());
  ASSERT_TRUE(mm.RemoveNode(&nodes[1]).ok());
}

// drm_test_mm_align_pot: alignments 2^(max-1) .. 2^1 over [1, U64_MAX - 1), each node of
// 2^(bit-1) + 1 units, best-fit mode; each must land aligned with its size and color.
void AlignPot(int max) {
  RangeAllocator mm(1, kU64Max - 2);
  std::vector<std::unique_ptr<RangeNode>> nodes;
  for (int bit = max - 1; bit > 0; --bit) {
    const std::uint64_t align = std::uint64_t{1} << bit;
    const std::uint64_t size = (std::uint64_t{1} << (bit - 1)) + 1;
    nodes.push_back(std::make_unique<RangeNode>());
    RangeNode* node = nodes.back().get();
    RangeInsertOptions o;
    o.alignment = align;
    o.color = static_cast<std::uint64_t>(bit);
    ASSERT_TRUE(mm.InsertNode(node, size, o).ok()) << "alignment=" << align << " bit " << bit;
    EXPECT_TRUE(node->allocated());
    EXPECT_EQ(node->size(), size);
    EXPECT_EQ(node->start() % align, 0u) << "bit " << bit;
    EXPECT_EQ(node->color(), static_cast<std::uint64_t>(bit));
  }
  EXPECT_TRUE(mm.Validate().ok());
  for (auto& n : nodes) ASSERT_TRUE(mm.RemoveNode(n.get()).ok());
  ExpectOneHole(mm, 1, kU64Max - 1);
}

TEST(DrmMm, drm_test_mm_align32) { AlignPot(32); }
TEST(DrmMm, drm_test_mm_align64) { AlignPot(64); }

// drm_test_mm_once: [0, 7) with reserved units 1 and 5; a 2-unit node fits only in [2, 5).
void Once(RangeInsertMode mode) {
  RangeAllocator mm(0, 7);
  RangeNode lo, hi, node;
  lo.SetPlacement(1, 1);
  ASSERT_TRUE(mm.ReserveNode(&lo).ok());
  hi.SetPlacement(5, 1);
  ASSERT_TRUE(mm.ReserveNode(&hi).ok());
  EXPECT_NE(lo.hole_after(), 0u);
  EXPECT_NE(hi.hole_after(), 0u);
  RangeInsertOptions o;
  o.mode = mode;
  ASSERT_TRUE(mm.InsertNode(&node, 2, o).ok());
  EXPECT_GE(node.start(), 2u);
  EXPECT_LE(node.end(), 5u);
  EXPECT_EQ(node.start(), mode == RangeInsertMode::kLow ? 2u : 3u);
  ASSERT_TRUE(mm.RemoveNode(&node).ok());
  ASSERT_TRUE(mm.RemoveNode(&hi).ok());
  ASSERT_TRUE(mm.RemoveNode(&lo).ok());
  ExpectOneHole(mm, 0, 7);
}

TEST(DrmMm, drm_test_mm_lowest) { Once(RangeInsertMode::kLow); }
TEST(DrmMm, drm_test_mm_highest) { Once(RangeInsertMode::kHigh); }

// ---- our own cases ----

TEST(RangeAllocator, SizeClassesAreMonotoneAndBounded) {
  std::uint32_t prev = 0;
  for (std::uint64_t v = 1; v < 100000; ++v) {
    const std::uint32_t bin = internal::RangeBinOf(v);
    ASSERT_GE(bin, prev);
    ASSERT_LE(internal::RangeBinMin(bin), v);
    ASSERT_GT(internal::RangeBinMin(bin + 1), v);
    prev = bin;
  }
  EXPECT_EQ(internal::RangeBinOf(kU64Max), internal::kRangeBins - 1);
  // Below kRangeLinear every size has a class of its own.
  for (std::uint64_t v = 1; v < internal::kRangeLinear; ++v) {
    ASSERT_EQ(internal::RangeBinMin(internal::RangeBinOf(v)), v);
  }
}

// Errors as drm_mm's: misuse is kInvalid, a request no hole can ever take is kNoSpace (ENOSPC).
TEST(RangeAllocator, RejectsBadArguments) {
  RangeAllocator mm(100, 1000);
  RangeNode a, b;
  EXPECT_EQ(mm.InsertNode(&a, 0).code(), Errc::kNoSpace);
  EXPECT_EQ(mm.InsertNode(nullptr, 1).code(), Errc::kInvalid);
  RangeInsertOptions o;
  o.range_start = 2000;
  o.range_end = 3000;
  EXPECT_EQ(mm.InsertNode(&a, 1, o).code(), Errc::kNoSpace);  // disjoint
  o.range_start = 500;
  o.range_end = 500;
  EXPECT_EQ(mm.InsertNode(&a, 1, o).code(), Errc::kNoSpace);  // empty
  o.range_end = 504;
  EXPECT_EQ(mm.InsertNode(&a, 5, o).code(), Errc::kNoSpace);  // smaller than the request
  o.range_start = 600;
  o.range_end = 500;
  EXPECT_EQ(mm.InsertNode(&a, 1, o).code(), Errc::kInvalid);  // backwards: a caller bug
  EXPECT_EQ(mm.InsertNode(&a, 1001).code(), Errc::kNoSpace);
  EXPECT_EQ(mm.RemoveNode(&a).code(), Errc::kInvalid);  // never inserted
  ASSERT_TRUE(mm.InsertNode(&a, 10).ok());
  EXPECT_EQ(mm.InsertNode(&a, 10).code(), Errc::kInvalid);  // already allocated
  b.SetPlacement(50, 100);
  EXPECT_EQ(mm.ReserveNode(&b).code(), Errc::kNoSpace);  // below the span
  b.SetPlacement(1050, 100);
  EXPECT_EQ(mm.ReserveNode(&b).code(), Errc::kNoSpace);  // past the end
  b.SetPlacement(500, 0);
  EXPECT_EQ(mm.ReserveNode(&b).code(), Errc::kNoSpace);  // empty
  b.SetPlacement(a.start() + 5, 10);
  EXPECT_EQ(mm.ReserveNode(&b).code(), Errc::kNoSpace);  // overlaps a
  RangeAllocator other(0, 10);
  EXPECT_EQ(other.RemoveNode(&a).code(), Errc::kInvalid);  // foreign node
  EXPECT_EQ(mm.used(), 10u);
  EXPECT_TRUE(mm.Validate().ok());
  ASSERT_TRUE(mm.RemoveNode(&a).ok());
}

TEST(RangeAllocator, ModesPlaceAtBottomTopAndSmallestHole) {
  RangeAllocator mm(0, 1000);
  RangeNode r1, r2, n;
  r1.SetPlacement(100, 10);  // holes [0,100) [110,300) [310,1000)
  r2.SetPlacement(300, 10);
  ASSERT_TRUE(mm.ReserveNode(&r1).ok());
  ASSERT_TRUE(mm.ReserveNode(&r2).ok());
  RangeInsertOptions o;
  ASSERT_TRUE(mm.InsertNode(&n, 90, o).ok());  // best: the 100-unit hole
  EXPECT_EQ(n.start(), 0u);
  ASSERT_TRUE(mm.RemoveNode(&n).ok());
  ASSERT_TRUE(mm.InsertNode(&n, 150, o).ok());  // best: the 190-unit hole
  EXPECT_EQ(n.start(), 110u);
  ASSERT_TRUE(mm.RemoveNode(&n).ok());
  o.mode = RangeInsertMode::kLow;
  ASSERT_TRUE(mm.InsertNode(&n, 50, o).ok());
  EXPECT_EQ(n.start(), 0u);
  ASSERT_TRUE(mm.RemoveNode(&n).ok());
  o.mode = RangeInsertMode::kHigh;
  ASSERT_TRUE(mm.InsertNode(&n, 50, o).ok());
  EXPECT_EQ(n.start(), 950u);
  ASSERT_TRUE(mm.RemoveNode(&n).ok());
  // Range limits and non-power-of-two alignment.
  o.range_start = 120;
  o.range_end = 290;
  o.alignment = 7;
  ASSERT_TRUE(mm.InsertNode(&n, 20, o).ok());
  EXPECT_EQ(n.start(), 266u);  // highest multiple of 7 with start + 20 <= 290
  ASSERT_TRUE(mm.RemoveNode(&n).ok());
  o.mode = RangeInsertMode::kLow;
  ASSERT_TRUE(mm.InsertNode(&n, 20, o).ok());
  EXPECT_EQ(n.start(), 126u);
  ASSERT_TRUE(mm.RemoveNode(&n).ok());
  o.mode = RangeInsertMode::kBest;
  ASSERT_TRUE(mm.InsertNode(&n, 20, o).ok());
  EXPECT_EQ(n.start(), 126u);
  ASSERT_TRUE(mm.RemoveNode(&n).ok());
  o.range_start = 95;
  o.range_end = 115;
  o.alignment = 0;
  EXPECT_EQ(mm.InsertNode(&n, 6, o).code(), Errc::kNoSpace);  // 5 free units each side
  ASSERT_TRUE(mm.InsertNode(&n, 5, o).ok());
  EXPECT_EQ(n.start(), 95u);
  EXPECT_TRUE(mm.Validate().ok());
  ASSERT_TRUE(mm.RemoveNode(&n).ok());
  ASSERT_TRUE(mm.RemoveNode(&r1).ok());
  ASSERT_TRUE(mm.RemoveNode(&r2).ok());
  ExpectOneHole(mm, 0, 1000);
}

// Below 1024 units each size has its own class, so best fit is exact: the smallest hole that
// fits wins even among holes a unit apart, whatever order they were made in. Above, a class
// spans 12.5 % and its holes are compared.
TEST(RangeAllocator, BestFitIsExactBelowTheLinearClasses) {
  RangeAllocator mm(0, 100000);
  // Holes of 601, 600, 640, 1300, 1200 units (in that address order) between reserved nodes.
  const std::uint64_t holes[] = {601, 600, 640, 1300, 1200};
  RangeNode sep[6];
  std::uint64_t at = 0;
  std::uint64_t hole_start[5];
  for (int i = 0; i < 5; ++i) {
    sep[i].SetPlacement(at, 1);
    ASSERT_TRUE(mm.ReserveNode(&sep[i]).ok());
    hole_start[i] = at + 1;
    at += 1 + holes[i];
  }
  sep[5].SetPlacement(at, 100000 - at);
  ASSERT_TRUE(mm.ReserveNode(&sep[5]).ok());
  RangeNode n;
  const struct {
    std::uint64_t size;
    int hole;
  } cases[] = {{600, 1}, {599, 1}, {601, 0}, {602, 2}, {641, 4}, {1200, 4}, {1201, 3}};
  for (const auto& c : cases) {
    ASSERT_TRUE(mm.InsertNode(&n, c.size).ok()) << c.size;
    EXPECT_EQ(n.start(), hole_start[c.hole]) << c.size;
    ASSERT_TRUE(mm.RemoveNode(&n).ok());
  }
  EXPECT_EQ(mm.InsertNode(&n, 1301).code(), Errc::kNoSpace);  // no hole is that large
  EXPECT_TRUE(mm.Validate().ok());
}

// drm_mm_test.c's separate_adjacent_colors: a node never touches a node of another color.
void SeparateColors(void*, const RangeNode* before, const RangeNode* after, std::uint64_t color,
                    std::uint64_t* start, std::uint64_t* end) {
  if (before != nullptr && before->color() != color) ++*start;
  if (after != nullptr && after->color() != color) --*end;
}

TEST(RangeAllocator, ColorAdjustKeepsColorsApart) {
  std::vector<std::unique_ptr<RangeNode>> nodes;  // outlives the allocator, which detaches them
  RangeAllocator mm(0, 64);
  mm.SetColorAdjust(&SeparateColors, nullptr);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 40; ++i) {
    nodes.push_back(std::make_unique<RangeNode>());
    RangeInsertOptions o;
    o.color = rng() % 3;
    o.mode = static_cast<RangeInsertMode>(rng() % 3);
    if (!mm.InsertNode(nodes.back().get(), 1 + rng() % 3, o).ok()) nodes.pop_back();
  }
  ASSERT_GT(nodes.size(), 5u);
  const RangeNode* prev = nullptr;
  mm.ForEachNode([&](const RangeNode& n) {
    if (prev != nullptr && prev->hole_after() == 0) {
      EXPECT_EQ(prev->color(), n.color()) << "colors abut at " << n.start();
    }
    prev = &n;
  });
  RangeNode r;
  r.SetPlacement(nodes[0]->end(), 1, nodes[0]->color() + 1);
  if (nodes[0]->hole_after() != 0) {
    EXPECT_EQ(mm.ReserveNode(&r).code(), Errc::kNoSpace);
  }
  EXPECT_TRUE(mm.Validate().ok());
}

TEST(RangeAllocator, DestroyedNodeRemovesItself) {
  RangeAllocator mm(0, 10);
  {
    RangeNode n;
    ASSERT_TRUE(mm.InsertNode(&n, 3).ok());
    EXPECT_EQ(mm.used(), 3u);
  }
  EXPECT_EQ(mm.used(), 0u);
  EXPECT_TRUE(mm.clean());
  EXPECT_TRUE(mm.Validate().ok());
}

TEST(RangeAllocator, DestructorDetachesNodes) {
  RangeNode n;
  {
    RangeAllocator mm(0, 10);
    ASSERT_TRUE(mm.InsertNode(&n, 3).ok());
  }
  EXPECT_FALSE(n.allocated());
}

// Randomized operations against a bitmap reference model: no overlap, usage sums, holes equal
// the model's maximal free runs (so they coalesce), failures only when the model agrees nothing
// fits, and removing everything restores the single hole.
TEST(RangeAllocator, RandomizedAgainstBitmapModel) {
  constexpr std::uint64_t kBase = 1000;
  constexpr std::uint64_t kSize = 2048;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed);
    RangeAllocator mm(kBase, kSize);
    std::vector<bool> used(kSize, false);
    std::vector<std::unique_ptr<RangeNode>> live;
    auto largest_free_run = [&](std::uint64_t lo, std::uint64_t hi) {
      std::uint64_t best = 0, run = 0;
      for (std::uint64_t u = lo; u < hi; ++u) {
        run = used[u] ? 0 : run + 1;
        best = std::max(best, run);
      }
      return best;
    };
    for (int step = 0; step < 4000; ++step) {
      const unsigned op = rng() % 10;
      if (op < 4 && !live.empty()) {
        const std::size_t i = rng() % live.size();
        RangeNode* n = live[i].get();
        for (std::uint64_t u = n->start(); u < n->end(); ++u) used[u - kBase] = false;
        ASSERT_TRUE(mm.RemoveNode(n).ok());
        live[i] = std::move(live.back());
        live.pop_back();
      } else if (op < 9) {
        auto node = std::make_unique<RangeNode>();
        const std::uint64_t size = 1 + rng() % 64;
        RangeInsertOptions o;
        o.mode = static_cast<RangeInsertMode>(rng() % 3);
        const bool constrained = rng() % 2 == 0;
        if (constrained) {
          o.alignment = rng() % 9;
          o.range_start = kBase + rng() % kSize;
          o.range_end = o.range_start + 1 + rng() % (kBase + kSize - o.range_start);
        }
        // Where kLow / kHigh must put an unconstrained node: the first (last) free run that is
        // long enough, at its bottom (top).
        std::uint64_t low_fit = kU64Max, high_fit_end = kU64Max;
        for (std::uint64_t u = 0, run = 0; u < kSize; ++u) {
          run = used[u] ? 0 : run + 1;
          if (run == size && low_fit == kU64Max) low_fit = kBase + u + 1 - size;
          if (run >= size && (u + 1 == kSize || used[u + 1])) high_fit_end = kBase + u + 1;
        }
        Status st = mm.InsertNode(node.get(), size, o);
        if (st.ok() && !constrained && o.mode == RangeInsertMode::kLow) {
          ASSERT_EQ(node->start(), low_fit);
        }
        if (st.ok() && !constrained && o.mode == RangeInsertMode::kHigh) {
          ASSERT_EQ(node->end(), high_fit_end);
        }
        if (st.ok()) {
          ASSERT_GE(node->start(), std::max(kBase, o.range_start));
          ASSERT_LE(node->end(), std::min(kBase + kSize, o.range_end));
          if (o.alignment > 1) {
            ASSERT_EQ(node->start() % o.alignment, 0u);
          }
          for (std::uint64_t u = node->start(); u < node->end(); ++u) {
            ASSERT_FALSE(used[u - kBase]) << "overlap at " << u;
            used[u - kBase] = true;
          }
          live.push_back(std::move(node));
        } else {
          ASSERT_EQ(st.code(), Errc::kNoSpace) << st.ToString();
          if (!constrained) {
            ASSERT_LT(largest_free_run(0, kSize), size);
          }
        }
      } else {
        auto node = std::make_unique<RangeNode>();
        const std::uint64_t start = rng() % kSize, size = 1 + rng() % 16;
        node->SetPlacement(kBase + start, size);
        Status st = mm.ReserveNode(node.get());
        bool free = start + size <= kSize;
        for (std::uint64_t u = start; free && u < start + size; ++u) free = !used[u];
        if (start + size > kSize || !free) {
          ASSERT_EQ(st.code(), Errc::kNoSpace);
        } else {
          ASSERT_TRUE(st.ok()) << st.ToString();
          for (std::uint64_t u = start; u < start + size; ++u) used[u] = true;
          live.push_back(std::move(node));
        }
      }
      if (step % 50 == 0) {
        ASSERT_TRUE(mm.Validate().ok()) << mm.Validate().ToString();
        std::uint64_t model_used = std::count(used.begin(), used.end(), true);
        ASSERT_EQ(mm.used(), model_used);
        ASSERT_EQ(mm.node_count(), live.size());
        // Holes are exactly the maximal free runs of the model.
        std::vector<std::pair<std::uint64_t, std::uint64_t>> runs;
        for (std::uint64_t u = 0; u < kSize;) {
          if (used[u]) {
            ++u;
            continue;
          }
          std::uint64_t e = u;
          while (e < kSize && !used[e]) ++e;
          runs.emplace_back(kBase + u, kBase + e);
          u = e;
        }
        ASSERT_EQ(Holes(mm), runs);
      }
    }
    for (auto& n : live) ASSERT_TRUE(mm.RemoveNode(n.get()).ok());
    ExpectOneHole(mm, kBase, kBase + kSize);
    EXPECT_EQ(mm.used(), 0u);
    EXPECT_TRUE(mm.Validate().ok());
  }
}

}  // namespace
}  // namespace uttm
