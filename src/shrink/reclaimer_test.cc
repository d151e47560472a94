// Copyright (c) uttm developers.
//
// Tests of the Reclaimer: the do_shrink_slab arithmetic with shrinkers owning real memory,
// priority escalation, kShrinkStop/kShrinkEmpty, deferred work, and register/unregister races.

#include "uttm/reclaimer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "shrink/test_shrinkers.h"

namespace uttm {
namespace {

using testing::ChunkShrinker;
using testing::PageArenaShrinker;
using testing::RssAnonBytes;

constexpr std::uint64_t kF = 65536;  // pages (256 MiB) of the big test arenas

ReclaimContext Background() {
  ReclaimContext ctx;
  ctx.background = true;
  return ctx;
}

TEST(ReclaimerTest, RegisterRejectsNullAndDuplicates) {
  Stats stats;
  Reclaimer r(&stats);
  PageArenaShrinker a(16);
  EXPECT_EQ(r.Register(nullptr), Errc::kInvalid);
  ASSERT_TRUE(r.Register(&a).ok());
  Status dup = r.Register(&a);
  EXPECT_EQ(dup, Errc::kInvalid);
  EXPECT_NE(dup.message().find("already registered"), std::string_view::npos);
  EXPECT_EQ(r.num_shrinkers(), 1u);
  EXPECT_TRUE(r.Unregister(&a).ok());
  EXPECT_EQ(r.Unregister(&a), Errc::kNotFound);
  EXPECT_EQ(r.num_shrinkers(), 0u);
}

TEST(ReclaimerTest, DeltaFollowsPriorityAndSeeksAndFreesRealMemory) {
  Stats stats;
  Reclaimer r(&stats);
  PageArenaShrinker a(kF);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(r.Register(&a).ok());
  const std::uint64_t rss_before = RssAnonBytes();
  // Priority 6, seeks 2: delta = (65536 >> 6) * 4 / 2 = 2048 -> 16 batches of 128.
  ShrinkResult res = r.ShrinkRound(Background(), 6);
  EXPECT_EQ(res.freed, 2048u);
  EXPECT_EQ(res.scanned, 2048u);
  EXPECT_EQ(a.calls(), std::vector<std::uint64_t>(16, 128));
  EXPECT_EQ(a.resident(), kF - 2048);
  const std::uint64_t rss_after = RssAnonBytes();
  EXPECT_GE(rss_before - rss_after, 2048 * kPageSize * 9 / 10) << "RSS must drop by ~8 MiB";
  EXPECT_EQ(stats.Get(Stat::kShrinkerScans), 16u);
  EXPECT_EQ(stats.Get(Stat::kShrinkerPagesFreed), 2048u);
  auto snap = r.Snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].last_count, kF);
  EXPECT_EQ(snap[0].deferred, 0u);  // nr + delta - scanned = 0
  ASSERT_TRUE(r.Unregister(&a).ok());
}

TEST(ReclaimerTest, SeeksOneAndSeeksZero) {
  Reclaimer r;
  PageArenaShrinker::Options one;
  one.seeks = 1;
  PageArenaShrinker a(kF, one);
  ASSERT_TRUE(r.Register(&a).ok());
  // seeks 1: delta = (65536 >> 8) * 4 = 1024.
  EXPECT_EQ(r.ShrinkRound(Background(), 8).freed, 1024u);
  ASSERT_TRUE(r.Unregister(&a).ok());

  PageArenaShrinker::Options zero;
  zero.seeks = 0;
  PageArenaShrinker b(16384, zero);
  ASSERT_TRUE(r.Register(&b).ok());
  // seeks 0: delta = freeable / 2 whatever the priority.
  EXPECT_EQ(r.ShrinkRound(Background(), 12).freed, 8192u);
  EXPECT_EQ(b.calls().size(), 64u);
  ASSERT_TRUE(r.Unregister(&b).ok());
}

