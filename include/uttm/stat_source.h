// Copyright (c) uttm developers.
//
// stat_source.h: a component that keeps some of its statistics itself and reports them to a Stats
// when that Stats is read.
//
// Bumping a shared atomic costs a locked instruction (about 10 ns here) per event. A component
// whose hot path already holds its own lock (the page pool's take and give) counts with plain
// integers under that lock instead, attaches itself to its Stats (Stats::AddSource), and the Stats
// adds the source's values to its own whenever it is read (Get, Current, Peak, ToText, ToJson).
// Detaching (Stats::RemoveSource) folds the source's final values into the Stats, so counters
// never go backwards when a component goes away.
#ifndef UTTM_STAT_SOURCE_H_
#define UTTM_STAT_SOURCE_H_

#include <array>
#include <cstdint>

#include "uttm/stats.h"

namespace uttm {

// A source's contribution to every stat, indexed by the Stat's value. Counters and gauges each
// use their own array; entries a source does not keep stay 0.
struct StatValues {
  std::array<std::uint64_t, kNumStats> counter{};
  std::array<std::int64_t, kNumStats> current{};
  std::array<std::int64_t, kNumStats> peak{};
};

class StatSource {
 public:
  // Adds this source's counters and gauge values (current and peak) into `*values`. Called with
  // the Stats' source lock held: it may take the source's own locks, but must not call that
  // Stats' read or attach methods. Must be thread-safe against the source's own updates.
  virtual void CollectStats(StatValues* values) const = 0;
  // Zeroes the source's counters and restarts its gauge peaks at their current values (a gauge
  // the source keeps always tells the truth, so its current value is not reset).
  virtual void ResetStats() = 0;

 protected:
  ~StatSource() = default;
};

}  // namespace uttm

#endif  // UTTM_STAT_SOURCE_H_
