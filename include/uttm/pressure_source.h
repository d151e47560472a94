// Copyright (c) uttm developers.
//
// pressure_source.h: where memory pressure comes from.
//
// A PressureSource gives a *sample* (bytes in use against a limit) and, optionally, a pollable
// fd that becomes readable (POLLIN or POLLPRI) when the kernel signals pressure. On this machine
// kernel events come too late (cgroup v1 fires low/medium/critical only AT the limit, the OOM
// kill follows about 1 ms later; docs/reclaim.md), so the reclaim thread acts on samples against
// watermarks below the limit and treats events as a last alarm.
//
//   SystemMemorySource  /proc/meminfo: usage = MemTotal - MemAvailable, limit = MemTotal;
//                       events from a system-wide PSI trigger when one can be armed.
//   CgroupV1Source      our memory cgroup (v1): usage_in_bytes less total_inactive_file (the
//                       working set: clean file cache such as the backup file's is reclaimed
//                       first and is not pressure) against the smallest
//                       limit_in_bytes of it and its ancestors; events from memory.pressure_level
//                       (low, medium, critical) and memory.oom_control via cgroup.event_control.
//   CgroupV2Source      our cgroup (v2): memory.current less inactive_file (memory.stat)
//                       against min(memory.high, memory.max);
//                       events: memory.events modifications (POLLPRI) and a PSI trigger on the
//                       cgroup's memory.pressure.
//   BudgetSource        our own accounting: a callback giving bytes in use, and a budget.
//
// Thread-safety: Sample() is safe from any thread. AppendPollFds()/ConsumeEvents() belong to one
// consumer (the reclaim thread).
#ifndef UTTM_PRESSURE_SOURCE_H_
#define UTTM_PRESSURE_SOURCE_H_

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "uttm/export.h"
#include "uttm/psi_trigger.h"
#include "uttm/status.h"

namespace uttm {

// /proc/meminfo fields, in bytes.
struct MemInfo {
  std::uint64_t mem_total = 0;
  std::uint64_t mem_free = 0;
  std::uint64_t mem_available = 0;
  std::uint64_t swap_total = 0;
  std::uint64_t swap_free = 0;
};

// Parses meminfo text. Errors: kInvalid naming the missing field (MemTotal, MemAvailable).
UTTM_EXPORT Result<MemInfo> ParseMemInfo(std::string_view text);
// Reads and parses `path`. Errors: kIo when it cannot be read, then as ParseMemInfo.
UTTM_EXPORT Result<MemInfo> ReadMemInfo(const std::string& path = "/proc/meminfo");

enum class PressureLevel { kNone = 0, kLow = 1, kMedium = 2, kCritical = 3 };
UTTM_EXPORT const char* PressureLevelName(PressureLevel level);

// Bytes in use against a limit. has_limit is false when the source has no finite limit.
struct MemorySample {
  std::uint64_t usage_bytes = 0;
  std::uint64_t limit_bytes = 0;
  bool has_limit = false;
};

class UTTM_EXPORT PressureSource {
 public:
  virtual ~PressureSource() = default;
  virtual const char* name() const = 0;
  // Current usage and limit. Errors: kIo when the source's files cannot be read.
  virtual Result<MemorySample> Sample() = 0;
  // Appends the fds to wait on, with their poll events, to `fds` (nothing when the source has no
  // events). The set is fixed for the life of the source.
  virtual void AppendPollFds(std::vector<pollfd>* fds) const { (void)fds; }
  // `fds` are the `n` entries this source appended, in order, with revents filled by poll().
  // Clears the pending events and returns the highest level among them (kNone when none).
  virtual PressureLevel ConsumeEvents(const pollfd* fds, std::size_t n) {
    (void)fds;
    (void)n;
    return PressureLevel::kNone;
  }
  // Human-readable notes: what was found, which events are armed, and why a fallback was taken.
  virtual std::string Describe() const = 0;
};

class UTTM_EXPORT SystemMemorySource final : public PressureSource {
 public:
  // `psi`: arm a system-wide PSI trigger (/proc/pressure/memory) for events.
  explicit SystemMemorySource(bool psi = true, const PsiTriggerOptions& options = {});
  const char* name() const override { return "meminfo"; }
  Result<MemorySample> Sample() override;
  void AppendPollFds(std::vector<pollfd>* fds) const override;
  PressureLevel ConsumeEvents(const pollfd* fds, std::size_t n) override;
  std::string Describe() const override;
  const PsiTrigger& psi() const { return psi_; }

