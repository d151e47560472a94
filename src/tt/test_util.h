// Copyright (c) uttm developers.
//
// test_util.h: helpers shared by the page tests (RSS reading, sanitizer detection).
#ifndef UTTM_SRC_TT_TEST_UTIL_H_
#define UTTM_SRC_TT_TEST_UTIL_H_

#include <cstdint>
#include <cstdio>

#include "testing/proc_status.h"

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

using testing::RssAnonBytes;  // testing/proc_status.h

}  // namespace uttm::testing_util

#endif  // UTTM_SRC_TT_TEST_UTIL_H_
