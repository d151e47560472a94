// Copyright (c) uttm developers.
//
// Slot encoding (one uintptr_t per 4 KiB page):
//   0                      empty (never allocated, or purged)
//   odd                    backup handle h stored as (h << 1) | 1; the value 1 (handle 0) marks a
//                          slot whose contents were already restored into the in-flight chunk
//   even, non-zero         page address | kHeadBit on the first slot of a chunk | order << 2
#include "uttm/page_vector.h"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "base/check.h"
#include "uttm/fault_injection.h"

namespace uttm {
namespace {

constexpr std::uintptr_t kHeadBit = 2;
constexpr unsigned kOrderShift = 2;
constexpr std::uintptr_t kOrderMask = 0xf << kOrderShift;
constexpr std::uintptr_t kAddrMask = ~static_cast<std::uintptr_t>(kPageSize - 1);
constexpr std::uintptr_t kRestoredMarker = 1;
// Pages per store call: large writes (2 MiB), bounded handle buffers on the stack, so the
// reclaim path allocates nothing in proportion to the object.
constexpr std::size_t kMaxRun = 512;
// Chunks per caching-hook call.
constexpr std::size_t kCachingBatch = 64;

bool IsPage(std::uintptr_t v) { return v != 0 && (v & 1) == 0; }
bool IsHandle(std::uintptr_t v) { return (v & 1) != 0 && v != kRestoredMarker; }
bool IsHead(std::uintptr_t v) { return IsPage(v) && (v & kHeadBit) != 0; }
std::byte* PageOf(std::uintptr_t v) { return reinterpret_cast<std::byte*>(v & kAddrMask); }
unsigned OrderOf(std::uintptr_t v) {
  return static_cast<unsigned>((v & kOrderMask) >> kOrderShift);
}
std::uintptr_t EncodeHandle(BackupHandle h) { return (h.value() << 1) | 1; }
BackupHandle DecodeHandle(std::uintptr_t v) { return BackupHandle(v >> 1); }
std::uintptr_t EncodeHead(std::byte* addr, unsigned order) {
  return reinterpret_cast<std::uintptr_t>(addr) | kHeadBit | (std::uintptr_t{order} << kOrderShift);
}

constexpr std::uint32_t kCreateFlags =
    kPageVectorZeroAlloc | kPageVectorExternal | kPageVectorExternalMappable;

// Collects chunks and hands them to the caching hook in batches of kCachingBatch (no heap).
class CachingBatch {
 public:
  CachingBatch(CachingHook& hook, Caching from, Caching to) : hook_(hook), from_(from), to_(to) {}
  ~CachingBatch() { Flush(); }
  CachingBatch(const CachingBatch&) = delete;
  CachingBatch& operator=(const CachingBatch&) = delete;
  void Add(const PageChunk& c) {
    if (n_ == kCachingBatch) Flush();
    chunks_[n_++] = c;
  }
  void Flush() {
    if (n_ > 0) hook_.SetCaching(std::span<const PageChunk>(chunks_.data(), n_), from_, to_);
    n_ = 0;
  }

