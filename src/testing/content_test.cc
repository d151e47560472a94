// Copyright (c) uttm developers.
//
// The test content must tell apart everything a broken backup, restore or move could produce.
#include "testing/content.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "uttm/units.h"

namespace uttm::testing {
namespace {

constexpr std::size_t kPages = 4;

TEST(ContentTest, EveryPageObjectAndVersionDiffers) {
  const std::vector<std::byte> a = Content({7, 1}, 0, kPages * kPageSize);
  EXPECT_FALSE(FindMismatch({7, 1}, 0, a).has_value());
  // Two pages swapped (a restore into the wrong slot).
  std::vector<std::byte> swapped = a;
  std::swap_ranges(swapped.begin(), swapped.begin() + kPageSize, swapped.begin() + 2 * kPageSize);
  EXPECT_EQ(FindMismatch({7, 1}, 0, swapped), std::optional<std::size_t>(0));
  // The same page of another object, and of an older version of the same object.
  std::vector<std::byte> other = Content({8, 1}, 0, kPageSize);
  std::vector<std::byte> stale = Content({7, 2}, 0, kPageSize);
  EXPECT_TRUE(FindMismatch({7, 1}, 0, other).has_value());
  EXPECT_TRUE(FindMismatch({7, 1}, 0, stale).has_value());
  // One flipped bit deep inside.
  std::vector<std::byte> flipped = a;
  flipped[3 * kPageSize + 1234] ^= std::byte{0x10};
  EXPECT_EQ(FindMismatch({7, 1}, 0, flipped), std::optional<std::size_t>(3 * kPageSize + 1234));
  // No page of the object repeats another (a pattern with a period would).
  for (std::size_t p = 1; p < kPages; ++p) {
    EXPECT_NE(std::memcmp(a.data(), a.data() + p * kPageSize, kPageSize), 0) << "page " << p;
  }
}

TEST(ContentTest, ARangeIsTheSliceOfTheWhole) {
  const std::vector<std::byte> whole = Content({3, 5}, 0, 3 * kPageSize);
  const std::vector<std::byte> part = Content({3, 5}, 4093, 4100);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + 4093));
  EXPECT_FALSE(FindMismatch({3, 5}, 4093, part).has_value());
  EXPECT_TRUE(FindMismatch({3, 5}, 4092, part).has_value());  // shifted by one byte
}

}  // namespace
}  // namespace uttm::testing
