// Copyright (c) uttm developers.
//
// Other half of mutex_test's layout check: this file includes uttm/mutex.h without NDEBUG, as a
// debug consumer would, whatever the build's own flags.
#undef NDEBUG
#include <cstddef>

#include "uttm/mutex.h"

namespace uttm::testing {

std::size_t MutexSizeWithoutNdebug() { return sizeof(Mutex); }
std::size_t MutexAlignWithoutNdebug() { return alignof(Mutex); }

// AssertHeld as a debug consumer compiles it: aborts unless this thread holds `mu`.
void AssertHeldWithoutNdebug(const Mutex& mu) { mu.AssertHeld(); }

}  // namespace uttm::testing
