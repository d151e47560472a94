// Copyright (c) uttm developers.
#include "uttm/backup_store_factory.h"

#include <cstdint>
#include <string>
#include <vector>

#include "uttm/file_store.h"
#include "uttm/memfd_store.h"

namespace uttm {
namespace {

Status SpecError(std::string_view spec, const std::string& what) {
  return Status(Errc::kInvalid, "backup store spec \"" + std::string(spec) + "\": " + what);
}

// "512M" -> 536870912. False on a malformed number or suffix, or overflow.
bool ParseSize(std::string_view text, std::uint64_t* out) {
  if (text.empty()) return false;
  unsigned shift = 0;
  switch (text.back()) {
    case 'K':
    case 'k':
      shift = 10;
      break;
    case 'M':
    case 'm':
      shift = 20;
      break;
    case 'G':
    case 'g':
      shift = 30;
      break;
    case 'T':
    case 't':
      shift = 40;
      break;
    default:
      break;
  }
  if (shift != 0) text.remove_suffix(1);
  if (text.empty()) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (shift != 0 && v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t begin = 0;
  while (true) {
    std::size_t end = s.find(sep, begin);
    if (end == std::string_view::npos) {
      parts.push_back(s.substr(begin));
      return parts;
    }
    parts.push_back(s.substr(begin, end - begin));
    begin = end + 1;
  }
}

}  // namespace

Result<std::unique_ptr<BackupStore>> CreateBackupStore(std::string_view spec, Stats* stats) {
  if (spec.empty()) return SpecError(spec, "empty (expected \"memfd\" or \"file[:DIR]\")");
  std::vector<std::string_view> parts = Split(spec, ',');
  std::string_view head = parts[0];
  std::string_view kind = head;
  std::string_view dir;
  bool has_dir = false;
  if (std::size_t colon = head.find(':'); colon != std::string_view::npos) {
    kind = head.substr(0, colon);
    dir = head.substr(colon + 1);
    has_dir = true;
  }

  if (kind == "memfd" || kind == "shmem") {
    if (has_dir) return SpecError(spec, "a memfd store takes no directory");
    MemfdStoreOptions options;
    options.stats = stats;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      std::string_view opt = parts[i];
      if (opt == "allow_without_swap") {
        options.allow_without_swap = true;
      } else if (opt == "inline_checksum") {
        options.parallel_checksum = false;
      } else if (opt.starts_with("cap=")) {
        if (!ParseSize(opt.substr(4), &options.capacity_bytes)) {
          return SpecError(spec, "bad size in \"" + std::string(opt) + "\"");
        }
      } else if (opt.starts_with("name=") && opt.size() > 5) {
        options.name = std::string(opt.substr(5));
      } else {
        return SpecError(
            spec, "unknown memfd option \"" + std::string(opt) +
                      "\" (known: allow_without_swap, cap=SIZE, inline_checksum, name=NAME)");
      }
    }
    return NewMemfdStore(options);
  }

  if (kind == "file") {
    if (has_dir && dir.empty()) return SpecError(spec, "empty directory after \"file:\"");
    FileStoreOptions options;
    options.stats = stats;
    options.directory = std::string(dir);
    for (std::size_t i = 1; i < parts.size(); ++i) {
      std::string_view opt = parts[i];
      if (opt == "direct") {
        options.o_direct = true;
      } else if (opt == "no_tmpfile") {
        options.use_o_tmpfile = false;
      } else if (opt == "inline_checksum") {
        options.parallel_checksum = false;
      } else if (opt.starts_with("cap=")) {
        if (!ParseSize(opt.substr(4), &options.capacity_bytes)) {
          return SpecError(spec, "bad size in \"" + std::string(opt) + "\"");
        }
      } else if (opt.starts_with("reserve=")) {
        if (!ParseSize(opt.substr(8), &options.reserve_bytes)) {
          return SpecError(spec, "bad size in \"" + std::string(opt) + "\"");
        }
      } else {
        return SpecError(spec, "unknown file option \"" + std::string(opt) +
                                   "\" (known: direct, cap=SIZE, inline_checksum, reserve=SIZE, "
                                   "no_tmpfile)");
      }
    }
    return NewFileStore(options);
  }

  return SpecError(spec,
                   "unknown store kind \"" + std::string(kind) + "\" (known: memfd, shmem, file)");
}

}  // namespace uttm
