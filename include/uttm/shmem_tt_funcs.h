// Copyright (c) uttm developers.
//
// shmem_tt_funcs.h: a driver decorator that gives a share of a device's buffer objects
// file-backed page vectors (shmem_tt.h) and owns their shrinker (shmem_tt_shrinker.h): how
// i915 keeps its shrinkable system-memory objects in shmem while the rest use TTM's pool.
//
//   uttm::ShmemTtFuncs funcs(&my_driver, {.share = 0.5, .backing = {.directory = "/var/tmp"}});
//   auto dev = uttm::Device::Create(&funcs, opts);
//   funcs.Bind(dev->get());                  // makes the shrinker for the device
//   reclaimer.Register(funcs.shrinker());
//
// Objects are numbered in creation order; object k gets a file-backed vector when
// floor((k + 1) * share) > floor(k * share), so exactly `share` of them do, spread evenly.
// Imported (EXTERNAL) objects keep the driver's vectors. File-backed objects are refused as
// eviction victims (i915_ttm_eviction_valuable); every other callback goes to the driver.
//
// Thread-safety: as the driver's; the decorator must outlive the device.
#ifndef UTTM_SHMEM_TT_FUNCS_H_
#define UTTM_SHMEM_TT_FUNCS_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "uttm/device_funcs.h"
#include "uttm/export.h"
#include "uttm/shmem_backing.h"
#include "uttm/shmem_tt_shrinker.h"

namespace uttm {

struct ShmemTtFuncsOptions {
  // The share of objects (0..1) whose page vectors live in files.
  double share = 0;
  // Where their files go (empty directory: memfd).
  ShmemBackingOptions backing = {};
};

class UTTM_EXPORT ShmemTtFuncs : public DeviceFuncs {
 public:
  // `driver` must outlive the decorator. A share outside 0..1 is clamped.
  ShmemTtFuncs(DeviceFuncs* driver, const ShmemTtFuncsOptions& options);
  // Creates the shrinker of `device` (created with this decorator, or with one that wraps it).
  // Objects made before Bind use the same files but are not counted by the shrinker.
  void Bind(Device* device);
  // Null before Bind.
  ShmemTtShrinker* shrinker() const { return shrinker_.get(); }
  std::uint64_t file_backed_objects() const { return made_.load(std::memory_order_relaxed); }

  Result<std::unique_ptr<PageVector>> TtCreate(BufferObject& bo, std::uint32_t flags) override;
  Status TtPopulate(BufferObject& bo, PageVector& tt, OperationContext& ctx) override;
  void TtUnpopulate(BufferObject& bo, PageVector& tt) override;
  bool EvictionValuable(const BufferObject& bo, const Place& place) override;
  void EvictFlags(const BufferObject& bo, Placement* placement) override;
  Status Move(BufferObject& bo, bool evict, OperationContext& ctx,
              std::unique_ptr<Resource>& new_res, Place* hop) override;
  std::byte* AccessMemory(const Resource& res) override;
  void SwapNotify(BufferObject& bo) override;
  void ReleaseNotify(BufferObject& bo) override;
  void DeleteMemNotify(BufferObject& bo) override;
  void MadviseNotify(BufferObject& bo) override;
  void PinNotify(BufferObject& bo) override;

 private:
  DeviceFuncs* const driver_;
  const double share_;
  ShmemBackingOptions backing_;
  std::unique_ptr<ShmemTtShrinker> shrinker_;
  std::atomic<std::uint64_t> created_{0};
  std::atomic<std::uint64_t> made_{0};
};

}  // namespace uttm

#endif  // UTTM_SHMEM_TT_FUNCS_H_