 private:
  CachingHook& hook_;
  const Caching from_;
  const Caching to_;
  std::array<PageChunk, kCachingBatch> chunks_;
  std::size_t n_ = 0;
};

}  // namespace

Result<std::unique_ptr<PageVector>> PageVector::Create(MemoryContext* context,
                                                       const PageVectorOptions& options) {
  if (context == nullptr) return Status(Errc::kInvalid, "PageVector::Create: null context");
  if ((options.flags & ~kCreateFlags) != 0) {
    return Status(Errc::kInvalid,
                  "PageVector::Create: only ZERO_ALLOC, EXTERNAL, EXTERNAL_MAPPABLE may be set");
  }
  const std::uint64_t pages = options.size.pages_rounded_up().value() + options.extra_pages.value();
  if (pages == 0) return Status(Errc::kInvalid, "PageVector::Create: zero pages");
  if (static_cast<unsigned>(options.caching) >= kNumCachingModes) {
    return Status(Errc::kInvalid, "PageVector::Create: bad caching");
  }
  if (options.shmem != nullptr && (options.caching != Caching::kCached || options.dma32)) {
    return Status(Errc::kInvalid, "PageVector::Create: a file-backed vector is cached, not dma32");
  }
  return std::unique_ptr<PageVector>(new PageVector(context, options, pages));
}

PageVector::PageVector(MemoryContext* context, const PageVectorOptions& options, std::size_t pages)
    : context_(context),
      slots_(pages, 0),
      shmem_options_(options.shmem != nullptr
                         ? std::make_unique<ShmemBackingOptions>(*options.shmem)
                         : nullptr),
      caching_(options.caching),
      flags_(options.flags |
             (options.shmem != nullptr ? kPageVectorExternal | kPageVectorExternalMappable : 0)),
      dma32_(options.dma32) {}

PageVector::~PageVector() {
  UnmapContiguous();
  DropCleanCopy();
  if (is_backed_up()) {
    DiscardBackup();
  } else if (is_populated()) {
    Unpopulate();
  }
  if (!swap_handles_.empty()) swap_store_->Drop(swap_handles_.data(), swap_handles_.size());
  UnchargeDownTo(0);
}

Status PageVector::ChargeUpTo(std::uint64_t pages, const OperationContext& ctx) {
  if ((flags_ & kPageVectorExternal) != 0 || charged_pages_ >= pages) return Status::Ok();
  UTTM_RETURN_IF_ERROR(context_->Charge(PageCount(pages - charged_pages_), dma32_, ctx));
  charged_pages_ = pages;
  return Status::Ok();
}

void PageVector::UnchargeDownTo(std::uint64_t pages) {
  if (charged_pages_ <= pages) return;
  context_->Uncharge(PageCount(charged_pages_ - pages), dma32_);
  charged_pages_ = pages;
}

std::uint64_t PageVector::CountResident() const {
  std::uint64_t n = 0;
  for (std::uintptr_t v : slots_) n += IsPage(v) ? 1 : 0;
  return n;
}

void PageVector::SettleBackedUp() {
  resident_pages_ = CountResident();
  UnchargeDownTo(resident_pages_);
  if (resident_pages_ > 0) {
    flags_ |= kPageVectorPartial;
  } else {
    flags_ &= ~kPageVectorPartial;
  }
}

void PageVector::CommitChunk(std::size_t slot, const PageChunk& chunk) {
  const std::size_t n = chunk.pages();
  slots_[slot] = EncodeHead(chunk.addr, chunk.order.value());
  for (std::size_t i = 1; i < n; ++i) {
    slots_[slot + i] = reinterpret_cast<std::uintptr_t>(chunk.addr + i * kPageSize);
  }
}

void PageVector::ApplyCaching(std::size_t end) {
  if (divide_ >= end) return;
  if (caching_ != Caching::kCached) {
    CachingBatch batch(context_->caching_hook(), Caching::kCached, caching_);
    for (std::size_t i = divide_; i < end; ++i) {
      if (IsHead(slots_[i])) batch.Add({PageOf(slots_[i]), PageOrder(OrderOf(slots_[i]))});
    }
  }
  divide_ = end;
}

void PageVector::MakeCached() {
  if (caching_ != Caching::kCached && divide_ > 0) {
    CachingBatch batch(context_->caching_hook(), caching_, Caching::kCached);
    for (std::size_t i = 0; i < divide_; ++i) {
      if (IsHead(slots_[i])) batch.Add({PageOf(slots_[i]), PageOrder(OrderOf(slots_[i]))});
    }
  }
  divide_ = 0;
}

void PageVector::FreePages(std::size_t from, std::size_t to, bool bypass_pool) {
  // Chunks go back in batches held on the stack: freeing never needs the heap.
  constexpr std::size_t kBatch = 64;
  std::array<PageChunk, kBatch> with_caching;
  std::array<PageChunk, kBatch> cached;
  std::size_t n_with = 0;
  std::size_t n_cached = 0;
  PagePool& pool = context_->pool();
  auto give = [&](std::array<PageChunk, kBatch>& batch, std::size_t& count, Caching caching) {
    if (count == 0) return;
    const std::span<const PageChunk> chunks(batch.data(), count);
    if (bypass_pool) {
      pool.Release(chunks, caching);
    } else {
      pool.Give(chunks, caching);
    }
    count = 0;
  };
  for (std::size_t i = from; i < to;) {
    const std::uintptr_t v = slots_[i];
    if (IsHead(v)) {
      // The chunk's tail pages follow its head (CommitChunk): clear them in one go instead of
      // looking at every slot (a 64 MiB vector has 16384).
      PageChunk c{PageOf(v), PageOrder(OrderOf(v))};
      if (i < divide_) {
        if (n_with == kBatch) give(with_caching, n_with, caching_);
        with_caching[n_with++] = c;
      } else {
        if (n_cached == kBatch) give(cached, n_cached, Caching::kCached);
        cached[n_cached++] = c;
      }
      const std::size_t end = std::min(to, i + c.pages());
      std::fill(slots_.begin() + static_cast<std::ptrdiff_t>(i),
                slots_.begin() + static_cast<std::ptrdiff_t>(end), std::uintptr_t{0});
      i = end;
      continue;
    }
    if (IsPage(v)) slots_[i] = 0;
    ++i;
  }
  give(with_caching, n_with, caching_);
  give(cached, n_cached, Caching::kCached);
}

Status PageVector::AllocateRange(std::size_t from) {
  const std::size_t n = slots_.size();
  PagePool& pool = context_->pool();
  std::size_t next = from;
  unsigned max_order = kMaxPageOrder;
  while (next < n) {
    PageOrder order = PageOrder::LargestFitting(PageCount(n - next));
    if (order.value() > max_order) order = PageOrder(max_order);
    Result<CachedChunk> cc = pool.Allocate(caching_, order);
    if (!cc.ok()) {
      FreePages(from, next, /*bypass_pool=*/false);
      divide_ = std::min(divide_, from);
      return cc.status();
    }
    // Don't ask again for orders that failed (TTM keeps descending).
    max_order = cc->chunk.order.value();
    if (cc->caching == caching_) {
      ApplyCaching(next);
      CommitChunk(next, cc->chunk);
      next += cc->chunk.pages();
      divide_ = next;
    } else {
      CommitChunk(next, cc->chunk);
      next += cc->chunk.pages();
    }
    context_->stats().Add(Stat::kPagesPopulated, cc->chunk.pages());
  }
  ApplyCaching(n);
  return Status::Ok();
}

Status PageVector::Populate(OperationContext& ctx) {
  if (is_populated()) return Status::Ok();
  if (is_shmem()) return ShmemPopulate();
  if (is_backed_up()) {
    return Status(Errc::kInvalid, "PageVector::Populate: vector is backed up; use Restore");
  }
  UTTM_RETURN_IF_ERROR(ChargeUpTo(slots_.size(), ctx));
  divide_ = 0;
  Status s = AllocateRange(0);
  if (!s.ok()) {
    UnchargeDownTo(0);
    return s;
  }
  if ((flags_ & kPageVectorSwapped) != 0) {
    // Swap in: copy every page back in runs of contiguous memory.
    std::size_t i = 0;
    const std::size_t n = slots_.size();
    while (i < n) {
      std::size_t j = i + 1;
      while (j < n && j - i < kMaxRun && PageOf(slots_[j]) == PageOf(slots_[j - 1]) + kPageSize)
        ++j;
      std::size_t copied = 0;
      Status cs = swap_store_->CopyPages(&swap_handles_[i], j - i, PageOf(slots_[i]), ctx, &copied);
      if (!cs.ok()) {
        const std::size_t progress = i + std::min(copied, j - i);
        if (progress == 0 || (attached_store_ != nullptr && attached_store_ != swap_store_)) {
          FreePages(0, n, /*bypass_pool=*/false);
          divide_ = 0;
          UnchargeDownTo(0);
          return cs;
        }
        // Keep what came back: the vector becomes a partial per-page backup (the pages copied
        // so far, then the store's handles for the rest), which the next call restores from
        // where this one stopped. An interrupted swap-in thus makes progress instead of
        // starting over (a 2048-page object interrupted every 300 pages would never finish).
        KeepSwapInProgress(progress);
        return cs;
      }
      i = j;
    }
    context_->stats().Add(Stat::kPagesSwappedIn, swap_handles_.size());
    DropSwapHandles();
  }
  flags_ |= kPageVectorPopulated;
  resident_pages_ = slots_.size();
  return Status::Ok();
}

void PageVector::KeepSwapInProgress(std::size_t progress) {
  const std::size_t n = slots_.size();
  MakeCached();  // leftover pages are cached, like every leftover
  // The pages past `progress` hold nothing yet: free them in runs of adjacent addresses (a chunk
  // that straddles `progress` keeps its head part as leftover pages).
  std::size_t k = progress;
  while (k < n) {
    std::size_t e = k + 1;
    while (e < n && PageOf(slots_[e]) == PageOf(slots_[e - 1]) + kPageSize) ++e;
    context_->provider().FreeRange(PageOf(slots_[k]), e - k);
    k = e;
  }
  for (k = progress; k < n; ++k) slots_[k] = EncodeHandle(swap_handles_[k]);
  swap_store_->Drop(swap_handles_.data(), progress);
  context_->stats().Add(Stat::kPagesSwappedIn, progress);
  attached_store_ = swap_store_;
  swap_handles_.clear();
  swap_handles_.shrink_to_fit();
  swap_store_ = nullptr;
  flags_ = (flags_ & ~(kPageVectorSwapped | kPageVectorPopulated)) | kPageVectorBackedUp;
  SettleBackedUp();
}

Status PageVector::ShmemPopulate() {
  if (shmem_ == nullptr) {
    ShmemBackingOptions o = *shmem_options_;
    if (o.stats == nullptr) o.stats = &context_->stats();
    UTTM_ASSIGN_OR_RETURN(shmem_, ShmemBacking::Create(Bytes(slots_.size() * kPageSize), o));
  }
  UTTM_ASSIGN_OR_RETURN(std::byte * base, shmem_->Map());  // a swapped vector stays swapped
  map_base_ = base;
  flags_ = (flags_ & ~kPageVectorSwapped) | kPageVectorPopulated;
  resident_pages_ = slots_.size();
  return Status::Ok();
}

void PageVector::ShmemReleased(std::uint32_t clear_flags) {
  map_base_ = nullptr;
  flags_ &= ~clear_flags;
  resident_pages_ = 0;
}

Result<PageCount> PageVector::ShmemSwapout(bool writeback) {
  if (!is_shmem() || !is_populated()) {
    return Status(Errc::kInvalid, "PageVector::ShmemSwapout: not a populated file-backed vector");
  }
  flags_ |= kPageVectorSwapped;
  Status s = shmem_->Unmap(writeback);
  if (!s.ok()) {
    flags_ &= ~kPageVectorSwapped;  // i915_ttm_shrink undoes the mark on failure
    return s;
  }
  ShmemReleased(kPageVectorPopulated);
  return PageCount(slots_.size());
}

Result<PageCount> PageVector::ShmemPurge() {
  if (!is_shmem()) return Status(Errc::kInvalid, "PageVector::ShmemPurge: not file-backed");
  if (shmem_ == nullptr || !shmem_->has_file()) return PageCount(0);
  UTTM_RETURN_IF_ERROR(shmem_->Truncate());
  ShmemReleased(kPageVectorPopulated | kPageVectorSwapped);
  return PageCount(slots_.size());
}

void PageVector::Unpopulate() {
  if (!is_populated()) return;
  if (is_shmem()) {
    (void)shmem_->Unmap(/*writeback=*/false);  // cannot fail: the contents stay in the file
    ShmemReleased(kPageVectorPopulated);
    return;
  }
  UnmapContiguous();
  DropCleanCopy();
  FreePages(0, slots_.size(), /*bypass_pool=*/false);
  context_->stats().Add(Stat::kPagesUnpopulated, slots_.size());
  divide_ = 0;
  flags_ &= ~kPageVectorPopulated;
  resident_pages_ = 0;
  UnchargeDownTo(0);
}

std::byte* PageVector::PageAt(std::size_t i) const {
  return map_base_ != nullptr ? map_base_ + i * kPageSize : PageOf(slots_[i]);
}

std::byte* PageVector::PageAddress(std::size_t i) const {
  if (!is_populated() || i >= slots_.size()) return nullptr;
  return PageAt(i);
}

void PageVector::MovePagesHome(std::byte* base, std::size_t pages) {
  // Each chunk's pages replace the empty mapping MREMAP_DONTUNMAP left at home. They leave an
  // empty mapping behind in the range too (MREMAP_DONTUNMAP again): a hole there could be taken
  // by another thread's mmap (a thread stack, say) before the caller unmaps the whole range, and
  // that munmap would then tear down someone else's memory (the fuzzer found exactly this).
  // Moving a range we own onto a mapping we own cannot fail short of a kernel bug.
  for (std::size_t i = 0; i < pages;) {
    const std::size_t len = std::size_t{1} << OrderOf(slots_[i]);
    void* back = mremap(base + i * kPageSize, len * kPageSize, len * kPageSize,
                        MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, PageOf(slots_[i]));
    UTTM_CHECK(back != MAP_FAILED, "PageVector: cannot move mapped pages back home");
    i += len;
  }
}

Result<std::byte*> PageVector::MapContiguous() {
  if (!is_populated()) return Status(Errc::kInvalid, "PageVector::MapContiguous: not populated");
  // Mapped before (the range is still there), or a file-backed vector (one shared mapping).
  if (map_base_ != nullptr) return map_base_;
  const std::size_t n = slots_.size();
  if (n == 0) return Status(Errc::kInvalid, "PageVector::MapContiguous: empty vector");
  if (attached_ != nullptr) return MapIntoAttached();
  std::byte* const first = PageOf(slots_[0]);
  bool contiguous = true;
  for (std::size_t i = 1; i < n && contiguous; ++i) {
    contiguous = PageOf(slots_[i]) == first + i * kPageSize;
  }
  if (contiguous) {
    map_base_ = first;
    map_moved_ = false;
    return map_base_;
  }
  // Reserve the range, aligned to 2 MiB (over-reserve by one huge page, use the aligned part).
  constexpr std::size_t kHuge = kPageSize << kMaxPageOrder;
  const std::size_t bytes = n * kPageSize;
  const std::size_t reserve = bytes + kHuge;
  void* r = mmap(nullptr, reserve, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) {
    return Status(Errc::kNoMemory, "PageVector::MapContiguous: cannot reserve address space");
  }
  auto* base = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(r) + kHuge - 1) &
                                            ~std::uintptr_t{kHuge - 1});
  // Move chunk by chunk; a failure moves the ones already moved back.
  std::size_t i = 0;
  int err = 0;
  while (i < n) {
    const std::size_t len = std::size_t{1} << OrderOf(slots_[i]);
    void* got = mremap(PageOf(slots_[i]), len * kPageSize, len * kPageSize,
                       MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, base + i * kPageSize);
    if (got == MAP_FAILED) {
      err = errno;
      break;
    }
    i += len;
  }
  if (err != 0) {
    MovePagesHome(base, i);
    munmap(r, reserve);
    if (err == EINVAL) {
      return Status(Errc::kNotSupported,
                    "PageVector::MapContiguous: the kernel refuses MREMAP_DONTUNMAP (Linux 5.7)");
    }
    return Status(Errc::kNoMemory,
                  std::string("PageVector::MapContiguous: mremap: ") + std::strerror(err));
  }
  map_base_ = base;
  map_moved_ = true;
  map_reserved_ = static_cast<std::byte*>(r);
  map_reserved_bytes_ = reserve;
  return map_base_;
}

