// Copyright (c) uttm developers.
//
// bench.h: `uttm bench`: the standard scenarios, each figure a ratio against a baseline measured
// in the same run on the same machine, file system and bytes:
//
//   backup (file, memfd)   bytes/s of BufferObject backups through the store (bo Shrink helper)
//                          vs raw pwrite of the same bytes to a file / memfd of the same kind
//   restore (file, memfd)  bytes/s of restores (Populate) vs raw pread of the same bytes
//   purge                  bytes/s of purging DONTNEED objects vs raw madvise(MADV_DONTNEED)
//   eviction walk          ns per evicted candidate (VRAM -> TT, engine copy) vs memcpy ns of
//                          the same bytes
//   shrinker scan          bytes/s freed by Reclaimer::Shrink (driver shrinker, backup to the
//                          file store) vs raw pwrite
//   demo end to end        ops/s of the demo preset vs the same run with a page limit large
//                          enough that nothing is reclaimed
//
// Ratios > 1 mean uttm is faster than the baseline (for ns figures: baseline / uttm). The host's
// speed drifts by tens of percent within seconds, so every scenario runs in several rounds, each
// measuring uttm and its baseline back to back; the reported ratio is the median of the rounds'
// ratios, with their range.
//
// Thread-safety: RunBench is called once, from the CLI thread.
#ifndef UTTM_TOOLS_UTTM_BENCH_H_
#define UTTM_TOOLS_UTTM_BENCH_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "uttm/status.h"

namespace uttm::tool {

// The working set over budget (the job uttm exists for): `n` buffers of `size` bytes over a page
// limit of `limit`, 2 threads (each over its own half of the buffers, in a shuffled order),
// `accesses` accesses picked by Zipf(0.9); 10 % rewrite the whole buffer with a new version
// (mapped with discard), the rest map it and check every byte; every buffer is checked at the
// end. The same accesses on plain memory with no limit are the baseline; the restore bandwidth
// (bytes restored over the time of the maps that restored) is compared with a raw pread of the
// same bytes on the same file system. Shared by `uttm bench` and bench/working_set_bench.
struct WorkingSet {
  std::size_t n;
  std::uint64_t size;
  std::uint64_t limit;
  std::size_t accesses;
  // Each thread hints the buffer of its next read to the runtime's prefetcher (Runtime::Prefetch)
  // before its current access, as a server that knows its next request does.
  bool prefetch = false;
  // Reads touch a restore-on-touch mapping each buffer keeps (mapping.h, kMapRestoreOnTouch)
  // instead of mapping the buffer for each read (rewrites still map it with discard). The same
  // accesses with explicit mappings run first, in the same run, as this mode's baseline.
  bool touch = false;
};

struct WorkingSetResult {
  double accesses_per_s = 0;
  double plain_accesses_per_s = 0;
  double explicit_accesses_per_s = 0;  // touch mode: the explicit-mapping run before it
  double restore_bytes_per_s = 0;      // 0 when nothing was restored
  double raw_pread_bytes_per_s = 0;
  double p50_us = 0, p99_us = 0;
  double plain_p50_us = 0, plain_p99_us = 0;
  std::uint64_t peak_rss_bytes = 0;
  std::uint64_t restored_bytes = 0;
  std::uint64_t written_bytes = 0;    // to the store, during the accesses
  std::uint64_t rewritten_bytes = 0;  // by the workload's rewrites, during the accesses
};

// Runs the scenario once. kInvalid for parameters that make no scenario; kFault when a byte read
// back was wrong (never a result then); the runtime's and the raw baseline's errors.
Result<WorkingSetResult> RunWorkingSet(const WorkingSet& params);

// Runs the scenarios `rounds` times (0: 5, or 3 with `quick`; smaller scenarios with `quick`),
// round by round, prints a table of medians, writes JSON to `json_path` when not empty. Returns
// the exit code (0, or 1 when a scenario failed in some round: each error is printed).
int RunBench(bool quick, int rounds, const std::string& json_path);

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_BENCH_H_
