// Copyright (c) uttm developers.
//
// range_bins.h (internal): size classes of the RangeAllocator's hole index.
//
// Hole sizes below kRangeLinear (1024 units) have one class each, so a class holds holes of one
// size only. Above that every power of two is split into 8 equal sub-ranges (the TLSF second
// level), which gives 1456 classes for the whole u64 range. Class order follows size order, so
// every hole of a class above RangeBinOf(n) is at least n units long.
#ifndef UTTM_SRC_RESOURCE_RANGE_BINS_H_
#define UTTM_SRC_RESOURCE_RANGE_BINS_H_

#include <bit>
#include <cstdint>

namespace uttm::internal {

inline constexpr unsigned kRangeLinearBits = 10;
inline constexpr std::uint64_t kRangeLinear = std::uint64_t{1} << kRangeLinearBits;
inline constexpr unsigned kRangeSubBits = 3;
inline constexpr unsigned kRangeSubClasses = 1u << kRangeSubBits;
inline constexpr std::uint32_t kRangeBins =
    static_cast<std::uint32_t>(kRangeLinear) + (64 - kRangeLinearBits) * kRangeSubClasses;

// Size class of a hole of `units`.
constexpr std::uint32_t RangeBinOf(std::uint64_t units) {
  if (units < kRangeLinear) return static_cast<std::uint32_t>(units);
  const unsigned top = 63u - static_cast<unsigned>(std::countl_zero(units));
  return static_cast<std::uint32_t>(kRangeLinear + (top - kRangeLinearBits) * kRangeSubClasses +
                                    ((units >> (top - kRangeSubBits)) & (kRangeSubClasses - 1)));
}

// Smallest size in class `bin` (bin < kRangeBins).
constexpr std::uint64_t RangeBinMin(std::uint32_t bin) {
  if (bin < kRangeLinear) return bin;
  const std::uint32_t k = bin - static_cast<std::uint32_t>(kRangeLinear);
  const unsigned top = k / kRangeSubClasses + kRangeLinearBits;
  const std::uint64_t sub = k % kRangeSubClasses;
  return (kRangeSubClasses + sub) << (top - kRangeSubBits);
}

}  // namespace uttm::internal

#endif  // UTTM_SRC_RESOURCE_RANGE_BINS_H_
