// Copyright (c) uttm developers.
//
// progress.h: live progress of a run.
//
// On a terminal: one line rewritten in place (\r, erase to end of line) with a bar, the percent
// done, op and byte throughput and per-domain usage, at most every `tty_interval`. Otherwise
// (a pipe, a CI log): one plain line every `plain_interval`. --quiet prints nothing.
//
// The engine calls Update() as often as it likes (it is rate-limited here) and Finish() once.
//
// Thread-safety: Update/Finish may be called from any thread (an internal mutex serialises them).
#ifndef UTTM_TOOLS_UTTM_PROGRESS_H_
#define UTTM_TOOLS_UTTM_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "report.h"
#include "uttm/mutex.h"

namespace uttm::tool {

struct ProgressSnapshot {
  std::string phase;
  double fraction = 0;  // 0..1 of the whole run (ops- or time-based)
  double elapsed_s = 0;
  std::uint64_t ops_done = 0;
  std::uint64_t bytes_moved = 0;     // backup + restore + copies so far
  std::vector<DomainUsage> domains;  // name, capacity_bytes, final_bytes = current usage
};

class Progress {
 public:
  enum class Mode { kQuiet, kTty, kPlain };
  // Mode from `quiet` and isatty(fileno(out)).
  static Mode DetectMode(std::FILE* out, bool quiet);

  Progress(std::FILE* out, Mode mode,
           std::chrono::milliseconds tty_interval = std::chrono::milliseconds(100),
           std::chrono::milliseconds plain_interval = std::chrono::milliseconds(2000));

  // Prints if the interval since the last print has passed (always the first time).
  void Update(const ProgressSnapshot& s);
  // Prints the final state (a last line; on a terminal ends the in-place line with \n).
  void Finish(const ProgressSnapshot& s);

  // The text of one progress line, without \r or \n (exposed for tests).
  static std::string FormatLine(const ProgressSnapshot& s, bool with_bar);

 private:
  void Print(const ProgressSnapshot& s) UTTM_REQUIRES(mu_);

  std::FILE* const out_;
  const Mode mode_;
  const std::chrono::milliseconds interval_;
  Mutex mu_;
  bool printed_ UTTM_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point last_ UTTM_GUARDED_BY(mu_);
};

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_PROGRESS_H_
