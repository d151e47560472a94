// Copyright (c) uttm developers.
//
// list_link.h: the links of uttm's intrusive, circular, doubly linked lists: what a public
// object embeds to be on one (a resource on an LRU, a GEM object on a GEM LRU). The typed list
// views and their iteration stay internal (src/base/intrusive_list.h).
//
// An object joins a list by deriving from ListLink<Tag> (one base per list it can be on; the Tag
// tells the bases apart). Every node carries a small `kind`, so one list can hold different
// node types side by side: the LRU lists hold resources and the "hitch" nodes that walk cursors
// park in the list (TTM's ttm_lru_item RESOURCE/HITCH). Conversion from a node back to its
// object is a static_cast, never pointer arithmetic.
//
// Nothing here allocates or locks: the owner of a list protects it (e.g. the device LRU lock).
// Nodes must be unlinked before they are destroyed (checked in debug builds).
#ifndef UTTM_LIST_LINK_H_
#define UTTM_LIST_LINK_H_

#include <cassert>
#include <cstddef>
#include <cstdint>

namespace uttm {

// A link. Unlinked nodes have null neighbours. Not copyable: identity is the position.
class ListNode {
 public:
  explicit ListNode(std::uint8_t kind = 0) : kind_(kind) {}
  ~ListNode() { assert(!linked() && "ListNode destroyed while on a list"); }
  ListNode(const ListNode&) = delete;
  ListNode& operator=(const ListNode&) = delete;

  bool linked() const { return next_ != nullptr; }
  std::uint8_t kind() const { return kind_; }
  ListNode* next() const { return next_; }
  ListNode* prev() const { return prev_; }

  // Inserts this (unlinked) node right after / before `pos` (which is linked or a head).
  void InsertAfter(ListNode* pos) {
    assert(!linked());
    prev_ = pos;
    next_ = pos->next_;
    pos->next_->prev_ = this;
    pos->next_ = this;
  }
  void InsertBefore(ListNode* pos) { InsertAfter(pos->prev_); }

  // Removes this node from its list; no-op when not linked.
  void Unlink() {
    if (!linked()) return;
    prev_->next_ = next_;
    next_->prev_ = prev_;
    prev_ = next_ = nullptr;
  }

 private:
  friend class ListHead;
  ListNode* prev_ = nullptr;
  ListNode* next_ = nullptr;
  std::uint8_t kind_;
};

// The sentinel of a list. Iterating a ListHead visits raw nodes of every kind.
class ListHead {
 public:
  ListHead() : sentinel_(kSentinelKind) { sentinel_.prev_ = sentinel_.next_ = &sentinel_; }
  ~ListHead() {
    assert(empty() && "ListHead destroyed with nodes on it");
    sentinel_.prev_ = sentinel_.next_ = nullptr;
  }
  ListHead(const ListHead&) = delete;
  ListHead& operator=(const ListHead&) = delete;

  static constexpr std::uint8_t kSentinelKind = 0xff;

  bool empty() const { return sentinel_.next_ == &sentinel_; }
  // First / last node, or nullptr when empty.
  ListNode* front() const { return empty() ? nullptr : sentinel_.next_; }
  ListNode* back() const { return empty() ? nullptr : sentinel_.prev_; }
  // The position past the last node (the sentinel); never dereference it as an object.
  ListNode* end_node() { return &sentinel_; }
  const ListNode* end_node() const { return &sentinel_; }
  bool is_end(const ListNode* n) const { return n == &sentinel_; }

  void PushBack(ListNode* n) { n->InsertBefore(&sentinel_); }
  void PushFront(ListNode* n) { n->InsertAfter(&sentinel_); }
  // Unlinks `n` (from whatever list holds it) and appends it here.
  void MoveToTail(ListNode* n) {
    n->Unlink();
    PushBack(n);
  }

  // Moves the run first..last (inclusive, in list order, on this list) to the tail in O(1).
  void BulkMoveTail(ListNode* first, ListNode* last) {
    if (last->next_ == &sentinel_) return;  // already at the tail
    ListNode* before = first->prev_;
    ListNode* after = last->next_;
    before->next_ = after;
    after->prev_ = before;
    ListNode* tail = sentinel_.prev_;
    tail->next_ = first;
    first->prev_ = tail;
    last->next_ = &sentinel_;
    sentinel_.prev_ = last;
  }

  // Moves every node of `other` to the tail of this list, keeping their order.
  void SpliceTail(ListHead* other) {
    if (other->empty()) return;
    ListNode* first = other->sentinel_.next_;
    ListNode* last = other->sentinel_.prev_;
    other->sentinel_.next_ = other->sentinel_.prev_ = &other->sentinel_;
    ListNode* tail = sentinel_.prev_;
    tail->next_ = first;
    first->prev_ = tail;
    last->next_ = &sentinel_;
    sentinel_.prev_ = last;
  }

  // Number of nodes of every kind. O(n); for tests and debug output.
  std::size_t CountSlow() const {
    std::size_t n = 0;
    for (const ListNode* p = sentinel_.next_; p != &sentinel_; p = p->next_) ++n;
    return n;
  }

 private:
  ListNode sentinel_;
};

// The base an object derives from to be on lists tagged `Tag`.
template <typename Tag>
class ListLink : public ListNode {
 public:
  explicit ListLink(std::uint8_t kind = 0) : ListNode(kind) {}
};

}  // namespace uttm

#endif  // UTTM_LIST_LINK_H_