void PageVector::UnmapContiguous() {
  if (map_base_ == nullptr || is_shmem()) return;  // a file's mapping is the pages themselves
  if (map_base_ == attached_) {
    EmptyAttachedRange(slots_.size());
  } else if (map_moved_) {
    MovePagesHome(map_base_, slots_.size());
    munmap(map_reserved_, map_reserved_bytes_);
  }
  map_base_ = nullptr;
  map_moved_ = false;
  map_reserved_ = nullptr;
  map_reserved_bytes_ = 0;
}

Result<std::byte*> PageVector::MapIntoAttached() {
  const std::size_t n = slots_.size();
  // Chunk by chunk; each replaces its part of the armed, empty range (and its arming: a later
  // move out arms it again). A failure moves the ones already moved back out.
  for (std::size_t i = 0; i < n;) {
    const std::size_t len = std::size_t{1} << OrderOf(slots_[i]);
    void* got = mremap(PageOf(slots_[i]), len * kPageSize, len * kPageSize,
                       MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, attached_ + i * kPageSize);
    if (got == MAP_FAILED) {
      const int err = errno;
      EmptyAttachedRange(i);
      return Status(err == EINVAL ? Errc::kNotSupported : Errc::kNoMemory,
                    std::string("PageVector::MapContiguous: mremap into the attached range: ") +
                        std::strerror(err));
    }
    i += len;
  }
  map_base_ = attached_;
  map_moved_ = true;
  return map_base_;
}

