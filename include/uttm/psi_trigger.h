// Copyright (c) uttm developers.
//
// psi_trigger.h: a Pressure Stall Information trigger ("some|full <stall us> <window us>") on a
// memory.pressure file (a cgroup v2 directory's, or /proc/pressure/memory system-wide).
//
// Kernel rules (kernel/sched/psi.c, measured on this machine, docs/reclaim.md):
//   - the kernel overwrites the LAST byte written with NUL, so the string is written together
//     with its trailing NUL (otherwise "... 2000000" is read as window 200000 and rejected);
//   - without CAP_SYS_RESOURCE the window must be a multiple of 2 s; 0 < stall <= window.
// Open() tries each path in order; a rejected window is rounded up to the next 2 s multiple and
// retried once. When nothing is accepted the trigger is not armed and fallback_reason() says
// why (callers then rely on periodic usage sampling).
//
// The fd signals POLLPRI when the stall threshold is crossed within a window.
// Thread-safety: Open/Consume are not synchronised; one owner (the reclaim thread) uses it.
#ifndef UTTM_PSI_TRIGGER_H_
#define UTTM_PSI_TRIGGER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "uttm/export.h"
#include "uttm/status.h"

namespace uttm {

struct PsiTriggerOptions {
  bool full = false;                  // "full" (all tasks stalled) instead of "some"
  std::uint32_t stall_us = 150000;    // stall time within the window that fires the trigger
  std::uint32_t window_us = 2000000;  // tracking window; 2 s multiples work unprivileged
};

class UTTM_EXPORT PsiTrigger {
 public:
  PsiTrigger() = default;
  ~PsiTrigger();
  PsiTrigger(PsiTrigger&& other) noexcept;
  PsiTrigger& operator=(PsiTrigger&& other) noexcept;
  PsiTrigger(const PsiTrigger&) = delete;
  PsiTrigger& operator=(const PsiTrigger&) = delete;

  // Arms a trigger on the first path that accepts it. Errors: kInvalid for stall_us == 0,
  // stall_us > window_us or window_us > 10 s (nothing is tried). A trigger no path accepted is
  // returned un-armed (not an error) with fallback_reason() set.
  static Result<PsiTrigger> Open(const std::vector<std::string>& paths,
                                 const PsiTriggerOptions& options);

  // Default paths: <our cgroup v2 dir>/memory.pressure (when we are in a v2 hierarchy), then
  // /proc/pressure/memory.
  static std::vector<std::string> DefaultPaths();

  bool armed() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // The path and the exact trigger string accepted ("" when not armed).
  const std::string& path() const { return path_; }
  const std::string& trigger() const { return trigger_; }
  // Why a path or the requested window was not used ("" when armed exactly as requested).
  const std::string& fallback_reason() const { return reason_; }

  // Polls without blocking; true when the trigger fired since the last call.
  bool Consume();

 private:
  int fd_ = -1;
  std::string path_;
  std::string trigger_;
  std::string reason_;
};

}  // namespace uttm

#endif  // UTTM_PSI_TRIGGER_H_
