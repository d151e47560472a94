// Copyright (c) uttm developers.
//
// ReclaimThread with real memory: watermarks with hysteresis against our own accounting,
// Wake() targets, history, start/stop.

#include "uttm/reclaim_thread.h"

#include <gtest/gtest.h>

#include <thread>

#include "shrink/test_shrinkers.h"

namespace uttm {
namespace {

using testing::ChunkShrinker;
using testing::RssAnonBytes;

constexpr std::uint64_t kChunk = ChunkShrinker::kChunkBytes;

std::unique_ptr<BudgetSource> BudgetOf(ChunkShrinker* c, std::uint64_t budget) {
  return std::make_unique<BudgetSource>(
      "budget", [c] { return c->held_pages() * kPageSize; }, budget);
}

TEST(ReclaimThreadTest, RejectsBadOptions) {
  Reclaimer r;
  ReclaimThreadOptions o;
  o.low_watermark = 0.9;
  o.high_watermark = 0.8;
  ReclaimThread t(&r, o);
  EXPECT_EQ(t.Start(), Errc::kInvalid);
  ReclaimThread ok(&r);
  EXPECT_EQ(ok.AddSource(nullptr), Errc::kInvalid);
  ASSERT_TRUE(ok.Start().ok());
  EXPECT_EQ(ok.Start(), Errc::kAlready);
  EXPECT_EQ(ok.AddSource(std::make_unique<SystemMemorySource>(false)), Errc::kInvalid);
  ok.Stop();
  ok.Stop();
  EXPECT_FALSE(ok.running());
}

TEST(ReclaimThreadTest, WatermarkHysteresisBringsUsageToLowMark) {
  Reclaimer r;
  ChunkShrinker c;
  ASSERT_TRUE(r.Register(&c).ok());
  const std::uint64_t budget = 64 * kChunk;  // 128 MiB
  ReclaimThreadOptions o;
  o.period = std::chrono::milliseconds(5);
  ReclaimThread t(&r, o);
  ASSERT_TRUE(t.AddSource(BudgetOf(&c, budget)).ok());
  ASSERT_TRUE(t.Start().ok());
  // Up to 85 %: between the marks from below, so nothing happens.
  for (int i = 0; i < 54; ++i) ASSERT_TRUE(c.AddChunk());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(t.episodes(), 0u) << t.HistoryString();
  EXPECT_EQ(c.held_pages(), 54 * ChunkShrinker::kChunkPages);
  // Cross 90 %: one episode frees down to <= 80 % and no further than a few chunks below.
  const std::uint64_t rss_before = RssAnonBytes();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(c.AddChunk());  // 58 chunks = 90.6 %
  ASSERT_TRUE(t.WaitForEpisodes(1, std::chrono::seconds(5)));
  const std::uint64_t held = c.held_pages() * kPageSize;
  EXPECT_LE(held, budget * 8 / 10);
  EXPECT_GE(held, budget * 8 / 10 - 8 * kChunk) << "hysteresis stops near the low mark";
  EXPECT_GE(rss_before + 4 * kChunk - RssAnonBytes(), (58 * kChunk - held) * 9 / 10);
  // Now between the marks again: no more episodes.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(t.episodes(), 1u) << t.HistoryString();
  t.Stop();
  auto h = t.History();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].trigger, ReclaimTrigger::kWatermark);
  EXPECT_EQ(h[0].source, "budget");
  EXPECT_GT(h[0].freed_pages, 0u);
  EXPECT_GE(h[0].usage_before, budget * 9 / 10);
  EXPECT_LE(h[0].usage_after, budget * 8 / 10);
  EXPECT_EQ(h[0].limit_bytes, budget);
  ASSERT_TRUE(r.Unregister(&c).ok());
}

