// Copyright (c) uttm developers.
//
// Upstream ttm_pool_test.c cases (drivers/gpu/drm/ttm/tests/ttm_pool_test.c) plus the pool's own
// contract.
#include "uttm/page_pool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <stop_token>
#include <vector>

#include "uttm/memory_context.h"
#include "uttm/page_vector.h"
#include "uttm/reclaim_hook.h"

namespace uttm {
namespace {

using unit_literals::operator""_KiB;

std::unique_ptr<PageVector> MakeVector(MemoryContext* ctx, std::size_t pages, Caching caching) {
  auto v = PageVector::Create(ctx, {.size = Bytes(pages * kPageSize), .caching = caching});
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return std::move(*v);
}

struct AllocBasicParam {
  const char* name;
  unsigned order_pages_log2;  // vector of 2^x pages
  bool dma32;
};

class TtmPoolAllocBasic : public ::testing::TestWithParam<AllocBasicParam> {};

// ttm_pool_alloc_basic: 1 page, order 2, order MAX+1 (and the "dma" variants, adapted to dma32
// accounting: user space has no DMA addresses).
TEST_P(TtmPoolAllocBasic, ttm_pool_alloc_basic) {
  Stats stats;
  MemoryContext ctx({.stats = &stats});
  const std::size_t pages = std::size_t{1} << GetParam().order_pages_log2;
  auto v = PageVector::Create(
      &ctx,
      {.size = Bytes(pages * kPageSize), .caching = Caching::kCached, .dma32 = GetParam().dma32});
  ASSERT_TRUE(v.ok());
  OperationContext op;
  ASSERT_TRUE((*v)->Populate(op).ok());
  EXPECT_EQ((*v)->num_pages().value(), pages);
  if (GetParam().order_pages_log2 <= kMaxPageOrder) {
    EXPECT_EQ((*v)->slot_order(0), static_cast<int>(GetParam().order_pages_log2));
  } else {
    EXPECT_EQ((*v)->slot_order(0), static_cast<int>(kMaxPageOrder));
    EXPECT_EQ((*v)->slot_order(pages - 1), -1);  // a tail of the last max-order chunk
    EXPECT_EQ((*v)->slot_order(pages - 512), static_cast<int>(kMaxPageOrder));
  }
  EXPECT_EQ(ctx.dma32_pages_allocated().value(), GetParam().dma32 ? pages : 0u);
  EXPECT_EQ(ctx.pages_allocated().value(), pages);
  (*v)->Unpopulate();
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
  EXPECT_EQ(ctx.dma32_pages_allocated().value(), 0u);
}

INSTANTIATE_TEST_SUITE_P(ttm_pool, TtmPoolAllocBasic,
                         ::testing::Values(AllocBasicParam{"one_page", 0, false},
                                           AllocBasicParam{"order_2", 2, false},
                                           AllocBasicParam{"max_order_plus_1", 10, false},
                                           AllocBasicParam{"one_page_dma32", 0, true},
                                           AllocBasicParam{"max_order_plus_1_dma32", 10, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ttm_pool, ttm_pool_alloc_order_caching_match) {
  MemoryContext ctx;
  OperationContext op;
  auto filler = MakeVector(&ctx, 1, Caching::kUncached);
  ASSERT_TRUE(filler->Populate(op).ok());
  std::byte* page = filler->PageAddress(0);
  filler->Unpopulate();
  ASSERT_EQ(ctx.pool().chunk_count(Caching::kUncached, PageOrder(0)), 1u);
  auto v = MakeVector(&ctx, 1, Caching::kUncached);
  ASSERT_TRUE(v->Populate(op).ok());
  EXPECT_EQ(v->PageAddress(0), page);
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kUncached, PageOrder(0)), 0u);
}

TEST(ttm_pool, ttm_pool_alloc_caching_mismatch) {
  MemoryContext ctx({.pool_cached = true});
  OperationContext op;
  auto cached = MakeVector(&ctx, 1, Caching::kCached);
  ASSERT_TRUE(cached->Populate(op).ok());
  cached->Unpopulate();
  ASSERT_EQ(ctx.pool().chunk_count(Caching::kCached, PageOrder(0)), 1u);
  auto uc = MakeVector(&ctx, 1, Caching::kUncached);
  ASSERT_TRUE(uc->Populate(op).ok());
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kCached, PageOrder(0)), 1u);  // not used
  uc->Unpopulate();
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kCached, PageOrder(0)), 1u);
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kUncached, PageOrder(0)), 1u);
}

