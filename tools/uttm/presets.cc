// Copyright (c) uttm developers.
//
// The built-in workloads. Each is a JSON document in the workload format and is loaded through
// ParseWorkload like any file, so the presets and the format cannot drift apart.
#include <fmt/format.h>

#include "workload.h"

namespace uttm::tool {
namespace {

struct Preset {
  PresetInfo info;
  std::string_view json;
};

// demo: two devices, working set ~3x the page limit (~300 MiB vs 96 MiB), Zipf reuse, a purgeable
// cache class. Sized to finish in well under a minute on two cores.
constexpr std::string_view kDemo = R"json({
  "name": "demo",
  "description": "Oversubscription across two devices: working set ~3x the page limit, Zipf reuse, a purgeable share",
  "seed": 1,
  "devices": {"count": 2, "vram": "32MiB"},
  "limits": {"page_limit": "96MiB", "store": "file"},
  "classes": [
    {"name": "textures", "count": 48, "size": {"dist": "log-uniform", "min": "256KiB", "max": "8MiB"},
     "placement": ["vram", "tt", "system"], "priority": 2},
    {"name": "buffers", "count": 96, "size": {"dist": "uniform", "min": "64KiB", "max": "2MiB"},
     "placement": ["tt", "system"], "priority": 1, "purgeable": 0.1},
    {"name": "cache", "count": 96, "size": "1MiB", "placement": ["system"], "priority": 0,
     "purgeable": 0.9}
  ],
  "access": {"pattern": "zipf", "exponent": 1.1},
  "phases": [
    {"name": "warmup", "ops": 1500, "threads": 2,
     "mix": {"read": 0.5, "write": 0.4, "madvise": 0.1}},
    {"name": "steady", "ops": 4000, "threads": 2,
     "mix": {"read": 0.5, "write": 0.2, "create": 0.05, "free": 0.05, "madvise": 0.2}},
    {"name": "reuse", "ops": 1500, "threads": 2,
     "mix": {"read": 0.8, "write": 0.1, "madvise": 0.1}, "access": {"pattern": "uniform"}}
  ]
})json";

constexpr std::string_view kStreaming = R"json({
  "name": "streaming",
  "description": "Large buffers read and written front to back, three times the page limit",
  "seed": 1,
  "devices": {"count": 1, "vram": "64MiB"},
  "limits": {"page_limit": "128MiB", "store": "memfd"},
  "classes": [
    {"name": "streams", "count": 24, "size": "16MiB", "placement": ["vram", "system"]}
  ],
  "access": {"pattern": "sequential"},
  "phases": [
    {"name": "stream", "ops": 400, "threads": 2, "mix": {"read": 0.5, "write": 0.5}}
  ]
})json";

constexpr std::string_view kPurgeableCache = R"json({
  "name": "purgeable-cache",
  "description": "Mostly DONTNEED caches: reclaim purges instead of backing up",
  "seed": 1,
  "devices": {"count": 1, "vram": "32MiB"},
  "limits": {"page_limit": "64MiB", "store": "memfd"},
  "classes": [
    {"name": "cache", "count": 256, "size": {"dist": "uniform", "min": "256KiB", "max": "1MiB"},
     "placement": ["tt", "system"], "purgeable": 0.9},
    {"name": "state", "count": 16, "size": "1MiB", "placement": ["vram", "system"], "priority": 3}
  ],
  "access": {"pattern": "zipf", "exponent": 0.9, "span_pages": 16},
  "phases": [
    {"name": "cache", "ops": 4000, "threads": 2, "mix": {"read": 0.5, "write": 0.1, "madvise": 0.4}}
  ]
})json";

constexpr std::string_view kChurn = R"json({
  "name": "churn",
  "description": "Many small objects created and freed while others are accessed",
  "seed": 1,
  "devices": {"count": 1, "vram": "16MiB"},
  "limits": {"page_limit": "64MiB", "store": "memfd"},
  "classes": [
    {"name": "small", "count": 512, "size": {"dist": "uniform", "min": "4KiB", "max": "64KiB"}},
    {"name": "medium", "count": 64, "size": "256KiB", "placement": ["tt", "system"]}
  ],
  "access": {"pattern": "uniform"},
  "phases": [
    {"name": "churn", "ops": 20000, "threads": 2,
     "mix": {"read": 0.2, "write": 0.2, "create": 0.3, "free": 0.3}}
  ]
})json";

const std::vector<Preset>& AllPresets() {
  static const std::vector<Preset> kAll = {
      {{"demo", "two devices, working set ~3x the page limit, Zipf reuse, purgeable share"}, kDemo},
      {{"streaming", "large sequential buffers"}, kStreaming},
      {{"purgeable-cache", "mostly DONTNEED caches"}, kPurgeableCache},
      {{"churn", "many small objects created and freed"}, kChurn},
  };
  return kAll;
}

}  // namespace

const std::vector<PresetInfo>& Presets() {
  static const std::vector<PresetInfo> kInfos = [] {
    std::vector<PresetInfo> v;
    for (const Preset& p : AllPresets()) v.push_back(p.info);
    return v;
  }();
  return kInfos;
}

Result<std::string_view> PresetJson(std::string_view name) {
  std::string names;
  for (const Preset& p : AllPresets()) {
    if (p.info.name == name) return p.json;
    if (!names.empty()) names += ", ";
    names += p.info.name;
  }
  return Status(Errc::kNotFound, fmt::format("unknown preset '{}' (valid: {})", name, names));
}

Result<Workload> LoadPreset(std::string_view name) {
  UTTM_ASSIGN_OR_RETURN(std::string_view json, PresetJson(name));
  return ParseWorkload(json, fmt::format("preset {}", name));
}

}  // namespace uttm::tool
