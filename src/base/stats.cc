// Copyright (c) uttm developers.
#include "uttm/stats.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>

#include "base/check.h"
#include "uttm/stat_source.h"

namespace uttm {
namespace {

struct StatInfo {
  const char* name;
  const char* unit;
  const char* description;
  bool gauge;
};

constexpr StatInfo kInfo[] = {
#define UTTM_STAT_COUNTER_(id, name, unit, desc) {name, unit, desc, false},
#define UTTM_STAT_GAUGE_(id, name, unit, desc) {name, unit, desc, true},
    UTTM_STATS(UTTM_STAT_COUNTER_, UTTM_STAT_GAUGE_)
#undef UTTM_STAT_COUNTER_
#undef UTTM_STAT_GAUGE_
};
static_assert(sizeof(kInfo) / sizeof(kInfo[0]) == kNumStats);

unsigned Index(Stat s) { return static_cast<unsigned>(s); }

// Stat names and units are plain identifiers, but escape anyway so the JSON is always valid.
void AppendJsonString(std::string* out, const char* s) {
  out->push_back('"');
  for (; *s != '\0'; ++s) {
    if (*s == '"' || *s == '\\') out->push_back('\\');
    out->push_back(*s);
  }
  out->push_back('"');
}

}  // namespace

Stats::Stats() = default;

Stats& Stats::Default() {
  static auto* stats = new Stats();
  return *stats;
}

const char* Stats::Name(Stat stat) { return kInfo[Index(stat)].name; }
const char* Stats::Unit(Stat stat) { return kInfo[Index(stat)].unit; }
const char* Stats::Description(Stat stat) { return kInfo[Index(stat)].description; }
bool Stats::IsGauge(Stat stat) { return kInfo[Index(stat)].gauge; }

unsigned Stats::StripeIndex() {
  // Threads get consecutive stripes in creation order; cheap and spreads well for few threads.
  static std::atomic<unsigned> next{0};
  thread_local unsigned index = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
  return index;
}

void Stats::Add(Stat stat, std::uint64_t n) {
  UTTM_DCHECK(!IsGauge(stat), "Add() on a gauge");
  stripes_[StripeIndex()].value[Index(stat)].fetch_add(n, std::memory_order_relaxed);
}

std::uint64_t Stats::Get(Stat stat) const {
  MutexLock lock(&sources_mu_);
  return CounterWith(stat, CollectSources());
}

std::uint64_t Stats::CounterWith(Stat stat, const StatValues& sources) const {
  std::uint64_t sum = sources.counter[Index(stat)];
  for (const Stripe& s : stripes_) sum += s.value[Index(stat)].load(std::memory_order_relaxed);
  return sum;
}

void Stats::GaugeAdd(Stat stat, std::int64_t delta) {
  UTTM_DCHECK(IsGauge(stat), "GaugeAdd() on a counter");
  Gauge& g = gauges_[Index(stat)];
  RaisePeak(g, g.current.fetch_add(delta, std::memory_order_relaxed) + delta);
}

void Stats::GaugeSet(Stat stat, std::int64_t value) {
  UTTM_DCHECK(IsGauge(stat), "GaugeSet() on a counter");
  Gauge& g = gauges_[Index(stat)];
  g.current.store(value, std::memory_order_relaxed);
  RaisePeak(g, value);
}

std::int64_t Stats::Current(Stat stat) const {
  MutexLock lock(&sources_mu_);
  return CurrentWith(stat, CollectSources());
}

std::int64_t Stats::Peak(Stat stat) const {
  MutexLock lock(&sources_mu_);
  return PeakWith(stat, CollectSources());
}

std::int64_t Stats::CurrentWith(Stat stat, const StatValues& sources) const {
  return gauges_[Index(stat)].current.load(std::memory_order_relaxed) +
         sources.current[Index(stat)];
}

std::int64_t Stats::PeakWith(Stat stat, const StatValues& sources) const {
  const Gauge& g = gauges_[Index(stat)];
  return std::max(g.peak.load(std::memory_order_relaxed),
                  g.current.load(std::memory_order_relaxed) + sources.peak[Index(stat)]);
}

void Stats::RaisePeak(Gauge& g, std::int64_t value) {
  std::int64_t peak = g.peak.load(std::memory_order_relaxed);
  while (value > peak && !g.peak.compare_exchange_weak(peak, value, std::memory_order_relaxed)) {
  }
}

void Stats::Reset() {
  MutexLock lock(&sources_mu_);
  for (Stripe& s : stripes_) {
    for (auto& v : s.value) v.store(0, std::memory_order_relaxed);
  }
  for (Gauge& g : gauges_) {
    g.current.store(0, std::memory_order_relaxed);
    g.peak.store(0, std::memory_order_relaxed);
  }
  for (StatSource* source : sources_) source->ResetStats();
}

void Stats::AddSource(StatSource* source) {
  MutexLock lock(&sources_mu_);
  UTTM_DCHECK(std::find(sources_.begin(), sources_.end(), source) == sources_.end(),
              "StatSource attached twice");
  sources_.push_back(source);
}

void Stats::RemoveSource(StatSource* source) {
  // All under the lock, so no read sees the source's values both in the source and folded in,
  // or in neither.
  MutexLock lock(&sources_mu_);
  auto it = std::find(sources_.begin(), sources_.end(), source);
  if (it == sources_.end()) return;
  const StatValues all = CollectSources();  // this one included: the peaks readers could see
  StatValues last;
  source->CollectStats(&last);
  sources_.erase(it);
  for (unsigned i = 0; i < kNumStats; ++i) {
    const Stat s = static_cast<Stat>(i);
    if (!IsGauge(s)) {
      if (last.counter[i] != 0) Add(s, last.counter[i]);
      continue;
    }
    Gauge& g = gauges_[i];
    RaisePeak(g, PeakWith(s, all));  // peaks never go down
    g.current.fetch_add(last.current[i], std::memory_order_relaxed);
  }
}

StatValues Stats::CollectSources() const {
  StatValues values;
  for (const StatSource* source : sources_) source->CollectStats(&values);
  return values;
}

std::string Stats::ToText() const {
  MutexLock lock(&sources_mu_);
  const StatValues sources = CollectSources();
  std::string out;
  char line[256];
  for (unsigned i = 0; i < kNumStats; ++i) {
    Stat s = static_cast<Stat>(i);
    if (IsGauge(s)) {
      std::snprintf(line, sizeof(line), "%-26s %" PRId64 " (peak %" PRId64 ") %s\n", Name(s),
                    CurrentWith(s, sources), PeakWith(s, sources), Unit(s));
    } else {
      std::snprintf(line, sizeof(line), "%-26s %" PRIu64 " %s\n", Name(s), CounterWith(s, sources),
                    Unit(s));
    }
    out += line;
  }
  return out;
}

std::string Stats::ToJson() const {
  MutexLock lock(&sources_mu_);
  const StatValues sources = CollectSources();
  std::string out = "{\"schema\":\"uttm.stats\",\"version\":" + std::to_string(kJsonVersion);
  out += ",\"counters\":{";
  bool first = true;
  for (unsigned i = 0; i < kNumStats; ++i) {
    Stat s = static_cast<Stat>(i);
    if (IsGauge(s)) continue;
    if (!first) out += ',';
    first = false;
    AppendJsonString(&out, Name(s));
    out += ':' + std::to_string(CounterWith(s, sources));
  }
  out += "},\"gauges\":{";
  first = true;
  for (unsigned i = 0; i < kNumStats; ++i) {
    Stat s = static_cast<Stat>(i);
    if (!IsGauge(s)) continue;
    if (!first) out += ',';
    first = false;
    AppendJsonString(&out, Name(s));
    out += ":{\"current\":" + std::to_string(CurrentWith(s, sources)) +
           ",\"peak\":" + std::to_string(PeakWith(s, sources)) + '}';
  }
  out += "}}";
  return out;
}

}  // namespace uttm
