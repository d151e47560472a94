// Copyright (c) uttm developers.
//
// CheckInvariants must pass on a consistent system and name each kind of inconsistency it is
// meant to catch: these tests break one rule at a time through the public API.
#include "uttm/invariants.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "testing/shrinker_device.h"
#include "testing/test_device.h"
#include "uttm/buffer_object.h"
#include "uttm/memfd_store.h"
#include "uttm/page_vector.h"

namespace uttm {
namespace {

using testing::PlacementOf;
using testing::TestDevice;

class InvariantsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(rig_.Init(PageCount(64)).ok()); }

  void TearDown() override {
    bos_.clear();
    (*dev_)->FlushDelayedDeletes();
    dev_.reset();
  }

  BoRef Make(MemType type, std::uint64_t pages) {
    OperationContext ctx;
    BoOptions opts;
    opts.size = Bytes(pages * kPageSize);
    auto bo = BufferObject::Create(dev_->get(), opts, PlacementOf(type), ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    std::vector<std::byte> data(opts.size.value(), std::byte{0x5a});
    EXPECT_TRUE((*bo)->Write(0, data, ctx).ok());
    bos_.push_back(*bo);
    return *bo;
  }

  Status Check() {
    InvariantOptions o;
    o.shrinkers = {shrinker_.get()};
    return CheckInvariants(*memory_, o);
  }

  testing::ShrinkerDevice rig_;
  Stats& stats_ = rig_.stats;
  std::unique_ptr<MemoryContext>& memory_ = rig_.memory;
  std::unique_ptr<BackupStore>& store_ = rig_.store;
  std::unique_ptr<BoShrinker>& shrinker_ = rig_.shrinker;
  std::unique_ptr<TestDevice>& dev_ = rig_.dev;
  std::vector<BoRef> bos_;
};

TEST_F(InvariantsTest, AConsistentSystemPasses) {
  Make(kMemSystem, 8);
  Make(kMemTt, 5);
  Make(kMemVram, 3);
  Make(kMemSystem, 6);
  ShrinkControl sc;
  sc.nr_to_scan = 1024;
  shrinker_->Scan(sc);
  ASSERT_GT(store_->BytesUsed(), 0u);
  Status s = Check();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(CheckDeviceInvariants(*dev_->get()).ok());
}

TEST_F(InvariantsTest, AChargedPageVectorNoObjectHoldsIsALeakOfBudget) {
  Make(kMemSystem, 4);
  PageVectorOptions po;
  po.size = Bytes(3 * kPageSize);
  auto tt = PageVector::Create(memory_.get(), po);
  ASSERT_TRUE(tt.ok());
  OperationContext ctx;
  ASSERT_TRUE((*tt)->Populate(ctx).ok());
  Status s = Check();
  EXPECT_EQ(s.code(), Errc::kCorrupt) << s.ToString();
  EXPECT_NE(s.message().find("pages charged"), std::string_view::npos) << s.ToString();
  (*tt)->Unpopulate();
  EXPECT_TRUE(Check().ok());
}

TEST_F(InvariantsTest, StorePagesNoVectorHoldsAreASlotLeak) {
  Make(kMemSystem, 4);
  alignas(4096) static std::byte buf[kPageSize];
  Result<BackupHandle> h = store_->BackupPage(buf, {});
  ASSERT_TRUE(h.ok());
  Status s = Check();
  EXPECT_EQ(s.code(), Errc::kCorrupt) << s.ToString();
  EXPECT_NE(s.message().find("the page vectors hold 0 handles"), std::string_view::npos)
      << s.ToString();
  store_->DropPage(*h);
  EXPECT_TRUE(Check().ok());
}

TEST_F(InvariantsTest, AResourceOnTheWrongListIsNamed) {
  BoRef bo = Make(kMemTt, 2);
  {
    MutexLock lock((*dev_)->lru().lock());
    (*dev_)->lru().SetUnevictable(bo->resource(), true);  // not pinned, not swapped
  }
  Status s = CheckDeviceInvariants(*dev_->get());
  EXPECT_EQ(s.code(), Errc::kCorrupt) << s.ToString();
  EXPECT_NE(s.message().find("pin count 0"), std::string_view::npos) << s.ToString();
  {
    MutexLock lock((*dev_)->lru().lock());
    (*dev_)->lru().SetUnevictable(bo->resource(), false);
  }
  EXPECT_TRUE(CheckDeviceInvariants(*dev_->get()).ok());
}

TEST_F(InvariantsTest, ALockedObjectMakesTheCheckBusyNotWrong) {
  BoRef bo = Make(kMemSystem, 2);
  ASSERT_TRUE(bo->TryReserve());
  bo->resv()->AssertHeld();
  EXPECT_EQ(Check().code(), Errc::kBusy);
  bo->resv()->AssertHeld();
  bo->resv()->Unlock();
  EXPECT_TRUE(Check().ok());
}

}  // namespace
}  // namespace uttm
