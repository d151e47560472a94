// Copyright (c) uttm developers.
//
// device.h: one device and its memory (TTM's ttm_device).
//
// A Device owns the resource managers of its memory types (up to kNumMemTypes; SYSTEM is
// installed at creation), the LRU state (lock, lists, unevictable list), the delayed-delete
// worker that finishes released-but-busy buffer objects ("zombies"), and a reference to the
// MemoryContext its page vectors draw pages from. Devices register in a process-wide list that
// the watermark swapout walks round-robin.
//
// The device layer sits below the buffer objects: it knows them only as LRU entries and as
// DelayedDelete entries. What walks buffer objects (BufferObject::EvictFirst and EvictAll, the
// default DeviceFuncs) lives with them in the bo layer.
//
// Errors: Create returns kInvalid for missing driver callbacks.
//
// Thread-safety: all methods are thread-safe. Managers are installed before buffer objects are
// created and removed after they are gone.
#ifndef UTTM_DEVICE_H_
#define UTTM_DEVICE_H_

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "uttm/backup_store.h"
#include "uttm/export.h"
#include "uttm/lru.h"
#include "uttm/memory_context.h"
#include "uttm/mutex.h"
#include "uttm/operation_context.h"
#include "uttm/resource_manager.h"
#include "uttm/stats.h"

namespace uttm {

class DeviceFuncs;
class Reservation;

// An entry of a device's delayed-delete queue: a released buffer object whose fences were still
// pending (a zombie). The bo layer implements it; the device's worker waits for the
// reservation's fences, then calls FinishDelayedDelete (without holding any device lock).
class UTTM_EXPORT DelayedDelete {
 public:
  // The reservation whose fences (all usages) must signal first.
  virtual Reservation* delayed_delete_resv() = 0;
  // Frees the object's memory and drops the reference the queue held.
  virtual void FinishDelayedDelete() = 0;

 protected:
  ~DelayedDelete() = default;
};

struct DeviceOptions {
  std::string name = "uttm";
  // Where page vectors get their pages; null means MemoryContext::Default().
  MemoryContext* memory = nullptr;
  // The store page vectors back up to (attached to every page vector the default TtCreate
  // makes); may be null (then backup is unavailable, as without swap).
  BackupStore* backup_store = nullptr;
  // Validate answers kNoSpace when no placement has room even after eviction, instead of
  // TTM's kNoMemory (the userspace-compatible conversion upstream keeps unless a driver sets
  // TTM_ALLOCATION_PROPAGATE_ENOSPC): the caller can tell "full of other objects" (kNoSpace)
  // from "out of memory" (kNoMemory) and from lock contention (kDeadlock, never converted).
  bool propagate_nospace = false;
  // Page vectors of this device's objects keep the store's copy of the pages a restore read back
  // while the object is not written (PageVector "clean copies"): evicting it again then writes
  // nothing. The object drops the copy on a write mapping, a CPU write, a fence that may write,
  // and a move that copies into the pages (buffer_object.h).
  bool keep_clean_copies = true;
  // Per-client budgets (budget.h; must outlive the device), or null. Each memory type that gets
  // a manager becomes a region "drm/<name>/<type>" (MemTypeName) of the tree, and every
  // resource of the device is charged to its object's client there (BoOptions::client; the root
  // for objects of none).
  BudgetTree* budgets = nullptr;
};

class UTTM_EXPORT Device : public MemoryUser {
 public:
  // `funcs` must outlive the device.
  static Result<std::unique_ptr<Device>> Create(DeviceFuncs* funcs, const DeviceOptions& options);
  // Finishes every delayed delete, leaves the device list. REQUIRES: no live buffer objects
  // (their resources would still be on the LRU; checked).
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const std::string& name() const { return name_; }
  DeviceFuncs& funcs() const { return *funcs_; }
  MemoryContext& memory() const { return *memory_; }
  Stats& stats() const { return memory_->stats(); }
  BackupStore* backup_store() const { return backup_store_; }
  bool propagate_nospace() const { return propagate_nospace_; }
  bool keep_clean_copies() const { return keep_clean_copies_; }
  // Set by a driver shrinker that owns the device's TT domain (BoShrinker::Attach): every page
  // vector it makes is EXTERNAL_MAPPABLE, so TTM's watermark swapout skips the device at once.
  void set_shrinker_owns_tt(bool owns) { shrinker_owns_tt_.store(owns); }
  bool shrinker_owns_tt() const { return shrinker_owns_tt_.load(); }
  // The device-wide validation lock (xe_validation's rwsem): Validation transactions hold it
  // shared, and exclusively for their one retry after running out of room (validation.h).
  SharedMutex& validation_lock() { return validation_lock_; }
  Lru& lru() { return lru_; }
  // The budget tree (null: none) and the region of a memory type there (-1: none).
  BudgetTree* budgets() const { return budgets_; }
  int budget_region(MemType type) const { return type < kNumMemTypes ? budget_regions_[type] : -1; }

