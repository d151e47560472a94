// Copyright (c) uttm developers.
//
// buddy_manager.h: a manager for device memory over a buddy allocator (TTM's mock manager and
// amdgpu's VRAM manager over gpu_buddy). Units are pages: the managed span is [0, pages).
//
// A resource is a list of buddy blocks (BuddyResource::ranges()). The request's page alignment
// (or the manager's default_page_size when larger) is the minimum block size and must be a power
// of two. Place flags: kPlaceContiguous → one run of pages (the allocator's contiguous mode);
// kPlaceTopDown → the highest offsets first; fpfn/lpfn → every block lies in [fpfn, lpfn)
// (range bias; lpfn 0 = the end).
//
// Intersects: some block overlaps the place's range. Compatible: every block lies inside the
// place's range and, for a contiguous place, the blocks form one run.
// Errors from Alloc: kNoSpace when the space cannot satisfy the request (evict and retry);
// kInvalid for another memory type, size 0, or an alignment that is not a power of two.
//
// Thread-safety: all methods are thread-safe (an internal lock around the allocator). A
// resource's ranges are fixed at allocation and may be read without the lock.
#ifndef UTTM_BUDDY_MANAGER_H_
#define UTTM_BUDDY_MANAGER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "uttm/export.h"
#include "uttm/mutex.h"
#include "uttm/resource_manager.h"

namespace uttm {

class BuddyAllocator;  // internal (src/resource/buddy_allocator.h)

struct BuddyManagerOptions {
  // Whether the memory type is backed by page vectors (the KUnit mock manager: true).
  bool use_tt = false;
  // Minimum block size in pages (a power of two; amdgpu's default_page_size).
  std::uint64_t default_page_size = 1;
};

// A resource made of buddy blocks.
class UTTM_EXPORT BuddyResource : public Resource {
 public:
  struct Range {
    std::uint64_t start = 0;  // first page
    std::uint64_t pages = 0;
  };
  using Resource::Resource;
  // The blocks in allocation order (pages).
  const std::vector<Range>& ranges() const { return ranges_; }
  // True when the blocks form one run of pages (start() .. start() + num_pages()).
  bool contiguous() const;

 private:
  friend class BuddyManager;
  std::vector<std::uint32_t> blocks_;  // the allocator's block ids
  std::vector<Range> ranges_;
};

class UTTM_EXPORT BuddyManager : public ResourceManager {
 public:
  // Manages `pages` pages of `mem_type`. CHECKs that pages > 0 and default_page_size is a power
  // of two.
  BuddyManager(MemType mem_type, PageCount pages, const BuddyManagerOptions& options = {});
  // REQUIRES: every resource has been freed (checked).
  ~BuddyManager() override;

  Result<std::unique_ptr<Resource>> Alloc(const AllocRequest& req, const Place& place) override;
  void Free(std::unique_ptr<Resource> res) override;
  bool Intersects(const Resource& res, const Place& place, Bytes size) const override;
  bool Compatible(const Resource& res, const Place& place, Bytes size) const override;
  void DebugPrint(std::string* out) const override;

  // Pages not allocated.
  PageCount available() const UTTM_EXCLUDES(mu_);
  // Checks the allocator's invariants (BuddyAllocator::Validate).
  Status Validate() const UTTM_EXCLUDES(mu_);

 private:
  const std::uint64_t default_page_size_;
  mutable Mutex mu_;
  const std::unique_ptr<BuddyAllocator> buddy_ UTTM_PT_GUARDED_BY(mu_);
};

}  // namespace uttm

#endif  // UTTM_BUDDY_MANAGER_H_
