// Copyright (c) uttm developers.
#include "uttm/lru.h"

#include <algorithm>

#include "base/check.h"
#include "uttm/lru_bulk_move.h"
#include "uttm/lru_cursor.h"

namespace uttm {
namespace {

// The next resource after `n` on its list, skipping hitches; null at the end of the list.
Resource* NextResource(ListNode* n) {
  for (ListNode* p = n->next(); p != nullptr && p->kind() != ListHead::kSentinelKind;
       p = p->next()) {
    if (p->kind() == kLruResource) return Resource::FromLruNode(p);
  }
  return nullptr;
}

Resource* PrevResource(ListNode* n) {
  for (ListNode* p = n->prev(); p != nullptr && p->kind() != ListHead::kSentinelKind;
       p = p->prev()) {
    if (p->kind() == kLruResource) return Resource::FromLruNode(p);
  }
  return nullptr;
}

// Moves `res` right behind the range's last member and makes it the last (TTM's
// ttm_lru_bulk_move_pos_tail).
void MoveToRangeTail(LruBulkMove::Range* pos, Resource* res) {
  if (pos->last == res) return;
  if (pos->first == res) pos->first = NextResource(res->lru_node());
  res->lru_node()->Unlink();
  res->lru_node()->InsertAfter(pos->last->lru_node());
  pos->last = res;
}

}  // namespace

Lru::~Lru() {
  MutexLock lock(&mu_);
  UTTM_CHECK(unevictable_.empty(), "device destroyed with resources on its unevictable list");
}

void Lru::AddResource(Resource* res, unsigned priority, bool pinned) {
  res->set_priority(std::min(priority, kNumPriorities - 1));
  res->set_unevictable(pinned);
  ResourceManager* man = res->manager();
  if (res->unevictable()) {
    unevictable_.PushBack(res->lru_node());
  } else {
    man->lru(res->priority()).PushBack(res->lru_node());
  }
  man->usage_.fetch_add(res->size().value(), std::memory_order_relaxed);
  BulkAdd(res);
}

void Lru::RemoveResource(Resource* res) {
  BulkDel(res);
  res->lru_node()->Unlink();
  res->manager()->usage_.fetch_sub(res->size().value(), std::memory_order_relaxed);
}

void Lru::MoveToTail(Resource* res) {
  if (res->unevictable()) {
    unevictable_.MoveToTail(res->lru_node());
  } else if (res->bulk_move() != nullptr) {
    MoveToRangeTail(&res->bulk_move()->pos(res), res);
  } else {
    res->manager()->lru(res->priority()).MoveToTail(res->lru_node());
  }
}

void Lru::SetUnevictable(Resource* res, bool unevictable) {
  if (res->unevictable() == unevictable) return;
  if (unevictable) BulkDel(res);
  res->set_unevictable(unevictable);
  if (unevictable) {
    unevictable_.MoveToTail(res->lru_node());
  } else {
    res->manager()->lru(res->priority()).MoveToTail(res->lru_node());
    BulkAdd(res);
  }
}

void Lru::SetPriority(Resource* res, unsigned priority) {
  UTTM_CHECK(priority < kNumPriorities, "LRU priority out of range");
  if (res->priority() == priority) return;
  BulkDel(res);
  res->set_priority(priority);
  if (!res->unevictable()) {
    res->manager()->lru(priority).MoveToTail(res->lru_node());
    BulkAdd(res);
  }
}

void Lru::SetBulkMove(Resource* res, LruBulkMove* bulk) {
  if (res->bulk_move() == bulk) return;
  BulkDel(res);
  res->set_bulk_move(bulk);
  BulkAdd(res);
}

void Lru::BulkAdd(Resource* res) {
  LruBulkMove* bulk = res->bulk_move();
  if (bulk == nullptr || res->unevictable()) return;
  LruBulkMove::Range& pos = bulk->pos(res);
  if (pos.first == nullptr) {
    pos.first = pos.last = res;
    return;
  }
  MoveToRangeTail(&pos, res);
}

void Lru::BulkDel(Resource* res) {
  LruBulkMove* bulk = res->bulk_move();
  if (bulk == nullptr || res->unevictable() || !res->lru_node()->linked()) return;
  LruBulkMove::Range& pos = bulk->pos(res);
  if (pos.first == nullptr || pos.last == nullptr) return;
  if (pos.first == res && pos.last == res) {
    pos.first = pos.last = nullptr;
  } else if (pos.first == res) {
    pos.first = NextResource(res->lru_node());
  } else if (pos.last == res) {
    pos.last = PrevResource(res->lru_node());
  } else {
    // A member in the middle: take it out of the range by moving it right behind the range.
    res->lru_node()->Unlink();
    res->lru_node()->InsertAfter(pos.last->lru_node());
  }
}

LruBulkMove::~LruBulkMove() {
  MutexLock lock(lru_->lock());
  for (const auto& per_type : pos_) {
    for (const Range& r : per_type) {
      UTTM_CHECK(r.first == nullptr, "bulk move destroyed while resources are members");
    }
  }
  while (ListNode* n = cursors_.front()) {
    LruCursor* cursor = LruCursor::FromBulkLink(n);
    cursor->lru_->lock()->AssertHeld();
    cursor->ClearBulk();
  }
}

void LruBulkMove::AdjustCursors() {
  lru_->lock()->AssertHeld();
  while (ListNode* n = cursors_.front()) {
    LruCursor* cursor = LruCursor::FromBulkLink(n);
    // A cursor attached to this bulk move walks the same device, hence the same lock.
    cursor->lru_->lock()->AssertHeld();
    Range& r = pos_[cursor->bulk_mem_type_][cursor->priority_];
    if (r.last != nullptr) {
      cursor->hitch_.Unlink();
      cursor->hitch_.InsertAfter(r.last->lru_node());
    }
    cursor->ClearBulk();
  }
}

void LruBulkMove::MoveTail() {
  lru_->lock()->AssertHeld();
  AdjustCursors();
  for (auto& per_type : pos_) {
    for (unsigned prio = 0; prio < kNumPriorities; ++prio) {
      Range& r = per_type[prio];
      if (r.first == nullptr) continue;
      r.first->manager()->lru(prio).BulkMoveTail(r.first->lru_node(), r.last->lru_node());
    }
  }
}

LruCursor::~LruCursor() {
  UTTM_CHECK(!hitch_.linked() && !bulk_link()->linked(), "LruCursor destroyed without Fini()");
}

Resource* LruCursor::First(ResourceManager* man) {
  lru_->lock()->AssertHeld();
  Fini();
  man_ = man;
  priority_ = 0;
  man->lru(0).PushFront(&hitch_);
  return Next();
}

Resource* LruCursor::Next() {
  lru_->lock()->AssertHeld();
  if (man_ == nullptr || !hitch_.linked()) return nullptr;
  for (;;) {
    ListHead& list = man_->lru(priority_);
    for (ListNode* n = hitch_.next(); !list.is_end(n); n = n->next()) {
      if (n->kind() != kLruResource) continue;
      Resource* res = Resource::FromLruNode(n);
      CheckBulk(res);
      hitch_.Unlink();
      hitch_.InsertAfter(n);
      return res;
    }
    if (++priority_ >= kNumPriorities) break;
    hitch_.Unlink();
    man_->lru(priority_).PushFront(&hitch_);
    ClearBulk();
  }
  Fini();
  return nullptr;
}

void LruCursor::Fini() {
  lru_->lock()->AssertHeld();
  hitch_.Unlink();
  ClearBulk();
}

void LruCursor::CheckBulk(Resource* next) {
  lru_->lock()->AssertHeld();
  LruBulkMove* bulk = next->bulk_move();
  if (bulk == bulk_) return;
  bulk_link()->Unlink();
  if (bulk != nullptr) {
    bulk->cursors_.PushBack(bulk_link());
    bulk_mem_type_ = next->mem_type();
  }
  bulk_ = bulk;
}

void LruCursor::ClearBulk() {
  lru_->lock()->AssertHeld();
  bulk_link()->Unlink();
  bulk_ = nullptr;
}

}  // namespace uttm
