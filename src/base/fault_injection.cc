// Copyright (c) uttm developers.
#include "uttm/fault_injection.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/check.h"
#include "uttm/mutex.h"

namespace uttm {
namespace {

struct PointInfo {
  const char* name;
  const char* description;
};

constexpr std::array<PointInfo, kNumFaultPoints> kPoints = {{
#define UTTM_FAULT_INFO_(id, name, desc) {name, desc},
    UTTM_FAULT_POINTS(UTTM_FAULT_INFO_)
#undef UTTM_FAULT_INFO_
}};

struct PointState {
  Mutex mu;
  FaultSpec spec UTTM_GUARDED_BY(mu);
  bool armed UTTM_GUARDED_BY(mu) = false;
  std::uint64_t rng UTTM_GUARDED_BY(mu) = 0;
  std::uint64_t calls UTTM_GUARDED_BY(mu) = 0;
  std::uint64_t failures UTTM_GUARDED_BY(mu) = 0;
};

std::array<PointState, kNumFaultPoints>& States() {
  static auto* states = new std::array<PointState, kNumFaultPoints>();
  return *states;
}

unsigned Index(FaultPoint p) { return static_cast<unsigned>(p); }

// splitmix64: small, fast, good enough to spread fault decisions.
std::uint64_t NextRandom(std::uint64_t* state) {
  std::uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Status ValidateSpec(const FaultSpec& spec) {
  if (spec.interval == 0) return Status(Errc::kInvalid, "interval must be at least 1");
  if (!(spec.probability >= 0.0 && spec.probability <= 100.0)) {
    return Status(Errc::kInvalid, "probability must be a percentage from 0 to 100");
  }
  if (spec.times < -1) return Status(Errc::kInvalid, "times must be -1 (unlimited) or >= 0");
  return Status();
}

void SetArmedBit(FaultPoint p, bool armed) {
  std::uint64_t bit = std::uint64_t{1} << Index(p);
  if (armed) {
    internal::g_armed_fault_mask.fetch_or(bit, std::memory_order_relaxed);
  } else {
    internal::g_armed_fault_mask.fetch_and(~bit, std::memory_order_relaxed);
  }
}

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, *out);
  return ec == std::errc() && ptr == last;
}

bool ParseDouble(std::string_view text, double* out) {
  std::string copy(text);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return !copy.empty() && end == copy.c_str() + copy.size();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Status ParseSpec(std::string_view text, FaultSpec* spec) {
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = Trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Status(Errc::kInvalid, "'" + std::string(item) + "' is not key=value");
    }
    std::string_view key = Trim(item.substr(0, eq));
    std::string_view value = Trim(item.substr(eq + 1));
    bool ok = false;
    if (key == "after") {
      ok = ParseNumber(value, &spec->after);
    } else if (key == "interval") {
      ok = ParseNumber(value, &spec->interval);
    } else if (key == "probability") {
      ok = ParseDouble(value, &spec->probability);
    } else if (key == "times") {
      ok = ParseNumber(value, &spec->times);
    } else if (key == "seed") {
      ok = ParseNumber(value, &spec->seed);
    } else {
      return Status(Errc::kInvalid, "unknown key '" + std::string(key) +
                                        "' (expected after, interval, probability, times, seed)");
    }
    if (!ok) {
      return Status(Errc::kInvalid,
                    "bad value '" + std::string(value) + "' for '" + std::string(key) + "'");
    }
  }
  return ValidateSpec(*spec);
}

}  // namespace

namespace internal {

std::atomic<std::uint64_t> g_armed_fault_mask{0};

bool ShouldFailSlow(FaultPoint point) {
  if (Index(point) >= kNumFaultPoints) return false;
  PointState& st = States()[Index(point)];
  MutexLock lock(&st.mu);
  if (!st.armed) return false;
  std::uint64_t call = st.calls++;
  if (call < st.spec.after) return false;
  if ((call - st.spec.after + 1) % st.spec.interval != 0) return false;
  if (st.spec.probability < 100.0) {
    double draw = static_cast<double>(NextRandom(&st.rng) >> 11) * 0x1.0p-53 * 100.0;
    if (draw >= st.spec.probability) return false;
  }
  ++st.failures;
  if (st.spec.times >= 0 && st.failures >= static_cast<std::uint64_t>(st.spec.times)) {
    st.armed = false;
    SetArmedBit(point, false);
  }
  return true;
}

}  // namespace internal

