// Copyright (c) uttm developers.
//
// sim_gpu.h: a simulated GPU: the device the tests, benchmarks and the tool run against.
//
// It stands in for hardware with real parts: VRAM is a real memory arena of the configured size
// managed by a range manager; TT is a budgeted page-vector domain the "GPU" can reach; SYSTEM is
// uttm's own page vectors. An engine thread executes work in submission order and signals a fence
// for each item: copies between TT page vectors and VRAM, clears of fresh VRAM, and "GPU jobs"
// that keep a buffer object busy for a configured time.
//
// Moves (the driver's Move callback): SYSTEM <-> TT reuse the same pages (null move); TT <-> VRAM
// are engine copies, pipelined (the move returns at once with a fence: the old memory is kept by
// a ghost, or, for an eviction out of VRAM, the manager's move fence guards its reuse); SYSTEM
// <-> VRAM ask for a multihop through a TEMPORARY TT placement (the engine only reaches TT).
// Objects created directly in VRAM are cleared by the engine, so no content of one buffer
// reaches another. Eviction: VRAM → TT (fallback SYSTEM), TT → SYSTEM.
//
// Power: the device can be suspended when idle (Suspend) and is woken by Resume or by a runtime
// reference (GetSync). Submitting work needs the device awake and takes a runtime reference for
// the work's duration. GetIfActive() never wakes it (what reclaim uses in direct context).
//
// The DeviceFuncs interface is all the core sees, so a real backend (CUDA) replaces this class
// without touching the core.
//
// Thread-safety: all methods are thread-safe. Move/Submit require the buffer object reserved.
#ifndef UTTM_SIM_GPU_H_
#define UTTM_SIM_GPU_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "uttm/buffer_object.h"
#include "uttm/device.h"
#include "uttm/device_funcs.h"
#include "uttm/export.h"
#include "uttm/fence.h"
#include "uttm/mutex.h"
#include "uttm/reservation.h"
#include "uttm/units.h"

namespace uttm {

struct SimGpuOptions {
  std::string name = "sim-gpu";
  // Device-local memory (a real arena, reserved with MAP_NORESERVE; touched pages are resident).
  Bytes vram_size = Bytes(std::uint64_t{256} << 20);
  // Budget of the TT domain (pages the GPU can reach).
  Bytes tt_budget = Bytes(std::uint64_t{1} << 30);
  // Where page vectors come from (null: MemoryContext::Default()) and are backed up to.
  MemoryContext* memory = nullptr;
  BackupStore* backup_store = nullptr;
  // DeviceOptions::keep_clean_copies of the device.
  bool keep_clean_copies = true;
  // DeviceOptions::budgets of the device (budget.h); null: none.
  BudgetTree* budgets = nullptr;
  // Run moves on the engine and return with a fence (true), or wait for each copy (false).
  bool pipeline_moves = true;
  // Move between VRAM and the page-vector domains with the CPU instead of the engine
  // (BufferObject::MoveMemcpy, TTM's ttm_bo_move_memcpy: what a driver without a usable copy
  // engine does), synchronously and with no multihop (the CPU reaches SYSTEM pages too).
  bool memcpy_moves = false;
  // Optional: given this driver, returns the DeviceFuncs the device is created with (e.g. a
  // BoShrinker's accounting decorator wrapping it). Called once, inside Create; the returned
  // object must outlive the SimGpu. Null: the SimGpu itself.
  std::function<DeviceFuncs*(DeviceFuncs* driver)> wrap_funcs = nullptr;
};

// Counters of the engine's work, for reports.
struct SimGpuStats {
  std::uint64_t copies = 0;
  std::uint64_t bytes_copied = 0;
  std::uint64_t clears = 0;
  std::uint64_t jobs = 0;
  std::uint64_t wakeups = 0;
  std::uint64_t memcpy_moves = 0;  // moves the CPU copied (SimGpuOptions::memcpy_moves)
};

class UTTM_EXPORT SimGpu : public DeviceFuncs {
 public:
  static Result<std::unique_ptr<SimGpu>> Create(const SimGpuOptions& options);
  // Waits for the engine to drain, then destroys the device. REQUIRES: no live buffer objects.
  ~SimGpu() override;

  Device* device() const { return device_.get(); }
  const SimGpuOptions& options() const { return options_; }

  // Queues a GPU job that keeps `bo` busy for `duration` and adds its fence to the object's
  // reservation with `usage`. REQUIRES: `bo` reserved. Wakes the device if suspended.
  Result<FenceRef> SubmitJob(BufferObject& bo, std::chrono::microseconds duration,
                             ResvUsage usage = ResvUsage::kWrite);
  // Waits until every queued item has executed.
  void Drain();
  SimGpuStats stats() const;

  // Runtime power management.
  bool IsActive() const;
  // Suspends when idle (no runtime references, nothing queued); kBusy otherwise.
  Status Suspend();
  void Resume();
  // Takes a runtime reference if the device is awake; false (no reference) when suspended.
  bool GetIfActive();
  // Takes a runtime reference, waking the device if needed.
  void GetSync();
  void Put();

  // DeviceFuncs.
  void EvictFlags(const BufferObject& bo, Placement* placement) override;
  Status Move(BufferObject& bo, bool evict, OperationContext& ctx,
              std::unique_ptr<Resource>& new_res, Place* hop) override;
  std::byte* AccessMemory(const Resource& res) override;

 private:
  struct Work {
    std::function<void()> run;
    FenceRef fence;
  };

  explicit SimGpu(const SimGpuOptions& options);
  FenceRef Queue(std::function<void()> run);
  void EngineLoop();
  Status CopyMove(BufferObject& bo, bool evict, OperationContext& ctx,
                  std::unique_ptr<Resource>& new_res) UTTM_REQUIRES(bo.resv());
  // Waits for a queued copy unless moves are pipelined, then hands `new_res` to the object.
  Status FinishCopy(BufferObject& bo, bool evict, OperationContext& ctx, FenceRef fence,
                    std::unique_ptr<Resource>& new_res) UTTM_REQUIRES(bo.resv());

  const SimGpuOptions options_;
  std::byte* vram_base_ = nullptr;
  std::unique_ptr<Device> device_;
  const std::uint64_t fence_context_;

  mutable Mutex mu_;
  CondVar cv_;
  std::deque<Work> queue_ UTTM_GUARDED_BY(mu_);
  std::uint64_t seqno_ UTTM_GUARDED_BY(mu_) = 0;
  bool running_ UTTM_GUARDED_BY(mu_) = false;  // an item is executing
  bool stopping_ UTTM_GUARDED_BY(mu_) = false;
  bool active_ UTTM_GUARDED_BY(mu_) = true;
  int pm_refs_ UTTM_GUARDED_BY(mu_) = 0;
  SimGpuStats stats_ UTTM_GUARDED_BY(mu_);
  std::thread engine_;
};

}  // namespace uttm

#endif  // UTTM_SIM_GPU_H_
