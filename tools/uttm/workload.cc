// Copyright (c) uttm developers.
#include "workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "size.h"
#include "uttm/backup_store_factory.h"
#include "uttm/compressed_store.h"
#include "uttm/redis_store.h"
#include "uttm/stats.h"
#include "uttm/tiered_store.h"
#include "uttm/units.h"
#include "uttm/uring_store.h"

namespace uttm::tool {
namespace {

using Json = nlohmann::json;

constexpr std::uint64_t kMaxBufferSize = std::uint64_t{4} << 30;  // 4 GiB
constexpr std::uint32_t kMaxClassCount = 1000000;
constexpr std::uint32_t kMaxDevices = 16;
constexpr std::uint32_t kMaxThreads = 256;
constexpr std::uint64_t kMaxSpanPages = std::uint64_t{1} << 20;
constexpr double kMaxExponent = 5.0;

std::string Join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string Index(std::string_view path, std::size_t i) { return fmt::format("{}[{}]", path, i); }

std::string JoinList(std::initializer_list<std::string_view> items) {
  std::string out;
  for (std::string_view s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// Closest candidate to `word` if it is plausibly a typo of it, else "".
std::string_view Closest(std::string_view word, std::initializer_list<std::string_view> known) {
  std::string_view best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  // An abbreviation ("prio" for "priority") is a typo too.
  if (word.size() >= 3) {
    for (std::string_view k : known) {
      if (k.substr(0, word.size()) == word) return k;
    }
  }
  for (std::string_view k : known) {
    std::size_t d = EditDistance(word, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  std::size_t allowed = std::max<std::size_t>(2, word.size() / 3);
  return best_distance <= allowed ? best : std::string_view();
}

const char* TypeName(const Json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number_float()) return "number";
  return j.type_name();  // "string", "object", "array", "boolean", "null"
}

// Collects "path: problem" lines while walking the document. Structural problems only (unknown
// key, wrong type, missing key, bad enum word, bad size syntax); ranges are ValidateWorkload's.
class Reader {
 public:
  std::vector<std::string> errors;

  void Error(std::string_view path, std::string_view problem) {
    errors.push_back(fmt::format("{}: {}", path.empty() ? "(top level)" : path, problem));
  }

  // True if `j` is an object; otherwise records the error.
  bool Object(const Json& j, std::string_view path) {
    if (j.is_object()) return true;
    Error(path, fmt::format("expected an object, got {}", TypeName(j)));
    return false;
  }

  // Reports every key of `j` that is not in `known`.
  void Keys(const Json& j, std::string_view path, std::initializer_list<std::string_view> known) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string_view guess = Closest(key, known);
      if (!guess.empty()) {
        Error(Join(path, key), fmt::format("unknown key (did you mean '{}'?)", guess));
      } else {
        Error(Join(path, key), fmt::format("unknown key (known keys: {})", JoinList(known)));
      }
    }
  }

  // The member `key` of `obj`, or null (recording "missing required key" when `required`).
  const Json* Member(const Json& obj, std::string_view path, const char* key, bool required) {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) Error(Join(path, key), "missing required key");
      return nullptr;
    }
    return &*it;
  }

  bool String(const Json& j, std::string_view path, std::string* out) {
    if (!j.is_string()) {
      Error(path, fmt::format("expected a string, got {}", TypeName(j)));
      return false;
    }
    *out = j.get<std::string>();
    return true;
  }

  bool Bool(const Json& j, std::string_view path, bool* out) {
    if (!j.is_boolean()) {
      Error(path, fmt::format("expected true or false, got {}", TypeName(j)));
      return false;
    }
    *out = j.get<bool>();
    return true;
  }

  // A non-negative integer (a float with an integral value is accepted).
  bool Uint(const Json& j, std::string_view path, std::uint64_t* out) {
    if (j.is_number_unsigned()) {
      *out = j.get<std::uint64_t>();
      return true;
    }
    if (j.is_number_integer()) {
      Error(path, fmt::format("must be >= 0 (got {})", j.get<std::int64_t>()));
      return false;
    }
    if (j.is_number_float()) {
      double v = j.get<double>();
      if (v >= 0 && v == std::floor(v) && v < 1.8e19) {
        *out = static_cast<std::uint64_t>(v);
        return true;
      }
    }
    Error(path, fmt::format("expected a non-negative integer, got {}",
                            j.is_number_float() ? j.dump() : TypeName(j)));
    return false;
  }

  bool Uint32(const Json& j, std::string_view path, std::uint32_t* out) {
    std::uint64_t v = 0;
    if (!Uint(j, path, &v)) return false;
    if (v > std::numeric_limits<std::uint32_t>::max()) {
      Error(path, fmt::format("too large (got {})", v));
      return false;
    }
    *out = static_cast<std::uint32_t>(v);
    return true;
  }

  bool Number(const Json& j, std::string_view path, double* out) {
    if (!j.is_number()) {
      Error(path, fmt::format("expected a number, got {}", TypeName(j)));
      return false;
    }
    *out = j.get<double>();
    return true;
  }

  // A size: a byte count or a string like "64MiB".
  bool Size(const Json& j, std::string_view path, std::uint64_t* out) {
    if (j.is_string()) {
      auto r = ParseSize(j.get<std::string>());
      if (!r.ok()) {
        Error(path, r.status().message());
        return false;
      }
      *out = *r;
      return true;
    }
    if (j.is_number()) return Uint(j, path, out);
    Error(path, fmt::format("expected a size (a byte count or a string like \"64MiB\"), got {}",
                            TypeName(j)));
    return false;
  }

