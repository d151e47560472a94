// Copyright (c) uttm developers.
#include "uttm/page_pool.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <new>

#include "base/check.h"
#include "os/asan.h"

namespace uttm {

// Pages per scan: the average pool chunk times the number of orders, as TTM's pool shrinker.
inline constexpr std::uint64_t kPoolShrinkBatch =
    (std::uint64_t{1} << (kMaxPageOrder / 2)) * kNumPageOrders;

class PagePool::PoolShrinker final : public Shrinker {
 public:
  explicit PoolShrinker(PagePool* pool) : pool_(pool) {}
  std::uint64_t Count(const ShrinkControl&) override {
    std::uint64_t n = pool_->pooled_pages();
    return n == 0 ? kShrinkEmpty : n;
  }
  std::uint64_t Scan(ShrinkControl& sc) override {
    pool_->stats_->Add(Stat::kShrinkerScans);
    std::uint64_t freed = 0;
    while (freed < sc.nr_to_scan) {
      std::uint64_t n = pool_->Shrink(sc.nr_to_scan - freed);
      if (n == 0) break;
      freed += n;
    }
    sc.nr_scanned = freed;
    pool_->stats_->Add(Stat::kShrinkerPagesFreed, freed);
    return freed == 0 ? kShrinkStop : freed;
  }
  const char* name() const override { return "uttm-pool"; }
  int seeks() const override { return 1; }
  std::uint64_t batch() const override { return kPoolShrinkBatch; }

 private:
  PagePool* pool_;
};

PagePool::PagePool(PageProvider* provider, CachingHook* hook, Stats* stats,
                   const PagePoolOptions& options)
    : provider_(provider),
      hook_(hook),
      stats_(stats != nullptr ? stats : &Stats::Default()),
      pool_cached_(options.pool_cached),
      page_pool_size_(options.page_pool_size.value()),
      recycle_limit_(options.recycle_pages.value()),
      shrinker_(std::make_unique<PoolShrinker>(this)) {
  stats_->AddSource(this);
}

PagePool::~PagePool() {
  Fini();
  stats_->RemoveSource(this);
}

bool PagePool::IsPooled(Caching caching) const {
  return caching != Caching::kCached || pool_cached_;
}

std::optional<PageChunk> PagePool::Take(Caching caching, PageOrder order) {
  if (!order.is_valid() || !IsPooled(caching)) return std::nullopt;
  std::byte* addr;
  {
    MutexLock lock(&mu_);
    auto& list = types_[TypeIndex(caching, order.value())];
    if (list.empty()) return std::nullopt;
    addr = list.back();
    list.pop_back();
    pooled_pages_ -= order.pages().value();
    ++hits_;
  }
  return PageChunk{addr, order};
}

Result<CachedChunk> PagePool::Allocate(Caching caching, PageOrder max_order) {
  if (!max_order.is_valid()) return Status(Errc::kInvalid, "page order above kMaxPageOrder");
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (unsigned order = max_order.value() + 1; order-- > 0;) {
      if (auto chunk = Take(caching, PageOrder(order))) return CachedChunk{*chunk, caching};
      Result<PageChunk> fresh = provider_->Allocate(PageOrder(order));
      if (fresh.ok()) {
        stats_->Add(Stat::kPoolMisses);
        return CachedChunk{*fresh, Caching::kCached};
      }
    }
    // The provider is out (its byte limit): recycled pages are memory already ours. Cleared,
    // they serve like any other chunk.
    if (std::optional<PageChunk> r = TakeRecycled(max_order)) {
      std::memset(r->addr, 0, r->bytes());
      return CachedChunk{*r, Caching::kCached};
    }
    // Direct reclaim, then one more try.
    ReclaimHook* hook = reclaim_hook_.load();
    if (attempt > 0 || hook == nullptr) break;
    const ReclaimContext direct{.may_fs = true, .may_io = true, .background = false};
    if (hook->ReclaimPages(max_order.pages().value(), direct) == 0) break;
  }
  return Status(Errc::kNoMemory, "page pool: no chunk of any order available");
}

