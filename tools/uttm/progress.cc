// Copyright (c) uttm developers.
#include "progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "size.h"

namespace uttm::tool {

Progress::Mode Progress::DetectMode(std::FILE* out, bool quiet) {
  if (quiet) return Mode::kQuiet;
  return isatty(fileno(out)) ? Mode::kTty : Mode::kPlain;
}

Progress::Progress(std::FILE* out, Mode mode, std::chrono::milliseconds tty_interval,
                   std::chrono::milliseconds plain_interval)
    : out_(out), mode_(mode), interval_(mode == Mode::kTty ? tty_interval : plain_interval) {}

std::string Progress::FormatLine(const ProgressSnapshot& s, bool with_bar) {
  double fraction = std::clamp(s.fraction, 0.0, 1.0);
  std::string line;
  if (with_bar) {
    constexpr int kWidth = 24;
    int filled = static_cast<int>(std::lround(fraction * kWidth));
    line = "[" + std::string(static_cast<std::size_t>(filled), '#') +
           std::string(static_cast<std::size_t>(kWidth - filled), '.') + "] ";
  }
  double secs = std::max(s.elapsed_s, 1e-9);
  line += fmt::format(
      "{:3.0f}% {:.1f}s {} | {:.0f} ops/s, {}/s", fraction * 100, s.elapsed_s, s.phase,
      static_cast<double>(s.ops_done) / secs,
      FormatSize(static_cast<std::uint64_t>(static_cast<double>(s.bytes_moved) / secs)));
  for (const DomainUsage& d : s.domains) {
    if (d.capacity_bytes > 0) {
      line += fmt::format(" | {} {}/{}", d.name, FormatSize(d.final_bytes),
                          FormatSize(d.capacity_bytes));
    } else {
      line += fmt::format(" | {} {}", d.name, FormatSize(d.final_bytes));
    }
  }
  return line;
}

void Progress::Print(const ProgressSnapshot& s) {
  if (mode_ == Mode::kTty) {
    std::fprintf(out_, "\r%s\x1b[K", FormatLine(s, true).c_str());
  } else {
    std::fprintf(out_, "%s\n", FormatLine(s, false).c_str());
  }
  std::fflush(out_);
  printed_ = true;
  last_ = std::chrono::steady_clock::now();
}

void Progress::Update(const ProgressSnapshot& s) {
  if (mode_ == Mode::kQuiet) return;
  MutexLock lock(&mu_);
  if (printed_ && std::chrono::steady_clock::now() - last_ < interval_) return;
  Print(s);
}

void Progress::Finish(const ProgressSnapshot& s) {
  if (mode_ == Mode::kQuiet) return;
  MutexLock lock(&mu_);
  Print(s);
  if (mode_ == Mode::kTty) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
}

}  // namespace uttm::tool
