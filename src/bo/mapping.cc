// Copyright (c) uttm developers.
//
// mapping.cc: CPU mappings of buffer objects (see mapping.h).

#include "uttm/mapping.h"

#include <string>
#include <utility>

#include "base/check.h"
#include "uttm/device.h"
#include "uttm/page_vector.h"
#include "uttm/resource_manager.h"

namespace uttm {

Result<std::byte*> BufferObject::MapLocked(unsigned flags, OperationContext& ctx) {
  resv()->AssertHeld();
  if (madv_ == Madvice::kPurged) {
    return Status(Errc::kInvalid, "Map: the object was purged (its contents are gone)");
  }
  if (madv_ == Madvice::kDontNeed) {
    return Status(Errc::kBusy, "Map: the object is marked \"don't need\" (madvise it first)");
  }
  if (map_count_ > 0) {
    ++map_count_;
    Pin();
    if ((flags & kMapWrite) != 0 && tt_) tt_->DropCleanCopy();
    return map_addr_;
  }
  UTTM_RETURN_IF_ERROR(WaitIdle(ctx));
  // Pinned from here: nothing reclaims the pages being brought in, and the shrinker's counts
  // follow the pin (recounted on unpin, also when the map fails).
  Pin();
  Result<std::byte*> addr = MapPinned(flags, ctx);
  if (!addr.ok()) {
    Unpin();
    return addr.status();
  }
  map_count_ = 1;
  map_addr_ = *addr;
  return addr;
}

Result<std::byte*> BufferObject::MapPinned(unsigned flags, OperationContext& ctx) {
  if (resource_ && !resource_->manager()->use_tt()) {
    std::byte* addr = device_->funcs().AccessMemory(*resource_);
    if (addr == nullptr) return Status(Errc::kFault, "Map: device memory not CPU accessible");
    return addr;
  }
  if (!resource_) UTTM_RETURN_IF_ERROR(AssignSystemResource());
  if (!tt_) UTTM_RETURN_IF_ERROR(CreateTt(true));
  if ((flags & kMapDiscard) != 0 && (tt_->is_backed_up() || tt_->is_swapped())) {
    // Every byte will be overwritten: fresh pages instead of reading the store back (the old
    // contents go only once the new pages are in).
    UTTM_RETURN_IF_ERROR(tt_->PopulateDiscarding(ctx));
  }
  UTTM_RETURN_IF_ERROR(Populate(ctx));
  // The caller will write: the store's clean copy (if the restore kept one) goes stale.
  if ((flags & kMapWrite) != 0) tt_->DropCleanCopy();
  return tt_->MapContiguous();
}

void BufferObject::UnmapLocked() {
  resv()->AssertHeld();
  UTTM_CHECK(map_count_ > 0, "Unmap of an object that is not mapped");
  // The page vector keeps its contiguous range until its pages leave it (backup, unpopulate),
  // so the next Map of a resident object costs nothing.
  if (--map_count_ == 0) map_addr_ = nullptr;
  Unpin();
  ReleaseUnusedTouchRange();
}

Result<Mapping> Mapping::Create(BoRef bo, unsigned flags, OperationContext& ctx) {
  if (!bo) return Status(Errc::kInvalid, "Mapping::Create: null buffer object");
  if ((flags & (kMapRead | kMapWrite)) == 0 ||
      (flags & ~(kMapRead | kMapWrite | kMapDiscard | kMapRestoreOnTouch))) {
    return Status(Errc::kInvalid, "Mapping::Create: flags must include kMapRead or kMapWrite");
  }
  if ((flags & kMapRestoreOnTouch) != 0 && (flags & kMapDiscard) != 0) {
    return Status(Errc::kInvalid,
                  "Mapping::Create: kMapDiscard does not go with kMapRestoreOnTouch (a touch "
                  "restores what the object holds)");
  }
  UTTM_RETURN_IF_ERROR(bo->Reserve(ctx));
  bo->resv()->AssertHeld();
  bool touch = false;
  Result<std::byte*> addr = (flags & kMapRestoreOnTouch) != 0
                                ? bo->MapTouchLocked(flags, ctx, &touch)
                                : bo->MapLocked(flags, ctx);
  bo->Unreserve();
  if (!addr.ok()) return addr.status();
  const std::size_t size = bo->size().value();
  return Mapping(std::move(bo), *addr, size, touch ? flags : flags & ~kMapRestoreOnTouch, touch);
}

Status Mapping::touch_status() const {
  if (!touch_) return Status();
  OperationContext ctx;
  UTTM_RETURN_IF_ERROR(bo_->Reserve(ctx));
  bo_->resv()->AssertHeld();
  Status s = bo_->TouchStatus();
  bo_->Unreserve();
  return s;
}

Result<Mapping> Mapping::CreateRange(BoRef bo, std::uint64_t offset, std::uint64_t length,
                                     unsigned flags, OperationContext& ctx) {
  if (!bo) return Status(Errc::kInvalid, "Mapping::CreateRange: null buffer object");
  const std::uint64_t size = bo->size().value();
  if (length == 0 || offset >= size || length > size - offset) {
    return Status(Errc::kInvalid, "Mapping::CreateRange: bytes [" + std::to_string(offset) + ", +" +
                                      std::to_string(length) + ") are not inside the object of " +
                                      std::to_string(size) + " bytes");
  }
  if ((flags & kMapDiscard) != 0 && length != size) {
    return Status(Errc::kInvalid,
                  "Mapping::CreateRange: kMapDiscard needs the whole object (it drops every byte)");
  }
  UTTM_ASSIGN_OR_RETURN(Mapping whole, Create(std::move(bo), flags, ctx));
  whole.data_ += offset;
  whole.size_ = static_cast<std::size_t>(length);
  return whole;
}

Mapping::Mapping(Mapping&& other) noexcept
    : bo_(std::move(other.bo_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      flags_(std::exchange(other.flags_, 0)),
      touch_(std::exchange(other.touch_, false)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    reset();
    bo_ = std::move(other.bo_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    flags_ = std::exchange(other.flags_, 0);
    touch_ = std::exchange(other.touch_, false);
  }
  return *this;
}

void Mapping::reset() {
  if (data_ == nullptr) return;
  OperationContext ctx;  // not interruptible: an unmap always completes
  Status s = bo_->Reserve(ctx);
  UTTM_CHECK(s.ok(), "Mapping::reset: an uninterruptible reserve failed");
  bo_->resv()->AssertHeld();
  if (touch_) {
    bo_->UnmapTouchLocked((flags_ & kMapWrite) != 0);
  } else {
    bo_->UnmapLocked();
  }
  bo_->Unreserve();
  data_ = nullptr;
  size_ = 0;
  flags_ = 0;
  touch_ = false;
  bo_.reset();
}

}  // namespace uttm
