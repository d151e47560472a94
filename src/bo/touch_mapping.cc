// Copyright (c) uttm developers.
//
// touch_mapping.cc: restore-on-touch mappings of buffer objects (mapping.h, kMapRestoreOnTouch).
//
// The object owns a reserved range (2 MiB aligned, like PageVector::MapContiguous's) that its page
// vector keeps as its contiguous mapping (PageVector::AttachRange): pages move in when the object
// is resident and touched, and out (the range armed first) whenever reclaim takes them. The
// context's UserFaults service calls a TouchHandler when a thread touches the empty range; the
// handler try-locks the object (a busy object is tried again a millisecond later, so one object
// held by an evictor never stalls touches of others) and makes it resident there, the way
// ttm_bo_vm_fault reserves the object, waits for its moves and populates it
// (drivers/gpu/drm/ttm/ttm_bo_vm.c: ttm_bo_vm_reserve, ttm_bo_vm_fault_reserved).
#include <sys/mman.h>

#include <chrono>
#include <string>

#include "base/check.h"
#include "bo/touch_range.h"
#include "uttm/buffer_object.h"
#include "uttm/device.h"
#include "uttm/mapping.h"
#include "uttm/memory_context.h"
#include "uttm/page_vector.h"
#include "uttm/resource_manager.h"
#include "uttm/user_faults.h"

namespace uttm {

namespace {
// A restore that keeps failing for lack of memory (or a GPU that stays busy) is given this long
// before the range is made inaccessible.
constexpr auto kTouchPatience = std::chrono::seconds(2);
}  // namespace

// Called on the fault service's thread. Holds the object only while a mapping exists: Detach runs
// (under the object's reservation) before the last Mapping drops its reference.
class BufferObject::TouchHandler final : public UserFaults::Handler {
 public:
  explicit TouchHandler(BufferObject* bo) : bo_(bo) {}

  void Detach() {
    MutexLock lock(&mu_);
    bo_ = nullptr;
  }

  Status OnFault(std::byte* /*address*/, bool write) override {
    BoRef ref;
    {
      MutexLock lock(&mu_);
      if (bo_ == nullptr) return Status();  // unmapped meanwhile
      bo_->Get();
      ref = BoRef::Adopt(bo_);
    }
    if (!ref->TryReserve()) return Status(Errc::kBusy, "touch: the object is reserved");
    Status s = ref->ResolveTouchFault(write);
    ref->Unreserve();  // the touch made it the most recently used
    return s;
  }

 private:
  Mutex mu_;
  BufferObject* bo_ UTTM_GUARDED_BY(mu_);
};

Result<std::byte*> BufferObject::MapTouchLocked(unsigned flags, OperationContext& ctx,
                                                bool* on_touch) {
  resv()->AssertHeld();
  *on_touch = false;
  const bool write = (flags & kMapWrite) != 0;
  if (madv_ == Madvice::kPurged) {
    return Status(Errc::kInvalid, "Map: the object was purged (its contents are gone)");
  }
  if (madv_ == Madvice::kDontNeed) {
    return Status(Errc::kBusy, "Map: the object is marked \"don't need\" (madvise it first)");
  }
  if (resource_ && !resource_->manager()->use_tt()) {
    return Status(Errc::kInvalid,
                  "Map: restore on touch needs an object in page-vector memory (SYSTEM or TT); "
                  "this one is in device memory");
  }
  if (touch_) {
    if (!touch_->failed.ok()) return touch_->failed;
    ++touch_->mappings;
    if (write) {
      ++touch_->writers;
      if (tt_) tt_->DropCleanCopy();
    }
    *on_touch = true;
    return touch_->base;
  }
  if (map_count_ > 0) {
    // Its address is the explicit mapping's, which may be the pages' home: not one that can stay
    // while the object is evicted.
    return Status(Errc::kBusy,
                  "Map: the object has explicit mappings; a restore-on-touch mapping of it is made "
                  "before them or after they are gone");
  }
  Result<UserFaults*> faults = device_->memory().user_faults();
  if (!faults.ok()) return MapLocked(flags & ~kMapRestoreOnTouch, ctx);  // said once already

  if (!resource_) UTTM_RETURN_IF_ERROR(AssignSystemResource());
  if (!tt_) UTTM_RETURN_IF_ERROR(CreateTt(true));
  if (tt_->is_shmem()) {
    return Status(Errc::kInvalid,
                  "Map: restore on touch is for pool-backed page vectors; a file-backed one is "
                  "mapped from its file");
  }
  auto range = std::make_unique<TouchRange>();
  range->faults = *faults;
  range->bytes = tt_->num_pages().value() * kPageSize;
  constexpr std::size_t kHuge = kPageSize << kMaxPageOrder;
  range->reserved_bytes = range->bytes + kHuge;
  void* r = mmap(nullptr, range->reserved_bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return Status(Errc::kNoMemory, "Map: cannot reserve address space");
  range->reserved = static_cast<std::byte*>(r);
  range->base = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(r) + kHuge - 1) &
                                             ~std::uintptr_t{kHuge - 1});
  range->handler = std::make_shared<TouchHandler>(this);
  Status s = range->faults->AddRange(range->base, range->bytes, range->handler);
  if (s.ok()) {
    s = tt_->AttachRange(range->base, range->faults);
    if (!s.ok()) range->faults->RemoveRange(range->base);
  }
  if (!s.ok()) {
    munmap(range->reserved, range->reserved_bytes);
    return s;
  }
  range->mappings = 1;
  range->writers = write ? 1 : 0;
  touch_ = std::move(range);
  if (write) tt_->DropCleanCopy();
  // A resident object goes into the range now (after the GPU is done with it, as any mapping);
  // otherwise, or if that fails, the first touch brings it.
  if (tt_->is_populated() && WaitIdle(ctx).ok()) (void)tt_->MapContiguous();
  *on_touch = true;
  return touch_->base;
}

