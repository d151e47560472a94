// Copyright (c) uttm developers.
//
// The simulated GPU: content integrity across every move path, pipelined moves and ghosts,
// pipelined eviction, GPU jobs keeping objects busy, runtime power management.
#include "uttm/sim_gpu.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "testing/content.h"
#include "uttm/fault_injection.h"

namespace uttm {
namespace {

using namespace unit_literals;
using namespace std::chrono_literals;

Placement In(MemType type) {
  Place p;
  p.mem_type = type;
  return Placement{p};
}

class SimGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SimGpuOptions opts;
    opts.vram_size = 1_MiB;
    opts.tt_budget = 4_MiB;
    opts.memcpy_moves = memcpy_moves_;
    auto gpu = SimGpu::Create(opts);
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    gpu_ = std::move(gpu).value();
  }
  void TearDown() override {
    gpu_->Drain();
    gpu_->device()->FlushDelayedDeletes();
  }

  BoRef Make(MemType type, Bytes size = 64_KiB) {
    OperationContext ctx;
    BoOptions opts;
    opts.size = size;
    auto bo = BufferObject::Create(gpu_->device(), opts, In(type), ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    return bo.ok() ? std::move(bo).value() : BoRef();
  }

  // Contents that differ for every object (`seed`), page and offset: a page moved to the wrong
  // place, or taken from another object, is caught.
  static std::vector<std::byte> Pattern(std::size_t n, unsigned seed) {
    return testing::Content({seed, 1}, 0, n);
  }

  void Write(BufferObject& bo, unsigned seed) {
    OperationContext ctx;
    ASSERT_TRUE(bo.Write(0, Pattern(bo.size().value(), seed), ctx).ok());
  }

  void Expect(BufferObject& bo, unsigned seed) {
    std::vector<std::byte> got(bo.size().value());
    OperationContext ctx;
    ASSERT_TRUE(bo.Read(0, got, ctx).ok());
    EXPECT_TRUE(got == Pattern(got.size(), seed)) << "content changed";
  }

  Status Validate(BufferObject& bo, MemType type, OperationContext& ctx) {
    UTTM_RETURN_IF_ERROR(bo.Reserve(ctx));
    bo.resv()->AssertHeld();
    Status s = bo.Validate(In(type), ctx);
    bo.Unreserve();
    return s;
  }

  bool memcpy_moves_ = false;
  std::unique_ptr<SimGpu> gpu_;
};

// The same device moving with the CPU (SimGpuOptions::memcpy_moves).
class SimGpuMemcpyTest : public SimGpuTest {
 protected:
  SimGpuMemcpyTest() { memcpy_moves_ = true; }
};

TEST_F(SimGpuTest, ContentSurvivesEveryMovePath) {
  BoRef bo = Make(kMemSystem);
  Write(*bo, 1);
  // SYSTEM->TT (null), TT->VRAM (copy), VRAM->TT (copy), TT->SYSTEM (null),
  // SYSTEM->VRAM (hop through TT), VRAM->SYSTEM (hop through TT).
  struct Step {
    MemType to;
    std::uint64_t moved;  // in units of the object size
  };
  for (Step step : {Step{kMemTt, 1}, Step{kMemVram, 1}, Step{kMemTt, 1}, Step{kMemSystem, 1},
                    Step{kMemVram, 2}, Step{kMemSystem, 2}}) {
    OperationContext ctx;
    ASSERT_TRUE(Validate(*bo, step.to, ctx).ok()) << "to " << step.to;
    EXPECT_EQ(bo->resource()->mem_type(), step.to);
    EXPECT_EQ(ctx.bytes_moved, step.moved * bo->size().value()) << "to " << step.to;
    Expect(*bo, 1);
  }
  EXPECT_GE(gpu_->stats().copies, 4u);
  gpu_->Drain();
  gpu_->device()->FlushDelayedDeletes();
  EXPECT_EQ(gpu_->device()->manager(kMemVram)->usage(), 0u);
  EXPECT_EQ(gpu_->device()->manager(kMemTt)->usage(), 0u);
}

// With memcpy moves the CPU copies every move, directly (no hop through TT) and synchronously;
// the engine copies nothing.
TEST_F(SimGpuMemcpyTest, ContentSurvivesEveryMovePathCopiedByTheCpu) {
  BoRef bo = Make(kMemSystem);
  Write(*bo, 3);
  for (MemType to : {kMemVram, kMemTt, kMemVram, kMemSystem, kMemVram, kMemSystem}) {
    OperationContext ctx;
    ASSERT_TRUE(Validate(*bo, to, ctx).ok()) << "to " << to;
    EXPECT_EQ(bo->resource()->mem_type(), to);
    Expect(*bo, 3);
  }
  EXPECT_EQ(gpu_->stats().copies, 0u);
  EXPECT_EQ(gpu_->stats().memcpy_moves, 6u);  // each step goes to or from VRAM
}

// A failing CPU copy (fault point move.copy) leaves the object where it was, content intact.
TEST_F(SimGpuMemcpyTest, AFailedCopyKeepsPlacementAndContent) {
  BoRef bo = Make(kMemTt);
  Write(*bo, 4);
  {
    ScopedFault fault(FaultPoint::kMoveCopy, FaultSpec{.times = 1});
    OperationContext ctx;
    Status s = Validate(*bo, kMemVram, ctx);
    EXPECT_EQ(s.code(), Errc::kIo) << s.ToString();
  }
  EXPECT_EQ(bo->resource()->mem_type(), kMemTt);
  Expect(*bo, 4);
  EXPECT_EQ(gpu_->device()->manager(kMemVram)->usage(), 0u);
  OperationContext ctx;
  ASSERT_TRUE(Validate(*bo, kMemVram, ctx).ok());
  Expect(*bo, 4);
}

// Moves within one domain: a SYSTEM object evicted goes to SYSTEM (pages stay where they are),
// and a VRAM object placed into another VRAM range is copied by the engine.
TEST_F(SimGpuTest, ContentSurvivesMovesWithinOneDomain) {
  BoRef sys = Make(kMemSystem);
  Write(*sys, 7);
  OperationContext ctx;
  ASSERT_TRUE(
      BufferObject::EvictFirst(*gpu_->device(), gpu_->device()->manager(kMemSystem), ctx).ok());
  ASSERT_NE(sys->resource(), nullptr);
  EXPECT_EQ(sys->resource()->mem_type(), kMemSystem);
  Expect(*sys, 7);

  BoRef vram = Make(kMemVram);
  Write(*vram, 8);
  const std::uint64_t start = vram->resource()->start();
  const std::uint64_t pages = vram->num_pages().value();
  // A range that excludes where the object sits now.
  Place elsewhere{.mem_type = kMemVram};
  if (start >= pages) {
    elsewhere.lpfn = start;
  } else {
    elsewhere.fpfn = start + pages;
  }
  const std::uint64_t copies = gpu_->stats().copies;
  ASSERT_TRUE(vram->Reserve(ctx).ok());
  vram->resv()->AssertHeld();
  Status s = vram->Validate(Placement{elsewhere}, ctx);
  vram->Unreserve();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(vram->resource()->start(), start);
  EXPECT_EQ(gpu_->stats().copies, copies + 1);
  Expect(*vram, 8);
}

TEST_F(SimGpuTest, FreshVramIsCleared) {
  {
    BoRef secret = Make(kMemVram, 1_MiB);
    Write(*secret, 42);
  }
  gpu_->device()->FlushDelayedDeletes();
  BoRef fresh = Make(kMemVram, 1_MiB);
  std::vector<std::byte> got(fresh->size().value());
  OperationContext ctx;
  ASSERT_TRUE(fresh->Read(0, got, ctx).ok());
  for (std::byte b : got) ASSERT_EQ(b, std::byte{0});
  EXPECT_GE(gpu_->stats().clears, 2u);
}

TEST_F(SimGpuTest, VramPressureEvictsOldestToTt) {
  std::vector<BoRef> bos;
  for (unsigned i = 0; i < 3; ++i) {
    bos.push_back(Make(kMemVram, 512_KiB));
    ASSERT_TRUE(bos.back());
    Write(*bos.back(), 10 + i);
  }
  EXPECT_EQ(bos[0]->resource()->mem_type(), kMemTt);
  EXPECT_EQ(bos[1]->resource()->mem_type(), kMemVram);
  EXPECT_EQ(bos[2]->resource()->mem_type(), kMemVram);
  for (unsigned i = 0; i < 3; ++i) Expect(*bos[i], 10 + i);
  EXPECT_GE(gpu_->device()->stats().Get(Stat::kEvictions), 1u);
}

TEST_F(SimGpuTest, PipelinedMoveLeavesGhostUntilFenceSignals) {
  BoRef busy = Make(kMemTt, 4_KiB);
  BoRef bo = Make(kMemTt);
  Write(*bo, 7);
  OperationContext ctx;
  ASSERT_TRUE(busy->Reserve(ctx).ok());
  busy->resv()->AssertHeld();
  ASSERT_TRUE(gpu_->SubmitJob(*busy, 100ms).ok());  // the engine is busy for a while
  busy->Unreserve();
  ASSERT_TRUE(Validate(*bo, kMemVram, ctx).ok());
  // The move returned at once; the old TT pages belong to a ghost until the copy is done.
  EXPECT_EQ(gpu_->device()->bo_count(), 3u);
  EXPECT_EQ(gpu_->device()->manager(kMemTt)->usage(), (68_KiB).value());
  Expect(*bo, 7);  // waits for the copy
  gpu_->Drain();
  gpu_->device()->FlushDelayedDeletes();
  EXPECT_EQ(gpu_->device()->bo_count(), 2u);
  EXPECT_EQ(gpu_->device()->manager(kMemTt)->usage(), (4_KiB).value());
}

TEST_F(SimGpuTest, GpuJobKeepsObjectBusy) {
  BoRef bo = Make(kMemTt);
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  auto fence = gpu_->SubmitJob(*bo, 50ms);
  ASSERT_TRUE(fence.ok());
  bo->Unreserve();
  std::vector<std::byte> buf(16);
  OperationContext no_wait;
  no_wait.no_wait_gpu = true;
  EXPECT_EQ(bo->Read(0, buf, no_wait).code(), Errc::kBusy);
  EXPECT_TRUE(bo->Read(0, buf, ctx).ok());
  EXPECT_TRUE((*fence)->IsSignaled());
}

TEST_F(SimGpuTest, JobsRequireReservationAndRightDevice) {
  BoRef bo = Make(kMemTt);
  EXPECT_EQ(gpu_->SubmitJob(*bo, 1ms).code(), Errc::kInvalid);
}

TEST_F(SimGpuTest, RuntimePowerManagement) {
  EXPECT_TRUE(gpu_->IsActive());
  ASSERT_TRUE(gpu_->Suspend().ok());
  EXPECT_FALSE(gpu_->IsActive());
  EXPECT_FALSE(gpu_->GetIfActive());
  BoRef bo = Make(kMemTt);
  OperationContext ctx;
  ASSERT_TRUE(bo->Reserve(ctx).ok());
  bo->resv()->AssertHeld();
  ASSERT_TRUE(gpu_->SubmitJob(*bo, 20ms).ok());  // wakes the device
  bo->Unreserve();
  EXPECT_TRUE(gpu_->IsActive());
  EXPECT_EQ(gpu_->Suspend().code(), Errc::kBusy);  // work pending
  gpu_->Drain();
  EXPECT_EQ(gpu_->stats().wakeups, 1u);
  ASSERT_TRUE(gpu_->GetIfActive());
  EXPECT_EQ(gpu_->Suspend().code(), Errc::kBusy);  // a runtime reference is held
  gpu_->Put();
  ASSERT_TRUE(gpu_->Suspend().ok());
  gpu_->GetSync();
  EXPECT_TRUE(gpu_->IsActive());
  gpu_->Put();
}

TEST(SimGpu, RejectsBadOptions) {
  SimGpuOptions opts;
  opts.vram_size = Bytes(1000);
  EXPECT_EQ(SimGpu::Create(opts).code(), Errc::kInvalid);
}

}  // namespace
}  // namespace uttm
