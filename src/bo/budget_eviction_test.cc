// Copyright (c) uttm developers.
//
// Budgets on a device (budget.h): objects charged to their clients per region, TTM's 2026
// eviction rules (a protected client keeps its protection, an unprotected greedy one absorbs the
// evictions, protection inherited by a subtree, a client over its max evicts its own), lowering
// max reclaiming to the target without losing a byte (under load, cancellable, non-blocking),
// and the errors. Contents depend on (object, version, offset), so a lost or misplaced byte is
// caught.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "testing/bo_content.h"
#include "testing/test_device.h"
#include "uttm/budget.h"
#include "uttm/buffer_object.h"

namespace uttm {
namespace {

using testing::ExpectContent;
using testing::Fill;
using testing::PlacementOf;

constexpr std::uint64_t kObjPages = 16;
constexpr std::uint64_t kObj = kObjPages * kPageSize;  // 64 KiB; VRAM holds 16

class BudgetEvictionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dev_ = std::make_unique<testing::TestDevice>(PageCount(256), Bytes(64 << 20), nullptr, nullptr,
                                                 nullptr, &tree_);
    vram_ = (*dev_)->budget_region(kMemVram);
    ASSERT_GE(vram_, 0);
    EXPECT_EQ(tree_.RegionName(vram_), "drm/test/vram");
  }
  void TearDown() override {
    objects_.clear();
    (*dev_)->FlushDelayedDeletes();
    EXPECT_EQ(tree_.root()->current(vram_), 0u);  // every charge went with its resource
  }

  BudgetGroup* Group(BudgetGroup* parent, const char* name, std::uint64_t low = 0) {
    auto g = tree_.AddGroup(parent, name);
    EXPECT_TRUE(g.ok());
    if (low != 0) {
      EXPECT_TRUE(tree_.SetLimit(*g, vram_, BudgetLimit::kLow, low).ok());
    }
    return *g;
  }

  // A VRAM object of `client` holding the content of `id`; kept until the test ends.
  Result<BoRef> Make(BudgetGroup* client, std::uint64_t id) {
    OperationContext ctx;
    BoOptions o;
    o.size = Bytes(kObj);
    o.client = client;
    auto bo = BufferObject::Create(dev_->get(), o, PlacementOf(kMemVram), ctx);
    if (bo.ok()) {
      Fill(**bo, id);
      objects_.push_back({*bo, id});
    }
    return bo;
  }
  void MakeN(BudgetGroup* client, int n, std::uint64_t first_id) {
    for (int i = 0; i < n; ++i) {
      auto bo = Make(client, first_id + static_cast<std::uint64_t>(i));
      ASSERT_TRUE(bo.ok()) << bo.status().ToString();
    }
  }
  void ExpectAllContents() {
    for (auto& [bo, id] : objects_) ExpectContent(*bo, id);
  }
  std::uint64_t Suffered(BudgetGroup* g) { return g->Read(vram_).evictions_suffered; }

  BudgetTree tree_;
  std::unique_ptr<testing::TestDevice> dev_;
  int vram_ = -1;
  std::vector<std::pair<BoRef, std::uint64_t>> objects_;
};

// Two clients with equal low and a greedy unprotected third on a device too small for all: the
// protected ones keep their protection, the greedy one absorbs every eviction. Then the roles
// are swapped: the newly protected client keeps its low, the newly greedy one pays.
TEST_F(BudgetEvictionTest, ProtectedClientsKeepTheirLowAndTheGreedyOneAbsorbsEvictions) {
  BudgetGroup* a = Group(nullptr, "a", 5 * kObj);
  BudgetGroup* b = Group(nullptr, "b", 5 * kObj);
  BudgetGroup* g = Group(nullptr, "greedy");
  MakeN(a, 5, 100);
  MakeN(b, 5, 200);
  MakeN(g, 30, 300);
  EXPECT_EQ(a->current(vram_), 5 * kObj);
  EXPECT_EQ(b->current(vram_), 5 * kObj);
  EXPECT_EQ(g->current(vram_), 6 * kObj);  // what is left of VRAM
  EXPECT_EQ(Suffered(a), 0u);
  EXPECT_EQ(Suffered(b), 0u);
  EXPECT_EQ(Suffered(g), 24u);
  EXPECT_EQ(g->Read(vram_).evictions_caused, 24u);
  EXPECT_EQ(a->Read(vram_).protection_breaches + b->Read(vram_).protection_breaches, 0u);

  // Swap: the greedy client becomes protected, a becomes greedy.
  ASSERT_TRUE(tree_.SetLimit(g, vram_, BudgetLimit::kLow, 5 * kObj).ok());
  ASSERT_TRUE(tree_.SetLimit(a, vram_, BudgetLimit::kLow, 0).ok());
  MakeN(a, 20, 400);
  EXPECT_GE(g->current(vram_), 5 * kObj);  // it had 6: one above its low could go
  EXPECT_EQ(b->current(vram_), 5 * kObj);
  EXPECT_EQ(Suffered(b), 0u);
  EXPECT_LE(Suffered(g), 24u + 1);
  EXPECT_GE(Suffered(a), 19u);
  ExpectAllContents();
}

