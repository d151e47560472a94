// Copyright (c) uttm developers.
//
// thread_annotations.h: clang thread-safety analysis attributes (no-ops on other compilers).
// Every lock in uttm is a capability; fields name their lock with UTTM_GUARDED_BY and functions
// state what they need with UTTM_REQUIRES / UTTM_EXCLUDES. CI builds with -Wthread-safety.
#ifndef UTTM_THREAD_ANNOTATIONS_H_
#define UTTM_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define UTTM_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define UTTM_THREAD_ANNOTATION_(x)
#endif

#define UTTM_CAPABILITY(x) UTTM_THREAD_ANNOTATION_(capability(x))
#define UTTM_SCOPED_CAPABILITY UTTM_THREAD_ANNOTATION_(scoped_lockable)
#define UTTM_GUARDED_BY(x) UTTM_THREAD_ANNOTATION_(guarded_by(x))
#define UTTM_PT_GUARDED_BY(x) UTTM_THREAD_ANNOTATION_(pt_guarded_by(x))
#define UTTM_ACQUIRED_BEFORE(...) UTTM_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define UTTM_ACQUIRED_AFTER(...) UTTM_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))
#define UTTM_REQUIRES(...) UTTM_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define UTTM_REQUIRES_SHARED(...) UTTM_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
#define UTTM_ACQUIRE(...) UTTM_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define UTTM_ACQUIRE_SHARED(...) UTTM_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define UTTM_RELEASE(...) UTTM_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define UTTM_RELEASE_SHARED(...) UTTM_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
#define UTTM_RELEASE_GENERIC(...) UTTM_THREAD_ANNOTATION_(release_generic_capability(__VA_ARGS__))
#define UTTM_TRY_ACQUIRE(...) UTTM_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#define UTTM_TRY_ACQUIRE_SHARED(...) \
  UTTM_THREAD_ANNOTATION_(try_acquire_shared_capability(__VA_ARGS__))
#define UTTM_EXCLUDES(...) UTTM_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define UTTM_ASSERT_CAPABILITY(x) UTTM_THREAD_ANNOTATION_(assert_capability(x))
#define UTTM_RETURN_CAPABILITY(x) UTTM_THREAD_ANNOTATION_(lock_returned(x))
#define UTTM_NO_THREAD_SAFETY_ANALYSIS UTTM_THREAD_ANNOTATION_(no_thread_safety_analysis)

#endif  // UTTM_THREAD_ANNOTATIONS_H_
