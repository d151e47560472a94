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
// Restore on touch (kMapRestoreOnTouch, with kMapRead and/or kMapWrite): the object is not
// pinned. Its bytes get an address of their own that stays valid while the mapping lives, also
// while the object is evicted: reclaim may back it up as any other object (it stays on its LRU and
// in the shrinkers' counts), moving its pages out of the range, and the next CPU touch of the
// range restores the whole object there (userfaultfd, user_faults.h: the touching thread waits,
// the context's fault service reserves the object, waits for the GPU, restores and moves the
// pages in, as a kernel driver's ttm_bo_vm_fault does). Creating the mapping restores nothing: a
// backed-up object stays in its store until touched. A touch marks the object used (LRU tail).
// With kMapWrite every restore drops the store's clean copy (writes cannot be seen one by one).
// An object a driver moved to device memory meanwhile is validated back to SYSTEM on the touch.
// When the object cannot be restored for good (a store read or checksum error, purged, no memory
// after about a second of retries), the range is made inaccessible (a touch is then a SIGSEGV, as
// a kernel fault handler's SIGBUS) and touch_status() says why; the object's contents are not
// changed by that. Not with kMapDiscard. Do not touch the range while holding the object's
// reservation: the fault waits for it. Where the kernel refuses userfaultfd (seccomp, or
// vm.unprivileged_userfaultfd = 0 for an unprivileged process), the mapping is made as an
// explicit (pinned) one, restores_on_touch() is false, and the reason is said once on stderr.
// A forked child's copy of the range is not served.
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
  kMapRestoreOnTouch = 1u << 3,
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
  // True for a restore-on-touch mapping (false also when one was asked for and made explicit).
  bool restores_on_touch() const { return touch_; }
  // A restore-on-touch mapping: OK, or why its range was made inaccessible (the object could not
  // be restored, was purged, or could not be brought where the CPU reaches it). Reserves the
  // object. OK for other mappings.
  Status touch_status() const;
  // Unmaps now (no-op when empty).
  void reset();

 private:
  Mapping(BoRef bo, std::byte* data, std::size_t size, unsigned flags, bool touch)
      : bo_(std::move(bo)), data_(data), size_(size), flags_(flags), touch_(touch) {}
  BoRef bo_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  unsigned flags_ = 0;
  bool touch_ = false;
};

}  // namespace uttm

#endif  // UTTM_MAPPING_H_