TEST(ReclaimerTest, BatchRemainderIsDeferredAndCarried) {
  Reclaimer r;
  PageArenaShrinker::Options o;
  o.batch = 352;  // the TTM pool shrinker's batch
  PageArenaShrinker a(kF, o);
  ASSERT_TRUE(r.Register(&a).ok());
  // p 8: delta = 512; one batch of 352, the remaining 160 < batch is deferred.
  EXPECT_EQ(r.ShrinkRound(Background(), 8).freed, 352u);
  EXPECT_EQ(r.Snapshot()[0].deferred, 160u);
  // Next round: total = (160 >> 8) + delta(freeable 65184 -> 508) = 508: one batch again;
  // deferred = 160 + 508 - 352 = 316.
  EXPECT_EQ(r.ShrinkRound(Background(), 8).freed, 352u);
  EXPECT_EQ(r.Snapshot()[0].deferred, 316u);
  EXPECT_EQ(a.calls(), (std::vector<std::uint64_t>{352, 352}));
  ASSERT_TRUE(r.Unregister(&a).ok());
}

TEST(ReclaimerTest, DeferredWorkAccumulatesIsShiftedByPriorityAndCapped) {
  Reclaimer r;
  PageArenaShrinker a(kF);
  ASSERT_TRUE(r.Register(&a).ok());
  // p 12: delta = 32 < batch: nothing scanned, all deferred.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(r.ShrinkRound(Background(), 12).freed, 0u);
  EXPECT_EQ(r.Snapshot()[0].deferred, 320u);
  EXPECT_TRUE(a.calls().empty());
  // p 5: total = (320 >> 5) + 4096 = 4106 -> 32 batches of 128; the rest (10) stays below batch.
  EXPECT_EQ(r.ShrinkRound(Background(), 5).freed, 4096u);
  EXPECT_EQ(a.calls().size(), 32u);
  EXPECT_EQ(r.Snapshot()[0].deferred, 320u);  // 320 + 4096 - 4096
  ASSERT_TRUE(r.Unregister(&a).ok());

  // Cap: seeks 0, 100 pages: delta 50 < batch and < freeable each round; deferred is capped
  // at 2 * freeable = 200.
  PageArenaShrinker::Options zero;
  zero.seeks = 0;
  PageArenaShrinker small(100, zero);
  ASSERT_TRUE(r.Register(&small).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.ShrinkRound(Background(), 12).freed, 0u);
  EXPECT_EQ(r.Snapshot()[0].deferred, 150u);
  // Round 4 at p 12: total = (150 >> 12) + 50 = 50, still nothing; deferred 200 (capped).
  EXPECT_EQ(r.ShrinkRound(Background(), 12).freed, 0u);
  EXPECT_EQ(r.ShrinkRound(Background(), 12).freed, 0u);
  EXPECT_EQ(r.Snapshot()[0].deferred, 200u);
  // p 0: total = min(200 + 50, 200) = 200 >= freeable: scans everything although < 2 batches.
  EXPECT_EQ(r.ShrinkRound(Background(), 0).freed, 100u);
  EXPECT_EQ(small.resident(), 0u);
  ASSERT_TRUE(r.Unregister(&small).ok());
}

TEST(ReclaimerTest, TightMemoryScansSmallShrinkerWhole) {
  Reclaimer r;
  PageArenaShrinker a(100);
  ASSERT_TRUE(r.Register(&a).ok());
  // p 1, 100 pages: delta = 50 * 4 / 2 = 100 = freeable -> one call of 100 (< batch).
  EXPECT_EQ(r.ShrinkRound(Background(), 1).freed, 100u);
  EXPECT_EQ(a.calls(), std::vector<std::uint64_t>{100});
  // Now empty: Count says kShrinkEmpty, no Scan, snapshot shows it.
  EXPECT_EQ(r.ShrinkRound(Background(), 0).freed, 0u);
  EXPECT_EQ(a.calls().size(), 1u);
  auto snap = r.Snapshot();
  EXPECT_TRUE(snap[0].last_empty);
  EXPECT_EQ(snap[0].last_count, 0u);
  ASSERT_TRUE(r.Unregister(&a).ok());
}

TEST(ReclaimerTest, NrScannedIsWhatCounts) {
  Reclaimer r;
  PageArenaShrinker::Options o;
  o.max_scanned_per_call = 64;  // reports half the work of each batch
  PageArenaShrinker a(kF, o);
  ASSERT_TRUE(r.Register(&a).ok());
  // p 6: total 2048, each call subtracts only 64: after 31 calls 64 remain (< batch, < freeable)
  // and are deferred; each call freed 128.
  ShrinkResult res = r.ShrinkRound(Background(), 6);
  EXPECT_EQ(a.calls().size(), 31u);
  EXPECT_EQ(res.scanned, 31u * 64u);
  EXPECT_EQ(res.freed, 31u * 128u);
  EXPECT_EQ(r.Snapshot()[0].scanned, 31u * 64u);
  EXPECT_EQ(r.Snapshot()[0].deferred, 64u);
  ASSERT_TRUE(r.Unregister(&a).ok());
}