 private:
  PsiTrigger psi_;
  std::string notes_;
};

class UTTM_EXPORT BudgetSource final : public PressureSource {
 public:
  // `usage_bytes` is called from the sampling thread; it must be thread-safe and cheap.
  BudgetSource(std::string name, std::function<std::uint64_t()> usage_bytes,
               std::uint64_t budget_bytes);
  const char* name() const override { return name_.c_str(); }
  Result<MemorySample> Sample() override;
  std::string Describe() const override;
  void set_budget(std::uint64_t bytes) { budget_.store(bytes, std::memory_order_relaxed); }

 private:
  const std::string name_;
  const std::function<std::uint64_t()> usage_;
  std::atomic<std::uint64_t> budget_;
};

// The memory cgroup this process is in. Parsed from /proc/self/cgroup and /proc/self/mountinfo.
struct CgroupLocation {
  int version = 0;       // 1 or 2
  std::string mount;     // "/sys/fs/cgroup/memory" (v1) or the cgroup2 mount point (v2)
  std::string relative;  // "/a/b" inside the hierarchy ("/" for the root)
  std::string dir() const { return relative == "/" ? mount : mount + relative; }
};

// Finds our v1 memory cgroup, or our v2 cgroup, from `proc_self`'s cgroup and mountinfo files
// (another directory of such files in tests). Errors: kNotFound naming what was missing.
UTTM_EXPORT Result<CgroupLocation> FindMemoryCgroupV1(const std::string& proc_self = "/proc/self");
UTTM_EXPORT Result<CgroupLocation> FindCgroupV2(const std::string& proc_self = "/proc/self");

class UTTM_EXPORT CgroupV1Source final : public PressureSource {
 public:
  ~CgroupV1Source() override;
  // Opens the memory cgroup at `location` and registers eventfds for the pressure levels and
  // the OOM notification. Event registration failures are recorded, not errors. Errors:
  // kNotFound when the directory has no memory.usage_in_bytes.
  static Result<std::unique_ptr<CgroupV1Source>> Open(const CgroupLocation& location);
  // Open(FindMemoryCgroupV1()).
  static Result<std::unique_ptr<CgroupV1Source>> Detect();

  const char* name() const override { return "cgroup-v1"; }
  Result<MemorySample> Sample() override;
  void AppendPollFds(std::vector<pollfd>* fds) const override;
  PressureLevel ConsumeEvents(const pollfd* fds, std::size_t n) override;
  std::string Describe() const override;

  const std::string& dir() const { return dir_; }
  bool events_armed() const { return events_armed_; }
  // Events seen per level so far (index: PressureLevel) and OOM notifications.
  std::uint64_t events_seen(PressureLevel level) const;
  std::uint64_t oom_events() const { return oom_events_; }

 private:
  explicit CgroupV1Source(CgroupLocation location);
  void ArmEvents();

  CgroupLocation location_;
  std::string dir_;
  int level_fds_[3] = {-1, -1, -1};  // eventfds for low, medium, critical
  int oom_fd_ = -1;
  bool events_armed_ = false;
  std::uint64_t seen_[4] = {0, 0, 0, 0};
  std::uint64_t oom_events_ = 0;
  std::string notes_;
};

class UTTM_EXPORT CgroupV2Source final : public PressureSource {
 public:
  ~CgroupV2Source() override;
  // Errors: kNotSupported when the v2 cgroup has no memory controller (no memory.current, the
  // case of a hybrid v1/v2 machine), naming the directory.
  static Result<std::unique_ptr<CgroupV2Source>> Open(const CgroupLocation& location,
                                                      const PsiTriggerOptions& psi = {});
  static Result<std::unique_ptr<CgroupV2Source>> Detect();

  const char* name() const override { return "cgroup-v2"; }
  Result<MemorySample> Sample() override;
  void AppendPollFds(std::vector<pollfd>* fds) const override;
  PressureLevel ConsumeEvents(const pollfd* fds, std::size_t n) override;
  std::string Describe() const override;
  const PsiTrigger& psi() const { return psi_; }

 private:
  explicit CgroupV2Source(CgroupLocation location);

  CgroupLocation location_;
  std::string dir_;
  int events_fd_ = -1;  // memory.events, POLLPRI on modification
  PsiTrigger psi_;
  std::uint64_t last_high_ = 0, last_max_ = 0, last_oom_ = 0;
  std::string notes_;
};

// The sources that work here, most specific first: cgroup v1 or v2 (when we are limited by
// one), then MemAvailable. `notes` (optional) receives one line per source tried.
UTTM_EXPORT std::vector<std::unique_ptr<PressureSource>> DetectPressureSources(
    std::vector<std::string>* notes = nullptr);

}  // namespace uttm

#endif  // UTTM_PRESSURE_SOURCE_H_