void PageVector::EmptyAttachedRange(std::size_t pages) {
  const std::size_t bytes = slots_.size() * kPageSize;
  if (!attached_faults_->Arm(attached_, bytes).ok()) {
    // Without arming, the empty range would read as zeros and take writes that go nowhere.
    mprotect(attached_, bytes, PROT_NONE);
    context_->stats().Add(Stat::kTouchArmFailures);
  }
  MovePagesHome(attached_, pages);
  map_base_ = nullptr;
  map_moved_ = false;
}

Status PageVector::AttachRange(std::byte* base, UserFaults* faults) {
  if (base == nullptr || faults == nullptr ||
      (reinterpret_cast<std::uintptr_t>(base) & (kPageSize - 1)) != 0) {
    return Status(Errc::kInvalid, "PageVector::AttachRange: a page-aligned range and a service");
  }
  if (is_shmem()) {
    return Status(Errc::kInvalid, "PageVector::AttachRange: a file-backed vector maps its file");
  }
  if (attached_ != nullptr) {
    return Status(Errc::kInvalid, "PageVector::AttachRange: a range is attached already");
  }
  UnmapContiguous();
  attached_ = base;
  attached_faults_ = faults;
  return Status();
}

void PageVector::DetachRange() {
  if (attached_ == nullptr) return;
  UnmapContiguous();
  attached_ = nullptr;
  attached_faults_ = nullptr;
}

Status PageVector::Write(std::uint64_t offset, std::span<const std::byte> data) {
  if (!is_populated()) return Status(Errc::kInvalid, "PageVector::Write: not populated");
  if (offset > num_pages().in_bytes().value() ||
      data.size() > num_pages().in_bytes().value() - offset) {
    return Status(Errc::kInvalid, "PageVector::Write: range beyond the vector");
  }
  if (!data.empty()) DropCleanCopy();
  std::size_t done = 0;
  while (done < data.size()) {
    const std::uint64_t pos = offset + done;
    const std::size_t in_page = pos & (kPageSize - 1);
    const std::size_t len = std::min(kPageSize - in_page, data.size() - done);
    std::memcpy(PageAt(pos >> kPageShift) + in_page, data.data() + done, len);
    done += len;
  }
  return Status::Ok();
}

Status PageVector::Read(std::uint64_t offset, std::span<std::byte> out) const {
  if (!is_populated()) return Status(Errc::kInvalid, "PageVector::Read: not populated");
  if (offset > num_pages().in_bytes().value() ||
      out.size() > num_pages().in_bytes().value() - offset) {
    return Status(Errc::kInvalid, "PageVector::Read: range beyond the vector");
  }
  std::size_t done = 0;
  while (done < out.size()) {
    const std::uint64_t pos = offset + done;
    const std::size_t in_page = pos & (kPageSize - 1);
    const std::size_t len = std::min(kPageSize - in_page, out.size() - done);
    std::memcpy(out.data() + done, PageAt(pos >> kPageShift) + in_page, len);
    done += len;
  }
  return Status::Ok();
}

Result<PageCount> PageVector::Swapout(BackupStore* store) {
  if (is_shmem()) return Status(Errc::kInvalid, "PageVector::Swapout: a file-backed vector");
  if (store == nullptr) store = attached_store_;
  if (store == nullptr) return Status(Errc::kInvalid, "PageVector::Swapout: no store");
  if (!is_populated()) return Status(Errc::kInvalid, "PageVector::Swapout: not populated");
  UnmapContiguous();
  const std::size_t n = slots_.size();
  // The handles are what the swapped vector keeps: one allocation, made before anything changes.
  std::vector<BackupHandle> handles;
  try {
    handles.resize(n);
  } catch (const std::bad_alloc&) {
    return Status(Errc::kNoMemory, "PageVector::Swapout: no memory for the handle array");
  }
  std::size_t i = 0;
  while (i < n) {
    std::size_t j = i + 1;
    while (j < n && j - i < kMaxRun && PageOf(slots_[j]) == PageOf(slots_[j - 1]) + kPageSize) ++j;
    Result<std::size_t> r = store->BackupPages(PageOf(slots_[i]), j - i, {}, &handles[i]);
    if (!r.ok()) {
      store->Drop(handles.data(), i);
      return r.status();
    }
    i += *r;
  }
  Unpopulate();
  swap_handles_ = std::move(handles);
  swap_store_ = store;
  flags_ |= kPageVectorSwapped;
  context_->stats().Add(Stat::kPagesSwappedOut, n);
  return PageCount(n);
}

