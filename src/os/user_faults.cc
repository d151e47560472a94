// Copyright (c) uttm developers.
//
// user_faults.cc: see user_faults.h.
#include "uttm/user_faults.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "uttm/mutex.h"
#include "uttm/units.h"

namespace uttm {

namespace {

std::string Errno(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

bool PageAligned(const std::byte* p, std::size_t bytes) {
  return bytes != 0 && (reinterpret_cast<std::uintptr_t>(p) & (kPageSize - 1)) == 0 &&
         (bytes & (kPageSize - 1)) == 0;
}

}  // namespace

struct UserFaults::Impl {
  struct Range {
    std::size_t bytes = 0;
    std::shared_ptr<Handler> handler;
  };
  // A fault whose handler answered kBusy, tried again on the next round.
  struct Pending {
    std::byte* address;
    bool write;
    std::byte* base;
    std::size_t bytes;
    std::shared_ptr<Handler> handler;
  };

  int uffd = -1;
  int stop_fd = -1;
  std::vector<std::thread> threads;
  mutable Mutex mu;
  std::map<std::uintptr_t, Range> ranges UTTM_GUARDED_BY(mu);
  std::atomic<std::uint64_t> faults{0};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::uint64_t> failures{0};

  ~Impl() {
    if (!threads.empty()) {
      // The event stays readable (nobody reads it): every thread sees it and returns.
      const std::uint64_t one = 1;
      [[maybe_unused]] ssize_t w = write(stop_fd, &one, sizeof(one));
      for (std::thread& t : threads) t.join();
    }
    if (uffd >= 0) close(uffd);
    if (stop_fd >= 0) close(stop_fd);
  }

  void Wake(std::byte* base, std::size_t bytes) const {
    uffdio_range r{.start = reinterpret_cast<std::uint64_t>(base), .len = bytes};
    ioctl(uffd, UFFDIO_WAKE, &r);  // fails only for a bad range; the waiters are gone then
  }

  // Handles one fault; false when it must be tried again.
  bool Dispatch(Pending& p) {
    if (!p.handler) {
      MutexLock lock(&mu);
      const auto addr = reinterpret_cast<std::uintptr_t>(p.address);
      auto it = ranges.upper_bound(addr);
      if (it != ranges.begin()) {
        --it;
        if (addr < it->first + it->second.bytes) {
          p.base = reinterpret_cast<std::byte*>(it->first);
          p.bytes = it->second.bytes;
          p.handler = it->second.handler;
        }
      }
    }
    if (!p.handler) {  // removed meanwhile: let the thread see the mapping as it is now
      Wake(p.address, kPageSize);
      return true;
    }
    const Status s = p.handler->OnFault(p.address, p.write);
    if (s.code() == Errc::kBusy) return false;
    if (s.ok()) {
      faults.fetch_add(1, std::memory_order_relaxed);
    } else {
      failures.fetch_add(1, std::memory_order_relaxed);
    }
    Wake(p.base, p.bytes);
    return true;
  }