void PagePool::Give(std::span<const PageChunk> chunks, Caching caching) {
  if (chunks.empty()) return;
  if (!IsPooled(caching)) {
    Release(chunks, caching);
    return;
  }
  // Clear outside the lock: nobody else can see these chunks yet.
  for (const PageChunk& c : chunks) std::memset(c.addr, 0, c.bytes());
  std::size_t kept = 0;
  bool over = false;
  {
    MutexLock lock(&mu_);
    std::uint64_t pages = 0;
    try {
      for (; kept < chunks.size(); ++kept) {
        types_[TypeIndex(caching, chunks[kept].order.value())].push_back(chunks[kept].addr);
        pages += chunks[kept].pages();
      }
    } catch (const std::bad_alloc&) {
      // A pool list could not grow: the chunks not recorded go back to the OS below.
    }
    pooled_pages_ += pages;
    peak_pooled_pages_ = std::max(peak_pooled_pages_, pooled_pages_);
    over = pooled_pages_ > page_pool_size_;
  }
  if (kept < chunks.size()) Release(chunks.subspan(kept), caching);
  // Trim right away (TTM: shrink while above page_pool_size).
  if (over) ReleaseFromPool(0, /*excess_only=*/true);
}

void PagePool::Release(std::span<const PageChunk> chunks, Caching caching) {
  if (chunks.empty()) return;
  if (caching != Caching::kCached) hook_->SetCaching(chunks, caching, Caching::kCached);
  provider_->Free(chunks);
}

void PagePool::ReleaseToOs(std::span<const CachedChunk> chunks) {
  UTTM_DCHECK(chunks.size() <= kReleaseBatch, "PagePool::ReleaseToOs: batch too large");
  std::uint64_t pages = 0;
  std::array<PageChunk, kReleaseBatch> by_caching;
  for (unsigned c = 0; c < kNumCachingModes; ++c) {
    std::size_t n = 0;
    for (const CachedChunk& cc : chunks) {
      if (static_cast<unsigned>(cc.caching) == c) by_caching[n++] = cc.chunk;
    }
    for (std::size_t i = 0; i < n; ++i) pages += by_caching[i].pages();
    Release(std::span<const PageChunk>(by_caching.data(), n), static_cast<Caching>(c));
  }
  if (pages != 0) stats_->Add(Stat::kPoolPagesTrimmed, pages);
}

std::size_t PagePool::PopForShrink(std::uint64_t pages, CachedChunk* out, std::size_t cap) {
  std::uint64_t got = 0;
  std::size_t n = 0;
  std::size_t empty_in_a_row = 0;
  while (n < cap && got < pages && pooled_pages_ > 0 && empty_in_a_row < kNumTypes) {
    std::size_t t = cursor_;
    cursor_ = (cursor_ + 1) % kNumTypes;
    auto& list = types_[t];
    if (list.empty()) {
      ++empty_in_a_row;
      continue;
    }
    empty_in_a_row = 0;
    unsigned order = static_cast<unsigned>(t % kNumPageOrders);
    out[n++] = CachedChunk{PageChunk{list.back(), PageOrder(order)},
                           static_cast<Caching>(t / kNumPageOrders)};
    list.pop_back();
    pooled_pages_ -= std::uint64_t{1} << order;
    got += std::uint64_t{1} << order;
  }
  return n;
}

std::uint64_t PagePool::ReleaseFromPool(std::uint64_t pages, bool excess_only) {
  std::uint64_t freed = 0;
  std::array<CachedChunk, kReleaseBatch> batch;
  for (;;) {
    std::size_t n = 0;
    {
      MutexLock lock(&mu_);
      std::uint64_t want = pages - freed;
      if (excess_only) want = pooled_pages_ > page_pool_size_ ? pooled_pages_ - page_pool_size_ : 0;
      if (want == 0) break;
      n = PopForShrink(want, batch.data(), batch.size());
    }
    if (n == 0) break;
    for (std::size_t i = 0; i < n; ++i) freed += batch[i].chunk.pages();
    ReleaseToOs(std::span<const CachedChunk>(batch.data(), n));
    if (!excess_only && freed >= pages) break;
  }
  return freed;
}

std::uint64_t PagePool::Shrink(std::uint64_t pages) {
  const std::uint64_t recycled = ReleaseRecycled(pages);
  if (recycled >= pages) return recycled;
  return recycled + ReleaseFromPool(pages - recycled, /*excess_only=*/false);
}

void PagePool::Fini() {
  ReleaseRecycled(UINT64_MAX);
  ReleaseFromPool(UINT64_MAX, /*excess_only=*/false);
}

