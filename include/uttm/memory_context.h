// Copyright (c) uttm developers.
//
// memory_context.h: everything page vectors share (TTM's ttm_global plus the pool).
//
// A MemoryContext owns the page provider, the caching hook, the page pools and the global page
// accounting: pages held by populated, non-EXTERNAL page vectors count against `pages_limit`, and
// those of dma32 vectors also against `dma32_pages_limit`. Defaults follow TTM: pages_limit and
// page_pool_size are half of RAM, dma32_pages_limit is min(half of RAM, 2 GiB).
//
// Over-limit hook: when a populate would exceed a limit, the context calls the optional
// `over_limit` callback repeatedly (this is where the reclaim code plugs in its watermark
// swapout). It returns the pages it freed, 0 when it cannot free more, or an error that is passed
// to the caller. Unlike TTM (which then allocates anyway), uttm treats the limits as hard: if the
// callback frees nothing (or there is none) while still over the limit, Charge calls the direct
// reclaim hook (if set) and retries while it frees pages (at most 16 rounds; one round when the
// caller's context sets gfp_retry_mayfail). When neither frees anything, a charge still looks
// again while other threads change the accounting (they free, or hold for a moment what could
// be freed: up to 64 times), waits while another thread's reclaim pass runs (the hook's
// reclaims_in_flight; up to 2 s) and pauses up to 20 x 1 ms before it fails with kNoMemory, so a
// workload that fits never fails because two threads charged at once (not with
// gfp_retry_mayfail). A full backup store (kNoSpace from the callback) is returned as such.
// With soft_pages_limit the charge goes over pages_limit instead of waiting and failing (TTM's
// behaviour). A charge waiting for others stops with kInterrupted when the caller's interruptible
// context is asked to stop.
// Both run without any context lock held.
//
// Headroom (set_headroom, typically a PressureHeadroom over the process's memory cgroup): once a
// charge is within the page limits, it must also fit below the outside limit. When the headroom
// is short, Charge runs direct reclaim for the shortfall plus the charge and asks again with a
// fresh reading, up to 16 rounds (one with gfp_retry_mayfail; waiting while other threads'
// reclaim passes run, as above); then it fails with kNoMemory naming the limit, so that an
// allocation burst ends in an error the caller sees rather than in the kernel's OOM killer.
//
// Direct reclaim hook (set_reclaim_hook, typically a Reclaimer): called with a direct context
// (background = false) when a charge would pass a limit (target: the pages over it) and, through
// the pool, when no page chunk can be had from the provider; the allocation is then retried.
//
// No ambient globals: Default() is an optional process-wide context built on first use.
// Thread-safety: all methods are thread-safe. set_over_limit must not race with Charge.
#ifndef UTTM_MEMORY_CONTEXT_H_
#define UTTM_MEMORY_CONTEXT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "uttm/caching_hook.h"
#include "uttm/export.h"
#include "uttm/headroom.h"
#include "uttm/host_memory.h"
#include "uttm/mutex.h"
#include "uttm/operation_context.h"
#include "uttm/page_pool.h"
#include "uttm/page_provider.h"
#include "uttm/reclaim_hook.h"
#include "uttm/stats.h"
#include "uttm/status.h"
#include "uttm/units.h"
#include "uttm/user_faults.h"

namespace uttm {

struct MemoryContextOptions {
  // 0 = the TTM default (see the file comment).
  PageCount pages_limit{};
  PageCount dma32_pages_limit{};
  PageCount page_pool_size{};
  // Pages the pool keeps uncleared between a backup and the next restore (PagePoolOptions).
  PageCount recycle_pages = PagePoolOptions{}.recycle_pages;
  // TTM's soft pages_limit: a charge that the over-limit callback and direct reclaim cannot bring
  // under pages_limit goes over it anyway (counted in charge.over_soft_limit), so an object
  // larger than the limit can be populated. False: the limit is hard (kNoMemory). The dma32
  // limit and the headroom stay hard either way.
  bool soft_pages_limit = false;
  bool pool_cached = false;
  // Provider byte limit (0 = none) and region size.
  Bytes provider_byte_limit{};
  Bytes provider_region_size = Bytes(std::uint64_t{1} << 30);
  // Where the provider's regions come from (null: anonymous memory) and hooks on every region
  // (host_memory.h): how a device backend supplies registered, pinned or node-local memory.
  std::shared_ptr<HostMemory> host_memory = nullptr;
  HostMemoryHooks host_memory_hooks = {};
  // Caching transitions (null = an owned default CachingHook that only counts).
  CachingHook* caching_hook = nullptr;
  // Counters and gauges (null = Stats::Default()).
  Stats* stats = nullptr;
};

// Something that draws pages from a MemoryContext and registers there, so that walks over the
// context (the watermark swapout, tt_shrink, invariant checks) find it: the device layer's
// Device. The context never owns or calls a user; it only keeps the list.
class UTTM_EXPORT MemoryUser {
 protected:
  ~MemoryUser() = default;
};

class UTTM_EXPORT MemoryContext {
 public:
  // Called while a charge is over a limit: returns pages freed (0 = cannot free more) or an error.
  using OverLimitFn = std::function<Result<std::uint64_t>(const OperationContext&)>;

  explicit MemoryContext(const MemoryContextOptions& options = {});
  ~MemoryContext();
  MemoryContext(const MemoryContext&) = delete;
  MemoryContext& operator=(const MemoryContext&) = delete;

  // The optional process-wide context (created on first use, never destroyed).
  static MemoryContext& Default();

