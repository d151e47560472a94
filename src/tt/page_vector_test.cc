// Copyright (c) uttm developers.
//
// Upstream ttm_tt_test.c cases (drivers/gpu/drm/ttm/tests/ttm_tt_test.c) and page-vector behaviour
// without a store.
#include "uttm/page_vector.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "tt/test_util.h"
#include "uttm/fault_injection.h"

namespace uttm {
namespace {

using testing_util::RssAnonBytes;
using testing_util::UnderSanitizer;

std::unique_ptr<PageVector> Make(MemoryContext* ctx, std::uint64_t bytes,
                                 Caching caching = Caching::kCached, std::uint32_t flags = 0,
                                 std::uint64_t extra = 0) {
  auto v = PageVector::Create(ctx, {.size = Bytes(bytes),
                                    .extra_pages = PageCount(extra),
                                    .caching = caching,
                                    .flags = flags,
                                    .dma32 = false});
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? std::move(*v) : nullptr;
}

struct InitParam {
  const char* name;
  std::uint64_t size;
  std::uint64_t extra;
};

class TtmTtInitBasic : public ::testing::TestWithParam<InitParam> {};

TEST_P(TtmTtInitBasic, ttm_tt_init_basic) {
  MemoryContext ctx;
  auto v =
      Make(&ctx, GetParam().size, Caching::kWriteCombined, kPageVectorZeroAlloc, GetParam().extra);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->num_pages().value(), GetParam().size / kPageSize + GetParam().extra);
  EXPECT_EQ(v->flags(), kPageVectorZeroAlloc);
  EXPECT_EQ(v->caching(), Caching::kWriteCombined);
  EXPECT_FALSE(v->is_populated());
  EXPECT_FALSE(v->is_swapped());
  EXPECT_EQ(v->backup_store(), nullptr);
}

INSTANTIATE_TEST_SUITE_P(ttm_tt, TtmTtInitBasic,
                         ::testing::Values(InitParam{"page_aligned", 2 * kPageSize, 0},
                                           InitParam{"extra_pages", 2 * kPageSize, 1}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ttm_tt, ttm_tt_init_misaligned) {
  MemoryContext ctx;
  auto v = Make(&ctx, 2 * kPageSize + 1);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->num_pages().value(), 3u);
}

TEST(ttm_tt, ttm_tt_fini_basic) {
  MemoryContext ctx;
  OperationContext op;
  auto v = Make(&ctx, 4 * kPageSize);
  ASSERT_TRUE(v->Populate(op).ok());
  EXPECT_EQ(ctx.provider().pages_in_use(), 4u);
  v.reset();
  EXPECT_EQ(ctx.provider().pages_in_use(), 0u);
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
}

// ttm_tt_fini_sg: an sg tt is EXTERNAL; destroying it frees everything and it never counted.
TEST(ttm_tt, ttm_tt_fini_sg) {
  MemoryContext ctx;
  OperationContext op;
  auto v = Make(&ctx, 4 * kPageSize, Caching::kCached, kPageVectorExternal);
  ASSERT_TRUE(v->Populate(op).ok());
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
  v.reset();
  EXPECT_EQ(ctx.provider().pages_in_use(), 0u);
}

TEST(ttm_tt, ttm_tt_destroy_basic) {
  MemoryContext ctx;
  auto v = Make(&ctx, kPageSize);
  ASSERT_NE(v, nullptr);
  v.reset();
}

// ttm_tt_populate_null_ttm: the user-space equivalent of a NULL tt is an invalid creation.
TEST(ttm_tt, ttm_tt_populate_null_ttm) {
  auto v = PageVector::Create(nullptr, {.size = Bytes(kPageSize)});
  EXPECT_EQ(v.status().code(), Errc::kInvalid);
  MemoryContext ctx;
  EXPECT_EQ(PageVector::Create(&ctx, {}).status().code(), Errc::kInvalid);
  EXPECT_EQ(
      PageVector::Create(&ctx, {.size = Bytes(1), .flags = kPageVectorPopulated}).status().code(),
      Errc::kInvalid);
}

TEST(ttm_tt, ttm_tt_populate_populated_ttm) {
  MemoryContext ctx;
  OperationContext op;
  auto v = Make(&ctx, kPageSize);
  ASSERT_TRUE(v->Populate(op).ok());
  std::byte* page = v->PageAddress(0);
  ASSERT_TRUE(v->Populate(op).ok());
  EXPECT_EQ(v->PageAddress(0), page);
  EXPECT_EQ(ctx.pages_allocated().value(), 1u);
}

TEST(ttm_tt, ttm_tt_unpopulate_basic) {
  MemoryContext ctx;
  OperationContext op;
  auto v = Make(&ctx, kPageSize);
  ASSERT_TRUE(v->Populate(op).ok());
  EXPECT_TRUE(v->is_populated());
  v->Unpopulate();
  EXPECT_FALSE(v->is_populated());
  EXPECT_EQ(v->PageAddress(0), nullptr);
}

TEST(ttm_tt, ttm_tt_unpopulate_empty_ttm) {
  MemoryContext ctx;
  auto v = Make(&ctx, kPageSize);
  v->Unpopulate();
  EXPECT_FALSE(v->is_populated());
}

TEST(PageVectorTest, WriteReadAcrossChunksAndMisuse) {
  MemoryContext ctx;
  OperationContext op;
  auto v = Make(&ctx, 700 * kPageSize);
  std::vector<std::byte> buf(10000, std::byte{7});
  EXPECT_EQ(v->Write(0, buf).code(), Errc::kInvalid);  // not populated
  ASSERT_TRUE(v->Populate(op).ok());
  const std::uint64_t offset = 512 * kPageSize - 5000;  // straddles the order-9 chunk boundary
  ASSERT_TRUE(v->Write(offset, buf).ok());
  std::vector<std::byte> out(buf.size());
  ASSERT_TRUE(v->Read(offset, out).ok());
  EXPECT_EQ(out, buf);
  EXPECT_EQ(v->Write(700 * kPageSize - 1, std::span(buf).first(2)).code(), Errc::kInvalid);
  EXPECT_EQ(v->Read(~std::uint64_t{0}, out).code(), Errc::kInvalid);
  EXPECT_EQ(v->PageAddress(700), nullptr);
}

TEST(PageVectorTest, PagesLimitCallsOverLimitHookThenFails) {
  Stats stats;
  MemoryContext ctx({.pages_limit = PageCount(8), .stats = &stats});
  OperationContext op;
  auto a = Make(&ctx, 6 * kPageSize);
  ASSERT_TRUE(a->Populate(op).ok());
  auto b = Make(&ctx, 4 * kPageSize);
  EXPECT_EQ(b->Populate(op).code(), Errc::kNoMemory);  // no hook: hard limit
  EXPECT_EQ(ctx.pages_allocated().value(), 6u);
  int calls = 0;
  ctx.set_over_limit([&](const OperationContext&) -> Result<std::uint64_t> {
    ++calls;
    if (!a->is_populated()) return std::uint64_t{0};
    a->Unpopulate();  // what the watermark swapout would do to another buffer
    return std::uint64_t{6};
  });
  ASSERT_TRUE(b->Populate(op).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ctx.pages_allocated().value(), 4u);
  EXPECT_EQ(stats.Current(Stat::kPagesAllocated), 4);
  ctx.set_over_limit([](const OperationContext&) -> Result<std::uint64_t> {
    return Status(Errc::kInterrupted, "stop");
  });
  auto c = Make(&ctx, 8 * kPageSize);
  EXPECT_EQ(c->Populate(op).code(), Errc::kInterrupted);
  EXPECT_EQ(ctx.pages_allocated().value(), 4u);
}

TEST(PageVectorTest, Dma32LimitIsSeparate) {
  MemoryContext ctx({.dma32_pages_limit = PageCount(2)});
  OperationContext op;
  auto v = PageVector::Create(&ctx, {.size = Bytes(4 * kPageSize), .dma32 = true});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->Populate(op).code(), Errc::kNoMemory);
  auto w = Make(&ctx, 4 * kPageSize);
  EXPECT_TRUE(w->Populate(op).ok());
}

