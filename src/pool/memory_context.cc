// Copyright (c) uttm developers.
#include "uttm/memory_context.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <new>
#include <string>
#include <thread>

namespace uttm {
namespace {

std::uint64_t HalfOfRamPages() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return std::uint64_t{1} << 18;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) / kPageSize / 2;
}

PageProviderOptions ProviderOptions(const MemoryContextOptions& o, Stats* stats) {
  PageProviderOptions p;
  p.byte_limit = o.provider_byte_limit;
  p.region_size = o.provider_region_size;
  p.host_memory = o.host_memory;
  p.hooks = o.host_memory_hooks;
  p.stats = stats;
  return p;
}

}  // namespace

MemoryContext::MemoryContext(const MemoryContextOptions& options)
    : stats_(options.stats != nullptr ? options.stats : &Stats::Default()),
      owned_hook_(options.caching_hook == nullptr ? std::make_unique<CachingHook>() : nullptr),
      hook_(options.caching_hook != nullptr ? options.caching_hook : owned_hook_.get()),
      provider_(ProviderOptions(options, stats_)) {
  const std::uint64_t half = HalfOfRamPages();
  PagePoolOptions pool_options;
  pool_options.page_pool_size =
      PageCount(options.page_pool_size.value() != 0 ? options.page_pool_size.value() : half);
  pool_options.pool_cached = options.pool_cached;
  pool_options.recycle_pages = options.recycle_pages;
  pool_ = std::make_unique<PagePool>(&provider_, hook_, stats_, pool_options);
  pages_limit_.store(options.pages_limit.value() != 0 ? options.pages_limit.value() : half);
  soft_pages_limit_.store(options.soft_pages_limit);
  const std::uint64_t two_gib = (std::uint64_t{2} << 30) / kPageSize;
  dma32_pages_limit_.store(options.dma32_pages_limit.value() != 0
                               ? options.dma32_pages_limit.value()
                               : std::min(half, two_gib));
}

MemoryContext::~MemoryContext() { pool_.reset(); }

Result<UserFaults*> MemoryContext::user_faults() {
  MutexLock lock(&faults_mu_);
  if (!faults_opened_) {
    faults_opened_ = true;
    Result<std::unique_ptr<UserFaults>> opened = UserFaults::Open();
    if (opened.ok()) {
      faults_ = std::move(opened).value();
    } else {
      faults_refused_ = opened.status();
      std::fprintf(stderr,
                   "uttm: restore-on-touch mappings are made as explicit mappings here: %s\n",
                   std::string(faults_refused_.message()).c_str());
    }
  }
  if (!faults_) return faults_refused_;
  return faults_.get();
}

void MemoryContext::AddUser(MemoryUser* user) {
  MutexLock lock(&users_mu_);
  users_.push_back(UserEntry{user, 0});
}

void MemoryContext::RemoveUser(MemoryUser* user) {
  MutexLock lock(&users_mu_);
  for (auto it = users_.begin(); it != users_.end(); ++it) {
    if (it->user != user) continue;
    while (it->walkers > 0) users_cv_.Wait(&users_mu_);  // list nodes stay put meanwhile
    users_.erase(it);
    return;
  }
}

void MemoryContext::ForEachUser(const std::function<void(MemoryUser&)>& fn) {
  // A snapshot of at most kMaxSnapshot users, each held for the walk: `fn` runs unlocked.
  constexpr std::size_t kMaxSnapshot = 64;
  std::array<UserEntry*, kMaxSnapshot> snapshot{};
  std::size_t n = 0;
  {
    MutexLock lock(&users_mu_);
    for (UserEntry& e : users_) {
      if (n == kMaxSnapshot) break;  // the rest wait for the next walk
      ++e.walkers;
      snapshot[n++] = &e;
    }
  }
  for (std::size_t i = 0; i < n; ++i) fn(*snapshot[i]->user);
  MutexLock lock(&users_mu_);
  for (std::size_t i = 0; i < n; ++i) --snapshot[i]->walkers;
  users_cv_.SignalAll();
}

void MemoryContext::RotateUserToBack(MemoryUser* user) {
  MutexLock lock(&users_mu_);
  auto it = std::find_if(users_.begin(), users_.end(),
                         [user](const UserEntry& e) { return e.user == user; });
  if (it != users_.end()) users_.splice(users_.end(), users_, it);
}

