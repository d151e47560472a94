// Copyright (c) uttm developers.
//
// RangeAllocator: address-ordered node list (each node owns the hole after it, as in drm_mm)
// plus a segregated size-class index of the nodes that have a hole.
#include "resource/range_allocator.h"

#include <bit>
#include <cinttypes>
#include <cstdio>

#include "base/check.h"
#include "resource/range_bins.h"

namespace uttm {
namespace {

using internal::RangeBinMin;
using internal::RangeBinOf;

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();
// Fitting holes compared within one size class before the smallest so far is taken.
constexpr int kClassScan = 16;

// Lowest x >= v with x % a == 0; false on overflow.
bool AlignUp(std::uint64_t v, std::uint64_t a, std::uint64_t* out) {
  if (a <= 1) {
    *out = v;
    return true;
  }
  const std::uint64_t rem = (a & (a - 1)) == 0 ? (v & (a - 1)) : v % a;
  if (rem == 0) {
    *out = v;
    return true;
  }
  return !__builtin_add_overflow(v, a - rem, out);
}

std::uint64_t AlignDown(std::uint64_t v, std::uint64_t a) {
  if (a <= 1) return v;
  return (a & (a - 1)) == 0 ? (v & ~(a - 1)) : v - v % a;
}

}  // namespace

RangeNode::~RangeNode() {
  if (owner_ != nullptr && this != &owner_->head_) {
    (void)owner_->RemoveNode(this);
  }
}

RangeAllocator::RangeAllocator(std::uint64_t start, std::uint64_t size) : size_(size) {
  static_assert(kBins == internal::kRangeBins, "the header's class count must match");
  std::uint64_t end;
  UTTM_CHECK(!__builtin_add_overflow(start, size, &end), "RangeAllocator: start + size overflows");
  head_.start_ = start;
  head_.size_ = 0;
  head_.prev_ = &head_;
  head_.next_ = &head_;
  head_.owner_ = this;
  SetHole(&head_, size);
}

RangeAllocator::~RangeAllocator() {
  RangeNode* n = head_.next_;
  while (n != &head_) {
    RangeNode* next = n->next_;
    n->owner_ = nullptr;
    n->prev_ = n->next_ = n->bin_prev_ = n->bin_next_ = nullptr;
    n->hole_size_ = 0;
    n = next;
  }
}

// Links `n` (hole_size_ != 0) at the head of its size class.
void RangeAllocator::BinLink(RangeNode* n) {
  const std::uint32_t bin = RangeBinOf(n->hole_size_);
  n->bin_prev_ = nullptr;
  n->bin_next_ = bins_[bin];
  if (bins_[bin] != nullptr) {
    bins_[bin]->bin_prev_ = n;
  } else {
    bin_bits_[bin / 64] |= std::uint64_t{1} << (bin % 64);
    bin_summary_ |= std::uint64_t{1} << (bin / 64);
  }
  bins_[bin] = n;
  ++hole_count_;
}

// Unlinks `n` from the size class of its current hole_size_.
void RangeAllocator::BinUnlink(RangeNode* n) {
  if (n->bin_prev_ != nullptr) {
    n->bin_prev_->bin_next_ = n->bin_next_;
  } else {
    const std::uint32_t bin = RangeBinOf(n->hole_size_);
    bins_[bin] = n->bin_next_;
    if (n->bin_next_ == nullptr) {
      std::uint64_t& word = bin_bits_[bin / 64];
      word &= ~(std::uint64_t{1} << (bin % 64));
      if (word == 0) bin_summary_ &= ~(std::uint64_t{1} << (bin / 64));
    }
  }
  if (n->bin_next_ != nullptr) n->bin_next_->bin_prev_ = n->bin_prev_;
  n->bin_prev_ = n->bin_next_ = nullptr;
  --hole_count_;
}

// Changes the hole that follows `n`, keeping the size-class index in step.
void RangeAllocator::SetHole(RangeNode* n, std::uint64_t hole) {
  const std::uint64_t old = n->hole_size_;
  if (old == hole) return;
  if (old != 0 && hole != 0 && RangeBinOf(old) == RangeBinOf(hole)) {
    n->hole_size_ = hole;
  } else {
    if (old != 0) BinUnlink(n);  // while hole_size_ still names its class
    n->hole_size_ = hole;
    if (hole != 0) BinLink(n);
  }
  if (!indexed_) return;
  if (old == 0) {
    IndexInsert(n);
  } else if (hole == 0) {
    IndexErase(n);
  } else {
    IndexPullUp(n);
  }
}

// ---- address index: a treap of the nodes that have a hole, keyed by hole start (a node's
// end, which never changes while it is allocated), each subtree knowing its largest hole.

namespace {
std::uint64_t HoleStart(const RangeNode* n) { return n->end(); }
}  // namespace

void RangeAllocator::IndexPull(RangeNode* n) {
  std::uint64_t m = n->hole_size_;
  if (n->left_ != nullptr && n->left_->max_hole_ > m) m = n->left_->max_hole_;
  if (n->right_ != nullptr && n->right_->max_hole_ > m) m = n->right_->max_hole_;
  n->max_hole_ = m;
}

void RangeAllocator::IndexPullUp(RangeNode* n) {
  for (; n != nullptr; n = n->up_) IndexPull(n);
}

// Rotates x above its parent.
void RangeAllocator::IndexRotateUp(RangeNode* x) {
  RangeNode* p = x->up_;
  RangeNode* g = p->up_;
  if (p->left_ == x) {
    p->left_ = x->right_;
    if (x->right_ != nullptr) x->right_->up_ = p;
    x->right_ = p;
  } else {
    p->right_ = x->left_;
    if (x->left_ != nullptr) x->left_->up_ = p;
    x->left_ = p;
  }
  p->up_ = x;
  x->up_ = g;
  if (g == nullptr) {
    index_root_ = x;
  } else if (g->left_ == p) {
    g->left_ = x;
  } else {
    g->right_ = x;
  }
  IndexPull(p);
  IndexPull(x);
}

void RangeAllocator::IndexInsert(RangeNode* n) {
  prio_state_ ^= prio_state_ << 13;
  prio_state_ ^= prio_state_ >> 17;
  prio_state_ ^= prio_state_ << 5;
  n->prio_ = prio_state_;
  n->left_ = n->right_ = n->up_ = nullptr;
  n->max_hole_ = n->hole_size_;
  if (index_root_ == nullptr) {
    index_root_ = n;
    return;
  }
  const std::uint64_t key = HoleStart(n);
  RangeNode* c = index_root_;
  while (true) {
    if (n->hole_size_ > c->max_hole_) c->max_hole_ = n->hole_size_;
    RangeNode*& next = key < HoleStart(c) ? c->left_ : c->right_;
    if (next == nullptr) {
      next = n;
      break;
    }
    c = next;
  }
  n->up_ = c;
  while (n->up_ != nullptr && n->up_->prio_ < n->prio_) IndexRotateUp(n);
}

void RangeAllocator::IndexErase(RangeNode* n) {
  while (n->left_ != nullptr || n->right_ != nullptr) {
    RangeNode* c =
        n->right_ == nullptr || (n->left_ != nullptr && n->left_->prio_ > n->right_->prio_)
            ? n->left_
            : n->right_;
    IndexRotateUp(c);
  }
  RangeNode* p = n->up_;
  if (p == nullptr) {
    index_root_ = nullptr;
  } else {
    (p->left_ == n ? p->left_ : p->right_) = nullptr;
    IndexPullUp(p);
  }
  n->up_ = nullptr;
}

void RangeAllocator::EnsureIndex() {
  if (indexed_) return;
  indexed_ = true;
  RangeNode* n = &head_;
  do {
    if (n->hole_size_ != 0) IndexInsert(n);
    n = n->next_;
  } while (n != &head_);
}

// Lowest-addressed fitting hole in subtree t (in order, pruned by the largest hole and range).
RangeNode* RangeAllocator::FindLow(RangeNode* t, std::uint64_t size, const RangeInsertOptions& o,
                                   std::uint64_t* out) const {
  if (t == nullptr || t->max_hole_ < size) return nullptr;
  // Holes left of t end before t's node, so they end at or below HoleStart(t).
  if (HoleStart(t) > o.range_start) {
    if (RangeNode* r = FindLow(t->left_, size, o, out)) return r;
  }
  if (HoleStart(t) >= o.range_end) return nullptr;
  if (t->hole_size_ >= size && Fits(t, size, o, out)) return t;
  return FindLow(t->right_, size, o, out);
}

// Highest-addressed fitting hole in subtree t.
RangeNode* RangeAllocator::FindHigh(RangeNode* t, std::uint64_t size, const RangeInsertOptions& o,
                                    std::uint64_t* out) const {
  if (t == nullptr || t->max_hole_ < size) return nullptr;
  if (HoleStart(t) < o.range_end) {
    if (RangeNode* r = FindHigh(t->right_, size, o, out)) return r;
    if (t->hole_size_ >= size && Fits(t, size, o, out)) return t;
  }
  if (HoleStart(t) <= o.range_start) return nullptr;
  return FindHigh(t->left_, size, o, out);
}

// Can a node of `size` go into the hole after `before`? Sets *out to its start.
bool RangeAllocator::Fits(const RangeNode* before, std::uint64_t size, const RangeInsertOptions& o,
                          std::uint64_t* out) const {
  std::uint64_t lo = before->start_ + before->size_;
  std::uint64_t hi = lo + before->hole_size_;
  if (color_adjust_ != nullptr) {
    const RangeNode* b = before == &head_ ? nullptr : before;
    const RangeNode* a = before->next_ == &head_ ? nullptr : before->next_;
    color_adjust_(color_ctx_, b, a, o.color, &lo, &hi);
  }
  if (lo < o.range_start) lo = o.range_start;
  if (hi > o.range_end) hi = o.range_end;
  if (lo >= hi || hi - lo < size) return false;
  if (o.mode == RangeInsertMode::kHigh) {
    const std::uint64_t s = AlignDown(hi - size, o.alignment);
    if (s < lo) return false;
    *out = s;
    return true;
  }
  std::uint64_t s;
  if (!AlignUp(lo, o.alignment, &s)) return false;
  if (s > hi || hi - s < size) return false;
  *out = s;
  return true;
}

// First non-empty size class >= bin, or kBins: two bitmap lookups.
std::uint32_t RangeAllocator::NextBin(std::uint32_t bin) const {
  if (bin >= kBins) return kBins;
  std::uint32_t word = bin / 64;
  std::uint64_t bits = bin_bits_[word] & (kU64Max << (bin % 64));
  if (bits == 0) {
    const std::uint64_t rest = bin_summary_ & (kU64Max << word << 1);
    if (rest == 0) return kBins;
    word = static_cast<std::uint32_t>(std::countr_zero(rest));
    bits = bin_bits_[word];
  }
  return word * 64 + static_cast<std::uint32_t>(std::countr_zero(bits));
}

RangeNode* RangeAllocator::FindBest(std::uint64_t size, const RangeInsertOptions& o,
                                    std::uint64_t* out) const {
  // Smallest fitting hole of the first size class (from the request's own) that has one. A
  // class below 1024 holds one size, so there the first fitting hole is the best; above, up to
  // kClassScan fitting holes are compared unless one of the smallest possible size turns up.
  for (std::uint32_t bin = NextBin(RangeBinOf(size)); bin < kBins; bin = NextBin(bin + 1)) {
    const std::uint64_t floor = RangeBinMin(bin) > size ? RangeBinMin(bin) : size;
    RangeNode* best = nullptr;
    std::uint64_t best_start = 0;
    int budget = kClassScan;
    for (RangeNode* h = bins_[bin]; h != nullptr; h = h->bin_next_) {
      std::uint64_t start;
      if (h->hole_size_ < size || (best != nullptr && h->hole_size_ >= best->hole_size_)) continue;
      if (!Fits(h, size, o, &start)) continue;
      best = h;
      best_start = start;
      if (h->hole_size_ == floor || --budget == 0) break;
    }
    if (best != nullptr) {
      *out = best_start;
      return best;
    }
  }
  return nullptr;
}

// Links `node` = [start, start + size) into the hole after `before`.
void RangeAllocator::Place(RangeNode* before, RangeNode* node, std::uint64_t start,
                           std::uint64_t size, std::uint64_t color) {
  const std::uint64_t hole_end = before->start_ + before->size_ + before->hole_size_;
  node->start_ = start;
  node->size_ = size;
  node->color_ = color;
  node->owner_ = this;
  node->hole_size_ = 0;
  node->bin_prev_ = node->bin_next_ = nullptr;
  node->prev_ = before;
  node->next_ = before->next_;
  before->next_->prev_ = node;
  before->next_ = node;
  SetHole(before, start - (before->start_ + before->size_));
  SetHole(node, hole_end - (start + size));
  used_ += size;
  ++node_count_;
}

Status RangeAllocator::InsertNode(RangeNode* node, std::uint64_t size,
                                  const RangeInsertOptions& options) {
  if (node == nullptr) return Status(Errc::kInvalid, "RangeAllocator::InsertNode: null node");
  if (node->allocated()) {
    return Status(Errc::kInvalid, "RangeAllocator::InsertNode: node is already allocated");
  }
  // As drm_mm_insert_node_in_range: a range given backwards is a caller bug; a request that can
  // never fit (size 0, a range smaller than the request or outside the span) is ENOSPC.
  if (options.range_start > options.range_end) {
    return Status(Errc::kInvalid, "RangeAllocator::InsertNode: range_start is above range_end");
  }
  if (size == 0) return Status(Errc::kNoSpace, "RangeAllocator::InsertNode: size is 0");
  const std::uint64_t span_end = head_.start_ + size_;
  if (options.range_end - options.range_start < size || options.range_end <= head_.start_ ||
      options.range_start >= span_end) {
    return Status(Errc::kNoSpace,
                  "RangeAllocator::InsertNode: the range is smaller than the request or outside "
                  "the managed span");
  }
  if (size > size_ - used_) {
    return Status(Errc::kNoSpace, "RangeAllocator::InsertNode: request exceeds free space");
  }
  std::uint64_t start = 0;
  RangeNode* before = nullptr;
  switch (options.mode) {
    case RangeInsertMode::kBest:
      before = FindBest(size, options, &start);
      break;
    case RangeInsertMode::kLow:
      EnsureIndex();
      before = FindLow(index_root_, size, options, &start);
      break;
    case RangeInsertMode::kHigh:
      EnsureIndex();
      before = FindHigh(index_root_, size, options, &start);
      break;
  }
  if (before == nullptr) {
    return Status(Errc::kNoSpace, "RangeAllocator::InsertNode: no hole fits the request");
  }
  Place(before, node, start, size, options.color);
  return Status::Ok();
}

Status RangeAllocator::ReserveNode(RangeNode* node) {
  if (node == nullptr) return Status(Errc::kInvalid, "RangeAllocator::ReserveNode: null node");
  if (node->allocated()) {
    return Status(Errc::kInvalid, "RangeAllocator::ReserveNode: node is already allocated");
  }
  std::uint64_t end;
  if (node->size_ == 0 || __builtin_add_overflow(node->start_, node->size_, &end) ||
      node->start_ < head_.start_ || end > head_.start_ + size_) {
    // drm_mm_reserve_node: no hole holds such a node, ENOSPC.
    return Status(Errc::kNoSpace,
                  "RangeAllocator::ReserveNode: empty node or outside the managed span");
  }
  // The only hole that can contain the node is the last one starting at or below its start.
  EnsureIndex();
  RangeNode* before = nullptr;
  for (RangeNode* c = index_root_; c != nullptr;) {
    if (HoleStart(c) <= node->start_) {
      before = c;
      c = c->right_;
    } else {
      c = c->left_;
    }
  }
  if (before == nullptr) {
    return Status(Errc::kNoSpace, "RangeAllocator::ReserveNode: range is (partly) in use");
  }
  const std::uint64_t hole_start = before->start_ + before->size_;
  if (node->start_ < hole_start || end > hole_start + before->hole_size_) {
    return Status(Errc::kNoSpace, "RangeAllocator::ReserveNode: range is (partly) in use");
  }
  if (color_adjust_ != nullptr) {
    std::uint64_t lo = hole_start, hi = hole_start + before->hole_size_;
    color_adjust_(color_ctx_, before == &head_ ? nullptr : before,
                  before->next_ == &head_ ? nullptr : before->next_, node->color_, &lo, &hi);
    if (node->start_ < lo || end > hi) {
      return Status(Errc::kNoSpace, "RangeAllocator::ReserveNode: color rules forbid the range");
    }
  }
  Place(before, node, node->start_, node->size_, node->color_);
  return Status::Ok();
}

Status RangeAllocator::RemoveNode(RangeNode* node) {
  if (node == nullptr || node->owner_ != this || node == &head_) {
    return Status(Errc::kInvalid, "RangeAllocator::RemoveNode: node is not allocated here");
  }
  RangeNode* before = node->prev_;
  const std::uint64_t merged = before->hole_size_ + node->size_ + node->hole_size_;
  SetHole(node, 0);
  SetHole(before, merged);
  before->next_ = node->next_;
  node->next_->prev_ = before;
  node->prev_ = node->next_ = nullptr;
  node->owner_ = nullptr;
  used_ -= node->size_;
  --node_count_;
  return Status::Ok();
}

std::string RangeAllocator::DebugString() const {
  std::string out;
  char line[160];
  std::uint64_t holes = 0;
  auto hole = [&](std::uint64_t s, std::uint64_t e) {
    std::snprintf(line, sizeof line, "0x%016" PRIx64 "-0x%016" PRIx64 ": %" PRIu64 ": free\n", s, e,
                  e - s);
    out += line;
    holes += e - s;
  };
  if (head_.hole_size_ != 0) hole(head_.start_, head_.start_ + head_.hole_size_);
  for (const RangeNode* n = head_.next_; n != &head_; n = n->next_) {
    std::snprintf(line, sizeof line,
                  "0x%016" PRIx64 "-0x%016" PRIx64 ": %" PRIu64 ": used (color %" PRIu64 ")\n",
                  n->start_, n->end(), n->size_, n->color_);
    out += line;
    if (n->hole_size_ != 0) hole(n->end(), n->end() + n->hole_size_);
  }
  std::snprintf(line, sizeof line,
                "total: %" PRIu64 ", used %" PRIu64 " free %" PRIu64 " (%" PRIu64 " nodes, %" PRIu64
                " holes)\n",
                size_, used_, holes, node_count_, hole_count_);
  out += line;
  return out;
}

Status RangeAllocator::Validate() const {
  std::uint64_t expect = head_.start_;
  std::uint64_t used = 0, free = 0, nodes = 0, holes = 0;
  const RangeNode* n = &head_;
  do {
    if (n != &head_) {
      if (n->start_ != expect) return Status(Errc::kInvalid, "node does not start where expected");
      if (n->owner_ != this) return Status(Errc::kInvalid, "node has a foreign owner");
      used += n->size_;
      ++nodes;
    }
    if (n->next_->prev_ != n) return Status(Errc::kInvalid, "address list is broken");
    expect = n->start_ + n->size_ + n->hole_size_;
    free += n->hole_size_;
    if (n->hole_size_ != 0) ++holes;
    n = n->next_;
  } while (n != &head_);
  if (expect != head_.start_ + size_) return Status(Errc::kInvalid, "nodes do not cover the span");
  if (used != used_ || used + free != size_) return Status(Errc::kInvalid, "usage mismatch");
  if (nodes != node_count_ || holes != hole_count_) return Status(Errc::kInvalid, "count mismatch");
  std::uint64_t linked = 0;
  for (std::uint32_t b = 0; b < kBinWords * 64; ++b) {
    const bool bit = (bin_bits_[b / 64] >> (b % 64)) & 1;
    if (bit != (b < kBins && bins_[b] != nullptr)) {
      return Status(Errc::kInvalid, "size-class bitmap mismatch");
    }
    if (b < kBins) {
      for (const RangeNode* h = bins_[b]; h != nullptr; h = h->bin_next_) {
        if (h->hole_size_ == 0 || RangeBinOf(h->hole_size_) != b) {
          return Status(Errc::kInvalid, "hole linked in a wrong size class");
        }
        if ((h->bin_next_ != nullptr && h->bin_next_->bin_prev_ != h) ||
            (h->bin_prev_ == nullptr) != (h == bins_[b])) {
          return Status(Errc::kInvalid, "size-class list is broken");
        }
        ++linked;
      }
    }
  }
  for (int w = 0; w < kBinWords; ++w) {
    if (((bin_summary_ >> w) & 1) != (bin_bits_[w] != 0 ? 1u : 0u)) {
      return Status(Errc::kInvalid, "size-class summary bitmap mismatch");
    }
  }
  if (linked != hole_count_) return Status(Errc::kInvalid, "size-class lists miss holes");
  return indexed_ ? ValidateIndex() : Status::Ok();
}

Status RangeAllocator::ValidateIndex() const {
  // In-order walk: keys increase and match the holes in address order; heap order on priority;
  // each subtree's largest hole is right.
  const RangeNode* expect = &head_;
  while (expect->hole_size_ == 0 && expect->next_ != &head_) expect = expect->next_;
  std::uint64_t seen = 0;
  const RangeNode* t = index_root_;
  if (t != nullptr && t->up_ != nullptr) return Status(Errc::kInvalid, "index root has a parent");
  while (t != nullptr && t->left_ != nullptr) t = t->left_;
  while (t != nullptr) {
    if (t != expect) return Status(Errc::kInvalid, "address index out of order");
    if (t->hole_size_ == 0) return Status(Errc::kInvalid, "address index holds no hole");
    std::uint64_t m = t->hole_size_;
    for (const RangeNode* c : {t->left_, t->right_}) {
      if (c == nullptr) continue;
      if (c->up_ != t || c->prio_ > t->prio_) return Status(Errc::kInvalid, "bad index links");
      if (c->max_hole_ > m) m = c->max_hole_;
    }
    if (m != t->max_hole_) return Status(Errc::kInvalid, "index subtree maximum is wrong");
    ++seen;
    if (t->right_ != nullptr) {
      t = t->right_;
      while (t->left_ != nullptr) t = t->left_;
    } else {
      while (t->up_ != nullptr && t->up_->right_ == t) t = t->up_;
      t = t->up_;
    }
    do {
      expect = expect->next_;
    } while (expect != &head_ && expect->hole_size_ == 0);
  }
  if (seen != hole_count_) return Status(Errc::kInvalid, "address index misses holes");
  return Status::Ok();
}

}  // namespace uttm
