// Copyright (c) uttm developers.
#include "size.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace uttm::tool {
namespace {

TEST(SizeTest, ParsesUnits) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64KiB"), 65536u);
  EXPECT_EQ(*ParseSize("64k"), 65536u);
  EXPECT_EQ(*ParseSize("1.5MiB"), 1536u * 1024);
  EXPECT_EQ(*ParseSize(" 2 GiB "), 2ull << 30);
  EXPECT_EQ(*ParseSize("1TB"), 1ull << 40);
  EXPECT_EQ(*ParseSize("7B"), 7u);
}

TEST(SizeTest, RejectsBadSizes) {
  for (const char* bad : {"", "MiB", "12XB", "-5", "1.2.3", "0.5B", ".5K", "1e3", "99999999TiB"}) {
    auto r = ParseSize(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.code(), Errc::kInvalid);
      EXPECT_THAT(std::string(r.status().message()), ::testing::StartsWith("invalid size '"));
    }
  }
  EXPECT_EQ(ParseSize("12XB").status().message(),
            std::string("invalid size '12XB': unknown unit 'XB' (expected ") +
                std::string(kSizeSyntax) + ")");
}

TEST(SizeTest, Durations) {
  EXPECT_DOUBLE_EQ(*ParseDuration("30"), 30);
  EXPECT_DOUBLE_EQ(*ParseDuration("1.5s"), 1.5);
  EXPECT_DOUBLE_EQ(*ParseDuration("250ms"), 0.25);
  EXPECT_DOUBLE_EQ(*ParseDuration("2m"), 120);
  EXPECT_FALSE(ParseDuration("soon").ok());
  EXPECT_FALSE(ParseDuration("3 days").ok());
}

TEST(SizeTest, Formats) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
  EXPECT_EQ(FormatSize(4096), "4 KiB");
  EXPECT_EQ(FormatSize(1536 * 1024), "1.50 MiB");
  EXPECT_EQ(FormatSize(96ull << 20), "96 MiB");
  EXPECT_EQ(FormatSize((100ull << 30) + (1ull << 29)), "100.5 GiB");
}

}  // namespace
}  // namespace uttm::tool
