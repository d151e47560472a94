// Copyright (c) uttm developers.
//
// buddy_allocator.h (internal, not installed): a binary buddy allocator over an abstract span (the
// kernel's gpu_buddy, formerly drm_buddy, used by TTM's VRAM managers).
//
// The span [0, size) is cut into power-of-two blocks of chunk_size << order. A size that is not
// a power of two gets several roots (largest first). Blocks split in halves on allocation and
// merge with their free buddy on free. Each free block is "clear" (known zeroed) or "dirty";
// buddies merge only in the same state, except when a request cannot be met otherwise (force
// merge: the result is dirty) and in ResetClear/Fini.
//
// AllocBlocks(start, end, size, min_block_size, flags, out) follows gpu_buddy_alloc_blocks:
//   * start + size == end: exact range allocation of [start, end).
//   * kRange: every block lies in [start, end) (range bias); otherwise the whole span is used.
//   * kTopDown: prefer the highest offsets.
//   * kContiguous: one run of `size`; size is rounded up to a power of two, allocated as one
//     block and trimmed back; if that fails (or exceeds the largest order) the "try harder" pass
//     looks for a run made of adjacent non-buddy free blocks (not with kRange).
//   * kClear: prefer clear blocks (falls back to dirty ones).
//   * kTrimDisable: keep the power-of-two round-up instead of trimming it off.
//   Non-contiguous requests are met with blocks of decreasing order, none smaller than
//   min_block_size (a power of two >= chunk_size); min_block_size also aligns each block.
// Errors: kInvalid for bad arguments (sizes not multiples of chunk_size, min_block_size not a
// power of two, range outside the span, a request above the largest order that cannot use try
// harder); kNoSpace when the space cannot satisfy it. On error nothing is allocated.
//
// Blocks are named by BuddyBlockId handles (indices into the allocator's block table); a handle
// is valid from its allocation until it is freed. Units are whatever the caller uses (bytes in
// the upstream tests, pages in TTM managers).
//
// Thread-safety: none; the owner locks (as the kernel's drivers do).
#ifndef UTTM_SRC_RESOURCE_BUDDY_ALLOCATOR_H_
#define UTTM_SRC_RESOURCE_BUDDY_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "uttm/export.h"
#include "uttm/status.h"

namespace uttm {

using BuddyBlockId = std::uint32_t;

// Allocation flags (gpu_buddy's GPU_BUDDY_*_ALLOCATION).
enum BuddyAllocFlags : unsigned {
  kBuddyRange = 1u << 0,
  kBuddyTopDown = 1u << 1,
  kBuddyContiguous = 1u << 2,
  kBuddyClear = 1u << 3,
  kBuddyTrimDisable = 1u << 4,
};

// Free flag: the freed blocks hold zeroes (GPU_BUDDY_CLEARED); without it they are dirty.
inline constexpr unsigned kBuddyCleared = 1u << 0;

class UTTM_EXPORT BuddyAllocator {
 public:
  // Largest order of a block (the kernel's 63 - PAGE_SHIFT).
  static constexpr unsigned kMaxOrder = 51;

  BuddyAllocator();
  BuddyAllocator(const BuddyAllocator&) = delete;
  BuddyAllocator& operator=(const BuddyAllocator&) = delete;
  ~BuddyAllocator() = default;

  // Sets up [0, size rounded down to chunk_size). chunk_size: a power of two >= 1. kInvalid if
  // size < chunk_size, chunk_size is not a power of two, or the allocator is initialised.
  Status Init(std::uint64_t size, std::uint64_t chunk_size);
  // Force-merges every free block and tears down. kBusy (and no change) while blocks are still
  // allocated; a no-op when not initialised.
  Status Fini();

