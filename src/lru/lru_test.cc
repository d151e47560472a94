// Copyright (c) uttm developers.
//
// LRU lists, bulk moves and restartable cursors (TTM's ttm_resource LRU helpers, the hitch
// cursor of the shrinker series, and walks that skip nothing while other resources move).
#include "uttm/lru.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "uttm/lru_bulk_move.h"
#include "uttm/lru_cursor.h"
#include "uttm/system_manager.h"
#include "uttm/tt_manager.h"

namespace uttm {
namespace {

using namespace unit_literals;

class LruTest : public ::testing::Test {
 protected:
  LruTest() : tt_(kMemTt, 1_GiB) {
    sys_.set_use_type(true);
    tt_.set_use_type(true);
  }

  ~LruTest() override {
    MutexLock lock(lru_.lock());
    for (auto& r : live_) lru_.RemoveResource(r.get());
    for (auto& r : live_) r->manager()->Free(std::move(r));
  }

  Resource* Add(ResourceManager* man, unsigned prio, LruBulkMove* bulk = nullptr,
                bool unevictable = false) {
    Place place{.mem_type = man->mem_type()};
    AllocRequest req{.size = 4_KiB, .priority = prio};
    auto res = man->Alloc(req, place);
    EXPECT_TRUE(res.ok());
    Resource* r = res->get();
    r->set_bulk_move(bulk);
    {
      MutexLock lock(lru_.lock());
      lru_.AddResource(r, prio, unevictable);
    }
    live_.push_back(std::move(res).value());
    return r;
  }

  void Remove(Resource* r) {
    {
      MutexLock lock(lru_.lock());
      lru_.RemoveResource(r);
    }
    auto it = std::find_if(live_.begin(), live_.end(), [&](auto& p) { return p.get() == r; });
    ASSERT_NE(it, live_.end());
    std::unique_ptr<Resource> owned = std::move(*it);
    live_.erase(it);
    owned->manager()->Free(std::move(owned));
  }

  // The resources of a list in order (hitches skipped).
  static std::vector<Resource*> Order(ListHead& list) {
    std::vector<Resource*> out;
    for (ListNode* n = list.front(); n != nullptr && !list.is_end(n); n = n->next()) {
      if (n->kind() == kLruResource) out.push_back(Resource::FromLruNode(n));
    }
    return out;
  }

  std::vector<Resource*> Walk(ResourceManager* man) {
    std::vector<Resource*> out;
    MutexLock lock(lru_.lock());
    LruCursor cursor(&lru_);
    for (Resource* r = cursor.First(man); r != nullptr; r = cursor.Next()) out.push_back(r);
    cursor.Fini();
    return out;
  }

