// Copyright (c) uttm developers.
//
// proc_status.h: memory figures of this process from /proc/self/status, for tests that check
// memory was really given back.
#ifndef UTTM_SRC_TESTING_PROC_STATUS_H_
#define UTTM_SRC_TESTING_PROC_STATUS_H_

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

namespace uttm::testing {

// The value of `key` ("VmRSS", "RssAnon", "RssFile", "RssShmem") in bytes; 0 when absent.
inline std::uint64_t ProcStatusBytes(const char* key) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  unsigned long long kb = 0;
  const std::size_t len = std::strlen(key);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, key, len) == 0 && line[len] == ':' &&
        std::sscanf(line + len + 1, " %llu kB", &kb) == 1) {
      break;
    }
  }
  std::fclose(f);
  return static_cast<std::uint64_t>(kb) * 1024;
}

// What descriptor `fd` of this process points at (/proc/self/fd), "" when it cannot be read.
inline std::string FdPath(int fd) {
  char buf[4096];
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
}

// Resident anonymous memory (RssAnon) and the whole resident set (VmRSS, file and shmem
// mappings included).
inline std::uint64_t RssAnonBytes() { return ProcStatusBytes("RssAnon"); }
inline std::uint64_t RssBytes() { return ProcStatusBytes("VmRSS"); }

// How many of the resident pages of [p, p + bytes) (page aligned) belong to a large folio (a
// compound page: /proc/self/pagemap gives each page's frame, /proc/kpageflags its flags).
// nullopt when the frames cannot be read (they read as 0 without CAP_SYS_ADMIN).
inline std::optional<std::uint64_t> PagesInLargeFolios(const void* p, std::size_t bytes) {
  constexpr std::uint64_t kPage = 4096;
  constexpr std::uint64_t kPresent = std::uint64_t{1} << 63;
  constexpr std::uint64_t kPfnMask = (std::uint64_t{1} << 55) - 1;
  constexpr std::uint64_t kCompound = (std::uint64_t{1} << 15) | (std::uint64_t{1} << 16);
  const int map = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  const int flags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  std::optional<std::uint64_t> n;
  if (map >= 0 && flags >= 0) {
    n = 0;
    const std::uint64_t first = reinterpret_cast<std::uintptr_t>(p) / kPage;
    for (std::uint64_t i = 0; i < bytes / kPage && n.has_value(); ++i) {
      std::uint64_t entry = 0, f = 0;
      if (pread(map, &entry, 8, static_cast<off_t>((first + i) * 8)) != 8) n.reset();
      if (!n.has_value() || (entry & kPresent) == 0) continue;
      const std::uint64_t pfn = entry & kPfnMask;
      if (pfn == 0 || pread(flags, &f, 8, static_cast<off_t>(pfn * 8)) != 8) {
        n.reset();
      } else if ((f & kCompound) != 0) {
        ++*n;
      }
    }
  }
  if (map >= 0) close(map);
  if (flags >= 0) close(flags);
  return n;
}

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_PROC_STATUS_H_