  // Allocates as described above and appends the blocks to *out (untouched on error).
  Status AllocBlocks(std::uint64_t start, std::uint64_t end, std::uint64_t size,
                     std::uint64_t min_block_size, unsigned flags, std::vector<BuddyBlockId>* out);
  // Shrinks an allocated block to new_size (a chunk multiple), keeping the part that starts at
  // *new_start (or at the block's offset when null). The replacement blocks are appended to *out;
  // the original handle is then invalid. When new_size equals the block's size nothing changes
  // and the block itself is appended.
  Status TrimBlock(BuddyBlockId block, const std::uint64_t* new_start, std::uint64_t new_size,
                   std::vector<BuddyBlockId>* out);
  // Frees one allocated block, keeping its clear state. kInvalid for a bad handle.
  Status FreeBlock(BuddyBlockId block);
  // Frees every block of `blocks` (marks each clear with kBuddyCleared, else dirty) and empties
  // the vector. kInvalid (and nothing freed) if a handle is bad.
  Status FreeBlocks(std::vector<BuddyBlockId>* blocks, unsigned free_flags);
  // Force-merges everything and marks every free block clear (or dirty).
  void ResetClear(bool is_clear);

  // Block accessors; the handle must be allocated (CHECKed).
  std::uint64_t BlockOffset(BuddyBlockId block) const;
  std::uint64_t BlockSize(BuddyBlockId block) const;
  unsigned BlockOrder(BuddyBlockId block) const;
  bool BlockIsClear(BuddyBlockId block) const;
  bool BlockIsAllocated(BuddyBlockId block) const;

  bool initialized() const { return chunk_size_ != 0; }
  std::uint64_t size() const { return size_; }
  std::uint64_t chunk_size() const { return chunk_size_; }
  unsigned max_order() const { return max_order_; }
  std::uint64_t avail() const { return avail_; }
  std::uint64_t clear_avail() const { return clear_avail_; }
  unsigned root_count() const { return static_cast<unsigned>(roots_.size()); }
  // Offset alignment (log2 of the largest power of two dividing the offset, in bytes or units;
  // 64 for offset 0) of the best-aligned free block, or -1 when nothing is free.
  int MaxFreeAlignmentLog2() const;
  // Calls fn(offset, size, is_clear) for every free block.
  template <typename Fn>
  void ForEachFreeBlock(Fn&& fn) const {
    for (unsigned t = 0; t < 2; ++t) {
      for (unsigned o = 0; o <= max_order_; ++o) {
        for (std::uint32_t b : free_[t][o]) fn(links_[b].offset, chunk_size_ << o, t == 1);
      }
    }
  }

  // Human-readable dump: totals and free blocks per order (gpu_buddy_print).
  std::string DebugString() const;
  // Checks the tree, free lists and totals; kInvalid naming the first violation.
  Status Validate() const;

 private:
  static constexpr std::uint32_t kNil = 0xffffffffu;
  enum class State : std::uint8_t { kUnused, kFree, kAllocated, kSplit };
  // The hot part of a block, 8 bytes: everything allocation and free look at. With the table on
  // 64-byte boundaries a block and its buddy share a cache line, and the whole table stays small
  // enough to sit in the L2 cache under heavy fragmentation.
  struct alignas(8) Block {
    std::uint32_t slot = kNil;  // position on its free stack while listed
    std::uint8_t order = 0;
    State state = State::kUnused;
    bool clear = false;
    bool listed : 1 = false;  // on a free stack
    bool seen : 1 = false;    // FreeBlocks: handle already in the list being freed
    bool root : 1 = false;    // no parent (a root, or a block TrimBlock detached)
  };
  // The cold part, in a parallel table: position and tree links (splits, merges, ranges).
  struct Link {
    std::uint64_t offset = 0;
    std::uint32_t parent = kNil;
    std::uint32_t children = kNil;  // left child; the right child is children + 1
  };
  // An array of block ids used as a stack. Pushing allocates only when the stack outgrows every
  // earlier size, in an out-of-line step that keeps the inline push short.
  class FreeStack {
   public:
    const std::uint32_t* begin() const { return ids_.get(); }
    const std::uint32_t* end() const { return ids_.get() + size_; }
    std::uint32_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    std::uint32_t back() const { return ids_[size_ - 1]; }
    std::uint32_t operator[](std::uint32_t i) const { return ids_[i]; }
    void set(std::uint32_t i, std::uint32_t id) { ids_[i] = id; }
    void push_back(std::uint32_t id) {
      if (size_ == capacity_) Grow();
      ids_[size_++] = id;
    }
    void pop_back() { --size_; }
    void clear() { size_ = 0; }