  void Run() {
    pthread_setname_np(pthread_self(), "uttm-faults");
    std::vector<Pending> pending;
    std::vector<Pending> again;
    for (;;) {
      pollfd fds[2] = {{.fd = uffd, .events = POLLIN, .revents = 0},
                       {.fd = stop_fd, .events = POLLIN, .revents = 0}};
      const int n = poll(fds, 2, pending.empty() ? -1 : 1);
      if (n < 0 && errno != EINTR) return;  // cannot happen with valid descriptors
      if (n > 0 && (fds[1].revents & POLLIN) != 0) return;
      if (n > 0 && (fds[0].revents & POLLIN) != 0) {
        uffd_msg msgs[16];
        for (;;) {
          const ssize_t got = read(uffd, msgs, sizeof(msgs));
          if (got <= 0) break;  // EAGAIN: drained
          for (std::size_t i = 0; i < static_cast<std::size_t>(got) / sizeof(uffd_msg); ++i) {
            if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
            const auto addr = static_cast<std::uintptr_t>(msgs[i].arg.pagefault.address) &
                              ~std::uintptr_t{kPageSize - 1};
            pending.push_back(
                Pending{.address = reinterpret_cast<std::byte*>(addr),
                        .write = (msgs[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0,
                        .base = nullptr,
                        .bytes = 0,
                        .handler = nullptr});
          }
        }
      }
      again.clear();
      for (Pending& p : pending) {
        const bool retry = p.handler != nullptr;
        if (!Dispatch(p)) {
          if (!retry) retries.fetch_add(1, std::memory_order_relaxed);
          again.push_back(std::move(p));
        }
      }
      pending.swap(again);
    }
  }
};

Result<std::unique_ptr<UserFaults>> UserFaults::Open(unsigned threads) {
  auto impl = std::make_unique<Impl>();
  const long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    std::string why = Errno("userfaultfd", err);
    if (err == EPERM) {
      why +=
          " (refused to this process: a seccomp profile, or vm.unprivileged_userfaultfd = 0 "
          "without CAP_SYS_PTRACE)";
    }
    return Status(Errc::kNotSupported, why);
  }
  impl->uffd = static_cast<int>(fd);
  uffdio_api api{.api = UFFD_API, .features = 0, .ioctls = 0};
  if (ioctl(impl->uffd, UFFDIO_API, &api) != 0) {
    return Status(Errc::kNotSupported, Errno("userfaultfd: UFFDIO_API", errno));
  }
  if ((api.ioctls & (std::uint64_t{1} << _UFFDIO_REGISTER)) == 0) {
    return Status(Errc::kNotSupported, "userfaultfd: the kernel offers no UFFDIO_REGISTER");
  }
  impl->stop_fd = eventfd(0, EFD_CLOEXEC);
  if (impl->stop_fd < 0) return Status(Errc::kNoMemory, Errno("UserFaults: eventfd", errno));
  Impl* raw = impl.get();
  const unsigned n =
      threads != 0 ? threads : std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  try {
    for (unsigned i = 0; i < n; ++i) impl->threads.emplace_back([raw] { raw->Run(); });
  } catch (const std::system_error& e) {
    return Status(Errc::kNoMemory,
                  std::string("UserFaults: cannot start its threads: ") + e.what());
  }
  return std::unique_ptr<UserFaults>(new UserFaults(std::move(impl)));
}

UserFaults::UserFaults(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

UserFaults::~UserFaults() = default;

Status UserFaults::AddRange(std::byte* base, std::size_t bytes, std::shared_ptr<Handler> handler) {
  if (!PageAligned(base, bytes) || handler == nullptr) {
    return Status(Errc::kInvalid, "UserFaults::AddRange: a page-aligned range and a handler");
  }
  const auto start = reinterpret_cast<std::uintptr_t>(base);
  {
    MutexLock lock(&impl_->mu);
    auto next = impl_->ranges.lower_bound(start);
    const bool overlaps_next = next != impl_->ranges.end() && next->first < start + bytes;
    const bool overlaps_prev = next != impl_->ranges.begin() &&
                               std::prev(next)->first + std::prev(next)->second.bytes > start;
    if (overlaps_next || overlaps_prev) {
      return Status(Errc::kInvalid, "UserFaults::AddRange: the range overlaps one already added");
    }
    impl_->ranges.emplace(start, Impl::Range{.bytes = bytes, .handler = std::move(handler)});
  }
  Status s = Arm(base, bytes);
  if (!s.ok()) {
    MutexLock lock(&impl_->mu);
    impl_->ranges.erase(start);
  }
  return s;
}

void UserFaults::RemoveRange(std::byte* base) {
  std::size_t bytes = 0;
  {
    MutexLock lock(&impl_->mu);
    auto it = impl_->ranges.find(reinterpret_cast<std::uintptr_t>(base));
    if (it == impl_->ranges.end()) return;
    bytes = it->second.bytes;
    impl_->ranges.erase(it);
  }
  // Unregistering wakes the threads waiting on the range. Parts whose pages were moved in are no
  // longer registered; the call covers them without complaint.
  uffdio_range r{.start = reinterpret_cast<std::uint64_t>(base), .len = bytes};
  ioctl(impl_->uffd, UFFDIO_UNREGISTER, &r);
}

Status UserFaults::Arm(std::byte* base, std::size_t bytes) {
  if (!PageAligned(base, bytes)) {
    return Status(Errc::kInvalid, "UserFaults::Arm: the range is not page aligned");
  }
  uffdio_register reg{
      .range = {.start = reinterpret_cast<std::uint64_t>(base), .len = bytes},
      .mode = UFFDIO_REGISTER_MODE_MISSING,
      .ioctls = 0,
  };
  if (ioctl(impl_->uffd, UFFDIO_REGISTER, &reg) != 0) {
    const int err = errno;
    return Status(err == ENOMEM ? Errc::kNoMemory : Errc::kInvalid,
                  Errno("UserFaults::Arm: UFFDIO_REGISTER", err));
  }
  return Status();
}

std::uint64_t UserFaults::faults() const { return impl_->faults.load(std::memory_order_relaxed); }
std::uint64_t UserFaults::retries() const { return impl_->retries.load(std::memory_order_relaxed); }
std::uint64_t UserFaults::failures() const {
  return impl_->failures.load(std::memory_order_relaxed);
}

}  // namespace uttm