TEST(ttm_pool, ttm_pool_alloc_order_mismatch) {
  MemoryContext ctx;
  OperationContext op;
  auto big = MakeVector(&ctx, 4, Caching::kWriteCombined);
  ASSERT_TRUE(big->Populate(op).ok());
  big->Unpopulate();
  ASSERT_EQ(ctx.pool().chunk_count(Caching::kWriteCombined, PageOrder(2)), 1u);
  auto small = MakeVector(&ctx, 1, Caching::kWriteCombined);
  ASSERT_TRUE(small->Populate(op).ok());
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kWriteCombined, PageOrder(2)), 1u);
  small->Unpopulate();
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kWriteCombined, PageOrder(2)), 1u);
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kWriteCombined, PageOrder(0)), 1u);
}

// ttm_pool_free_dma_alloc, adapted: the order-2 pool type is emptied by a matching allocation
// and refilled when the vector is freed.
TEST(ttm_pool, ttm_pool_free_dma_alloc) {
  MemoryContext ctx;
  OperationContext op;
  auto v = MakeVector(&ctx, 4, Caching::kUncached);
  ASSERT_TRUE(v->Populate(op).ok());
  v->Unpopulate();
  ASSERT_EQ(ctx.pool().chunk_count(Caching::kUncached, PageOrder(2)), 1u);
  ASSERT_TRUE(v->Populate(op).ok());
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kUncached, PageOrder(2)), 0u);
  v->Unpopulate();
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kUncached, PageOrder(2)), 1u);
}

// ttm_pool_free_no_dma_alloc, adapted: cached pages are not pooled (x86 rule), so freeing a cached
// vector leaves every pool type untouched while WC pages land in the WC type.
TEST(ttm_pool, ttm_pool_free_no_dma_alloc) {
  MemoryContext ctx;
  OperationContext op;
  auto cached = MakeVector(&ctx, 4, Caching::kCached);
  auto wc = MakeVector(&ctx, 4, Caching::kWriteCombined);
  ASSERT_TRUE(cached->Populate(op).ok());
  ASSERT_TRUE(wc->Populate(op).ok());
  cached->Unpopulate();
  EXPECT_EQ(ctx.pool().pooled_pages(), 0u);
  wc->Unpopulate();
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kWriteCombined, PageOrder(2)), 1u);
  EXPECT_EQ(ctx.pool().pooled_pages(), 4u);
}

TEST(ttm_pool, ttm_pool_fini_basic) {
  MemoryContext ctx;
  OperationContext op;
  auto v = MakeVector(&ctx, 4, Caching::kUncached);
  ASSERT_TRUE(v->Populate(op).ok());
  v->Unpopulate();
  ASSERT_EQ(ctx.pool().chunk_count(Caching::kUncached, PageOrder(2)), 1u);
  const std::uint64_t in_use = ctx.provider().pages_in_use();
  ctx.pool().Fini();
  EXPECT_EQ(ctx.pool().chunk_count(Caching::kUncached, PageOrder(2)), 0u);
  EXPECT_EQ(ctx.provider().pages_in_use(), in_use - 4);
}