  // A duration: seconds as a number, or a string like "30s".
  bool Duration(const Json& j, std::string_view path, double* out) {
    if (j.is_string()) {
      auto r = ParseDuration(j.get<std::string>());
      if (!r.ok()) {
        Error(path, r.status().message());
        return false;
      }
      *out = *r;
      return true;
    }
    if (j.is_number()) return Number(j, path, out);
    Error(path, fmt::format("expected a duration (seconds, or a string like \"30s\"), got {}",
                            TypeName(j)));
    return false;
  }

  // One of `words`; returns its index or -1.
  int Enum(const Json& j, std::string_view path, std::initializer_list<std::string_view> words) {
    std::string s;
    if (!String(j, path, &s)) return -1;
    int i = 0;
    for (std::string_view w : words) {
      if (w == s) return i;
      ++i;
    }
    std::string_view guess = Closest(s, words);
    Error(path, fmt::format("unknown value '{}' (expected one of: {}{})", s, JoinList(words),
                            guess.empty() ? "" : fmt::format("; did you mean '{}'?", guess)));
    return -1;
  }

  void ReadSizeDist(const Json& j, std::string_view path, SizeDist* out) {
    if (j.is_string() || j.is_number()) {
      out->kind = SizeDist::Kind::kFixed;
      if (Size(j, path, &out->min)) out->max = out->min;
      return;
    }
    if (!j.is_object()) {
      Error(path,
            fmt::format("expected a size or an object {{\"dist\": ...}}, got {}", TypeName(j)));
      return;
    }
    const Json* dist = Member(j, path, "dist", true);
    if (dist == nullptr) return;
    int kind = Enum(*dist, Join(path, "dist"), {"fixed", "uniform", "log-uniform"});
    if (kind < 0) return;
    out->kind = static_cast<SizeDist::Kind>(kind);
    if (out->kind == SizeDist::Kind::kFixed) {
      Keys(j, path, {"dist", "value"});
      if (const Json* v = Member(j, path, "value", true)) {
        if (Size(*v, Join(path, "value"), &out->min)) out->max = out->min;
      }
      return;
    }
    Keys(j, path, {"dist", "min", "max"});
    if (const Json* v = Member(j, path, "min", true)) Size(*v, Join(path, "min"), &out->min);
    if (const Json* v = Member(j, path, "max", true)) Size(*v, Join(path, "max"), &out->max);
  }

  void ReadAccess(const Json& j, std::string_view path, AccessPattern* out) {
    if (!Object(j, path)) return;
    Keys(j, path, {"pattern", "exponent", "span_pages"});
    if (const Json* v = Member(j, path, "pattern", true)) {
      int kind = Enum(*v, Join(path, "pattern"), {"uniform", "zipf", "sequential"});
      if (kind >= 0) out->kind = static_cast<AccessPattern::Kind>(kind);
    }
    if (const Json* v = Member(j, path, "exponent", false)) {
      if (Number(*v, Join(path, "exponent"), &out->exponent) &&
          out->kind != AccessPattern::Kind::kZipf) {
        Error(Join(path, "exponent"), "only valid with pattern 'zipf'");
      }
    }
    if (const Json* v = Member(j, path, "span_pages", false)) {
      Uint(*v, Join(path, "span_pages"), &out->span_pages);
    }
  }

  void ReadClass(const Json& j, std::string_view path, BufferClass* out) {
    if (!Object(j, path)) return;
    Keys(j, path,
         {"name", "count", "size", "placement", "priority", "purgeable", "fill", "client"});
    if (const Json* v = Member(j, path, "client", false)) {
      String(*v, Join(path, "client"), &out->client);
    }
    if (const Json* v = Member(j, path, "name", true)) String(*v, Join(path, "name"), &out->name);
    if (const Json* v = Member(j, path, "count", true)) {
      Uint32(*v, Join(path, "count"), &out->count);
    }
    if (const Json* v = Member(j, path, "size", true))
      ReadSizeDist(*v, Join(path, "size"), &out->size);
    if (const Json* v = Member(j, path, "placement", false)) {
      std::string p = Join(path, "placement");
      if (!v->is_array()) {
        Error(p, fmt::format("expected an array of domains, got {}", TypeName(*v)));
      } else {
        out->placement.clear();
        for (std::size_t i = 0; i < v->size(); ++i) {
          int d = Enum((*v)[i], Index(p, i), {"vram", "tt", "system"});
          if (d >= 0) out->placement.push_back(static_cast<Domain>(d));
        }
      }
    }
    if (const Json* v = Member(j, path, "priority", false)) {
      std::uint64_t prio = 0;
      if (Uint(*v, Join(path, "priority"), &prio)) {
        if (prio > 3) {
          Error(Join(path, "priority"), fmt::format("must be between 0 and 3 (got {})", prio));
        } else {
          out->priority = static_cast<int>(prio);
        }
      }
    }
    if (const Json* v = Member(j, path, "purgeable", false)) {
      Number(*v, Join(path, "purgeable"), &out->purgeable);
    }
    if (const Json* v = Member(j, path, "fill", false)) {
      int f = Enum(*v, Join(path, "fill"), {"pattern", "zero", "compressible"});
      if (f >= 0) out->fill = static_cast<Fill>(f);
    }
  }

