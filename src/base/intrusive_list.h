// Copyright (c) uttm developers.
//
// intrusive_list.h (internal, not installed): typed views of the lists whose links are in
// uttm/list_link.h.
#ifndef UTTM_SRC_BASE_INTRUSIVE_LIST_H_
#define UTTM_SRC_BASE_INTRUSIVE_LIST_H_

#include <cstddef>
#include <cstdint>
#include <iterator>

#include "uttm/list_link.h"

namespace uttm {

// A typed view of a ListHead: iterates the nodes whose kind is `Kind` as T&, skipping others.
// T must derive from ListLink<Tag>.
template <typename T, typename Tag, std::uint8_t Kind = 0>
class IntrusiveList {
 public:
  static T* FromNode(ListNode* n) {
    return (n == nullptr || n->kind() != Kind) ? nullptr
                                               : static_cast<T*>(static_cast<ListLink<Tag>*>(n));
  }
  static ListNode* ToNode(T* t) { return static_cast<ListLink<Tag>*>(t); }

  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;

    iterator() = default;
    iterator(ListNode* n, const ListHead* head) : n_(n), head_(head) { SkipOthers(); }
    T& operator*() const { return *FromNode(n_); }
    T* operator->() const { return FromNode(n_); }
    iterator& operator++() {
      n_ = n_->next();
      SkipOthers();
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.n_ == b.n_; }

   private:
    void SkipOthers() {
      while (!head_->is_end(n_) && n_->kind() != Kind) n_ = n_->next();
    }
    ListNode* n_ = nullptr;
    const ListHead* head_ = nullptr;
  };

  ListHead& head() { return head_; }
  const ListHead& head() const { return head_; }
  bool empty() const { return head_.empty(); }
  iterator begin() { return iterator(head_.end_node()->next(), &head_); }
  iterator end() { return iterator(head_.end_node(), &head_); }
  // First / last object of this kind, or nullptr.
  T* front() {
    auto it = begin();
    return it == end() ? nullptr : &*it;
  }
  T* back() {
    for (ListNode* n = head_.back(); n != nullptr && !head_.is_end(n); n = n->prev()) {
      if (n->kind() == Kind) return FromNode(n);
    }
    return nullptr;
  }

  void PushBack(T* t) { head_.PushBack(ToNode(t)); }
  void PushFront(T* t) { head_.PushFront(ToNode(t)); }
  void MoveToTail(T* t) { head_.MoveToTail(ToNode(t)); }
  static void Remove(T* t) { ToNode(t)->Unlink(); }
  static bool IsLinked(T* t) { return ToNode(t)->linked(); }
  // Objects of this kind on the list. O(n).
  std::size_t SizeSlow() {
    std::size_t n = 0;
    for (auto it = begin(); it != end(); ++it) ++n;
    return n;
  }

 private:
  ListHead head_;
};

}  // namespace uttm

#endif  // UTTM_SRC_BASE_INTRUSIVE_LIST_H_
