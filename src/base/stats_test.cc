// Copyright (c) uttm developers.
#include "uttm/stats.h"

#include "uttm/stat_source.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace uttm {
namespace {

TEST(Stats, CountersAccumulateAcrossThreads) {
  Stats stats;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) stats.Add(Stat::kPagesBackedUp);
      stats.Add(Stat::kStoreBytesWritten, 4096);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(stats.Get(Stat::kPagesBackedUp), 80000u);
  EXPECT_EQ(stats.Get(Stat::kStoreBytesWritten), 8u * 4096);
  EXPECT_EQ(stats.Get(Stat::kPagesRestored), 0u);
}

TEST(Stats, GaugesTrackPeak) {
  Stats stats;
  stats.GaugeAdd(Stat::kPoolPages, 10);
  stats.GaugeAdd(Stat::kPoolPages, 5);
  stats.GaugeAdd(Stat::kPoolPages, -12);
  EXPECT_EQ(stats.Current(Stat::kPoolPages), 3);
  EXPECT_EQ(stats.Peak(Stat::kPoolPages), 15);
  stats.GaugeSet(Stat::kPoolPages, 20);
  EXPECT_EQ(stats.Peak(Stat::kPoolPages), 20);
  stats.Reset();
  EXPECT_EQ(stats.Current(Stat::kPoolPages), 0);
  EXPECT_EQ(stats.Peak(Stat::kPoolPages), 0);
}

TEST(Stats, NamesAreUniqueAndDotted) {
  std::set<std::string> names;
  for (unsigned i = 0; i < kNumStats; ++i) {
    std::string name = Stats::Name(static_cast<Stat>(i));
    EXPECT_NE(name.find('.'), std::string::npos) << name;
    EXPECT_TRUE(names.insert(name).second) << "duplicate " << name;
    EXPECT_STRNE(Stats::Unit(static_cast<Stat>(i)), "");
  }
  EXPECT_TRUE(Stats::IsGauge(Stat::kPoolPages));
  EXPECT_FALSE(Stats::IsGauge(Stat::kEvictions));
}

TEST(Stats, TextAndJson) {
  Stats stats;
  stats.Add(Stat::kEvictions, 3);
  stats.GaugeAdd(Stat::kBufferObjects, 7);
  std::string text = stats.ToText();
  EXPECT_NE(text.find("bo.evictions"), std::string::npos);
  EXPECT_NE(text.find("bo.count"), std::string::npos);
  std::string json = stats.ToJson();
  EXPECT_EQ(json.rfind("{\"schema\":\"uttm.stats\",\"version\":1,", 0), 0u) << json;
  EXPECT_NE(json.find("\"bo.evictions\":3"), std::string::npos) << json;
  EXPECT_NE(json.find("\"bo.count\":{\"current\":7,\"peak\":7}"), std::string::npos) << json;
  // Balanced braces: a cheap structural check (the cli tests parse it with a real JSON library).
  int depth = 0;
  for (char c : json) {
    depth += (c == '{') - (c == '}');
    ASSERT_GE(depth, 0);
  }
  EXPECT_EQ(depth, 0);
}

// A source keeping one counter and one gauge itself, as the page pool does.
class CountingSource final : public StatSource {
 public:
  void CollectStats(StatValues* values) const override {
    values->counter[static_cast<unsigned>(Stat::kPoolHits)] += hits;
    values->current[static_cast<unsigned>(Stat::kPoolPages)] += pages;
    values->peak[static_cast<unsigned>(Stat::kPoolPages)] += peak;
  }
  void ResetStats() override {
    hits = 0;
    peak = pages;
  }
  std::uint64_t hits = 0;
  std::int64_t pages = 0;
  std::int64_t peak = 0;
};

