// Copyright (c) uttm developers.
//
// gem_device.cc: see gem_device.h.
#include "uttm/gem_device.h"

#include <algorithm>
#include <array>
#include <string>

#include "base/check.h"
#include "uttm/gem_shrinker.h"

namespace uttm {

GemDevice::GemDevice(const GemDeviceOptions& options, bool can_evict)
    : options_(options),
      can_evict_(can_evict),
      stats_(options.stats != nullptr ? options.stats : &Stats::Default()),
      funcs_(options.funcs != nullptr ? options.funcs : &default_funcs_),
      ra_max_(options.backing.large_folios
                  ? 0
                  : std::min(options.swapin_readahead, kMaxSwapinReadahead)),
      shrinker_(std::make_unique<GemShrinker>(this)) {}

Result<std::unique_ptr<GemDevice>> GemDevice::Create(const GemDeviceOptions& options) {
  // A probe backing validates the directory and tells whether releasing pages frees memory.
  ShmemBackingOptions probe_options = options.backing;
  probe_options.stats = options.stats;
  UTTM_ASSIGN_OR_RETURN(std::unique_ptr<ShmemBacking> probe,
                        ShmemBacking::Create(Bytes(kPageSize), probe_options));
  const bool can_evict = options.enable_eviction && probe->can_release();
  return std::unique_ptr<GemDevice>(new GemDevice(options, can_evict));
}

GemDevice::~GemDevice() {
  const std::uint64_t live = object_count();
  UTTM_CHECK(live == 0, ("GEM device '" + options_.name + "' destroyed with " +
                         std::to_string(live) + " live objects")
                            .c_str());
}

void GemDevice::SwapInReadahead(GemShmemObject& obj) {
  const unsigned max = ra_max_.load(std::memory_order_relaxed);
  if (max == 0) return;
  std::array<GemShmemObject*, kMaxSwapinReadahead> next{};
  unsigned n = 0;
  {
    MutexLock lock(evicted_.lock());  // the device LRU lock, named as the list's for the analysis
    const unsigned w = ra_window_.load(std::memory_order_relaxed);
    const unsigned window = ra_expected_ == &obj ? std::min(w == 0 ? 1 : 2 * w, max) : w / 2;
    ra_window_.store(window, std::memory_order_relaxed);
    // The objects evicted right after `obj`, in eviction order; the first is the one a stream
    // asks for next.
    GemShmemObject* o = evicted_.Next(obj);
    ra_expected_ = o;
    for (; o != nullptr && n < window; o = evicted_.Next(*o)) {
      if (o->GetUnlessZero()) next[n++] = o;
    }
  }
  for (unsigned i = 0; i < n; ++i) {
    GemRef ref = GemRef::Adopt(next[i]);
    if (!ref->resv()->TryLock()) continue;  // in use: it needs no readahead
    ref->resv()->AssertHeld();
    (void)ref->Prefetch();
    ref->resv()->Unlock();
  }
}

Result<GemRef> GemDevice::CreateObject(Bytes size) {
  ShmemBackingOptions o = options_.backing;
  o.stats = stats_;
  o.mapped_pages = &mapped_pages_;  // the caller's counters, if any, are not kept
  UTTM_ASSIGN_OR_RETURN(std::unique_ptr<ShmemBacking> backing, ShmemBacking::Create(size, o));
  objects_.fetch_add(1, std::memory_order_relaxed);
  return GemRef::Adopt(new GemShmemObject(this, std::move(backing)));
}

// The four lists share lru_mu_, which the analysis cannot see through GemLru::lock().
GemDevice::LruPages GemDevice::lru_pages() UTTM_NO_THREAD_SAFETY_ANALYSIS {
  MutexLock lock(&lru_mu_);
  return LruPages{dontneed_.count(), willneed_.count(), pinned_.count(), evicted_.count()};
}

std::uint64_t GemDevice::purgeable_pages() {
  MutexLock lock(dontneed_.lock());  // the device's LRU lock
  return dontneed_.count();
}

std::uint64_t GemDevice::evictable_pages() {
  MutexLock lock(willneed_.lock());
  return willneed_.count();
}

}  // namespace uttm