  // `in_phase`: a phase's change of limits (name and limits only).
  void ReadClient(const Json& j, std::string_view path, Client* out, bool in_phase = false) {
    if (!Object(j, path)) return;
    if (in_phase) {
      Keys(j, path, {"name", "vram", "tt", "system"});
    } else {
      Keys(j, path, {"name", "parent", "cgroup", "vram", "tt", "system"});
    }
    if (const Json* v = Member(j, path, "name", true)) String(*v, Join(path, "name"), &out->name);
    if (const Json* v = Member(j, path, "parent", false)) {
      String(*v, Join(path, "parent"), &out->parent);
    }
    if (const Json* v = Member(j, path, "cgroup", false)) {
      if (String(*v, Join(path, "cgroup"), &out->cgroup) && out->cgroup.empty()) {
        Error(Join(path, "cgroup"), "must be \"self\" or a cgroup directory (got \"\")");
      }
    }
    for (Domain d : {Domain::kVram, Domain::kTt, Domain::kSystem}) {
      const std::string key(DomainName(d));
      const Json* v = Member(j, path, key.c_str(), false);
      if (v == nullptr) continue;
      const std::string p = Join(path, key);
      if (!Object(*v, p)) continue;
      Keys(*v, p, {"min", "low", "high", "max"});
      ClientLimits& l = out->limits[static_cast<std::size_t>(d)];
      auto read = [&](const char* name, std::optional<std::uint64_t>* slot) {
        std::uint64_t bytes = 0;
        if (const Json* x = Member(*v, p, name, false);
            x != nullptr && Size(*x, Join(p, name), &bytes)) {
          *slot = bytes;
        }
      };
      read("min", &l.min);
      read("low", &l.low);
      read("high", &l.high);
      read("max", &l.max);
    }
  }

  void ReadPhase(const Json& j, std::string_view path, Phase* out) {
    if (!Object(j, path)) return;
    Keys(j, path, {"name", "ops", "duration", "mix", "threads", "access", "clients"});
    if (const Json* v = Member(j, path, "name", true)) String(*v, Join(path, "name"), &out->name);
    const Json* ops = Member(j, path, "ops", false);
    const Json* duration = Member(j, path, "duration", false);
    if (ops != nullptr && duration != nullptr) {
      Error(path, "give either 'ops' or 'duration', not both");
    } else if (ops == nullptr && duration == nullptr) {
      Error(path, "missing 'ops' or 'duration' (one is required)");
    } else if (ops != nullptr) {
      Uint(*ops, Join(path, "ops"), &out->ops);
    } else {
      Duration(*duration, Join(path, "duration"), &out->duration_s);
    }
    if (const Json* v = Member(j, path, "mix", true)) {
      std::string p = Join(path, "mix");
      if (Object(*v, p)) {
        Keys(*v, p, {"read", "write", "create", "free", "madvise"});
        struct Field {
          const char* key;
          double* dst;
        } fields[] = {{"read", &out->mix.read},
                      {"write", &out->mix.write},
                      {"create", &out->mix.create},
                      {"free", &out->mix.free},
                      {"madvise", &out->mix.madvise}};
        for (const Field& f : fields) {
          if (const Json* w = Member(*v, p, f.key, false)) Number(*w, Join(p, f.key), f.dst);
        }
      }
    }
    if (const Json* v = Member(j, path, "threads", false)) {
      Uint32(*v, Join(path, "threads"), &out->threads);
    }
    if (const Json* v = Member(j, path, "access", false)) {
      out->access.emplace();
      ReadAccess(*v, Join(path, "access"), &*out->access);
    }
    if (const Json* v = Member(j, path, "clients", false)) {
      const std::string p = Join(path, "clients");
      if (!v->is_array()) {
        Error(p, fmt::format("expected an array of client limits, got {}", TypeName(*v)));
      } else {
        out->clients.resize(v->size());
        for (std::size_t i = 0; i < v->size(); ++i) {
          ReadClient((*v)[i], Index(p, i), &out->clients[i], true);
        }
      }
    }
  }

