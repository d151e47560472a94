// Copyright (c) uttm developers.

#include "uttm/psi_trigger.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "uttm/pressure_source.h"

namespace uttm {

namespace {
constexpr std::uint32_t kTwoSeconds = 2000000;
constexpr std::uint32_t kMaxWindowUs = 10000000;

std::string TriggerString(bool full, std::uint32_t stall, std::uint32_t window) {
  return std::string(full ? "full " : "some ") + std::to_string(stall) + " " +
         std::to_string(window);
}

void AppendReason(std::string* reason, const std::string& more) {
  if (!reason->empty()) *reason += "; ";
  *reason += more;
}
}  // namespace

PsiTrigger::~PsiTrigger() {
  if (fd_ >= 0) close(fd_);
}

PsiTrigger::PsiTrigger(PsiTrigger&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      trigger_(std::move(other.trigger_)),
      reason_(std::move(other.reason_)) {}

PsiTrigger& PsiTrigger::operator=(PsiTrigger&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    trigger_ = std::move(other.trigger_);
    reason_ = std::move(other.reason_);
  }
  return *this;
}

std::vector<std::string> PsiTrigger::DefaultPaths() {
  std::vector<std::string> paths;
  Result<CgroupLocation> v2 = FindCgroupV2();
  if (v2.ok()) paths.push_back(v2->dir() + "/memory.pressure");
  paths.push_back("/proc/pressure/memory");
  return paths;
}

Result<PsiTrigger> PsiTrigger::Open(const std::vector<std::string>& paths,
                                    const PsiTriggerOptions& options) {
  if (options.stall_us == 0 || options.stall_us > options.window_us ||
      options.window_us > kMaxWindowUs) {
    return Status(Errc::kInvalid, "PsiTrigger: need 0 < stall_us <= window_us <= 10 s, got stall " +
                                      std::to_string(options.stall_us) + " window " +
                                      std::to_string(options.window_us));
  }
  PsiTrigger t;
  std::vector<std::uint32_t> windows = {options.window_us};
  if (options.window_us % kTwoSeconds != 0) {
    const std::uint32_t rounded = (options.window_us / kTwoSeconds + 1) * kTwoSeconds;
    if (rounded <= kMaxWindowUs && rounded >= options.stall_us) windows.push_back(rounded);
  }
  for (const std::string& path : paths) {
    int fd = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      AppendReason(&t.reason_, path + ": open: " + std::strerror(errno));
      continue;
    }
    for (std::uint32_t window : windows) {
      const std::string s = TriggerString(options.full, options.stall_us, window);
      // Write the trailing NUL too: the kernel replaces the last byte written with NUL.
      if (write(fd, s.c_str(), s.size() + 1) == static_cast<ssize_t>(s.size() + 1)) {
        t.fd_ = fd;
        t.path_ = path;
        t.trigger_ = s;
        if (window != options.window_us) {
          AppendReason(&t.reason_, path + ": window " + std::to_string(options.window_us) +
                                       " us rejected (EINVAL: without CAP_SYS_RESOURCE the "
                                       "window must be a multiple of 2 s); using " +
                                       std::to_string(window) + " us");
        }
        return t;
      }
      const int err = errno;
      if (window == options.window_us) {
        AppendReason(&t.reason_, path + ": '" + s + "' rejected: " + std::strerror(err) +
                                     (err == EINVAL && window % kTwoSeconds != 0
                                          ? " (unprivileged windows must be 2 s multiples)"
                                          : ""));
      } else {
        AppendReason(&t.reason_, path + ": rounded window also rejected: " + std::strerror(err));
      }
      if (err != EINVAL) break;  // only a bad window is worth another try on the same file
    }
    close(fd);
  }
  AppendReason(&t.reason_, "no PSI trigger armed: falling back to periodic usage sampling");
  return t;
}

bool PsiTrigger::Consume() {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLPRI, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & POLLPRI) != 0;
}

}  // namespace uttm
