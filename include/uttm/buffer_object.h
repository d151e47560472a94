// Copyright (c) uttm developers.
//
// buffer_object.h: a buffer object (TTM's ttm_buffer_object) and its reference type BoRef.
//
// A buffer object has a size, a type, a priority, a pin count, a reservation (its own, or one
// shared with a group), a current resource (where it lives; null when "gutted") and, for page
// vector placements, a PageVector. Life cycle (as ttm_bo.c and ttm_bo_util.c):
//
//   Create ──Validate──► placed ◄──Validate / evict──► placed elsewhere
//                          │  Validate(empty placement) or eviction to nothing: gutted
//   last reference dropped ─► released now, or, when busy or contended, a "zombie": kept alive
//                             (deleted() is true), cleaned up by the device's delayed-delete
//                             worker or earlier by any LRU walk that meets it.
//   A pipelined move leaves a "ghost": an internal object holding the old resource until the
//   move's fence signals; ghosts are ordinary LRU citizens that walks may reclaim.
//
// Validation (ttm_bo_validate): already compatible → OK; pinned and needing a move → kInvalid;
// a first pass never evicts and skips FALLBACK places, a second pass evicts and skips DESIRED
// places; no space anywhere → kNoMemory. bytes_moved in the context grows by the object size per
// move (a multihop counts every hop).
//
// Locking: the placement state (resource, tt, pin count, priority, deleted) is protected by the
// reservation. Methods annotated UTTM_REQUIRES(resv()) need it held by the caller (Reserve /
// Unreserve, a ReservationGuard, or an ExecContext); clang's -Wthread-safety checks it. The
// analysis cannot see a Status-returning Reserve succeed: call resv()->AssertHeld() after it
// (TryReserve is a plain try-acquire). The LRU lock is taken internally and never held across
// waits. References (Get/Put, BoRef) are atomic and may be taken from any thread.
#ifndef UTTM_BUFFER_OBJECT_H_
#define UTTM_BUFFER_OBJECT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "uttm/caching.h"
#include "uttm/device.h"
#include "uttm/device_funcs.h"
#include "uttm/export.h"
#include "uttm/fence.h"
#include "uttm/lru_bulk_move.h"
#include "uttm/operation_context.h"
#include "uttm/page_vector.h"
#include "uttm/placement.h"
#include "uttm/reservation.h"
#include "uttm/resource.h"
#include "uttm/status.h"
#include "uttm/units.h"
#include "uttm/ww_acquire_context.h"

namespace uttm {

class BoRef;
namespace internal {
class BoInternal;
}  // namespace internal

// Purgeability advice (i915/msm madvise): kDontNeed objects are purged (contents dropped) before
// any other object is backed up. kPurged is sticky: the contents were dropped, the object reads
// back as zeros, and Madvise reports it as not retained from then on.
enum class Madvice { kWillNeed, kDontNeed, kPurged };

// device: user-visible (mappable) object; kernel: internal; sg: imported pages (its page vector
// is always EXTERNAL and never swapped or counted).
enum class BoType { kDevice, kKernel, kSg };

struct BoOptions {
  BoType type = BoType::kDevice;
  Bytes size;
  // Start alignment in pages (0 or 1: none).
  std::uint64_t page_alignment = 0;
  // LRU priority 0..3; lower is evicted first.
  unsigned priority = 0;
  // Share this reservation (must outlive the object); null: the object has its own.
  Reservation* resv = nullptr;
  // Caching of the page vector the default TtCreate makes.
  Caching caching = Caching::kCached;
  // Extra page-vector flags for the default TtCreate (kPageVectorExternal...).
  std::uint32_t tt_flags = 0;
  // What the object's pages hold: elements of this many bytes (2: fp16/bf16 tensors, 4: fp32;
  // 0: unknown). Passed to the backup store with every backup of its pages
  // (BackupFlags::element_size), where a compressing store splits them into byte planes
  // (compressed_store.h). kInvalid for other values.
  std::uint32_t element_size = 0;
  // The client (budget.h) the object's memory is charged to, in the device's budget tree (which
  // must be this group's tree; kInvalid otherwise, or when the device has none); null: the tree's
  // root, or nothing when the device has no budgets.
  BudgetGroup* client = nullptr;
};

class UTTM_EXPORT BufferObject final : private DelayedDelete {
 public:
  // ttm_bo_init_reserved: creates the object, reserves it (its own reservation is try-locked; a
  // shared one must already be held by the caller) and validates it into `placement`. Returns the
  // reserved object, or an error with nothing left behind. kInvalid for size 0, a bad priority
  // or type.
  static Result<BoRef> CreateReserved(Device* device, const BoOptions& options,
                                      const Placement& placement, OperationContext& ctx);
  // ttm_bo_init_validate: CreateReserved, then Unreserve.
  static Result<BoRef> Create(Device* device, const BoOptions& options, const Placement& placement,
                              OperationContext& ctx);