void PageVector::ReleaseInflight() {
  if (inflight_.addr == nullptr) return;
  if (inflight_caching_ != Caching::kCached) {
    context_->caching_hook().SetCaching(std::span<const PageChunk>(&inflight_, 1),
                                        inflight_caching_, Caching::kCached);
  }
  // Pages of the in-flight chunk already hold their slot's contents: they become leftovers in
  // place (cached, like every leftover). The rest were never used.
  for (std::size_t p = 0; p < inflight_done_; ++p) {
    slots_[restored_ + p] = EncodeHead(inflight_.addr + p * kPageSize, 0);
  }
  context_->provider().FreeRange(inflight_.addr + inflight_done_ * kPageSize,
                                 inflight_.pages() - inflight_done_);
  inflight_ = PageChunk{};
  inflight_done_ = 0;
}

void PageVector::CollapseRestore() {
  if (!restore_started_) return;
  // The committed prefix keeps its pages (now leftovers, made cached like every leftover).
  MakeCached();
  ReleaseInflight();
  restored_ = 0;
  inflight_done_ = 0;
  restore_started_ = false;
}

Result<PageCount> PageVector::Backup(const BackupOptions& options, BackupStore* store) {
  if (is_shmem()) return Status(Errc::kInvalid, "PageVector::Backup: a file-backed vector");
  // Swapped (legacy) or unpopulated vectors hold no pages; a fully backed-up one has none left.
  if (!is_populated() && !is_partial()) return PageCount(0);
  UnmapContiguous();
  if (store == nullptr) store = attached_store_;
  if (!options.purge) {
    if (store == nullptr) return Status(Errc::kInvalid, "PageVector::Backup: no backup store");
    if (attached_store_ != nullptr && is_backed_up() && store != attached_store_) {
      return Status(Errc::kInvalid,
                    "PageVector::Backup: the rest of a partial backup must go to the same store");
    }
    if (clean_pages_ == 0 && store->BytesAvailable() < kPageSize) {
      return Status(Errc::kBusy, "PageVector::Backup: backup store has no space");
    }
  }
  const std::size_t n = slots_.size();
  const bool was_populated = is_populated();
  // Clean copies are of no use to a purge, nor in another store than the one holding them.
  if (options.purge || store != attached_store_) DropCleanCopy();
  // A restore in progress gives up its progress: everything held becomes leftover pages.
  CollapseRestore();
  // Everything leaving for the OS or a store is made cached first.
  MakeCached();

  if (options.purge) {
    // Contents are dropped by contract: pages go straight to the OS, handles are dropped.
    const std::uint64_t freed = resident_pages_;
    if (was_populated) {
      FreePages(0, n, /*bypass_pool=*/true);
    } else {
      DropHandlesAndLeftovers(slots_);
    }
    flags_ = (flags_ & ~kPageVectorPopulated) | kPageVectorBackedUp;
    SettleBackedUp();
    context_->stats().Add(Stat::kPagesPurged, freed);
    return PageCount(freed);
  }

  // Store runs of pages with adjacent addresses (chunks stay encoded: a page of a chunk whose
  // other pages went to the store is a leftover like any other), freeing each run as soon as it
  // is stored.
  const std::size_t limit = ShouldFail(FaultPoint::kBackupPartial) ? (n + 1) / 2 : n;
  std::array<BackupHandle, kMaxRun> handles;
  const BackupFlags flags{.writeback = options.writeback, .element_size = element_size_};
  // Clean pages first: they need neither a write nor store space.
  const std::size_t clean = GiveUpCleanPages(limit);
  std::size_t count = clean;
  Status error;
  std::size_t i = 0;
  while (i < limit) {
    if (!IsPage(slots_[i])) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < limit && j - i < kMaxRun && IsPage(slots_[j]) &&
           PageOf(slots_[j]) == PageOf(slots_[j - 1]) + kPageSize) {
      ++j;
    }
    std::byte* src = PageOf(slots_[i]);
    const std::size_t len = j - i;
    Result<std::size_t> r = store->BackupPages(src, len, flags, handles.data());
    if (!r.ok()) {
      error = r.status();
      break;
    }
    const std::size_t k = *r;
    for (std::size_t p = 0; p < k; ++p) slots_[i + p] = EncodeHandle(handles[p]);
    context_->pool().Recycle(src, k);  // safe in the store: a restore may overwrite them
    count += k;
    i += k;
    if (k < len) break;  // the store took only part of the run: a partial backup
  }
  if (count == 0) {
    if (was_populated) ApplyCaching(n);  // back as it was
    if (!error.ok()) return error;
    return PageCount(0);
  }
  flags_ = (flags_ & ~kPageVectorPopulated) | kPageVectorBackedUp;
  attached_store_ = store;
  SettleBackedUp();
  context_->stats().Add(Stat::kPagesBackedUp, count - clean);
  context_->stats().Add(Stat::kPagesBackedUpClean, clean);
  return PageCount(count);
}