TEST(PagePoolTest, GiveBackClearsAndTrimsToPoolSize) {
  Stats stats;
  MemoryContext ctx({.page_pool_size = PageCount(8), .stats = &stats});
  OperationContext op;
  auto v = MakeVector(&ctx, 32, Caching::kWriteCombined);
  ASSERT_TRUE(v->Populate(op).ok());
  v->Unpopulate();
  EXPECT_LE(ctx.pool().pooled_pages(), 8u);
  EXPECT_EQ(stats.Get(Stat::kPoolPagesTrimmed), 32u);  // one order-5 chunk, bigger than the pool
  EXPECT_EQ(stats.Current(Stat::kPoolPages), static_cast<std::int64_t>(ctx.pool().pooled_pages()));
  EXPECT_EQ(stats.Peak(Stat::kPoolPages), 32);  // the chunk was parked, then trimmed
}

TEST(PagePoolTest, HitsAndPooledPagesReachTheStatsAndOutliveThePool) {
  Stats stats;
  {
    MemoryContext ctx({.stats = &stats});
    OperationContext op;
    auto v = MakeVector(&ctx, 8, Caching::kWriteCombined);
    ASSERT_TRUE(v->Populate(op).ok());
    v->Unpopulate();  // 8 pages parked
    EXPECT_EQ(stats.Current(Stat::kPoolPages), 8);
    EXPECT_EQ(stats.Get(Stat::kPoolHits), 0u);
    ASSERT_TRUE(v->Populate(op).ok());  // served from the pool: one order-3 chunk
    EXPECT_EQ(stats.Current(Stat::kPoolPages), 0);
    EXPECT_EQ(stats.Peak(Stat::kPoolPages), 8);
    EXPECT_EQ(stats.Get(Stat::kPoolHits), 1u);
    v->Unpopulate();
    // Reset: the hit count restarts, the pooled pages stay true and the peak restarts there.
    stats.Reset();
    EXPECT_EQ(stats.Get(Stat::kPoolHits), 0u);
    EXPECT_EQ(stats.Current(Stat::kPoolPages), 8);
    EXPECT_EQ(stats.Peak(Stat::kPoolPages), 8);
    ASSERT_TRUE(v->Populate(op).ok());
    EXPECT_EQ(stats.Get(Stat::kPoolHits), 1u);
    v->Unpopulate();
  }
  // The pool is gone: its pages went back to the OS, its counts stay.
  EXPECT_EQ(stats.Current(Stat::kPoolPages), 0);
  EXPECT_EQ(stats.Peak(Stat::kPoolPages), 8);
  EXPECT_EQ(stats.Get(Stat::kPoolHits), 1u);
  // A second pool on the same Stats after the first: the peak stays exact.
  {
    MemoryContext ctx({.stats = &stats});
    OperationContext op;
    auto v = MakeVector(&ctx, 8, Caching::kWriteCombined);
    ASSERT_TRUE(v->Populate(op).ok());
    v->Unpopulate();
    EXPECT_EQ(stats.Peak(Stat::kPoolPages), 8);
  }
  EXPECT_EQ(stats.Peak(Stat::kPoolPages), 8);
}

TEST(PagePoolTest, ShrinkerCountsAndScans) {
  Stats stats;
  MemoryContext ctx({.stats = &stats});
  Shrinker& shrinker = ctx.pool().shrinker();
  ShrinkControl sc;
  EXPECT_EQ(shrinker.Count(sc), kShrinkEmpty);
  EXPECT_EQ(shrinker.seeks(), 1);
  EXPECT_EQ(shrinker.batch(), 160u);
  OperationContext op;
  std::vector<std::unique_ptr<PageVector>> vs;
  for (std::size_t pages : {1, 2, 4, 8, 16}) {
    vs.push_back(MakeVector(&ctx, pages, Caching::kUncached));
    ASSERT_TRUE(vs.back()->Populate(op).ok());
  }
  vs.clear();
  EXPECT_EQ(shrinker.Count(sc), 31u);
  sc.nr_to_scan = 10;
  std::uint64_t freed = shrinker.Scan(sc);
  EXPECT_GE(freed, 10u);
  EXPECT_EQ(sc.nr_scanned, freed);
  EXPECT_EQ(ctx.pool().pooled_pages(), 31u - freed);
  sc.nr_to_scan = 1000;
  EXPECT_EQ(shrinker.Scan(sc), 31u - freed);
  sc.nr_to_scan = 10;
  EXPECT_EQ(shrinker.Scan(sc), kShrinkStop);
  EXPECT_EQ(shrinker.Count(sc), kShrinkEmpty);
}