  BufferObject(const BufferObject&) = delete;
  BufferObject& operator=(const BufferObject&) = delete;

  // --- Device-wide eviction (walks a manager's LRU) ---
  // ttm_bo_evict_first: evicts the first buffer object on `man`'s LRU (a zombie there is waited
  // for and cleaned up). OK also when the object vanished or moved meanwhile; kNotFound when the
  // LRU is empty; the eviction's error otherwise.
  static Status EvictFirst(Device& device, ResourceManager* man, OperationContext& ctx);
  // ttm_resource_manager_evict_all: evicts everything evictable from `man`, finishes the delayed
  // deletes, then waits for the manager's move fence.
  static Status EvictAll(Device& device, ResourceManager* man, OperationContext& ctx);
  // Evicts objects of `group`'s subtree from memory type `type` of `device`, oldest first, until
  // the group is at or below its max there: dmem's reclaim when dmem.max is lowered below usage
  // (each object goes where the driver's EvictFlags sends it, contents intact). OK once at or
  // below; kBusy when nothing more of the group could be evicted (pinned, or their moves failed);
  // kInterrupted when ctx.interruptible and ctx.stop is requested; kInvalid when the device has
  // no budgets, `type` no manager, or `group` is of another tree. ctx.trylock_only: never
  // blocks on a reservation (the non-blocking variant, as writing dmem.max with O_NONBLOCK).
  static Status ReclaimBudget(Device& device, BudgetGroup* group, MemType type,
                              OperationContext& ctx);

  // --- References ---
  void Get() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // Drops a reference; the last one releases the object (now, or as a zombie later).
  void Put();
  // Takes a reference unless the count already reached 0 (the object is being released).
  bool GetUnlessZero();
  int refcount() const { return refs_.load(std::memory_order_relaxed); }

  // --- Reservation ---
  // ttm_bo_reserve: OK; kBusy when contended and `no_wait` (also no_wait with a ticket: misuse);
  // kAlready when `ticket` holds it; kDeadlock (back off, then ReserveSlowpath); kInterrupted.
  Status Reserve(const OperationContext& ctx, WwAcquireContext* ticket = nullptr,
                 bool no_wait = false);
  Status ReserveSlowpath(const OperationContext& ctx, WwAcquireContext* ticket);
  bool TryReserve() UTTM_TRY_ACQUIRE(true, resv());
  // Marks the object most recently used (LRU tail) and unlocks.
  void Unreserve() UTTM_RELEASE(resv());
  Reservation* resv() const { return resv_; }

  // --- Placement (all but WaitIdle need the reservation) ---
  // ttm_bo_validate: OK if the resource already fits `placement`, else moves the object to the
  // first place with room (evicting others). An empty placement guts the object (its memory and
  // contents go, ttm_bo_pipeline_gutting). Errors: kInvalid for a pinned object that would have
  // to move or be gutted (upstream lets a driver gut a pinned object; here its contents are
  // kept), kNoMemory when no place has room (kNoSpace with propagate_nospace), kNoSpace naming
  // the budget group when the object's client is at its max (budget.h) and nothing of that
  // group's could be evicted, the move's error (object unchanged).
  Status Validate(const Placement& placement, OperationContext& ctx) UTTM_REQUIRES(resv());
  // Pinned objects never move or get evicted; their resource sits on the unevictable list.
  void Pin() UTTM_REQUIRES(resv());
  void Unpin() UTTM_REQUIRES(resv());
  // Gives the page vector its pages (restoring a backed-up one); keeps LRU lists right.
  Status Populate(OperationContext& ctx) UTTM_REQUIRES(resv());
  // Waits for every fence (ttm_bo_wait_ctx): kBusy with no_wait_gpu, kInterrupted.
  Status WaitIdle(const OperationContext& ctx);
  void SetPriority(unsigned priority) UTTM_REQUIRES(resv());
  // Joins (or with null leaves) a bulk move. The group must share one reservation.
  void SetBulkMove(LruBulkMove* bulk) UTTM_REQUIRES(resv());

