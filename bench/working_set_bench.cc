// Copyright (c) uttm developers.
//
// working_set_bench: the working set over budget (the scenario `uttm bench` runs; one
// implementation, tools/uttm/bench.h RunWorkingSet). Each iteration runs the whole scenario: the
// uttm accesses, the same accesses on plain memory with no limit, and a raw pread of the same
// bytes, all in the same run, so the counters are ratios against baselines measured beside them:
//   accesses_per_s / plain_ratio   accesses per second, and uttm over plain memory;
//   restore_ratio                  restore bandwidth over raw pread (goal >= 0.8);
//   p50_us, p99_us                 access latency;
//   peak_rss_over_limit_mib        peak RSS minus the page limit (goal <= 64);
//   store_traffic_ratio            bytes restored + written over bytes accessed;
//   write_ratio                    bytes written to the store over bytes the workload rewrote
//                                  (goal <= 1.1: clean copies save rewriting what was restored).
// Arguments: buffers, MiB per buffer, page limit in MiB, accesses, prefetch (1: each thread hints
// its next read to Runtime::Prefetch first), touch (1: reads touch restore-on-touch mappings; the
// explicit-mapping mode runs first in the same iteration: touch_over_explicit, goal >= 0.8). The
// default case is small (256 x 1 MiB over 64 MiB); BM_WorkingSet/1024/4/1024/3000/0/0 is the
// full-size figure (4 GiB of buffers over 1 GiB, about a minute), .../1/0 the same with prefetch,
// .../0/1 restore on touch. Read medians with --benchmark_repetitions=3.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "bench.h"

namespace uttm {
namespace {

void BM_WorkingSet(benchmark::State& state) {
  const std::uint64_t mib = std::uint64_t{1} << 20;
  tool::WorkingSet p{static_cast<std::size_t>(state.range(0)),
                     static_cast<std::uint64_t>(state.range(1)) * mib,
                     static_cast<std::uint64_t>(state.range(2)) * mib,
                     static_cast<std::size_t>(state.range(3)),
                     state.range(4) != 0,
                     state.range(5) != 0};
  tool::WorkingSetResult last;
  for (auto _ : state) {
    Result<tool::WorkingSetResult> r = tool::RunWorkingSet(p);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    last = *r;
  }
  state.counters["accesses_per_s"] = last.accesses_per_s;
  state.counters["plain_ratio"] = last.accesses_per_s / last.plain_accesses_per_s;
  state.counters["restore_ratio"] =
      last.raw_pread_bytes_per_s > 0 ? last.restore_bytes_per_s / last.raw_pread_bytes_per_s : 0;
  if (p.touch) {
    state.counters["touch_over_explicit"] = last.accesses_per_s / last.explicit_accesses_per_s;
  }
  state.counters["p50_us"] = last.p50_us;
  state.counters["p99_us"] = last.p99_us;
  state.counters["peak_rss_over_limit_mib"] =
      (static_cast<double>(last.peak_rss_bytes) - static_cast<double>(p.limit)) /
      static_cast<double>(mib);
  state.counters["write_ratio"] =
      last.rewritten_bytes > 0
          ? static_cast<double>(last.written_bytes) / static_cast<double>(last.rewritten_bytes)
          : 0;
  state.counters["store_traffic_ratio"] =
      static_cast<double>(last.restored_bytes + last.written_bytes) /
      (static_cast<double>(p.accesses) * static_cast<double>(p.size));
}
BENCHMARK(BM_WorkingSet)
    ->Args({256, 1, 64, 1000, 0, 0})
    ->Args({256, 1, 64, 1000, 0, 1})
    ->Args({1024, 4, 1024, 3000, 0, 0})
    ->Args({1024, 4, 1024, 3000, 1, 0})
    ->Args({1024, 4, 1024, 3000, 0, 1})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
