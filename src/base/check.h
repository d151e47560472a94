// Copyright (c) uttm developers.
//
// check.h (internal): assertion tiers.
//   UTTM_CHECK(cond, msg)  always evaluated; aborts with file:line and the message when false.
//   UTTM_DCHECK(cond, msg) evaluated in debug builds (NDEBUG not defined) only.
// Use CHECK for invariants whose violation would corrupt buffer contents; DCHECK elsewhere.
#ifndef UTTM_SRC_BASE_CHECK_H_
#define UTTM_SRC_BASE_CHECK_H_

namespace uttm::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond, const char* msg);
}  // namespace uttm::internal

#define UTTM_CHECK(cond, msg)                                        \
  do {                                                               \
    if (__builtin_expect(!(cond), 0)) {                              \
      ::uttm::internal::CheckFailed(__FILE__, __LINE__, #cond, msg); \
    }                                                                \
  } while (0)

#ifdef NDEBUG
#define UTTM_DCHECK(cond, msg) \
  do {                         \
    if (false && (cond)) {     \
    }                          \
  } while (0)
#else
#define UTTM_DCHECK(cond, msg) UTTM_CHECK(cond, msg)
#endif

#endif  // UTTM_SRC_BASE_CHECK_H_
