// Copyright (c) uttm developers.
#include "uttm/memfd_store.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "backup/fd_store.h"
#include "uttm/units.h"

namespace uttm {
namespace internal {
namespace {

// Free swap in bytes, as the kernel's ttm_backup_bytes_avail() sees it.
std::uint64_t FreeSwapBytes() {
  struct sysinfo info {};
  if (::sysinfo(&info) != 0) return 0;
  return static_cast<std::uint64_t>(info.freeswap) * info.mem_unit;
}

// A /proc/meminfo field in bytes (0 if absent).
std::uint64_t MeminfoBytes(const char* field) {
  std::FILE* f = std::fopen("/proc/meminfo", "re");
  if (f == nullptr) return 0;
  char line[256];
  std::uint64_t kib = 0;
  const std::size_t len = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, len) == 0 && line[len] == ':') {
      kib = std::strtoull(line + len + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib * 1024;
}

class MemfdStore final : public FdStore {
 public:
  MemfdStore(int fd, const MemfdStoreOptions& options, std::uint64_t max_slots, Stats* stats)
      : FdStore(fd, /*o_direct=*/false, max_slots, stats, "memfd store", options.parallel_checksum),
        allow_without_swap_(options.allow_without_swap) {}

  std::uint64_t BytesAvailable() const override {
    std::uint64_t avail =
        allow_without_swap_ ? MeminfoBytes("MemAvailable") + FreeSwapBytes() : FreeSwapBytes();
    return std::min(avail, CapacityBytesLeft());
  }

  // Shmem has no medium behind it to push to; without swap there is nothing to drop either.
  Status Flush() override { return Status::Ok(); }

  std::string Describe() const override {
    return allow_without_swap_ ? "memfd (allow_without_swap)" : "memfd";
  }

 protected:
  Result<std::uint64_t> Admit(std::uint64_t n) override {
    if (allow_without_swap_) return n;
    const std::uint64_t pages = FreeSwapBytes() >> kPageShift;
    if (pages == 0) {
      return Status(Errc::kNoSpace,
                    "memfd store: no free swap, so backing up into shmem would free no memory "
                    "(set allow_without_swap to store anyway)");
    }
    return std::min(n, pages);
  }

 private:
  const bool allow_without_swap_;
};

}  // namespace
}  // namespace internal

Result<std::unique_ptr<BackupStore>> NewMemfdStore(const MemfdStoreOptions& options) {
  if (options.name.empty()) return Status(Errc::kInvalid, "memfd store: empty name");
  if (options.capacity_bytes != 0 && options.capacity_bytes < kPageSize) {
    return Status(Errc::kInvalid, "memfd store: capacity_bytes " +
                                      std::to_string(options.capacity_bytes) +
                                      " is below one page (4096); use 0 for no cap");
  }
  int fd = ::memfd_create(options.name.c_str(), MFD_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Status(ErrcFromErrno(err),
                  std::string("memfd store: memfd_create failed: ") + std::strerror(err));
  }
  (void)::fchmod(fd, 0600);  // Private to this user even through /proc/<pid>/fd.
  const std::uint64_t max_slots = options.capacity_bytes == 0
                                      ? internal::kMaxSlotsUnlimited
                                      : options.capacity_bytes >> kPageShift;
  Stats* stats = options.stats != nullptr ? options.stats : &Stats::Default();
  return std::unique_ptr<BackupStore>(new internal::MemfdStore(fd, options, max_slots, stats));
}

}  // namespace uttm
