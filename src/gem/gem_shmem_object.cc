// Copyright (c) uttm developers.
//
// gem_shmem_object.cc: see gem_shmem_object.h.
#include "uttm/gem_shmem_object.h"

#include <chrono>
#include <string>

#include "uttm/gem_device.h"

namespace uttm {
namespace {

// How long a reclaim entry point waits for a busy object (msm waits up to 10 jiffies).
constexpr std::chrono::milliseconds kReclaimWait{10};

}  // namespace

const char* GemPageStateName(GemPageState state) {
  switch (state) {
    case GemPageState::kPurged:
      return "purged";
    case GemPageState::kEvicted:
      return "evicted";
    case GemPageState::kUnpinned:
      return "unpinned";
    case GemPageState::kPinned:
      return "pinned";
    case GemPageState::kEvictable:
      return "evictable";
    case GemPageState::kPurgeable:
      return "purgeable";
  }
  return "?";
}

GemShmemObject::GemShmemObject(GemDevice* device, std::unique_ptr<ShmemBacking> backing)
    : device_(device), backing_(std::move(backing)) {}

GemShmemObject::~GemShmemObject() = default;

void GemShmemObject::Put() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  {
    MutexLock lock(device_->lru_lock());
    GemLru::Remove(*this);
  }
  device_->objects_.fetch_sub(1, std::memory_order_relaxed);
  delete this;  // the backing unmaps and closes its file
}

bool GemShmemObject::GetUnlessZero() {
  int cur = refs_.load(std::memory_order_relaxed);
  while (cur > 0) {
    if (refs_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) return true;
  }
  return false;
}

GemPageState GemShmemObject::state() const {
  if (madv_ < 0) return GemPageState::kPurged;
  // Don't-need contents in a file are purgeable whether mapped or not: truncating frees them.
  if (madv_ > 0 && pages_pin_count_ == 0 && backing_->has_file()) {
    return purging_disable_count_ == 0 ? GemPageState::kPurgeable : GemPageState::kPinned;
  }
  if (evicted_) return GemPageState::kEvicted;
  if (pages_use_count_ == 0) return GemPageState::kUnpinned;
  if (pages_pin_count_ > 0) return GemPageState::kPinned;
  if (madv_ == 0 && eviction_disable_count_ == 0 && device_->can_evict()) {
    return GemPageState::kEvictable;
  }
  return GemPageState::kPinned;
}

bool GemShmemObject::IsPurgeable() const { return state() == GemPageState::kPurgeable; }
bool GemShmemObject::IsEvictable() const { return state() == GemPageState::kEvictable; }

void GemShmemObject::UpdateState() {
  GemDevice& d = *device_;
  GemLru* to = nullptr;
  switch (state()) {
    case GemPageState::kPurgeable:
      to = &d.dontneed_;
      break;
    case GemPageState::kEvictable:
      to = &d.willneed_;
      break;
    case GemPageState::kPinned:
      to = &d.pinned_;
      break;
    case GemPageState::kEvicted:
      to = &d.evicted_;
      break;
    case GemPageState::kPurged:
    case GemPageState::kUnpinned:
      break;
  }
  if (to == nullptr) {
    MutexLock lock(d.lru_lock());
    GemLru::Remove(*this);
  } else {
    MutexLock lock(to->lock());  // the device's LRU lock, shared by every list
    to->MoveTail(*this, num_pages().value());
  }
}

Status GemShmemObject::GetPages() {
  if (madv_ < 0) return Status(Errc::kInvalid, "GetPages of a purged GEM object");
  if (evicted_) {
    device_->SwapInReadahead(*this);
    UTTM_RETURN_IF_ERROR(device_->funcs().SwapIn(*this));
    if (evicted_) return Status(Errc::kInvalid, "the driver's SwapIn left the object evicted");
  } else if (!backing_->mapped()) {
    UTTM_RETURN_IF_ERROR(backing_->Map().status());
  }
  ++pages_use_count_;
  UpdateState();
  return Status();
}

Status GemShmemObject::PutPages() {
  if (pages_use_count_ == 0) {
    return Status(Errc::kInvalid, "PutPages of a GEM object that holds no pages");
  }
  if (--pages_use_count_ == 0 && !evicted_) {
    // The last user: the pages go back to the file, for the kernel to reclaim lazily (an
    // unmap without writeback cannot fail).
    (void)backing_->Unmap(/*writeback=*/false);
  }
  UpdateState();
  return Status();
}

Status GemShmemObject::Pin() {
  if (madv_ < 0) return Status(Errc::kInvalid, "Pin of a purged GEM object");
  if (pages_pin_count_ == 0) UTTM_RETURN_IF_ERROR(GetPages());
  ++pages_pin_count_;
  UpdateState();
  return Status();
}