MemoryContext& MemoryContext::Default() {
  static MemoryContext* context = new MemoryContext();
  return *context;
}

namespace {
constexpr int kMaxDirectRounds = 16;
constexpr auto kPause = std::chrono::milliseconds(1);

// How long a charge that freed nothing keeps looking before it fails. Others may be about to free
// what it could not lock: another thread's reclaim pass (waited for, up to 2 s in 1 ms steps), or
// a thread whose charge or uncharge moved the accounting meanwhile (looked at again up to 64
// times); with neither, an access may still be copying with its object locked (20 pauses of 1 ms).
class ContendedCharge {
 public:
  bool Again(bool others_reclaiming, bool accounting_moved) {
    if (others_reclaiming && reclaim_waits_++ < 2000) {
      std::this_thread::sleep_for(kPause);
    } else if (accounting_moved && retries_++ < 64) {
      std::this_thread::yield();
    } else if (pauses_++ < 20) {
      std::this_thread::sleep_for(kPause);
    } else {
      return false;
    }
    return true;
  }

 private:
  int reclaim_waits_ = 0;
  int retries_ = 0;
  int pauses_ = 0;
};
}  // namespace

void MemoryContext::set_reclaim_hook(ReclaimHook* hook) {
  reclaim_hook_.store(hook);
  pool_->set_reclaim_hook(hook);
}

std::uint64_t MemoryContext::OverBy() const {
  const std::uint64_t a = accounted_pages().value();
  const std::uint64_t l = pages_limit_.load();
  const std::uint64_t d = dma32_pages_allocated_.load();
  const std::uint64_t dl = dma32_pages_limit_.load();
  return std::max(a > l ? a - l : 0, d > dl ? d - dl : 0);
}

bool MemoryContext::over_limit() const {
  return accounted_pages().value() > pages_limit_.load() ||
         dma32_pages_allocated_.load() > dma32_pages_limit_.load();
}

Status MemoryContext::Charge(PageCount pages, bool dma32, const OperationContext& ctx) {
  pages_allocated_.fetch_add(pages.value());
  stats_->GaugeAdd(Stat::kPagesAllocated, static_cast<std::int64_t>(pages.value()));
  if (dma32) {
    dma32_pages_allocated_.fetch_add(pages.value());
    stats_->GaugeAdd(Stat::kDma32PagesAllocated, static_cast<std::int64_t>(pages.value()));
  }
  int direct_rounds = 0;
  // __GFP_RETRY_MAYFAIL: one round of direct reclaim, then fail rather than retry hard.
  const int max_direct_rounds = ctx.gfp_retry_mayfail ? 1 : kMaxDirectRounds;
  ContendedCharge contended;
  while (over_limit()) {
    const std::uint64_t seen = pages_allocated_.load() + dma32_pages_allocated_.load();
    Status error(Errc::kNoMemory, LimitMessage());
    if (over_limit_) {
      Result<std::uint64_t> freed = over_limit_(ctx);
      if (!freed.ok()) {
        error = freed.status();
      } else if (*freed > 0) {
        continue;
      }
    }
    // Direct reclaim: a bounded number of rounds, each must free something.
    ReclaimHook* hook = reclaim_hook_.load();
    // After a full store (kNoSpace) direct reclaim still runs: it purges before it backs up.
    if (hook != nullptr && direct_rounds < max_direct_rounds &&
        (error.code() == Errc::kNoMemory || error.code() == Errc::kNoSpace)) {
      ++direct_rounds;
      const ReclaimContext direct{.may_fs = true, .may_io = true, .background = false};
      if (hook->ReclaimPages(std::max<std::uint64_t>(OverBy(), 1), direct) > 0) continue;
      // Say what stopped reclaim (a full store) rather than only "page limit reached".
      if (Status why = hook->ShortfallReason(); !why.ok() && error.code() == Errc::kNoMemory) {
        error = why;
      }
    }
    // Nothing freed here. Two threads that charge at once each see the other's charge, and what
    // either could free may be locked by the other for a moment: a workload that fits must not
    // fail for that. Unless the caller asked to fail fast, look again while others make progress.
    if (!over_limit()) break;
    // TTM's soft limit: nothing more can be swapped out or reclaimed, so go over pages_limit
    // (never over the dma32 limit).
    if (soft_pages_limit_.load() && error.code() == Errc::kNoMemory &&
        dma32_pages_allocated_.load() <= dma32_pages_limit_.load()) {
      stats_->Add(Stat::kChargesOverSoftLimit);
      break;
    }
    // A wait for others is interruptible (the caller's stop token), like any wait for reclaim.
    if (ctx.interrupt_requested()) {
      Uncharge(pages, dma32);
      return Status(Errc::kInterrupted, "charge interrupted while waiting for reclaim");
    }
    if (!ctx.gfp_retry_mayfail && error.code() == Errc::kNoMemory &&
        contended.Again(hook != nullptr && hook->reclaims_in_flight() > 0,
                        pages_allocated_.load() + dma32_pages_allocated_.load() != seen)) {
      continue;
    }
    Uncharge(pages, dma32);
    return error;
  }
  if (Status s = FitHeadroom(pages, ctx); !s.ok()) {
    Uncharge(pages, dma32);
    return s;
  }
  return Status::Ok();
}