Status FaultInjection::Arm(FaultPoint point, const FaultSpec& spec) {
  if (Index(point) >= kNumFaultPoints) return Status(Errc::kInvalid, "no such fault point");
  UTTM_RETURN_IF_ERROR(ValidateSpec(spec));
  PointState& st = States()[Index(point)];
  MutexLock lock(&st.mu);
  st.spec = spec;
  st.rng = spec.seed ^ (0x5bd1e995ULL * (Index(point) + 1));
  st.calls = 0;
  st.failures = 0;
  st.armed = spec.times != 0;
  SetArmedBit(point, st.armed);
  return Status();
}

void FaultInjection::Disarm(FaultPoint point) {
  if (Index(point) >= kNumFaultPoints) return;
  PointState& st = States()[Index(point)];
  MutexLock lock(&st.mu);
  st.armed = false;
  SetArmedBit(point, false);
}

void FaultInjection::DisarmAll() {
  for (unsigned i = 0; i < kNumFaultPoints; ++i) Disarm(static_cast<FaultPoint>(i));
}

Status FaultInjection::Configure(std::string_view spec) {
  std::vector<std::pair<FaultPoint, FaultSpec>> parsed;
  while (!spec.empty()) {
    size_t semi = spec.find(';');
    std::string_view entry = Trim(spec.substr(0, semi));
    spec = semi == std::string_view::npos ? std::string_view() : spec.substr(semi + 1);
    if (entry.empty()) continue;
    size_t colon = entry.find(':');
    std::string_view name = Trim(entry.substr(0, colon));
    std::optional<FaultPoint> point = FromName(name);
    if (!point) {
      std::string known;
      for (const PointInfo& info : kPoints) {
        if (!known.empty()) known += ", ";
        known += info.name;
      }
      return Status(Errc::kInvalid,
                    "unknown fault point '" + std::string(name) + "' (known: " + known + ")");
    }
    FaultSpec fs;
    if (colon != std::string_view::npos) {
      Status s = ParseSpec(entry.substr(colon + 1), &fs);
      if (!s.ok()) return s.Annotate("fault point '" + std::string(name) + "'");
    }
    parsed.emplace_back(*point, fs);
  }
  for (const auto& [point, fs] : parsed) UTTM_RETURN_IF_ERROR(Arm(point, fs));
  return Status();
}

Status FaultInjection::ConfigureFromEnvironment(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return Status();
  return Configure(value).Annotate(name);
}

std::uint64_t FaultInjection::Calls(FaultPoint point) {
  if (Index(point) >= kNumFaultPoints) return 0;
  PointState& st = States()[Index(point)];
  MutexLock lock(&st.mu);
  return st.calls;
}

std::uint64_t FaultInjection::Failures(FaultPoint point) {
  if (Index(point) >= kNumFaultPoints) return 0;
  PointState& st = States()[Index(point)];
  MutexLock lock(&st.mu);
  return st.failures;
}

const char* FaultInjection::Name(FaultPoint point) {
  return Index(point) < kNumFaultPoints ? kPoints[Index(point)].name : "?";
}

const char* FaultInjection::Description(FaultPoint point) {
  return Index(point) < kNumFaultPoints ? kPoints[Index(point)].description : "?";
}

std::optional<FaultPoint> FaultInjection::FromName(std::string_view name) {
  for (unsigned i = 0; i < kNumFaultPoints; ++i) {
    if (name == kPoints[i].name) return static_cast<FaultPoint>(i);
  }
  return std::nullopt;
}

ScopedFault::ScopedFault(FaultPoint point, const FaultSpec& spec) : point_(point) {
  Status s = FaultInjection::Arm(point, spec);
  UTTM_CHECK(s.ok(), "ScopedFault given an invalid FaultSpec");
}

ScopedFault::~ScopedFault() { FaultInjection::Disarm(point_); }

}  // namespace uttm