  void ReadWorkload(const Json& j, Workload* out) {
    if (!Object(j, "")) return;
    Keys(j, "",
         {"name", "description", "seed", "interruptible", "devices", "limits", "clients", "classes",
          "access", "phases"});
    if (const Json* v = Member(j, "", "name", false)) String(*v, "name", &out->name);
    if (const Json* v = Member(j, "", "description", false)) {
      String(*v, "description", &out->description);
    }
    if (const Json* v = Member(j, "", "seed", false)) Uint(*v, "seed", &out->seed);
    if (const Json* v = Member(j, "", "interruptible", false)) {
      Bool(*v, "interruptible", &out->interruptible);
    }
    if (const Json* v = Member(j, "", "devices", true); v != nullptr && Object(*v, "devices")) {
      Keys(*v, "devices", {"count", "vram", "moves", "file_backed", "gem_shmem"});
      if (const Json* c = Member(*v, "devices", "count", false)) {
        Uint32(*c, "devices.count", &out->devices.count);
      }
      if (const Json* c = Member(*v, "devices", "vram", true)) {
        Size(*c, "devices.vram", &out->devices.vram);
      }
      if (const Json* c = Member(*v, "devices", "moves", false)) {
        const int m = Enum(*c, "devices.moves", {"engine", "memcpy"});
        if (m >= 0) out->devices.moves = static_cast<Moves>(m);
      }
      if (const Json* c = Member(*v, "devices", "file_backed", false)) {
        Number(*c, "devices.file_backed", &out->devices.file_backed);
      }
      if (const Json* c = Member(*v, "devices", "gem_shmem", false)) {
        Number(*c, "devices.gem_shmem", &out->devices.gem_shmem);
      }
    }
    if (const Json* v = Member(j, "", "limits", true); v != nullptr && Object(*v, "limits")) {
      Keys(*v, "limits", {"page_limit", "store", "file_backed"});
      if (const Json* c = Member(*v, "limits", "page_limit", true)) {
        Size(*c, "limits.page_limit", &out->limits.page_limit);
      }
      if (const Json* c = Member(*v, "limits", "file_backed", false)) {
        Size(*c, "limits.file_backed", &out->limits.file_backed);
      }
      if (const Json* c = Member(*v, "limits", "store", false)) {
        std::string spec;
        if (String(*c, "limits.store", &spec)) {
          auto r = ParseStoreSpec(spec);
          if (r.ok()) {
            out->limits.store = *r;
          } else {
            Error("limits.store", r.status().message());
          }
        }
      }
    }
    if (const Json* v = Member(j, "", "clients", false)) {
      if (!v->is_array()) {
        Error("clients", fmt::format("expected an array of clients, got {}", TypeName(*v)));
      } else {
        out->clients.resize(v->size());
        for (std::size_t i = 0; i < v->size(); ++i) {
          ReadClient((*v)[i], Index("clients", i), &out->clients[i]);
        }
      }
    }
    if (const Json* v = Member(j, "", "classes", true)) {
      if (!v->is_array()) {
        Error("classes", fmt::format("expected an array of buffer classes, got {}", TypeName(*v)));
      } else {
        out->classes.resize(v->size());
        for (std::size_t i = 0; i < v->size(); ++i) {
          ReadClass((*v)[i], Index("classes", i), &out->classes[i]);
        }
      }
    }
    if (const Json* v = Member(j, "", "access", false)) ReadAccess(*v, "access", &out->access);
    if (const Json* v = Member(j, "", "phases", true)) {
      if (!v->is_array()) {
        Error("phases", fmt::format("expected an array of phases, got {}", TypeName(*v)));
      } else {
        out->phases.resize(v->size());
        for (std::size_t i = 0; i < v->size(); ++i) {
          ReadPhase((*v)[i], Index("phases", i), &out->phases[i]);
        }
      }
    }
  }
};

Status ErrorsToStatus(const std::vector<std::string>& errors, std::string_view prefix) {
  std::string message;
  for (const std::string& e : errors) {
    if (!message.empty()) message += '\n';
    message += prefix;
    message += e;
  }
  return Status(Errc::kInvalid, message);
}

void CheckAccess(const AccessPattern& a, const std::string& path, std::vector<std::string>* err) {
  if (a.kind == AccessPattern::Kind::kZipf && !(a.exponent > 0 && a.exponent <= kMaxExponent)) {
    err->push_back(
        fmt::format("{}.exponent: must be > 0 and <= {} (got {})", path, kMaxExponent, a.exponent));
  }
  if (a.span_pages > kMaxSpanPages) {
    err->push_back(
        fmt::format("{}.span_pages: must be <= {} (got {})", path, kMaxSpanPages, a.span_pages));
  }
}

void CheckPageMultiple(std::uint64_t value, const char* path, const char* label,
                       std::vector<std::string>* err) {
  if (value == 0) {
    err->push_back(fmt::format("{}: must be > 0", path));
  } else if (value % kPageSize != 0) {
    err->push_back(fmt::format("{}: must be a multiple of the {} byte page size (got {}{})", path,
                               kPageSize, value, label));
  }
}

std::vector<std::string> Check(const Workload& w) {
  std::vector<std::string> err;
  if (w.devices.count < 1 || w.devices.count > kMaxDevices) {
    err.push_back(fmt::format("devices.count: must be between 1 and {} (got {})", kMaxDevices,
                              w.devices.count));
  }
  CheckPageMultiple(w.devices.vram, "devices.vram", "", &err);
  if (!(w.devices.file_backed >= 0 && w.devices.file_backed <= 1)) {
    err.push_back(fmt::format("devices.file_backed: must be between 0 and 1 (got {})",
                              w.devices.file_backed));
  }
  if (!(w.devices.gem_shmem >= 0 && w.devices.gem_shmem <= 1)) {
    err.push_back(
        fmt::format("devices.gem_shmem: must be between 0 and 1 (got {})", w.devices.gem_shmem));
  }
  if (w.limits.file_backed % kPageSize != 0) {
    err.push_back(fmt::format("limits.file_backed: must be a multiple of 4096 (got {})",
                              w.limits.file_backed));
  }
  CheckPageMultiple(w.limits.page_limit, "limits.page_limit", "", &err);
  std::set<std::string> clients;
  for (std::size_t i = 0; i < w.clients.size(); ++i) {
    const Client& c = w.clients[i];
    const std::string p = Index("clients", i);
    if (c.name.empty() || c.name.find('/') != std::string::npos) {
      err.push_back(fmt::format("{}.name: must not be empty or hold '/' (got '{}')", p, c.name));
    } else if (!clients.insert(c.name).second) {
      err.push_back(fmt::format("{}.name: duplicate client name '{}'", p, c.name));
    }
    if (!c.parent.empty() && (c.parent == c.name || clients.count(c.parent) == 0)) {
      err.push_back(
          fmt::format("{}.parent: '{}' is not a client declared before this one", p, c.parent));
    }
  }
  for (std::size_t i = 0; i < w.classes.size(); ++i) {
    const std::string& client = w.classes[i].client;
    if (!client.empty() && clients.count(client) == 0) {
      err.push_back(fmt::format("{}.client: unknown client '{}' (declare it in clients)",
                                Index("classes", i), client));
    }
  }
  if (w.classes.empty()) err.push_back("classes: must list at least one buffer class");
  std::set<std::string> names;
  bool creates = false;
  for (std::size_t i = 0; i < w.classes.size(); ++i) {
    const BufferClass& c = w.classes[i];
    std::string p = Index("classes", i);
    if (c.name.empty()) err.push_back(fmt::format("{}.name: must not be empty", p));
    if (!c.name.empty() && !names.insert(c.name).second) {
      err.push_back(fmt::format("{}.name: duplicate class name '{}'", p, c.name));
    }
    if (c.count > kMaxClassCount) {
      err.push_back(fmt::format("{}.count: must be <= {} (got {})", p, kMaxClassCount, c.count));
    }
    if (c.count > 0) creates = true;
    const SizeDist& s = c.size;
    const char* lo = s.kind == SizeDist::Kind::kFixed ? "value" : "min";
    if (s.min == 0) {
      err.push_back(fmt::format("{}.size.{}: must be > 0", p, lo));
    } else if (s.min > kMaxBufferSize) {
      err.push_back(
          fmt::format("{}.size.{}: must be <= {} (got {})", p, lo, kMaxBufferSize, s.min));
    }
    if (s.kind != SizeDist::Kind::kFixed) {
      if (s.max < s.min) {
        err.push_back(
            fmt::format("{}.size.max: must be >= size.min (got {} < {})", p, s.max, s.min));
      } else if (s.max > kMaxBufferSize) {
        err.push_back(fmt::format("{}.size.max: must be <= {} (got {})", p, kMaxBufferSize, s.max));
      }
    }
    if (c.placement.empty()) {
      err.push_back(fmt::format("{}.placement: must list at least one domain", p));
    }
    // Each repeated domain is reported once, at its first repeat, with how often it is listed
    // (a long list of one domain must not produce an error per pair).
    for (std::size_t a = 0; a < c.placement.size(); ++a) {
      const auto first = std::find(c.placement.begin(), c.placement.end(), c.placement[a]);
      const auto seen = std::count(c.placement.begin(), c.placement.begin() + a, c.placement[a]);
      if (seen != 1) continue;  // not this domain's first repeat
      const auto times = std::count(first, c.placement.end(), c.placement[a]);
      err.push_back(fmt::format("{}.placement[{}]: duplicate domain '{}'{}", p, a,
                                DomainName(c.placement[a]),
                                times > 2 ? fmt::format(" (listed {} times)", times) : ""));
    }
    if (c.priority < 0 || c.priority > 3) {
      err.push_back(fmt::format("{}.priority: must be between 0 and 3 (got {})", p, c.priority));
    }
    if (!(c.purgeable >= 0 && c.purgeable <= 1)) {
      err.push_back(fmt::format("{}.purgeable: must be between 0 and 1 (got {})", p, c.purgeable));
    }
  }
  CheckAccess(w.access, "access", &err);
  if (w.phases.empty()) err.push_back("phases: must list at least one phase");
  names.clear();
  for (std::size_t i = 0; i < w.phases.size(); ++i) {
    const Phase& ph = w.phases[i];
    std::string p = Index("phases", i);
    if (ph.name.empty()) err.push_back(fmt::format("{}.name: must not be empty", p));
    if (!ph.name.empty() && !names.insert(ph.name).second) {
      err.push_back(fmt::format("{}.name: duplicate phase name '{}'", p, ph.name));
    }
    for (std::size_t k = 0; k < ph.clients.size(); ++k) {
      const std::string& name = ph.clients[k].name;
      if (clients.count(name) == 0) {
        err.push_back(fmt::format("{}.name: unknown client '{}' (declare it in clients)",
                                  Index(p + ".clients", k), name));
      }
    }
    bool has_ops = ph.ops > 0;
    bool has_duration = ph.duration_s != 0;
    if (has_ops && has_duration) {
      err.push_back(fmt::format("{}: give either 'ops' or 'duration', not both", p));
    } else if (!has_ops && !has_duration) {
      err.push_back(fmt::format("{}.ops: must be > 0", p));
    } else if (has_duration && !(ph.duration_s > 0 && ph.duration_s <= 86400)) {
      err.push_back(
          fmt::format("{}.duration: must be > 0 and <= 86400 seconds (got {})", p, ph.duration_s));
    }
    struct W {
      const char* key;
      double v;
    } weights[] = {{"read", ph.mix.read},
                   {"write", ph.mix.write},
                   {"create", ph.mix.create},
                   {"free", ph.mix.free},
                   {"madvise", ph.mix.madvise}};
    bool bad_weight = false;
    for (const W& wt : weights) {
      if (!(wt.v >= 0 && std::isfinite(wt.v))) {
        err.push_back(fmt::format("{}.mix.{}: must be >= 0 (got {})", p, wt.key, wt.v));
        bad_weight = true;
      }
    }
    if (!bad_weight && !(ph.mix.Sum() > 0)) {
      err.push_back(fmt::format("{}.mix: at least one weight must be > 0", p));
    }
    if (ph.mix.create > 0) creates = true;
    if (ph.threads < 1 || ph.threads > kMaxThreads) {
      err.push_back(
          fmt::format("{}.threads: must be between 1 and {} (got {})", p, kMaxThreads, ph.threads));
    }
    if (ph.access) CheckAccess(*ph.access, p + ".access", &err);
  }
  if (!w.classes.empty() && !w.phases.empty() && !creates) {
    err.push_back("classes: no buffer is ever created (every count is 0 and no phase creates)");
  }
  return err;
}

}  // namespace