TEST(PagePoolTest, CachingTransitionsAreStagedAndCounted) {
  MemoryContext ctx;
  OperationContext op;
  auto v = MakeVector(&ctx, 1024 + 3, Caching::kWriteCombined);
  ASSERT_TRUE(v->Populate(op).ok());
  // Fresh chunks (2 x order 9, order 1, order 0) become WC in one staged call.
  EXPECT_EQ(ctx.caching_hook().transitions(), 1u);
  EXPECT_EQ(ctx.caching_hook().pages_transitioned(), 1027u);
  v->Unpopulate();  // into the WC pools: no transition
  EXPECT_EQ(ctx.caching_hook().transitions(), 1u);
  ctx.pool().Fini();  // to the OS: back to cached
  EXPECT_GE(ctx.caching_hook().transitions(), 2u);
  EXPECT_EQ(ctx.caching_hook().pages_transitioned(), 2054u);
}

// Privacy: a secret written into a page never shows up in a page handed out later, from the
// pool (cleared on give-back) or from the provider (released with MADV_DONTNEED).
TEST(PagePoolTest, SecretNeverVisibleAfterFree) {
  for (Caching caching : {Caching::kUncached, Caching::kCached}) {
    MemoryContext ctx({.page_pool_size = PageCount(64)});
    OperationContext op;
    const std::size_t pages = 48;
    auto v = MakeVector(&ctx, pages, caching);
    ASSERT_TRUE(v->Populate(op).ok());
    std::vector<std::byte> secret(pages * kPageSize, std::byte{0xA5});
    ASSERT_TRUE(v->Write(0, secret).ok());
    v->Unpopulate();
    for (int round = 0; round < 2; ++round) {
      auto w = MakeVector(&ctx, pages, caching);
      ASSERT_TRUE(w->Populate(op).ok());
      std::vector<std::byte> out(pages * kPageSize);
      ASSERT_TRUE(w->Read(0, out).ok());
      for (std::byte b : out) ASSERT_EQ(b, std::byte{0});
      ASSERT_TRUE(w->Write(0, secret).ok());
      w->Unpopulate();
      ctx.pool().Fini();  // second round comes straight from the provider
    }
  }
}

// A direct-reclaim hook that claims progress without uncharging anything: Charge keeps asking
// until its round limit, and gfp_retry_mayfail limits that to one round.
class ClaimingHook : public ReclaimHook {
 public:
  std::uint64_t ReclaimPages(std::uint64_t, const ReclaimContext&) override {
    ++calls;
    return 1;
  }
  int calls = 0;
};

TEST(MemoryContextTest, RetryMayfailRunsOneRoundOfDirectReclaim) {
  MemoryContextOptions mo;
  mo.pages_limit = PageCount(4);
  MemoryContext memory(mo);
  ClaimingHook hook;
  memory.set_reclaim_hook(&hook);
  OperationContext hard;
  EXPECT_EQ(memory.Charge(PageCount(8), false, hard).code(), Errc::kNoMemory);
  EXPECT_EQ(hook.calls, 16);
  hook.calls = 0;
  OperationContext mayfail;
  mayfail.gfp_retry_mayfail = true;
  EXPECT_EQ(memory.Charge(PageCount(8), false, mayfail).code(), Errc::kNoMemory);
  EXPECT_EQ(hook.calls, 1);
  EXPECT_EQ(memory.pages_allocated().value(), 0u);  // both charges undone
  memory.set_reclaim_hook(nullptr);
}

