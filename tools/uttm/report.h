// Copyright (c) uttm developers.
//
// report.h: the result of a run: a struct the engine fills, its JSON form (`--report FILE`) and
// its text summary.
//
// JSON top-level keys (may be added to, never renamed): verified, counters, memory, throughput,
// latency_us, errors, plus workload, run, buffers, domains. docs/tool.md has the table of keys,
// meanings and units.
//
// LatencyHistogram records latencies from many threads without a lock (log-linear buckets,
// <= 1/16 relative error) and answers percentiles.
//
// Thread-safety: Report is a plain value filled by one thread at the end of a run;
// LatencyHistogram::Record is safe from any number of threads.
#ifndef UTTM_TOOLS_UTTM_REPORT_H_
#define UTTM_TOOLS_UTTM_REPORT_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "uttm/runtime_snapshot.h"
#include "uttm/status.h"

namespace uttm::tool {

class LatencyHistogram {
 public:
  // Records one latency in nanoseconds.
  void Record(std::uint64_t ns);
  std::uint64_t count() const;
  // The p-th percentile (0 < p <= 100) in microseconds: the upper bound of the bucket holding
  // that rank (0 when empty).
  double PercentileUs(double p) const;
  double MaxUs() const;

 private:
  static constexpr int kSubBits = 4;  // 16 sub-buckets per power of two
  static constexpr int kBuckets = 64 << kSubBits;
  static int BucketOf(std::uint64_t ns);
  static std::uint64_t UpperBound(int bucket);
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> max_ns_{0};
};

// Usage of one memory domain ("vram0", "vram1", "tt", "system").
struct DomainUsage {
  std::string name;
  std::uint64_t capacity_bytes = 0;  // 0 = unbounded
  std::uint64_t peak_bytes = 0;
  std::uint64_t final_bytes = 0;
};

struct Report {
  // Verdict: every buffer that was not purged matched its expected content byte for byte.
  bool verified = false;

  struct Counters {
    std::uint64_t pages_populated = 0;
    std::uint64_t pages_backed_up = 0;
    std::uint64_t pages_restored = 0;
    std::uint64_t pages_purged = 0;
    std::uint64_t evictions = 0;
    std::uint64_t swapouts = 0;
    std::uint64_t shrinker_scans = 0;
    std::uint64_t bytes_moved = 0;
    // Not required: failed store calls (the data stayed in memory), and accesses/creates that
    // found no room in any domain of their placement (served from where the buffer was, or
    // created in SYSTEM).
    std::uint64_t store_write_errors = 0;
    std::uint64_t store_read_errors = 0;
    std::uint64_t placement_fallbacks = 0;
    // Ops interrupted (EINTR) and restarted.
    std::uint64_t restarts = 0;
    // File-backed buffers (devices.file_backed): how many were made, and the pages their
    // shrinker released to their files and purged.
    std::uint64_t file_backed_buffers = 0;
    std::uint64_t file_backed_pages_released = 0;
    std::uint64_t file_backed_pages_purged = 0;
    // GEM shmem buffers (devices.gem_shmem): how many were made, and the pages their shrinker
    // evicted to their files, swapped back in and purged.
    std::uint64_t gem_buffers = 0;
    std::uint64_t gem_pages_evicted = 0;
    std::uint64_t gem_pages_swapped_in = 0;
    std::uint64_t gem_pages_purged = 0;
  } counters;

  struct Memory {
    std::uint64_t peak_rss_bytes = 0;
    std::uint64_t page_limit_bytes = 0;
    std::uint64_t file_backed_budget_bytes = 0;  // resident file-backed buffers allowed
    std::uint64_t rss_slack_bytes = 0;  // what the run allowed above the limit (tool, heap, ...)
    // Whether peak RSS was held to page limit + slack (false in sanitizer builds, whose shadow
    // memory and quarantine make RSS meaningless).
    bool rss_checked = true;
  } memory;

  struct Throughput {
    double backup_bytes_per_s = 0;
    double restore_bytes_per_s = 0;
    double ops_per_s = 0;
  } throughput;

  struct Latency {
    double restore_p50 = 0;  // microseconds
    double restore_p99 = 0;
    double restore_max = 0;
    std::uint64_t restores = 0;
  } latency_us;

  // The backup store's own counters that are not zero (store.*, zstore.* of a compressed RAM
  // store, tier.* of a tiered one, uring requests), by name, in the order stats.h lists them.
  std::vector<std::pair<std::string, std::uint64_t>> store_counters;

  // The per-client budget tree at the end of the run (RuntimeSnapshot::budgets): the workload's
  // clients and the root, per region, with their usage, limits and evictions.
  std::vector<RuntimeSnapshot::Budget> budgets;

  // Human-readable errors of the run (verification mismatches, store failures, ...).
  std::vector<std::string> errors;
  // Errors of the run counted per kind (write, read, verify, ...), in order of first occurrence;
  // `errors` lists the first ten of each kind.
  std::vector<std::pair<std::string, std::uint64_t>> error_counts;

  // Context.
  std::string workload;
  std::uint64_t seed = 0;
  std::string store;
  std::uint32_t threads = 0;
  double duration_s = 0;
  std::uint64_t ops = 0;

  struct Buffers {
    std::uint64_t total = 0;         // live at the end
    std::uint64_t verified = 0;      // checked byte for byte and matched
    std::uint64_t not_retained = 0;  // purged: content lost by contract
    std::uint64_t mismatched = 0;
    std::uint64_t unreadable = 0;  // the final read failed (the error says why): not compared
  } buffers;

  std::vector<DomainUsage> domains;

  // Fills latency_us from a histogram of restore latencies.
  void SetRestoreLatency(const LatencyHistogram& h);
};

// The JSON document (pretty-printed, 2-space indent).
std::string ReportToJson(const Report& r);
// Writes ReportToJson to `path`. Errors: kIo naming the path and the OS error.
Status WriteReportJson(const Report& r, const std::string& path);
// A short multi-line text summary for the terminal.
std::string ReportToText(const Report& r);

// Writes `text` to `path` (truncating). Errors: kIo "PATH: <strerror>". Shared by the writers.
Status WriteTextFile(const std::string& path, const std::string& text);

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_REPORT_H_