  // --- Purgeable memory (reserves internally) ---
  // Sets the advice (kWillNeed or kDontNeed) and returns `retained`: false once the object was
  // purged (sticky; the advice then stays kPurged). kInvalid for kPurged as advice; reservation
  // errors (kInterrupted). The driver's MadviseNotify runs under the reservation.
  Result<bool> Madvise(Madvice advice, const OperationContext& ctx);
  // Current advice (read under the reservation, or racily for reports).
  Madvice madvice() const { return madv_; }

  // --- CPU access: reserves internally, populates or restores first, waits for the device ---
  // An object without a resource (created with an empty placement, or gutted) is given a SYSTEM
  // resource first, so its pages are on an LRU list and reachable by reclaim. A Write either
  // lands whole or (on error) not at all.
  // Clean copies (DeviceOptions::keep_clean_copies): after a restore the store's copy of the
  // pages is kept, so evicting the object again writes nothing, until the object may have been
  // written: a Write, a kMapWrite mapping, a fence of any usage but kRead, or a move that copies
  // in from device memory drops it. Writing through a kMapRead mapping breaks this contract (the
  // write may be lost at the next eviction).
  Status Read(std::uint64_t offset, std::span<std::byte> out, OperationContext& ctx);
  Status Write(std::uint64_t offset, std::span<const std::byte> data, OperationContext& ctx);

  // --- Move helpers for DeviceFuncs::Move (the reservation held) ---
  // The new placement needs no copy (e.g. SYSTEM <-> TT of the same pages): switch resources.
  void MoveNull(std::unique_ptr<Resource> new_res) UTTM_REQUIRES(resv());
  // Copies the contents with the CPU (page vector or AccessMemory on either side), then switches.
  // A swapped-out or backed-up source page vector is restored first (and its store copy dropped).
  // On failure `new_res` is freed and the object keeps its old placement and contents.
  Status MoveMemcpy(OperationContext& ctx, std::unique_ptr<Resource> new_res) UTTM_REQUIRES(resv());
  // The move was queued on the device and completes with `fence` (ttm_bo_move_accel_cleanup):
  // not an eviction → the old resource goes to a ghost that waits for the fence; an eviction
  // from device memory with `pipeline` → the manager remembers the fence and the old resource is
  // freed at once (later allocations from it wait for the fence); otherwise waits, then frees.
  // On failure `new_res` is freed.
  Status MoveAccelCleanup(FenceRef fence, bool evict, bool pipeline,
                          std::unique_ptr<Resource> new_res) UTTM_REQUIRES(resv());

  // --- State (read under the reservation, or racily for reports) ---
  Device& device() const { return *device_; }
  BoType type() const { return type_; }
  Bytes size() const { return size_; }
  PageCount num_pages() const { return size_.pages_rounded_up(); }
  std::uint64_t page_alignment() const { return page_alignment_; }
  unsigned priority() const { return priority_; }
  int pin_count() const { return pin_count_; }
  Resource* resource() const { return resource_.get(); }
  PageVector* tt() const { return tt_.get(); }
  bool deleted() const { return deleted_.load(std::memory_order_acquire); }
  bool is_ghost() const { return ghost_; }
  LruBulkMove* bulk_move() const { return bulk_move_; }
  Caching caching() const { return caching_; }
  // The budget group the object's resources are charged to (its client, or the root of the
  // device's budget tree); null when the device has no budgets.
  BudgetGroup* budget_group() const { return client_; }

 private:
  friend class Device;
  friend class BoRef;
  friend class Mapping;
  friend class internal::BoInternal;

  // DelayedDelete: the device's worker finishes a zombie through these.
  Reservation* delayed_delete_resv() override { return resv(); }
  void FinishDelayedDelete() override;

