// Copyright (c) uttm developers.
//
// gem_device.h: a device of GEM shmem objects: their driver callbacks, their LRUs under one lock,
// and their shrinker (the msm model; gem_shrinker.h).
//
//   auto dev = uttm::GemDevice::Create({.name = "gpu0", .backing = {.directory = "/var/tmp"}});
//   uttm::Result<uttm::GemRef> obj = (*dev)->CreateObject(uttm::Bytes(4 << 20));
//   reclaimer.Register(&(*dev)->shrinker());   // or Runtime::AddGemDevice
//
// The LRUs ("dontneed" purgeable, "willneed" evictable, "pinned" held but not reclaimable now,
// "evicted" released to their files) share the device's LRU lock, as msm's drm_gem_lrus share
// one mutex. Eviction is possible when the options allow it and releasing pages frees memory
// (ShmemBacking::can_release: a backing directory, or swap for memfd objects): msm's
// "enable_eviction && swap available".
//
// Thread-safety: all methods are thread-safe. The device must outlive its objects: destroying
// it with live objects aborts with a message naming the count (use object_count() first).
#ifndef UTTM_GEM_DEVICE_H_
#define UTTM_GEM_DEVICE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "uttm/export.h"
#include "uttm/gem_lru.h"
#include "uttm/gem_shmem_object.h"
#include "uttm/gem_shrinker.h"
#include "uttm/mutex.h"
#include "uttm/shmem_backing.h"
#include "uttm/shrinker.h"
#include "uttm/stats.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm {

// The driver's reclaim callbacks, called with the object's reservation held (the seed's purge,
// evict and swap_in). A driver that maps objects into a device (page tables, a host mapping of a
// virtual GPU) overrides them, tears its mappings down (or rebuilds them) and calls the helper.
class UTTM_EXPORT GemShmemFuncs {
 public:
  virtual ~GemShmemFuncs() = default;
  // Releases the backing storage; the contents are gone. Returns the pages freed.
  virtual Result<std::uint64_t> Purge(GemShmemObject& obj) UTTM_REQUIRES(obj.resv()) {
    return obj.PurgeLocked();
  }
  // Releases the pages to the backing file; the contents stay there. Returns pages released.
  virtual Result<std::uint64_t> Evict(GemShmemObject& obj, bool writeback)
      UTTM_REQUIRES(obj.resv()) {
    return obj.EvictLocked(writeback);
  }
  // Brings an evicted object's pages back and makes them usable by the device.
  virtual Status SwapIn(GemShmemObject& obj) UTTM_REQUIRES(obj.resv()) {
    return obj.SwapInLocked();
  }
};

struct GemDeviceOptions {
  std::string name = "gem";
  // Where objects keep their pages (shmem_backing.h). Its mapped_pages counter is replaced by
  // the device's own (GemDevice::mapped_pages).
  ShmemBackingOptions backing = {};
  // Driver callbacks (not owned; null: the helpers alone).
  GemShmemFuncs* funcs = nullptr;
  // Let the shrinker evict (msm's enable_eviction); purging is always allowed.
  bool enable_eviction = true;
  // The shrinker's evictions never write back: pages are unmapped and left in the page cache for
  // the kernel's own reclaim (which writes them back under pressure). False: written back and
  // dropped at once when the reclaim context allows I/O (may_io).
  bool lazy_release = false;
  // Swap-in readahead (the kernel's swap readahead, for objects): a swap-in prefetches up to
  // this many of the objects evicted right after it (GemShmemObject::Prefetch). The window
  // adapts: it doubles (from 1) each time the object swapped in is the one evicted right after
  // the previous one (a stream), and halves otherwise, so random access reads nothing extra.
  // 0: off. Only for backings without large folios (ShmemBackingOptions::large_folios false):
  // with them the device starts with none, because readahead(2) brings single pages back and
  // the fault path's own readahead (large folios, reading ahead inside each object) is faster
  // (gem.md, Benchmarks); set_swapin_readahead turns it on anyway.
  unsigned swapin_readahead = 4;  // at most GemDevice::kMaxSwapinReadahead
  // Counters (null: Stats::Default()).
  Stats* stats = nullptr;
};