TEST(PageVectorTest, AllocationFailureDescendsOrdersOrFailsCleanly) {
  MemoryContext ctx;
  OperationContext op;
  auto v = Make(&ctx, 700 * kPageSize);  // chunks of order 9, 7, 5, 4, 3, 2
  {
    // The order-9 attempt fails; the vector is built from order-8 chunks instead.
    ScopedFault fault(FaultPoint::kPageAlloc, {.times = 1});
    ASSERT_TRUE(v->Populate(op).ok());
  }
  EXPECT_EQ(v->slot_order(0), 8);
  v->Unpopulate();
  {
    ScopedFault fault(FaultPoint::kPageAlloc, {.after = 3});
    EXPECT_EQ(v->Populate(op).code(), Errc::kNoMemory);
  }
  EXPECT_FALSE(v->is_populated());
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
  EXPECT_EQ(ctx.provider().pages_in_use(), 0u);
}

// Purge: pages go straight to the OS (pools bypassed), entries empty, contents dropped;
// a restore yields zero pages.
TEST(PageVectorTest, PurgeBypassesPoolsAndRestoresZeroPages) {
  MemoryContext ctx;
  OperationContext op;
  auto v = Make(&ctx, 100 * kPageSize, Caching::kWriteCombined);
  ASSERT_TRUE(v->Populate(op).ok());
  std::vector<std::byte> data(100 * kPageSize, std::byte{0x3c});
  ASSERT_TRUE(v->Write(0, data).ok());
  auto purged = v->Backup({.purge = true});
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged->value(), 100u);
  EXPECT_TRUE(v->is_backed_up());
  EXPECT_FALSE(v->is_populated());
  EXPECT_EQ(ctx.pool().pooled_pages(), 0u);
  EXPECT_EQ(ctx.provider().pages_in_use(), 0u);
  EXPECT_EQ(ctx.pages_allocated().value(), 0u);
  for (std::size_t i = 0; i < 100; ++i) EXPECT_EQ(v->slot_kind(i), PageVector::SlotKind::kEmpty);
  auto again = v->Backup({.purge = true});  // nothing resident: nothing to do
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->value(), 0u);
  EXPECT_EQ(v->Populate(op).code(), Errc::kInvalid);
  ASSERT_TRUE(v->Restore(op).ok());
  std::vector<std::byte> out(data.size(), std::byte{1});
  ASSERT_TRUE(v->Read(0, out).ok());
  for (std::byte b : out) ASSERT_EQ(b, std::byte{0});
  EXPECT_EQ(ctx.pages_allocated().value(), 100u);
}

