// Copyright (c) uttm developers.
//
// pressure_source.cc: MemAvailable, cgroup v1/v2 and budget pressure sources.

#include "uttm/pressure_source.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "pressure/file_util.h"

namespace uttm {

using internal::FindKeyValue;
using internal::ReadFileToString;
using internal::ReadU64File;
using internal::WriteFileOnce;

namespace {

// Limits at or above this are "unlimited" (v1 reports 0x7FFFFFFFFFFFF000 for no limit).
constexpr std::uint64_t kNoLimit = std::uint64_t{1} << 62;

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    std::size_t end = s.find(sep, pos);
    if (end == std::string_view::npos) end = s.size();
    out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

struct MountEntry {
  std::string root;
  std::string mount_point;
  std::string fstype;
  std::string super_options;
};

std::vector<MountEntry> ReadCgroupMounts(const std::string& proc_self) {
  std::vector<MountEntry> mounts;
  Result<std::string> text = ReadFileToString(proc_self + "/mountinfo");
  if (!text.ok()) return mounts;
  for (std::string_view line : Split(*text, '\n')) {
    std::size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    std::vector<std::string_view> pre = Split(line.substr(0, dash), ' ');
    std::vector<std::string_view> post = Split(line.substr(dash + 3), ' ');
    if (pre.size() < 5 || post.size() < 3) continue;
    if (post[0] != "cgroup" && post[0] != "cgroup2") continue;
    mounts.push_back(
        {std::string(pre[3]), std::string(pre[4]), std::string(post[0]), std::string(post[2])});
  }
  return mounts;
}

bool HasOption(std::string_view options, std::string_view want) {
  for (std::string_view o : Split(options, ',')) {
    if (o == want) return true;
  }
  return false;
}

// The path of a hierarchy line of /proc/self/cgroup matching `pred(controllers)`.
template <typename Pred>
bool FindCgroupPath(const std::string& proc_self, Pred pred, std::string* path) {
  Result<std::string> text = ReadFileToString(proc_self + "/cgroup");
  if (!text.ok()) return false;
  for (std::string_view line : Split(*text, '\n')) {
    std::size_t a = line.find(':');
    if (a == std::string_view::npos) continue;
    std::size_t b = line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    if (pred(line.substr(0, a), line.substr(a + 1, b - a - 1))) {
      *path = std::string(line.substr(b + 1));
      return true;
    }
  }
  return false;
}

std::string RelativeTo(const std::string& path, const std::string& root) {
  if (root == "/" || root.empty()) return path;
  if (path.compare(0, root.size(), root) == 0) {
    std::string rest = path.substr(root.size());
    return rest.empty() ? "/" : rest;
  }
  return path;
}

std::string Human(std::uint64_t bytes) {
  if (bytes >= kNoLimit) return "unlimited";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

const char* PressureLevelName(PressureLevel level) {
  switch (level) {
    case PressureLevel::kNone:
      return "none";
    case PressureLevel::kLow:
      return "low";
    case PressureLevel::kMedium:
      return "medium";
    case PressureLevel::kCritical:
      return "critical";
  }
  return "?";
}

Result<MemInfo> ParseMemInfo(std::string_view text) {
  MemInfo m;
  struct Field {
    const char* key;
    std::uint64_t* out;
    bool required;
  } fields[] = {{"MemTotal", &m.mem_total, true},
                {"MemFree", &m.mem_free, false},
                {"MemAvailable", &m.mem_available, true},
                {"SwapTotal", &m.swap_total, false},
                {"SwapFree", &m.swap_free, false}};
  for (const Field& f : fields) {
    std::uint64_t kb = 0;
    if (!FindKeyValue(text, f.key, &kb)) {
      if (f.required) {
        return Status(Errc::kInvalid, std::string("meminfo: missing field ") + f.key);
      }
      continue;
    }
    *f.out = kb * 1024;
  }
  return m;
}

Result<MemInfo> ReadMemInfo(const std::string& path) {
  Result<std::string> text = ReadFileToString(path);
  if (!text.ok()) return Status(Errc::kIo, text.status().message());
  return ParseMemInfo(*text);
}

// ---- SystemMemorySource ----

SystemMemorySource::SystemMemorySource(bool psi, const PsiTriggerOptions& options) {
  if (!psi) {
    notes_ = "PSI not requested";
    return;
  }
  Result<PsiTrigger> t = PsiTrigger::Open({"/proc/pressure/memory"}, options);
  if (t.ok()) {
    psi_ = std::move(*t);
    notes_ = psi_.armed() ? "PSI trigger '" + psi_.trigger() + "' on " + psi_.path() : "";
    if (!psi_.fallback_reason().empty()) {
      notes_ += (notes_.empty() ? "" : "; ") + psi_.fallback_reason();
    }
  } else {
    notes_ = t.status().ToString();
  }
}

Result<MemorySample> SystemMemorySource::Sample() {
  UTTM_ASSIGN_OR_RETURN(MemInfo m, ReadMemInfo());
  MemorySample s;
  s.limit_bytes = m.mem_total;
  s.usage_bytes = m.mem_total > m.mem_available ? m.mem_total - m.mem_available : 0;
  s.has_limit = m.mem_total > 0;
  return s;
}

void SystemMemorySource::AppendPollFds(std::vector<pollfd>* fds) const {
  if (psi_.armed()) fds->push_back({psi_.fd(), POLLPRI, 0});
}

PressureLevel SystemMemorySource::ConsumeEvents(const pollfd* fds, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (fds[i].revents & (POLLPRI | POLLERR)) return PressureLevel::kMedium;
  }
  return PressureLevel::kNone;
}

std::string SystemMemorySource::Describe() const {
  return "meminfo: usage = MemTotal - MemAvailable; " + notes_;
}

// ---- BudgetSource ----

BudgetSource::BudgetSource(std::string name, std::function<std::uint64_t()> usage_bytes,
                           std::uint64_t budget_bytes)
    : name_(std::move(name)), usage_(std::move(usage_bytes)), budget_(budget_bytes) {}

Result<MemorySample> BudgetSource::Sample() {
  MemorySample s;
  s.usage_bytes = usage_ ? usage_() : 0;
  s.limit_bytes = budget_.load(std::memory_order_relaxed);
  s.has_limit = s.limit_bytes > 0;
  return s;
}

std::string BudgetSource::Describe() const {
  return name_ + ": own accounting against a budget of " +
         Human(budget_.load(std::memory_order_relaxed));
}

// ---- cgroup discovery ----

Result<CgroupLocation> FindMemoryCgroupV1(const std::string& proc_self) {
  std::string path;
  bool found = FindCgroupPath(
      proc_self,
      [](std::string_view id, std::string_view controllers) {
        return id != "0" && HasOption(controllers, "memory");
      },
      &path);
  if (!found) {
    return Status(Errc::kNotFound, "no cgroup v1 memory controller in " + proc_self + "/cgroup");
  }
  CgroupLocation loc;
  loc.version = 1;
  for (const MountEntry& m : ReadCgroupMounts(proc_self)) {
    if (m.fstype == "cgroup" && HasOption(m.super_options, "memory")) {
      loc.mount = m.mount_point;
      loc.relative = RelativeTo(path, m.root);
      return loc;
    }
  }
  return Status(Errc::kNotFound, "cgroup v1 memory hierarchy is not mounted");
}

Result<CgroupLocation> FindCgroupV2(const std::string& proc_self) {
  std::string path;
  bool found = FindCgroupPath(
      proc_self, [](std::string_view id, std::string_view) { return id == "0"; }, &path);
  if (!found) {
    return Status(Errc::kNotFound, "no cgroup v2 entry (0::) in " + proc_self + "/cgroup");
  }
  CgroupLocation loc;
  loc.version = 2;
  for (const MountEntry& m : ReadCgroupMounts(proc_self)) {
    if (m.fstype == "cgroup2") {
      loc.mount = m.mount_point;
      loc.relative = RelativeTo(path, m.root);
      return loc;
    }
  }
  return Status(Errc::kNotFound, "cgroup2 is not mounted");
}

// ---- CgroupV1Source ----

CgroupV1Source::CgroupV1Source(CgroupLocation location)
    : location_(std::move(location)), dir_(location_.dir()) {}

CgroupV1Source::~CgroupV1Source() {
  for (int fd : level_fds_) {
    if (fd >= 0) close(fd);
  }
  if (oom_fd_ >= 0) close(oom_fd_);
}

Result<std::unique_ptr<CgroupV1Source>> CgroupV1Source::Open(const CgroupLocation& location) {
  if (location.version != 1) return Status(Errc::kInvalid, "CgroupV1Source: not a v1 location");
  std::unique_ptr<CgroupV1Source> s(new CgroupV1Source(location));
  if (access((s->dir_ + "/memory.usage_in_bytes").c_str(), R_OK) != 0) {
    return Status(Errc::kNotFound, s->dir_ + " has no memory.usage_in_bytes");
  }
  s->ArmEvents();
  return s;
}

Result<std::unique_ptr<CgroupV1Source>> CgroupV1Source::Detect() {
  UTTM_ASSIGN_OR_RETURN(CgroupLocation loc, FindMemoryCgroupV1());
  return Open(loc);
}

void CgroupV1Source::ArmEvents() {
  static const char* const kLevels[3] = {"low", "medium", "critical"};
  const std::string control = dir_ + "/cgroup.event_control";
  int pl = open((dir_ + "/memory.pressure_level").c_str(), O_RDONLY | O_CLOEXEC);
  if (pl < 0) {
    notes_ = "memory.pressure_level: " + std::string(std::strerror(errno));
  } else {
    int armed = 0;
    for (int i = 0; i < 3; ++i) {
      int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (efd < 0) continue;
      const std::string cmd = std::to_string(efd) + " " + std::to_string(pl) + " " + kLevels[i];
      Status st = WriteFileOnce(control, cmd);
      if (!st.ok()) {
        notes_ += std::string(notes_.empty() ? "" : "; ") + "pressure_level " + kLevels[i] + ": " +
                  st.ToString();
        close(efd);
        continue;
      }
      level_fds_[i] = efd;
      ++armed;
    }
    close(pl);  // the registration holds its own reference
    events_armed_ = armed == 3;
  }
  int oc = open((dir_ + "/memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC);
  if (oc >= 0) {
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd >= 0) {
      Status st = WriteFileOnce(control, std::to_string(efd) + " " + std::to_string(oc));
      if (st.ok()) {
        oom_fd_ = efd;
      } else {
        notes_ += std::string(notes_.empty() ? "" : "; ") + "oom_control: " + st.ToString();
        close(efd);
      }
    }
    close(oc);
  }
}

namespace {

// The working set of a memory cgroup: its usage less the inactive file cache, which the kernel
// reclaims first and cheaply (what cAdvisor and the kernel's own memory.stat call the working
// set). Raw usage would count the page cache of uttm's own backup file as pressure, so backing
// up would look like growing.
std::uint64_t WorkingSet(std::uint64_t usage, const std::string& stat_path, const char* key) {
  Result<std::string> stat = ReadFileToString(stat_path);
  std::uint64_t inactive_file = 0;
  if (stat.ok() && FindKeyValue(*stat, key, &inactive_file)) {
    return usage - std::min(usage, inactive_file);
  }
  return usage;
}

}  // namespace

Result<MemorySample> CgroupV1Source::Sample() {
  MemorySample s;
  UTTM_ASSIGN_OR_RETURN(s.usage_bytes, ReadU64File(dir_ + "/memory.usage_in_bytes"));
  // total_inactive_file: the group's and its descendants' (usage_in_bytes is hierarchical too).
  s.usage_bytes = WorkingSet(s.usage_bytes, dir_ + "/memory.stat", "total_inactive_file");
  // The effective limit is the smallest along the path up to the hierarchy root.
  std::uint64_t limit = UINT64_MAX;
  std::string rel = location_.relative;
  for (;;) {
    const std::string d = rel == "/" ? location_.mount : location_.mount + rel;
    Result<std::uint64_t> l = ReadU64File(d + "/memory.limit_in_bytes");
    if (l.ok()) limit = std::min(limit, *l);
    if (rel == "/" || rel.empty()) break;
    std::size_t slash = rel.rfind('/');
    rel = slash == 0 ? "/" : rel.substr(0, slash);
  }
  s.has_limit = limit < kNoLimit;
  s.limit_bytes = s.has_limit ? limit : 0;
  return s;
}

void CgroupV1Source::AppendPollFds(std::vector<pollfd>* fds) const {
  for (int fd : level_fds_) {
    if (fd >= 0) fds->push_back({fd, POLLIN, 0});
  }
  if (oom_fd_ >= 0) fds->push_back({oom_fd_, POLLIN, 0});
}

PressureLevel CgroupV1Source::ConsumeEvents(const pollfd* fds, std::size_t n) {
  PressureLevel worst = PressureLevel::kNone;
  for (std::size_t i = 0; i < n; ++i) {
    if ((fds[i].revents & POLLIN) == 0) continue;
    std::uint64_t count = 0;
    if (read(fds[i].fd, &count, sizeof(count)) != sizeof(count)) continue;
    PressureLevel level = PressureLevel::kCritical;
    if (fds[i].fd == oom_fd_) {
      oom_events_ += count;
    } else {
      for (int l = 0; l < 3; ++l) {
        if (fds[i].fd == level_fds_[l]) level = static_cast<PressureLevel>(l + 1);
      }
    }
    seen_[static_cast<int>(level)] += count;
    worst = std::max(worst, level);
  }
  return worst;
}

std::uint64_t CgroupV1Source::events_seen(PressureLevel level) const {
  return seen_[static_cast<int>(level)];
}

std::string CgroupV1Source::Describe() const {
  std::string out = "cgroup-v1 " + dir_;
  Result<std::uint64_t> usage = ReadU64File(dir_ + "/memory.usage_in_bytes");
  Result<std::uint64_t> limit = ReadU64File(dir_ + "/memory.limit_in_bytes");
  if (usage.ok() && limit.ok()) out += ": usage " + Human(*usage) + " of " + Human(*limit);
  out +=
      events_armed_ ? "; pressure_level low/medium/critical armed" : "; pressure events NOT armed";
  if (oom_fd_ >= 0) out += "; oom notification armed";
  if (!notes_.empty()) out += "; " + notes_;
  return out;
}

// ---- CgroupV2Source ----

CgroupV2Source::CgroupV2Source(CgroupLocation location)
    : location_(std::move(location)), dir_(location_.dir()) {}

CgroupV2Source::~CgroupV2Source() {
  if (events_fd_ >= 0) close(events_fd_);
}

Result<std::unique_ptr<CgroupV2Source>> CgroupV2Source::Open(const CgroupLocation& location,
                                                             const PsiTriggerOptions& psi) {
  if (location.version != 2) return Status(Errc::kInvalid, "CgroupV2Source: not a v2 location");
  std::unique_ptr<CgroupV2Source> s(new CgroupV2Source(location));
  if (access((s->dir_ + "/memory.current").c_str(), R_OK) != 0) {
    return Status(Errc::kNotSupported,
                  s->dir_ + " has no memory.current (no v2 memory controller; hybrid hierarchy?)");
  }
  s->events_fd_ = open((s->dir_ + "/memory.events").c_str(), O_RDONLY | O_CLOEXEC);
  if (s->events_fd_ < 0) {
    s->notes_ = "memory.events: " + std::string(std::strerror(errno));
  } else {
    Result<std::string> text = ReadFileToString(s->dir_ + "/memory.events");
    if (text.ok()) {
      FindKeyValue(*text, "high", &s->last_high_);
      FindKeyValue(*text, "max", &s->last_max_);
      FindKeyValue(*text, "oom", &s->last_oom_);
    }
  }
  Result<PsiTrigger> t = PsiTrigger::Open({s->dir_ + "/memory.pressure"}, psi);
  if (t.ok()) {
    s->psi_ = std::move(*t);
    if (!s->psi_.fallback_reason().empty()) {
      s->notes_ += (s->notes_.empty() ? "" : "; ") + s->psi_.fallback_reason();
    }
  }
  return s;
}

Result<std::unique_ptr<CgroupV2Source>> CgroupV2Source::Detect() {
  UTTM_ASSIGN_OR_RETURN(CgroupLocation loc, FindCgroupV2());
  return Open(loc);
}

Result<MemorySample> CgroupV2Source::Sample() {
  MemorySample s;
  UTTM_ASSIGN_OR_RETURN(s.usage_bytes, ReadU64File(dir_ + "/memory.current"));
  s.usage_bytes = WorkingSet(s.usage_bytes, dir_ + "/memory.stat", "inactive_file");
  std::uint64_t limit = UINT64_MAX;
  for (const char* f : {"/memory.high", "/memory.max"}) {
    Result<std::uint64_t> l = ReadU64File(dir_ + f);
    if (l.ok()) limit = std::min(limit, *l);
  }
  s.has_limit = limit < kNoLimit;
  s.limit_bytes = s.has_limit ? limit : 0;
  return s;
}

void CgroupV2Source::AppendPollFds(std::vector<pollfd>* fds) const {
  if (events_fd_ >= 0) fds->push_back({events_fd_, POLLPRI, 0});
  if (psi_.armed()) fds->push_back({psi_.fd(), POLLPRI, 0});
}

PressureLevel CgroupV2Source::ConsumeEvents(const pollfd* fds, std::size_t n) {
  PressureLevel worst = PressureLevel::kNone;
  for (std::size_t i = 0; i < n; ++i) {
    if ((fds[i].revents & (POLLPRI | POLLERR)) == 0) continue;
    if (fds[i].fd == psi_.fd()) {
      worst = std::max(worst, PressureLevel::kMedium);
      continue;
    }
    // memory.events changed: re-read it (from offset 0) and see which counter moved.
    char buf[1024];
    ssize_t len = pread(events_fd_, buf, sizeof(buf) - 1, 0);
    if (len <= 0) continue;
    std::string_view text(buf, static_cast<std::size_t>(len));
    std::uint64_t high = last_high_, max = last_max_, oom = last_oom_;
    FindKeyValue(text, "high", &high);
    FindKeyValue(text, "max", &max);
    FindKeyValue(text, "oom", &oom);
    if (oom > last_oom_ || max > last_max_) {
      worst = std::max(worst, PressureLevel::kCritical);
    } else if (high > last_high_) {
      worst = std::max(worst, PressureLevel::kMedium);
    } else {
      worst = std::max(worst, PressureLevel::kLow);
    }
    last_high_ = high;
    last_max_ = max;
    last_oom_ = oom;
  }
  return worst;
}

std::string CgroupV2Source::Describe() const {
  std::string out = "cgroup-v2 " + dir_;
  if (events_fd_ >= 0) out += "; memory.events POLLPRI armed";
  if (psi_.armed()) out += "; PSI '" + psi_.trigger() + "' armed";
  if (!notes_.empty()) out += "; " + notes_;
  return out;
}

// ---- detection ----

std::vector<std::unique_ptr<PressureSource>> DetectPressureSources(
    std::vector<std::string>* notes) {
  std::vector<std::unique_ptr<PressureSource>> sources;
  auto note = [&](const std::string& s) {
    if (notes != nullptr) notes->push_back(s);
  };
  Result<std::unique_ptr<CgroupV1Source>> v1 = CgroupV1Source::Detect();
  if (v1.ok()) {
    note((*v1)->Describe());
    sources.push_back(std::move(*v1));
  } else {
    note("cgroup-v1: " + v1.status().ToString());
  }
  Result<std::unique_ptr<CgroupV2Source>> v2 = CgroupV2Source::Detect();
  if (v2.ok()) {
    note((*v2)->Describe());
    sources.push_back(std::move(*v2));
  } else {
    note("cgroup-v2: " + v2.status().ToString());
  }
  auto sys = std::make_unique<SystemMemorySource>();
  note(sys->Describe());
  sources.push_back(std::move(sys));
  return sources;
}

}  // namespace uttm
