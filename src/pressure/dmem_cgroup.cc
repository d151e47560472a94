// Copyright (c) uttm developers.
#include "uttm/dmem_cgroup.h"

#include <algorithm>
#include <sstream>
#include <string_view>

#include "pressure/file_util.h"

namespace uttm {
namespace {

// "max", or a number with an optional memparse suffix (K, M, G, T, P, E; either case).
std::optional<std::uint64_t> ParseDmemValue(std::string_view v) {
  if (v == "max") return kBudgetUnlimited;
  if (v.empty() || v[0] < '0' || v[0] > '9') return std::nullopt;
  std::uint64_t n = 0;
  std::size_t i = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) {
    const std::uint64_t d = static_cast<std::uint64_t>(v[i] - '0');
    if (n > (UINT64_MAX - d) / 10) return std::nullopt;
    n = n * 10 + d;
  }
  if (i == v.size()) return n;
  if (i + 1 != v.size()) return std::nullopt;
  static constexpr std::string_view kSuffixes = "KMGTPE";
  const std::size_t k = kSuffixes.find(static_cast<char>(v[i] & ~0x20));  // upper case
  if (k == std::string_view::npos) return std::nullopt;
  const int shift = 10 * static_cast<int>(k + 1);
  if (n > (UINT64_MAX >> shift)) return std::nullopt;
  return n << shift;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

Result<std::vector<DmemRegionLimits>> ReadDmemLimits(const std::string& cgroup_dir) {
  std::vector<DmemRegionLimits> out;
  bool any = false;
  for (const char* file : {"dmem.min", "dmem.low", "dmem.high", "dmem.max"}) {
    const std::string path = cgroup_dir + "/" + file;
    Result<std::string> text = internal::ReadFileToString(path);
    if (text.code() == Errc::kNotFound) continue;
    if (!text.ok()) return text.status();
    any = true;
    std::istringstream lines(*text);
    int number = 0;
    for (std::string raw; std::getline(lines, raw);) {
      ++number;
      const std::string_view line = Trim(raw);
      if (line.empty()) continue;
      const std::size_t space = line.find_first_of(" \t");
      const std::string_view region = line.substr(0, space);
      const std::string_view value =
          space == std::string_view::npos ? std::string_view() : Trim(line.substr(space));
      const std::optional<std::uint64_t> bytes = ParseDmemValue(value);
      if (region.empty() || !bytes) {
        return Status(Errc::kInvalid, path + " line " + std::to_string(number) + ": \"" +
                                          std::string(line) +
                                          "\" is not \"<region> <bytes>\" or \"<region> max\"");
      }
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const DmemRegionLimits& l) { return l.region == region; });
      if (it == out.end()) {
        it = out.insert(out.end(), DmemRegionLimits{});
        it->region = std::string(region);
      }
      const std::string_view f = file;
      if (f == "dmem.min") it->min = *bytes;
      if (f == "dmem.low") it->low = *bytes;
      if (f == "dmem.high") it->high = *bytes;
      if (f == "dmem.max") it->max = *bytes;
    }
  }
  if (!any) {
    return Status(Errc::kNotFound,
                  cgroup_dir +
                      " has no dmem.min, dmem.low or dmem.max: the dmem controller is not enabled "
                      "for this cgroup (cgroup.subtree_control of its parent) or the kernel lacks "
                      "CONFIG_CGROUP_DMEM");
  }
  return out;
}

Result<std::vector<std::string>> ApplyDmemLimits(BudgetTree& tree, BudgetGroup* group,
                                                 const std::vector<DmemRegionLimits>& limits) {
  std::vector<std::string> unknown;
  for (const DmemRegionLimits& l : limits) {
    Result<int> region = tree.FindRegion(l.region);
    if (!region.ok()) {
      unknown.push_back(l.region);
      continue;
    }
    for (auto [which, value] :
         {std::pair{BudgetLimit::kMin, l.min}, std::pair{BudgetLimit::kLow, l.low},
          std::pair{BudgetLimit::kHigh, l.high}, std::pair{BudgetLimit::kMax, l.max}}) {
      if (value) UTTM_RETURN_IF_ERROR(tree.SetLimit(group, *region, which, *value));
    }
  }
  return unknown;
}

}  // namespace uttm
