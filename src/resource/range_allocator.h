// Copyright (c) uttm developers.
//
// range_allocator.h (internal): size classes of the RangeAllocator's hole index.
//
// Hole sizes map to 496 classes: sizes 0..7 have one class each; above that every power of two
// is split into 8 equal sub-ranges (the TLSF second level). Class order follows size order, so
// every hole of a class above BinOf(n) is at least n units long.
#ifndef UTTM_SRC_RESOURCE_RANGE_ALLOCATOR_H_
#define UTTM_SRC_RESOURCE_RANGE_ALLOCATOR_H_

#include <bit>
#include <cstdint>

namespace uttm::internal {

inline constexpr unsigned kRangeSubBits = 3;
inline constexpr unsigned kRangeSubClasses = 1u << kRangeSubBits;

// Size class of a hole of `units` (>= 1).
constexpr std::uint32_t RangeBinOf(std::uint64_t units) {
  if (units < kRangeSubClasses) return static_cast<std::uint32_t>(units);
  const unsigned top = 63u - static_cast<unsigned>(std::countl_zero(units));
  const unsigned shift = top - kRangeSubBits;
  return static_cast<std::uint32_t>((top - kRangeSubBits + 1) * kRangeSubClasses +
                                    ((units >> shift) & (kRangeSubClasses - 1)));
}

// Smallest size in class `bin`.
constexpr std::uint64_t RangeBinMin(std::uint32_t bin) {
  if (bin < kRangeSubClasses) return bin;
  const unsigned top = bin / kRangeSubClasses + kRangeSubBits - 1;
  const std::uint64_t sub = bin % kRangeSubClasses;
  return (kRangeSubClasses + sub) << (top - kRangeSubBits);
}

}  // namespace uttm::internal

#endif  // UTTM_SRC_RESOURCE_RANGE_ALLOCATOR_H_
