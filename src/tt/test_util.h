// Copyright (c) uttm developers.
//
// test_util.h: helpers shared by the page tests (RSS reading, sanitizer detection).
#ifndef UTTM_SRC_TT_TEST_UTIL_H_
#define UTTM_SRC_TT_TEST_UTIL_H_

#include <cstdint>
#include <cstdio>

namespace uttm::testing_util {

// True in ASan/TSan builds, where shadow memory makes process RSS meaningless for page tests.
inline bool UnderSanitizer() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// Resident anonymous memory of this process in bytes (RssAnon in /proc/self/status).
inline std::uint64_t RssAnonBytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  unsigned long kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "RssAnon: %lu kB", &kb) == 1) break;
  }
  std::fclose(f);
  return std::uint64_t{kb} * 1024;
}

}  // namespace uttm::testing_util

#endif  // UTTM_SRC_TT_TEST_UTIL_H_
