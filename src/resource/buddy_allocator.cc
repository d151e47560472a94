// Copyright (c) uttm developers.
//
// BuddyAllocator: a table of blocks (roots first, then children in pairs so a block's buddy is
// index ^ 1), intrusive free lists per [clear][order] and a bitmap of non-empty lists.
#include "resource/buddy_allocator.h"

#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>

#include "base/check.h"
#include "resource/buddy_math.h"

namespace uttm {

using internal::BuddyIlog2;
using internal::BuddyIsPow2;

BuddyAllocator::BuddyAllocator() = default;

Status BuddyAllocator::Init(std::uint64_t size, std::uint64_t chunk_size) {
  if (initialized()) return Status(Errc::kInvalid, "BuddyAllocator::Init: already initialised");
  if (!BuddyIsPow2(chunk_size)) {
    return Status(Errc::kInvalid, "BuddyAllocator::Init: chunk_size is not a power of two");
  }
  if (size < chunk_size) {
    return Status(Errc::kInvalid, "BuddyAllocator::Init: size is smaller than chunk_size");
  }
  size &= ~(chunk_size - 1);
  chunk_size_ = chunk_size;
  chunk_shift_ = BuddyIlog2(chunk_size);
  size_ = size;
  avail_ = size;
  clear_avail_ = 0;
  max_order_ = std::min(BuddyIlog2(size) - chunk_shift_, kMaxOrder);
  for (auto& tree : free_) {
    for (auto& stack : tree) stack.clear();
  }
  free_bits_[0] = free_bits_[1] = 0;
  std::fill(std::begin(free_pairs_by_order_), std::end(free_pairs_by_order_), 0);

  std::uint64_t offset = 0;
  std::uint64_t left = size;
  while (left != 0) {
    const unsigned order = std::min(BuddyIlog2(left) - chunk_shift_, max_order_);
    const auto index = static_cast<std::uint32_t>(blocks_.size());
    Block root;
    root.order = static_cast<std::uint8_t>(order);
    root.state = State::kFree;
    root.root = true;
    blocks_.push_back(root);
    links_.push_back(Link{offset, kNil, kNil});
    roots_.push_back(index);
    ListAdd(index);
    offset += chunk_size << order;
    left -= chunk_size << order;
  }
  if (blocks_.size() % 2 != 0) {  // children pairs start even
    blocks_.emplace_back();
    links_.emplace_back();
  }
  return Status::Ok();
}

Status BuddyAllocator::Fini() {
  if (!initialized()) return Status::Ok();
  if (avail_ != size_) {
    return Status(Errc::kBusy, "BuddyAllocator::Fini: blocks are still allocated");
  }
  ForceMerge(0, size_, max_order_ + 1);
  for (std::uint32_t r : roots_) {
    UTTM_CHECK(blocks_[r].state == State::kFree, "BuddyAllocator::Fini: root did not merge");
  }
  roots_.clear();
  blocks_.clear();
  links_.clear();
  free_pairs_.clear();
  for (auto& tree : free_) {
    for (auto& stack : tree) stack.clear();
  }
  free_bits_[0] = free_bits_[1] = 0;
  std::fill(std::begin(free_pairs_by_order_), std::end(free_pairs_by_order_), 0);
  size_ = chunk_size_ = avail_ = clear_avail_ = 0;
  chunk_shift_ = max_order_ = 0;
  return Status::Ok();
}

void BuddyAllocator::FreeStack::Grow() {
  const std::uint32_t capacity = capacity_ == 0 ? 64 : capacity_ * 2;
  UTTM_CHECK(capacity > capacity_, "BuddyAllocator: free stack is full");
  auto ids = std::make_unique_for_overwrite<std::uint32_t[]>(capacity);
  std::copy(ids_.get(), ids_.get() + size_, ids.get());
  ids_ = std::move(ids);
  capacity_ = capacity;
}

std::uint32_t BuddyAllocator::NewPair() {
  if (!free_pairs_.empty()) {
    const std::uint32_t p = free_pairs_.back();
    free_pairs_.pop_back();
    return p;
  }
  const auto p = static_cast<std::uint32_t>(blocks_.size());
  UTTM_CHECK(p < kNil - 2, "BuddyAllocator: block table is full");
  blocks_.resize(blocks_.size() + 2);
  links_.resize(links_.size() + 2);
  return p;
}

// Pushes free block `b` on the stack of its state and order. Touches no other block but its
// buddy (same cache line).
inline void BuddyAllocator::ListAdd(std::uint32_t b) {
  Block& blk = blocks_[b];
  const unsigned t = blk.clear ? 1 : 0;
  FreeStack& stack = free_[t][blk.order];
  blk.slot = static_cast<std::uint32_t>(stack.size());
  stack.push_back(b);
  free_bits_[t] |= std::uint64_t{1} << blk.order;
  blk.listed = true;
  if (!blk.root && blocks_[b ^ 1u].listed) ++free_pairs_by_order_[blk.order];
}

// Takes `b` off its stack; the top entry fills its place (no other block is touched when `b` is
// the top, the common case).
inline void BuddyAllocator::ListRemove(std::uint32_t b) {
  Block& blk = blocks_[b];
  const unsigned t = blk.clear ? 1 : 0;
  FreeStack& stack = free_[t][blk.order];
  const std::uint32_t top = stack.back();
  if (top != b) {
    stack.set(blk.slot, top);
    blocks_[top].slot = blk.slot;
  }
  stack.pop_back();
  if (stack.empty()) free_bits_[t] &= ~(std::uint64_t{1} << blk.order);
  blk.slot = kNil;
  blk.listed = false;
  if (!blk.root && blocks_[b ^ 1u].listed) --free_pairs_by_order_[blk.order];
}

// Splits free block `b` (not on a list) into two free children (not on a list); returns the left
// child. A clear parent gives clear children and itself becomes "not clear" (it is split).
std::uint32_t BuddyAllocator::Split(std::uint32_t b) {
  const std::uint32_t left = NewPair();
  Block& parent = blocks_[b];
  const std::uint8_t order = static_cast<std::uint8_t>(parent.order - 1);
  for (std::uint32_t i = 0; i < 2; ++i) {
    Block& child = blocks_[left + i];
    child.order = order;
    child.state = State::kFree;
    child.clear = parent.clear;
    child.slot = kNil;
    child.listed = false;
    child.seen = false;
    child.root = false;
    Link& link = links_[left + i];
    link.offset = links_[b].offset + (i == 0 ? 0 : (chunk_size_ << order));
    link.parent = b;
    link.children = kNil;
  }
  links_[b].children = left;
  parent.state = State::kSplit;
  parent.clear = false;
  return left;
}

inline void BuddyAllocator::MarkAllocated(std::uint32_t b) {
  Block& blk = blocks_[b];
  blk.state = State::kAllocated;
  const std::uint64_t size = Size(blk);
  avail_ -= size;
  if (blk.clear) clear_avail_ -= size;
}

// `b` is free, accounted in avail/clear_avail and on no list. Merges it with free buddies (of
// the same clear state unless `force`; a forced merge is dirty), lists and returns the result.
inline std::uint32_t BuddyAllocator::FreeAndMerge(std::uint32_t b, bool force) {
  Block& blk = blocks_[b];
  blk.state = State::kFree;
  // Mostly the buddy (same cache line) is in use and the block just goes on its stack.
  const Block& other = blocks_[b ^ 1u];
  if (blk.root || other.state != State::kFree || (!force && other.clear != blk.clear)) {
    ListAdd(b);
    return b;
  }
  return MergeUp(b, force);
}

// Returns allocated block `b` to the free space with its clear state and merges it.
inline void BuddyAllocator::Release(std::uint32_t b) {
  const std::uint64_t size = Size(blocks_[b]);
  avail_ += size;
  if (blocks_[b].clear) clear_avail_ += size;
  FreeAndMerge(b, false);
}

// FreeAndMerge once `b` has a free buddy to merge with.
[[gnu::noinline]] std::uint32_t BuddyAllocator::MergeUp(std::uint32_t b, bool force) {
  while (!blocks_[b].root) {
    const std::uint32_t buddy = b ^ 1u;
    Block& mine = blocks_[b];
    Block& other = blocks_[buddy];
    if (other.state != State::kFree) break;
    if (!force && other.clear != mine.clear) break;
    bool clear = mine.clear;
    if (force) {
      const std::uint64_t size = Size(mine);
      if (mine.clear) clear_avail_ -= size;
      if (other.clear) clear_avail_ -= size;
      clear = false;
    }
    ListRemove(buddy);
    const std::uint32_t parent = links_[b].parent;
    const std::uint32_t pair = b & ~1u;
    blocks_[pair].state = blocks_[pair + 1].state = State::kUnused;
    free_pairs_.push_back(pair);
    Block& up = blocks_[parent];
    links_[parent].children = kNil;
    up.state = State::kFree;
    up.clear = clear;
    b = parent;
  }
  ListAdd(b);
  return b;
}

// Merges the children of `parent` when both are free in the same state.
bool BuddyAllocator::TryMergeChildren(std::uint32_t parent) {
  const Block& p = blocks_[parent];
  if (p.state != State::kSplit) return false;
  const std::uint32_t left = links_[parent].children;
  const Block& l = blocks_[left];
  const Block& r = blocks_[left + 1];
  if (l.state != State::kFree || r.state != State::kFree || l.clear != r.clear) return false;
  ListRemove(left);
  FreeAndMerge(left, false);
  return true;
}

// Re-merges free buddies left behind by splits this operation made after `mark`.
void BuddyAllocator::UndoSplits(std::size_t mark) {
  for (std::size_t i = split_log_.size(); i-- > mark;) TryMergeChildren(split_log_[i]);
  split_log_.resize(mark);
}

// Merges free buddies of different clear state, smallest orders first, until a free block of
// at least `min_order` inside [start, end) appears. Returns whether one did.
bool BuddyAllocator::ForceMerge(std::uint64_t start, std::uint64_t end, unsigned min_order) {
  if (min_order == 0) return false;
  for (unsigned order = std::min(min_order - 1, max_order_) + 1; order-- > 0;) {
    for (unsigned t = 0; t < 2 && free_pairs_by_order_[order] != 0; ++t) {
      // Top down. A merge takes entry i off this stack (the top, already visited, moves into
      // its place) and its buddy off the other tree's stack, and only adds blocks of higher
      // orders, so no entry below i becomes mergeable or moves.
      const FreeStack& stack = free_[t][order];
      for (std::uint32_t i = stack.size(); i-- > 0 && free_pairs_by_order_[order] != 0;) {
        const std::uint32_t b = stack[i];
        const Block& blk = blocks_[b];
        const std::uint32_t buddy = Buddy(b);
        const std::uint64_t offset = links_[b].offset;
        if (offset < start || offset + Size(blk) > end || buddy == kNil || !blocks_[buddy].listed) {
          continue;
        }
        ListRemove(b);
        if (blocks_[FreeAndMerge(b, true)].order >= min_order) return true;
      }
    }
  }
  return false;
}

// Takes a free block of `order` (preferring the tree `flags` asks for), splitting a larger one
// when needed, off the free stacks. kNil when none is free.
inline std::uint32_t BuddyAllocator::AllocFromFreeList(unsigned order, unsigned flags) {
  const std::uint64_t fits = ~std::uint64_t{0} << order;
  unsigned t = (flags & kBuddyClear) ? 1 : 0;
  if ((free_bits_[t] & fits) == 0) {
    t ^= 1u;
    if ((free_bits_[t] & fits) == 0) return kNil;
  }
  if (flags & kBuddyTopDown) return AllocTopDown(t, order);
  // The smallest order that fits; its top entry comes off without touching another block.
  const unsigned o = static_cast<unsigned>(std::countr_zero(free_bits_[t] & fits));
  FreeStack& stack = free_[t][o];
  const std::uint32_t found = stack.back();
  stack.pop_back();
  if (stack.empty()) free_bits_[t] &= ~(std::uint64_t{1} << o);
  Block& blk = blocks_[found];
  blk.slot = kNil;
  blk.listed = false;
  if (!blk.root && blocks_[found ^ 1u].listed) --free_pairs_by_order_[o];
  return o > order ? SplitDown(found, order) : found;
}

// The free block of tree t with the highest offset among orders >= order, split to `order`.
[[gnu::noinline]] std::uint32_t BuddyAllocator::AllocTopDown(unsigned t, unsigned order) {
  std::uint32_t found = kNil;
  for (unsigned o = order; o <= max_order_; ++o) {
    for (std::uint32_t b : free_[t][o]) {
      if (found == kNil || links_[b].offset > links_[found].offset) found = b;
    }
  }
  ListRemove(found);
  return blocks_[found].order > order ? SplitDown(found, order) : found;
}

// Splits free block `b` (on no list) down to `order`, listing the left halves; returns the
// rightmost piece of that order.
[[gnu::noinline]] std::uint32_t BuddyAllocator::SplitDown(std::uint32_t b, unsigned order) {
  while (blocks_[b].order > order) {
    const std::uint32_t left = Split(b);
    ListAdd(left);
    b = left + 1;
  }
  return b;
}

// Depth-first walks: queues the children of `b`, splitting it first (and logging the split)
// when it is a free leaf. The left child is visited first.
void BuddyAllocator::Descend(std::uint32_t b) {
  if (blocks_[b].state == State::kFree) {
    ListRemove(b);
    const std::uint32_t left = Split(b);
    split_log_.push_back(b);
    ListAdd(left);
    ListAdd(left + 1);
  }
  const std::uint32_t left = links_[b].children;
  dfs_.push_back(left + 1);
  dfs_.push_back(left);
}

// Finds a free block of exactly `order` inside [start, end), splitting on the way down, and
// takes it off its free list.
std::uint32_t BuddyAllocator::AllocRangeBias(std::uint64_t start, std::uint64_t end, unsigned order,
                                             unsigned flags) {
  const bool want_clear = (flags & kBuddyClear) != 0;
  const std::uint64_t req = chunk_size_ << order;
  for (int fallback = 0; fallback < 2; ++fallback) {
    dfs_.clear();
    for (std::size_t i = roots_.size(); i-- > 0;) dfs_.push_back(roots_[i]);
    while (!dfs_.empty()) {
      const std::uint32_t b = dfs_.back();
      dfs_.pop_back();
      const Block& blk = blocks_[b];
      if (blk.order < order || blk.state == State::kAllocated) continue;
      const std::uint64_t bs = links_[b].offset;
      const std::uint64_t be = bs + Size(blk);
      if (be <= start || bs >= end) continue;
      if (bs < start || be > end) {
        // Some req-aligned run of req units must fit in the overlap.
        const std::uint64_t lo = std::max(bs, start);
        const std::uint64_t hi = std::min(be, end);
        const std::uint64_t first = (lo + req - 1) & ~(req - 1);
        if (first < lo || first >= hi || hi - first < req) continue;
      } else if (blk.order == order) {
        if (blk.state == State::kFree && (fallback || blk.clear == want_clear)) {
          ListRemove(b);
          return b;
        }
        if (blk.state == State::kFree) continue;
      }
      if (blk.state == State::kFree && !fallback && blk.clear != want_clear) continue;
      Descend(b);
    }
  }
  return kNil;
}

// Allocates exactly [start, start + size) from the subtrees `roots`. On kNoSpace the partial
// allocation is returned through *filled/out when `filled` is given, else undone.
Status BuddyAllocator::AllocRange(const std::uint32_t* roots, std::size_t n_roots,
                                  std::uint64_t start, std::uint64_t size, std::uint64_t* filled,
                                  std::vector<BuddyBlockId>* out) {
  std::uint64_t end;
  if (filled != nullptr) *filled = 0;
  if (__builtin_add_overflow(start, size, &end)) {
    return Status(Errc::kNoSpace, "BuddyAllocator: range runs past the span");
  }
  const std::size_t mark = split_log_.size();
  const std::size_t first_out = out->size();
  std::uint64_t total = 0;
  bool conflict = false;
  dfs_.clear();
  for (std::size_t i = n_roots; i-- > 0;) dfs_.push_back(roots[i]);
  while (!dfs_.empty() && !conflict) {
    const std::uint32_t b = dfs_.back();
    dfs_.pop_back();
    const Block& blk = blocks_[b];
    const std::uint64_t bs = links_[b].offset;
    const std::uint64_t be = bs + Size(blk);
    if (be <= start || bs >= end) continue;
    if (blk.state == State::kAllocated) {
      conflict = true;
      break;
    }
    if (blk.state == State::kFree && bs >= start && be <= end) {
      ListRemove(b);
      MarkAllocated(b);
      out->push_back(b);
      total += be - bs;
      continue;
    }
    Descend(b);
  }
  if (!conflict && total == size) {
    split_log_.resize(mark);
    return Status::Ok();
  }
  if (filled != nullptr) {
    *filled = total;
  } else {
    for (std::size_t i = first_out; i < out->size(); ++i) Release((*out)[i]);
    out->resize(first_out);
  }
  UndoSplits(mark);
  return Status(Errc::kNoSpace, "BuddyAllocator: range is (partly) allocated");
}

// Frees blocks keeping their clear state (error paths) and empties the vector.
void BuddyAllocator::FreeInternal(std::vector<BuddyBlockId>* blocks) {
  for (std::uint32_t b : *blocks) Release(b);
  blocks->clear();
}

Status BuddyAllocator::AllocContigTryHarder(std::uint64_t size, std::uint64_t min_block_size,
                                            std::vector<BuddyBlockId>* out) {
  const std::uint64_t pow2 = std::uint64_t{1} << BuddyIlog2(size);
  unsigned order = BuddyIlog2(pow2 >> chunk_shift_);
  if (order == 0) return Status(Errc::kNoSpace, "BuddyAllocator: no contiguous range fits");
  order = std::min(order, max_order_);
  std::vector<std::uint64_t> candidates;
  for (unsigned t = 0; t < 2; ++t) {
    for (std::uint32_t b : free_[t][order]) candidates.push_back(links_[b].offset);
  }
  std::sort(candidates.begin(), candidates.end(), std::greater<>());
  std::vector<BuddyBlockId> rhs, lhs;
  for (std::uint64_t offset : candidates) {
    std::uint64_t filled = 0;
    Status st = AllocRange(roots_.data(), roots_.size(), offset, size, &filled, &rhs);
    if (st.ok()) {
      out->insert(out->end(), rhs.begin(), rhs.end());
      return Status::Ok();
    }
    std::uint64_t want = std::max(size - filled, min_block_size);
    want = (want + min_block_size - 1) & ~(min_block_size - 1);
    if (want <= offset &&
        AllocRange(roots_.data(), roots_.size(), offset - want, want, nullptr, &lhs).ok()) {
      out->insert(out->end(), lhs.begin(), lhs.end());
      out->insert(out->end(), rhs.begin(), rhs.end());
      return Status::Ok();
    }
    FreeInternal(&rhs);
  }
  return Status(Errc::kNoSpace, "BuddyAllocator: no contiguous range fits");
}

// The common case of AllocBlocks (whole span, not top-down), in a function of its own so it gets
// its own registers: per set bit of `pages`, pop the top of the smallest non-empty stack that
// fits (splitting it when it is larger). Stops at the first bit no free block fits; returns the
// pages still to allocate (the general loop then tries smaller orders).
std::uint64_t BuddyAllocator::AllocCommon(std::uint64_t pages, unsigned flags,
                                          std::vector<BuddyBlockId>* out) {
  const unsigned preferred = (flags & kBuddyClear) ? 1 : 0;
  std::uint64_t taken[2] = {0, 0};  // units taken from the dirty and the clear tree
  while (pages != 0) {
    const unsigned want = BuddyIlog2(pages);
    const std::uint64_t fits = ~std::uint64_t{0} << want;
    unsigned t = preferred;
    std::uint64_t bits = free_bits_[t] & fits;
    if (bits == 0) {
      t ^= 1u;
      bits = free_bits_[t] & fits;
      if (bits == 0) break;
    }
    const unsigned o = static_cast<unsigned>(std::countr_zero(bits));
    FreeStack& stack = free_[t][o];
    std::uint32_t b = stack.back();
    stack.pop_back();
    if (stack.empty()) free_bits_[t] &= ~(std::uint64_t{1} << o);
    Block& blk = blocks_[b];
    blk.listed = false;
    if (!blk.root && blocks_[b ^ 1u].listed) --free_pairs_by_order_[o];
    if (o > want) b = SplitDown(b, want);  // may grow the table: no Block& across it
    blocks_[b].state = State::kAllocated;
    taken[t] += std::uint64_t{1} << want;
    out->push_back(b);
    pages -= std::uint64_t{1} << want;
  }
  avail_ -= (taken[0] + taken[1]) << chunk_shift_;
  clear_avail_ -= taken[1] << chunk_shift_;
  return pages;
}

Status BuddyAllocator::AllocBlocks(std::uint64_t start, std::uint64_t end, std::uint64_t size,
                                   std::uint64_t min_block_size, unsigned flags,
                                   std::vector<BuddyBlockId>* out) {
  if (!initialized()) return Status(Errc::kInvalid, "BuddyAllocator: not initialised");
  if (out == nullptr) return Status(Errc::kInvalid, "BuddyAllocator::AllocBlocks: null output");
  if (size < chunk_size_) {
    return Status(Errc::kInvalid, "BuddyAllocator::AllocBlocks: size below chunk_size");
  }
  if (min_block_size < chunk_size_ || !BuddyIsPow2(min_block_size)) {
    return Status(Errc::kInvalid,
                  "BuddyAllocator::AllocBlocks: min_block_size is not a power of two >= chunk");
  }
  if (((start | end | size) & (chunk_size_ - 1)) != 0) {
    return Status(Errc::kInvalid,
                  "BuddyAllocator::AllocBlocks: start/end/size not multiples of chunk_size");
  }
  if (end > size_ || start >= end || size > size_ || start > size_ - size) {
    return Status(Errc::kInvalid, "BuddyAllocator::AllocBlocks: range outside the span");
  }
  if (start + size == end) {
    if (((start | end) & (min_block_size - 1)) != 0) {
      return Status(Errc::kInvalid, "BuddyAllocator::AllocBlocks: exact range misaligned");
    }
    return AllocRange(roots_.data(), roots_.size(), start, size, nullptr, out);
  }

  const std::uint64_t original_size = size;
  const std::uint64_t original_min = min_block_size;
  const bool contiguous = (flags & kBuddyContiguous) != 0;
  const bool ranged = (flags & kBuddyRange) != 0;
  bool too_big = false;
  if (contiguous) {
    if (!BuddyIsPow2(size)) {
      if (size > (std::uint64_t{1} << 63)) {
        too_big = true;
      } else {
        size = std::uint64_t{1} << (BuddyIlog2(size) + 1);
      }
    }
    min_block_size = size;
  } else if ((size & (min_block_size - 1)) != 0) {
    if (size > ~std::uint64_t{0} - min_block_size) {
      too_big = true;
    } else {
      size = (size + min_block_size - 1) & ~(min_block_size - 1);
    }
  }
  std::uint64_t pages = size >> chunk_shift_;
  unsigned order = too_big ? 64 : BuddyIlog2(pages);
  const unsigned min_order = BuddyIlog2(min_block_size) - chunk_shift_;
  if (too_big || order > max_order_ || size > size_) {
    if (contiguous && !ranged) return AllocContigTryHarder(original_size, original_min, out);
    return Status(Errc::kInvalid, "BuddyAllocator::AllocBlocks: request exceeds the largest order");
  }
  if (!ranged) {
    start = 0;
    end = size_;
  }

  // Blocks go straight to *out; on failure they are released and *out is cut back.
  const std::size_t first_out = out->size();
  const std::size_t mark = split_log_.size();
  if (!ranged && !(flags & kBuddyTopDown)) pages = AllocCommon(pages, flags, out);
  while (pages != 0) {
    order = std::min(order, BuddyIlog2(pages));
    std::uint32_t b;
    while (true) {
      b = ranged ? AllocRangeBias(start, end, order, flags) : AllocFromFreeList(order, flags);
      if (b != kNil) break;
      if (order-- == min_order) {
        order = min_order;
        if (clear_avail_ != 0 && ForceMerge(start, end, min_order)) {
          b = ranged ? AllocRangeBias(start, end, order, flags) : AllocFromFreeList(order, flags);
          if (b != kNil) break;
        }
        for (std::size_t i = first_out; i < out->size(); ++i) Release((*out)[i]);
        out->resize(first_out);
        UndoSplits(mark);
        if (contiguous && !ranged) return AllocContigTryHarder(original_size, original_min, out);
        return Status(Errc::kNoSpace, "BuddyAllocator::AllocBlocks: not enough free space");
      }
    }
    MarkAllocated(b);
    out->push_back(b);
    pages -= std::uint64_t{1} << order;
  }
  if (split_log_.size() != mark) UndoSplits(mark);

  if (!(flags & kBuddyTrimDisable) && original_size != size) {
    const std::uint32_t last = out->back();
    const std::uint64_t keep =
        out->size() == first_out + 1 ? original_size : Size(blocks_[last]) - (size - original_size);
    out->pop_back();
    Status st = TrimBlock(last, nullptr, keep, out);
    UTTM_CHECK(st.ok(), "BuddyAllocator: trimming a fresh block failed");
  }
  return Status::Ok();
}

Status BuddyAllocator::CheckHandle(BuddyBlockId b, const char* what) const {
  if (b >= blocks_.size() || blocks_[b].state != State::kAllocated) {
    return Status(Errc::kInvalid, what);
  }
  return Status::Ok();
}

Status BuddyAllocator::TrimBlock(BuddyBlockId block, const std::uint64_t* new_start,
                                 std::uint64_t new_size, std::vector<BuddyBlockId>* out) {
  UTTM_RETURN_IF_ERROR(CheckHandle(block, "BuddyAllocator::TrimBlock: block is not allocated"));
  if (out == nullptr) return Status(Errc::kInvalid, "BuddyAllocator::TrimBlock: null output");
  const std::uint64_t offset = links_[block].offset;
  const std::uint64_t size = Size(blocks_[block]);
  if (new_size == 0 || new_size > size || (new_size & (chunk_size_ - 1)) != 0) {
    return Status(Errc::kInvalid, "BuddyAllocator::TrimBlock: bad new size");
  }
  const std::uint64_t from = new_start != nullptr ? *new_start : offset;
  if (from < offset || (from & (chunk_size_ - 1)) != 0 || from - offset > size - new_size) {
    return Status(Errc::kInvalid, "BuddyAllocator::TrimBlock: new start outside the block");
  }
  if (new_size == size) {
    out->push_back(block);
    return Status::Ok();
  }
  // Free the block as a detached subtree root, then take the wanted range out of it.
  const std::uint32_t parent = links_[block].parent;
  const bool was_root = blocks_[block].root;
  links_[block].parent = kNil;
  blocks_[block].root = true;
  blocks_[block].state = State::kFree;
  avail_ += size;
  if (blocks_[block].clear) clear_avail_ += size;
  ListAdd(block);
  Status st = AllocRange(&block, 1, from, new_size, nullptr, out);
  if (!st.ok()) {
    ListRemove(block);
    MarkAllocated(block);
    out->push_back(block);
  }
  links_[block].parent = parent;
  blocks_[block].root = was_root;
  return st;
}

Status BuddyAllocator::FreeBlock(BuddyBlockId block) {
  UTTM_RETURN_IF_ERROR(CheckHandle(block, "BuddyAllocator::FreeBlock: block is not allocated"));
  Release(block);
  return Status::Ok();
}

Status BuddyAllocator::FreeBlocks(std::vector<BuddyBlockId>* blocks, unsigned free_flags) {
  if (blocks == nullptr) return Status(Errc::kInvalid, "BuddyAllocator::FreeBlocks: null list");
  // Every handle must be allocated and appear once; the `seen` bit marks the ones checked, and
  // the freeing pass clears it again.
  const std::size_t n = blocks->size();
  const BuddyBlockId* ids = blocks->data();
  for (std::size_t i = 0; i < n; ++i) {
    const BuddyBlockId b = ids[i];
    if (b >= blocks_.size() || blocks_[b].state != State::kAllocated || blocks_[b].seen) {
      const bool twice = b < blocks_.size() && blocks_[b].state == State::kAllocated;
      for (std::size_t j = 0; j < i; ++j) blocks_[ids[j]].seen = false;
      return Status(Errc::kInvalid, twice ? "BuddyAllocator::FreeBlocks: a block is listed twice"
                                          : "BuddyAllocator::FreeBlocks: a block is not allocated");
    }
    blocks_[b].seen = true;
  }
  // Release() for each block, with the totals summed once and, in the common case (buddy in
  // use), the push on the free stack done right here.
  const bool clear = (free_flags & kBuddyCleared) != 0;
  const unsigned t = clear ? 1 : 0;
  FreeStack* const stacks = free_[t];
  std::uint64_t units = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t b = ids[i];
    Block& blk = blocks_[b];
    const unsigned order = blk.order;
    units += std::uint64_t{1} << order;
    blk.seen = false;
    blk.clear = clear;
    blk.state = State::kFree;
    const Block& other = blocks_[b ^ 1u];
    if (!blk.root && other.state == State::kFree) {
      if (other.clear == clear) {
        MergeUp(b, false);
        continue;
      }
      ++free_pairs_by_order_[order];  // both buddies listed, in different trees
    }
    FreeStack& stack = stacks[order];
    blk.slot = stack.size();
    stack.push_back(b);
    blk.listed = true;
    free_bits_[t] |= std::uint64_t{1} << order;
  }
  avail_ += units << chunk_shift_;
  if (clear) clear_avail_ += units << chunk_shift_;
  blocks->clear();
  return Status::Ok();
}