  // --- The core's own operations (eviction, reclaim; see src/bo/bo_internal.h) ---
  // Runs the zombie cleanup now: the resource and the page vector go.
  void CleanupMemtypeUse() UTTM_REQUIRES(resv());
  // Evicts to the driver's evict placement (ttm_bo_evict).
  Status Evict(OperationContext& ctx) UTTM_REQUIRES(resv());
  // Drops the backing store, keeping an empty zeroed page vector (purge / gutting).
  Status PipelineGutting() UTTM_REQUIRES(resv());
  // Recomputes whether the current resource is unevictable (pinned, or its page vector swapped
  // or backed up) and fixes its LRU list.
  void UpdateLruState() UTTM_REQUIRES(resv());
  // Whether the current resource belongs on the unevictable list: pinned, or nothing left to
  // reclaim (swapped out, or backed up holding no page).
  bool WantsUnevictable() const;
  // Is `res` compatible with `placement` (ttm_resource_compatible)?
  bool ResourceCompatible(const Resource& res, const Placement& placement, bool evicting) const;
  // Records that a purge dropped the contents.
  void MarkPurged() UTTM_REQUIRES(resv());
  // Drops the page vector's clean copy when a fence that may write came since it was kept.
  void DropStaleCleanCopy() UTTM_REQUIRES(resv());

  // The CPU mapping (mapping.h). REQUIRES(reserved).
  Result<std::byte*> MapLocked(unsigned flags, OperationContext& ctx) UTTM_REQUIRES(resv());
  Result<std::byte*> MapPinned(unsigned flags, OperationContext& ctx) UTTM_REQUIRES(resv());
  void UnmapLocked() UTTM_REQUIRES(resv());
  // Restore-on-touch mappings (src/bo/touch_mapping.cc): the object's range stays mapped while it
  // is evicted, and a touch brings it back. *on_touch is false when the mapping was made as an
  // explicit one instead (userfaultfd refused).
  struct TouchRange;
  class TouchHandler;
  Result<std::byte*> MapTouchLocked(unsigned flags, OperationContext& ctx, bool* on_touch)
      UTTM_REQUIRES(resv());
  void UnmapTouchLocked(bool write) UTTM_REQUIRES(resv());
  // Gives the range up once no mapping of either kind uses it.
  void ReleaseUnusedTouchRange() UTTM_REQUIRES(resv());
  // The fault handler's work: makes the object resident in its range (OK), kBusy to be tried
  // again, or the error that made the range inaccessible.
  Status ResolveTouchFault(bool write) UTTM_REQUIRES(resv());
  // Makes the range inaccessible (a touch is a SIGSEGV) and records `why`; returns it.
  Status FailTouch(Status why) UTTM_REQUIRES(resv());
  // kBusy (try again shortly) for `why`, or FailTouch once retries lasted too long.
  Status TouchAgain(const Status& why) UTTM_REQUIRES(resv());
  // Gives a new page vector the range.
  void AttachTouchRange() UTTM_REQUIRES(resv());
  Status TouchStatus() UTTM_REQUIRES(resv());
  BufferObject(Device* device, const BoOptions& options);
  ~BufferObject();

