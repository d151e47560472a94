// Copyright (c) uttm developers.
//
// slab_pool.h (internal): size-classed slabs for compressed pages (zsmalloc's idea, simplified).
//
// An object of 1..4096 bytes goes into the class of the next multiple of 64 bytes. Each class
// cuts 64 KiB slabs (order-4 chunks of a PageProvider: carved from large reserved regions, since
// an mmap and munmap per slab cost more than the data they hold; on this virtual machine 256 of
// each took 28-50 ms and 45-77 ms) into equal slots; beside each slab, on the heap, one 32-bit
// owner word per slot (who holds the slot: the store's entry index) lets Compact move objects
// and tell their owners. A free slot holds the index of the next free slot of its slab. A slab
// that empties leaves its class at once unless it is the class's last one with room, and goes to
// a small cache of spare slabs (counted in bytes()) or back to the provider. Compact empties
// the sparsest
// slabs of a class into its fullest ones when more than a quarter of its slots are free (and at
// least two slabs' worth), so the slack of a class stays below max(a quarter, two slabs).
//
// Thread-safety: none; the owner serialises every call.
#ifndef UTTM_SRC_STORES_COMPRESSED_SLAB_POOL_H_
#define UTTM_SRC_STORES_COMPRESSED_SLAB_POOL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "uttm/page_provider.h"

namespace uttm::internal {

class SlabPool {
 public:
  static constexpr std::uint32_t kGranule = 64;
  static constexpr std::uint32_t kClasses = 4096 / kGranule;
  static constexpr std::size_t kSlabBytes = std::size_t{64} << 10;
  // Emptied slabs kept by default for the next new slab of any class (4 MiB): a store that backs
  // up while it drops does not take fresh memory from the kernel for every page (on this
  // virtual machine the first touch of a page costs about 20 us, more than compressing it).
  static constexpr std::size_t kDefaultSpareSlabs = 64;

  // Where an object lives.
  struct Ref {
    std::uint32_t slab = 0;
    std::uint32_t slot = 0;
  };

  // Slabs come from `provider` (not owned; it must outlive the pool).
  explicit SlabPool(PageProvider* provider, std::size_t spare_slabs = kDefaultSpareSlabs)
      : provider_(provider), max_spare_(spare_slabs) {}
  ~SlabPool();
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  // Whether an object of `len` bytes fits without a new slab.
  bool FitsWithoutNewSlab(std::uint32_t len) const;
  // A slot for `len` (1..4096) bytes owned by `owner`: false when a needed slab cannot be
  // mapped. Never moves other objects.
  bool Alloc(std::uint32_t len, std::uint32_t owner, Ref* ref);
  // The bytes of an allocated slot.
  std::byte* At(Ref ref) const;
  // Frees a slot; its slab is unmapped if it empties (see the file comment).
  void Free(Ref ref);
  // Moves objects out of the sparsest slabs of classes with too much slack, calling
  // `moved(owner, new_ref)` for each, and unmaps the emptied slabs. Returns objects moved.
  std::size_t Compact(const std::function<void(std::uint32_t owner, Ref to)>& moved);

  // Slabs released since the last call, for the caller to give back to the provider outside
  // its lock (PageProvider::Free, which merges adjacent ones into one madvise).
  std::vector<PageChunk> TakeReleased() { return std::exchange(released_, {}); }

  // Bytes of slabs held now (spares included, released ones not), with their owner words.
  std::uint64_t bytes() const { return slab_bytes_; }
  // Slots in use over all classes, and their capacity (for tests of the fragmentation bound).
  std::uint64_t used_slots() const;
  std::uint64_t slot_capacity() const;
  // Bytes a new slab for objects of `len` bytes adds to bytes().
  static std::uint64_t SlabFootprint(std::uint32_t len) {
    return kSlabBytes + SlotsPerSlab(ClassOf(len)) * sizeof(std::uint32_t);
  }
  // Bytes a new slab for objects of `len` bytes adds to bytes() now: a spare slab is counted
  // already, so taking one adds only its owner words.
  std::uint64_t NewSlabGrowth(std::uint32_t len) const {
    return SlabFootprint(len) - (spare_.empty() ? 0 : kSlabBytes);
  }
  // Class of `len` bytes and its slot size.
  static std::uint32_t ClassOf(std::uint32_t len) { return (len + kGranule - 1) / kGranule - 1; }
  static std::uint32_t SlotBytes(std::uint32_t cls) { return (cls + 1) * kGranule; }
  static std::uint32_t SlotsPerSlab(std::uint32_t cls) {
    return static_cast<std::uint32_t>(kSlabBytes / SlotBytes(cls));
  }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  struct Slab {
    std::byte* base = nullptr;  // null: a free record
    std::unique_ptr<std::uint32_t[]> owner_words;
    std::uint32_t cls = 0;
    std::uint32_t used = 0;
    std::uint32_t free_head = kNone;  // first free slot
    std::uint32_t next_free_record = kNone;
    std::uint32_t* owners() const { return owner_words.get(); }
  };
  struct Class {
    std::vector<std::uint32_t> partial;  // slabs with a free slot (unordered)
    std::uint64_t used = 0;
    std::uint64_t slabs = 0;
  };

  // A new slab of `cls`, on its class's partial list; kNone when mmap fails.
  std::uint32_t NewSlab(std::uint32_t cls);
  void ReleaseSlab(std::uint32_t id);
  // Takes the first free slot of slab `id` (which has one) for `owner`.
  Ref TakeSlot(std::uint32_t id, std::uint32_t owner);
  void RemovePartial(Class& c, std::uint32_t id);
  bool TooMuchSlack(const Class& c, std::uint32_t cls) const;

  std::vector<Slab> slabs_;
  std::uint32_t free_records_ = kNone;
  std::array<Class, kClasses> classes_{};
  std::uint64_t slab_bytes_ = 0;
  PageProvider* const provider_;
  const std::size_t max_spare_;
  std::vector<std::byte*> spare_;    // empty, counted in slab_bytes_
  std::vector<PageChunk> released_;  // empty, for the provider
};

}  // namespace uttm::internal

#endif  // UTTM_SRC_STORES_COMPRESSED_SLAB_POOL_H_
