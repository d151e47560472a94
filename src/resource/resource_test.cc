// Copyright (c) uttm developers.
//
// Resource managers without ranges: SYSTEM (ttm_sys_man_*) and the budgeted TT manager.
#include <gtest/gtest.h>

#include <string>

#include "uttm/system_manager.h"
#include "uttm/tt_manager.h"

namespace uttm {
namespace {

using namespace unit_literals;

// ttm_resource_manager_init_basic: size, usage 0, empty LRUs, not yet in use.
TEST(ResourceManager, ttm_resource_manager_init_basic) {
  TtManager man(kMemTt, 1_MiB);
  EXPECT_EQ(man.mem_type(), kMemTt);
  EXPECT_TRUE(man.use_tt());
  EXPECT_EQ(man.size(), 256u);  // pages
  EXPECT_EQ(man.usage(), 0u);
  EXPECT_FALSE(man.use_type());
  for (unsigned p = 0; p < kNumPriorities; ++p) EXPECT_TRUE(man.lru(p).empty());
}

// ttm_sys_man_alloc_basic: the SYSTEM manager fills size, type and owner.
TEST(SystemManager, ttm_sys_man_alloc_basic) {
  SystemManager man;
  Place place{.mem_type = kMemSystem};
  auto res = man.Alloc(AllocRequest{.size = 8_KiB, .priority = 2}, place);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ((*res)->size(), 8_KiB);
  EXPECT_EQ((*res)->mem_type(), kMemSystem);
  EXPECT_EQ((*res)->num_pages(), PageCount(2));
  EXPECT_EQ((*res)->priority(), 2u);
  EXPECT_EQ((*res)->manager(), &man);
  EXPECT_EQ((*res)->bo(), nullptr);
  man.Free(std::move(res).value());
}

TEST(SystemManager, RejectsOtherTypes) {
  SystemManager man;
  auto res = man.Alloc(AllocRequest{.size = 4_KiB}, Place{.mem_type = kMemVram});
  EXPECT_EQ(res.code(), Errc::kInvalid);
}

TEST(TtManager, BudgetGivesNoSpaceButTemporaryMayExceed) {
  TtManager man(kMemTt, 16_KiB);
  Place place{.mem_type = kMemTt};
  auto a = man.Alloc(AllocRequest{.size = 12_KiB}, place);
  ASSERT_TRUE(a.ok());
  auto b = man.Alloc(AllocRequest{.size = 8_KiB}, place);
  EXPECT_EQ(b.code(), Errc::kNoSpace);
  Place temp = place;
  temp.flags = kPlaceTemporary;
  auto c = man.Alloc(AllocRequest{.size = 8_KiB}, temp);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(man.allocated(), 20_KiB);
  man.Free(std::move(c).value());
  man.Free(std::move(a).value());
  EXPECT_EQ(man.allocated(), 0_B);
  auto d = man.Alloc(AllocRequest{.size = 16_KiB}, place);
  ASSERT_TRUE(d.ok());
  std::string dbg;
  man.DebugPrint(&dbg);
  EXPECT_NE(dbg.find("budget 16384"), std::string::npos) << dbg;
  man.Free(std::move(d).value());
}

}  // namespace
}  // namespace uttm