  // Installs (and enables) the manager of its memory type, replacing none. kInvalid if the slot
  // is taken or the type is out of range.
  Status SetManager(std::unique_ptr<ResourceManager> manager);
  // Disables and removes a manager. REQUIRES: it holds no resources.
  std::unique_ptr<ResourceManager> TakeManager(MemType type);
  ResourceManager* manager(MemType type) const;

  // Waits until every queued delayed delete has run. REQUIRES: delayed deletes not paused.
  void FlushDelayedDeletes();
  // Holds the delayed-delete worker between objects, for a consistent look at the device (e.g.
  // CheckInvariants): returns once the worker is not freeing one (a worker waiting for a zombie's
  // fences does not hold it up, and frees nothing until resumed). Calls nest; each needs a
  // ResumeDelayedDeletes. Objects released meanwhile are queued and cleaned up after resume.
  void PauseDelayedDeletes();
  void ResumeDelayedDeletes();
  // Live buffer objects of this device (including zombies and ghosts).
  std::uint64_t bo_count() const { return bo_count_.load(std::memory_order_relaxed); }
  // Queues a zombie for the delayed-delete worker (it holds a reference the worker drops).
  void QueueDelayedDelete(DelayedDelete* zombie);

  // The devices whose page vectors draw on `memory` (MemoryContext's user list), in round-robin
  // order. `fn` runs under the list lock.
  static void ForEachDevice(MemoryContext& memory, const std::function<void(Device&)>& fn);
  // Moves `dev` to the back of its memory context's list (the one that made progress goes last).
  static void RotateToBack(Device* dev);

 private:
  friend class BufferObject;
  Device(DeviceFuncs* funcs, const DeviceOptions& options);

  void DelayedDeleteWorker();

  const std::string name_;
  DeviceFuncs* const funcs_;
  MemoryContext* const memory_;
  BackupStore* const backup_store_;
  const bool propagate_nospace_;
  const bool keep_clean_copies_;
  std::atomic<bool> shrinker_owns_tt_{false};
  SharedMutex validation_lock_;
  Lru lru_;
  std::array<std::unique_ptr<ResourceManager>, kNumMemTypes> managers_;
  BudgetTree* const budgets_;
  std::array<int, kNumMemTypes> budget_regions_;
  std::atomic<std::uint64_t> bo_count_{0};

  Mutex delete_mu_;
  CondVar delete_cv_;
  std::deque<DelayedDelete*> delete_queue_ UTTM_GUARDED_BY(delete_mu_);
  bool delete_waiting_ UTTM_GUARDED_BY(delete_mu_) = false;  // for a zombie to go idle
  bool delete_busy_ UTTM_GUARDED_BY(delete_mu_) = false;     // freeing a zombie's memory
  int delete_paused_ UTTM_GUARDED_BY(delete_mu_) = 0;
  bool stopping_ UTTM_GUARDED_BY(delete_mu_) = false;
  std::thread delete_worker_;
};

}  // namespace uttm

#endif  // UTTM_DEVICE_H_
