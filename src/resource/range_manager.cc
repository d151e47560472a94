// Copyright (c) uttm developers.
#include "uttm/range_manager.h"

#include "base/check.h"
#include "resource/range_allocator.h"

namespace uttm {
namespace {

class RangeResource : public Resource {
 public:
  using Resource::Resource;
  RangeNode node;
};

// The place's page range clipped to the manager ([fpfn, lpfn), lpfn 0 = the end).
void PlaceRange(const Place& place, std::uint64_t size, std::uint64_t* first, std::uint64_t* last) {
  *first = place.fpfn;
  *last = place.lpfn != 0 ? std::min<std::uint64_t>(place.lpfn, size) : size;
}

}  // namespace

RangeManager::RangeManager(MemType mem_type, PageCount pages)
    : ResourceManager(mem_type, /*use_tt=*/false, pages.value()),
      allocator_(std::make_unique<RangeAllocator>(0, pages.value())) {}

RangeManager::~RangeManager() {
  MutexLock lock(&mu_);
  UTTM_CHECK(allocator_->clean(), "range manager destroyed with live resources");
}

Result<std::unique_ptr<Resource>> RangeManager::Alloc(const AllocRequest& req, const Place& place) {
  if (place.mem_type != mem_type()) {
    return Status(Errc::kInvalid, "range manager asked for another memory type");
  }
  std::uint64_t pages = req.size.pages_rounded_up().value();
  if (pages == 0) return Status(Errc::kInvalid, "resource of size 0");
  RangeInsertOptions opts;
  opts.alignment = req.page_alignment;
  PlaceRange(place, size(), &opts.range_start, &opts.range_end);
  if (opts.range_start >= opts.range_end) return Status(Errc::kNoSpace, "empty place range");
  opts.mode = place.has(kPlaceTopDown) ? RangeInsertMode::kHigh : RangeInsertMode::kBest;
  auto res = std::make_unique<RangeResource>(this, place, req.size, req.bo);
  {
    MutexLock lock(&mu_);
    Status s = allocator_->InsertNode(&res->node, pages, opts);
    if (!s.ok()) return s;
  }
  res->set_start(res->node.start());
  res->set_priority(req.priority);
  res->bus().offset = res->node.start() * kPageSize;
  return std::unique_ptr<Resource>(std::move(res));
}

void RangeManager::Free(std::unique_ptr<Resource> res) {
  auto* r = static_cast<RangeResource*>(res.get());
  MutexLock lock(&mu_);
  Status s = allocator_->RemoveNode(&r->node);
  UTTM_CHECK(s.ok(), "freeing a resource the range manager does not hold");
}

bool RangeManager::Intersects(const Resource& res, const Place& place, Bytes) const {
  std::uint64_t first, last;
  PlaceRange(place, size(), &first, &last);
  std::uint64_t start = res.start();
  std::uint64_t end = start + res.num_pages().value();
  return start < last && end > first;
}

bool RangeManager::Compatible(const Resource& res, const Place& place, Bytes) const {
  std::uint64_t first, last;
  PlaceRange(place, size(), &first, &last);
  return res.start() >= first && res.start() + res.num_pages().value() <= last;
}

void RangeManager::DebugPrint(std::string* out) const {
  MutexLock lock(&mu_);
  *out += "range: " + allocator_->DebugString() + "\n";
}

PageCount RangeManager::available() const {
  MutexLock lock(&mu_);
  return PageCount(allocator_->available());
}

}  // namespace uttm
