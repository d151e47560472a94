// Copyright (c) uttm developers.
//
// gem_shmem_object.h: a GEM object backed by a shmem file (the kernel's drm_gem_shmem_object),
// with the state the GEM shmem shrinker ("drm/shmem-helper: Add generic memory shrinker") and
// upstream's helpers keep.
//
// Counts, all under the object's reservation (as upstream keeps them under obj->resv):
//   pages_use_count  GetPages/PutPages; the first get maps the backing file's pages
//                    (ShmemBacking::Map), the last put releases them to the file (lazily).
//   pages_pin_count  Pin/Unpin; a pin takes a pages use reference. Pinned pages are never
//                    evicted or purged.
//   vmap_use_count   Vmap/Vunmap; a vmap takes a pin and returns the CPU address of the pages.
//   madv             0 active, > 0 "don't need" (purgeable), < 0 purged (sticky: the contents
//                    are gone, Madvise answers "not retained" from then on).
//   eviction_disable_count / purging_disable_count: while non-zero the shrinker leaves the
//                    object's pages alone (the seed's per-object switches).
//   evicted          the pages were released to the backing file by an eviction; the next
//                    GetPages (or pin, or vmap) swaps them back in through the driver.
//
// The seed's page states are derived from these counts, as its review asked (state()):
//   kPurged     madv < 0
//   kEvicted    evicted
//   kUnpinned   no pages held
//   kPinned     pages held and pinned, or not reclaimable now (its switch disabled, or
//               eviction impossible on this device)
//   kPurgeable  pages held, unpinned, madv > 0, purging enabled
//   kEvictable  pages held, unpinned, madv == 0, eviction enabled and possible
// Each state change moves the object to its device's LRU for the state (purgeable → "dontneed",
// evictable → "willneed", pinned → "pinned", evicted → "evicted"; the others on none), at the
// tail, so the LRU counts are the shrinker's counts (gem_lru.h).
//
// Driver callbacks (GemShmemFuncs, gem_device.h) do the reclaim: purge (returns pages freed),
// evict (returns pages released; the driver tears its device mappings down first) and swap_in
// (makes the pages usable by the device again). Their defaults call PurgeLocked, EvictLocked and
// SwapInLocked. Purge and Evict (the shrinker's entry points) refuse a busy object with kBusy
// (drm_gem_evict_locked), unless `wait` lets them wait for its fences.
//
// Errors: misuse is kInvalid with a message, never a crash: PutPages/Unpin/Vunmap below zero,
// enabling eviction or purging that was not disabled, GetPages/Pin/Vmap of a purged object,
// purging an object that is not purgeable (pinned, active, disabled), evicting one that is not
// evictable. Madvise of a purged object changes nothing and answers false ("not retained").
// Backing-file errors (kIo, kNoSpace, kNoMemory) leave the object as it was.
//
// Thread-safety: every method but the reference counting and the racy getters needs the
// reservation (UTTM_REQUIRES(resv())). References are atomic.
#ifndef UTTM_GEM_SHMEM_OBJECT_H_
#define UTTM_GEM_SHMEM_OBJECT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "uttm/export.h"
#include "uttm/gem_lru.h"
#include "uttm/operation_context.h"
#include "uttm/reservation.h"
#include "uttm/shmem_backing.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm {

class GemDevice;
class GemRef;

enum class GemPageState { kPurged, kEvicted, kUnpinned, kPinned, kEvictable, kPurgeable };
UTTM_EXPORT const char* GemPageStateName(GemPageState state);

class UTTM_EXPORT GemShmemObject : public ListLink<GemLruTag> {
 public:
  GemShmemObject(const GemShmemObject&) = delete;
  GemShmemObject& operator=(const GemShmemObject&) = delete;

  // --- References ---
  void Get() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Put();
  bool GetUnlessZero();

  Reservation* resv() { return &resv_; }
  GemDevice& device() const { return *device_; }
  Bytes size() const { return backing_->size(); }
  PageCount num_pages() const { return backing_->num_pages(); }
  ShmemBacking& backing() const { return *backing_; }

  // --- Pages, pins and CPU mappings (the reservation held) ---
  // drm_gem_shmem_get_pages: a use reference on the pages; the first maps them (swapping an
  // evicted object back in through the driver). kInvalid when purged; backing errors.
  Status GetPages() UTTM_REQUIRES(resv());
  Status PutPages() UTTM_REQUIRES(resv());
  Status Pin() UTTM_REQUIRES(resv());
  Status Unpin() UTTM_REQUIRES(resv());
  // The CPU address of the whole object (a pin while mapped).
  Result<std::byte*> Vmap() UTTM_REQUIRES(resv());
  Status Vunmap() UTTM_REQUIRES(resv());
  // Starts reading the pages of an object without pages (evicted, or unmapped after its last
  // user) back from its file without waiting, so that the GetPages which follows finds them in
  // memory: a streaming user prefetches the next object while it works on this one. kInvalid
  // when purged; a no-op for an object that holds its pages or never had any.
  Status Prefetch() UTTM_REQUIRES(resv());