// Protection set on a parent covers its children against other subtrees (recursive protection);
// between the children, neither is protected from the other (the common ancestor is the limit).
TEST_F(BudgetEvictionTest, ASubtreeInheritsProtectionButItsChildrenCompeteFreely) {
  BudgetGroup* team = Group(nullptr, "team", 10 * kObj);
  BudgetGroup* x = Group(team, "x");
  BudgetGroup* y = Group(team, "y");
  BudgetGroup* other = Group(nullptr, "other");
  MakeN(x, 5, 100);
  MakeN(y, 5, 200);
  MakeN(other, 20, 300);
  EXPECT_EQ(x->current(vram_), 5 * kObj);
  EXPECT_EQ(y->current(vram_), 5 * kObj);
  EXPECT_EQ(Suffered(x) + Suffered(y), 0u);
  EXPECT_EQ(Suffered(other), 14u);
  // y grows: x's objects, the oldest, are not protected from a sibling.
  MakeN(y, 3, 400);
  EXPECT_GT(Suffered(x), 0u);
  EXPECT_EQ(y->Read(vram_).evictions_caused, Suffered(x) + (Suffered(other) - 14));
  ExpectAllContents();
}

// A client at its max evicts its own objects (only its own) to make room for a new one.
TEST_F(BudgetEvictionTest, AClientAtItsMaxEvictsItsOwnObjectsOnly) {
  BudgetGroup* a = Group(nullptr, "a");
  BudgetGroup* other = Group(nullptr, "other");
  ASSERT_TRUE(tree_.SetLimit(a, vram_, BudgetLimit::kMax, 3 * kObj).ok());
  MakeN(other, 4, 100);
  MakeN(a, 6, 200);
  EXPECT_EQ(a->current(vram_), 3 * kObj);
  EXPECT_EQ(Suffered(other), 0u);
  EXPECT_EQ(Suffered(a), 3u);
  EXPECT_GE(a->Read(vram_).max_hits, 3u);  // each of the last three allocations hit it
  EXPECT_LE(a->Read(vram_).peak, 3 * kObj);
  ExpectAllContents();
}

// Over its max with nothing of its own to evict (pinned): ENOSPC naming the limiting group.
TEST_F(BudgetEvictionTest, OverMaxWithNothingToEvictIsNoSpaceNamingTheGroup) {
  BudgetGroup* team = Group(nullptr, "team");
  BudgetGroup* a = Group(team, "a");
  ASSERT_TRUE(tree_.SetLimit(team, vram_, BudgetLimit::kMax, 2 * kObj).ok());
  MakeN(a, 2, 100);
  for (auto& [bo, id] : objects_) {
    OperationContext ctx;
    ASSERT_TRUE(bo->Reserve(ctx).ok());
    bo->resv()->AssertHeld();
    bo->Pin();
    bo->Unreserve();
  }
  auto third = Make(a, 102);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), Errc::kNoSpace) << third.status().ToString();
  EXPECT_NE(third.status().message().find("/team is at its max"), std::string::npos)
      << third.status().ToString();
  EXPECT_EQ(team->current(vram_), 2 * kObj);  // the failed attempt left no charge behind
  for (auto& [bo, id] : objects_) {
    OperationContext ctx;
    ASSERT_TRUE(bo->Reserve(ctx).ok());
    bo->resv()->AssertHeld();
    bo->Unpin();
    bo->Unreserve();
  }
  ExpectAllContents();
}

// Lowering max below current and reclaiming: the group goes down to the target while another
// client allocates and frees on other threads; every byte of every object is intact.
TEST_F(BudgetEvictionTest, LoweringMaxReclaimsToTheTargetUnderLoadWithoutLosingAByte) {
  BudgetGroup* a = Group(nullptr, "a");
  BudgetGroup* busy = Group(nullptr, "busy");
  MakeN(a, 10, 100);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread load([&] {
    std::uint64_t id = 1000;
    while (!stop.load()) {
      OperationContext ctx;
      BoOptions o;
      o.size = Bytes(kObj);
      o.client = busy;
      auto bo = BufferObject::Create(dev_->get(), o, PlacementOf(kMemVram), ctx);
      if (!bo.ok()) continue;  // VRAM busy: fine, the next one
      std::vector<std::byte> data = testing::Content({id, 1}, 0, kObj);
      std::vector<std::byte> back(kObj);
      if (!(*bo)->Write(0, data, ctx).ok() || !(*bo)->Read(0, back, ctx).ok() || back != data) {
        ++bad;
      }
      ++id;
    }
  });
  ASSERT_TRUE(tree_.SetLimit(a, vram_, BudgetLimit::kMax, 4 * kObj).ok());
  OperationContext ctx;
  Status s = BufferObject::ReclaimBudget(*dev_->get(), a, kMemVram, ctx);
  stop = true;
  load.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_LE(a->current(vram_), 4 * kObj);
  EXPECT_EQ(a->Read(vram_).reclaim_runs, 1u);
  EXPECT_GE(a->Read(vram_).reclaimed_bytes, 6 * kObj);
  EXPECT_EQ(bad.load(), 0);
  ExpectAllContents();
  // At the target already: nothing to do.
  EXPECT_TRUE(BufferObject::ReclaimBudget(*dev_->get(), a, kMemVram, ctx).ok());
}

