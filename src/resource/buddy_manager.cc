// Copyright (c) uttm developers.
#include "uttm/buddy_manager.h"

#include <algorithm>
#include <bit>
#include <memory>
#include <type_traits>

#include "base/check.h"
#include "resource/buddy_allocator.h"

// BuddyResource keeps the allocator's block ids without its header.
static_assert(std::is_same_v<uttm::BuddyBlockId, std::uint32_t>);

namespace uttm {
namespace {

// The place's page range clipped to the manager ([fpfn, lpfn), lpfn 0 = the end).
void PlaceRange(const Place& place, std::uint64_t size, std::uint64_t* first, std::uint64_t* last) {
  *first = place.fpfn;
  *last = place.lpfn != 0 ? std::min<std::uint64_t>(place.lpfn, size) : size;
}

}  // namespace

bool BuddyResource::contiguous() const {
  if (ranges_.empty()) return false;
  std::vector<Range> sorted = ranges_;
  std::sort(sorted.begin(), sorted.end(),
            [](const Range& a, const Range& b) { return a.start < b.start; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].start != sorted[i - 1].start + sorted[i - 1].pages) return false;
  }
  return true;
}

BuddyManager::BuddyManager(MemType mem_type, PageCount pages, const BuddyManagerOptions& options)
    : ResourceManager(mem_type, options.use_tt, pages.value()),
      default_page_size_(std::max<std::uint64_t>(options.default_page_size, 1)),
      buddy_(std::make_unique<BuddyAllocator>()) {
  UTTM_CHECK(std::has_single_bit(default_page_size_), "default_page_size must be a power of two");
  MutexLock lock(&mu_);
  Status s = buddy_->Init(pages.value(), 1);
  UTTM_CHECK(s.ok(), "buddy manager needs at least one page");
}

BuddyManager::~BuddyManager() {
  MutexLock lock(&mu_);
  UTTM_CHECK(buddy_->Fini().ok(), "buddy manager destroyed with live resources");
}

Result<std::unique_ptr<Resource>> BuddyManager::Alloc(const AllocRequest& req, const Place& place) {
  if (place.mem_type != mem_type()) {
    return Status(Errc::kInvalid, "buddy manager asked for another memory type");
  }
  const std::uint64_t pages = req.size.pages_rounded_up().value();
  if (pages == 0) return Status(Errc::kInvalid, "resource of size 0");
  std::uint64_t min_block = std::max<std::uint64_t>(req.page_alignment, 1);
  if (!std::has_single_bit(min_block)) {
    return Status(Errc::kInvalid, "buddy manager: page alignment must be a power of two");
  }
  min_block = std::max(min_block, default_page_size_);
  std::uint64_t first, last;
  PlaceRange(place, size(), &first, &last);
  if (first >= last) return Status(Errc::kNoSpace, "empty place range");
  if (pages > last - first) return Status(Errc::kNoSpace, "larger than the place's range");

  unsigned flags = 0;
  if (first != 0 || last != size()) flags |= kBuddyRange;
  if (place.has(kPlaceTopDown)) flags |= kBuddyTopDown;
  if (place.has(kPlaceContiguous)) flags |= kBuddyContiguous;

  auto res = std::make_unique<BuddyResource>(this, place, req.size, req.bo);
  {
    MutexLock lock(&mu_);
    // A range request must start and end on min_block boundaries: shrink it inwards.
    std::uint64_t start = first, end = last;
    if ((flags & kBuddyRange) != 0) {
      start = (first + min_block - 1) & ~(min_block - 1);
      end = last & ~(min_block - 1);
      if (start >= end) return Status(Errc::kNoSpace, "place range smaller than the alignment");
    }
    Status s = buddy_->AllocBlocks(start, end, pages, min_block, flags, &res->blocks_);
    if (!s.ok()) {
      // kInvalid here means the request can never fit (e.g. above the largest order).
      if (s.code() == Errc::kInvalid) return Status(Errc::kNoSpace, s.message());
      return s;
    }
    res->ranges_.reserve(res->blocks_.size());
    for (BuddyBlockId b : res->blocks_) {
      res->ranges_.push_back({buddy_->BlockOffset(b), buddy_->BlockSize(b)});
    }
  }
  std::uint64_t lowest = res->ranges_.front().start;
  for (const auto& r : res->ranges_) lowest = std::min(lowest, r.start);
  res->set_start(lowest);
  res->set_priority(req.priority);
  res->bus().offset = lowest * kPageSize;
  return std::unique_ptr<Resource>(std::move(res));
}

void BuddyManager::Free(std::unique_ptr<Resource> res) {
  auto* r = static_cast<BuddyResource*>(res.get());
  MutexLock lock(&mu_);
  Status s = buddy_->FreeBlocks(&r->blocks_, 0);
  UTTM_CHECK(s.ok(), "freeing a resource the buddy manager does not hold");
}

bool BuddyManager::Intersects(const Resource& res, const Place& place, Bytes) const {
  std::uint64_t first, last;
  PlaceRange(place, size(), &first, &last);
  for (const auto& r : static_cast<const BuddyResource&>(res).ranges()) {
    if (r.start < last && r.start + r.pages > first) return true;
  }
  return false;
}

bool BuddyManager::Compatible(const Resource& res, const Place& place, Bytes) const {
  const auto& br = static_cast<const BuddyResource&>(res);
  std::uint64_t first, last;
  PlaceRange(place, size(), &first, &last);
  for (const auto& r : br.ranges()) {
    if (r.start < first || r.start + r.pages > last) return false;
  }
  return !place.has(kPlaceContiguous) || br.contiguous();
}

void BuddyManager::DebugPrint(std::string* out) const {
  MutexLock lock(&mu_);
  *out += "buddy: default_page_size " + std::to_string(default_page_size_) + " pages\n";
  *out += buddy_->DebugString();
}

PageCount BuddyManager::available() const {
  MutexLock lock(&mu_);
  return PageCount(buddy_->avail());
}

Status BuddyManager::Validate() const {
  MutexLock lock(&mu_);
  return buddy_->Validate();
}

}  // namespace uttm