  // --- Purgeability (the seed's convention) ---
  // drm_gem_shmem_madvise_locked: sets madv while the object is not purged (a negative value
  // marks it purged, as upstream's tests do); returns "not purged" (madv >= 0). Once purged,
  // nothing changes and the answer is false.
  bool Madvise(int madv) UTTM_REQUIRES(resv());
  Status DisableEviction() UTTM_REQUIRES(resv());
  Status EnableEviction() UTTM_REQUIRES(resv());
  Status DisablePurging() UTTM_REQUIRES(resv());
  Status EnablePurging() UTTM_REQUIRES(resv());

  // --- Reclaim entry points (the shrinker's; they call the driver) ---
  // Purge a purgeable object: the driver's Purge. kBusy when busy and !wait; kInvalid when not
  // purgeable. Returns pages freed.
  Result<std::uint64_t> Purge(const OperationContext& ctx) UTTM_REQUIRES(resv());
  // Evict an evictable object: the driver's Evict (with `writeback`: the pages are written to
  // the backing file and dropped now; without: left to the kernel's lazy reclaim). Returns
  // pages released.
  Result<std::uint64_t> Evict(bool writeback, const OperationContext& ctx) UTTM_REQUIRES(resv());

  // --- Helpers the driver's callbacks call (drm_gem_shmem_purge_locked and the like) ---
  // Truncates the backing file: the pages and contents go, madv becomes -1.
  Result<std::uint64_t> PurgeLocked() UTTM_REQUIRES(resv());
  // Releases the pages to the backing file and marks the object evicted.
  Result<std::uint64_t> EvictLocked(bool writeback) UTTM_REQUIRES(resv());
  // Maps the backing file's pages again and clears evicted.
  Status SwapInLocked() UTTM_REQUIRES(resv());

  // --- State (under the reservation, or racily for reports) ---
  GemPageState state() const;
  bool IsPurgeable() const;
  bool IsEvictable() const;
  unsigned pages_use_count() const { return pages_use_count_; }
  unsigned pages_pin_count() const { return pages_pin_count_; }
  unsigned vmap_use_count() const { return vmap_use_count_; }
  int madv() const { return madv_; }
  bool evicted() const { return evicted_; }
  unsigned eviction_disable_count() const { return eviction_disable_count_; }
  unsigned purging_disable_count() const { return purging_disable_count_; }
  // The LRU the object is on (null: none). Needs the device LRU lock for a stable answer.
  const GemLru* lru() const { return lru_; }

 private:
  friend class GemDevice;
  friend class GemLru;
  friend class GemRef;
  friend UTTM_EXPORT std::uint64_t GemLruScan(GemLru&, std::uint64_t, std::uint64_t*,
                                              const GemShrinkFn&);
  GemShmemObject(GemDevice* device, std::unique_ptr<ShmemBacking> backing);
  ~GemShmemObject();
  // Moves the object to the LRU of its state (under the device LRU lock).
  void UpdateState();
  Status WaitIdle(const OperationContext& ctx);
  // Disables (or enables) a shrinker switch; enabling one that is not disabled is kInvalid.
  Status Switch(unsigned* disable_count, bool enable, const char* what) UTTM_REQUIRES(resv());

  GemDevice* const device_;
  const std::unique_ptr<ShmemBacking> backing_;
  std::atomic<int> refs_{1};
  Reservation resv_;
  // Guarded by the reservation.
  unsigned pages_use_count_ = 0;
  unsigned pages_pin_count_ = 0;
  unsigned vmap_use_count_ = 0;
  int madv_ = 0;
  unsigned eviction_disable_count_ = 0;
  unsigned purging_disable_count_ = 0;
  bool evicted_ = false;
  // Guarded by the device LRU lock.
  GemLru* lru_ = nullptr;
  std::uint64_t lru_pages_ = 0;
};

// An owning reference to a GemShmemObject. Copies take references.
class UTTM_EXPORT GemRef {
 public:
  GemRef() = default;
  static GemRef Adopt(GemShmemObject* obj) {
    GemRef r;
    r.obj_ = obj;
    return r;
  }
  GemRef(const GemRef& o) : obj_(o.obj_) {
    if (obj_ != nullptr) obj_->Get();
  }
  GemRef(GemRef&& o) noexcept : obj_(std::exchange(o.obj_, nullptr)) {}
  GemRef& operator=(GemRef o) noexcept {
    std::swap(obj_, o.obj_);
    return *this;
  }
  ~GemRef() { reset(); }
  void reset() {
    if (obj_ != nullptr) std::exchange(obj_, nullptr)->Put();
  }
  GemShmemObject* get() const { return obj_; }
  GemShmemObject* operator->() const { return obj_; }
  GemShmemObject& operator*() const { return *obj_; }
  explicit operator bool() const { return obj_ != nullptr; }

 private:
  GemShmemObject* obj_ = nullptr;
};

}  // namespace uttm

#endif  // UTTM_GEM_SHMEM_OBJECT_H_
