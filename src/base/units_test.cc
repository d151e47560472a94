// Copyright (c) uttm developers.
#include "uttm/units.h"

#include <gtest/gtest.h>

#include <type_traits>

namespace uttm {
namespace {

using namespace unit_literals;

TEST(Units, PagesAndBytesDoNotMix) {
  static_assert(!std::is_convertible_v<PageCount, Bytes>);
  static_assert(!std::is_convertible_v<Bytes, PageCount>);
  static_assert(!std::is_convertible_v<std::uint64_t, PageCount>);
  EXPECT_EQ(PageCount(3).in_bytes(), Bytes(3 * 4096));
  EXPECT_EQ((8_KiB + 1_B).pages_rounded_up(), PageCount(3));
  EXPECT_EQ((8_KiB).pages_rounded_up(), PageCount(2));
  EXPECT_TRUE((64_KiB).is_page_aligned());
  EXPECT_FALSE((64_KiB + 1_B).is_page_aligned());
}

TEST(Units, Orders) {
  EXPECT_EQ(PageOrder(0).bytes(), 4_KiB);
  EXPECT_EQ(PageOrder(kMaxPageOrder).bytes(), 2_MiB);
  EXPECT_TRUE(PageOrder(9).is_valid());
  EXPECT_FALSE(PageOrder(10).is_valid());
  EXPECT_EQ(PageOrder::LargestFitting(PageCount(1)), PageOrder(0));
  EXPECT_EQ(PageOrder::LargestFitting(PageCount(3)), PageOrder(1));
  EXPECT_EQ(PageOrder::LargestFitting(PageCount(4)), PageOrder(2));
  EXPECT_EQ(PageOrder::LargestFitting(PageCount(1000)), PageOrder(9));
  EXPECT_EQ(PageOrder::LargestFitting(PageCount(1)), PageOrder(0));
}

TEST(Units, Arithmetic) {
  PageCount a(10);
  a += PageCount(5);
  a -= PageCount(3);
  EXPECT_EQ(a, PageCount(12));
  EXPECT_LT(PageCount(1), PageCount(2));
  EXPECT_EQ(1_GiB - 512_MiB, 512_MiB);
}

}  // namespace
}  // namespace uttm