Status PageVector::RestoreChunk(OperationContext& ctx, BackupStore* store, bool keep) {
  const std::size_t n = inflight_.pages();
  // Leftover pages copied into the chunk are freed in runs (no heap: the reclaim and fault-in
  // paths allocate nothing in proportion to the object).
  std::byte* free_start = nullptr;
  std::size_t free_pages = 0;
  auto free_leftover = [&](std::byte* page) {
    if (free_start != nullptr && page == free_start + free_pages * kPageSize) {
      ++free_pages;
      return;
    }
    if (free_pages > 0) context_->provider().FreeRange(free_start, free_pages);
    free_start = page;
    free_pages = 1;
  };
  Status status;
  std::array<BackupHandle, kMaxRun> handles;
  std::size_t i = inflight_done_;
  while (i < n) {
    const std::size_t slot = restored_ + i;
    const std::uintptr_t v = slots_[slot];
    if (IsHandle(v)) {
      std::size_t j = i + 1;
      while (j < n && j - i < kMaxRun && IsHandle(slots_[restored_ + j])) ++j;
      if (ctx.interrupt_requested() ||
          (ctx.interruptible && ShouldFail(FaultPoint::kRestoreInterrupt))) {
        status = Status(Errc::kInterrupted, "PageVector::Restore: interrupted");
        break;
      }
      const std::size_t len = j - i;
      for (std::size_t p = 0; p < len; ++p) handles[p] = DecodeHandle(slots_[restored_ + i + p]);
      std::size_t copied = 0;
      Status cs =
          store->CopyPages(handles.data(), len, inflight_.addr + i * kPageSize, ctx, &copied);
      if (cs.ok()) copied = len;
      if (keep) {
        // The store's copy stays: it is the page's clean copy until the page is written.
        for (std::size_t p = 0; p < copied; ++p) clean_[restored_ + i + p] = handles[p].value();
        AddClean(static_cast<std::int64_t>(copied));
      } else {
        store->Drop(handles.data(), copied);
      }
      for (std::size_t p = 0; p < copied; ++p) slots_[restored_ + i + p] = kRestoredMarker;
      ctx.pages_restored += copied;
      context_->stats().Add(Stat::kPagesRestored, copied);
      i += copied;
      if (!cs.ok()) {
        status = cs;
        break;
      }
    } else {
      if (IsPage(v)) {
        // A leftover page of a partial backup: copy it over and free it (a clean copy it has
        // stays right for the copy).
        std::memcpy(inflight_.addr + i * kPageSize, PageOf(v), kPageSize);
        free_leftover(PageOf(v));
      }
      // Empty (purged) slots read as zeros: a fresh chunk is zero-filled, a recycled one not.
      if (v == 0 && inflight_uncleared_) std::memset(inflight_.addr + i * kPageSize, 0, kPageSize);
      slots_[slot] = kRestoredMarker;
      ++i;
    }
  }
  inflight_done_ = i;
  if (free_pages > 0) context_->provider().FreeRange(free_start, free_pages);
  return status;
}

Status PageVector::Restore(OperationContext& ctx, BackupStore* store) {
  if (!is_backed_up()) return Status(Errc::kInvalid, "PageVector::Restore: not backed up");
  if (store == nullptr) store = attached_store_;
  const std::size_t n = slots_.size();
  if (store == nullptr) {
    for (std::size_t i = restored_; i < n; ++i) {
      if (IsHandle(slots_[i])) {
        return Status(Errc::kInvalid, "PageVector::Restore: handles present but no store");
      }
    }
  }
  UTTM_RETURN_IF_ERROR(ChargeUpTo(n, ctx));
  restore_started_ = true;
  Status s = RestoreChunks(ctx, store, KeepCleanFrom(store));
  if (!s.ok()) {
    // Resumable: the committed chunks are kept; the in-flight chunk keeps only the pages it
    // filled (as leftovers in place), so the vector holds no page it does not use. What it holds
    // meanwhile is charged and counted (a partial vector), so reclaim can take it back.
    ReleaseInflight();
    SettleBackedUp();
    return s;
  }
  ApplyCaching(n);
  restore_started_ = false;
  restored_ = 0;
  flags_ = (flags_ & ~(kPageVectorBackedUp | kPageVectorPartial)) | kPageVectorPopulated;
  resident_pages_ = n;
  return Status::Ok();
}

Status PageVector::RestoreChunks(OperationContext& ctx, BackupStore* store, bool keep) {
  const std::size_t n = slots_.size();
  PagePool& pool = context_->pool();
  while (restored_ < n) {
    if (inflight_.addr == nullptr) {
      // Every page of the chunk is overwritten below (a purged slot is cleared explicitly), so
      // pages a backup just gave up serve without being cleared.
      Result<CachedChunk> cc = pool.AllocateForOverwrite(
          caching_, PageOrder::LargestFitting(PageCount(n - restored_)), &inflight_uncleared_);
      if (!cc.ok()) return cc.status();
      inflight_ = cc->chunk;
      inflight_caching_ = cc->caching;
      inflight_done_ = 0;
    }
    Status s = RestoreChunk(ctx, store, keep);
    if (!s.ok()) {
      if (inflight_done_ == 0) {
        pool.Give(std::span<const PageChunk>(&inflight_, 1), inflight_caching_);
        inflight_ = PageChunk{};
      }
      return s;
    }
    if (inflight_caching_ == caching_) {
      ApplyCaching(restored_);
      CommitChunk(restored_, inflight_);
      restored_ += inflight_.pages();
      divide_ = restored_;
    } else {
      CommitChunk(restored_, inflight_);
      restored_ += inflight_.pages();
    }
    context_->stats().Add(Stat::kPagesPopulated, inflight_.pages());
    inflight_ = PageChunk{};
    inflight_done_ = 0;
  }
  return Status::Ok();
}

void PageVector::DropHandlesAndLeftovers(std::span<std::uintptr_t> slots) {
  // Handles in runs of kMaxRun, leftover pages in runs of adjacent addresses: no heap.
  std::array<BackupHandle, kMaxRun> handles;
  std::size_t nh = 0;
  auto drop = [&] {
    if (nh == 0) return;
    UTTM_CHECK(attached_store_ != nullptr, "backed-up page vector lost its store");
    attached_store_->Drop(handles.data(), nh);
    nh = 0;
  };
  std::byte* run = nullptr;
  std::size_t run_pages = 0;
  for (std::uintptr_t& v : slots) {
    if (IsHandle(v)) {
      if (nh == kMaxRun) drop();
      handles[nh++] = DecodeHandle(v);
    }
    if (IsPage(v)) {
      if (run != nullptr && PageOf(v) == run + run_pages * kPageSize) {
        ++run_pages;
      } else {
        if (run_pages > 0) context_->provider().FreeRange(run, run_pages);
        run = PageOf(v);
        run_pages = 1;
      }
    }
    v = 0;
  }
  drop();
  if (run_pages > 0) context_->provider().FreeRange(run, run_pages);
}

