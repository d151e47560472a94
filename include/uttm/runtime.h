// Copyright (c) uttm developers.
//
// runtime.h: the front door. One object that owns and wires everything a user of the library
// needs, the way leveldb opens with DB::Open(options):
//
//   uttm::RuntimeOptions options;
//   options.page_limit = uttm::Bytes(std::uint64_t{1} << 30);
//   auto rt = uttm::Runtime::Open(options);            // memory, store, reclaim: all wired
//   if (!rt.ok()) return rt.status();
//   auto dev = (*rt)->AddDevice(&my_driver, {.name = "gpu0"});   // or AddSimGpu(...)
//   auto bo = uttm::BufferObject::Create(*dev, {.size = uttm::Bytes(4 << 20)}, placement, ctx);
//
// Open builds, in this order: the runtime's own Stats; the MemoryContext (page limit); the backup
// store (from a spec string, or the caller's); the Reclaimer with the page pool's shrinker,
// installed as the context's direct-reclaim hook; the watermark swapout on the context's
// over-limit path (TTM's ttm_global_swapout); the cgroup headroom check on every charge (when the
// process is in a memory cgroup with a limit); the pressure sources (uttm's page budget, then the
// detected cgroup and MemAvailable sources) and the reclaim thread. AddDevice wraps the driver's
// callbacks in a BoShrinker (the xe-model driver shrinker), creates the Device on the runtime's
// memory and store, and registers the shrinker. The destructor undoes it in reverse order.
//
// Defaults that work (RuntimeOptions, docs/getting-started.md has the table): page limit 3/4 of
// the memory cgroup's limit when there is one, else half of MemAvailable; a private file store in
// $TMPDIR; reclaim thread on; fault injection off (never armed from the environment unless asked).
//
// Live objects at teardown: RemoveDevice refuses (kBusy) while a device has live buffer objects.
// Close() refuses likewise and names them. The destructor never aborts: it stops the reclaim
// thread, then leaves any device that still has objects (and what it needs: the memory context,
// the store, its shrinker) allocated for the rest of the process (a deferred release, reported on
// stderr), because freeing it under live objects would corrupt them.
//
// Thread-safety: Open, AddDevice, AddSimGpu, RemoveDevice and Close are serialised by an internal
// mutex and must not race with the destructor. Accessors, Snapshot and CheckInvariants may be
// called from any thread (CheckInvariants needs a quiescent point, see invariants.h).
#ifndef UTTM_RUNTIME_H_
#define UTTM_RUNTIME_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "uttm/backup_store.h"
#include "uttm/budget.h"
#include "uttm/device.h"
#include "uttm/device_funcs.h"
#include "uttm/export.h"
#include "uttm/gem_device.h"
#include "uttm/host_memory.h"
#include "uttm/memory_context.h"
#include "uttm/mutex.h"
#include "uttm/prefetcher.h"
#include "uttm/reclaim_thread.h"
#include "uttm/reclaimer.h"
#include "uttm/runtime_snapshot.h"
#include "uttm/shmem_tt_funcs.h"
#include "uttm/sim_gpu.h"
#include "uttm/stats.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm {

class BoShrinker;
class PressureHeadroom;

