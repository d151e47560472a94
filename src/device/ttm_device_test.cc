// Copyright (c) uttm developers.
//
// Port of upstream drivers/gpu/drm/ttm/tests/ttm_device_test.c (suite ttm_device), case names
// kept. Adaptations: "no VMA manager" becomes "no driver callbacks" (the only mandatory input of
// Device::Create), and the pool parameters (use_dma_alloc, use_dma32) become the MemoryContext's
// pool options (pool_cached: whether cached pages are pooled too; a dma32 page limit).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "testing/test_device.h"
#include "uttm/buffer_object.h"
#include "uttm/device.h"
#include "uttm/memory_context.h"

namespace uttm {
namespace {

using namespace unit_literals;
using testing::PlacementOf;
using testing::TestDriver;

bool OnDeviceList(const Device* dev) {
  bool found = false;
  Device::ForEachDevice(MemoryContext::Default(), [&](Device& d) { found |= (&d == dev); });
  return found;
}

std::size_t DeviceListSize() {
  std::size_t n = 0;
  Device::ForEachDevice(MemoryContext::Default(), [&](Device&) { ++n; });
  return n;
}

TEST(TtmDevice, ttm_device_init_basic) {
  TestDriver driver;
  DeviceOptions opts;
  opts.name = "basic";
  auto dev = Device::Create(&driver, opts);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_EQ(&(*dev)->funcs(), &driver);
  EXPECT_EQ((*dev)->name(), "basic");
  EXPECT_EQ(&(*dev)->memory(), &MemoryContext::Default());
  ResourceManager* sys = (*dev)->manager(kMemSystem);
  ASSERT_NE(sys, nullptr);
  EXPECT_TRUE(sys->use_type());
  EXPECT_TRUE(sys->use_tt());
  for (MemType t = 1; t < kNumMemTypes; ++t) EXPECT_EQ((*dev)->manager(t), nullptr);
  EXPECT_EQ((*dev)->bo_count(), 0u);
  EXPECT_TRUE(OnDeviceList(dev->get()));
}

TEST(TtmDevice, ttm_device_init_multiple) {
  constexpr int kDevices = 3;
  TestDriver drivers[kDevices];
  std::size_t before = DeviceListSize();
  std::vector<std::unique_ptr<Device>> devs;
  for (int i = 0; i < kDevices; ++i) {
    auto dev = Device::Create(&drivers[i], DeviceOptions{});
    ASSERT_TRUE(dev.ok());
    devs.push_back(std::move(dev).value());
  }
  EXPECT_EQ(DeviceListSize(), before + kDevices);
  for (int i = 0; i < kDevices; ++i) {
    EXPECT_EQ(&devs[i]->funcs(), &drivers[i]);
    EXPECT_TRUE(devs[i]->manager(kMemSystem)->use_type());
    EXPECT_TRUE(OnDeviceList(devs[i].get()));
  }
  // Round robin: the rotated device goes to the back.
  Device::RotateToBack(devs[0].get());
  Device* last = nullptr;
  Device::ForEachDevice(MemoryContext::Default(), [&](Device& d) { last = &d; });
  EXPECT_EQ(last, devs[0].get());
  devs.clear();
  EXPECT_EQ(DeviceListSize(), before);
}

TEST(TtmDevice, EachMemoryContextListsOnlyItsOwnDevices) {
  MemoryContext a_memory, b_memory;
  TestDriver a_driver, b_driver;
  DeviceOptions a_opts, b_opts;
  a_opts.memory = &a_memory;
  b_opts.memory = &b_memory;
  auto a = Device::Create(&a_driver, a_opts);
  auto b = Device::Create(&b_driver, b_opts);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<Device*> in_a, in_b;
  Device::ForEachDevice(a_memory, [&](Device& d) { in_a.push_back(&d); });
  Device::ForEachDevice(b_memory, [&](Device& d) { in_b.push_back(&d); });
  EXPECT_EQ(in_a, std::vector<Device*>{a->get()});
  EXPECT_EQ(in_b, std::vector<Device*>{b->get()});
  EXPECT_FALSE(OnDeviceList(a->get()));  // not on the default context's list either
  a->reset();
  in_a.clear();
  Device::ForEachDevice(a_memory, [&](Device& d) { in_a.push_back(&d); });
  EXPECT_TRUE(in_a.empty());
}

TEST(TtmDevice, ttm_device_fini_basic) {
  TestDriver driver;
  auto dev = Device::Create(&driver, DeviceOptions{});
  ASSERT_TRUE(dev.ok());
  Device* raw = dev->get();
  // A zombie (released while busy) is finished by the destructor's delayed-delete flush.
  {
    OperationContext ctx;
    auto bo = BufferObject::Create(raw, BoOptions{.size = 4_KiB}, PlacementOf(kMemSystem), ctx);
    ASSERT_TRUE(bo.ok());
    FenceRef busy = Fence::Create(Fence::AllocateContext(), 1);
    ASSERT_TRUE((*bo)->Reserve(ctx).ok());
    (*bo)->resv()->AssertHeld();
    ASSERT_TRUE((*bo)->resv()->ReserveFences(1).ok());
    ASSERT_TRUE((*bo)->resv()->AddFence(busy, ResvUsage::kBookkeep).ok());
    (*bo)->Unreserve();
    bo->reset();
    EXPECT_EQ(raw->bo_count(), 1u);
    ASSERT_TRUE(busy->Signal().ok());
  }
  ResourceManager* sys = raw->manager(kMemSystem);
  ASSERT_TRUE(sys->use_type());
  auto taken = raw->TakeManager(kMemSystem);
  ASSERT_EQ(taken.get(), sys);
  EXPECT_FALSE(taken->use_type());
  EXPECT_EQ(raw->manager(kMemSystem), nullptr);
  dev->reset();  // flushes the zombie, leaves the list
  EXPECT_FALSE(OnDeviceList(raw));
}

TEST(TtmDevice, ttm_device_init_no_vma_man) {
  auto dev = Device::Create(nullptr, DeviceOptions{});
  EXPECT_EQ(dev.code(), Errc::kInvalid);
  EXPECT_NE(dev.status().message().find("driver callbacks"), std::string_view::npos);
}

struct PoolCase {
  const char* name;
  bool pool_cached;
  bool dma32;
};

class TtmDevicePools : public ::testing::TestWithParam<PoolCase> {};

TEST_P(TtmDevicePools, ttm_device_init_pools) {
  const PoolCase& c = GetParam();
  MemoryContextOptions mopts;
  mopts.pool_cached = c.pool_cached;
  if (c.dma32) mopts.dma32_pages_limit = PageCount(1024);
  MemoryContext memory(mopts);
  TestDriver driver;
  DeviceOptions opts;
  opts.memory = &memory;
  auto dev = Device::Create(&driver, opts);
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(&(*dev)->memory(), &memory);
  PagePool& pool = (*dev)->memory().pool();
  EXPECT_EQ(pool.IsPooled(Caching::kCached), c.pool_cached);
  EXPECT_TRUE(pool.IsPooled(Caching::kWriteCombined));
  EXPECT_TRUE(pool.IsPooled(Caching::kUncached));
  if (c.dma32) {
    EXPECT_EQ(memory.dma32_pages_limit(), PageCount(1024));
  }

  // Populate and release one object per caching: the pooled ones leave their pages in the pool.
  for (Caching caching : {Caching::kCached, Caching::kWriteCombined}) {
    std::uint64_t pooled_before = pool.pooled_pages();
    OperationContext ctx;
    BoOptions bo_opts{.size = 16_KiB, .caching = caching};
    auto bo = BufferObject::Create(dev->get(), bo_opts, PlacementOf(kMemSystem), ctx);
    ASSERT_TRUE(bo.ok());
    std::vector<std::byte> data(16384, std::byte{0x5a});
    ASSERT_TRUE((*bo)->Write(0, data, ctx).ok());
    EXPECT_EQ(memory.pages_allocated(), PageCount(4));
    bo->reset();
    (*dev)->FlushDelayedDeletes();
    EXPECT_EQ(memory.pages_allocated(), PageCount(0));
    if (pool.IsPooled(caching)) {
      EXPECT_EQ(pool.pooled_pages(), pooled_before + 4) << static_cast<int>(caching);
    } else {
      EXPECT_EQ(pool.pooled_pages(), pooled_before);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ttm_device, TtmDevicePools,
                         ::testing::Values(PoolCase{"no_cached_pool_no_dma32", false, false},
                                           PoolCase{"cached_pool_dma32", true, true},
                                           PoolCase{"no_cached_pool_dma32", false, true},
                                           PoolCase{"cached_pool_no_dma32", true, false}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace uttm
