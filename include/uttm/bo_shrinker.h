// Copyright (c) uttm developers.
//
// bo_shrinker.h: the driver shrinker of one device (modelled on xe's xe_shrinker,
// drivers/gpu/drm/xe/xe_shrinker.c and the purgeable accounting of xe_bo.c), usable by any driver.
//
// Accounting: the shrinker wraps the driver's DeviceFuncs in a decorator (funcs()) that the
// device is created with. Every populate (fresh or restore), unpopulate, purge/backup by this
// shrinker and madvise change goes through it, so it keeps per page vector a record {pages,
// purgeable} and two exact counters: shrinkable pages and purgeable pages. A record is set (not
// added) to the pages the vector holds after every populate or restore (also a failed one, which
// may leave a partial vector), unpopulate and shrink, and erased when it holds none, so nothing is
// counted twice and no held page is left uncounted; CheckAccounting() recomputes both from the
// device's objects and compares. A pinned object's pages are not counted (the record goes on the
// first pin and comes back, under the advice of that moment, on the last unpin: PinNotify), so a
// madvise while pinned and nested pins leave the counts exact. Page vectors that are EXTERNAL
// (and not EXTERNAL_MAPPABLE) are neither counted nor touched.
//
// Count = purgeable + (may_fs ? min(store room in pages, shrinkable) : 0), kShrinkEmpty at 0.
// A backup that fails with ENOSPC ends the scan, and the room reads 0 from then on until the store
// holds less than it did at that moment, or a second has passed (so a full store does not keep
// reclaim spinning, and space freed elsewhere is found again).
// The store's room is cached (refreshed after every scan and at most every 50 ms) so Count stays
// a few atomic loads.
//
// Scan (xe_shrinker_scan): a purge pass over kDontNeed objects, zombies and ghosts first; then, if
// may_fs and still short, backup passes A (idle objects only, no writeback), B (waiting for the
// device, background reclaim only), C (writeback, only with may_io and background). Each pass walks
// the use_tt managers (SYSTEM first) with try-locks only and stops once the pages scanned reach
// nr_to_scan. Zombies and ghosts are purged in place (allow_move = false). Returns pages freed,
// or kShrinkStop when nothing was scanned.
//
// Budgets (budget.h), on a device that has them: the backup passes respect the objects' clients'
// protection in the region of the memory type they are in, so memory pressure does not undo the
// budgets. Objects of groups at or below their effective min are never backed up; those at or
// below their effective low only in a second round of the backup passes, when the first found
// nothing else to take (memcg's rule: low is best effort, min is hard). Purging (kDontNeed
// objects, zombies, ghosts) ignores protection: that memory is discardable by contract.
//
// Power management: objects outside SYSTEM need a move that may use the device. With a
// PowerHook set, the shrinker takes a reference only if the device is awake; if it sleeps,
// background reclaim wakes it (blocking Get), direct reclaim queues a wake and skips those
// objects this time.
//
// Usage:
//   BoShrinker shrinker(&driver);
//   auto dev = Device::Create(shrinker.funcs(), opts);
//   shrinker.Attach(dev->get());
//   reclaimer.Register(&shrinker);   // or RegisterDeviceReclaim(...)
//
// Thread-safety: all methods are thread-safe. Objects are only try-locked. Detach (or destroy)
// only after unregistering from every Reclaimer.
#ifndef UTTM_BO_SHRINKER_H_
#define UTTM_BO_SHRINKER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "uttm/buffer_object.h"
#include "uttm/device.h"
#include "uttm/device_funcs.h"
#include "uttm/export.h"
#include "uttm/mutex.h"
#include "uttm/reclaimer.h"
#include "uttm/shrinker.h"
#include "uttm/status.h"

namespace uttm {

// Runtime power management of a device, implemented by the driver.
class UTTM_EXPORT PowerHook {
 public:
  virtual ~PowerHook() = default;
  // Takes a reference if the device is awake; false (no reference) when it is suspended.
  virtual bool GetIfActive() = 0;
  // Wakes the device and takes a reference (may block; background reclaim only).
  virtual void Get() = 0;
  // Drops a reference taken by GetIfActive or Get.
  virtual void Put() = 0;
  // Asks a worker to wake the device soon (never blocks).
  virtual void QueueWake() = 0;
};

struct BoShrinkerOptions {
  std::string name = "uttm-bo";
  int seeks = kDefaultSeeks;
  // Pages per Scan call (0: kDefaultShrinkBatch).
  std::uint64_t batch = 0;
  PowerHook* power = nullptr;
  // The shrinker owns the device's TT domain (xe's model: "drm/xe: Increase the XE_PL_TT
  // watermark"): every page vector the driver makes through funcs() is EXTERNAL_MAPPABLE
  // (page_vector.h: still charged against the page limit, never touched by the watermark swapout),
  // and Attach makes the TT managers' budgets stop being caps (tt_manager.h). False: the legacy
  // split, where the TT budget caps TT placements and the watermark swapout and this shrinker both
  // take ordinary vectors.
  bool owns_tt = true;
};

// What the last CheckAccounting found.
struct ShrinkAccounting {
  std::uint64_t shrinkable = 0;
  std::uint64_t purgeable = 0;
};

class UTTM_EXPORT BoShrinker final : public Shrinker {
 public:
  // `driver` must outlive the shrinker; the shrinker must outlive the device.
  explicit BoShrinker(DeviceFuncs* driver, BoShrinkerOptions options = {});
  ~BoShrinker() override;
  BoShrinker(const BoShrinker&) = delete;
  BoShrinker& operator=(const BoShrinker&) = delete;