struct RuntimeOptions {
  // Names the runtime in snapshots and messages.
  std::string name = "uttm";
  // Most bytes of pages uttm's page vectors may hold (MemoryContext pages_limit); a multiple of
  // 4096. 0: 3/4 of the memory cgroup's limit when the process has one, else half of MemAvailable.
  Bytes page_limit{};
  // Let a populate go over the page limit when nothing more can be swapped out or reclaimed
  // (TTM's soft limit; an object larger than the limit can then be populated). False: hard.
  bool soft_page_limit = false;
  // Pages kept in the page pools at most (0: the MemoryContext default, half of RAM).
  Bytes page_pool_size{};
  // The backup store as a spec string (CreateBackupStore: "file", "file:DIR", "file:DIR,direct",
  // "memfd", ...). Ignored when `store` is set. Default: a private file in $TMPDIR.
  std::string store_spec = "file";
  // A store to use instead of the spec (not owned; it must outlive the runtime).
  BackupStore* store = nullptr;
  // Wraps the store made from store_spec before anything uses it (the caller's tracing or
  // timing); the runtime then owns the wrapper, which must own the store. Null: none. A store
  // made from the spec counts its own memory against the runtime's page limit where it has any
  // (a compressed RAM store), which is why such a store is made here and not by the caller.
  std::function<std::unique_ptr<BackupStore>(std::unique_ptr<BackupStore>)> wrap_store;
  // Legacy watermark swapout when a populate would pass the page limit (TTM's behaviour).
  bool watermark_swapout = true;
  // Check every charge against the memory cgroup's limit (direct reclaim first, then kNoMemory
  // rather than the OOM killer). No effect outside a cgroup with a limit.
  bool cgroup_headroom = true;
  // Background reclaim: a thread watching the page budget and, with detect_pressure, the
  // detected cgroup and MemAvailable sources.
  bool reclaim_thread = true;
  bool detect_pressure = true;
  // Each device's shrinker owns its TT domain (BoShrinkerOptions::owns_tt): TT budgets stop
  // being caps and the watermark swapout leaves the devices' page vectors to their shrinkers.
  bool shrinker_owns_tt = true;
  // Page vectors keep the store's copy of restored pages until the object is written
  // (DeviceOptions::keep_clean_copies), so evicting an object that was only read writes nothing.
  bool keep_clean_copies = true;
  // Worker threads of the runtime's Prefetcher (Runtime::Prefetch); 0: none.
  unsigned prefetch_threads = 1;
  ReclaimThreadOptions reclaim_thread_options;
  // Bytes the file-backed page vectors of the runtime's devices (AddSimGpu's file-backed share)
  // and the objects of its GEM devices (AddGemDevice) may hold mapped before the reclaim thread
  // reclaims them (a pressure source of its own);
  // 0: no budget (only the detected pressure sources bound them). Needs the reclaim thread.
  Bytes file_backed_budget{};
  // Host memory for pages (host_memory.h; null: anonymous memory) and hooks on each region it
  // maps, for a device backend that registers or pins host memory.
  std::shared_ptr<HostMemory> host_memory = nullptr;
  HostMemoryHooks host_memory_hooks = {};
  // Counters and gauges (not owned; it must outlive the runtime). Null: the runtime's own.
  Stats* stats = nullptr;
  // Arm fault points from the UTTM_FAULTS environment variable (testing; a bad value fails Open).
  bool faults_from_environment = false;
};

// Per-device options of AddDevice.
struct RuntimeDeviceOptions {
  std::string name = "uttm";
};

class UTTM_EXPORT Runtime {
 public:
  // Builds and wires everything (see the file comment). Errors: kInvalid naming the bad option
  // (a page limit that is not a multiple of 4096, a malformed store spec or UTTM_FAULTS), or the
  // error of the part that could not be built (the store's directory, the reclaim thread).
  static Result<std::unique_ptr<Runtime>> Open(const RuntimeOptions& options = {});
  // Stops the reclaim thread, destroys the devices in reverse order of addition and everything
  // else after them. A device with live buffer objects is not destroyed (see the file comment).
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Creates a device over `driver` (wrapped in a BoShrinker whose scans reach its objects), with
  // the runtime's memory context and backup store; installs SYSTEM; other managers (VRAM, TT) are
  // the caller's to add with Device::SetManager. `driver` must outlive the device (the runtime,
  // unless RemoveDevice removed it first): the reclaim thread calls it. Errors:
  // kInvalid for a null driver; Device::Create's errors.
  Result<Device*> AddDevice(DeviceFuncs* driver, const RuntimeDeviceOptions& options = {});
  // Creates a simulated GPU on the runtime's memory and store (its `memory`, `backup_store` and
  // `wrap_funcs` options are the runtime's to set; kInvalid if the caller set them). With a
  // `file_backed` share, that share of its objects get file-backed page vectors
  // (shmem_tt_funcs.h) and their shrinker joins the runtime's reclaimer. kInvalid for a share
  // outside 0..1.
  Result<SimGpu*> AddSimGpu(const SimGpuOptions& options,
                            const ShmemTtFuncsOptions& file_backed = {});
  // Creates a device of GEM shmem objects (gem_device.h) counting in the runtime's stats, and
  // registers its shrinker with the runtime's reclaimer (so the reclaim thread and direct reclaim
  // purge and evict its objects). Errors: GemDevice::Create's (a bad backing directory).
  Result<GemDevice*> AddGemDevice(const GemDeviceOptions& options);
  // Destroys a GEM device of this runtime. kBusy while it has live objects; kNotFound.
  Status RemoveGemDevice(GemDevice* device);
  std::vector<GemDevice*> gem_devices() const;
  // Destroys a device added to this runtime (its delayed deletes are flushed first). kBusy while
  // it has live buffer objects (nothing changes); kNotFound for a device not added here.
  Status RemoveDevice(Device* device);
  // Removes every device and stops reclaim. kBusy naming the devices that still have live
  // buffer objects (those stay; the rest is torn down). The destructor calls it.
  Status Close();

