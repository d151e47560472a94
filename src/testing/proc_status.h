// Copyright (c) uttm developers.
//
// proc_status.h: memory figures of this process from /proc/self/status, for tests that check
// memory was really given back.
#ifndef UTTM_SRC_TESTING_PROC_STATUS_H_
#define UTTM_SRC_TESTING_PROC_STATUS_H_

#include <cstdint>
#include <cstdio>
#include <cstring>

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

// Resident anonymous memory (RssAnon) and the whole resident set (VmRSS, file and shmem
// mappings included).
inline std::uint64_t RssAnonBytes() { return ProcStatusBytes("RssAnon"); }
inline std::uint64_t RssBytes() { return ProcStatusBytes("VmRSS"); }

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_PROC_STATUS_H_