std::string_view DomainName(Domain d) {
  switch (d) {
    case Domain::kVram:
      return "vram";
    case Domain::kTt:
      return "tt";
    case Domain::kSystem:
      return "system";
  }
  return "?";
}

std::string_view SizeDistName(SizeDist::Kind k) {
  switch (k) {
    case SizeDist::Kind::kFixed:
      return "fixed";
    case SizeDist::Kind::kUniform:
      return "uniform";
    case SizeDist::Kind::kLogUniform:
      return "log-uniform";
  }
  return "?";
}

std::string_view AccessKindName(AccessPattern::Kind k) {
  switch (k) {
    case AccessPattern::Kind::kUniform:
      return "uniform";
    case AccessPattern::Kind::kZipf:
      return "zipf";
    case AccessPattern::Kind::kSequential:
      return "sequential";
  }
  return "?";
}

Result<StoreSpec> ParseStoreSpec(std::string_view text) {
  // ",encrypt" at the end applies to every store (encrypted_store.h).
  constexpr std::string_view kEncrypt = ",encrypt";
  if (text.size() > kEncrypt.size() && text.ends_with(kEncrypt)) {
    UTTM_ASSIGN_OR_RETURN(StoreSpec spec, ParseStoreSpec(text.substr(0, text.size() - 8)));
    spec.encrypt = true;
    return spec;
  }
  if (text == "memfd") return StoreSpec{StoreSpec::Kind::kMemfd, "", ""};
  // A private file in $TMPDIR (or /tmp).
  if (text == "file") return StoreSpec{StoreSpec::Kind::kFile, "", ""};
  if (text.substr(0, 5) == "file:") {
    std::string dir(text.substr(5));
    if (dir.empty()) {
      return Status(Errc::kInvalid, "invalid store 'file:': needs a directory (file:DIR)");
    }
    return StoreSpec{StoreSpec::Kind::kFile, dir, ""};
  }
  // O_DIRECT through io_uring, in $TMPDIR or a directory (uring_store.h).
  if (text == "uring") return StoreSpec{StoreSpec::Kind::kUring, "", ""};
  if (text.substr(0, 6) == "uring:") {
    std::string dir(text.substr(6));
    if (dir.empty()) {
      return Status(Errc::kInvalid, "invalid store 'uring:': needs a directory (uring:DIR)");
    }
    return StoreSpec{StoreSpec::Kind::kUring, dir, ""};
  }
  const std::string_view kind = text.substr(0, text.find(','));
  // Stores the runtime makes from their spec: compressed RAM, remote (Redis protocol), and tiers
  // over them. A remote store is opened here once, so an unreachable server is said at once.
  if (kind == "lz4" || kind == "zstd" || text.starts_with("tier:") || text.starts_with("redis:")) {
    RegisterCompressedStoreKinds();
    RegisterUringStoreKind();
    RegisterTieredStoreKind();
    RegisterRedisStoreKind();
    Stats scratch;
    Result<std::unique_ptr<BackupStore>> probe = CreateBackupStore(text, &scratch);
    if (!probe.ok()) {
      return Status(Errc::kInvalid, fmt::format("invalid store: {}", probe.status().message()));
    }
    return StoreSpec{StoreSpec::Kind::kCompressed, "", std::string(text)};
  }
  return Status(
      Errc::kInvalid,
      fmt::format("unknown store '{}' (expected 'memfd', 'file', 'file:DIR', 'uring', "
                  "'uring:DIR', 'lz4[,OPTIONS]', 'zstd[,OPTIONS]', 'redis:ADDRESS[,OPTIONS]' "
                  "or 'tier:UPPER+LOWER', each optionally followed by ',encrypt')",
                  text));
}