  const std::string& name() const { return options_.name; }
  MemoryContext& memory() { return *memory_; }
  BackupStore& store() { return *store_; }
  Stats& stats() { return *stats_; }
  // The per-client budgets of every device added (budget.h): each device's memory types are its
  // regions; objects created with BoOptions::client = a group of it are charged to that group.
  BudgetTree& budgets() { return *budgets_; }
  Reclaimer& reclaimer() { return reclaimer_; }
  // Null when the reclaim thread is off.
  ReclaimThread* reclaim_thread() { return reclaim_thread_.get(); }
  // Makes `bo` resident ahead of its use, on the runtime's Prefetcher (prefetcher.h): returns at
  // once; a Mapping::Create of it meanwhile waits only for its restore. kInvalid for a null
  // object, one of another runtime's device, prefetch_threads 0 or a closed runtime; kBusy when
  // the queue is full (the hint is dropped).
  Status Prefetch(BoRef bo);
  // Null when prefetch_threads is 0.
  Prefetcher* prefetcher() { return prefetcher_.get(); }
  // The devices, in order of addition.
  std::vector<Device*> devices() const;
  // The driver shrinker of a device of this runtime (null for another device).
  BoShrinker* shrinker(const Device* device) const;
  // The file-backed decorator of a simulated GPU added with a file-backed share (null otherwise).
  ShmemTtFuncs* file_backed(const Device* device) const;
  // What Open decided and detected (page limit and where it came from, store, pressure
  // sources), one line each.
  const std::vector<std::string>& notes() const { return notes_; }

  // The state `uttm inspect` prints (devices, managers, LRUs, pool, store, shrinkers, reclaim,
  // stats). Takes each part's lock in turn: consistent per part, not across parts.
  RuntimeSnapshot Snapshot() const;
  // CheckInvariants over the memory context, every device and every shrinker of the runtime. The
  // runtime's reclaim thread pauses for the check. REQUIRES a quiescent point otherwise (no other
  // thread of the caller using the runtime's objects): kBusy when one holds an object.
  Status CheckInvariants();
  // The debugfs tt_shrink trigger over this runtime's devices (bo_swapout.h TtShrink, reason
  // kSwap): swaps out one object; on devices whose shrinker owns the TT domain (shrinker_owns_tt),
  // that shrinker backs up one batch instead. Returns the pages freed (0: nothing could go).
  Result<std::uint64_t> TtShrink();

 private:
  struct DeviceEntry;
  explicit Runtime(const RuntimeOptions& options);
  Status Build();
  Result<DeviceEntry*> Register(std::unique_ptr<DeviceEntry> entry);
  // The entry of `device` (null: not a device of this runtime).
  const DeviceEntry* FindEntry(const Device* device) const UTTM_REQUIRES(mu_);
  // Resident bytes of every file-backed page vector of the runtime's devices.
  std::uint64_t FileBackedResidentBytes() const;

  const RuntimeOptions options_;
  std::unique_ptr<Stats> owned_stats_;
  Stats* stats_;
  std::vector<std::string> notes_;
  std::unique_ptr<BudgetTree> budgets_;  // before the devices, which charge it
  std::unique_ptr<MemoryContext> memory_;
  std::unique_ptr<BackupStore> owned_store_;
  BackupStore* store_ = nullptr;
  Reclaimer reclaimer_;
  bool pool_registered_ = false;
  std::unique_ptr<PressureHeadroom> headroom_;
  std::unique_ptr<ReclaimThread> reclaim_thread_;
  std::unique_ptr<Prefetcher> prefetcher_;
  mutable Mutex mu_;
  std::vector<std::unique_ptr<DeviceEntry>> devices_ UTTM_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<GemDevice>> gem_devices_ UTTM_GUARDED_BY(mu_);
  bool leaked_ = false;  // a device outlived Close: the memory context and store must too
};

}  // namespace uttm

#endif  // UTTM_RUNTIME_H_