class UTTM_EXPORT GemDevice {
 public:
  static constexpr unsigned kMaxSwapinReadahead = 16;
  // kInvalid for a backing directory that cannot hold files.
  static Result<std::unique_ptr<GemDevice>> Create(const GemDeviceOptions& options);
  ~GemDevice();
  GemDevice(const GemDevice&) = delete;
  GemDevice& operator=(const GemDevice&) = delete;

  // A new object of `size` (rounded up to pages) with no pages yet (drm_gem_shmem_create).
  // kInvalid for size 0.
  Result<GemRef> CreateObject(Bytes size);

  const std::string& name() const { return options_.name; }
  GemShmemFuncs& funcs() { return *funcs_; }
  Stats& stats() { return *stats_; }
  bool can_evict() const { return can_evict_; }
  bool lazy_release() const { return options_.lazy_release; }
  // Where objects keep their pages: "memfd" or the directory.
  std::string backing_description() const { return ShmemBacking::Describe(options_.backing); }
  std::uint64_t object_count() const { return objects_.load(std::memory_order_relaxed); }
  // Pages the device's objects hold mapped now (resident, unless the kernel reclaimed them from
  // an unlocked mapping).
  std::uint64_t mapped_pages() const {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(mapped_pages_.load(), 0));
  }

  Mutex* lru_lock() UTTM_RETURN_CAPABILITY(lru_mu_) { return &lru_mu_; }
  GemLru& dontneed() { return dontneed_; }
  GemLru& willneed() { return willneed_; }
  GemLru& pinned() { return pinned_; }
  GemLru& evicted() { return evicted_; }
  // Pages on each LRU, read under the LRU lock at once.
  struct LruPages {
    std::uint64_t dontneed = 0, willneed = 0, pinned = 0, evicted = 0;
  };
  LruPages lru_pages() UTTM_EXCLUDES(lru_mu_);
  // The shrinker's counts: pages of purgeable objects, and of evictable ones.
  std::uint64_t purgeable_pages() UTTM_EXCLUDES(lru_mu_);
  std::uint64_t evictable_pages() UTTM_EXCLUDES(lru_mu_);

  // Called by GemShmemObject::GetPages before it swaps `obj` in (its reservation held): adapts
  // the readahead window and prefetches the objects evicted after it (try-locked, never waited
  // for).
  void SwapInReadahead(GemShmemObject& obj);
  // The current readahead window (objects).
  unsigned readahead_window() const { return ra_window_.load(std::memory_order_relaxed); }
  // Changes GemDeviceOptions::swapin_readahead (clamped to kMaxSwapinReadahead; 0: off).
  void set_swapin_readahead(unsigned objects) {
    ra_max_.store(std::min(objects, kMaxSwapinReadahead), std::memory_order_relaxed);
  }

  // The staged shrinker of this device (gem_shrinker.h), for a Reclaimer.
  GemShrinker& shrinker() { return *shrinker_; }

 private:
  friend class GemShmemObject;
  explicit GemDevice(const GemDeviceOptions& options, bool can_evict);

  const GemDeviceOptions options_;
  const bool can_evict_;
  Stats* const stats_;
  GemShmemFuncs default_funcs_;
  GemShmemFuncs* const funcs_;
  Mutex lru_mu_;
  GemLru dontneed_{&lru_mu_, "dontneed"};
  GemLru willneed_{&lru_mu_, "willneed"};
  GemLru pinned_{&lru_mu_, "pinned"};
  GemLru evicted_{&lru_mu_, "evicted"};
  std::atomic<std::uint64_t> objects_{0};
  std::atomic<std::int64_t> mapped_pages_{0};
  // Swap-in readahead state, under the LRU lock (the window also read racily for reports).
  std::atomic<unsigned> ra_max_;
  std::atomic<unsigned> ra_window_{0};
  // Under the LRU lock (taken as evicted_.lock(), which the analysis cannot equate with lru_mu_).
  const GemShmemObject* ra_expected_ = nullptr;  // identity only, never dereferenced
  std::unique_ptr<GemShrinker> shrinker_;
};

}  // namespace uttm

#endif  // UTTM_GEM_DEVICE_H_