   private:
    void Grow();
    // 16 bytes, so indexing the [tree][order] array stays a shift.
    std::unique_ptr<std::uint32_t[]> ids_;
    std::uint32_t size_ = 0;
    std::uint32_t capacity_ = 0;
  };
  // Gives the block table cache-line-aligned storage.
  template <typename T>
  struct LineAligned {
    using value_type = T;
    LineAligned() = default;
    template <typename U>
    explicit LineAligned(const LineAligned<U>&) {}
    T* allocate(std::size_t n) {
      return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{64}));
    }
    void deallocate(T* p, std::size_t) { ::operator delete (p, std::align_val_t{64}); }
    bool operator==(const LineAligned&) const { return true; }
  };

  std::uint64_t Size(const Block& b) const { return chunk_size_ << b.order; }
  std::uint32_t Buddy(std::uint32_t b) const { return blocks_[b].root ? kNil : (b ^ 1u); }
  std::uint32_t NewPair();
  void ListAdd(std::uint32_t b);
  void ListRemove(std::uint32_t b);
  std::uint32_t Split(std::uint32_t b);
  void MarkAllocated(std::uint32_t b);
  std::uint32_t FreeAndMerge(std::uint32_t b, bool force);
  std::uint32_t MergeUp(std::uint32_t b, bool force);
  bool TryMergeChildren(std::uint32_t parent);
  void UndoSplits(std::size_t mark);
  bool ForceMerge(std::uint64_t start, std::uint64_t end, unsigned min_order);
  std::uint32_t AllocFromFreeList(unsigned order, unsigned flags);
  std::uint32_t AllocTopDown(unsigned t, unsigned order);
  std::uint64_t AllocCommon(std::uint64_t pages, unsigned flags, std::vector<BuddyBlockId>* out);
  std::uint32_t SplitDown(std::uint32_t b, unsigned order);
  std::uint32_t AllocRangeBias(std::uint64_t start, std::uint64_t end, unsigned order,
                               unsigned flags);
  Status AllocRange(const std::uint32_t* roots, std::size_t n_roots, std::uint64_t start,
                    std::uint64_t size, std::uint64_t* filled, std::vector<BuddyBlockId>* out);
  Status AllocContigTryHarder(std::uint64_t size, std::uint64_t min_block_size,
                              std::vector<BuddyBlockId>* out);
  void Descend(std::uint32_t b);
  void Release(std::uint32_t b);
  void FreeInternal(std::vector<BuddyBlockId>* blocks);
  Status CheckHandle(BuddyBlockId b, const char* what) const;

  std::uint64_t size_ = 0;
  std::uint64_t chunk_size_ = 0;
  unsigned chunk_shift_ = 0;
  unsigned max_order_ = 0;
  std::uint64_t avail_ = 0;
  std::uint64_t clear_avail_ = 0;
  std::vector<std::uint32_t> roots_;
  std::vector<Block, LineAligned<Block>> blocks_;
  std::vector<Link> links_;                // same indices as blocks_
  std::vector<std::uint32_t> free_pairs_;  // even indices of unused child pairs
  // Free blocks by [dirty = 0 / clear = 1][order]: unordered stacks (push and pop at the back,
  // removal from the middle by moving the last entry into the hole; Block::slot is the
  // position), plus a bitmap per tree of the non-empty ones.
  FreeStack free_[2][kMaxOrder + 1];
  std::uint64_t free_bits_[2] = {};
  // Per order: pairs of buddies that are both on free lists (so of different clear states);
  // lets ForceMerge skip orders with nothing to merge.
  std::uint64_t free_pairs_by_order_[kMaxOrder + 1] = {};
  std::vector<std::uint32_t> split_log_;  // blocks split by the current operation
  std::vector<std::uint32_t> dfs_;        // depth-first work stack
};

}  // namespace uttm

#endif  // UTTM_SRC_RESOURCE_BUDDY_ALLOCATOR_H_
