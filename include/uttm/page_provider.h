// Copyright (c) uttm developers.
//
// page_provider.h: where page memory comes from (the kernel's page allocator for TTM).
//
// The provider reserves large virtual regions once (from a HostMemory, host_memory.h: anonymous
// MAP_NORESERVE memory by default, 2 MiB aligned so order-9 chunks can be backed by transparent
// huge pages) and carves chunks of order 0..9 out of them with a buddy allocator of address
// space. Freed chunks are returned to the OS with HostMemory::Discard (madvise(MADV_DONTNEED))
// over whole address ranges (adjacent chunks of one call are merged into one range), so RSS
// really drops while the mapping stays one region. Memory handed out is always zero-filled: fresh
// memory and memory released with Discard read as zeros. The options' hooks see every region
// mapped and unmapped.
//
// Pages not handed out are poisoned for AddressSanitizer, so touching a freed page crashes in
// ASan builds. The `provider.pages` gauge of the given Stats counts pages handed out.
//
// Errors: Allocate returns kNoMemory when the fault point `page.alloc` fires, when the byte limit
// would be exceeded, when no new region can be reserved, or when the OS cannot supply the pages
// of a prefaulted chunk (a failing region hook or HostMemory is named in the message). kInvalid for
// a bad order.
//
// Thread-safety: all methods are thread-safe (one internal mutex; madvise runs outside it).
#ifndef UTTM_PAGE_PROVIDER_H_
#define UTTM_PAGE_PROVIDER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "uttm/export.h"
#include "uttm/host_memory.h"
#include "uttm/stats.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm {

// A run of 2^order contiguous 4 KiB pages, aligned to its own size.
struct PageChunk {
  std::byte* addr = nullptr;
  PageOrder order;

  std::size_t bytes() const { return static_cast<std::size_t>(order.bytes().value()); }
  std::size_t pages() const { return static_cast<std::size_t>(order.pages().value()); }
  friend bool operator==(const PageChunk&, const PageChunk&) = default;
};

struct PageProviderOptions {
  // Size of each reserved virtual region (rounded up to 2 MiB). Address space only.
  Bytes region_size = Bytes(std::uint64_t{1} << 30);
  // Upper bound on bytes handed out at once (0 = no limit).
  Bytes byte_limit{};
  // Where regions come from; null: MakeAnonymousHostMemory(huge_pages).
  std::shared_ptr<HostMemory> host_memory = nullptr;
  // Called for every region mapped and unmapped (see host_memory.h).
  HostMemoryHooks hooks = {};
  // Ask for transparent huge pages on the regions (MADV_HUGEPAGE) of the default host memory.
  bool huge_pages = true;
  // Fault every chunk in when it is handed out (MADV_POPULATE_WRITE), as the kernel's page
  // allocator hands out real pages: one call instead of a page fault per 4 KiB on first touch,
  // and a failure to get the memory is an error of Allocate (kNoMemory), not a later fault.
  bool prefault = true;
  // Where the `provider.*` counters go (null: Stats::Default()).
  Stats* stats = nullptr;
};

class UTTM_EXPORT PageProvider {
 public:
  explicit PageProvider(const PageProviderOptions& options = {});
  ~PageProvider();  // Unmaps every region. Chunks still handed out become invalid.
  PageProvider(const PageProvider&) = delete;
  PageProvider& operator=(const PageProvider&) = delete;

  // Hands out one zero-filled chunk of `order` pages. Errors: kInvalid, kNoMemory (see above).
  Result<PageChunk> Allocate(PageOrder order);

  // Gives chunks back. Adjacent chunks are released with one madvise call. REQUIRES: each chunk
  // was handed out by this provider and is not used afterwards.
  void Free(std::span<const PageChunk> chunks);
  void Free(const PageChunk& chunk) { Free(std::span<const PageChunk>(&chunk, 1)); }
  // Gives back `pages` contiguous 4 KiB pages at `addr` (part of one or more chunks that were
  // split by the caller, e.g. for backup). REQUIRES: page aligned, handed out by this provider.
  void FreeRange(std::byte* addr, std::size_t pages);

  // Pages handed out right now, and regions reserved so far.
  std::uint64_t pages_in_use() const;
  std::size_t regions() const;
  Stats& stats() const { return *stats_; }
  // The source of this provider's regions.
  HostMemory& host_memory() const;

 private:
  struct State;
  Stats* stats_;
  std::unique_ptr<State> state_;
};

}  // namespace uttm

#endif  // UTTM_PAGE_PROVIDER_H_