TEST(ReclaimThreadTest, WakeFreesAnExplicitTargetWithoutPressure) {
  Reclaimer r;
  ChunkShrinker c;
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(c.AddChunk());  // 128 MiB, no source at all
  ASSERT_TRUE(r.Register(&c).ok());
  ReclaimThreadOptions o;
  o.period = std::chrono::milliseconds(1000);  // only the wake can trigger it in time
  ReclaimThread t(&r, o);
  ASSERT_TRUE(t.Start().ok());
  t.Wake(16 * ChunkShrinker::kChunkPages);
  ASSERT_TRUE(t.WaitForEpisodes(1, std::chrono::seconds(5)));
  auto h = t.History();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].trigger, ReclaimTrigger::kWake);
  EXPECT_EQ(h[0].target_pages, 16 * ChunkShrinker::kChunkPages);
  EXPECT_GE(h[0].freed_pages, 16 * ChunkShrinker::kChunkPages);
  EXPECT_LE(c.held_pages(), 48 * ChunkShrinker::kChunkPages);
  // A bare Wake below every watermark does nothing but record an empty episode.
  t.Wake();
  ASSERT_TRUE(t.WaitForEpisodes(2, std::chrono::seconds(5)));
  EXPECT_EQ(t.History()[1].freed_pages, 0u);
  EXPECT_NE(t.HistoryString().find("wake"), std::string::npos);
  t.Stop();
  ASSERT_TRUE(r.Unregister(&c).ok());
}

TEST(ReclaimThreadTest, NoFutileEpisodesWhenNothingIsFreeable) {
  Stats stats;
  Reclaimer r(&stats);
  ChunkShrinker empty;  // answers kShrinkEmpty
  ASSERT_TRUE(r.Register(&empty).ok());
  ReclaimThreadOptions o;
  o.period = std::chrono::milliseconds(2);
  ReclaimThread t(&r, o);
  // 95 % of the budget is used by memory no shrinker owns.
  ASSERT_TRUE(t.AddSource(std::make_unique<BudgetSource>(
                              "other", [] { return 95u; }, 100))
                  .ok());
  ASSERT_TRUE(t.Start().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(t.episodes(), 0u) << t.HistoryString();
  t.Wake(10);  // an explicit request still runs (and records that nothing was freed)
  ASSERT_TRUE(t.WaitForEpisodes(1, std::chrono::seconds(5)));
  t.Stop();
  EXPECT_EQ(t.History()[0].freed_pages, 0u);
  EXPECT_EQ(stats.Get(Stat::kReclaimEpisodes), 1u);
  EXPECT_EQ(stats.Get(Stat::kShrinkerScans), 0u);
  ASSERT_TRUE(r.Unregister(&empty).ok());
}

TEST(ReclaimThreadTest, KeepsAnAllocatingThreadUnderItsBudget) {
  Reclaimer r;
  ChunkShrinker c;
  ASSERT_TRUE(r.Register(&c).ok());
  const std::uint64_t budget = 64 * kChunk;
  ReclaimThreadOptions o;
  o.period = std::chrono::milliseconds(2);
  // Wide margin (40 % of the budget, ~25 chunk allocations) so a busy 2-core machine that
  // delays the reclaim thread by tens of ms still keeps the allocator under its budget.
  o.high_watermark = 0.6;
  o.low_watermark = 0.4;
  ReclaimThread t(&r, o);
  ASSERT_TRUE(t.AddSource(BudgetOf(&c, budget)).ok());
  ASSERT_TRUE(t.Start().ok());
  std::uint64_t peak = 0;
  for (int i = 0; i < 3 * 64; ++i) {  // 3x the budget
    ASSERT_TRUE(c.AddChunk());
    peak = std::max(peak, c.held_pages() * kPageSize);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  t.Stop();
  EXPECT_GE(c.freed_total() * kPageSize, 2 * budget - 2 * kChunk);
  EXPECT_LT(peak, budget) << t.HistoryString();
  EXPECT_GE(t.episodes(), 2u);
  ASSERT_TRUE(r.Unregister(&c).ok());
}

}  // namespace
}  // namespace uttm
