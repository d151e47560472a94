// Copyright (c) uttm developers.
//
// runtime_snapshot.h: what a runtime holds, at one moment (Runtime::Snapshot), and its two
// renderings: text for people and JSON for programs (schema "uttm.inspect", version 1; the keys
// below, in snake case). This is what `uttm inspect` prints; a driver can log it on an error or
// expose it the way the kernel exposes debugfs files (ttm_resource_manager_debug,
// ttm_pool_debugfs, the shrinker counts).
//
// Thread-safety: a plain value; the renderings are pure functions.
#ifndef UTTM_RUNTIME_SNAPSHOT_H_
#define UTTM_RUNTIME_SNAPSHOT_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "uttm/budget.h"
#include "uttm/export.h"
#include "uttm/placement.h"
#include "uttm/units.h"

namespace uttm {

struct RuntimeSnapshot {
  struct Manager {
    std::string type;  // MemTypeName
    std::uint64_t usage_bytes = 0;
    std::uint64_t size_bytes = 0;                             // 0: not bounded (SYSTEM)
    std::array<std::uint64_t, kNumPriorities> lru_lengths{};  // resources per priority list
  };
  struct Device {
    std::string name;
    std::uint64_t buffer_objects = 0;  // live, zombies and ghosts included
    std::vector<Manager> managers;
    std::uint64_t unevictable = 0;       // resources on the unevictable list
    std::uint64_t shrinkable_pages = 0;  // its BoShrinker's counts
    std::uint64_t purgeable_pages = 0;
  };
  // A GEM shmem device (gem_device.h): its objects and the pages on each of its LRUs.
  struct GemDevice {
    std::string name;
    std::string backing;  // "memfd" or the directory
    bool can_evict = false;
    std::uint64_t objects = 0;
    std::uint64_t purgeable_pages = 0, evictable_pages = 0, pinned_pages = 0, evicted_pages = 0;
  };
  struct PoolType {
    std::string caching;
    std::array<std::uint64_t, kNumPageOrders> chunks_by_order{};
  };
  struct Shrinker {
    std::string name;
    int seeks = 0;
    std::uint64_t batch = 0, last_count = 0, count_calls = 0, scan_calls = 0, scanned = 0,
                  freed = 0, stops = 0, deferred = 0;
  };

  std::string name;
  std::vector<Device> devices;
  std::vector<GemDevice> gem_devices;
  std::uint64_t pages_allocated = 0;
  std::uint64_t pages_limit = 0;
  std::uint64_t pooled_pages = 0;
  std::uint64_t page_pool_size = 0;
  std::vector<PoolType> pool_types;
  std::string store;  // BackupStore::Describe
  std::uint64_t store_bytes_used = 0;
  std::uint64_t store_bytes_available = 0;
  // Compressed RAM stores (compressed_store.h), from the runtime's statistics: pages held, their
  // compressed bytes, slab memory, and how pages were kept (zstore.*). Zero for other stores.
  struct Compressed {
    std::uint64_t pages = 0, payload_bytes = 0, slab_bytes = 0, same_filled = 0, compressed = 0,
                  raw = 0, compacted = 0, external_pages = 0;
  };
  Compressed compressed;
  std::vector<Shrinker> shrinkers;
  // The budget tree (budget.h): one entry per group and region, parents first; groups and
  // regions without any charge, limit or event are left out.
  struct Budget {
    std::string group;   // "/", "/a/b"
    std::string region;  // "drm/<device>/<type>"
    BudgetCounters counters;
  };
  std::vector<Budget> budgets;
  bool reclaim_thread = false;
  std::uint64_t reclaim_episodes = 0;
  std::string reclaim_sources;
  std::string stats_json;  // Stats::ToJson
  std::string stats_text;  // Stats::ToText
};

// A JSON object: {"schema": "uttm.inspect", "version": 1, "name", "devices": [...],
// "gem_devices": [...], "memory",
// "pool", "store", "shrinkers", "bo_shrinkers", "budgets", "reclaim_thread" (when running),
// "stats"}.
UTTM_EXPORT std::string SnapshotToJson(const RuntimeSnapshot& s);
// Lines for people: devices with their managers (usage, size, LRU lengths per priority), memory,
// the pool's chunks by caching and order, the store, the shrinkers, the budget tree and the
// reclaim thread.
UTTM_EXPORT std::string SnapshotToText(const RuntimeSnapshot& s);

}  // namespace uttm

#endif  // UTTM_RUNTIME_SNAPSHOT_H_