TEST_F(BudgetEvictionTest, ReclaimIsCancellableAndHasANonBlockingVariant) {
  BudgetGroup* a = Group(nullptr, "a");
  MakeN(a, 4, 100);
  ASSERT_TRUE(tree_.SetLimit(a, vram_, BudgetLimit::kMax, 1 * kObj).ok());
  // Every object reserved elsewhere: the non-blocking reclaim gives up at once.
  for (auto& [bo, id] : objects_) {
    OperationContext ctx;
    ASSERT_TRUE(bo->Reserve(ctx).ok());
  }
  OperationContext nb;
  nb.trylock_only = true;
  Status s = BufferObject::ReclaimBudget(*dev_->get(), a, kMemVram, nb);
  EXPECT_EQ(s.code(), Errc::kBusy) << s.ToString();
  EXPECT_NE(s.message().find("/a still holds"), std::string::npos) << s.ToString();
  for (auto& [bo, id] : objects_) {
    bo->resv()->AssertHeld();
    bo->Unreserve();
  }
  // A stop requested: interrupted before anything moves.
  std::stop_source source;
  source.request_stop();
  OperationContext cancel;
  cancel.interruptible = true;
  cancel.stop = source.get_token();
  EXPECT_EQ(BufferObject::ReclaimBudget(*dev_->get(), a, kMemVram, cancel).code(),
            Errc::kInterrupted);
  EXPECT_EQ(a->current(vram_), 4 * kObj);
  OperationContext ctx;
  ASSERT_TRUE(BufferObject::ReclaimBudget(*dev_->get(), a, kMemVram, ctx).ok());
  EXPECT_EQ(a->current(vram_), 1 * kObj);
  // Progress is readable: the busy try and the successful one ran (the interrupted one moved
  // nothing and is not counted); three objects went.
  const BudgetCounters c = a->Read(vram_);
  EXPECT_EQ(c.reclaim_runs, 2u);
  EXPECT_EQ(c.reclaimed_bytes, 3 * kObj);
  ExpectAllContents();
}

// A client above its high (uttm's soft limit, dmem.high as proposed) gives way first: its
// objects are evicted before older ones of an unprotected client; under its high it is just
// another unprotected client again, and the oldest objects go.
TEST_F(BudgetEvictionTest, AClientAboveItsHighIsEvictedFirst) {
  BudgetGroup* old_one = Group(nullptr, "old");
  BudgetGroup* soft = Group(nullptr, "soft");
  BudgetGroup* newcomer = Group(nullptr, "newcomer");
  MakeN(old_one, 8, 100);  // the LRU's oldest
  MakeN(soft, 8, 200);     // VRAM now full
  ASSERT_TRUE(tree_.SetLimit(soft, vram_, BudgetLimit::kHigh, 5 * kObj).ok());
  EXPECT_TRUE(tree_.OverHigh(soft, vram_));
  MakeN(newcomer, 3, 300);
  EXPECT_EQ(Suffered(soft), 3u);
  EXPECT_EQ(Suffered(old_one), 0u);
  EXPECT_EQ(soft->current(vram_), 5 * kObj);
  EXPECT_FALSE(tree_.OverHigh(soft, vram_));
  // At its high now: the LRU order rules again.
  MakeN(newcomer, 2, 400);
  EXPECT_EQ(Suffered(old_one), 2u);
  EXPECT_EQ(Suffered(soft), 3u);
  // Without any high set, the walk is the plain one.
  ASSERT_TRUE(tree_.SetLimit(soft, vram_, BudgetLimit::kHigh, kBudgetUnlimited).ok());
  EXPECT_FALSE(tree_.HasHighLimits(vram_));
  EXPECT_FALSE(tree_.HasHighLimits());
  ExpectAllContents();
}

TEST_F(BudgetEvictionTest, ClientsOfAnotherTreeAreRefused) {
  BudgetTree other;
  auto g = other.AddGroup(nullptr, "stranger");
  ASSERT_TRUE(g.ok());
  auto bo = Make(*g, 1);
  ASSERT_FALSE(bo.ok());
  EXPECT_EQ(bo.status().code(), Errc::kInvalid);
  EXPECT_NE(bo.status().message().find("/stranger"), std::string::npos);
  OperationContext ctx;
  EXPECT_EQ(BufferObject::ReclaimBudget(*dev_->get(), *g, kMemVram, ctx).code(), Errc::kInvalid);
}

}  // namespace
}  // namespace uttm
