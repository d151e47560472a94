// Copyright (c) uttm developers.
//
// timing.h: the clock the benchmarks time their phases with, each against a baseline timed the
// same way in the same iteration.
#ifndef UTTM_BENCH_TIMING_H_
#define UTTM_BENCH_TIMING_H_

#include <chrono>

namespace uttm::bench {

using Clock = std::chrono::steady_clock;

// Seconds since `t0`.
inline double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace uttm::bench

#endif  // UTTM_BENCH_TIMING_H_