  PageProvider& provider() { return provider_; }
  PagePool& pool() { return *pool_; }
  CachingHook& caching_hook() { return *hook_; }
  Stats& stats() { return *stats_; }

  // Accounts `pages` (also against the dma32 limit if `dma32`), calling over_limit while above a
  // limit. kNoMemory when still over; the charge is then undone.
  Status Charge(PageCount pages, bool dma32, const OperationContext& ctx);
  void Uncharge(PageCount pages, bool dma32);

  // Memory uttm holds outside page vectors (the slabs of a compressed RAM store): counted
  // against pages_limit, so a limit covers it too, but never reclaims, waits or fails, since it
  // grows only while a backup frees more than it takes. Not in pages_allocated() (which stays the
  // page vectors' pages, as the invariant checker compares); in over_limit(), OverBy() and
  // accounted_pages(). Gauge pages.external.
  void ChargeExternal(PageCount pages);
  void UnchargeExternal(PageCount pages);
  PageCount external_pages() const { return PageCount(external_pages_.load()); }
  // pages_allocated() + external_pages(): what pages_limit is compared with.
  PageCount accounted_pages() const {
    return PageCount(pages_allocated_.load() + external_pages_.load());
  }

  void set_over_limit(OverLimitFn fn) { over_limit_ = std::move(fn); }
  // Installs (null: removes) the outside limit every charge must also fit below. Not owned; it
  // must outlive its installation. Thread-safe.
  void set_headroom(Headroom* headroom) { headroom_.store(headroom); }
  Headroom* headroom() const { return headroom_.load(); }
  // Installs (null: removes) the direct-reclaim hook, also for the pool. Not owned; it must
  // outlive its installation. Thread-safe.
  void set_reclaim_hook(ReclaimHook* hook);
  ReclaimHook* reclaim_hook() const { return reclaim_hook_.load(); }

  PageCount pages_allocated() const { return PageCount(pages_allocated_.load()); }
  PageCount dma32_pages_allocated() const { return PageCount(dma32_pages_allocated_.load()); }
  PageCount pages_limit() const { return PageCount(pages_limit_.load()); }
  PageCount dma32_pages_limit() const { return PageCount(dma32_pages_limit_.load()); }
  void set_pages_limit(PageCount p) { pages_limit_.store(p.value()); }
  void set_dma32_pages_limit(PageCount p) { dma32_pages_limit_.store(p.value()); }
  bool soft_pages_limit() const { return soft_pages_limit_.load(); }
  void set_soft_pages_limit(bool soft) { soft_pages_limit_.store(soft); }
  // --- Users (TTM's device list, kept per context instead of per process, so two runtimes never
  // see each other's devices). Thread-safe. ForEachUser runs `fn` on a snapshot of the list with
  // no lock held, so `fn` may block (wait for a GPU, move an object whose populate swaps out
  // through this very list); the users it visits are held: RemoveUser of one waits until no walk
  // visits it. So `fn` must not remove a user itself (that would wait for its own walk).
  void AddUser(MemoryUser* user) UTTM_EXCLUDES(users_mu_);
  void RemoveUser(MemoryUser* user) UTTM_EXCLUDES(users_mu_);
  void ForEachUser(const std::function<void(MemoryUser&)>& fn) UTTM_EXCLUDES(users_mu_);
  // Moves `user` to the back of the list (round robin: the one that made progress goes last).
  void RotateUserToBack(MemoryUser* user) UTTM_EXCLUDES(users_mu_);

  // The context's userfaultfd service (user_faults.h), shared by the restore-on-touch mappings
  // of its objects (mapping.h): opened at the first call. Where the kernel refuses userfaultfd,
  // kNotSupported with the reason, the same answer at every later call, and the reason said once
  // on stderr. Thread-safe.
  Result<UserFaults*> user_faults() UTTM_EXCLUDES(faults_mu_);

  // True when the accounted pages exceed either limit.
  bool over_limit() const;
  // Pages above the tighter of the two limits (0 when under both).
  std::uint64_t OverBy() const;

 private:
  Stats* stats_;
  std::unique_ptr<CachingHook> owned_hook_;
  CachingHook* hook_;
  PageProvider provider_;
  std::unique_ptr<PagePool> pool_;
  std::atomic<std::uint64_t> pages_allocated_{0};
  std::atomic<std::uint64_t> dma32_pages_allocated_{0};
  std::atomic<std::uint64_t> external_pages_{0};
  std::atomic<std::uint64_t> pages_limit_;
  std::atomic<std::uint64_t> dma32_pages_limit_;
  std::atomic<bool> soft_pages_limit_{false};
  OverLimitFn over_limit_;
  std::atomic<ReclaimHook*> reclaim_hook_{nullptr};
  std::atomic<Headroom*> headroom_{nullptr};
  struct UserEntry {
    MemoryUser* user;
    int walkers;  // ForEachUser calls holding it now
  };
  Mutex users_mu_;
  CondVar users_cv_;
  std::list<UserEntry> users_ UTTM_GUARDED_BY(users_mu_);
  Mutex faults_mu_;
  bool faults_opened_ UTTM_GUARDED_BY(faults_mu_) = false;
  Status faults_refused_ UTTM_GUARDED_BY(faults_mu_);
  std::unique_ptr<UserFaults> faults_ UTTM_GUARDED_BY(faults_mu_);

  // The message of a charge that stays over a limit (naming a compressed store's share).
  std::string LimitMessage() const;
  // The headroom part of Charge: OK, or kNoMemory naming the outside limit.
  Status FitHeadroom(PageCount pages, const OperationContext& ctx);
};

}  // namespace uttm

#endif  // UTTM_MEMORY_CONTEXT_H_
