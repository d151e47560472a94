// Copyright (c) uttm developers.
//
// The cases of upstream drivers/gpu/drm/ttm/tests/ttm_resource_test.c that need a real buffer
// object and device, case names kept (the BO-less ones are in src/lru/lru_test.cc and
// src/resource/resource_test.cc). ttm_resource_init is the manager's Alloc with the object as
// owner plus Lru::AddResource; ttm_resource_fini is RemoveResource plus Free.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "testing/test_device.h"
#include "uttm/buffer_object.h"
#include "uttm/system_manager.h"

namespace uttm {
namespace {

using namespace unit_literals;
using testing::kMemMock1;
using testing::PlacementOf;
using testing::TestDevice;

struct InitCase {
  const char* name;
  MemType mem_type;
  std::uint32_t flags;
};

class TtmResourceInit : public ::testing::TestWithParam<InitCase> {};

TEST_P(TtmResourceInit, ttm_resource_init_basic) {
  const InitCase& c = GetParam();
  TestDevice dev;
  dev.AddArena(kMemMock1, PageCount(64));  // the "private placement"
  OperationContext ctx;
  auto bo =
      BufferObject::Create(dev.get(), BoOptions{.size = 8_KiB, .priority = 1}, Placement(), ctx);
  ASSERT_TRUE(bo.ok());
  ResourceManager* man = dev->manager(c.mem_type);
  Lru& lru = dev->lru();
  const std::uint64_t usage_before = man->usage();
  Place place = testing::PlaceOf(c.mem_type, c.flags);
  auto res = man->Alloc(AllocRequest{.size = (*bo)->size(), .bo = bo->get(), .priority = 1}, place);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  Resource* r = res->get();
  EXPECT_EQ(r->start(), 0u);
  EXPECT_EQ(r->size(), 8_KiB);
  EXPECT_EQ(r->mem_type(), c.mem_type);
  EXPECT_EQ(r->placement_flags(), c.flags);
  EXPECT_EQ(r->bo(), bo->get());
  EXPECT_EQ(r->manager(), man);
  EXPECT_EQ(r->bus().caching, Caching::kCached);
  EXPECT_FALSE(r->bus().is_iomem);
  {
    MutexLock lock(lru.lock());
    lru.AddResource(r, (*bo)->priority(), (*bo)->pin_count() > 0);
    EXPECT_EQ(man->lru(1).back(), r->lru_node());  // last on lru[priority]
  }
  EXPECT_EQ(man->usage(), usage_before + (8_KiB).value());
  {
    MutexLock lock(lru.lock());
    lru.RemoveResource(r);
  }
  EXPECT_EQ(man->usage(), usage_before);
  man->Free(std::move(res).value());
}

INSTANTIATE_TEST_SUITE_P(
    ttm_resource, TtmResourceInit,
    ::testing::Values(InitCase{"system", kMemSystem, 0}, InitCase{"vram", kMemVram, 0},
                      InitCase{"private", kMemMock1, 0},
                      InitCase{"system_with_flags", kMemSystem, kPlaceTopDown}),
    [](const auto& info) { return std::string(info.param.name); });

// ttm_resource_manager_usage_basic: usage follows real objects' resources in and out.
TEST(TtmResource, ttm_resource_manager_usage_basic) {
  TestDevice dev;
  ResourceManager* vram = dev->manager(kMemVram);
  EXPECT_EQ(vram->usage(), 0u);
  OperationContext ctx;
  auto a = BufferObject::Create(dev.get(), BoOptions{.size = 12_KiB}, PlacementOf(kMemVram), ctx);
  auto b = BufferObject::Create(dev.get(), BoOptions{.size = 20_KiB}, PlacementOf(kMemVram), ctx);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(vram->usage(), (32_KiB).value());
  ASSERT_TRUE((*a)->Reserve(ctx).ok());
  (*a)->resv()->AssertHeld();
  ASSERT_TRUE((*a)->Validate(PlacementOf(kMemTt), ctx).ok());
  (*a)->Unreserve();
  EXPECT_EQ(vram->usage(), (20_KiB).value());
  EXPECT_EQ(dev->manager(kMemTt)->usage(), (12_KiB).value());
  b->reset();
  EXPECT_EQ(vram->usage(), 0u);
}

// ttm_sys_man_free_basic: freeing a SYSTEM resource of a real object empties the manager.
TEST(TtmResource, ttm_sys_man_free_basic) {
  TestDevice dev;
  ResourceManager* sys = dev->manager(kMemSystem);
  Lru& lru = dev->lru();
  OperationContext ctx;
  auto bo = BufferObject::Create(dev.get(), BoOptions{.size = 16_KiB}, Placement(), ctx);
  ASSERT_TRUE(bo.ok());
  auto res =
      sys->Alloc(AllocRequest{.size = 16_KiB, .bo = bo->get()}, testing::PlaceOf(kMemSystem));
  ASSERT_TRUE(res.ok());
  {
    MutexLock lock(lru.lock());
    lru.AddResource(res->get(), (*bo)->priority(), false);
  }
  EXPECT_EQ(sys->usage(), (16_KiB).value());
  {
    MutexLock lock(lru.lock());
    lru.RemoveResource(res->get());
    EXPECT_TRUE(sys->lru(0).empty());
  }
  sys->Free(std::move(res).value());
  EXPECT_EQ(sys->usage(), 0u);
}

// ttm_resource_init files a resource by its object: a pinned object's resource goes to the
// unevictable list, a priority-3 object's to lru[3], whatever the resource carried before.
TEST(TtmResource, AddResourceFilesByTheObjectsPinAndPriority) {
  TestDevice dev;
  ResourceManager* sys = dev->manager(kMemSystem);
  Lru& lru = dev->lru();
  OperationContext ctx;
  auto bo =
      BufferObject::Create(dev.get(), BoOptions{.size = 16_KiB, .priority = 3}, Placement(), ctx);
  ASSERT_TRUE(bo.ok());
  for (bool pinned : {false, true}) {
    auto res = sys->Alloc(AllocRequest{.size = 16_KiB, .bo = bo->get(), .priority = 0},
                          testing::PlaceOf(kMemSystem));
    ASSERT_TRUE(res.ok());
    Resource* r = res->get();
    {
      MutexLock lock(lru.lock());
      lru.AddResource(r, (*bo)->priority(), pinned);
      EXPECT_EQ(r->priority(), 3u);
      EXPECT_EQ(r->unevictable(), pinned);
      EXPECT_EQ(pinned ? lru.unevictable().back() : sys->lru(3).back(), r->lru_node());
      EXPECT_TRUE(sys->lru(0).empty());
      lru.RemoveResource(r);
    }
    sys->Free(std::move(res).value());
  }
}

}  // namespace
}  // namespace uttm