// TTM's soft limit: an object larger than pages_limit can be populated when nothing can be
// reclaimed; with the (default) hard limit it cannot.
TEST(MemoryContextTest, ASoftLimitLetsAnObjectLargerThanTheLimitBePopulated) {
  for (bool soft : {false, true}) {
    Stats stats;
    MemoryContextOptions mo;
    mo.pages_limit = PageCount(16);
    mo.soft_pages_limit = soft;
    mo.stats = &stats;
    MemoryContext memory(mo);
    OperationContext op;
    auto v = MakeVector(&memory, 32, Caching::kCached);
    Status s = v->Populate(op);
    if (!soft) {
      EXPECT_EQ(s.code(), Errc::kNoMemory) << s.ToString();
      EXPECT_EQ(memory.pages_allocated().value(), 0u);
      continue;
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(memory.pages_allocated().value(), 32u);
    EXPECT_EQ(stats.Get(Stat::kChargesOverSoftLimit), 1u);
    std::vector<std::byte> data(32 * kPageSize);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = std::byte((i * 7 + i / 4096) & 0xff);
    ASSERT_TRUE(v->Write(0, data).ok());
    std::vector<std::byte> out(data.size());
    ASSERT_TRUE(v->Read(0, out).ok());
    EXPECT_EQ(out, data);
  }
}

// Reclaim that runs on another thread and frees nothing for us: the charge waits for it (up to
// 2 s), unless its interruptible context is asked to stop.
class BusyElsewhereHook : public ReclaimHook {
 public:
  std::uint64_t ReclaimPages(std::uint64_t, const ReclaimContext&) override {
    ++calls;
    return 0;
  }
  std::uint32_t reclaims_in_flight() const override { return 1; }
  int calls = 0;
};

TEST(MemoryContextTest, AChargeWaitingForReclaimIsInterruptible) {
  MemoryContextOptions mo;
  mo.pages_limit = PageCount(4);
  MemoryContext memory(mo);
  BusyElsewhereHook hook;
  memory.set_reclaim_hook(&hook);
  std::stop_source stop;
  stop.request_stop();
  OperationContext op;
  op.interruptible = true;
  op.stop = stop.get_token();
  EXPECT_EQ(memory.Charge(PageCount(8), false, op).code(), Errc::kInterrupted);
  EXPECT_EQ(hook.calls, 1);  // one round of direct reclaim freed nothing; the wait was cut short
  EXPECT_EQ(memory.pages_allocated().value(), 0u);
  memory.set_reclaim_hook(nullptr);
}

// Recycled pages: kept uncleared up to the limit, handed out only for overwrite, split into
// aligned chunks, released first when the pool shrinks, and cleared when they must serve an
// ordinary allocation because the provider is out.
TEST(PagePoolRecycleTest, KeptUpToTheLimitAndHandedOutOnlyForOverwrite) {
  MemoryContextOptions mo;
  mo.recycle_pages = PageCount(600);
  MemoryContext ctx(mo);
  PagePool& pool = ctx.pool();
  PageProvider& provider = ctx.provider();
  auto big = provider.Allocate(PageOrder(9));
  auto small = provider.Allocate(PageOrder(6));
  auto extra = provider.Allocate(PageOrder(6));
  ASSERT_TRUE(big.ok() && small.ok() && extra.ok());
  std::memset(big->addr, 0x5a, big->bytes());
  pool.Recycle(big->addr, 512);
  pool.Recycle(small->addr, 64);
  EXPECT_EQ(pool.recycled_pages(), 576u);
  EXPECT_EQ(pool.pooled_pages(), 576u);
  pool.Recycle(extra->addr, 64);  // over the limit: straight back to the OS
  EXPECT_EQ(pool.recycled_pages(), 576u);
  EXPECT_EQ(provider.pages_in_use(), 576u);
  // An ordinary allocation never gets them (it must be zero-filled).
  auto fresh = pool.Allocate(Caching::kCached, PageOrder(9));
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->chunk.addr, big->addr);
  EXPECT_EQ(fresh->chunk.addr[100], std::byte{0});
  pool.Give(std::span<const PageChunk>(&fresh->chunk, 1), fresh->caching);
  // For overwrite: the largest recycled chunk up to the order asked, uncleared.
  bool recycled = false;
  auto got = pool.AllocateForOverwrite(Caching::kCached, PageOrder(9), &recycled);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(recycled);
  EXPECT_EQ(got->chunk.addr, big->addr);
  EXPECT_EQ(got->chunk.order.value(), 9u);
  EXPECT_EQ(got->chunk.addr[4095], std::byte{0x5a}) << "handed out as it was";
  got = pool.AllocateForOverwrite(Caching::kCached, PageOrder(9), &recycled);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(recycled);
  EXPECT_EQ(got->chunk.order.value(), 6u);
  got = pool.AllocateForOverwrite(Caching::kCached, PageOrder(3), &recycled);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(recycled) << "none left: an ordinary (zeroed) chunk";
  EXPECT_EQ(got->chunk.addr[0], std::byte{0});
  provider.Free(got->chunk);
  provider.Free(*big);
  provider.Free(*small);
  EXPECT_EQ(provider.pages_in_use(), pool.pooled_pages());
}

