// Copyright (c) uttm developers.
//
// Half of mutex_test's layout check: this file includes uttm/mutex.h with NDEBUG defined, as a
// release consumer would, and reports what it sees.
#ifndef NDEBUG
#define NDEBUG 1
#endif
#include <cstddef>

#include "uttm/mutex.h"

namespace uttm::testing {

std::size_t MutexSizeWithNdebug() { return sizeof(Mutex); }
std::size_t MutexAlignWithNdebug() { return alignof(Mutex); }

// Locks `mu` through this (NDEBUG) file's inline Lock.
void LockWithNdebug(Mutex& mu) UTTM_NO_THREAD_SAFETY_ANALYSIS { mu.Lock(); }

}  // namespace uttm::testing