std::string FormatStoreSpec(const StoreSpec& spec) {
  if (spec.encrypt) {
    StoreSpec plain = spec;
    plain.encrypt = false;
    return FormatStoreSpec(plain) + ",encrypt";
  }
  if (spec.kind == StoreSpec::Kind::kMemfd) return "memfd";
  if (spec.kind == StoreSpec::Kind::kCompressed) return spec.spec;
  const std::string kind = spec.kind == StoreSpec::Kind::kUring ? "uring" : "file";
  return spec.dir.empty() ? kind : kind + ":" + spec.dir;
}

const char* FillName(Fill f) {
  switch (f) {
    case Fill::kPattern:
      return "pattern";
    case Fill::kZero:
      return "zero";
    case Fill::kCompressible:
      return "compressible";
  }
  return "?";
}

const char* MovesName(Moves m) { return m == Moves::kMemcpy ? "memcpy" : "engine"; }

Result<Moves> ParseMoves(std::string_view s) {
  if (s == "engine") return Moves::kEngine;
  if (s == "memcpy") return Moves::kMemcpy;
  return Status(Errc::kInvalid,
                fmt::format("unknown value '{}' (expected one of: engine, memcpy)", s));
}

double SizeDist::Mean() const {
  double lo = static_cast<double>(min), hi = static_cast<double>(max);
  switch (kind) {
    case Kind::kFixed:
      return lo;
    case Kind::kUniform:
      return (lo + hi) / 2;
    case Kind::kLogUniform:
      if (hi <= lo || lo <= 0) return lo;
      return (hi - lo) / std::log(hi / lo);
  }
  return lo;
}

