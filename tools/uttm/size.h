// Copyright (c) uttm developers.
//
// size.h: parsing and printing of human sizes ("64MiB", "1.5GiB", "4096") and durations ("30s").
//
// Accepted size units (case-insensitive): B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB; all binary
// (1K = 1024). A bare number means bytes. Fractions are allowed when the result is a whole number
// of bytes ("1.5MiB"). Thread-safety: pure functions.
#ifndef UTTM_TOOLS_UTTM_SIZE_H_
#define UTTM_TOOLS_UTTM_SIZE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "uttm/status.h"

namespace uttm::tool {

// Parses a size. Errors: kInvalid with a message saying what is wrong and what is accepted.
Result<std::uint64_t> ParseSize(std::string_view text);

// Parses a duration in seconds: a number with an optional unit ms, s, m, h ("90", "1.5s", "2m").
// Errors: kInvalid (bad syntax, negative, not finite).
Result<double> ParseDuration(std::string_view text);

// "0 B", "4 KiB", "1.5 MiB", "2.00 GiB": the largest binary unit that keeps the value >= 1.
std::string FormatSize(std::uint64_t bytes);

// What ParseSize accepts, for error messages.
inline constexpr std::string_view kSizeSyntax =
    "a byte count or a number with a unit B, KiB, MiB, GiB, TiB (also K, M, G, T, KB, MB, GB, TB)";

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_SIZE_H_
