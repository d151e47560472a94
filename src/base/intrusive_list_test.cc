// Copyright (c) uttm developers.
#include "base/intrusive_list.h"

#include <gtest/gtest.h>

#include <vector>

namespace uttm {
namespace {

struct LruTag {};
struct OtherTag {};
constexpr std::uint8_t kEntry = 1;
constexpr std::uint8_t kHitch = 2;

struct Entry : ListLink<LruTag>, ListLink<OtherTag> {
  explicit Entry(int v) : ListLink<LruTag>(kEntry), ListLink<OtherTag>(kEntry), value(v) {}
  ~Entry() {
    ListLink<LruTag>::Unlink();
    ListLink<OtherTag>::Unlink();
  }
  int value;
};

struct Hitch : ListLink<LruTag> {
  Hitch() : ListLink<LruTag>(kHitch) {}
  ~Hitch() { Unlink(); }
};

using EntryList = IntrusiveList<Entry, LruTag, kEntry>;

std::vector<int> Values(EntryList& list) {
  std::vector<int> out;
  for (Entry& e : list) out.push_back(e.value);
  return out;
}

TEST(IntrusiveList, PushAndIterate) {
  EntryList list;
  Entry a(1), b(2), c(3);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.front(), nullptr);
  list.PushBack(&a);
  list.PushBack(&b);
  list.PushFront(&c);
  EXPECT_EQ(Values(list), (std::vector<int>{3, 1, 2}));
  EXPECT_EQ(list.front(), &c);
  EXPECT_EQ(list.back(), &b);
  EXPECT_EQ(list.SizeSlow(), 3u);
  EntryList::Remove(&a);
  EXPECT_FALSE(EntryList::IsLinked(&a));
  EXPECT_EQ(Values(list), (std::vector<int>{3, 2}));
  EntryList::Remove(&a);  // idempotent
  EntryList::Remove(&b);
  EntryList::Remove(&c);
  EXPECT_TRUE(list.empty());
}

TEST(IntrusiveList, TypedNodesSkipOtherKinds) {
  EntryList list;
  Entry a(1), b(2);
  Hitch h;
  list.PushBack(&a);
  list.head().PushBack(&h);
  list.PushBack(&b);
  EXPECT_EQ(Values(list), (std::vector<int>{1, 2}));
  EXPECT_EQ(list.head().CountSlow(), 3u);
  EXPECT_EQ(EntryList::FromNode(&h), nullptr);
  // A hitch can be moved behind an entry to remember a position.
  h.Unlink();
  h.InsertAfter(EntryList::ToNode(&b));
  EXPECT_EQ(list.head().back(), &h);
  EXPECT_EQ(list.back(), &b);
  EntryList::Remove(&a);
  EntryList::Remove(&b);
}

TEST(IntrusiveList, OneObjectOnTwoLists) {
  EntryList lru;
  IntrusiveList<Entry, OtherTag, kEntry> other;
  Entry a(1), b(2);
  lru.PushBack(&a);
  lru.PushBack(&b);
  other.PushBack(&b);
  other.PushBack(&a);
  EXPECT_EQ(Values(lru), (std::vector<int>{1, 2}));
  std::vector<int> o;
  for (Entry& e : other) o.push_back(e.value);
  EXPECT_EQ(o, (std::vector<int>{2, 1}));
}

TEST(IntrusiveList, MoveToTail) {
  EntryList list;
  Entry a(1), b(2), c(3);
  list.PushBack(&a);
  list.PushBack(&b);
  list.PushBack(&c);
  list.MoveToTail(&a);
  EXPECT_EQ(Values(list), (std::vector<int>{2, 3, 1}));
  list.MoveToTail(&a);
  EXPECT_EQ(Values(list), (std::vector<int>{2, 3, 1}));
}

TEST(IntrusiveList, BulkMoveTail) {
  EntryList list;
  std::vector<std::unique_ptr<Entry>> es;
  for (int i = 0; i < 6; ++i) {
    es.push_back(std::make_unique<Entry>(i));
    list.PushBack(es.back().get());
  }
  // Move the run 1..3 to the tail in one step.
  list.head().BulkMoveTail(EntryList::ToNode(es[1].get()), EntryList::ToNode(es[3].get()));
  EXPECT_EQ(Values(list), (std::vector<int>{0, 4, 5, 1, 2, 3}));
  // A run already at the tail stays.
  list.head().BulkMoveTail(EntryList::ToNode(es[2].get()), EntryList::ToNode(es[3].get()));
  EXPECT_EQ(Values(list), (std::vector<int>{0, 4, 5, 1, 2, 3}));
  // The whole list as a run.
  list.head().BulkMoveTail(EntryList::ToNode(es[0].get()), EntryList::ToNode(es[3].get()));
  EXPECT_EQ(Values(list), (std::vector<int>{0, 4, 5, 1, 2, 3}));
  // Backwards links stay consistent.
  std::vector<int> rev;
  for (ListNode* n = list.head().back(); !list.head().is_end(n); n = n->prev()) {
    rev.push_back(EntryList::FromNode(n)->value);
  }
  EXPECT_EQ(rev, (std::vector<int>{3, 2, 1, 5, 4, 0}));
}

TEST(IntrusiveList, SpliceTail) {
  EntryList a, b;
  Entry x(1), y(2), z(3);
  a.PushBack(&x);
  b.PushBack(&y);
  b.PushBack(&z);
  a.head().SpliceTail(&b.head());
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(Values(a), (std::vector<int>{1, 2, 3}));
  a.head().SpliceTail(&b.head());  // empty source
  EXPECT_EQ(Values(a), (std::vector<int>{1, 2, 3}));
}

}  // namespace
}  // namespace uttm