TEST(Stats, ReadsIncludeAttachedSources) {
  Stats stats;
  CountingSource a;
  CountingSource b;
  stats.Add(Stat::kPoolHits, 1);
  stats.AddSource(&a);
  stats.AddSource(&b);
  a.hits = 5;
  a.pages = 3;
  a.peak = 8;
  b.hits = 2;
  b.pages = 1;
  b.peak = 1;
  EXPECT_EQ(stats.Get(Stat::kPoolHits), 8u);
  EXPECT_EQ(stats.Current(Stat::kPoolPages), 4);
  EXPECT_EQ(stats.Peak(Stat::kPoolPages), 9);  // sum of the attached sources' peaks
  EXPECT_NE(stats.ToJson().find("\"pool.hits\":8"), std::string::npos) << stats.ToJson();
  EXPECT_NE(stats.ToJson().find("\"pool.pages\":{\"current\":4,\"peak\":9}"), std::string::npos)
      << stats.ToJson();
  EXPECT_NE(stats.ToText().find("pool.hits"), std::string::npos);

  // Reset: counters restart, the kept gauge stays truthful and its peak restarts there.
  stats.Reset();
  EXPECT_EQ(stats.Get(Stat::kPoolHits), 0u);
  EXPECT_EQ(stats.Current(Stat::kPoolPages), 4);
  EXPECT_EQ(stats.Peak(Stat::kPoolPages), 4);

  // Detaching folds the last values in: counters never go backwards, the peak is kept.
  a.hits = 7;
  a.pages = 0;
  a.peak = 6;
  stats.RemoveSource(&a);
  stats.RemoveSource(&a);  // unknown now: ignored
  a.hits = 1000;           // no longer read
  EXPECT_EQ(stats.Get(Stat::kPoolHits), 7u);
  EXPECT_EQ(stats.Current(Stat::kPoolPages), 1);
  EXPECT_EQ(stats.Peak(Stat::kPoolPages), 6 + 1);
  stats.RemoveSource(&b);
  EXPECT_EQ(stats.Get(Stat::kPoolHits), 7u);
  EXPECT_EQ(stats.Current(Stat::kPoolPages), 1);
  EXPECT_EQ(stats.Peak(Stat::kPoolPages), 7);  // never goes down
}

TEST(Stats, SourcesThatFollowOneAnotherKeepAnExactPeak) {
  Stats stats;
  for (int round = 0; round < 3; ++round) {
    CountingSource pool;
    stats.AddSource(&pool);
    pool.pages = 8;
    pool.peak = 8;
    EXPECT_EQ(stats.Peak(Stat::kPoolPages), 8) << round;
    pool.pages = 0;  // emptied before it goes, as PagePool::Fini does
    stats.RemoveSource(&pool);
    EXPECT_EQ(stats.Peak(Stat::kPoolPages), 8) << round;
    EXPECT_EQ(stats.Current(Stat::kPoolPages), 0) << round;
  }
}

// A source with atomic values, so a reader thread may look at it while its owner changes it.
class AtomicSource final : public StatSource {
 public:
  void CollectStats(StatValues* values) const override {
    values->counter[static_cast<unsigned>(Stat::kPoolHits)] += hits.load();
  }
  void ResetStats() override { hits = 0; }
  std::atomic<std::uint64_t> hits{0};
};

TEST(Stats, ReadsNeverSeeADetachingSourceTwiceOrNotAtAll) {
  Stats stats;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> detached{0};
  std::thread churn([&] {
    for (int i = 0; i < 2000; ++i) {
      AtomicSource source;
      stats.AddSource(&source);
      source.hits = 1;
      stats.RemoveSource(&source);
      detached.fetch_add(1);
    }
    done = true;
  });
  std::uint64_t last = 0;
  std::uint64_t reads = 0;
  do {
    const std::uint64_t low = detached.load();
    const std::uint64_t seen = stats.Get(Stat::kPoolHits);
    const std::uint64_t high = detached.load() + 1;  // + the one attached right now, if any
    ASSERT_GE(seen, last) << "a counter went backwards";
    ASSERT_GE(seen, low);
    ASSERT_LE(seen, high) << "a detaching source was counted twice";
    last = seen;
    ++reads;
  } while (!done.load());
  churn.join();
  EXPECT_EQ(stats.Get(Stat::kPoolHits), 2000u);
  EXPECT_GT(reads, 0u);
}

TEST(Stats, DefaultIsOneInstance) { EXPECT_EQ(&Stats::Default(), &Stats::Default()); }

}  // namespace
}  // namespace uttm