Status PageVector::PopulateDiscarding(OperationContext& ctx) {
  if (is_populated()) return Status::Ok();
  if (is_shmem()) {
    // Whatever the file holds will be overwritten: drop it instead of reading it back.
    if ((flags_ & kPageVectorSwapped) != 0) UTTM_RETURN_IF_ERROR(ShmemPurge().status());
    return ShmemPopulate();
  }
  const bool swapped = (flags_ & kPageVectorSwapped) != 0;
  if (!is_backed_up() && !swapped) return Populate(ctx);
  const std::size_t n = slots_.size();
  // A restore in progress becomes leftover pages, like every page the vector still holds.
  CollapseRestore();
  MakeCached();
  // New pages into a fresh slot array; the old one (handles, leftovers) waits beside it.
  std::vector<std::uintptr_t> old_slots;
  try {
    old_slots.assign(n, 0);
  } catch (const std::bad_alloc&) {
    return Status(Errc::kNoMemory, "PageVector::PopulateDiscarding: no memory for the slots");
  }
  std::swap(slots_, old_slots);
  const std::uint64_t old_charged = charged_pages_;
  charged_pages_ = 0;
  Status s = ChargeUpTo(n, ctx);
  if (s.ok()) {
    divide_ = 0;
    s = AllocateRange(0);
    if (!s.ok()) UnchargeDownTo(0);
  }
  if (!s.ok()) {
    std::swap(slots_, old_slots);
    charged_pages_ = old_charged;
    return s;
  }
  // In: drop the old contents (store copies, clean copies of leftover pages, the leftover pages)
  // and their charge.
  DropCleanCopy();
  DropHandlesAndLeftovers(old_slots);
  if (swapped) DropSwapHandles();
  context_->Uncharge(PageCount(old_charged), dma32_);
  flags_ = (flags_ & ~(kPageVectorBackedUp | kPageVectorPartial | kPageVectorSwapped)) |
           kPageVectorPopulated;
  resident_pages_ = n;
  return Status::Ok();
}

void PageVector::DropSwapHandles() {
  swap_store_->Drop(swap_handles_.data(), swap_handles_.size());
  swap_handles_.clear();
  swap_store_ = nullptr;
  flags_ &= ~kPageVectorSwapped;
}

void PageVector::AddClean(std::int64_t pages) {
  clean_pages_ = static_cast<std::uint64_t>(static_cast<std::int64_t>(clean_pages_) + pages);
  context_->stats().GaugeAdd(Stat::kCleanPages, pages);
}

void PageVector::DropCleanCopy() {
  if (clean_pages_ == 0) return;
  UTTM_CHECK(attached_store_ != nullptr, "clean copies without a store");
  // In runs of kMaxRun handles on the stack: no heap.
  std::array<BackupHandle, kMaxRun> handles;
  std::size_t nh = 0;
  for (std::uint64_t& h : clean_) {
    if (h == 0) continue;
    handles[nh++] = BackupHandle(h);
    h = 0;
    if (nh == kMaxRun) {
      attached_store_->Drop(handles.data(), nh);
      nh = 0;
    }
  }
  if (nh > 0) attached_store_->Drop(handles.data(), nh);
  context_->stats().Add(Stat::kCleanPagesDropped, clean_pages_);
  AddClean(-static_cast<std::int64_t>(clean_pages_));
}

bool PageVector::KeepCleanFrom(const BackupStore* store) {
  if (!keep_clean_ || store == nullptr || store != attached_store_) return false;
  // A copy in memory would take the budget the restored pages need.
  if (store->HoldsMemory()) return false;
  // Half full or more: the copies would crowd out backups (vm_swap_full()).
  if (store->BytesUsed() >= store->BytesAvailable()) return false;
  if (clean_.size() != slots_.size()) {
    // Once per vector, on the restore path (never in reclaim). Without memory for it the
    // restore simply keeps no copies.
    try {
      clean_.assign(slots_.size(), 0);
    } catch (const std::bad_alloc&) {
      clean_.clear();
      return false;
    }
  }
  return true;
}

std::size_t PageVector::GiveUpCleanPages(std::size_t limit) {
  if (clean_pages_ == 0) return 0;
  std::size_t given = 0;
  for (std::size_t i = 0; i < limit;) {
    if (clean_[i] == 0) {
      ++i;
      continue;
    }
    // A run of clean pages at adjacent addresses: each slot takes its copy's handle, and the
    // pages go back to the OS in one call.
    std::size_t j = i + 1;
    while (j < limit && clean_[j] != 0 && PageOf(slots_[j]) == PageOf(slots_[j - 1]) + kPageSize) {
      ++j;
    }
    std::byte* const first = PageOf(slots_[i]);
    for (std::size_t p = i; p < j; ++p) {
      slots_[p] = EncodeHandle(BackupHandle(clean_[p]));
      clean_[p] = 0;
    }
    context_->pool().Recycle(first, j - i);
    given += j - i;
    i = j;
  }
  AddClean(-static_cast<std::int64_t>(given));
  return given;
}

void PageVector::DiscardBackup() {
  if (is_shmem()) {
    // The file is the only copy of a swapped file-backed vector: discarding drops its contents.
    if ((flags_ & kPageVectorSwapped) != 0) {
      if (!ShmemPurge().ok()) {
        shmem_.reset();  // truncation failed: close the (unlinked) file, its blocks go with it
        flags_ &= ~kPageVectorSwapped;
      }
    }
    return;
  }
  // A whole-vector swapout holds no pages: its store copy is all there is to drop.
  if ((flags_ & kPageVectorSwapped) != 0) DropSwapHandles();
  if (!is_backed_up()) return;
  DropCleanCopy();  // of leftover pages
  // Committed fresh pages of a restore in progress, then the in-flight chunk.
  FreePages(0, restored_, /*bypass_pool=*/false);
  if (inflight_.addr != nullptr) {
    context_->pool().Give(std::span<const PageChunk>(&inflight_, 1), inflight_caching_);
    inflight_ = PageChunk{};
  }
  DropHandlesAndLeftovers(std::span<std::uintptr_t>(slots_).subspan(restored_));
  std::fill(slots_.begin(), slots_.end(), 0);
  restored_ = 0;
  inflight_done_ = 0;
  restore_started_ = false;
  divide_ = 0;
  flags_ &= ~(kPageVectorBackedUp | kPageVectorPartial);
  resident_pages_ = 0;
  UnchargeDownTo(0);
}