Status MemoryContext::FitHeadroom(PageCount pages, const OperationContext& ctx) {
  Headroom* headroom = headroom_.load();
  if (headroom == nullptr) return Status::Ok();
  const std::uint64_t need = pages.in_bytes().value();
  const int max_rounds = ctx.gfp_retry_mayfail ? 1 : kMaxDirectRounds;
  ContendedCharge contended;
  int rounds = 0;
  std::uint64_t available = 0;
  for (bool fresh = false;; fresh = true) {
    // What this context had charged before this charge: the headroom's estimate counts growth.
    const std::uint64_t before = (pages_allocated_.load() - pages.value()) * kPageSize;
    available = headroom->AvailableBytes(before, fresh);
    if (available >= need) return Status::Ok();
    ReclaimHook* hook = reclaim_hook_.load();
    if (hook == nullptr || rounds >= max_rounds) break;
    ++rounds;
    stats_->Add(Stat::kHeadroomReclaims);
    // The shortfall, and as much again: the next charges need not stop right away.
    const std::uint64_t target = (need - available + need + kPageSize - 1) / kPageSize;
    const ReclaimContext direct{.may_fs = true, .may_io = true, .background = false};
    if (hook->ReclaimPages(target, direct) > 0) continue;
    // Nothing freed here: others' reclaim passes may hold what could be freed.
    if (ctx.gfp_retry_mayfail || !contended.Again(hook->reclaims_in_flight() > 0, false)) break;
  }
  stats_->Add(Stat::kHeadroomFailures);
  std::string limit = "the outside limit";
  try {
    limit = headroom->Describe();
  } catch (const std::bad_alloc&) {
  }
  char message[256];
  std::snprintf(message, sizeof message,
                "memory limit of %s: %llu KiB can be allocated below it, %llu KiB needed "
                "(direct reclaim freed too little)",
                limit.c_str(), static_cast<unsigned long long>(available >> 10),
                static_cast<unsigned long long>(need >> 10));
  return Status(Errc::kNoMemory, message);
}

void MemoryContext::Uncharge(PageCount pages, bool dma32) {
  pages_allocated_.fetch_sub(pages.value());
  stats_->GaugeAdd(Stat::kPagesAllocated, -static_cast<std::int64_t>(pages.value()));
  if (dma32) {
    dma32_pages_allocated_.fetch_sub(pages.value());
    stats_->GaugeAdd(Stat::kDma32PagesAllocated, -static_cast<std::int64_t>(pages.value()));
  }
}

std::string MemoryContext::LimitMessage() const {
  std::string m = "page limit reached (pages_limit or dma32_pages_limit)";
  if (const std::uint64_t ext = external_pages_.load(); ext != 0) {
    m += "; " + std::to_string(ext) + " of the " + std::to_string(pages_limit_.load()) +
         " pages are held by a compressed store (pages that do not compress free nothing when "
         "backed up there)";
  }
  return m;
}

void MemoryContext::ChargeExternal(PageCount pages) {
  external_pages_.fetch_add(pages.value());
  stats_->GaugeAdd(Stat::kExternalPages, static_cast<std::int64_t>(pages.value()));
}

void MemoryContext::UnchargeExternal(PageCount pages) {
  external_pages_.fetch_sub(pages.value());
  stats_->GaugeAdd(Stat::kExternalPages, -static_cast<std::int64_t>(pages.value()));
}

}  // namespace uttm
