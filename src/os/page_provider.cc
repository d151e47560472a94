// Copyright (c) uttm developers.
//
// The page provider: a buddy allocator of address space over large regions of host memory.
#include "uttm/page_provider.h"

#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older C libraries lack the name
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "base/check.h"
#include "os/asan.h"
#include "uttm/fault_injection.h"
#include "uttm/mutex.h"

namespace uttm {
namespace {

constexpr std::uintptr_t kHugeBytes = kPageSize << kMaxPageOrder;

std::uintptr_t BlockBytes(unsigned order) { return std::uintptr_t{kPageSize} << order; }

struct Region {
  std::byte* base;
  std::size_t bytes;
};

// Faults `bytes` at `p` in, writable, with one madvise(MADV_POPULATE_WRITE) call: far cheaper
// than taking one page fault per 4 KiB later inside a pread or memcpy (about a third less time
// for a 1 MiB read into fresh memory here). Returns 0, or the errno when the kernel could not
// supply the memory. Kernels before 5.14 lack the advice (EINVAL): then nothing is prefaulted.
int Prefault(std::byte* p, std::size_t bytes) {
  static std::atomic<bool> unsupported{false};
  if (ShouldFail(FaultPoint::kPagePrefault)) return ENOMEM;
  if (unsupported.load(std::memory_order_relaxed)) return 0;
  for (;;) {
    if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EINVAL) {
      unsupported.store(true, std::memory_order_relaxed);
      return 0;
    }
    return errno;
  }
}

}  // namespace

struct PageProvider::State {
  PageProviderOptions options;
  Mutex mu;
  std::array<std::set<std::uintptr_t>, kNumPageOrders> free UTTM_GUARDED_BY(mu);
  std::vector<Region> regions UTTM_GUARDED_BY(mu);
  std::uint64_t pages_in_use UTTM_GUARDED_BY(mu) = 0;

  // Maps one more region and adds it to the order-9 free list.
  Status Grow() UTTM_REQUIRES(mu) {
    std::size_t bytes = (options.region_size.value() + kHugeBytes - 1) & ~(kHugeBytes - 1);
    if (bytes == 0) bytes = kHugeBytes;
    try {
      regions.reserve(regions.size() + 1);
    } catch (const std::bad_alloc&) {
      return Status(Errc::kNoMemory, "page provider: no memory to record a new region");
    }
    Result<std::byte*> mapped = options.host_memory->MapRegion(bytes);
    if (!mapped.ok()) {
      return Status(Errc::kNoMemory,
                    "page provider: host memory '" + options.host_memory->name() +
                        "' gave no region: " + std::string(mapped.status().message()));
    }
    if (options.hooks.region_created) {
      Status hooked = options.hooks.region_created(*mapped, bytes);
      if (!hooked.ok()) {
        options.host_memory->UnmapRegion(*mapped, bytes);
        return Status(Errc::kNoMemory, "page provider: the region_created hook refused a region: " +
                                           std::string(hooked.message()));
      }
    }
    const auto base = reinterpret_cast<std::uintptr_t>(*mapped);
    regions.push_back(Region{*mapped, bytes});  // capacity reserved above
    UTTM_ASAN_POISON(reinterpret_cast<void*>(base), bytes);
    // A block the free list cannot take (no heap for its node) stays reserved address space,
    // never handed out; the region is unmapped as a whole at the end.
    bool any = false;
    try {
      for (std::uintptr_t a = base; a < base + bytes; a += kHugeBytes) {
        free[kMaxPageOrder].insert(a);
        any = true;
      }
    } catch (const std::bad_alloc&) {
    }
    if (!any) return Status(Errc::kNoMemory, "page provider: no memory for the free lists");
    return Status();
  }

  // Inserts a free block, merging it with its free buddies.
  void InsertFree(std::uintptr_t addr, unsigned order) UTTM_REQUIRES(mu) {
    while (order < kMaxPageOrder) {
      std::uintptr_t buddy = addr ^ BlockBytes(order);
      auto it = free[order].find(buddy);
      if (it == free[order].end()) break;
      free[order].erase(it);
      addr = std::min(addr, buddy);
      ++order;
    }
    free[order].insert(addr);
  }

  // Adds [addr, addr + pages) to the free lists as maximal aligned blocks.
  void InsertRange(std::uintptr_t addr, std::size_t pages) UTTM_REQUIRES(mu) {
    std::uintptr_t end = addr + pages * kPageSize;
    while (addr < end) {
      unsigned order = kMaxPageOrder;
      while (order > 0 && ((addr & (BlockBytes(order) - 1)) != 0 || addr + BlockBytes(order) > end))
        --order;
      InsertFree(addr, order);
      addr += BlockBytes(order);
    }
  }
};

PageProvider::PageProvider(const PageProviderOptions& options)
    : stats_(options.stats != nullptr ? options.stats : &Stats::Default()),
      state_(std::make_unique<State>()) {
  state_->options = options;
  if (!state_->options.host_memory) {
    state_->options.host_memory = MakeAnonymousHostMemory(options.huge_pages);
  }
}

HostMemory& PageProvider::host_memory() const { return *state_->options.host_memory; }

PageProvider::~PageProvider() {
  MutexLock lock(&state_->mu);
  stats_->GaugeAdd(Stat::kProviderPages, -static_cast<std::int64_t>(state_->pages_in_use));
  for (const Region& r : state_->regions) {
    UTTM_ASAN_UNPOISON(r.base, r.bytes);
    if (state_->options.hooks.region_released)
      state_->options.hooks.region_released(r.base, r.bytes);
    state_->options.host_memory->UnmapRegion(r.base, r.bytes);
  }
}