double Workload::ExpectedInitialBytes() const {
  double total = 0;
  for (const BufferClass& c : classes) total += c.count * c.size.Mean();
  return total;
}

std::uint64_t Workload::InitialBuffers() const {
  std::uint64_t n = 0;
  for (const BufferClass& c : classes) n += c.count;
  return n;
}

std::uint32_t Workload::Lanes() const {
  std::uint32_t lanes = 1;
  for (const Phase& p : phases) lanes = std::max(lanes, p.threads);
  return lanes;
}

const AccessPattern& Workload::AccessOf(std::size_t phase) const {
  if (phase < phases.size() && phases[phase].access) return *phases[phase].access;
  return access;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

Status ValidateWorkload(const Workload& w) {
  std::vector<std::string> errors = Check(w);
  if (errors.empty()) return Status::Ok();
  return ErrorsToStatus(errors, "");
}

Result<Workload> ParseWorkload(std::string_view json_text, std::string_view origin) {
  Json doc;
  try {
    doc = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::parse_error& e) {
    return Status(Errc::kInvalid, fmt::format("{}: JSON syntax error: {}", origin, e.what()));
  } catch (const Json::exception& e) {
    // Valid syntax the parser still refuses, such as a number beyond double range (1e400).
    return Status(Errc::kInvalid, fmt::format("{}: JSON value error: {}", origin, e.what()));
  }
  Workload w;
  Reader reader;
  try {
    reader.ReadWorkload(doc, &w);
  } catch (const Json::exception& e) {
    return Status(Errc::kInvalid, fmt::format("{}: {}", origin, e.what()));
  }
  if (!reader.errors.empty()) return ErrorsToStatus(reader.errors, "");
  UTTM_RETURN_IF_ERROR(ValidateWorkload(w));
  if (w.name.empty()) w.name = std::string(origin);
  return w;
}

Result<Workload> LoadWorkloadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(Errc::kNotFound, fmt::format("{}: cannot open workload file", path));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status(Errc::kIo, fmt::format("{}: read error", path));
  auto r = ParseWorkload(text.str(), path);
  if (r.ok() && r->name == path) r->name = std::filesystem::path(path).stem().string();
  if (!r.ok()) {
    std::string msg(r.status().message());
    if (msg.rfind(path + ":", 0) == 0) return r.status();  // syntax errors already say the file
    std::string prefixed;
    std::istringstream lines(msg);
    for (std::string line; std::getline(lines, line);) {
      if (!prefixed.empty()) prefixed += '\n';
      prefixed += path + ": " + line;
    }
    return Status(Errc::kInvalid, prefixed);
  }
  return r;
}

namespace {

nlohmann::ordered_json ClientsToJson(const std::vector<Client>& list) {
  nlohmann::ordered_json clients = nlohmann::ordered_json::array();
  for (const Client& c : list) {
    nlohmann::ordered_json jc;
    jc["name"] = c.name;
    if (!c.parent.empty()) jc["parent"] = c.parent;
    if (!c.cgroup.empty()) jc["cgroup"] = c.cgroup;
    for (Domain d : {Domain::kVram, Domain::kTt, Domain::kSystem}) {
      const ClientLimits& l = c.limits[static_cast<std::size_t>(d)];
      nlohmann::ordered_json jl = nlohmann::ordered_json::object();
      if (l.min) jl["min"] = *l.min;
      if (l.low) jl["low"] = *l.low;
      if (l.high) jl["high"] = *l.high;
      if (l.max) jl["max"] = *l.max;
      if (!jl.empty()) jc[std::string(DomainName(d))] = jl;
    }
    clients.push_back(jc);
  }
  return clients;
}

nlohmann::ordered_json AccessToJson(const AccessPattern& a) {
  nlohmann::ordered_json j;
  j["pattern"] = AccessKindName(a.kind);
  if (a.kind == AccessPattern::Kind::kZipf) j["exponent"] = a.exponent;
  j["span_pages"] = a.span_pages;
  return j;
}

}  // namespace

