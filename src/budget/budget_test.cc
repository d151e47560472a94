// Copyright (c) uttm developers.
//
// The budget tree: charges against max at every level, peaks, effective protection against
// hand-computed trees (mm/page_counter.c's arithmetic with recursive protection), the evict
// predicate of dmem (kernel/cgroup/dmem.c) with TTM's common-ancestor limit, the tree's own
// rules, and concurrent charges at a limit (run under TSan in CI).
#include "uttm/budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace uttm {
namespace {

constexpr std::uint64_t kG = 1ull << 30;
constexpr std::uint64_t kM = 1ull << 20;

class BudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = tree_.AddRegion("drm/sim0/vram");
    ASSERT_TRUE(r.ok());
    vram_ = *r;
  }
  BudgetGroup* Add(BudgetGroup* parent, const char* name) {
    auto g = tree_.AddGroup(parent, name);
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    return g.ok() ? *g : nullptr;
  }
  void Set(BudgetGroup* g, BudgetLimit which, std::uint64_t v) {
    ASSERT_TRUE(tree_.SetLimit(g, vram_, which, v).ok());
  }
  void Charge(BudgetGroup* g, std::uint64_t bytes) {
    ASSERT_TRUE(tree_.TryCharge(g, vram_, bytes).ok());
  }

  BudgetTree tree_;
  int vram_ = -1;
};

