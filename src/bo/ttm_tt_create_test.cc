// Copyright (c) uttm developers.
//
// The four cases of upstream drivers/gpu/drm/ttm/tests/ttm_tt_test.c that need a buffer object
// (ttm_tt_create_*), case names kept. The page vector is created by the core during validation
// (BufferObject's CreateTt calls DeviceFuncs::TtCreate), so each case drives it through Create /
// Validate with a real test driver.
#include <gtest/gtest.h>

#include "testing/test_device.h"
#include "uttm/buffer_object.h"

namespace uttm {
namespace {

using namespace unit_literals;
using testing::PlacementOf;
using testing::TestDevice;
using testing::TestDriver;

TEST(TtmTt, ttm_tt_create_basic) {
  TestDevice dev;
  OperationContext ctx;
  auto bo = BufferObject::Create(dev.get(), BoOptions{.size = 8_KiB}, PlacementOf(kMemSystem), ctx);
  ASSERT_TRUE(bo.ok()) << bo.status().ToString();
  PageVector* tt = (*bo)->tt();
  ASSERT_NE(tt, nullptr);
  EXPECT_EQ(tt->num_pages(), PageCount(2));
  EXPECT_EQ(tt->caching(), Caching::kCached);
  EXPECT_FALSE(tt->is_populated());
  // A fresh device object gets zeroed pages; nothing else is set.
  EXPECT_EQ(tt->flags() & ~kPageVectorZeroAlloc, 0u);
  EXPECT_EQ(&tt->context(), &dev->memory());
}

TEST(TtmTt, ttm_tt_create_invalid_bo_type) {
  TestDevice dev;
  OperationContext ctx;
  BoOptions opts{.type = static_cast<BoType>(static_cast<int>(BoType::kSg) + 1), .size = 4_KiB};
  auto bo = BufferObject::Create(dev.get(), opts, PlacementOf(kMemSystem), ctx);
  EXPECT_EQ(bo.code(), Errc::kInvalid);
  EXPECT_EQ(dev->bo_count(), 0u);
}

TEST(TtmTt, ttm_tt_create_ttm_exists) {
  TestDevice dev;
  OperationContext ctx;
  auto bo = BufferObject::Create(dev.get(), BoOptions{.size = 4_KiB}, PlacementOf(kMemSystem), ctx);
  ASSERT_TRUE(bo.ok());
  PageVector* before = (*bo)->tt();
  ASSERT_NE(before, nullptr);
  // Moving to another page-vector type keeps (and populates) the existing page vector.
  ASSERT_TRUE((*bo)->Reserve(ctx).ok());
  (*bo)->resv()->AssertHeld();
  ASSERT_TRUE((*bo)->Validate(PlacementOf(kMemTt), ctx).ok());
  (*bo)->Unreserve();
  EXPECT_EQ((*bo)->resource()->mem_type(), kMemTt);
  EXPECT_EQ((*bo)->tt(), before);
  EXPECT_TRUE(before->is_populated());
}

// A driver whose TtCreate fails: with an error, or (like a NULL return upstream) with no vector.
class FailingTtDriver : public TestDriver {
 public:
  explicit FailingTtDriver(bool return_null) : return_null_(return_null) {}
  Result<std::unique_ptr<PageVector>> TtCreate(BufferObject&, std::uint32_t) override {
    ++calls;
    if (return_null_) return std::unique_ptr<PageVector>();
    return Status(Errc::kNoMemory, "test driver: no page vector");
  }
  int calls = 0;

 private:
  bool return_null_;
};

TEST(TtmTt, ttm_tt_create_failed) {
  for (bool return_null : {false, true}) {
    FailingTtDriver driver(return_null);
    auto dev = Device::Create(&driver, DeviceOptions{});
    ASSERT_TRUE(dev.ok());
    OperationContext ctx;
    auto bo =
        BufferObject::Create(dev->get(), BoOptions{.size = 4_KiB}, PlacementOf(kMemSystem), ctx);
    EXPECT_EQ(bo.code(), Errc::kNoMemory) << return_null;
    EXPECT_GE(driver.calls, 1);
    (*dev)->FlushDelayedDeletes();
    EXPECT_EQ((*dev)->bo_count(), 0u);
    EXPECT_EQ((*dev)->manager(kMemSystem)->usage(), 0u);
  }
}

}  // namespace
}  // namespace uttm
