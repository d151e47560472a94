// Copyright (c) uttm developers.
//
// slot_allocator.h (internal): hands out runs of consecutive page slots inside one backup store.
//
// A store is a flat array of 4 KiB slots (slot s lives at byte offset s * kPageSize of its file
// or memfd). Many page vectors share one store, so the allocator keeps the free space as extents
// (start, length) and serves a request for n pages with as few extents as it can, so that a run
// of n pages becomes one large write:
//   1. the smallest free extent that holds all n (best fit, lowest start on ties);
//   2. otherwise fresh slots at the end of the used range (the "tail");
//   3. otherwise (the capacity is reached) pieces of free extents, largest first.
// Freed slots merge with their neighbours; a free extent that reaches the tail shrinks the tail,
// so no free extent ever touches it.
//
// Thread-safety: none; the owning store serialises calls with its own mutex.
#ifndef UTTM_SRC_BACKUP_SLOT_ALLOCATOR_H_
#define UTTM_SRC_BACKUP_SLOT_ALLOCATOR_H_

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace uttm::internal {

// A run of consecutive slots [start, start + count).
struct SlotExtent {
  std::uint64_t start = 0;
  std::uint64_t count = 0;
  friend bool operator==(const SlotExtent&, const SlotExtent&) = default;
};

class SlotAllocator {
 public:
  // `max_slots`: slots [0, max_slots) may ever be used (the store's capacity).
  explicit SlotAllocator(std::uint64_t max_slots) : max_slots_(max_slots) {}

  // Allocates up to `n` slots, appending the extents (in the order the pages map to them) to
  // `out`. Returns the number allocated: n, or fewer only when the capacity is exhausted.
  // Allocates no memory of its own; appending to `out` may (reserve it to avoid that).
  std::uint64_t Allocate(std::uint64_t n, std::vector<SlotExtent>* out);

  // Returns [start, start + count) to the free space. REQUIRES: the slots are allocated. Its only
  // allocation comes before any change: on std::bad_alloc nothing has changed.
  void Free(std::uint64_t start, std::uint64_t count);

  // Slots currently allocated.
  std::uint64_t used() const { return used_; }
  // One past the highest slot ever in use now (the store's medium needs this many slots).
  std::uint64_t tail() const { return tail_; }
  // Slots that can still be allocated.
  std::uint64_t available() const { return max_slots_ - used_; }
  std::uint64_t max_slots() const { return max_slots_; }
  // Free extents below the tail (fragmentation indicator).
  std::size_t free_extents() const { return by_start_.size(); }

 private:
  using ByStart = std::map<std::uint64_t, std::uint64_t>;
  using BySize = std::set<std::pair<std::uint64_t, std::uint64_t>>;
  // The nodes of one free extent in both indexes, detached: putting them back allocates nothing.
  struct Nodes {
    ByStart::node_type start;
    BySize::node_type size;
  };
  // Fresh nodes for a new free extent (the one allocation of Free, made first).
  static Nodes MakeNodes();
  // Detaches the free extent `it` from both indexes.
  Nodes Extract(ByStart::iterator it);
  // Files `nodes` as the free extent [start, start + count).
  void Put(Nodes nodes, std::uint64_t start, std::uint64_t count);
  // Takes `count` slots from the front of the free extent `it`.
  void TakeFront(std::map<std::uint64_t, std::uint64_t>::iterator it, std::uint64_t count);

  const std::uint64_t max_slots_;
  std::uint64_t used_ = 0;
  std::uint64_t tail_ = 0;
  // Free extents below the tail, by start (for merging) and by (length, start) (for best fit).
  ByStart by_start_;
  BySize by_size_;
};

}  // namespace uttm::internal

#endif  // UTTM_SRC_BACKUP_SLOT_ALLOCATOR_H_