  // The accounting decorator to create the device with.
  DeviceFuncs* funcs();
  // Binds the device (once; kInvalid when it was not created with funcs() or already bound).
  // With owns_tt, install the TT manager first: its budget stops being a cap here.
  Status Attach(Device* device);

  std::uint64_t Count(const ShrinkControl& sc) override;
  std::uint64_t Scan(ShrinkControl& sc) override;
  const char* name() const override { return options_.name.c_str(); }
  // kNoSpace "backup store full" while the store is taken as full (see the file comment).
  Status blocked() const override;
  int seeks() const override { return options_.seeks; }
  std::uint64_t batch() const override { return options_.batch; }

  std::uint64_t shrinkable_pages() const { return shrinkable_.load(std::memory_order_relaxed); }
  std::uint64_t purgeable_pages() const { return purgeable_.load(std::memory_order_relaxed); }
  // Recomputes the counters from the device's objects (try-locking each) and compares them with
  // the kept ones. kInternal with both figures when they differ; kBusy if an object was locked.
  Result<ShrinkAccounting> CheckAccounting();

 private:
  class Funcs;
  struct Record {
    std::uint64_t pages = 0;
    bool purgeable = false;
  };
  enum class Pass { kPurge, kIdle, kWait, kWriteback };

  // Accounting hooks (from the decorator).
  // Sets the record of `tt` to the pages it holds now (populated, or partial after a backup the
  // store took only part of or a failed restore), or erases it when it holds none.
  void Track(const BufferObject& bo, const PageVector& tt);
  void OnMadvise(BufferObject& bo);
  void Forget(const PageVector* tt);
  void Adjust(bool purgeable, std::int64_t pages);
  void RefreshStoreRoom(bool force);

  // One pass over the use_tt managers; adds to *scanned and *freed. Returns false to abort.
  // `round`: which clients' objects may be backed up (budget.h, ProtectionRound); *hit_low is
  // set when one was skipped for its low.
  bool Walk(Pass pass, const ReclaimContext& rc, std::uint64_t target, ProtectionRound round,
            bool* hit_low, bool* have_pm, std::uint64_t* scanned, std::uint64_t* freed);
  Result<std::int64_t> ShrinkOne(BufferObject& bo, Pass pass, const ReclaimContext& rc,
                                 OperationContext& ctx, ProtectionRound round, bool* hit_low,
                                 bool* have_pm, std::uint64_t* scanned);

  const BoShrinkerOptions options_;
  std::unique_ptr<Funcs> funcs_;
  std::atomic<Device*> device_{nullptr};
  std::atomic<std::uint64_t> shrinkable_{0};
  std::atomic<std::uint64_t> purgeable_{0};
  std::atomic<std::uint64_t> store_room_pages_{0};
  // Nonzero after a backup failed with ENOSPC: the store's bytes used then, plus 1. The room reads
  // 0 until the store holds less, or a second has passed (store_full_since_ns_).
  std::atomic<std::uint64_t> store_full_at_bytes_{0};
  std::atomic<std::int64_t> store_full_since_ns_{0};
  std::atomic<std::int64_t> store_room_at_ns_{0};
  Mutex mu_;
  std::unordered_map<const PageVector*, Record> records_ UTTM_GUARDED_BY(mu_);
};

// Registers the driver shrinker of `shrinker` and the pool shrinker of `memory` with `reclaimer`
// and installs `reclaimer` as `memory`'s direct-reclaim hook. Undo with UnregisterDeviceReclaim.
UTTM_EXPORT Status RegisterDeviceReclaim(Reclaimer* reclaimer, BoShrinker* shrinker,
                                         MemoryContext* memory);
UTTM_EXPORT void UnregisterDeviceReclaim(Reclaimer* reclaimer, BoShrinker* shrinker,
                                         MemoryContext* memory);

}  // namespace uttm

#endif  // UTTM_BO_SHRINKER_H_
