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

#include <string>

namespace uttm::tool {

// Runs the scenarios `rounds` times (0: 5, or 3 with `quick`; smaller scenarios with `quick`),
// round by round, prints a table of medians, writes JSON to `json_path` when not empty. Returns
// the exit code (0, or 1 when a scenario failed in some round: each error is printed).
int RunBench(bool quick, int rounds, const std::string& json_path);

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_BENCH_H_
