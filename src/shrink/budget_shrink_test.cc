// Copyright (c) uttm developers.
//
// The buffer-object shrinker and budgets (budget.h): under memory pressure it backs up the
// objects of unprotected clients first, those of clients within their low only when nothing else
// is left, never those within their min; discardable objects go whatever their client's
// protection. Contents are checked byte for byte after every restore.
#include <gtest/gtest.h>

#include <vector>

#include "testing/bo_content.h"
#include "testing/shrinker_device.h"
#include "uttm/bo_swapout.h"
#include "uttm/budget.h"
#include "uttm/buffer_object.h"

namespace uttm {
namespace {

using testing::ExpectContent;
using testing::Fill;
using testing::PlacementOf;

constexpr std::uint64_t kPages = 16;
constexpr std::uint64_t kObj = kPages * kPageSize;

class BudgetShrinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(rig_.Init(PageCount(256), true, nullptr, &tree_).ok());
    tt_ = (*rig_.dev)->budget_region(kMemTt);
    ASSERT_GE(tt_, 0);
  }
  void TearDown() override {
    bos_.clear();
    (*rig_.dev)->FlushDelayedDeletes();
  }
  BudgetGroup* Group(const char* name, BudgetLimit which = BudgetLimit::kLow,
                     std::uint64_t value = 0) {
    BudgetGroup* g = *tree_.AddGroup(nullptr, name);
    if (value != 0) {
      EXPECT_TRUE(tree_.SetLimit(g, tt_, which, value).ok());
    }
    return g;
  }
  BufferObject* Make(BudgetGroup* client, std::uint64_t id) {
    OperationContext ctx;
    BoOptions o;
    o.size = Bytes(kObj);
    o.client = client;
    auto bo = BufferObject::Create(rig_.dev->get(), o, PlacementOf(kMemTt), ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    Fill(**bo, id);
    bos_.push_back({*bo, id});
    return bo->get();
  }
  static bool BackedUp(const BufferObject* bo) { return bo->tt()->is_swapped(); }

  BudgetTree tree_;
  testing::ShrinkerDevice rig_;
  int tt_ = -1;
  std::vector<std::pair<BoRef, std::uint64_t>> bos_;
};

TEST_F(BudgetShrinkTest, UnprotectedFirstThenLowProtectedNeverMinProtected) {
  BudgetGroup* low = Group("low", BudgetLimit::kLow, 2 * kObj);
  BudgetGroup* hard = Group("hard", BudgetLimit::kMin, 2 * kObj);
  BudgetGroup* free = Group("free");
  // The protected clients' objects are the oldest: an LRU walk meets them first.
  BufferObject* l1 = Make(low, 1);
  BufferObject* l2 = Make(low, 2);
  BufferObject* h1 = Make(hard, 3);
  BufferObject* h2 = Make(hard, 4);
  BufferObject* f1 = Make(free, 5);
  BufferObject* f2 = Make(free, 6);
  // Enough for two objects: the unprotected client's go.
  EXPECT_EQ(rig_.Shrink(2 * kPages), 2 * kPages);
  EXPECT_TRUE(BackedUp(f1) && BackedUp(f2));
  EXPECT_FALSE(BackedUp(l1) || BackedUp(l2) || BackedUp(h1) || BackedUp(h2));
  // More: only the low-protected client's are left to take (min is hard).
  EXPECT_EQ(rig_.Shrink(8 * kPages), 2 * kPages);
  EXPECT_TRUE(BackedUp(l1) && BackedUp(l2));
  EXPECT_FALSE(BackedUp(h1) || BackedUp(h2));
  EXPECT_EQ(rig_.Shrink(8 * kPages), kShrinkStop);  // nothing it may take
  for (auto& [bo, id] : bos_) ExpectContent(*bo, id);
}

// A client above its high is backed up before older objects of an unprotected client, down to
// its high; then the LRU order rules again.
TEST_F(BudgetShrinkTest, AClientAboveItsHighGoesFirst) {
  BudgetGroup* free = Group("free");
  BudgetGroup* soft = Group("soft", BudgetLimit::kHigh, 1 * kObj);
  BufferObject* f1 = Make(free, 1);  // the oldest
  BufferObject* s1 = Make(soft, 2);
  BufferObject* s2 = Make(soft, 3);
  BufferObject* s3 = Make(soft, 4);
  EXPECT_EQ(rig_.Shrink(1 * kPages), 1 * kPages);
  EXPECT_FALSE(BackedUp(f1));
  EXPECT_TRUE(BackedUp(s1));
  EXPECT_EQ(rig_.Shrink(8 * kPages), 3 * kPages);  // s2 (to its high), then f1 and s3
  EXPECT_TRUE(BackedUp(f1) && BackedUp(s2) && BackedUp(s3));
  for (auto& [bo, id] : bos_) ExpectContent(*bo, id);
}

TEST_F(BudgetShrinkTest, DiscardableObjectsArePurgedWhateverTheProtection) {
  BudgetGroup* hard = Group("hard", BudgetLimit::kMin, 4 * kObj);
  BufferObject* keep = Make(hard, 1);
  BufferObject* scratch = Make(hard, 2);
  OperationContext ctx;
  ASSERT_TRUE(scratch->Madvise(Madvice::kDontNeed, ctx).ok());
  EXPECT_EQ(rig_.Shrink(8 * kPages), kPages);
  EXPECT_EQ(scratch->madvice(), Madvice::kPurged);
  EXPECT_FALSE(BackedUp(keep));
  bos_.pop_back();  // purged: its contents are gone by contract
  ExpectContent(*keep, 1);
}

// The watermark swapout (legacy split: the device's page vectors are not the shrinker's) keeps
// the same order.
TEST(BudgetSwapoutTest, TheWatermarkSwapoutKeepsTheSameOrder) {
  BudgetTree tree;
  testing::ShrinkerDevice rig;
  ASSERT_TRUE(rig.Init(PageCount(256), /*owns_tt=*/false, nullptr, &tree).ok());
  const int tt = (*rig.dev)->budget_region(kMemTt);
  BudgetGroup* low = *tree.AddGroup(nullptr, "low");
  BudgetGroup* hard = *tree.AddGroup(nullptr, "hard");
  BudgetGroup* free = *tree.AddGroup(nullptr, "free");
  BudgetGroup* soft = *tree.AddGroup(nullptr, "soft");
  ASSERT_TRUE(tree.SetLimit(low, tt, BudgetLimit::kLow, kObj).ok());
  ASSERT_TRUE(tree.SetLimit(hard, tt, BudgetLimit::kMin, kObj).ok());
  ASSERT_TRUE(tree.SetLimit(soft, tt, BudgetLimit::kHigh, 0).ok());
  std::vector<std::pair<BoRef, std::uint64_t>> bos;
  for (auto [client, id] :
       {std::pair{low, 1}, std::pair{hard, 2}, std::pair{free, 3}, std::pair{soft, 4}}) {
    OperationContext ctx;
    BoOptions o;
    o.size = Bytes(kObj);
    o.client = client;
    auto bo = BufferObject::Create(rig.dev->get(), o, PlacementOf(kMemTt), ctx);
    ASSERT_TRUE(bo.ok()) << bo.status().ToString();
    Fill(**bo, static_cast<std::uint64_t>(id));
    bos.push_back({*bo, static_cast<std::uint64_t>(id)});
  }
  OperationContext ctx;
  // One object per swapout: the one above its high (the newest), the unprotected one, then the
  // low-protected one, then none.
  ASSERT_EQ(*DeviceSwapout(*rig.dev->get(), ctx, ShrinkReason::kSwap), kPages);
  EXPECT_TRUE(bos[3].first->tt()->is_swapped());
  EXPECT_FALSE(bos[2].first->tt()->is_swapped());
  ASSERT_EQ(*DeviceSwapout(*rig.dev->get(), ctx, ShrinkReason::kSwap), kPages);
  EXPECT_TRUE(bos[2].first->tt()->is_swapped());
  EXPECT_FALSE(bos[0].first->tt()->is_swapped());
  ASSERT_EQ(*DeviceSwapout(*rig.dev->get(), ctx, ShrinkReason::kSwap), kPages);
  EXPECT_TRUE(bos[0].first->tt()->is_swapped());
  EXPECT_EQ(*DeviceSwapout(*rig.dev->get(), ctx, ShrinkReason::kSwap), 0u);
  EXPECT_FALSE(bos[1].first->tt()->is_swapped());
  for (auto& [bo, id] : bos) ExpectContent(*bo, id);
  bos.clear();
  (*rig.dev)->FlushDelayedDeletes();
}

}  // namespace
}  // namespace uttm