TEST(ReclaimerTest, ShrinkStopEndsTheShrinkerForTheWholeShrinkCall) {
  Stats stats;
  Reclaimer r(&stats);
  PageArenaShrinker::Options o;
  o.name = "stopper";
  o.seeks = 0;
  o.stop_from_call = 3;
  PageArenaShrinker stopper(8192, o);
  PageArenaShrinker other(8192);
  ASSERT_TRUE(r.Register(&stopper).ok());
  ASSERT_TRUE(r.Register(&other).ok());
  // Target far above what exists: every priority runs; the stopper is called 3 times in round 1
  // (two batches of work, then kShrinkStop) and never again in this Shrink call.
  ShrinkResult res = r.Shrink(Background(), kDefPriority, 1u << 30);
  EXPECT_EQ(stopper.calls().size(), 3u);
  EXPECT_EQ(stopper.resident(), 8192u - 256u);
  EXPECT_EQ(res.rounds, kDefPriority + 1);
  EXPECT_EQ(res.last_priority, 0);
  EXPECT_EQ(other.resident(), 0u) << "the other shrinker keeps being driven down to priority 0";
  EXPECT_EQ(res.freed, 256u + 8192u);
  auto snap = r.Snapshot();
  EXPECT_EQ(snap[0].stops, 1u);
  EXPECT_EQ(snap[0].freed, 256u);
  // A new Shrink call is a new context: the stopper is asked again (and stops again).
  r.ShrinkRound(Background(), 0);
  EXPECT_EQ(stopper.calls().size(), 4u);
  EXPECT_NE(r.DebugString().find("stopper"), std::string::npos);
  ASSERT_TRUE(r.Unregister(&stopper).ok());
  ASSERT_TRUE(r.Unregister(&other).ok());
}

TEST(ReclaimerTest, EscalatesPriorityUntilTargetMet) {
  Reclaimer r;
  PageArenaShrinker a(kF);
  ASSERT_TRUE(r.Register(&a).ok());
  const std::uint64_t rss_before = RssAnonBytes();
  ShrinkResult res = r.Shrink(Background(), kDefPriority, 8192);
  EXPECT_GE(res.freed, 8192u);
  EXPECT_LT(res.freed, 3u * 8192u) << "stops at the first priority that meets the target";
  EXPECT_LT(res.last_priority, kDefPriority);
  EXPECT_GT(res.last_priority, 0);
  EXPECT_EQ(res.rounds, kDefPriority - res.last_priority + 1);
  EXPECT_GE(rss_before - RssAnonBytes(), res.freed * kPageSize * 9 / 10);
  ASSERT_TRUE(r.Unregister(&a).ok());
}

TEST(ReclaimerTest, DirectReclaimUsesDirectContext) {
  struct CtxShrinker : PageArenaShrinker {
    CtxShrinker() : PageArenaShrinker(4096) {}
    std::uint64_t Scan(ShrinkControl& sc) override {
      saw_background.store(sc.reclaim.background);
      return PageArenaShrinker::Scan(sc);
    }
    std::atomic<bool> saw_background{true};
  } s;
  Stats stats;
  Reclaimer r(&stats);
  ASSERT_TRUE(r.Register(&s).ok());
  EXPECT_GE(r.ReclaimDirect(512), 512u);
  EXPECT_FALSE(s.saw_background.load());
  EXPECT_EQ(stats.Get(Stat::kReclaimDirect), 1u);
  ReclaimHook* hook = &r;
  EXPECT_GE(hook->ReclaimPages(128, Background()), 128u);
  EXPECT_TRUE(s.saw_background.load());
  EXPECT_EQ(hook->ReclaimPages(0, Background()), 0u);
  ASSERT_TRUE(r.Unregister(&s).ok());
}