Status GemShmemObject::Unpin() {
  if (pages_pin_count_ == 0) return Status(Errc::kInvalid, "Unpin of a GEM object not pinned");
  if (--pages_pin_count_ == 0) return PutPages();
  return Status();
}

Result<std::byte*> GemShmemObject::Vmap() {
  if (madv_ < 0) return Status(Errc::kInvalid, "Vmap of a purged GEM object");
  if (vmap_use_count_ == 0) UTTM_RETURN_IF_ERROR(Pin());
  ++vmap_use_count_;
  return backing_->data();
}

Status GemShmemObject::Vunmap() {
  if (vmap_use_count_ == 0) return Status(Errc::kInvalid, "Vunmap of a GEM object not mapped");
  if (--vmap_use_count_ == 0) return Unpin();
  return Status();
}

Status GemShmemObject::Prefetch() {
  if (madv_ < 0) return Status(Errc::kInvalid, "Prefetch of a purged GEM object");
  backing_->Prefetch();  // a no-op while mapped
  return Status();
}

bool GemShmemObject::Madvise(int madv) {
  if (madv_ >= 0) {
    madv_ = madv;
    UpdateState();
  }
  return madv_ >= 0;
}

Status GemShmemObject::Switch(unsigned* disable_count, bool enable, const char* what) {
  if (enable) {
    if (*disable_count == 0) {
      return Status(Errc::kInvalid, std::string("enabling ") + what + " that was not disabled");
    }
    --*disable_count;
  } else {
    ++*disable_count;
  }
  UpdateState();
  return Status();
}

Status GemShmemObject::DisableEviction() {
  return Switch(&eviction_disable_count_, false, "eviction");
}
Status GemShmemObject::EnableEviction() {
  return Switch(&eviction_disable_count_, true, "eviction");
}
Status GemShmemObject::DisablePurging() {
  return Switch(&purging_disable_count_, false, "purging");
}
Status GemShmemObject::EnablePurging() { return Switch(&purging_disable_count_, true, "purging"); }

Status GemShmemObject::WaitIdle(const OperationContext& ctx) {
  if (resv_.TestSignaled(ResvUsage::kBookkeep)) return Status();
  if (ctx.no_wait_gpu) return Status(Errc::kBusy, "the GEM object is busy");
  Status s = resv_.Wait(ResvUsage::kBookkeep, ctx, kReclaimWait);
  if (s.code() == Errc::kTimedOut) return Status(Errc::kBusy, "the GEM object stayed busy");
  return s;
}

Result<std::uint64_t> GemShmemObject::Purge(const OperationContext& ctx) {
  if (!IsPurgeable()) {
    return Status(Errc::kInvalid, std::string("a GEM object that is ") + GemPageStateName(state()) +
                                      " cannot be purged");
  }
  UTTM_RETURN_IF_ERROR(WaitIdle(ctx));
  return device_->funcs().Purge(*this);
}

Result<std::uint64_t> GemShmemObject::Evict(bool writeback, const OperationContext& ctx) {
  if (!IsEvictable()) {
    return Status(Errc::kInvalid, std::string("a GEM object that is ") + GemPageStateName(state()) +
                                      " cannot be evicted");
  }
  UTTM_RETURN_IF_ERROR(WaitIdle(ctx));
  return device_->funcs().Evict(*this, writeback);
}

Result<std::uint64_t> GemShmemObject::PurgeLocked() {
  if (!IsPurgeable()) {
    return Status(Errc::kInvalid, std::string("a GEM object that is ") + GemPageStateName(state()) +
                                      " cannot be purged");
  }
  const std::uint64_t pages = num_pages().value();
  UTTM_RETURN_IF_ERROR(backing_->Truncate());  // on failure the object is unchanged
  pages_use_count_ = 0;
  evicted_ = false;
  madv_ = -1;
  device_->stats().Add(Stat::kGemPagesPurged, pages);
  UpdateState();
  return pages;
}

Result<std::uint64_t> GemShmemObject::EvictLocked(bool writeback) {
  if (!IsEvictable()) {
    return Status(Errc::kInvalid, std::string("a GEM object that is ") + GemPageStateName(state()) +
                                      " cannot be evicted");
  }
  const std::uint64_t pages = num_pages().value();
  UTTM_RETURN_IF_ERROR(backing_->Unmap(writeback));  // on failure the pages stay mapped
  evicted_ = true;
  device_->stats().Add(Stat::kGemPagesEvicted, pages);
  UpdateState();
  return pages;
}

Status GemShmemObject::SwapInLocked() {
  if (!evicted_) return Status();
  UTTM_RETURN_IF_ERROR(backing_->Map().status());  // on failure it stays evicted
  evicted_ = false;
  device_->stats().Add(Stat::kGemPagesSwappedIn, num_pages().value());
  UpdateState();
  return Status();
}

}  // namespace uttm
