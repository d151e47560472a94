// Copyright (c) uttm developers.
//
// buddy_math.h (internal): power-of-two helpers shared by the BuddyAllocator and its tests.
#ifndef UTTM_SRC_RESOURCE_BUDDY_MATH_H_
#define UTTM_SRC_RESOURCE_BUDDY_MATH_H_

#include <bit>
#include <cstdint>

namespace uttm::internal {

// floor(log2(v)) for v >= 1.
constexpr unsigned BuddyIlog2(std::uint64_t v) {
  return 63u - static_cast<unsigned>(std::countl_zero(v));
}

constexpr bool BuddyIsPow2(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace uttm::internal

#endif  // UTTM_SRC_RESOURCE_BUDDY_MATH_H_
