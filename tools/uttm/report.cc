// Copyright (c) uttm developers.
#include "report.h"

#include <fmt/format.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "size.h"

namespace uttm::tool {

int LatencyHistogram::BucketOf(std::uint64_t ns) {
  if (ns < (1u << kSubBits)) return static_cast<int>(ns);
  int msb = 63 - std::countl_zero(ns);
  int sub = static_cast<int>((ns >> (msb - kSubBits)) & ((1u << kSubBits) - 1));
  return ((msb - kSubBits + 1) << kSubBits) + sub;
}

std::uint64_t LatencyHistogram::UpperBound(int bucket) {
  if (bucket < (1 << kSubBits)) return static_cast<std::uint64_t>(bucket);
  int msb = (bucket >> kSubBits) + kSubBits - 1;
  std::uint64_t sub = static_cast<std::uint64_t>(bucket & ((1 << kSubBits) - 1));
  std::uint64_t low = (std::uint64_t{1} << msb) | (sub << (msb - kSubBits));
  return low + (std::uint64_t{1} << (msb - kSubBits)) - 1;
}

void LatencyHistogram::Record(std::uint64_t ns) {
  buckets_[static_cast<std::size_t>(BucketOf(ns))].fetch_add(1, std::memory_order_relaxed);
  std::uint64_t seen = max_ns_.load(std::memory_order_relaxed);
  while (ns > seen && !max_ns_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
  }
}

std::uint64_t LatencyHistogram::count() const {
  std::uint64_t n = 0;
  for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
  return n;
}

double LatencyHistogram::PercentileUs(double p) const {
  std::uint64_t total = count();
  if (total == 0) return 0;
  auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total)));
  rank = std::clamp<std::uint64_t>(rank, 1, total);
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
    if (seen >= rank) {
      std::uint64_t bound = std::min(UpperBound(i), max_ns_.load(std::memory_order_relaxed));
      return static_cast<double>(bound) / 1000.0;
    }
  }
  return MaxUs();
}

double LatencyHistogram::MaxUs() const {
  return static_cast<double>(max_ns_.load(std::memory_order_relaxed)) / 1000.0;
}

void Report::SetRestoreLatency(const LatencyHistogram& h) {
  latency_us.restores = h.count();
  latency_us.restore_p50 = h.PercentileUs(50);
  latency_us.restore_p99 = h.PercentileUs(99);
  latency_us.restore_max = h.MaxUs();
}

