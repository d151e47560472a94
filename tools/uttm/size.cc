// Copyright (c) uttm developers.
#include "size.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace uttm::tool {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits "12.5MiB" into the number 12.5 and the unit "mib". False when there is no number.
bool SplitNumber(std::string_view text, double* number, std::string* unit) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  if (i == 0) return false;
  std::string digits(text.substr(0, i));
  if (digits.front() == '.' || digits.back() == '.') return false;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *number);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return false;
  *unit = Lower(Trim(text.substr(i)));
  return true;
}

}  // namespace

Result<std::uint64_t> ParseSize(std::string_view raw) {
  std::string_view text = Trim(raw);
  double number = 0;
  std::string unit;
  if (text.empty() || !SplitNumber(text, &number, &unit)) {
    return Status(Errc::kInvalid, fmt::format("invalid size '{}': expected {}", raw, kSizeSyntax));
  }
  double scale = 0;
  if (unit.empty() || unit == "b") {
    scale = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    scale = 1024.0;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    scale = 1024.0 * 1024;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    scale = 1024.0 * 1024 * 1024 * 1024;
  } else {
    return Status(
        Errc::kInvalid,
        fmt::format("invalid size '{}': unknown unit '{}' (expected {})", raw,
                    std::string(Trim(text.substr(text.size() - unit.size()))), kSizeSyntax));
  }
  double bytes = number * scale;
  if (!std::isfinite(bytes) || bytes >= 18446744073709551615.0) {
    return Status(Errc::kInvalid, fmt::format("invalid size '{}': too large", raw));
  }
  if (bytes != std::floor(bytes)) {
    return Status(Errc::kInvalid,
                  fmt::format("invalid size '{}': not a whole number of bytes", raw));
  }
  return static_cast<std::uint64_t>(bytes);
}

Result<double> ParseDuration(std::string_view raw) {
  std::string_view text = Trim(raw);
  double number = 0;
  std::string unit;
  if (text.empty() || !SplitNumber(text, &number, &unit)) {
    return Status(Errc::kInvalid,
                  fmt::format("invalid duration '{}': expected seconds, or a number with a unit "
                              "ms, s, m, h",
                              raw));
  }
  double scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1;
  } else if (unit == "ms") {
    scale = 0.001;
  } else if (unit == "m" || unit == "min") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else {
    return Status(Errc::kInvalid,
                  fmt::format("invalid duration '{}': unknown unit (expected ms, s, m, h)", raw));
  }
  double seconds = number * scale;
  if (!std::isfinite(seconds)) {
    return Status(Errc::kInvalid, fmt::format("invalid duration '{}': not finite", raw));
  }
  return seconds;
}

std::string FormatSize(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 6) {
    value /= 1024;
    ++unit;
  }
  if (value == std::floor(value)) return fmt::format("{:.0f} {}", value, kUnits[unit]);
  if (value < 10) return fmt::format("{:.2f} {}", value, kUnits[unit]);
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

}  // namespace uttm::tool
