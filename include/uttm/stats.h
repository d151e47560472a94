// Copyright (c) uttm developers.
//
// stats.h: counters and gauges, each defined once in UTTM_STATS below.
//
// A counter only grows (events, pages, bytes). A gauge goes up and down and remembers its peak.
// The list generates the enum, the names and both printers, so they cannot drift apart. Names
// are dotted ("pages.backed_up"); the JSON form carries a schema name and version:
//
//   {"schema":"uttm.stats","version":1,"counters":{...},"gauges":{"x":{"current":1,"peak":2}}}
//
// Thread-safety: every method is thread-safe. Counters are striped across cache lines so many
// threads can bump them without contending; reads sum the stripes (a read racing with updates
// sees some of them, never a torn value). Gauges are single atomics with a lock-free peak.
//
// Sources (stat_source.h): a component on a hot path may instead keep its stats itself under
// its own lock and attach as a StatSource; reads add every attached source's values. The peak of
// a gauge fed by sources is the largest of its own peak and its current value plus the sum of
// the sources' peaks: exact for one source at a time (pools that follow one another), an upper
// bound for several at once. Detaching keeps every peak readers could see, so peaks never drop.
#ifndef UTTM_STATS_H_
#define UTTM_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "uttm/export.h"
#include "uttm/mutex.h"