  // Page-vector flags for this object (EXTERNAL for imported objects, ZERO_ALLOC when asked).
  std::uint32_t TtFlags(bool zero_alloc) const;
  Status CreateTt(bool zero_alloc) UTTM_REQUIRES(resv());
  // Drops whatever the page vector holds (pages, a backup), telling the driver.
  void ReleaseTtPages() UTTM_REQUIRES(resv());
  // ReleaseTtPages, then drops the page vector.
  void DestroyTt() UTTM_REQUIRES(resv());
  // Gives an object without a resource a SYSTEM one.
  Status AssignSystemResource() UTTM_REQUIRES(resv());
  // MoveMemcpy / MoveAccelCleanup; they leave `new_res` to the caller on failure.
  Status CopyMove(OperationContext& ctx, std::unique_ptr<Resource>& new_res) UTTM_REQUIRES(resv());
  Status AccelCleanup(FenceRef fence, bool evict, bool pipeline, std::unique_ptr<Resource>& new_res)
      UTTM_REQUIRES(resv());
  // *over_budget (if not null): a place was refused by a budget group's max.
  Result<std::unique_ptr<Resource>> AllocResource(const Placement& placement, OperationContext& ctx,
                                                  bool force_space, bool* over_budget = nullptr)
      UTTM_REQUIRES(resv());
  // `charge`: the place's budget charge, moved into the resource on success; null: charged here.
  Result<std::unique_ptr<Resource>> ResourceAlloc(const Place& place,
                                                  BudgetCharge* charge = nullptr);
  // Charges the object's size to its budget group in `type`'s region: an empty charge when the
  // device has no budgets; kNoSpace naming the limiting group (*limiting) over a max.
  Status ChargeFor(MemType type, BudgetCharge* out, BudgetGroup** limiting);
  void ResourceFree(std::unique_ptr<Resource> res);
  Status AddMoveFence(ResourceManager* man, const OperationContext& ctx) UTTM_REQUIRES(resv());
  // One victim of an eviction walk (reserved by the walk): a zombie or ghost is waited for and
  // cleaned up, another object evicted. kBusy when it could not move (no room, no memory).
  Status EvictAsVictim(OperationContext& ctx) UTTM_REQUIRES(resv());
  // Evicts from `man` until `goal` answers true: ttm_bo_evict_alloc's walks, with the budget
  // rules (victims from `limit`'s subtree when the allocation hit that group's max, else the
  // common-ancestor rule; protection passes). kBusy when nothing more could be evicted.
  Status EvictUntil(ResourceManager* man, const Place& place, OperationContext& ctx,
                    const BudgetGroup* limit, const std::function<Result<bool>()>& goal)
      UTTM_REQUIRES(resv());
  Status HandleMoveMem(std::unique_ptr<Resource>& new_res, bool evict, OperationContext& ctx,
                       Place* hop) UTTM_REQUIRES(resv());
  Status MoveWithHops(std::unique_ptr<Resource> new_res, bool evict, OperationContext& ctx)
      UTTM_REQUIRES(resv());
  Status BounceTempBuffer(const Place& hop, OperationContext& ctx) UTTM_REQUIRES(resv());
  Result<std::unique_ptr<Resource>> MemSpace(const Placement& placement, OperationContext& ctx)
      UTTM_REQUIRES(resv());
  void AssignResource(std::unique_ptr<Resource> res) UTTM_REQUIRES(resv());
  Status TransferToGhost() UTTM_REQUIRES(resv());
  Status Access(std::uint64_t offset, std::byte* buf, std::size_t len, bool write,
                OperationContext& ctx);
  void Release();
  void Destroy();

  Device* const device_;
  const BoType type_;
  const Bytes size_;
  const std::uint64_t page_alignment_;
  const Caching caching_;
  const std::uint32_t tt_flags_;
  const std::uint32_t element_size_;
  BudgetGroup* const client_;
  std::atomic<int> refs_{1};
  std::unique_ptr<Reservation> own_resv_;
  Reservation* resv_;

  // Guarded by the reservation.
  unsigned priority_;
  int pin_count_ = 0;
  int map_count_ = 0;                  // live Mappings
  std::byte* map_addr_ = nullptr;      // their address while map_count_ > 0
  std::unique_ptr<TouchRange> touch_;  // while restore-on-touch mappings exist
  std::unique_ptr<Resource> resource_;
  std::unique_ptr<PageVector> tt_;
  LruBulkMove* bulk_move_ = nullptr;
  std::atomic<bool> deleted_{false};
  bool ghost_ = false;
  Madvice madv_ = Madvice::kWillNeed;
  // Reservation::write_fences_added() when the page vector last kept clean copies.
  std::uint64_t clean_mark_ = 0;
  // A ghost keeps the object it came from alive.
  BufferObject* ghost_parent_ = nullptr;
};

// An owning reference to a BufferObject (like a kref'd pointer). Copies take references.
class UTTM_EXPORT BoRef {
 public:
  BoRef() = default;
  // Adopts one reference the caller already owns.
  static BoRef Adopt(BufferObject* bo) {
    BoRef r;
    r.bo_ = bo;
    return r;
  }
  BoRef(const BoRef& o) : bo_(o.bo_) {
    if (bo_ != nullptr) bo_->Get();
  }
  BoRef(BoRef&& o) noexcept : bo_(o.bo_) { o.bo_ = nullptr; }
  BoRef& operator=(BoRef o) noexcept {
    std::swap(bo_, o.bo_);
    return *this;
  }
  ~BoRef() { reset(); }

  void reset() {
    if (bo_ != nullptr) std::exchange(bo_, nullptr)->Put();
  }
  // Gives up ownership of the reference without dropping it.
  BufferObject* release() { return std::exchange(bo_, nullptr); }
  BufferObject* get() const { return bo_; }
  BufferObject* operator->() const { return bo_; }
  BufferObject& operator*() const { return *bo_; }
  explicit operator bool() const { return bo_ != nullptr; }

 private:
  BufferObject* bo_ = nullptr;
};

}  // namespace uttm

#endif  // UTTM_BUFFER_OBJECT_H_
