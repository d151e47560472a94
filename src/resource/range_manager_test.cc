// Copyright (c) uttm developers.
#include "uttm/range_manager.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace uttm {
namespace {

using namespace unit_literals;

TEST(RangeManager, BestFitAndTopDown) {
  RangeManager man(kMemVram, PageCount(256));
  Place place{.mem_type = kMemVram};
  auto a = man.Alloc(AllocRequest{.size = 16_KiB}, place);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->start(), 0u);
  Place top = place;
  top.flags = kPlaceTopDown;
  auto b = man.Alloc(AllocRequest{.size = 8_KiB}, top);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->start(), 254u);
  EXPECT_EQ((*b)->bus().offset, 254u * 4096);
  EXPECT_EQ(man.available(), PageCount(250));
  man.Free(std::move(a).value());
  man.Free(std::move(b).value());
  EXPECT_EQ(man.available(), PageCount(256));
}

TEST(RangeManager, PlaceRangeAndAlignment) {
  RangeManager man(kMemVram, PageCount(256));
  Place place{.fpfn = 100, .lpfn = 200, .mem_type = kMemVram};
  auto a = man.Alloc(AllocRequest{.size = 4_KiB, .page_alignment = 64}, place);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->start(), 128u);
  EXPECT_TRUE(man.Compatible(**a, place, 4_KiB));
  EXPECT_FALSE(man.Compatible(**a, Place{.fpfn = 0, .lpfn = 100, .mem_type = kMemVram}, 4_KiB));
  EXPECT_TRUE(man.Intersects(**a, Place{.fpfn = 120, .lpfn = 130, .mem_type = kMemVram}, 4_KiB));
  EXPECT_FALSE(man.Intersects(**a, Place{.fpfn = 0, .lpfn = 128, .mem_type = kMemVram}, 4_KiB));
  man.Free(std::move(a).value());
}

TEST(RangeManager, FullGivesNoSpace) {
  RangeManager man(kMemVram, PageCount(4));
  Place place{.mem_type = kMemVram};
  std::vector<std::unique_ptr<Resource>> held;
  for (int i = 0; i < 4; ++i) {
    auto r = man.Alloc(AllocRequest{.size = 4_KiB}, place);
    ASSERT_TRUE(r.ok());
    held.push_back(std::move(r).value());
  }
  EXPECT_EQ(man.Alloc(AllocRequest{.size = 4_KiB}, place).code(), Errc::kNoSpace);
  EXPECT_EQ(man.Alloc(AllocRequest{.size = 0_B}, place).code(), Errc::kInvalid);
  std::string dbg;
  man.DebugPrint(&dbg);
  EXPECT_FALSE(dbg.empty());
  for (auto& r : held) man.Free(std::move(r));
}

}  // namespace
}  // namespace uttm