namespace uttm {

class StatSource;
struct StatValues;

// COUNTER(identifier, "name", "unit", "meaning") / GAUGE(identifier, "name", "unit", "meaning")
#define UTTM_STATS(COUNTER, GAUGE)                                                                \
  COUNTER(kPagesPopulated, "pages.populated", "pages", "pages given to page vectors")             \
  COUNTER(kPagesUnpopulated, "pages.unpopulated", "pages", "pages taken back from page vectors")  \
  COUNTER(kPagesBackedUp, "pages.backed_up", "pages", "pages written to a backup store")          \
  COUNTER(kPagesRestored, "pages.restored", "pages", "pages read back from a backup store")       \
  COUNTER(kPagesBackedUpClean, "pages.backed_up_clean", "pages",                                  \
          "pages given up by a backup without a write: the store still held them (clean)")        \
  COUNTER(kCleanPagesDropped, "pages.clean_dropped", "pages",                                     \
          "clean store copies dropped (the pages were written, freed, or the store was full)")    \
  COUNTER(kPagesPurged, "pages.purged", "pages", "pages dropped by contract (purgeable)")         \
  COUNTER(kPagesSwappedOut, "pages.swapped_out", "pages", "pages moved out by legacy swapout")    \
  COUNTER(kPagesSwappedIn, "pages.swapped_in", "pages", "pages moved back by legacy swapin")      \
  COUNTER(kPoolHits, "pool.hits", "chunks", "page chunks served from a pool")                     \
  COUNTER(kPoolRecycleHits, "pool.recycle_hits", "chunks",                                        \
          "chunks a restore got uncleared from pages a backup just gave up")                      \
  COUNTER(kPoolMisses, "pool.misses", "chunks", "page chunks taken from the page provider")       \
  COUNTER(kPoolPagesTrimmed, "pool.pages_trimmed", "pages", "pool pages given back to the OS")    \
  COUNTER(kProviderAllocFailures, "provider.alloc_failures", "calls", "failed OS allocations")    \
  COUNTER(kProviderReleaseCalls, "provider.release_calls", "calls",                               \
          "madvise calls releasing pages")                                                        \
  COUNTER(kCachingTransitions, "pages.caching_transitions", "calls", "page caching changes")      \
  COUNTER(kEvictions, "bo.evictions", "objects", "buffer objects evicted")                        \
  COUNTER(kSwapouts, "bo.swapouts", "objects", "buffer objects swapped out by the watermark")     \
  COUNTER(kBytesMoved, "bo.bytes_moved", "bytes", "bytes moved between placements")               \
  COUNTER(kShrinkerScans, "shrinker.scans", "calls", "shrinker scan calls")                       \
  COUNTER(kShrinkerPagesFreed, "shrinker.pages_freed", "pages", "pages freed by shrinkers")       \
  COUNTER(kReclaimDirect, "reclaim.direct", "calls", "direct reclaim calls (ReclaimPages)")       \
  COUNTER(kHeadroomReclaims, "charge.headroom_reclaims", "calls",                                 \
          "direct reclaims run because a charge did not fit below the outside (cgroup) limit")    \
  COUNTER(kHeadroomFailures, "charge.headroom_failures", "calls",                                 \
          "charges refused because they did not fit below the outside (cgroup) limit")            \
  COUNTER(kChargesOverSoftLimit, "charge.over_soft_limit", "calls",                               \
          "charges let over a soft pages_limit after reclaim freed nothing more")                 \
  COUNTER(kReclaimEpisodes, "reclaim.episodes", "episodes", "background reclaim episodes")        \
  COUNTER(kPressureEvents, "pressure.events", "events", "kernel pressure events received")        \
  COUNTER(kStoreBytesWritten, "store.bytes_written", "bytes", "bytes written to backup stores")   \
  COUNTER(kStoreBytesRead, "store.bytes_read", "bytes", "bytes read from backup stores")          \
  COUNTER(kStoreWriteErrors, "store.write_errors", "calls", "failed store writes")                \
  COUNTER(kStoreReadErrors, "store.read_errors", "calls", "failed store reads")                   \
  COUNTER(kStoreParallelChecksums, "store.parallel_checksums", "chunks",                          \
          "backup chunks checksummed on the store's helper thread during their write")            \
  COUNTER(kStoreParallelVerifies, "store.parallel_verifies", "chunks",                            \
          "restored chunks verified on the store's helper thread while the next one was read")    \
  COUNTER(kStoreUringRequests, "store.uring_requests", "requests",                                \
          "requests an io_uring store submitted (several in flight per call)")                    \
  COUNTER(kStoreUringResubmits, "store.uring_resubmits", "requests",                              \
          "io_uring requests submitted again to finish a short or interrupted transfer")          \
  COUNTER(kTierWritebackPages, "tier.writeback_pages", "pages",                                   \
          "pages a tiered store moved from its upper to its lower tier")                          \
  COUNTER(kTierWritebackErrors, "tier.writeback_errors", "batches",                               \
          "tiered store writebacks the lower tier refused (the entries stay in the upper tier)")  \
  COUNTER(kTierDirectPages, "tier.direct_pages", "pages",                                         \
          "pages a tiered store backed up straight to its lower tier (the upper one was full)")   \
  COUNTER(kTierUpperReads, "tier.upper_reads", "pages", "pages copied from upper tiers")          \
  COUNTER(kTierLowerReads, "tier.lower_reads", "pages", "pages copied from lower tiers")          \
  COUNTER(kRemoteRequests, "remote.requests", "commands",                                         \
          "commands a remote (Redis-protocol) store sent to its servers")                         \
  COUNTER(kRemoteReconnects, "remote.reconnects", "connections",                                  \
          "connections a remote store opened again after losing one")                             \
  COUNTER(kRemoteLostPages, "remote.lost_pages", "pages",                                         \
          "pages a remote store found missing on its server when copying them back")              \
  COUNTER(kChecksumFailures, "store.checksum_failures", "runs", "backups that failed checksum")   \
  COUNTER(kZstoreSameFilled, "zstore.same_filled", "pages",                                       \
          "pages a compressed store kept as one repeated word")                                   \
  COUNTER(kZstoreCompressed, "zstore.compressed", "pages", "pages a compressed store compressed") \
  COUNTER(kZstoreRaw, "zstore.raw", "pages",                                                      \
          "pages a compressed store kept uncompressed (they did not compress enough)")            \
  COUNTER(kZstoreCompacted, "zstore.compacted", "objects",                                        \
          "compressed objects moved to fuller slabs so that emptied slabs could be freed")        \
  COUNTER(kPrefetches, "prefetch.done", "objects", "objects a Prefetcher made resident")          \
  COUNTER(kPrefetchPagesRestored, "prefetch.pages_restored", "pages",                             \
          "pages Prefetcher workers restored ahead of use")                                       \
  COUNTER(kPrefetchFailures, "prefetch.failed", "objects", "prefetch hints that failed")          \
  COUNTER(kPrefetchDropped, "prefetch.dropped", "objects",                                        \
          "prefetch hints dropped (queue full, or stopped)")                                      \
  COUNTER(kTouchRestores, "touch.restores", "faults",                                             \
          "CPU touches of an evicted object's restore-on-touch mapping that brought it back")     \
  COUNTER(                                                                                        \
      kTouchFailures, "touch.failures", "objects",                                                \
      "restore-on-touch mappings made inaccessible because their object could not be restored")   \
  COUNTER(kTouchArmFailures, "touch.arm_failures", "calls",                                       \
          "restore-on-touch ranges the kernel would not arm (made inaccessible instead)")         \
  COUNTER(kResvContended, "resv.contended", "calls", "reservation locks that had to wait")        \
  COUNTER(kResvBackoffs, "resv.backoffs", "calls", "ticketed locks told to back off (EDEADLK)")   \
  COUNTER(kGemPagesPurged, "gem.pages_purged", "pages", "GEM shmem pages dropped by a purge")     \
  COUNTER(kGemPagesEvicted, "gem.pages_evicted", "pages",                                         \
          "GEM shmem pages released to their backing file by an eviction")                        \
  COUNTER(kGemPagesSwappedIn, "gem.pages_swapped_in", "pages",                                    \
          "GEM shmem pages brought back from their backing file")                                 \
  GAUGE(kGemPagesHeld, "gem.pages_held", "pages", "pages GEM shmem objects hold mapped")          \
  GAUGE(kPagesAllocated, "pages.allocated", "pages", "pages held by page vectors (pages_limit)")  \
  GAUGE(kDma32PagesAllocated, "pages.dma32_allocated", "pages", "pages under the dma32 limit")    \
  GAUGE(kExternalPages, "pages.external", "pages",                                                \
        "memory held outside page vectors and counted against pages_limit (compressed stores)")   \
  GAUGE(kPoolPages, "pool.pages", "pages", "pages parked in pools")                               \
  GAUGE(kProviderPages, "provider.pages", "pages", "pages handed out by the page provider")       \
  GAUGE(kStoreBytesUsed, "store.bytes_used", "bytes", "bytes held in backup stores")              \
  GAUGE(kZstorePages, "zstore.pages", "pages", "pages held by compressed stores")                 \
  GAUGE(kZstorePayloadBytes, "zstore.payload_bytes", "bytes",                                     \
        "compressed bytes held by compressed stores (zstore.pages * 4096 / ratio)")               \
  GAUGE(kZstoreSlabBytes, "zstore.slab_bytes", "bytes", "slab memory of compressed stores")       \
  GAUGE(kCleanPages, "pages.clean", "pages",                                                      \
        "resident pages whose backup copy is kept: freed without a write")                        \
  GAUGE(kBufferObjects, "bo.count", "objects", "live buffer objects")

enum class Stat : unsigned {
#define UTTM_STAT_ENUM_(id, name, unit, desc) id,
  UTTM_STATS(UTTM_STAT_ENUM_, UTTM_STAT_ENUM_)
#undef UTTM_STAT_ENUM_
      kCount
};

inline constexpr unsigned kNumStats = static_cast<unsigned>(Stat::kCount);

class UTTM_EXPORT Stats {
 public:
  Stats();
  Stats(const Stats&) = delete;
  Stats& operator=(const Stats&) = delete;