  Lru lru_;
  SystemManager sys_;
  TtManager tt_;
  std::vector<std::unique_ptr<Resource>> live_;
};

// ttm_resource_init_basic: fields set, usage grows by the size, alone on lru[prio].
TEST_F(LruTest, ttm_resource_init_basic) {
  Resource* r = Add(&tt_, 2);
  EXPECT_EQ(r->mem_type(), kMemTt);
  EXPECT_EQ(r->size(), 4_KiB);
  EXPECT_EQ(r->start(), 0u);
  EXPECT_EQ(r->bus().caching, Caching::kCached);
  EXPECT_FALSE(r->bus().is_iomem);
  EXPECT_EQ(tt_.usage(), 4096u);
  MutexLock lock(lru_.lock());
  EXPECT_EQ(Order(tt_.lru(2)), std::vector<Resource*>{r});
  for (unsigned p : {0u, 1u, 3u}) EXPECT_TRUE(tt_.lru(p).empty());
}

// ttm_resource_init_pinned: an unevictable (pinned) resource lives on the device list.
TEST_F(LruTest, ttm_resource_init_pinned) {
  Resource* r = Add(&sys_, 0, nullptr, /*unevictable=*/true);
  {
    MutexLock lock(lru_.lock());
    EXPECT_EQ(Order(lru_.unevictable()), std::vector<Resource*>{r});
    EXPECT_TRUE(sys_.lru(0).empty());
  }
  Remove(r);
  MutexLock lock(lru_.lock());
  EXPECT_TRUE(lru_.unevictable().empty());
}

// ttm_resource_fini_basic: off the LRU, usage back to 0.
TEST_F(LruTest, ttm_resource_fini_basic) {
  Resource* r = Add(&tt_, 0);
  Remove(r);
  EXPECT_EQ(tt_.usage(), 0u);
  MutexLock lock(lru_.lock());
  EXPECT_TRUE(tt_.lru(0).empty());
}

// ttm_resource_manager_set_used_basic and usage accessors.
TEST_F(LruTest, ttm_resource_manager_set_used_basic) {
  TtManager man(kMemPriv, 1_MiB);
  EXPECT_FALSE(man.use_type());
  man.set_use_type(true);
  EXPECT_TRUE(man.use_type());
  man.set_use_type(false);
  EXPECT_FALSE(man.use_type());
  EXPECT_EQ(man.usage(), 0u);
}

TEST_F(LruTest, MoveToTailMarksMostRecentlyUsed) {
  Resource* a = Add(&sys_, 1);
  Resource* b = Add(&sys_, 1);
  Resource* c = Add(&sys_, 1);
  MutexLock lock(lru_.lock());
  lru_.MoveToTail(a);
  EXPECT_EQ(Order(sys_.lru(1)), (std::vector<Resource*>{b, c, a}));
}

TEST_F(LruTest, WalkGoesLowPriorityFirstOldestFirst) {
  Resource* p1a = Add(&sys_, 1);
  Resource* p0a = Add(&sys_, 0);
  Resource* p3 = Add(&sys_, 3);
  Resource* p0b = Add(&sys_, 0);
  Resource* p1b = Add(&sys_, 1);
  Add(&sys_, 0, nullptr, /*unevictable=*/true);  // never walked
  EXPECT_EQ(Walk(&sys_), (std::vector<Resource*>{p0a, p0b, p1a, p1b, p3}));
}

TEST_F(LruTest, PriorityChangeMovesList) {
  Resource* a = Add(&sys_, 0);
  MutexLock lock(lru_.lock());
  lru_.SetPriority(a, 3);
  EXPECT_TRUE(sys_.lru(0).empty());
  EXPECT_EQ(Order(sys_.lru(3)), std::vector<Resource*>{a});
}

// The cursor keeps its place through lock drops: resources ahead of it may be bumped, the
// current one freed, and nothing not yet visited is skipped.
TEST_F(LruTest, CursorSurvivesBumpsAndFrees) {
  std::vector<Resource*> rs;
  for (int i = 0; i < 6; ++i) rs.push_back(Add(&sys_, 0));
  std::vector<Resource*> seen;
  MutexLock lock(lru_.lock());
  LruCursor cursor(&lru_);
  Resource* r = cursor.First(&sys_);
  ASSERT_EQ(r, rs[0]);
  seen.push_back(r);
  // While "unlocked": rs[0] (current) is freed and rs[3] is bumped to the tail.
  lru_.RemoveResource(rs[0]);
  lru_.MoveToTail(rs[3]);
  for (r = cursor.Next(); r != nullptr; r = cursor.Next()) seen.push_back(r);
  cursor.Fini();
  EXPECT_EQ(seen, (std::vector<Resource*>{rs[0], rs[1], rs[2], rs[4], rs[5], rs[3]}));
  // Put rs[0] back so the fixture can free it.
  lru_.AddResource(rs[0], rs[0]->priority(), false);
}

TEST_F(LruTest, CursorInitFiniBalanced) {
  Add(&sys_, 0);
  MutexLock lock(lru_.lock());
  LruCursor cursor(&lru_);
  EXPECT_FALSE(cursor.active());
  cursor.Fini();  // idempotent before start
  ASSERT_NE(cursor.First(&sys_), nullptr);
  EXPECT_TRUE(cursor.active());
  EXPECT_EQ(sys_.lru(0).CountSlow(), 2u);  // the resource + the hitch
  EXPECT_EQ(cursor.Next(), nullptr);       // end of walk finishes the cursor
  EXPECT_FALSE(cursor.active());
  EXPECT_EQ(sys_.lru(0).CountSlow(), 1u);
  cursor.Fini();
  cursor.Fini();
}

TEST_F(LruTest, EmptyManagerWalk) { EXPECT_TRUE(Walk(&tt_).empty()); }

// Bulk members stay contiguous whatever the interleaving of additions.
TEST_F(LruTest, BulkMembersStayContiguous) {
  LruBulkMove bulk(&lru_);
  Resource* a = Add(&sys_, 0, &bulk);
  Resource* x = Add(&sys_, 0);
  Resource* b = Add(&sys_, 0, &bulk);
  Resource* y = Add(&sys_, 0);
  Resource* c = Add(&sys_, 0, &bulk);
  {
    MutexLock lock(lru_.lock());
    EXPECT_EQ(Order(sys_.lru(0)), (std::vector<Resource*>{a, b, c, x, y}));
    EXPECT_EQ(bulk.range(kMemSystem, 0).first, a);
    EXPECT_EQ(bulk.range(kMemSystem, 0).last, c);
    // ttm_bo_unreserve_bulk: moving a member to the tail makes it the range's last.
    lru_.MoveToTail(a);
    EXPECT_EQ(Order(sys_.lru(0)), (std::vector<Resource*>{b, c, a, x, y}));
    EXPECT_EQ(bulk.range(kMemSystem, 0).first, b);
    EXPECT_EQ(bulk.range(kMemSystem, 0).last, a);
    // One step moves the whole range to the tail.
    bulk.MoveTail();
    EXPECT_EQ(Order(sys_.lru(0)), (std::vector<Resource*>{x, y, b, c, a}));
  }
  for (Resource* r : {a, b, c}) Remove(r);
  MutexLock lock(lru_.lock());
  EXPECT_EQ(bulk.range(kMemSystem, 0).first, nullptr);
}

// ttm_bo_pin_unpin_resource / ttm_bo_multiple_pin_one_unpin: unevictable resources leave the
// bulk range; becoming evictable again re-adds them as the range's last.
TEST_F(LruTest, UnevictableLeavesBulk) {
  LruBulkMove bulk(&lru_);
  Resource* a = Add(&tt_, 1, &bulk);
  {
    MutexLock lock(lru_.lock());
    lru_.SetUnevictable(a, true);
    EXPECT_EQ(bulk.range(kMemTt, 1).first, nullptr);
    EXPECT_EQ(bulk.range(kMemTt, 1).last, nullptr);
    EXPECT_EQ(Order(lru_.unevictable()), std::vector<Resource*>{a});
    lru_.SetUnevictable(a, false);
    EXPECT_EQ(bulk.range(kMemTt, 1).last, a);
    EXPECT_TRUE(lru_.unevictable().empty());
  }
  Remove(a);
}

TEST_F(LruTest, BulkSpansTypesAndPriorities) {
  LruBulkMove bulk(&lru_);
  Resource* s0 = Add(&sys_, 0, &bulk);
  Resource* other = Add(&sys_, 0);
  Resource* t2 = Add(&tt_, 2, &bulk);
  Resource* t2other = Add(&tt_, 2);
  MutexLock lock(lru_.lock());
  bulk.MoveTail();
  EXPECT_EQ(Order(sys_.lru(0)), (std::vector<Resource*>{other, s0}));
  EXPECT_EQ(Order(tt_.lru(2)), (std::vector<Resource*>{t2other, t2}));
  lru_.SetBulkMove(s0, nullptr);
  lru_.SetBulkMove(t2, nullptr);
  EXPECT_EQ(bulk.range(kMemSystem, 0).first, nullptr);
  EXPECT_EQ(bulk.range(kMemTt, 2).first, nullptr);
}

// A bulk tail move while a cursor is parked inside the range drags the cursor behind the range:
// what came after the range is not skipped and the walk ends. The members, just marked recently
// used, come again at the tail (as any bumped resource does); without the cursor adjustment the
// hitch would travel with the range and x, y would be skipped.
TEST_F(LruTest, BulkMoveTailDragsCursor) {
  LruBulkMove bulk(&lru_);
  Resource* a = Add(&sys_, 0, &bulk);
  Resource* b = Add(&sys_, 0, &bulk);
  Resource* c = Add(&sys_, 0, &bulk);
  Resource* x = Add(&sys_, 0);
  Resource* y = Add(&sys_, 0);
  std::vector<Resource*> seen;
  MutexLock lock(lru_.lock());
  LruCursor cursor(&lru_);
  seen.push_back(cursor.First(&sys_));  // a: the cursor's hitch is now inside the bulk range
  bulk.MoveTail();
  for (Resource* r = cursor.Next(); r != nullptr; r = cursor.Next()) seen.push_back(r);
  cursor.Fini();
  EXPECT_EQ(Order(sys_.lru(0)), (std::vector<Resource*>{x, y, a, b, c}));
  EXPECT_EQ(seen, (std::vector<Resource*>{a, x, y, a, b, c}));
  for (Resource* r : {a, b, c}) lru_.SetBulkMove(r, nullptr);
}

TEST_F(LruTest, BulkDestroyDetachesCursors) {
  auto bulk = std::make_unique<LruBulkMove>(&lru_);
  Resource* a = Add(&sys_, 0, bulk.get());
  Add(&sys_, 0);
  MutexLock lock(lru_.lock());
  LruCursor cursor(&lru_);
  ASSERT_EQ(cursor.First(&sys_), a);
  lru_.SetBulkMove(a, nullptr);
  lru_.lock()->Unlock();
  bulk.reset();  // takes the LRU lock itself and detaches the cursor
  lru_.lock()->Lock();
  EXPECT_NE(cursor.Next(), nullptr);
  cursor.Fini();
}

// Random operations against an invariant check: every resource on exactly one list, usage
// equals the sum of sizes, bulk ranges contiguous and holding exactly the evictable members.
TEST_F(LruTest, RandomOperationsKeepInvariants) {
  std::mt19937 rng(1234);
  LruBulkMove bulk(&lru_);
  std::vector<Resource*> rs;
  ResourceManager* mans[2] = {&sys_, &tt_};
  for (int step = 0; step < 3000; ++step) {
    int op = static_cast<int>(rng() % 7);
    if (rs.size() < 4 || op == 0) {
      rs.push_back(Add(mans[rng() % 2], rng() % kNumPriorities, (rng() % 2) ? &bulk : nullptr,
                       rng() % 5 == 0));
      continue;
    }
    Resource* r = rs[rng() % rs.size()];
    MutexLock lock(lru_.lock());
    switch (op) {
      case 1:
        lru_.MoveToTail(r);
        break;
      case 2:
        lru_.SetUnevictable(r, !r->unevictable());
        break;
      case 3:
        lru_.SetPriority(r, rng() % kNumPriorities);
        break;
      case 4:
        lru_.SetBulkMove(r, r->bulk_move() ? nullptr : &bulk);
        break;
      case 5:
        bulk.MoveTail();
        break;
      case 6: {
        lru_.lock()->Unlock();
        Remove(r);
        lru_.lock()->Lock();
        rs.erase(std::find(rs.begin(), rs.end(), r));
        break;
      }
    }
    // Invariants.
    std::map<Resource*, int> on_lists;
    std::uint64_t usage[2] = {0, 0};
    for (int m = 0; m < 2; ++m) {
      for (unsigned p = 0; p < kNumPriorities; ++p) {
        std::vector<Resource*> order = Order(mans[m]->lru(p));
        for (Resource* x : order) {
          ++on_lists[x];
          ASSERT_FALSE(x->unevictable());
          ASSERT_EQ(x->priority(), p);
          ASSERT_EQ(x->manager(), mans[m]);
        }
        // The bulk range for (type, p) is contiguous and has exactly the members.
        LruBulkMove::Range range = bulk.range(mans[m]->mem_type(), p);
        std::vector<Resource*> members;
        for (Resource* x : order) {
          if (x->bulk_move() == &bulk) members.push_back(x);
        }
        if (members.empty()) {
          ASSERT_EQ(range.first, nullptr);
        } else {
          auto first = std::find(order.begin(), order.end(), range.first);
          auto last = std::find(order.begin(), order.end(), range.last);
          ASSERT_NE(first, order.end());
          ASSERT_NE(last, order.end());
          ASSERT_EQ(std::vector<Resource*>(first, last + 1), members) << "step " << step;
        }
      }
    }
    for (Resource* x : Order(lru_.unevictable())) {
      ++on_lists[x];
      ASSERT_TRUE(x->unevictable());
    }
    for (Resource* x : rs) {
      ASSERT_EQ(on_lists[x], 1);
      usage[x->manager() == &tt_] += x->size().value();
    }
    ASSERT_EQ(sys_.usage(), usage[0]);
    ASSERT_EQ(tt_.usage(), usage[1]);
  }
  MutexLock lock(lru_.lock());
  for (Resource* r : rs) lru_.SetBulkMove(r, nullptr);
}

}  // namespace
}  // namespace uttm
