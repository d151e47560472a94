// Copyright (c) uttm developers.
//
// mapping.h: a CPU mapping of a buffer object (TTM's ttm_bo_vmap / ttm_bo_kmap, for user space).
//
//   uttm::OperationContext ctx;
//   auto map = uttm::Mapping::Create(bo, uttm::kMapRead | uttm::kMapWrite, ctx);
//   if (!map.ok()) ...
//   std::span<std::byte> bytes = map->span();     // the whole object, one contiguous address
//   ...                                            // map.reset() or destruction unmaps
//   auto part = uttm::Mapping::CreateRange(bo, offset, length, uttm::kMapRead, ctx);
//
// Create reserves the object, waits for the GPU to finish with it, makes it resident where the
// CPU can reach it, and pins it: while mapped it is never moved, evicted, backed up or purged
// (the shrinkers leave its pages out of their counts). Page-vector memory (SYSTEM, TT) is
// populated or restored, then mapped contiguously without copying (PageVector::MapContiguous:
// pages already end to end are used in place, otherwise moved by mremap into a stable range and
// moved back home only when the pages leave the vector, so mapping again is free). Device memory is
// used where the driver's AccessMemory says it is. An object without a resource is given a SYSTEM
// one. Mappings nest: the object is mapped once and unmapped when the last Mapping goes; it then
// goes to the tail of its LRU, as recently used.
//
// Flags: kMapRead and kMapWrite say what the caller will do (either or both); kMapDiscard says it
// will overwrite every byte, so a backed-up or swapped-out object is not read back: its store
// copy is dropped and it gets fresh zeroed pages (no I/O). Purgeable objects follow xe's 2026
// contract: mapping a "don't need" object fails with kBusy, a purged one with kInvalid.
//
// Errors: kInvalid for no flags, a null object or a purged one; kBusy for a "don't need" object;
// kFault for device memory the CPU cannot reach; reservation and populate errors (kInterrupted,
// kNoMemory, kIo: the object keeps its contents and nothing is mapped).
// Thread-safety: a Mapping is used by one thread at a time; the bytes are shared memory, so
// concurrent writers must coordinate among themselves. Unmapping reserves the object
// (uninterruptibly): do not drop a Mapping while holding the object's reservation.
#ifndef UTTM_MAPPING_H_
#define UTTM_MAPPING_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "uttm/buffer_object.h"
#include "uttm/export.h"
#include "uttm/operation_context.h"
#include "uttm/status.h"

namespace uttm {

enum MapFlag : unsigned {
  kMapRead = 1u << 0,
  kMapWrite = 1u << 1,
  kMapDiscard = 1u << 2,
};

class UTTM_EXPORT Mapping {
 public:
  // Maps the whole object. See the file comment.
  static Result<Mapping> Create(BoRef bo, unsigned flags, OperationContext& ctx);
  // Maps bytes [offset, offset + length) of the object: data() points at byte `offset`, size() is
  // `length`. The whole object is made resident and pinned as with Create (a range of a
  // backed-up object restores all of it). kInvalid for an empty range, one past the object's end,
  // or kMapDiscard on less than the whole object (discard would drop the other bytes too).
  static Result<Mapping> CreateRange(BoRef bo, std::uint64_t offset, std::uint64_t length,
                                     unsigned flags, OperationContext& ctx);

  Mapping() = default;
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { reset(); }

  std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<std::byte> span() const { return {data_, size_}; }
  BufferObject* object() const { return bo_.get(); }
  explicit operator bool() const { return data_ != nullptr; }
  // Unmaps now (no-op when empty).
  void reset();

 private:
  Mapping(BoRef bo, std::byte* data, std::size_t size)
      : bo_(std::move(bo)), data_(data), size_(size) {}
  BoRef bo_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace uttm

#endif  // UTTM_MAPPING_H_
