// Copyright (c) uttm developers.
//
// shmem_tt_shrinker.h: the shrinker of a device's file-backed page vectors (i915's
// i915_gem_shrinker.c, over objects made with CreateShmemTt).
//
//   auto shrinker = std::make_unique<uttm::ShmemTtShrinker>(device);
//   // the driver's TtCreate: uttm::CreateShmemTt(bo, shrinker->backing_options(), flags)
//   reclaimer.Register(shrinker.get());
//
// Count is the device's resident file-backed memory in pages (i915's shrink_memory), kept by the
// backings made with backing_options(); the batch adapts as i915's does: max((batch + 2 * count /
// objects) / 2, 128), starting at 4096. Scan walks the device's page-vector domains oldest first,
// try-locking only: "don't need" objects first (the purge list), then the rest (the shrink
// list), calling ShmemTtShrink. Direct reclaim does not wait for busy objects; background reclaim
// (the kswapd role) waits for them and writes back when may_io allows. Without may_fs nothing is
// released. Returns the pages freed, or kShrinkStop when nothing could be.
//
// Thread-safety: as shrinker.h; the device must outlive the shrinker and be unregistered first.
#ifndef UTTM_SHMEM_TT_SHRINKER_H_
#define UTTM_SHMEM_TT_SHRINKER_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "uttm/device.h"
#include "uttm/export.h"
#include "uttm/shmem_backing.h"
#include "uttm/shrinker.h"

namespace uttm {

class UTTM_EXPORT ShmemTtShrinker final : public Shrinker {
 public:
  // Backing files go to `backing.directory` (empty: memfd).
  explicit ShmemTtShrinker(Device* device, const ShmemBackingOptions& backing = {});
  ShmemTtShrinker(const ShmemTtShrinker&) = delete;
  ShmemTtShrinker& operator=(const ShmemTtShrinker&) = delete;

  // The options a driver passes to CreateShmemTt so that Count sees its vectors.
  const ShmemBackingOptions& backing_options() const { return backing_; }
  std::uint64_t resident_pages() const;

  std::uint64_t Count(const ShrinkControl& sc) override;
  std::uint64_t Scan(ShrinkControl& sc) override;
  const char* name() const override { return name_.c_str(); }
  std::uint64_t batch() const override { return batch_.load(std::memory_order_relaxed); }

 private:
  Device* const device_;
  const std::string name_;
  std::atomic<std::int64_t> mapped_pages_{0};
  std::atomic<std::int64_t> mapped_backings_{0};
  ShmemBackingOptions backing_;
  std::atomic<std::uint64_t> batch_{4096};
};

}  // namespace uttm

#endif  // UTTM_SHMEM_TT_SHRINKER_H_