TEST(PagePoolRecycleTest, AnUnalignedRangeIsSplitIntoAlignedChunksAndShrinkReleasesThemFirst) {
  MemoryContext ctx;
  PagePool& pool = ctx.pool();
  auto big = ctx.provider().Allocate(PageOrder(9));
  ASSERT_TRUE(big.ok());
  // Pages 1..511 of an order-9 chunk: orders 0, 1, 2, ... 8 by alignment.
  ctx.provider().FreeRange(big->addr, 1);
  pool.Recycle(big->addr + kPageSize, 511);
  EXPECT_EQ(pool.recycled_pages(), 511u);
  std::vector<PageChunk> taken;
  for (unsigned order = 9; order-- > 0;) {
    bool recycled = false;
    auto c = pool.AllocateForOverwrite(Caching::kCached, PageOrder(9), &recycled);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(recycled);
    EXPECT_EQ(c->chunk.order.value(), order);
    const auto addr = reinterpret_cast<std::uintptr_t>(c->chunk.addr);
    EXPECT_EQ(addr % c->chunk.bytes(), 0u) << "aligned to its size";
    taken.push_back(c->chunk);
  }
  EXPECT_EQ(pool.recycled_pages(), 0u);
  for (const PageChunk& c : taken) pool.Recycle(c.addr, c.pages());
  EXPECT_EQ(pool.recycled_pages(), 511u);
  EXPECT_EQ(pool.Shrink(600), 511u);
  EXPECT_EQ(pool.recycled_pages(), 0u);
  EXPECT_EQ(ctx.provider().pages_in_use(), 0u);
}

TEST(PagePoolRecycleTest, ClearedForAnOrdinaryAllocationWhenTheProviderIsOut) {
  MemoryContextOptions mo;
  mo.provider_byte_limit = Bytes(2 << 20);
  MemoryContext ctx(mo);
  auto big = ctx.provider().Allocate(PageOrder(9));
  ASSERT_TRUE(big.ok());
  std::memset(big->addr, 0x77, big->bytes());
  ctx.pool().Recycle(big->addr, 512);
  auto c = ctx.pool().Allocate(Caching::kCached, PageOrder(9));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->chunk.addr, big->addr);
  for (std::size_t i = 0; i < c->chunk.bytes(); i += 997) {
    ASSERT_EQ(c->chunk.addr[i], std::byte{0}) << i;
  }
  ctx.provider().Free(c->chunk);
}

}  // namespace
}  // namespace uttm
