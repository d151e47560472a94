// Copyright (c) uttm developers.
//
// range_allocator.h (internal, not installed): a range allocator over an abstract span of units
// (the kernel's drm_mm).
//
// A RangeAllocator manages [start, start + size) in u64 units (pages, in TTM's range manager).
// Callers own the RangeNode objects (as drm_mm_node): inserting a node never allocates memory.
// A node is placed into a hole by one of three modes:
//   kBest  the hole of the smallest size class that fits (drm_mm's INSERT_BEST; segregated
//          size classes: one per size below 1024 units, so there the fit is exact, then 8
//          per power of two, so "best" is within 12.5 %),
//   kLow   the lowest-addressed hole that fits, placed at its bottom (INSERT_LOW),
//   kHigh  the highest-addressed hole that fits, placed at its top (INSERT_HIGH, TOPDOWN).
// Requests may carry an alignment (any value; 0 and 1 mean none), a color (stored on the node
// and offered to an optional color-adjust hook that may shrink a hole, as drm_mm's
// color_adjust), and a sub-range [range_start, range_end) the node must lie in.
//
// Errors follow drm_mm: kInvalid for misuse (a null node, a node already in use, range_start
// above range_end, removing a node not allocated here); kNoSpace when no hole can take the node,
// including requests that never can (size 0, a sub-range smaller than the request or outside the
// managed span, a reserve outside the span). Nothing changes on error.
//
// Cost: kBest insert and every remove are O(1) (a two-level size-class bitmap plus intrusive
// lists; an unconstrained request below 1024 units looks at one hole). kLow, kHigh and ReserveNode
// use an address index of holes (a treap augmented with the largest hole per subtree, drm_mm's
// holes_addr rbtree), O(log holes) expected. The index is built on the first such call and
// maintained from then on (O(log holes) per insert/remove), so allocators that only use kBest never
// pay for it.
//
// Thread-safety: none; the owner locks (as drm_mm, which the TTM range manager locks).
#ifndef UTTM_SRC_RESOURCE_RANGE_ALLOCATOR_H_
#define UTTM_SRC_RESOURCE_RANGE_ALLOCATOR_H_

#include <cstdint>
#include <limits>
#include <string>

#include "uttm/export.h"
#include "uttm/status.h"

namespace uttm {

class RangeAllocator;

// How InsertNode chooses a hole.
enum class RangeInsertMode : std::uint8_t { kBest, kLow, kHigh };

// A caller-owned allocation record (drm_mm_node). Not copyable or movable: while allocated, the
// allocator links to it. Destroying an allocated node removes it from its allocator (under the
// owner's lock, like any RemoveNode).
class UTTM_EXPORT RangeNode {
 public:
  RangeNode() = default;
  ~RangeNode();
  RangeNode(const RangeNode&) = delete;
  RangeNode& operator=(const RangeNode&) = delete;

  std::uint64_t start() const { return start_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t end() const { return start_ + size_; }
  std::uint64_t color() const { return color_; }
  // True while the node is inserted in an allocator.
  bool allocated() const { return owner_ != nullptr; }
  // Size of the free hole that directly follows this node (0 when the next node abuts it).
  std::uint64_t hole_after() const { return hole_size_; }

  // Sets the exact placement used by RangeAllocator::ReserveNode. Only on an unallocated node.
  void SetPlacement(std::uint64_t start, std::uint64_t size, std::uint64_t color = 0) {
    if (owner_ == nullptr) {
      start_ = start;
      size_ = size;
      color_ = color;
    }
  }

 private:
  friend class RangeAllocator;

  // The fields every insert and remove touch come first (64 bytes).
  std::uint64_t hole_size_ = 0;
  RangeNode* bin_next_ = nullptr;  // size-class list of nodes followed by a hole
  RangeNode* bin_prev_ = nullptr;
  std::uint64_t start_ = 0;
  std::uint64_t size_ = 0;
  RangeNode* prev_ = nullptr;  // address order, circular through the allocator's head
  RangeNode* next_ = nullptr;
  RangeAllocator* owner_ = nullptr;
  std::uint64_t color_ = 0;
  std::uint32_t prio_ = 0;     // address index: treap priority
  RangeNode* left_ = nullptr;  // address index: treap of holes keyed by hole start
  RangeNode* right_ = nullptr;
  RangeNode* up_ = nullptr;
  std::uint64_t max_hole_ = 0;  // largest hole in this treap subtree
};

// Placement request for RangeAllocator::InsertNode.
struct RangeInsertOptions {
  std::uint64_t alignment = 0;  // 0 or 1: none; otherwise start % alignment == 0
  std::uint64_t color = 0;
  std::uint64_t range_start = 0;  // the node must lie in [range_start, range_end)
  std::uint64_t range_end = std::numeric_limits<std::uint64_t>::max();
  RangeInsertMode mode = RangeInsertMode::kBest;
};

// Hook that may shrink a candidate hole [*start, *end) for a node of `color`; `before` and
// `after` are the allocated neighbours of the hole (null at the ends of the span).
using RangeColorAdjust = void (*)(void* ctx, const RangeNode* before, const RangeNode* after,
                                  std::uint64_t color, std::uint64_t* start, std::uint64_t* end);

class UTTM_EXPORT RangeAllocator {
 public:
  // Manages [start, start + size). start + size must not exceed 2^64 - 1 (CHECKed).
  RangeAllocator(std::uint64_t start, std::uint64_t size);
  // Nodes still inserted are detached (they read as unallocated afterwards).
  ~RangeAllocator();
  RangeAllocator(const RangeAllocator&) = delete;
  RangeAllocator& operator=(const RangeAllocator&) = delete;