PageVector::Usage PageVector::usage() const {
  Usage u;
  u.charged_pages = charged_pages_;
  if (is_shmem()) {
    u.resident_pages = is_populated() ? slots_.size() : 0;
    return u;
  }
  for (std::uintptr_t v : slots_) {
    if (IsPage(v)) ++u.resident_pages;
    if (IsHandle(v)) ++u.backup_pages;
  }
  if (inflight_.addr != nullptr) u.resident_pages += inflight_.pages();
  u.swap_pages = swap_handles_.size();
  u.clean_pages = clean_pages_;
  return u;
}

void PageVector::ForEachHandle(
    const std::function<void(const BackupStore*, BackupHandle)>& fn) const {
  for (std::uintptr_t v : slots_) {
    if (IsHandle(v)) fn(attached_store_, DecodeHandle(v));
  }
  for (BackupHandle h : swap_handles_) fn(swap_store_, h);
  if (clean_pages_ > 0) {
    for (std::uint64_t h : clean_) {
      if (h != 0) fn(attached_store_, BackupHandle(h));
    }
  }
}

namespace {

Status Inconsistent(std::size_t slot, const char* what) {
  return Status(Errc::kCorrupt,
                "page vector slot " + std::to_string(slot) + ": " + std::string(what));
}

Status Inconsistent(const char* what) {
  return Status(Errc::kCorrupt, "page vector: " + std::string(what));
}

}  // namespace

Status PageVector::CheckChunks(std::size_t from, std::size_t to) const {
  // Whole chunks of consecutive pages: a head of order k, then 2^k - 1 tail pages.
  for (std::size_t i = from; i < to;) {
    const std::uintptr_t v = slots_[i];
    if (!IsHead(v)) return Inconsistent(i, "a page expected to start a chunk is not a chunk head");
    const std::size_t len = std::size_t{1} << OrderOf(v);
    if (i + len > to) return Inconsistent(i, "chunk runs past the end of its range");
    for (std::size_t p = 1; p < len; ++p) {
      const std::uintptr_t t = slots_[i + p];
      if (!IsPage(t) || IsHead(t) || PageOf(t) != PageOf(v) + p * kPageSize) {
        return Inconsistent(i + p, "chunk tail page is missing or not contiguous");
      }
    }
    i += len;
  }
  return Status::Ok();
}

Status PageVector::CheckConsistency() const {
  const std::size_t n = slots_.size();
  if (is_shmem()) {
    if (is_backed_up()) return Inconsistent("a file-backed vector is backed up");
    if (is_populated() != (shmem_ != nullptr && shmem_->mapped())) {
      return Inconsistent("a file-backed vector's mapping does not match its populated flag");
    }
    if (is_populated() && map_base_ != shmem_->data()) {
      return Inconsistent("a file-backed vector's pages are not its file's mapping");
    }
    if (charged_pages_ != 0) return Inconsistent("a file-backed vector is charged");
    return Status::Ok();
  }
  const bool populated = is_populated();
  const bool backed_up = is_backed_up();
  const bool swapped = (flags_ & kPageVectorSwapped) != 0;
  if (populated + backed_up + swapped > 1) {
    return Inconsistent("in more than one of populated, backed up and swapped");
  }
  if (divide_ > n || restored_ > n)
    return Inconsistent("divide or restore progress beyond the end");
  // Between calls no restore chunk is in flight (a failed restore releases it).
  if (inflight_.addr != nullptr || inflight_done_ != 0) {
    return Inconsistent("a restore chunk is in flight between calls");
  }
  const std::uint64_t held = CountResident();
  if (held != resident_pages_) return Inconsistent("resident page count differs from the slots");
  if (clean_pages_ > 0 && attached_store_ == nullptr) return Inconsistent("clean copies, no store");
  std::uint64_t clean = 0;
  for (std::size_t i = 0; i < clean_.size(); ++i) {
    if (clean_[i] == 0) continue;
    ++clean;
    if (!IsPage(slots_[i])) return Inconsistent(i, "a clean copy for a slot holding no page");
  }
  if (clean != clean_pages_) return Inconsistent("clean page count differs from the clean copies");
  const bool external = (flags_ & kPageVectorExternal) != 0;
  if (!external && charged_pages_ != held) {
    return Inconsistent("charged pages differ from the pages held");
  }
  if (external && charged_pages_ != 0) return Inconsistent("an external vector is charged");
  if (is_partial() != (backed_up && held > 0)) {
    return Inconsistent("the partial flag disagrees with a backed-up vector holding pages");
  }
  if (swapped != !swap_handles_.empty() && !(swapped && n == 0)) {
    return Inconsistent("swap handles do not match the swapped flag");
  }
  if (swapped) {
    if (swap_handles_.size() != n)
      return Inconsistent("swapped, with a handle count unlike its size");
    if (swap_store_ == nullptr) return Inconsistent("swapped without a store");
    for (BackupHandle h : swap_handles_) {
      if (!h.valid()) return Inconsistent("swapped, holding an invalid handle");
    }
  }
  if (populated) {
    if (held != n) return Inconsistent("populated but not holding every page");
    return CheckChunks(0, n);
  }
  if (!backed_up) {
    for (std::size_t i = 0; i < n; ++i) {
      if (slots_[i] != 0) return Inconsistent(i, "unpopulated vector holds something");
    }
    return Status::Ok();
  }
  // Backed up: committed restore chunks, then handles, leftover pages (whole or split chunks)
  // and empty (purged) slots.
  UTTM_RETURN_IF_ERROR(CheckChunks(0, restored_));
  for (std::size_t i = restored_; i < n; ++i) {
    const std::uintptr_t v = slots_[i];
    if (v == kRestoredMarker) return Inconsistent(i, "restored marker with no restore in flight");
    if (IsHandle(v) && attached_store_ == nullptr) return Inconsistent(i, "handle without a store");
  }
  return Status::Ok();
}

PageVector::SlotKind PageVector::slot_kind(std::size_t i) const {
  if (i >= slots_.size()) return SlotKind::kEmpty;
  if (is_shmem()) return is_populated() ? SlotKind::kPage : SlotKind::kEmpty;
  const std::uintptr_t v = slots_[i];
  if (v == 0) return SlotKind::kEmpty;
  if (v == kRestoredMarker) return SlotKind::kRestored;
  if (IsHandle(v)) return SlotKind::kHandle;
  return SlotKind::kPage;
}

int PageVector::slot_order(std::size_t i) const {
  if (i >= slots_.size() || !IsHead(slots_[i])) return -1;
  return static_cast<int>(OrderOf(slots_[i]));
}

}  // namespace uttm
