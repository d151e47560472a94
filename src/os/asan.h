// Copyright (c) uttm developers.
//
// asan.h: telling AddressSanitizer which page memory is not handed out (no-ops otherwise).
#ifndef UTTM_SRC_OS_ASAN_H_
#define UTTM_SRC_OS_ASAN_H_

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UTTM_HAVE_ASAN_ 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UTTM_HAVE_ASAN_ 1
#endif

#ifdef UTTM_HAVE_ASAN_
#include <sanitizer/asan_interface.h>
#define UTTM_ASAN_POISON(addr, size) ASAN_POISON_MEMORY_REGION((addr), (size))
#define UTTM_ASAN_UNPOISON(addr, size) ASAN_UNPOISON_MEMORY_REGION((addr), (size))
#else
#define UTTM_ASAN_POISON(addr, size) ((void)(addr), (void)(size))
#define UTTM_ASAN_UNPOISON(addr, size) ((void)(addr), (void)(size))
#endif

#endif  // UTTM_SRC_OS_ASAN_H_