  // Places `node` (unallocated) of `size` units as `options` say. kInvalid / kNoSpace as above.
  Status InsertNode(RangeNode* node, std::uint64_t size, const RangeInsertOptions& options = {});
  // Places `node` exactly at its preset start/size/color (SetPlacement; drm_mm_reserve_node).
  // kNoSpace if any unit of it is in use, or it is empty or outside the span.
  Status ReserveNode(RangeNode* node);
  // Frees `node`; kInvalid (and no change) if it is not allocated in this allocator.
  Status RemoveNode(RangeNode* node);

  // Installs a color-adjust hook (null to remove).
  void SetColorAdjust(RangeColorAdjust fn, void* ctx) {
    color_adjust_ = fn;
    color_ctx_ = ctx;
  }

  std::uint64_t start() const { return head_.start_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t used() const { return used_; }
  std::uint64_t available() const { return size_ - used_; }
  std::uint64_t node_count() const { return node_count_; }
  std::uint64_t hole_count() const { return hole_count_; }
  // True when nothing is allocated (drm_mm_clean).
  bool clean() const { return node_count_ == 0; }

  // Calls fn(hole_start, hole_end) for every hole in address order.
  template <typename Fn>
  void ForEachHole(Fn&& fn) const {
    const RangeNode* n = &head_;
    do {
      if (n->hole_size_ != 0) fn(n->start_ + n->size_, n->start_ + n->size_ + n->hole_size_);
      n = n->next_;
    } while (n != &head_);
  }
  // Calls fn(const RangeNode&) for every allocated node in address order.
  template <typename Fn>
  void ForEachNode(Fn&& fn) const {
    for (const RangeNode* n = head_.next_; n != &head_; n = n->next_) fn(*n);
  }

  // Human-readable dump of nodes and holes with totals (drm_mm_print).
  std::string DebugString() const;
  // Checks every internal invariant (ordering, hole sizes, size classes, totals); kInvalid with
  // the first violation found. O(nodes).
  Status Validate() const;

 private:
  friend class RangeNode;  // an allocated node's destructor removes it

  bool Fits(const RangeNode* before, std::uint64_t size, const RangeInsertOptions& o,
            std::uint64_t* out) const;
  RangeNode* FindBest(std::uint64_t size, const RangeInsertOptions& o, std::uint64_t* out) const;
  void Place(RangeNode* before, RangeNode* node, std::uint64_t start, std::uint64_t size,
             std::uint64_t color);
  void SetHole(RangeNode* n, std::uint64_t hole);
  void EnsureIndex();
  void IndexInsert(RangeNode* n);
  void IndexErase(RangeNode* n);
  void IndexRotateUp(RangeNode* x);
  static void IndexPull(RangeNode* n);
  static void IndexPullUp(RangeNode* n);
  RangeNode* FindLow(RangeNode* t, std::uint64_t size, const RangeInsertOptions& o,
                     std::uint64_t* out) const;
  RangeNode* FindHigh(RangeNode* t, std::uint64_t size, const RangeInsertOptions& o,
                      std::uint64_t* out) const;
  Status ValidateIndex() const;
  void BinLink(RangeNode* n);
  void BinUnlink(RangeNode* n);
  std::uint32_t NextBin(std::uint32_t bin) const;

  // Hole size classes (see src/resource/range_allocator.h): 1024 exact classes, then 8 per
  // power of two; a bitmap of the non-empty ones and a summary bit per bitmap word.
  static constexpr std::uint32_t kBins = 1024 + 54 * 8;
  static constexpr int kBinWords = (kBins + 63) / 64;
  RangeNode head_;  // zero-size sentinel at `start`; its hole is the space before the first node
  std::uint64_t size_;
  std::uint64_t used_ = 0;
  std::uint64_t node_count_ = 0;
  std::uint64_t hole_count_ = 0;
  bool indexed_ = false;
  RangeNode* index_root_ = nullptr;
  std::uint32_t prio_state_ = 0x9e3779b9u;
  RangeColorAdjust color_adjust_ = nullptr;
  void* color_ctx_ = nullptr;
  std::uint64_t bin_summary_ = 0;
  std::uint64_t bin_bits_[kBinWords] = {};
  RangeNode* bins_[kBins] = {};
};

}  // namespace uttm

#endif  // UTTM_SRC_RESOURCE_RANGE_ALLOCATOR_H_