std::string ReportToJson(const Report& r) {
  nlohmann::ordered_json j;
  j["verified"] = r.verified;
  j["counters"] = {{"pages_populated", r.counters.pages_populated},
                   {"pages_backed_up", r.counters.pages_backed_up},
                   {"pages_restored", r.counters.pages_restored},
                   {"pages_purged", r.counters.pages_purged},
                   {"evictions", r.counters.evictions},
                   {"swapouts", r.counters.swapouts},
                   {"shrinker_scans", r.counters.shrinker_scans},
                   {"bytes_moved", r.counters.bytes_moved},
                   {"store_write_errors", r.counters.store_write_errors},
                   {"store_read_errors", r.counters.store_read_errors},
                   {"placement_fallbacks", r.counters.placement_fallbacks},
                   {"restarts", r.counters.restarts},
                   {"file_backed_buffers", r.counters.file_backed_buffers},
                   {"file_backed_pages_released", r.counters.file_backed_pages_released},
                   {"file_backed_pages_purged", r.counters.file_backed_pages_purged},
                   {"gem_buffers", r.counters.gem_buffers},
                   {"gem_pages_evicted", r.counters.gem_pages_evicted},
                   {"gem_pages_swapped_in", r.counters.gem_pages_swapped_in},
                   {"gem_pages_purged", r.counters.gem_pages_purged}};
  j["memory"] = {{"peak_rss_bytes", r.memory.peak_rss_bytes},
                 {"page_limit_bytes", r.memory.page_limit_bytes},
                 {"file_backed_budget_bytes", r.memory.file_backed_budget_bytes},
                 {"rss_slack_bytes", r.memory.rss_slack_bytes},
                 {"rss_checked", r.memory.rss_checked}};
  j["throughput"] = {{"backup_bytes_per_s", r.throughput.backup_bytes_per_s},
                     {"restore_bytes_per_s", r.throughput.restore_bytes_per_s},
                     {"ops_per_s", r.throughput.ops_per_s}};
  j["latency_us"] = {{"restore_p50", r.latency_us.restore_p50},
                     {"restore_p99", r.latency_us.restore_p99},
                     {"restore_max", r.latency_us.restore_max},
                     {"restores", r.latency_us.restores}};
  nlohmann::ordered_json store = nlohmann::ordered_json::object();
  for (const auto& [name, n] : r.store_counters) store[name] = n;
  j["store_counters"] = store;
  nlohmann::ordered_json budgets = nlohmann::ordered_json::array();
  for (const RuntimeSnapshot::Budget& b : r.budgets) {
    const BudgetCounters& c = b.counters;
    auto limit = [](std::uint64_t v) {
      return v == kBudgetUnlimited ? nlohmann::ordered_json() : nlohmann::ordered_json(v);
    };
    budgets.push_back({{"group", b.group},
                       {"region", b.region},
                       {"current", c.current},
                       {"peak", c.peak},
                       {"min", c.min},
                       {"low", c.low},
                       {"high", limit(c.high)},
                       {"max", limit(c.max)},
                       {"max_hits", c.max_hits},
                       {"evictions_caused", c.evictions_caused},
                       {"evictions_suffered", c.evictions_suffered},
                       {"protection_breaches", c.protection_breaches},
                       {"reclaim_runs", c.reclaim_runs},
                       {"reclaimed_bytes", c.reclaimed_bytes}});
  }
  j["budgets"] = budgets;
  j["errors"] = r.errors;
  nlohmann::ordered_json counts = nlohmann::ordered_json::object();
  for (const auto& [kind, n] : r.error_counts) counts[kind] = n;
  j["error_counts"] = counts;
  j["workload"] = r.workload;
  j["run"] = {{"seed", r.seed},
              {"store", r.store},
              {"threads", r.threads},
              {"duration_s", r.duration_s},
              {"ops", r.ops}};
  j["buffers"] = {{"total", r.buffers.total},
                  {"verified", r.buffers.verified},
                  {"not_retained", r.buffers.not_retained},
                  {"mismatched", r.buffers.mismatched},
                  {"unreadable", r.buffers.unreadable}};
  nlohmann::ordered_json domains = nlohmann::ordered_json::array();
  for (const DomainUsage& d : r.domains) {
    domains.push_back({{"name", d.name},
                       {"capacity_bytes", d.capacity_bytes},
                       {"peak_bytes", d.peak_bytes},
                       {"final_bytes", d.final_bytes}});
  }
  j["domains"] = domains;
  return j.dump(2) + "\n";
}

Status WriteTextFile(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return Status(Errc::kIo, fmt::format("{}: {}", path, std::strerror(errno)));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) return Status(Errc::kIo, fmt::format("{}: {}", path, std::strerror(err)));
  return Status::Ok();
}

Status WriteReportJson(const Report& r, const std::string& path) {
  return WriteTextFile(path, ReportToJson(r));
}

