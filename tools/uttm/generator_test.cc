// Copyright (c) uttm developers.
#include "generator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "uttm/units.h"

namespace uttm::tool {
namespace {

Workload Load(std::string_view preset) {
  auto w = LoadPreset(preset);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return *w;
}

// Every op of every phase of one lane (op-bound phases).
std::vector<Op> AllOps(const Workload& w, std::uint32_t lane) {
  LaneGenerator g(w, lane);
  std::vector<Op> ops = g.InitialOps();
  for (std::size_t p = 0; p < w.phases.size(); ++p) {
    for (std::uint64_t i = 0; i < g.PhaseOps(p); ++i) ops.push_back(g.Next(p));
  }
  return ops;
}

TEST(GeneratorTest, Deterministic) {
  for (std::string_view preset : {"demo", "churn", "purgeable-cache", "streaming"}) {
    Workload w = Load(preset);
    for (std::uint32_t lane = 0; lane < w.Lanes(); ++lane) {
      EXPECT_EQ(AllOps(w, lane), AllOps(w, lane)) << preset << " lane " << lane;
    }
    Workload other = w;
    other.seed = w.seed + 1;
    EXPECT_NE(AllOps(w, 0), AllOps(other, 0)) << preset;
  }
}

TEST(GeneratorTest, PhaseOpsSplitExactlyOverLanes) {
  Workload w = Load("demo");
  w.phases[0].ops = 1001;
  w.phases[0].threads = 3;
  std::uint64_t sum = 0;
  for (std::uint32_t lane = 0; lane < w.Lanes(); ++lane) sum += LaneGenerator(w, lane).PhaseOps(0);
  EXPECT_EQ(sum, 1001u);
}

TEST(GeneratorTest, InitialPopulationIndependentOfLaneCount) {
  Workload one = Load("demo");
  for (Phase& p : one.phases) p.threads = 1;
  Workload three = one;
  three.phases[0].threads = 3;
  auto collect = [](const Workload& w) {
    std::map<std::uint64_t, std::pair<std::uint64_t, bool>> by_id;
    for (std::uint32_t lane = 0; lane < w.Lanes(); ++lane) {
      for (const Op& op : LaneGenerator(w, lane).InitialOps()) {
        EXPECT_EQ(op.kind, OpKind::kCreate);
        EXPECT_EQ(op.buffer % w.Lanes(), lane);
        EXPECT_TRUE(by_id.emplace(op.buffer, std::make_pair(op.size, op.purgeable)).second);
      }
    }
    return by_id;
  };
  auto a = collect(one), b = collect(three);
  EXPECT_EQ(a.size(), one.InitialBuffers());
  EXPECT_EQ(a, b);
}

TEST(GeneratorTest, PurgeableShareIsExactPerClass) {
  Workload w = Load("demo");
  std::map<std::uint32_t, std::pair<int, int>> per_class;  // purgeable, total
  for (std::uint32_t lane = 0; lane < w.Lanes(); ++lane) {
    for (const Op& op : LaneGenerator(w, lane).InitialOps()) {
      per_class[op.class_index].first += op.purgeable ? 1 : 0;
      per_class[op.class_index].second += 1;
    }
  }
  for (std::uint32_t c = 0; c < w.classes.size(); ++c) {
    EXPECT_EQ(per_class[c].second, static_cast<int>(w.classes[c].count));
    EXPECT_EQ(per_class[c].first,
              static_cast<int>(std::floor(w.classes[c].count * w.classes[c].purgeable)));
  }
}

// Replays the ops of a lane against a model of the application's view and checks every op is
// legal: ids unique, sizes in range, only live buffers touched, DONTNEED buffers not accessed.
TEST(GeneratorTest, OpsAreConsistentWithBufferState) {
  for (std::string_view preset : {"demo", "churn", "purgeable-cache"}) {
    Workload w = Load(preset);
    for (std::uint32_t lane = 0; lane < w.Lanes(); ++lane) {
      struct State {
        std::uint64_t size;
        bool purgeable, dontneed;
      };
      std::map<std::uint64_t, State> live;
      std::set<std::uint64_t> ever;
      std::map<OpKind, int> kinds;
      for (const Op& op : AllOps(w, lane)) {
        ++kinds[op.kind];
        ASSERT_EQ(op.buffer % w.Lanes(), lane);
        ASSERT_LT(op.class_index, w.classes.size());
        if (op.kind == OpKind::kCreate) {
          const SizeDist& d = w.classes[op.class_index].size;
          ASSERT_TRUE(ever.insert(op.buffer).second) << "id reused";
          ASSERT_EQ(op.size % kPageSize, 0u);
          ASSERT_GE(op.size, d.min);
          ASSERT_LT(op.size, d.max + kPageSize);
          live[op.buffer] = State{op.size, op.purgeable, false};
          continue;
        }
        auto it = live.find(op.buffer);
        ASSERT_NE(it, live.end()) << OpKindName(op.kind) << " of a dead buffer";
        ASSERT_EQ(op.size, it->second.size);
        switch (op.kind) {
          case OpKind::kRead:
          case OpKind::kWrite:
            ASSERT_FALSE(it->second.dontneed);
            ASSERT_GT(op.num_pages, 0u);
            ASSERT_LE((op.first_page + op.num_pages) * kPageSize, op.size);
            break;
          case OpKind::kMadviseDontNeed:
            ASSERT_TRUE(it->second.purgeable);
            ASSERT_FALSE(it->second.dontneed);
            it->second.dontneed = true;
            break;
          case OpKind::kMadviseWillNeed:
            ASSERT_TRUE(it->second.dontneed);
            it->second.dontneed = false;
            break;
          case OpKind::kFree:
            live.erase(it);
            break;
          case OpKind::kCreate:
            break;
        }
      }
      if (preset == "churn") {
        EXPECT_GT(kinds[OpKind::kFree], 1000);
      } else if (preset == "purgeable-cache") {
        EXPECT_GT(kinds[OpKind::kMadviseDontNeed], 100);
        EXPECT_GT(kinds[OpKind::kMadviseWillNeed], 100);
      }
    }
  }
}

TEST(GeneratorTest, MixAndZipfSkew) {
  Workload w = Load("demo");
  w.phases.resize(1);
  w.phases[0].ops = 20000;
  w.phases[0].threads = 1;
  w.phases[0].mix = OpMix{.read = 3, .write = 1};
  LaneGenerator g(w, 0);
  std::vector<Op> init = g.InitialOps();
  std::map<std::uint64_t, int> hits;
  int reads = 0;
  for (int i = 0; i < 20000; ++i) {
    Op op = g.Next(0);
    reads += op.kind == OpKind::kRead;
    ++hits[op.buffer];
  }
  EXPECT_NEAR(reads / 20000.0, 0.75, 0.02);
  // Zipf over the creation order: the first buffer is the most popular, far above the median.
  int first = hits[init[0].buffer];
  for (const auto& [id, n] : hits) EXPECT_LE(n, first);
  EXPECT_GT(first, 20000 / 20);
}

TEST(GeneratorTest, SequentialVisitsBuffersInOrderAndSpanLimitsPages) {
  Workload w = Load("streaming");
  w.phases[0].threads = 1;
  LaneGenerator g(w, 0);
  std::vector<Op> init = g.InitialOps();
  for (std::size_t i = 0; i < 2 * init.size(); ++i) {
    Op op = g.Next(0);
    EXPECT_EQ(op.buffer, init[i % init.size()].buffer);
    EXPECT_EQ(op.first_page, 0u);
    EXPECT_EQ(op.num_pages, op.size / kPageSize);  // span 0: the whole buffer
  }
  w.access.span_pages = 8;
  LaneGenerator h(w, 0);
  (void)h.InitialOps();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(h.Next(0).num_pages, 8u);
}

TEST(GeneratorTest, SizeDistributions) {
  Rng rng(1);
  SizeDist log{SizeDist::Kind::kLogUniform, 4096, 4096 * 1024};
  int below_geo_mean = 0;
  for (int i = 0; i < 10000; ++i) {
    std::uint64_t s = SampleSize(log, rng);
    ASSERT_GE(s, 4096u);
    ASSERT_LE(s, 4096u * 1024);
    below_geo_mean += s < 4096u * 32;
  }
  EXPECT_NEAR(below_geo_mean / 10000.0, 0.5, 0.03);  // the median of log-uniform is sqrt(min*max)
  EXPECT_EQ(SampleSize(SizeDist{SizeDist::Kind::kFixed, 5000, 5000}, rng), 8192u);
}

}  // namespace
}  // namespace uttm::tool