void BuddyAllocator::ResetClear(bool is_clear) {
  if (!initialized()) return;
  ForceMerge(0, size_, max_order_ + 1);
  const unsigned from = is_clear ? 0 : 1;
  for (unsigned o = 0; o <= max_order_; ++o) {
    while (!free_[from][o].empty()) {
      const std::uint32_t b = free_[from][o].back();
      ListRemove(b);
      blocks_[b].clear = is_clear;
      if (is_clear) {
        clear_avail_ += Size(blocks_[b]);
      } else {
        clear_avail_ -= Size(blocks_[b]);
      }
      ListAdd(b);
    }
  }
}

std::uint64_t BuddyAllocator::BlockOffset(BuddyBlockId block) const {
  UTTM_CHECK(CheckHandle(block, "").ok(), "BuddyAllocator: bad block handle");
  return links_[block].offset;
}
std::uint64_t BuddyAllocator::BlockSize(BuddyBlockId block) const {
  UTTM_CHECK(CheckHandle(block, "").ok(), "BuddyAllocator: bad block handle");
  return Size(blocks_[block]);
}
unsigned BuddyAllocator::BlockOrder(BuddyBlockId block) const {
  UTTM_CHECK(CheckHandle(block, "").ok(), "BuddyAllocator: bad block handle");
  return blocks_[block].order;
}
bool BuddyAllocator::BlockIsClear(BuddyBlockId block) const {
  UTTM_CHECK(CheckHandle(block, "").ok(), "BuddyAllocator: bad block handle");
  return blocks_[block].clear;
}
bool BuddyAllocator::BlockIsAllocated(BuddyBlockId block) const {
  return block < blocks_.size() && blocks_[block].state == State::kAllocated;
}