TEST(ReclaimerTest, ChunkShrinkerFreesWholeChunks) {
  Reclaimer r;
  ChunkShrinker c;
  for (int i = 0; i < 32; ++i) ASSERT_TRUE(c.AddChunk());  // 64 MiB
  ASSERT_TRUE(r.Register(&c).ok());
  EXPECT_EQ(r.CountFreeable(Background()), 32 * ChunkShrinker::kChunkPages);
  const std::uint64_t rss_before = RssAnonBytes();
  const std::uint64_t freed = r.ReclaimDirect(16 * ChunkShrinker::kChunkPages);
  EXPECT_GE(freed, 16 * ChunkShrinker::kChunkPages);
  EXPECT_EQ(c.held_pages() + freed, 32 * ChunkShrinker::kChunkPages);
  EXPECT_GE(rss_before - RssAnonBytes(), freed * kPageSize * 9 / 10);
  ASSERT_TRUE(r.Unregister(&c).ok());
}

// A shrinker that calls back into the reclaimer from Scan.
class ReentrantShrinker : public PageArenaShrinker {
 public:
  explicit ReentrantShrinker(Reclaimer* r) : PageArenaShrinker(1024), r_(r) {}
  std::uint64_t Scan(ShrinkControl& sc) override {
    unregister_status = r_->Unregister(this).code();
    nested_freed = r_->ReclaimPages(64, sc.reclaim);
    return PageArenaShrinker::Scan(sc);
  }
  Errc unregister_status = Errc::kOk;
  std::uint64_t nested_freed = 1;

 private:
  Reclaimer* r_;
};

TEST(ReclaimerTest, UnregisterOrReclaimFromInsideScanIsRefused) {
  Reclaimer r;
  ReentrantShrinker s(&r);
  ASSERT_TRUE(r.Register(&s).ok());
  EXPECT_GT(r.ShrinkRound(Background(), 0).freed, 0u);
  EXPECT_EQ(s.unregister_status, Errc::kDeadlock);
  EXPECT_EQ(s.nested_freed, 0u);
  EXPECT_EQ(r.num_shrinkers(), 1u);
  ASSERT_TRUE(r.Unregister(&s).ok());
}

// Checks that no call arrives after Unregister returned (then the object is destroyed: ASan
// would also report any later call as a use after free).
class GuardedShrinker : public PageArenaShrinker {
 public:
  GuardedShrinker() : PageArenaShrinker(256) {}
  std::uint64_t Count(const ShrinkControl& sc) override {
    if (gone.load()) late_calls.fetch_add(1);
    return PageArenaShrinker::Count(sc);
  }
  std::uint64_t Scan(ShrinkControl& sc) override {
    if (gone.load()) late_calls.fetch_add(1);
    std::this_thread::yield();
    return PageArenaShrinker::Scan(sc);
  }
  std::atomic<bool> gone{false};
  static std::atomic<int> late_calls;
};
std::atomic<int> GuardedShrinker::late_calls{0};

TEST(ReclaimerTest, RegisterUnregisterWhileScansRun) {
  Reclaimer r;
  PageArenaShrinker base(4096);
  ASSERT_TRUE(r.Register(&base).ok());
  std::atomic<bool> done{false};
  std::vector<std::thread> scanners;
  for (int t = 0; t < 2; ++t) {
    scanners.emplace_back([&] {
      while (!done.load()) {
        r.Shrink(Background(), 0, 64);
        base.Refill();
      }
    });
  }
  std::vector<std::thread> churners;
  std::atomic<int> cycles{0};
  for (int t = 0; t < 2; ++t) {
    churners.emplace_back([&] {
      for (int i = 0; i < 150; ++i) {
        auto s = std::make_unique<GuardedShrinker>();
        ASSERT_TRUE(r.Register(s.get()).ok());
        std::this_thread::yield();
        ASSERT_TRUE(r.Unregister(s.get()).ok());
        s->gone.store(true);
        s.reset();
        cycles.fetch_add(1);
      }
    });
  }
  for (auto& t : churners) t.join();
  done.store(true);
  for (auto& t : scanners) t.join();
  EXPECT_EQ(cycles.load(), 300);
  EXPECT_EQ(GuardedShrinker::late_calls.load(), 0);
  EXPECT_EQ(r.num_shrinkers(), 1u);
  ASSERT_TRUE(r.Unregister(&base).ok());
}

}  // namespace
}  // namespace uttm