TEST(PageVectorTest, MisuseIsInvalid) {
  MemoryContext ctx;
  OperationContext op;
  auto v = Make(&ctx, kPageSize);
  EXPECT_EQ(v->Restore(op).code(), Errc::kInvalid);  // not backed up
  EXPECT_EQ(v->Swapout(nullptr).status().code(), Errc::kInvalid);
  auto zero = v->Backup({});  // nothing populated: nothing to do
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->value(), 0u);
  ASSERT_TRUE(v->Populate(op).ok());
  EXPECT_EQ(v->Backup({}).status().code(), Errc::kInvalid);  // no store
  v->DiscardBackup();                                        // not backed up: no-op
  EXPECT_TRUE(v->is_populated());
}

}  // namespace
}  // namespace uttm

namespace uttm {
namespace {

TEST(PageVectorRssTest, Purge512MiBReleasesMemory) {
  if (UnderSanitizer()) GTEST_SKIP() << "sanitizer shadow memory distorts RSS";
  MemoryContext ctx;
  OperationContext op;
  const std::uint64_t bytes = std::uint64_t{512} << 20;
  auto v = Make(&ctx, bytes);
  ASSERT_TRUE(v->Populate(op).ok());
  for (std::uint64_t i = 0; i < bytes / kPageSize; ++i) std::memset(v->PageAddress(i), 1, 64);
  const std::uint64_t before = RssAnonBytes();
  ASSERT_TRUE(v->Backup({.purge = true}).ok());
  const std::uint64_t after = RssAnonBytes();
  EXPECT_GE(before - std::min(before, after), bytes * 9 / 10)
      << "RssAnon before " << before << " after " << after;
}

}  // namespace
}  // namespace uttm
