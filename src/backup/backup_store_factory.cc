// Copyright (c) uttm developers.
#include "uttm/backup_store_factory.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "uttm/file_store.h"
#include "uttm/memfd_store.h"
#include "uttm/mutex.h"

namespace uttm {
namespace {

// The kinds registered at run time, by name.
struct Registry {
  Mutex mu;
  std::map<std::string, BackupStoreMaker, std::less<>> makers UTTM_GUARDED_BY(mu);
  std::map<std::string, BackupStoreWrapper, std::less<>> wrappers UTTM_GUARDED_BY(mu);
};
Registry& Makers() {
  static Registry* r = new Registry;  // never destroyed: makers may be looked up at exit
  return *r;
}

bool BuiltIn(std::string_view kind) { return kind == "memfd" || kind == "shmem" || kind == "file"; }

}  // namespace

Status BackupStoreSpecError(std::string_view spec, const std::string& what) {
  return Status(Errc::kInvalid, "backup store spec \"" + std::string(spec) + "\": " + what);
}

Status RegisterBackupStoreKind(std::string kind, BackupStoreMaker make) {
  if (kind.empty() || kind.find_first_of(":,") != std::string::npos || BuiltIn(kind)) {
    return Status(Errc::kInvalid, "cannot register backup store kind \"" + kind +
                                      "\" (empty, holds ':' or ',', or built in)");
  }
  if (!make) return Status(Errc::kInvalid, "backup store kind \"" + kind + "\": no maker");
  Registry& r = Makers();
  MutexLock lock(&r.mu);
  r.makers[std::move(kind)] = std::move(make);
  return Status();
}

Status RegisterBackupStoreOption(std::string option, BackupStoreWrapper wrap) {
  if (option.empty() || option.find_first_of(":,=") != std::string::npos) {
    return Status(Errc::kInvalid, "cannot register backup store option \"" + option +
                                      "\" (empty, or holds ':', ',' or '=')");
  }
  if (!wrap) return Status(Errc::kInvalid, "backup store option \"" + option + "\": no wrapper");
  Registry& r = Makers();
  MutexLock lock(&r.mu);
  r.wrappers[std::move(option)] = std::move(wrap);
  return Status();
}

// "512M" -> 536870912. False on a malformed number or suffix, or overflow.
bool ParseBackupStoreSize(std::string_view text, std::uint64_t* out) {
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

namespace {

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

namespace {

// The store of `spec` without its wrapper options: `parts` is the spec split at ',' with them
// taken out.
Result<std::unique_ptr<BackupStore>> MakeStore(std::string_view spec,
                                               const std::vector<std::string_view>& parts,
                                               Stats* stats, MemoryContext* memory) {
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
    if (has_dir) return BackupStoreSpecError(spec, "a memfd store takes no directory");
    MemfdStoreOptions options;
    options.stats = stats;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      std::string_view opt = parts[i];
      if (opt == "allow_without_swap") {
        options.allow_without_swap = true;
      } else if (opt == "inline_checksum") {
        options.parallel_checksum = false;
      } else if (opt.starts_with("cap=")) {
        if (!ParseBackupStoreSize(opt.substr(4), &options.capacity_bytes)) {
          return BackupStoreSpecError(spec, "bad size in \"" + std::string(opt) + "\"");
        }
      } else if (opt.starts_with("name=") && opt.size() > 5) {
        options.name = std::string(opt.substr(5));
      } else {
        return BackupStoreSpecError(
            spec, "unknown memfd option \"" + std::string(opt) +
                      "\" (known: allow_without_swap, cap=SIZE, inline_checksum, name=NAME)");
      }
    }
    return NewMemfdStore(options);
  }

  if (kind == "file") {
    if (has_dir && dir.empty())
      return BackupStoreSpecError(spec, "empty directory after \"file:\"");
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
        if (!ParseBackupStoreSize(opt.substr(4), &options.capacity_bytes)) {
          return BackupStoreSpecError(spec, "bad size in \"" + std::string(opt) + "\"");
        }
      } else if (opt.starts_with("reserve=")) {
        if (!ParseBackupStoreSize(opt.substr(8), &options.reserve_bytes)) {
          return BackupStoreSpecError(spec, "bad size in \"" + std::string(opt) + "\"");
        }
      } else {
        return BackupStoreSpecError(
            spec, "unknown file option \"" + std::string(opt) +
                      "\" (known: direct, cap=SIZE, inline_checksum, reserve=SIZE, "
                      "no_tmpfile)");
      }
    }
    return NewFileStore(options);
  }

  BackupStoreMaker make;
  std::string known = "memfd, shmem, file";
  {
    Registry& r = Makers();
    MutexLock lock(&r.mu);
    if (auto it = r.makers.find(kind); it != r.makers.end()) make = it->second;
    for (const auto& [name, maker] : r.makers) known += ", " + name;
  }
  if (!make) {
    return BackupStoreSpecError(
        spec, "unknown store kind \"" + std::string(kind) + "\" (known: " + known + ")");
  }
  BackupStoreSpec parsed{.text = spec,
                         .kind = kind,
                         .directory = dir,
                         .has_directory = has_dir,
                         .options = std::vector<std::string_view>(parts.begin() + 1, parts.end())};
  return make(parsed, BackupStoreEnv{.stats = stats != nullptr ? stats : &Stats::Default(),
                                     .memory = memory});
}

}  // namespace

Result<std::unique_ptr<BackupStore>> CreateBackupStore(std::string_view spec, Stats* stats,
                                                       MemoryContext* memory) {
  if (spec.empty()) {
    return BackupStoreSpecError(spec, "empty (expected \"memfd\" or \"file[:DIR]\")");
  }
  std::vector<std::string_view> parts = Split(spec, ',');
  // Options every kind takes (registered wrappers) come out first, to be applied in order.
  std::vector<BackupStoreWrapper> wrappers;
  {
    Registry& r = Makers();
    MutexLock lock(&r.mu);
    for (auto it = parts.begin() + 1; it != parts.end();) {
      if (auto w = r.wrappers.find(*it); w != r.wrappers.end()) {
        wrappers.push_back(w->second);
        it = parts.erase(it);
      } else {
        ++it;
      }
    }
  }
  UTTM_ASSIGN_OR_RETURN(std::unique_ptr<BackupStore> store, MakeStore(spec, parts, stats, memory));
  const BackupStoreEnv env{.stats = stats != nullptr ? stats : &Stats::Default(), .memory = memory};
  for (const BackupStoreWrapper& wrap : wrappers) {
    UTTM_ASSIGN_OR_RETURN(store, wrap(std::move(store), env));
  }
  return store;
}

}  // namespace uttm