int BuddyAllocator::MaxFreeAlignmentLog2() const {
  int best = -1;
  ForEachFreeBlock([&](std::uint64_t offset, std::uint64_t, bool) {
    best = std::max(best, offset == 0 ? 64 : std::countr_zero(offset));
  });
  return best;
}

std::string BuddyAllocator::DebugString() const {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line,
                "chunk_size: %" PRIu64 ", total: %" PRIu64 ", free: %" PRIu64
                ", clear_free: %" PRIu64 ", roots: %zu, max_order: %u\n",
                chunk_size_, size_, avail_, clear_avail_, roots_.size(), max_order_);
  out += line;
  for (unsigned o = max_order_ + 1; o-- > 0 && initialized();) {
    const std::uint64_t count = free_[0][o].size() + free_[1][o].size();
    if (count == 0) continue;
    std::snprintf(line, sizeof line, "order-%2u free: %" PRIu64 " blocks of %" PRIu64 "\n", o,
                  count, chunk_size_ << o);
    out += line;
  }
  return out;
}

Status BuddyAllocator::Validate() const {
  if (!initialized()) return Status::Ok();
  std::uint64_t free = 0, clear = 0, free_leaves = 0, expect = 0;
  std::vector<std::uint32_t> stack;
  for (std::uint32_t r : roots_) {
    if (links_[r].offset != expect) return Status(Errc::kInvalid, "roots are not contiguous");
    expect += Size(blocks_[r]);
    stack.push_back(r);
    while (!stack.empty()) {
      const std::uint32_t b = stack.back();
      stack.pop_back();
      const Block& blk = blocks_[b];
      if (blk.state == State::kFree) {
        ++free_leaves;
        free += Size(blk);
        if (blk.clear) clear += Size(blk);
        const std::uint32_t buddy = Buddy(b);
        if (buddy != kNil && blocks_[buddy].state == State::kFree &&
            blocks_[buddy].clear == blk.clear) {
          return Status(Errc::kInvalid, "two free buddies of the same state are unmerged");
        }
      } else if (blk.state == State::kSplit) {
        if (blk.clear) return Status(Errc::kInvalid, "split block marked clear");
        const std::uint32_t l = links_[b].children;
        for (std::uint32_t c = l; c < l + 2; ++c) {
          const Block& child = blocks_[c];
          if (links_[c].parent != b || child.root || child.order + 1 != blk.order ||
              links_[c].offset != links_[b].offset + (c - l) * (chunk_size_ << child.order)) {
            return Status(Errc::kInvalid, "child does not match its parent");
          }
          stack.push_back(c);
        }
      } else if (blk.state != State::kAllocated) {
        return Status(Errc::kInvalid, "unused block in the tree");
      }
    }
  }
  if (expect != size_) return Status(Errc::kInvalid, "roots do not cover the span");
  if (free != avail_) return Status(Errc::kInvalid, "avail does not match the free blocks");
  if (clear != clear_avail_) return Status(Errc::kInvalid, "clear_avail mismatch");
  std::uint64_t listed = 0;
  for (unsigned t = 0; t < 2; ++t) {
    for (unsigned o = 0; o <= kMaxOrder; ++o) {
      const bool bit = (free_bits_[t] >> o) & 1;
      if (bit != !free_[t][o].empty()) return Status(Errc::kInvalid, "free bitmap mismatch");
      for (std::uint32_t i = 0; i < free_[t][o].size(); ++i) {
        const std::uint32_t b = free_[t][o][i];
        if (b >= blocks_.size()) return Status(Errc::kInvalid, "free stack holds a bad index");
        const Block& blk = blocks_[b];
        if (blk.state != State::kFree || blk.order != o || blk.clear != (t == 1) || !blk.listed) {
          return Status(Errc::kInvalid, "free stack holds a wrong block");
        }
        if (blk.slot != i) return Status(Errc::kInvalid, "free block's stack slot is wrong");
        ++listed;
      }
    }
  }
  if (listed != free_leaves) return Status(Errc::kInvalid, "free lists miss free blocks");
  for (unsigned o = 0; o <= kMaxOrder; ++o) {
    std::uint64_t pairs = 0;
    for (unsigned t = 0; t < 2; ++t) {
      for (std::uint32_t b : free_[t][o]) {
        if (!blocks_[b].root && (b & 1u) == 0 && blocks_[b + 1].listed) ++pairs;
      }
    }
    if (pairs != free_pairs_by_order_[o]) return Status(Errc::kInvalid, "free pair count wrong");
  }
  return Status::Ok();
}

}  // namespace uttm
