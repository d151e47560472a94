// Copyright (c) uttm developers.
//
// page_pool.h: pools of page chunks per caching mode and order (TTM's ttm_pool).
//
// Changing the caching of pages is expensive, so chunks that are not kCached are parked in a pool
// type (caching x order) when a page vector gives them back, and handed out again to vectors of
// the same caching. As on x86 TTM, kCached chunks are not pooled unless `pool_cached` is set
// (see docs/pages.md). Every chunk given to a pool is CLEARED (memset 0) first, so no byte of one
// buffer ever reaches another. After each give-back the pools are trimmed round-robin over the
// pool types until they hold at most `page_pool_size` pages. Chunks leaving a pool for the OS are
// made kCached first (CachingHook) and released through the PageProvider.
//
// Recycling: pages a page vector just gave up to a backup store (their contents are safe in the
// store) may be kept, uncleared and kCached, up to `recycle_pages`, for the next restore: a
// restore overwrites every byte of its chunks anyway, so handing it these pages saves the OS the
// zeroing of fresh ones (the clear_page of a fault on new memory, which otherwise costs a restore
// more than its read) and the release and fault-in calls. Only AllocateForOverwrite hands them
// out, to callers that overwrite every byte before anyone reads one; no byte of one buffer ever
// becomes visible in another. They count in pooled_pages() and "pool.pages" and go to the OS first
// when the pool is shrunk or trimmed. The kernel's allocator likewise gives a swap-in page that
// is about to be overwritten without zeroing it (only __GFP_ZERO allocations clear).
//
// The pool registers nothing by itself: shrinker() is its Shrinker ("uttm-pool", seeks 1,
// batch 160 pages) for whoever runs reclaim. Count = pooled pages (kShrinkEmpty when none);
// Scan frees up to nr_to_scan pages to the OS.
//
// Statistics: the pool counts its hits ("pool.hits") and pooled pages ("pool.pages", with its
// peak) with plain integers under its own lock and reports them as a StatSource of its Stats, so a
// take or give costs no atomic beyond the lock itself.
//
// Thread-safety: all methods are thread-safe (one mutex; clearing and OS release run outside it).
#ifndef UTTM_PAGE_POOL_H_
#define UTTM_PAGE_POOL_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "uttm/caching.h"
#include "uttm/caching_hook.h"
#include "uttm/export.h"
#include "uttm/mutex.h"
#include "uttm/page_provider.h"
#include "uttm/reclaim_hook.h"
#include "uttm/shrinker.h"
#include "uttm/stat_source.h"
#include "uttm/stats.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm {

struct PagePoolOptions {
  // Most pages the pools keep (TTM's page_pool_size); give-back trims above it.
  PageCount page_pool_size = PageCount(std::uint64_t{1} << 18);
  // Also pool kCached chunks (TTM on x86 does not).
  bool pool_cached = false;
  // Most pages kept for recycling (see the file comment; 0: none). 16 MiB: the pages of a few
  // large objects between their backup and the next restore.
  PageCount recycle_pages = PageCount(4096);
};

// A chunk together with the caching it currently has.
struct CachedChunk {
  PageChunk chunk;
  Caching caching = Caching::kCached;
};

class UTTM_EXPORT PagePool final : private StatSource {
 public:
  // `provider` and `hook` must outlive the pool. `stats` null = Stats::Default().
  PagePool(PageProvider* provider, CachingHook* hook, Stats* stats,
           const PagePoolOptions& options = {});
  ~PagePool();  // Fini(): every pooled chunk goes back to the OS.
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  // True when chunks of this caching are kept in pool types.
  bool IsPooled(Caching caching) const;

  // Takes a chunk of exactly (caching, order) from its pool type; nullopt if there is none.
  std::optional<PageChunk> Take(Caching caching, PageOrder order);

  // One chunk for a vector of `caching`, trying orders from `max_order` down to 0 (TTM's order
  // descent): at each order the pool type first, then the provider (whose chunks are kCached;
  // once the provider served an order the pools are not tried again at that order). Fresh and
  // pooled chunks are zero-filled. When the provider refuses every order, a recycled chunk is
  // cleared and used. kNoMemory when even order 0 fails; kInvalid for a bad order.
  Result<CachedChunk> Allocate(Caching caching, PageOrder max_order);

  // Gives back chunks that currently have `caching`: pooled cachings are cleared and kept (then
  // the pools are trimmed to page_pool_size), the rest go back to the OS. Never fails and never
  // throws: a chunk the pool cannot record (its list could not grow) goes back to the OS.
  void Give(std::span<const PageChunk> chunks, Caching caching);
  // Returns chunks straight to the OS, bypassing the pools (purge); made kCached first.
  void Release(std::span<const PageChunk> chunks, Caching caching);