void PagePool::Recycle(std::byte* addr, std::size_t pages) {
  // Split into naturally aligned blocks (the buddy view of the range), each a chunk of its order.
  while (pages > 0) {
    const auto index = reinterpret_cast<std::uintptr_t>(addr) >> kPageShift;
    unsigned order = kMaxPageOrder;
    while (order > 0 && ((index & ((std::uintptr_t{1} << order) - 1)) != 0 ||
                         (std::size_t{1} << order) > pages)) {
      --order;
    }
    const std::size_t n = std::size_t{1} << order;
    // Poisoned before another thread can take it from the list (it unpoisons what it takes):
    // nobody may touch the block until it is handed out again.
    UTTM_ASAN_POISON(addr, n * kPageSize);
    bool kept = false;
    {
      MutexLock lock(&mu_);
      if (recycled_pages_ + n <= recycle_limit_) {
        try {
          recycled_[order].push_back(addr);
          recycled_pages_ += n;
          peak_pooled_pages_ = std::max(peak_pooled_pages_, pooled_pages_ + recycled_pages_);
          kept = true;
        } catch (const std::bad_alloc&) {
          // The list could not grow: the block goes back to the OS below.
        }
      }
    }
    if (!kept) provider_->FreeRange(addr, n);
    addr += n * kPageSize;
    pages -= n;
  }
}

std::optional<PageChunk> PagePool::TakeRecycled(PageOrder max_order) {
  std::byte* addr = nullptr;
  unsigned order = max_order.value() + 1;
  {
    MutexLock lock(&mu_);
    if (recycled_pages_ == 0) return std::nullopt;
    while (order-- > 0) {
      if (!recycled_[order].empty()) {
        addr = recycled_[order].back();
        recycled_[order].pop_back();
        recycled_pages_ -= std::uint64_t{1} << order;
        break;
      }
    }
  }
  if (addr == nullptr) return std::nullopt;
  UTTM_ASAN_UNPOISON(addr, (std::size_t{1} << order) * kPageSize);
  return PageChunk{addr, PageOrder(order)};
}

Result<CachedChunk> PagePool::AllocateForOverwrite(Caching caching, PageOrder max_order,
                                                   bool* recycled) {
  if (!max_order.is_valid()) return Status(Errc::kInvalid, "page order above kMaxPageOrder");
  if (recycled != nullptr) *recycled = false;
  std::optional<PageChunk> r = TakeRecycled(max_order);
  if (!r) return Allocate(caching, max_order);
  {
    MutexLock lock(&mu_);
    ++recycle_hits_;
  }
  if (recycled != nullptr) *recycled = true;
  return CachedChunk{*r, Caching::kCached};
}

std::uint64_t PagePool::ReleaseRecycled(std::uint64_t pages) {
  std::uint64_t freed = 0;
  while (freed < pages) {
    std::optional<PageChunk> c = TakeRecycled(PageOrder(kMaxPageOrder));
    if (!c) break;
    provider_->FreeRange(c->addr, c->pages());
    freed += c->pages();
  }
  if (freed != 0) stats_->Add(Stat::kPoolPagesTrimmed, freed);
  return freed;
}

std::uint64_t PagePool::recycled_pages() const {
  MutexLock lock(&mu_);
  return recycled_pages_;
}

void PagePool::CollectStats(StatValues* values) const {
  MutexLock lock(&mu_);
  values->counter[static_cast<unsigned>(Stat::kPoolHits)] += hits_;
  values->counter[static_cast<unsigned>(Stat::kPoolRecycleHits)] += recycle_hits_;
  values->current[static_cast<unsigned>(Stat::kPoolPages)] +=
      static_cast<std::int64_t>(pooled_pages_ + recycled_pages_);
  values->peak[static_cast<unsigned>(Stat::kPoolPages)] +=
      static_cast<std::int64_t>(peak_pooled_pages_);
}

void PagePool::ResetStats() {
  MutexLock lock(&mu_);
  hits_ = 0;
  recycle_hits_ = 0;
  peak_pooled_pages_ = pooled_pages_ + recycled_pages_;
}

std::uint64_t PagePool::pooled_pages() const {
  MutexLock lock(&mu_);
  return pooled_pages_ + recycled_pages_;
}

std::size_t PagePool::chunk_count(Caching caching, PageOrder order) const {
  if (!order.is_valid()) return 0;
  MutexLock lock(&mu_);
  return types_[TypeIndex(caching, order.value())].size();
}

PageCount PagePool::page_pool_size() const {
  MutexLock lock(&mu_);
  return PageCount(page_pool_size_);
}

void PagePool::set_page_pool_size(PageCount pages) {
  {
    MutexLock lock(&mu_);
    page_pool_size_ = pages.value();
  }
  ReleaseFromPool(0, /*excess_only=*/true);
}

}  // namespace uttm