std::string WorkloadToJson(const Workload& w) {
  nlohmann::ordered_json j;
  j["name"] = w.name;
  if (!w.description.empty()) j["description"] = w.description;
  j["seed"] = w.seed;
  j["interruptible"] = w.interruptible;
  j["devices"] = {{"count", w.devices.count},
                  {"vram", w.devices.vram},
                  {"moves", MovesName(w.devices.moves)},
                  {"file_backed", w.devices.file_backed},
                  {"gem_shmem", w.devices.gem_shmem}};
  j["limits"] = {{"page_limit", w.limits.page_limit},
                 {"store", FormatStoreSpec(w.limits.store)},
                 {"file_backed", w.limits.file_backed}};
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (const BufferClass& c : w.classes) {
    nlohmann::ordered_json jc;
    jc["name"] = c.name;
    jc["count"] = c.count;
    if (c.size.kind == SizeDist::Kind::kFixed) {
      jc["size"] = {{"dist", "fixed"}, {"value", c.size.min}};
    } else {
      jc["size"] = {{"dist", SizeDistName(c.size.kind)}, {"min", c.size.min}, {"max", c.size.max}};
    }
    nlohmann::ordered_json placement = nlohmann::ordered_json::array();
    for (Domain d : c.placement) placement.push_back(DomainName(d));
    jc["placement"] = placement;
    jc["priority"] = c.priority;
    jc["purgeable"] = c.purgeable;
    jc["fill"] = FillName(c.fill);
    if (!c.client.empty()) jc["client"] = c.client;
    classes.push_back(jc);
  }
  if (!w.clients.empty()) {
    j["clients"] = ClientsToJson(w.clients);
  }
  j["classes"] = classes;
  j["access"] = AccessToJson(w.access);
  nlohmann::ordered_json phases = nlohmann::ordered_json::array();
  for (const Phase& p : w.phases) {
    nlohmann::ordered_json jp;
    jp["name"] = p.name;
    if (p.ops > 0) {
      jp["ops"] = p.ops;
    } else {
      jp["duration"] = p.duration_s;
    }
    jp["mix"] = {{"read", p.mix.read},
                 {"write", p.mix.write},
                 {"create", p.mix.create},
                 {"free", p.mix.free},
                 {"madvise", p.mix.madvise}};
    jp["threads"] = p.threads;
    if (p.access) jp["access"] = AccessToJson(*p.access);
    if (!p.clients.empty()) jp["clients"] = ClientsToJson(p.clients);
    phases.push_back(jp);
  }
  j["phases"] = phases;
  return j.dump(2);
}

Status ApplyOverrides(Workload* w, const Overrides& o) {
  if (o.ops && o.duration_s) {
    return Status(Errc::kInvalid, "--ops and --duration are mutually exclusive");
  }
  if (o.threads && (*o.threads < 1 || *o.threads > kMaxThreads)) {
    return Status(Errc::kInvalid, fmt::format("--threads: must be between 1 and {} (got {})",
                                              kMaxThreads, *o.threads));
  }
  Workload copy = *w;
  if (o.page_limit) copy.limits.page_limit = *o.page_limit;
  if (o.vram) copy.devices.vram = *o.vram;
  if (o.moves) copy.devices.moves = *o.moves;
  if (o.store) copy.limits.store = *o.store;
  if (o.seed) copy.seed = *o.seed;
  if (o.threads) {
    for (Phase& p : copy.phases) p.threads = *o.threads;
  }
  // Weights of the phases for splitting a total: their current ops (or durations) when all phases
  // are of one kind, equal weights otherwise.
  auto weights = [&copy](bool want_ops) {
    std::vector<double> wt;
    bool uniform_kind = true;
    for (const Phase& p : copy.phases) {
      double v = want_ops ? static_cast<double>(p.ops) : p.duration_s;
      if (v <= 0) uniform_kind = false;
      wt.push_back(v);
    }
    if (!uniform_kind) std::fill(wt.begin(), wt.end(), 1.0);
    return wt;
  };
  if (o.ops) {
    if (*o.ops < copy.phases.size()) {
      return Status(Errc::kInvalid,
                    fmt::format("--ops: must be at least the number of phases ({}) (got {})",
                                copy.phases.size(), *o.ops));
    }
    std::vector<double> wt = weights(true);
    double total = 0;
    for (double v : wt) total += v;
    std::uint64_t given = 0;
    for (std::size_t i = 0; i < copy.phases.size(); ++i) {
      std::uint64_t share = i + 1 == copy.phases.size()
                                ? *o.ops - given
                                : static_cast<std::uint64_t>(
                                      std::llround(static_cast<double>(*o.ops) * wt[i] / total));
      std::uint64_t left_for_rest = copy.phases.size() - i - 1;
      share = std::clamp<std::uint64_t>(share, 1, *o.ops - given - left_for_rest);
      copy.phases[i].ops = share;
      copy.phases[i].duration_s = 0;
      given += share;
    }
  }
  if (o.duration_s) {
    if (!(*o.duration_s > 0)) {
      return Status(Errc::kInvalid,
                    fmt::format("--duration: must be > 0 seconds (got {})", *o.duration_s));
    }
    std::vector<double> wt = weights(false);
    double total = 0;
    for (double v : wt) total += v;
    for (std::size_t i = 0; i < copy.phases.size(); ++i) {
      copy.phases[i].duration_s = *o.duration_s * wt[i] / total;
      copy.phases[i].ops = 0;
    }
  }
  std::vector<std::string> errors = Check(copy);
  if (!errors.empty()) return ErrorsToStatus(errors, "after the command-line overrides: ");
  *w = std::move(copy);
  return Status::Ok();
}

}  // namespace uttm::tool
