// Copyright (c) uttm developers.
//
// range_manager.h: a manager for device memory with an address range (TTM's range manager over
// drm_mm): each resource is one contiguous range of pages [start, start + pages) inside the
// managed span, placed best-fit or top-down (kPlaceTopDown), within the place's [fpfn, lpfn) and
// aligned to the buffer object's page alignment.
//
// Intersects: the resource overlaps the place's range (evicting it helps). Compatible: the
// resource lies inside the place's range.
//
// Thread-safety: all methods are thread-safe (an internal lock around the allocator).
#ifndef UTTM_RANGE_MANAGER_H_
#define UTTM_RANGE_MANAGER_H_

#include <memory>

#include "uttm/mutex.h"
#include "uttm/resource_manager.h"

namespace uttm {

class RangeAllocator;  // internal (src/resource/range_allocator.h)

class UTTM_EXPORT RangeManager : public ResourceManager {
 public:
  // Manages `pages` pages of memory type `mem_type`; use_tt is false (device memory).
  RangeManager(MemType mem_type, PageCount pages);
  ~RangeManager() override;

  Result<std::unique_ptr<Resource>> Alloc(const AllocRequest& req, const Place& place) override;
  void Free(std::unique_ptr<Resource> res) override;
  bool Intersects(const Resource& res, const Place& place, Bytes size) const override;
  bool Compatible(const Resource& res, const Place& place, Bytes size) const override;
  void DebugPrint(std::string* out) const override;

  // Pages not allocated.
  PageCount available() const UTTM_EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  const std::unique_ptr<RangeAllocator> allocator_ UTTM_PT_GUARDED_BY(mu_);
};

}  // namespace uttm

#endif  // UTTM_RANGE_MANAGER_H_
