// Copyright (c) uttm developers.
//
// runtime_snapshot.cc: the text and JSON renderings of a RuntimeSnapshot (no JSON library: the
// core needs nothing beyond libc and pthreads).

#include "uttm/runtime_snapshot.h"

#include <cstdio>

#include "uttm/units.h"

namespace uttm {
namespace {

// JSON string literal of `s`.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

template <typename Container>
std::string Array(const Container& values) {
  std::string out = "[";
  for (auto v : values) out += (out.size() > 1 ? ", " : "") + std::to_string(v);
  return out + "]";
}

std::string Field(const char* key, const std::string& json_value, bool first = false) {
  return std::string(first ? "" : ", ") + "\"" + key + "\": " + json_value;
}
std::string Field(const char* key, std::uint64_t v, bool first = false) {
  return Field(key, std::to_string(v), first);
}

std::string Size(std::uint64_t bytes) {
  if (bytes == 0) return "0 B";
  char buf[32];
  if (bytes >= (std::uint64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  } else if (bytes >= (std::uint64_t{1} << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  }
  return buf;
}

}  // namespace

std::string SnapshotToJson(const RuntimeSnapshot& s) {
  std::string j = "{" + Field("schema", Quote("uttm.inspect"), true) + Field("version", 1) +
                  Field("name", Quote(s.name));
  std::string devs, bo_shrinkers;
  for (const RuntimeSnapshot::Device& d : s.devices) {
    std::string mans;
    for (const RuntimeSnapshot::Manager& m : d.managers) {
      mans += std::string(mans.empty() ? "" : ", ") + "{" + Field("type", Quote(m.type), true) +
              Field("usage_bytes", m.usage_bytes) + Field("size_bytes", m.size_bytes) +
              Field("lru_lengths", Array(m.lru_lengths)) + "}";
    }
    devs += std::string(devs.empty() ? "" : ", ") + "{" + Field("name", Quote(d.name), true) +
            Field("buffer_objects", d.buffer_objects) + Field("managers", "[" + mans + "]") +
            Field("unevictable", d.unevictable) + "}";
    bo_shrinkers += std::string(bo_shrinkers.empty() ? "" : ", ") + "{" +
                    Field("name", Quote(d.name), true) +
                    Field("shrinkable_pages", d.shrinkable_pages) +
                    Field("purgeable_pages", d.purgeable_pages) + "}";
  }
  j += Field("devices", "[" + devs + "]");
  std::string gems;
  for (const RuntimeSnapshot::GemDevice& g : s.gem_devices) {
    gems += std::string(gems.empty() ? "" : ", ") + "{" + Field("name", Quote(g.name), true) +
            Field("backing", Quote(g.backing)) +
            Field("can_evict", g.can_evict ? "true" : "false") + Field("objects", g.objects) +
            Field("lru_pages", "{" + Field("dontneed", g.purgeable_pages, true) +
                                   Field("willneed", g.evictable_pages) +
                                   Field("pinned", g.pinned_pages) +
                                   Field("evicted", g.evicted_pages) + "}") +
            "}";
  }
  j += Field("gem_devices", "[" + gems + "]");
  j += Field("memory", "{" + Field("pages_allocated", s.pages_allocated, true) +
                           Field("pages_limit", s.pages_limit) + "}");
  std::string types;
  for (const RuntimeSnapshot::PoolType& t : s.pool_types) {
    types += std::string(types.empty() ? "" : ", ") + "{" +
             Field("caching", Quote(t.caching), true) +
             Field("chunks_by_order", Array(t.chunks_by_order)) + "}";
  }
  j += Field("pool", "{" + Field("pooled_pages", s.pooled_pages, true) +
                         Field("page_pool_size", s.page_pool_size) +
                         Field("types", "[" + types + "]") + "}");
  const RuntimeSnapshot::Compressed& z = s.compressed;
  j += Field(
      "store",
      "{" + Field("describe", Quote(s.store), true) + Field("bytes_used", s.store_bytes_used) +
          Field("bytes_available", s.store_bytes_available) +
          Field("compressed",
                "{" + Field("pages", z.pages, true) + Field("payload_bytes", z.payload_bytes) +
                    Field("slab_bytes", z.slab_bytes) + Field("same_filled", z.same_filled) +
                    Field("compressed", z.compressed) + Field("raw", z.raw) +
                    Field("compacted", z.compacted) + Field("external_pages", z.external_pages) +
                    "}") +
          "}");
  std::string sh;
  for (const RuntimeSnapshot::Shrinker& r : s.shrinkers) {
    sh += std::string(sh.empty() ? "" : ", ") + "{" + Field("name", Quote(r.name), true) +
          Field("seeks", std::to_string(r.seeks)) + Field("batch", r.batch) +
          Field("last_count", r.last_count) + Field("count_calls", r.count_calls) +
          Field("scan_calls", r.scan_calls) + Field("scanned", r.scanned) +
          Field("freed", r.freed) + Field("stops", r.stops) + Field("deferred", r.deferred) + "}";
  }
  j += Field("shrinkers", "[" + sh + "]");
  j += Field("bo_shrinkers", "[" + bo_shrinkers + "]");
  std::string budgets;
  for (const RuntimeSnapshot::Budget& b : s.budgets) {
    const BudgetCounters& c = b.counters;
    // Unlimited values as null, as dmem's files say "max".
    auto limit = [](std::uint64_t v) {
      return v == kBudgetUnlimited ? std::string("null") : std::to_string(v);
    };
    budgets += std::string(budgets.empty() ? "" : ", ") + "{" +
               Field("group", Quote(b.group), true) + Field("region", Quote(b.region)) +
               Field("current", c.current) + Field("peak", c.peak) + Field("min", c.min) +
               Field("low", c.low) + Field("high", limit(c.high)) + Field("max", limit(c.max)) +
               Field("max_hits", c.max_hits) + Field("evictions_caused", c.evictions_caused) +
               Field("evictions_suffered", c.evictions_suffered) +
               Field("protection_breaches", c.protection_breaches) +
               Field("reclaim_runs", c.reclaim_runs) + Field("reclaimed_bytes", c.reclaimed_bytes) +
               "}";
  }
  j += Field("budgets", "[" + budgets + "]");
  if (s.reclaim_thread) {
    j += Field("reclaim_thread", "{" + Field("episodes", s.reclaim_episodes, true) +
                                     Field("sources", Quote(s.reclaim_sources)) + "}");
  }
  j += Field("stats", s.stats_json.empty() ? "{}" : s.stats_json);
  return j + "}";
}

std::string SnapshotToText(const RuntimeSnapshot& s) {
  std::string out;
  char line[256];
  for (const RuntimeSnapshot::Device& d : s.devices) {
    out += "device " + d.name + ": " + std::to_string(d.buffer_objects) + " buffer objects; " +
           std::to_string(d.unevictable) + " unevictable\n";
    for (const RuntimeSnapshot::Manager& m : d.managers) {
      std::string lru;
      for (std::uint64_t n : m.lru_lengths) lru += (lru.empty() ? "" : " ") + std::to_string(n);
      std::snprintf(line, sizeof line, "  manager %-6s usage %10s / %-10s lru[prio 0..3] %s\n",
                    m.type.c_str(), Size(m.usage_bytes).c_str(),
                    m.size_bytes == 0 ? "unbounded" : Size(m.size_bytes).c_str(), lru.c_str());
      out += line;
    }
  }
  for (const RuntimeSnapshot::GemDevice& g : s.gem_devices) {
    out += "gem device " + g.name + " (" + g.backing + (g.can_evict ? "" : ", no eviction") +
           "): " + std::to_string(g.objects) + " objects; lru pages: dontneed " +
           std::to_string(g.purgeable_pages) + ", willneed " + std::to_string(g.evictable_pages) +
           ", pinned " + std::to_string(g.pinned_pages) + ", evicted " +
           std::to_string(g.evicted_pages) + "\n";
  }
  out += "memory: " + std::to_string(s.pages_allocated) + " of " + std::to_string(s.pages_limit) +
         " pages held\n";
  out += "pool: " + std::to_string(s.pooled_pages) + " pages pooled (max " +
         std::to_string(s.page_pool_size) + ")\n";
  out += "  caching    order:";
  for (unsigned o = 0; o < kNumPageOrders; ++o) {
    std::snprintf(line, sizeof line, " %5u", o);
    out += line;
  }
  out += "\n";
  for (const RuntimeSnapshot::PoolType& t : s.pool_types) {
    std::snprintf(line, sizeof line, "  %-16s", t.caching.c_str());
    out += line;
    for (std::uint64_t n : t.chunks_by_order) {
      std::snprintf(line, sizeof line, " %5llu", static_cast<unsigned long long>(n));
      out += line;
    }
    out += "\n";
  }
  out += "store: " + s.store + ": " + Size(s.store_bytes_used) + " used, " +
         Size(s.store_bytes_available) + " available\n";
  const RuntimeSnapshot::Compressed& z = s.compressed;
  if (z.pages != 0 || z.same_filled + z.compressed + z.raw != 0) {
    std::snprintf(
        line, sizeof line,
        "  compressed: %llu pages in %s (ratio %.2f, same-filled pages free; slabs %s), "
        "kept so far: %llu "
        "same-filled, %llu compressed, %llu raw; %llu moved by compaction\n",
        static_cast<unsigned long long>(z.pages), Size(z.payload_bytes).c_str(),
        z.payload_bytes != 0
            ? static_cast<double>(z.pages * kPageSize) / static_cast<double>(z.payload_bytes)
            : 0.0,
        Size(z.slab_bytes).c_str(), static_cast<unsigned long long>(z.same_filled),
        static_cast<unsigned long long>(z.compressed), static_cast<unsigned long long>(z.raw),
        static_cast<unsigned long long>(z.compacted));
    out += line;
  }
  out += "shrinkers:\n";
  for (const RuntimeSnapshot::Shrinker& r : s.shrinkers) {
    std::snprintf(
        line, sizeof line,
        "  %-18s count %8llu scans %6llu scanned %9llu freed %9llu deferred %llu\n", r.name.c_str(),
        static_cast<unsigned long long>(r.last_count),
        static_cast<unsigned long long>(r.scan_calls), static_cast<unsigned long long>(r.scanned),
        static_cast<unsigned long long>(r.freed), static_cast<unsigned long long>(r.deferred));
    out += line;
  }
  for (const RuntimeSnapshot::Device& d : s.devices) {
    out += "  " + d.name + ": shrinkable " + std::to_string(d.shrinkable_pages) +
           " pages, purgeable " + std::to_string(d.purgeable_pages) + " pages\n";
  }
  if (!s.budgets.empty()) {
    out +=
        "budgets (group, region: current / peak; min low high max; evictions caused / "
        "suffered):\n";
    auto limit = [](std::uint64_t v) {
      return v == kBudgetUnlimited ? std::string("max") : Size(v);
    };
    for (const RuntimeSnapshot::Budget& b : s.budgets) {
      const BudgetCounters& c = b.counters;
      out += "  " + b.group + " " + b.region + ": " + Size(c.current) + " / " + Size(c.peak) +
             "; " + Size(c.min) + " " + Size(c.low) + " " + limit(c.high) + " " + limit(c.max) +
             "; " + std::to_string(c.evictions_caused) + " / " +
             std::to_string(c.evictions_suffered) +
             (c.max_hits != 0 ? "; max hit " + std::to_string(c.max_hits) + " times" : "") +
             (c.protection_breaches != 0
                  ? "; protection breached " + std::to_string(c.protection_breaches) + " times"
                  : "") +
             (c.reclaim_runs != 0 ? "; reclaimed " + Size(c.reclaimed_bytes) + " in " +
                                        std::to_string(c.reclaim_runs) + " reclaims"
                                  : "") +
             "\n";
    }
  }
  if (s.reclaim_thread) {
    out += "reclaim thread: " + std::to_string(s.reclaim_episodes) +
           " episodes; sources: " + s.reclaim_sources + "\n";
  }
  return out;
}

}  // namespace uttm