TEST_F(BudgetTest, AChargeCountsAtEveryLevelAndStopsAtTheFirstMax) {
  BudgetGroup* a = Add(nullptr, "a");
  BudgetGroup* b = Add(a, "b");
  Set(a, BudgetLimit::kMax, 10 * kM);
  Charge(b, 6 * kM);
  EXPECT_EQ(b->current(vram_), 6 * kM);
  EXPECT_EQ(a->current(vram_), 6 * kM);
  EXPECT_EQ(tree_.root()->current(vram_), 6 * kM);
  BudgetGroup* limiting = nullptr;
  Status s = tree_.TryCharge(b, vram_, 5 * kM, &limiting);
  EXPECT_EQ(s.code(), Errc::kNoSpace);
  EXPECT_EQ(limiting, a);
  EXPECT_NE(s.message().find("/a is at its max"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("drm/sim0/vram"), std::string::npos) << s.ToString();
  EXPECT_EQ(b->current(vram_), 6 * kM);  // nothing charged anywhere
  EXPECT_EQ(tree_.root()->current(vram_), 6 * kM);
  EXPECT_EQ(a->Read(vram_).max_hits, 1u);
  Charge(b, 4 * kM);  // exactly at max
  tree_.Uncharge(b, vram_, 7 * kM);
  EXPECT_EQ(a->current(vram_), 3 * kM);
  EXPECT_EQ(a->Read(vram_).peak, 10 * kM);
  // A held charge goes when it is destroyed.
  {
    BudgetCharge held(b, vram_, 2 * kM);
    Charge(b, 2 * kM);
    EXPECT_EQ(b->current(vram_), 5 * kM);
  }
  EXPECT_EQ(b->current(vram_), 3 * kM);
}

// mm/page_counter.c's example shape: the parent's protection is shared among children that claim
// more than it has, in proportion to what each uses of its own claim.
TEST_F(BudgetTest, OverclaimedProtectionIsSharedInProportionToProtectedUsage) {
  BudgetGroup* a = Add(nullptr, "a");
  BudgetGroup* b = Add(a, "b");
  BudgetGroup* c = Add(a, "c");
  Set(a, BudgetLimit::kLow, 2 * kG);
  Set(b, BudgetLimit::kLow, 3 * kG);
  Set(c, BudgetLimit::kLow, 1 * kG);
  Charge(b, 3 * kG);
  Charge(c, 1 * kG);
  // a is a child of the root: its own setting. b and c claim 3 + 1 = 4 GiB of a's 2.
  EXPECT_EQ(tree_.Effective(nullptr, a, vram_).elow, 2 * kG);
  EXPECT_EQ(tree_.Effective(nullptr, b, vram_).elow, 3 * kG * 2 / 4);  // 1.5 GiB
  EXPECT_EQ(tree_.Effective(nullptr, c, vram_).elow, 1 * kG * 2 / 4);  // 0.5 GiB
  // Relative to a as the limit, b and c keep their own claims.
  EXPECT_EQ(tree_.Effective(a, b, vram_).elow, 3 * kG);
  EXPECT_EQ(tree_.Effective(a, c, vram_).elow, 1 * kG);
}

// Recursive protection: what the children leave unclaimed goes to them in proportion to their
// unprotected usage.
TEST_F(BudgetTest, UnclaimedProtectionIsSharedInProportionToUnprotectedUsage) {
  BudgetGroup* a = Add(nullptr, "a");
  BudgetGroup* b = Add(a, "b");
  BudgetGroup* c = Add(a, "c");
  Set(a, BudgetLimit::kLow, 2 * kG);
  Set(a, BudgetLimit::kMin, 1 * kG);
  Set(b, BudgetLimit::kLow, 1 * kG);
  Charge(b, 3 * kG);
  Charge(c, 1 * kG);
  // Siblings claim 1 GiB of a's 2; the other 1 GiB goes by unprotected usage: b has 2 GiB of it,
  // c 1 GiB, of 4 - 1 = 3 GiB: b 1 + 2/3, c 1/3 GiB.
  const std::uint64_t b_low = tree_.Effective(nullptr, b, vram_).elow;
  const std::uint64_t c_low = tree_.Effective(nullptr, c, vram_).elow;
  EXPECT_EQ(b_low, 1 * kG + 1 * kG * 2 / 3);
  EXPECT_EQ(c_low, 1 * kG * 1 / 3);
  // min: nothing claimed below a, a's 1 GiB shared 3 : 1.
  EXPECT_EQ(tree_.Effective(nullptr, b, vram_).emin, 1 * kG * 3 / 4);
  EXPECT_EQ(tree_.Effective(nullptr, c, vram_).emin, 1 * kG * 1 / 4);
  EXPECT_FALSE(tree_.BelowLow(b, vram_));  // 3 GiB used, 1.67 protected
  tree_.Uncharge(b, vram_, 2 * kG);        // b 1 GiB, c 1 GiB: a uses 2
  EXPECT_TRUE(tree_.BelowLow(b, vram_));
  EXPECT_FALSE(tree_.BelowMin(b, vram_));  // emin 0.5 GiB
}

// A nested tree: protection set only at the top protects the subtree against its neighbours,
// while inside the subtree neither child is protected from the other.
TEST_F(BudgetTest, ProtectionIsInheritedByASubtree) {
  BudgetGroup* team = Add(nullptr, "team");
  BudgetGroup* x = Add(team, "x");
  BudgetGroup* y = Add(team, "y");
  BudgetGroup* other = Add(nullptr, "other");
  Set(team, BudgetLimit::kLow, 4 * kG);
  Charge(x, 2 * kG);
  Charge(y, 2 * kG);
  Charge(other, 4 * kG);
  bool hit_low = false;
  // other allocating: the common ancestor is the root; x's share of team's low covers it.
  EXPECT_FALSE(tree_.EvictValuable(nullptr, other, x, vram_, false, &hit_low));
  EXPECT_TRUE(hit_low);
  EXPECT_TRUE(tree_.EvictValuable(nullptr, other, x, vram_, true, nullptr));  // try_low pass
  // y allocating: the common ancestor is team, relative to which x claims nothing.
  hit_low = false;
  EXPECT_TRUE(tree_.EvictValuable(nullptr, y, x, vram_, false, &hit_low));
  EXPECT_FALSE(hit_low);
  // other is never protected.
  EXPECT_TRUE(tree_.EvictValuable(nullptr, x, other, vram_, false, &hit_low));
}

TEST_F(BudgetTest, TheEvictPredicateFollowsDmem) {
  BudgetGroup* a = Add(nullptr, "a");
  BudgetGroup* b = Add(a, "b");
  BudgetGroup* c = Add(nullptr, "c");
  Set(b, BudgetLimit::kMin, 1 * kG);
  Set(b, BudgetLimit::kLow, 2 * kG);
  Charge(b, 1 * kG);
  Charge(c, 1 * kG);
  bool hit_low = false;
  // The limiting group may always give up its own.
  EXPECT_TRUE(tree_.EvictValuable(b, b, b, vram_, false, &hit_low));
  // Outside the limiting subtree: never.
  EXPECT_FALSE(tree_.EvictValuable(a, b, c, vram_, true, &hit_low));
  // At or below effective min: never, whatever the pass.
  EXPECT_FALSE(tree_.EvictValuable(a, a, b, vram_, true, &hit_low));
  Charge(b, 1 * kG);  // 2 GiB: above min, at low
  hit_low = false;
  EXPECT_FALSE(tree_.EvictValuable(a, a, b, vram_, false, &hit_low));
  EXPECT_TRUE(hit_low);
  EXPECT_TRUE(tree_.EvictValuable(a, a, b, vram_, true, nullptr));
  Charge(b, 1 * kG);  // above low
  hit_low = false;
  EXPECT_TRUE(tree_.EvictValuable(a, a, b, vram_, false, &hit_low));
  EXPECT_FALSE(hit_low);
  // Objects of no group are never protected.
  EXPECT_TRUE(tree_.EvictValuable(nullptr, b, nullptr, vram_, false, &hit_low));
  EXPECT_EQ(BudgetTree::CommonAncestor(b, c), tree_.root());
  EXPECT_EQ(BudgetTree::CommonAncestor(b, a), a);
}

TEST_F(BudgetTest, HighIsASoftLimitSeenFromBelow) {
  BudgetGroup* a = Add(nullptr, "a");
  BudgetGroup* b = Add(a, "b");
  Set(a, BudgetLimit::kHigh, 1 * kG);
  Charge(b, 1 * kG);
  EXPECT_FALSE(tree_.OverHigh(b, vram_));
  Charge(b, 1);  // a soft limit never refuses a charge
  EXPECT_TRUE(tree_.OverHigh(b, vram_));
  EXPECT_TRUE(tree_.OverHigh(a, vram_));
}

TEST_F(BudgetTest, TheTreeRefusesMisuseWithClearErrors) {
  BudgetGroup* a = Add(nullptr, "a");
  EXPECT_EQ(tree_.AddGroup(nullptr, "a").status().code(), Errc::kAlready);
  EXPECT_EQ(tree_.AddGroup(nullptr, "").status().code(), Errc::kInvalid);
  EXPECT_EQ(tree_.AddGroup(nullptr, "x/y").status().code(), Errc::kInvalid);
  EXPECT_EQ(tree_.SetLimit(tree_.root(), vram_, BudgetLimit::kMax, 1).code(), Errc::kInvalid);
  EXPECT_EQ(tree_.SetLimit(a, 7, BudgetLimit::kMax, 1).code(), Errc::kInvalid);
  EXPECT_EQ(tree_.TryCharge(a, -1, 1).code(), Errc::kInvalid);
  BudgetGroup* b = Add(a, "b");
  EXPECT_EQ(*tree_.FindGroup("/a/b"), b);
  EXPECT_EQ(*tree_.FindGroup("/"), tree_.root());
  EXPECT_EQ(tree_.FindGroup("/a/c").status().code(), Errc::kNotFound);
  EXPECT_EQ(tree_.FindGroup("a").status().code(), Errc::kInvalid);
  EXPECT_EQ(b->path(), "/a/b");
  EXPECT_EQ(tree_.RemoveGroup(a).code(), Errc::kBusy);  // has a child
  Charge(b, 4096);
  Status busy = tree_.RemoveGroup(b);
  EXPECT_EQ(busy.code(), Errc::kBusy);
  EXPECT_NE(busy.message().find("holds 4096 bytes in drm/sim0/vram"), std::string::npos);
  tree_.Uncharge(b, vram_, 4096);
  EXPECT_TRUE(tree_.RemoveGroup(b).ok());
  EXPECT_TRUE(tree_.RemoveGroup(a).ok());
  EXPECT_EQ(tree_.RemoveGroup(tree_.root()).code(), Errc::kInvalid);
  EXPECT_EQ(*tree_.AddRegion("drm/sim0/vram"), vram_);  // the same region again
  EXPECT_EQ(tree_.FindRegion("drm/sim0/gtt").status().code(), Errc::kNotFound);
  for (int i = 1; i < kMaxBudgetRegions; ++i) {
    ASSERT_TRUE(tree_.AddRegion("r" + std::to_string(i)).ok());
  }
  EXPECT_EQ(tree_.AddRegion("one-too-many").status().code(), Errc::kNoSpace);
}

// Four threads charge and uncharge random sizes under one max: the usage never goes over it (a
// charge that would is refused whole), and everything is back to zero at the end.
TEST_F(BudgetTest, ConcurrentChargesAtALimitNeverOvershootIt) {
  BudgetGroup* a = Add(nullptr, "a");
  std::vector<BudgetGroup*> kids = {Add(a, "k0"), Add(a, "k1"), Add(a, "k2"), Add(a, "k3")};
  constexpr std::uint64_t kMax = 64 * kM;
  Set(a, BudgetLimit::kMax, kMax);
  std::atomic<bool> over{false};
  std::atomic<std::uint64_t> refused{0};
  auto worker = [&](int t) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 1);
    std::vector<std::uint64_t> held;
    for (int i = 0; i < 20000; ++i) {
      if (held.empty() || rng() % 3 != 0) {
        const std::uint64_t bytes = (1 + rng() % 8) * kM;
        if (tree_.TryCharge(kids[static_cast<std::size_t>(t)], vram_, bytes).ok()) {
          held.push_back(bytes);
          if (a->current(vram_) > kMax) over = true;
        } else {
          ++refused;
        }
      } else {
        tree_.Uncharge(kids[static_cast<std::size_t>(t)], vram_, held.back());
        held.pop_back();
      }
    }
    for (std::uint64_t b : held) tree_.Uncharge(kids[static_cast<std::size_t>(t)], vram_, b);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  EXPECT_FALSE(over.load());
  EXPECT_GT(refused.load(), 0u);  // the limit was reached
  EXPECT_LE(a->Read(vram_).peak, kMax);
  EXPECT_EQ(a->current(vram_), 0u);
  EXPECT_EQ(tree_.root()->current(vram_), 0u);
  // The children's protected-usage sums came back to zero with the usage: with a's low of
  // 1 GiB and only kids[0] claiming (1 MiB used of its 1 GiB), it keeps all of its usage (a sum
  // left over from the threads would have shrunk its share).
  Set(a, BudgetLimit::kLow, kG);
  Set(kids[0], BudgetLimit::kLow, kG);
  Charge(kids[0], kM);
  EXPECT_EQ(tree_.Effective(nullptr, kids[0], vram_).elow, kM);
  EXPECT_TRUE(tree_.BelowLow(kids[0], vram_));
}

}  // namespace
}  // namespace uttm