  // The process-wide instance used when a component is given no Stats of its own.
  static Stats& Default();

  static const char* Name(Stat stat);
  static const char* Unit(Stat stat);
  static const char* Description(Stat stat);
  static bool IsGauge(Stat stat);

  // Counters. REQUIRES: !IsGauge(stat) (checked in debug builds).
  void Add(Stat stat, std::uint64_t n = 1);
  std::uint64_t Get(Stat stat) const;

  // Gauges. REQUIRES: IsGauge(stat). Adding updates the peak.
  void GaugeAdd(Stat stat, std::int64_t delta);
  void GaugeSet(Stat stat, std::int64_t value);
  std::int64_t Current(Stat stat) const;
  std::int64_t Peak(Stat stat) const;

  // Zeroes every counter and gauge (peaks restart at the current values, i.e. 0). Attached
  // sources reset their counters and peaks; gauges they keep stay truthful (StatSource).
  void Reset();

  // Attaches `source`, whose values every read from now on includes. The source must stay alive
  // until RemoveSource; attaching one twice is a programming error (checked in debug builds).
  void AddSource(StatSource* source);
  // Detaches `source`, folding its current values in: counters add, gauges add their current
  // value and keep the peak readers saw until now. Unknown sources are ignored.
  void RemoveSource(StatSource* source);

  // "name value unit" lines (gauges: "name current (peak P) unit").
  std::string ToText() const;
  // Versioned JSON, see the file comment.
  std::string ToJson() const;

  static constexpr int kJsonVersion = 1;

 private:
  static constexpr unsigned kStripes = 16;
  struct alignas(64) Stripe {
    std::array<std::atomic<std::uint64_t>, kNumStats> value{};
  };
  struct alignas(64) Gauge {
    std::atomic<std::int64_t> current{0};
    std::atomic<std::int64_t> peak{0};
  };

  static unsigned StripeIndex();
  static void RaisePeak(Gauge& g, std::int64_t value);
  // The sum of every attached source's values.
  StatValues CollectSources() const UTTM_REQUIRES(sources_mu_);
  // Readings given the sources' values; under the lock so a source detaching at the same time is
  // seen either attached or folded in, never both or neither.
  std::uint64_t CounterWith(Stat stat, const StatValues& sources) const UTTM_REQUIRES(sources_mu_);
  std::int64_t CurrentWith(Stat stat, const StatValues& sources) const UTTM_REQUIRES(sources_mu_);
  std::int64_t PeakWith(Stat stat, const StatValues& sources) const UTTM_REQUIRES(sources_mu_);

  std::array<Stripe, kStripes> stripes_;
  std::array<Gauge, kNumStats> gauges_;
  mutable Mutex sources_mu_;
  std::vector<StatSource*> sources_ UTTM_GUARDED_BY(sources_mu_);
};

}  // namespace uttm

#endif  // UTTM_STATS_H_