std::string ReportToText(const Report& r) {
  std::string out;
  auto line = [&out](std::string s) {
    out += s;
    out += '\n';
  };
  line(fmt::format("uttm run: workload {} (seed {}, store {}, {} threads): {} ops in {:.2f} s",
                   r.workload, r.seed, r.store, r.threads, r.ops, r.duration_s));
  // An unreadable buffer was never compared: it counts apart from the ones that were.
  const std::uint64_t compared = r.buffers.verified + r.buffers.mismatched;
  line(fmt::format(
      "  verified:   {} ({} of {} buffers compared byte for byte: {} matched, {} mismatched; {} "
      "unreadable; {} not retained (purged), expected as zeros)",
      r.verified ? "yes" : "NO", compared, r.buffers.total, r.buffers.verified,
      r.buffers.mismatched, r.buffers.unreadable, r.buffers.not_retained));
  line(fmt::format("  pages:      {} populated, {} backed up, {} restored, {} purged",
                   r.counters.pages_populated, r.counters.pages_backed_up,
                   r.counters.pages_restored, r.counters.pages_purged));
  line(fmt::format("  reclaim:    {} evictions, {} swapouts, {} shrinker scans, {} moved",
                   r.counters.evictions, r.counters.swapouts, r.counters.shrinker_scans,
                   FormatSize(r.counters.bytes_moved)));
  if (r.counters.restarts > 0) {
    line(
        fmt::format("  restarts:   {} ops interrupted (EINTR) and restarted", r.counters.restarts));
  }
  if (r.counters.file_backed_buffers > 0) {
    line(fmt::format("  files:      {} file-backed buffers; {} pages released, {} purged",
                     r.counters.file_backed_buffers, r.counters.file_backed_pages_released,
                     r.counters.file_backed_pages_purged));
  }
  if (r.counters.gem_buffers > 0) {
    line(fmt::format(
        "  gem:        {} GEM shmem buffers; {} pages evicted, {} swapped in, {} purged",
        r.counters.gem_buffers, r.counters.gem_pages_evicted, r.counters.gem_pages_swapped_in,
        r.counters.gem_pages_purged));
  }
  // Tiers and compressed RAM: what moved where.
  std::string tiers;
  for (const auto& [name, n] : r.store_counters) {
    if (name.starts_with("tier.") || name.starts_with("zstore.")) {
      tiers += fmt::format("{}{} {}", tiers.empty() ? "" : ", ", name, n);
    }
  }
  if (!tiers.empty()) line("  store:      " + tiers);
  for (const RuntimeSnapshot::Budget& b : r.budgets) {
    if (b.group == "/") continue;  // the root: everything
    const BudgetCounters& c = b.counters;
    line(fmt::format("  client:     {} {}: peak {}, evictions suffered {}, caused {}{}{}", b.group,
                     b.region, FormatSize(c.peak), c.evictions_suffered, c.evictions_caused,
                     c.max_hits != 0 ? fmt::format(", max hit {} times", c.max_hits) : "",
                     c.reclaim_runs != 0 ? fmt::format(", reclaimed {} to a lowered max",
                                                       FormatSize(c.reclaimed_bytes))
                                         : ""));
  }
  line(fmt::format("  memory:     peak RSS {} (page limit {}, slack {})",
                   FormatSize(r.memory.peak_rss_bytes), FormatSize(r.memory.page_limit_bytes),
                   FormatSize(r.memory.rss_slack_bytes)));
  line(fmt::format("  throughput: backup {}/s, restore {}/s, {:.0f} ops/s",
                   FormatSize(static_cast<std::uint64_t>(r.throughput.backup_bytes_per_s)),
                   FormatSize(static_cast<std::uint64_t>(r.throughput.restore_bytes_per_s)),
                   r.throughput.ops_per_s));
  line(fmt::format("  restore:    p50 {:.1f} us, p99 {:.1f} us, max {:.1f} us ({} restores)",
                   r.latency_us.restore_p50, r.latency_us.restore_p99, r.latency_us.restore_max,
                   r.latency_us.restores));
  for (const DomainUsage& d : r.domains) {
    line(fmt::format("  {:<10}  peak {} / {}", d.name + ":", FormatSize(d.peak_bytes),
                     d.capacity_bytes ? FormatSize(d.capacity_bytes) : std::string("unbounded")));
  }
  if (r.errors.empty()) {
    line("  errors:     none");
  } else {
    std::uint64_t total = 0;
    std::string kinds;
    for (const auto& [kind, n] : r.error_counts) {
      total += n;
      kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", kind, n);
    }
    line(fmt::format("  errors:     {} ({})", total, kinds));
    for (const std::string& e : r.errors) line("    " + e);
  }
  return out;
}

}  // namespace uttm::tool
