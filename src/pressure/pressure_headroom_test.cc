// Copyright (c) uttm developers.
//
// The allocation path's headroom check (MemoryContext::set_headroom with a PressureHeadroom)
// against a budget measured on the page provider's real pages: charges that would pass the
// budget's headroom reclaim first (a reclaim hook that unpopulates the oldest vectors), fail
// with kNoMemory naming the limit when nothing can be reclaimed, and far from the limit the
// headroom answers from its estimate without sampling. The real cgroup case is
// BoCgroupTest.TheAllocationPathsHeadroomCheckAloneKeepsTheChildAlive.
#include "uttm/pressure_headroom.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>

#include "uttm/memory_context.h"
#include "uttm/page_vector.h"
#include "uttm/reclaim_hook.h"

namespace uttm {
namespace {

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kVectorBytes = 2 * kMiB;

// Holds populated vectors; reclaim unpopulates the oldest (their pages go back to the OS: kCached
// chunks are not pooled).
class VectorReclaim final : public ReclaimHook {
 public:
  std::uint64_t ReclaimPages(std::uint64_t target, const ReclaimContext&) override {
    ++calls;
    std::uint64_t freed = 0;
    while (freed < target && !held.empty()) {
      freed += held.front()->num_pages().value();
      held.front()->Unpopulate();
      held.pop_front();
    }
    return freed;
  }
  std::deque<std::unique_ptr<PageVector>> held;
  int calls = 0;
};

struct Rig {
  explicit Rig(std::uint64_t budget, PressureHeadroomOptions options = {}) {
    MemoryContextOptions mo;
    mo.stats = &stats;
    memory = std::make_unique<MemoryContext>(mo);
    MemoryContext* m = memory.get();
    auto h = PressureHeadroom::Create(
        std::make_unique<BudgetSource>(
            "test-budget", [m] { return m->provider().pages_in_use() * kPageSize; }, budget),
        options);
    EXPECT_TRUE(h.ok());
    headroom = std::move(h).value();
    memory->set_headroom(headroom.get());
  }
  ~Rig() { memory->set_headroom(nullptr); }
  Result<std::unique_ptr<PageVector>> Populated() {
    UTTM_ASSIGN_OR_RETURN(std::unique_ptr<PageVector> v,
                          PageVector::Create(memory.get(), {.size = Bytes(kVectorBytes)}));
    OperationContext ctx;
    UTTM_RETURN_IF_ERROR(v->Populate(ctx));
    return v;
  }
  Stats stats;
  std::unique_ptr<MemoryContext> memory;
  std::unique_ptr<PressureHeadroom> headroom;
};

TEST(PressureHeadroomTest, ChargesPastTheHeadroomReclaimFirstAndStayBelowIt) {
  PressureHeadroomOptions o;
  o.margin = Bytes(8 * kMiB);
  Rig rig(64 * kMiB, o);
  VectorReclaim reclaim;
  rig.memory->set_reclaim_hook(&reclaim);
  std::uint64_t peak = 0;
  for (int i = 0; i < 64; ++i) {  // 128 MiB through a 64 MiB budget
    Result<std::unique_ptr<PageVector>> v = rig.Populated();
    ASSERT_TRUE(v.ok()) << i << ": " << v.status().ToString();
    reclaim.held.push_back(std::move(v).value());
    peak = std::max(peak, rig.memory->provider().pages_in_use() * kPageSize);
  }
  EXPECT_LE(peak, 56 * kMiB) << "the budget less its margin";
  EXPECT_GE(peak, 48 * kMiB) << "reclaim ran far too early";
  EXPECT_GT(reclaim.calls, 0);
  EXPECT_EQ(rig.stats.Get(Stat::kHeadroomReclaims), static_cast<std::uint64_t>(reclaim.calls));
  EXPECT_EQ(rig.stats.Get(Stat::kHeadroomFailures), 0u);
  reclaim.held.clear();
  rig.memory->set_reclaim_hook(nullptr);
}

TEST(PressureHeadroomTest, WithNothingToReclaimAChargeFailsNamingTheLimit) {
  PressureHeadroomOptions o;
  o.margin = Bytes(8 * kMiB);
  Rig rig(32 * kMiB, o);
  std::vector<std::unique_ptr<PageVector>> held;
  Status failure;
  for (int i = 0; i < 32 && failure.ok(); ++i) {
    Result<std::unique_ptr<PageVector>> v = rig.Populated();
    if (v.ok()) {
      held.push_back(std::move(v).value());
    } else {
      failure = v.status();
    }
  }
  ASSERT_FALSE(failure.ok()) << "32 x 2 MiB fit below a 24 MiB headroom";
  EXPECT_EQ(failure.code(), Errc::kNoMemory);
  EXPECT_NE(failure.message().find("test-budget"), std::string_view::npos) << failure.ToString();
  EXPECT_EQ(held.size(), 12u);  // 24 MiB of 2 MiB vectors
  EXPECT_EQ(rig.stats.Get(Stat::kHeadroomFailures), 1u);
  // The refused charge was undone: what is charged is what the vectors hold.
  EXPECT_EQ(rig.memory->pages_allocated().in_bytes().value(), held.size() * kVectorBytes);
}

TEST(PressureHeadroomTest, FarFromTheLimitChargesAreAnsweredFromTheEstimate) {
  PressureHeadroomOptions o;
  o.max_age = std::chrono::hours(1);    // only the estimate decides, however slow the machine is
  Rig rig(std::uint64_t{16} << 30, o);  // 16 GiB: far away
  std::vector<std::unique_ptr<PageVector>> held;
  for (int i = 0; i < 32; ++i) {
    Result<std::unique_ptr<PageVector>> v = rig.Populated();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    held.push_back(std::move(v).value());
  }
  EXPECT_LE(rig.headroom->samples(), 2u) << "32 charges sampled the source each time";
}

TEST(PressureHeadroomTest, CreateRefusesANullSource) {
  Result<std::unique_ptr<PressureHeadroom>> h = PressureHeadroom::Create(nullptr);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Errc::kInvalid);
}

}  // namespace
}  // namespace uttm