Result<PageChunk> PageProvider::Allocate(PageOrder order) {
  if (!order.is_valid()) return Status(Errc::kInvalid, "page order above kMaxPageOrder");
  const std::uint64_t pages = order.pages().value();
  std::uintptr_t addr = 0;
  {
    State& s = *state_;
    MutexLock lock(&s.mu);
    const std::uint64_t limit = s.options.byte_limit.value() / kPageSize;
    bool fail =
        ShouldFail(FaultPoint::kPageAlloc) || (limit != 0 && s.pages_in_use + pages > limit);
    unsigned from = order.value();
    Status grown;
    if (!fail) {
      while (from <= kMaxPageOrder && s.free[from].empty()) ++from;
      if (from > kMaxPageOrder) {
        grown = s.Grow();
        fail = !grown.ok();
        from = kMaxPageOrder;
      }
    }
    if (fail) {
      stats_->Add(Stat::kProviderAllocFailures);
      if (!grown.ok()) return grown;
      return Status(Errc::kNoMemory, "page provider: out of memory");
    }
    auto it = s.free[from].begin();
    addr = *it;
    s.free[from].erase(it);
    // Split down: keep the lower half, free the upper halves. An upper half the free list
    // cannot take (no heap for its node) stays reserved address space: it holds no memory
    // (never touched since MADV_DONTNEED or the mmap) and the allocation still succeeds.
    while (from > order.value()) {
      --from;
      try {
        s.free[from].insert(addr + BlockBytes(from));
      } catch (const std::bad_alloc&) {
      }
    }
    s.pages_in_use += pages;
  }
  auto* p = reinterpret_cast<std::byte*>(addr);
  UTTM_ASAN_UNPOISON(p, pages * kPageSize);
  if (state_->options.prefault) {
    const int err = Prefault(p, pages * kPageSize);
    if (err != 0) {
      // The OS could not supply the pages now: give the address range back, report no memory.
      state_->options.host_memory->Discard(p, pages * kPageSize);
      UTTM_ASAN_POISON(p, pages * kPageSize);
      State& s = *state_;
      {
        MutexLock lock(&s.mu);
        try {
          s.InsertFree(addr, order.value());
        } catch (const std::bad_alloc&) {
          // Stays reserved address space (see the split above).
        }
        s.pages_in_use -= pages;
      }
      stats_->Add(Stat::kProviderAllocFailures);
      // Formatted on the stack: this path runs when memory is short.
      char message[128];
      std::snprintf(message, sizeof message,
                    "page provider: the OS could not supply %llu pages (%s)",
                    static_cast<unsigned long long>(pages), std::strerror(err));
      return Status(Errc::kNoMemory, message);
    }
  }
  stats_->GaugeAdd(Stat::kProviderPages, static_cast<std::int64_t>(pages));
  return PageChunk{p, order};
}

void PageProvider::Free(std::span<const PageChunk> chunks) {
  // Sort a batch at a time by address so adjacent chunks become one release range; the batch
  // lives on the stack (freeing must not need the heap).
  constexpr std::size_t kBatch = 64;
  std::array<PageChunk, kBatch> sorted;
  while (!chunks.empty()) {
    const std::size_t m = std::min(kBatch, chunks.size());
    std::copy_n(chunks.begin(), m, sorted.begin());
    chunks = chunks.subspan(m);
    std::sort(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(m),
              [](const PageChunk& a, const PageChunk& b) { return a.addr < b.addr; });
    std::size_t i = 0;
    while (i < m) {
      std::byte* start = sorted[i].addr;
      std::size_t pages = sorted[i].pages();
      std::size_t j = i + 1;
      while (j < m && sorted[j].addr == start + pages * kPageSize) {
        pages += sorted[j].pages();
        ++j;
      }
      FreeRange(start, pages);
      i = j;
    }
  }
}

void PageProvider::FreeRange(std::byte* addr, std::size_t pages) {
  if (pages == 0) return;
  UTTM_DCHECK((reinterpret_cast<std::uintptr_t>(addr) & (kPageSize - 1)) == 0,
              "FreeRange: address not page aligned");
  // Release the memory before the range becomes allocatable again; Discard cannot fail for a
  // valid range, so a failure is a caller bug (it checks).
  state_->options.host_memory->Discard(addr, pages * kPageSize);
  stats_->Add(Stat::kProviderReleaseCalls);
  UTTM_ASAN_POISON(addr, pages * kPageSize);
  {
    State& s = *state_;
    MutexLock lock(&s.mu);
    UTTM_DCHECK(s.pages_in_use >= pages, "FreeRange: more pages freed than handed out");
    s.pages_in_use -= pages;
    try {
      s.InsertRange(reinterpret_cast<std::uintptr_t>(addr), pages);
    } catch (const std::bad_alloc&) {
      // The free lists could not take the range (or a buddy merged into it). Its memory is
      // already given back (MADV_DONTNEED above); only the address range is not handed out
      // again. Freeing never fails.
    }
  }
  stats_->GaugeAdd(Stat::kProviderPages, -static_cast<std::int64_t>(pages));
}

std::uint64_t PageProvider::pages_in_use() const {
  MutexLock lock(&state_->mu);
  return state_->pages_in_use;
}

std::size_t PageProvider::regions() const {
  MutexLock lock(&state_->mu);
  return state_->regions.size();
}

}  // namespace uttm