void BufferObject::UnmapTouchLocked(bool write) {
  resv()->AssertHeld();
  UTTM_CHECK(touch_ && touch_->mappings > 0, "Unmap of a restore-on-touch mapping that is gone");
  if (write) --touch_->writers;
  --touch_->mappings;
  ReleaseUnusedTouchRange();
}

void BufferObject::ReleaseUnusedTouchRange() {
  // Explicit mappings made meanwhile use the range's address too: it stays until they go.
  if (!touch_ || touch_->mappings > 0 || map_count_ > 0) return;
  if (tt_) tt_->DetachRange();  // the pages go home; the object keeps them
  touch_->handler->Detach();
  touch_->faults->RemoveRange(touch_->base);
  munmap(touch_->reserved, touch_->reserved_bytes);
  touch_.reset();
}

void BufferObject::AttachTouchRange() {
  if (!touch_ || !tt_ || tt_->attached_range() != nullptr) return;
  if (tt_->num_pages().value() * kPageSize != touch_->bytes ||
      !tt_->AttachRange(touch_->base, touch_->faults).ok()) {
    (void)FailTouch(Status(Errc::kFault,
                           "touch: the object's new page vector does not fit its "
                           "restore-on-touch range"));
  }
}

Status BufferObject::FailTouch(Status why) {
  if (touch_->failed.ok()) {
    touch_->failed = why;
    device_->memory().stats().Add(Stat::kTouchFailures);
  }
  // Pages moved in later (an explicit mapping) would make the range accessible again: the range
  // stays closed while the mapping lives.
  if (map_count_ == 0 && tt_ && tt_->mapped_address() == touch_->base) tt_->UnmapContiguous();
  mprotect(touch_->base, touch_->bytes, PROT_NONE);
  return touch_->failed;
}

Status BufferObject::TouchAgain(const Status& why) {
  // Anything but done or failed for good is tried again shortly, for kTouchPatience at most.
  const auto now = std::chrono::steady_clock::now();
  if (!touch_->retrying) {
    touch_->retrying = true;
    touch_->first_retry = now;
  } else if (now - touch_->first_retry > kTouchPatience) {
    // (never kBusy: that would have the service try again)
    const Errc code = why.code() == Errc::kBusy ? Errc::kTimedOut : why.code();
    return FailTouch(Status(code, "touch: gave up after " + std::to_string(kTouchPatience.count()) +
                                      " s: " + std::string(why.message())));
  }
  return Status(Errc::kBusy, std::string(why.message()));
}

Status BufferObject::TouchStatus() { return touch_ ? touch_->failed : Status(); }

Status BufferObject::ResolveTouchFault(bool write) {
  resv()->AssertHeld();
  if (!touch_) return Status();
  if (!touch_->failed.ok()) return FailTouch(touch_->failed);
  if (madv_ == Madvice::kPurged) {
    return FailTouch(
        Status(Errc::kInvalid, "touch: the object was purged (its contents are gone)"));
  }
  OperationContext ctx;
  ctx.no_wait_gpu = true;
  if (!resource_) {
    Status s = AssignSystemResource();
    if (!s.ok()) return TouchAgain(s);
  }
  if (!resource_->manager()->use_tt()) {
    // A driver moved it to device memory: bring it back where the CPU reaches it.
    Status s = Validate(Placement{Place{.mem_type = kMemSystem}}, ctx);
    if (!s.ok()) return TouchAgain(s);
  }
  if (!tt_) {
    Status s = CreateTt(true);
    if (!s.ok()) return TouchAgain(s);
  }
  if (Status s = WaitIdle(ctx); !s.ok()) return TouchAgain(s);
  const bool restoring = !tt_->is_populated() || tt_->is_swapped();
  if (restoring) {
    Status s = Populate(ctx);
    if (s.code() == Errc::kIo || s.code() == Errc::kCorrupt || s.code() == Errc::kInvalid) {
      return FailTouch(s);
    }
    if (!s.ok()) return TouchAgain(s);
  }
  if (write || touch_->writers > 0) tt_->DropCleanCopy();
  if (tt_->mapped_address() != touch_->base) {
    Result<std::byte*> at = tt_->MapContiguous();
    if (!at.ok()) return TouchAgain(at.status());
  }
  touch_->retrying = false;
  if (restoring) device_->memory().stats().Add(Stat::kTouchRestores);
  return Status();
}

}  // namespace uttm