  // Takes back `pages` kCached pages at `addr` (page aligned, handed out by the provider, part of
  // one or more chunks) whose contents were saved elsewhere: kept uncleared for
  // AllocateForOverwrite as far as recycle_pages allows, the rest released to the OS. Never fails.
  void Recycle(std::byte* addr, std::size_t pages);
  // A chunk whose every byte the caller overwrites before reading any: a recycled chunk (kCached,
  // uncleared) of the largest order up to `max_order` there is, else Allocate(caching, max_order).
  // *recycled (if not null) tells which: only a fresh or pooled chunk is zero-filled.
  Result<CachedChunk> AllocateForOverwrite(Caching caching, PageOrder max_order, bool* recycled);
  std::uint64_t recycled_pages() const;

  // Frees up to about `pages` pooled pages to the OS, recycled ones first, then round-robin over
  // the pool types, one chunk per type per round. Returns the pages freed.
  std::uint64_t Shrink(std::uint64_t pages);
  // Empties every pool type (ttm_pool_fini).
  void Fini();

  std::uint64_t pooled_pages() const;
  std::size_t chunk_count(Caching caching, PageOrder order) const;
  PageCount page_pool_size() const;
  void set_page_pool_size(PageCount pages);

  Shrinker& shrinker() { return *shrinker_; }
  PageProvider& provider() { return *provider_; }
  // Direct reclaim: when no chunk of any order can be had, Allocate calls `hook` (direct
  // context, no pool lock held) and, if it freed pages, retries once. Null: none.
  void set_reclaim_hook(ReclaimHook* hook) { reclaim_hook_.store(hook); }
  CachingHook& caching_hook() { return *hook_; }

 private:
  class PoolShrinker;
  static constexpr std::size_t kNumTypes = kNumCachingModes * kNumPageOrders;
  static std::size_t TypeIndex(Caching c, unsigned order) {
    return static_cast<std::size_t>(c) * kNumPageOrders + order;
  }
  // Chunks released to the OS per critical section: the release path needs no heap.
  static constexpr std::size_t kReleaseBatch = 64;
  // Releases pooled chunks to the OS in batches: up to `pages` pages, or, when `excess_only`,
  // what is above page_pool_size. Returns the pages freed.
  std::uint64_t ReleaseFromPool(std::uint64_t pages, bool excess_only);
  // Pops up to `pages` worth of chunks round-robin into out[0..cap). Returns how many.
  std::size_t PopForShrink(std::uint64_t pages, CachedChunk* out, std::size_t cap)
      UTTM_REQUIRES(mu_);
  // At most kReleaseBatch chunks.
  void ReleaseToOs(std::span<const CachedChunk> chunks);
  // The largest recycled chunk of order <= max_order (uncleared, unpoisoned), if any.
  std::optional<PageChunk> TakeRecycled(PageOrder max_order);
  // Releases up to `pages` recycled pages to the OS (all with UINT64_MAX). Returns the pages freed.
  std::uint64_t ReleaseRecycled(std::uint64_t pages);
  // StatSource: hits_, pooled_pages_ and peak_pooled_pages_.
  void CollectStats(StatValues* values) const override;
  void ResetStats() override;

  PageProvider* provider_;
  std::atomic<ReclaimHook*> reclaim_hook_{nullptr};
  CachingHook* hook_;
  Stats* stats_;
  const bool pool_cached_;
  mutable Mutex mu_;
  std::array<std::vector<std::byte*>, kNumTypes> types_ UTTM_GUARDED_BY(mu_);
  std::uint64_t pooled_pages_ UTTM_GUARDED_BY(mu_) = 0;
  std::uint64_t peak_pooled_pages_ UTTM_GUARDED_BY(mu_) = 0;
  std::uint64_t hits_ UTTM_GUARDED_BY(mu_) = 0;
  std::uint64_t page_pool_size_ UTTM_GUARDED_BY(mu_);
  std::size_t cursor_ UTTM_GUARDED_BY(mu_) = 0;
  // Recycled chunks by order (see the file comment), and their pages.
  const std::uint64_t recycle_limit_;
  std::array<std::vector<std::byte*>, kNumPageOrders> recycled_ UTTM_GUARDED_BY(mu_);
  std::uint64_t recycled_pages_ UTTM_GUARDED_BY(mu_) = 0;
  std::uint64_t recycle_hits_ UTTM_GUARDED_BY(mu_) = 0;
  std::unique_ptr<Shrinker> shrinker_;
};

}  // namespace uttm

#endif  // UTTM_PAGE_POOL_H_
