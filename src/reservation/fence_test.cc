// Copyright (c) uttm developers.
#include "uttm/fence.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "reservation/test_util.h"
#include "uttm/fault_injection.h"

namespace uttm {
namespace {

using std::chrono::milliseconds;

TEST(Fence, SignalOnceAndContextOrdering) {
  const std::uint64_t ctx = Fence::AllocateContext(2);
  EXPECT_NE(ctx, 0u);
  EXPECT_NE(Fence::AllocateContext(), ctx + 0);
  FenceRef a = Fence::Create(ctx, 1);
  FenceRef b = Fence::Create(ctx, 2);
  FenceRef other = Fence::Create(ctx + 1, 5);
  EXPECT_FALSE(a->IsSignaled());
  EXPECT_TRUE(b->IsLaterOrSame(*a));
  EXPECT_FALSE(a->IsLaterOrSame(*b));
  EXPECT_FALSE(other->IsLaterOrSame(*a));
  EXPECT_TRUE(a->Signal().ok());
  EXPECT_TRUE(a->IsSignaled());
  EXPECT_EQ(a->Signal(Status(Errc::kIo, "late")), Errc::kInvalid);
  EXPECT_TRUE(a->error().ok()) << "the first outcome stays";
}

TEST(Fence, ErrorPropagation) {
  FenceRef f = Fence::Create(Fence::AllocateContext(), 1);
  EXPECT_TRUE(f->error().ok());
  ASSERT_TRUE(f->Signal(Status(Errc::kIo, "copy engine failed")).ok());
  OperationContext ctx;
  EXPECT_TRUE(f->Wait(ctx).ok()) << "waiting succeeds; the outcome is separate";
  EXPECT_EQ(f->error(), Errc::kIo);
  FenceRef s = Fence::CreateSignaled(Status(Errc::kNoMemory, "x"));
  EXPECT_TRUE(s->IsSignaled());
  EXPECT_EQ(s->error(), Errc::kNoMemory);
  EXPECT_TRUE(Fence::CreateSignaled()->error().ok());
}

TEST(Fence, WaitBlocksUntilSignalledFromAnotherThread) {
  FenceRef f = Fence::Create(Fence::AllocateContext(), 1);
  std::atomic<bool> signalled{false};
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(20));
    signalled = true;
    ASSERT_TRUE(f->Signal().ok());
  });
  OperationContext ctx;
  EXPECT_TRUE(f->Wait(ctx).ok());
  EXPECT_TRUE(signalled.load());
  t.join();
}

TEST(Fence, NoWaitGpuReturnsBusy) {
  FenceRef f = Fence::Create(Fence::AllocateContext(), 1);
  OperationContext ctx;
  ctx.no_wait_gpu = true;
  EXPECT_EQ(f->Wait(ctx), Errc::kBusy);
  ASSERT_TRUE(f->Signal().ok());
  EXPECT_TRUE(f->Wait(ctx).ok()) << "signalled fences never report busy";
}

TEST(Fence, TimeoutReturnsTimedOut) {
  FenceRef f = Fence::Create(Fence::AllocateContext(), 1);
  OperationContext ctx;
  EXPECT_EQ(f->Wait(ctx, milliseconds(0)), Errc::kTimedOut);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(f->Wait(ctx, milliseconds(30)), Errc::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(30));
}

TEST(Fence, InterruptibleWaitStopsOnStopRequest) {
  FenceRef f = Fence::Create(Fence::AllocateContext(), 1);
  {
    testing::InterruptAfter interrupt(milliseconds(20));
    EXPECT_EQ(f->Wait(interrupt.ctx()), Errc::kInterrupted);
  }
  {
    testing::InterruptAfter interrupt(milliseconds(20));  // the wait path with a deadline
    EXPECT_EQ(f->Wait(interrupt.ctx(), std::chrono::seconds(10)), Errc::kInterrupted);
    OperationContext ctx = interrupt.ctx();
    EXPECT_EQ(f->Wait(ctx, std::chrono::seconds(10)), Errc::kInterrupted) << "already stopped";
    ctx.interruptible = false;  // the stop request is ignored, the timeout applies
    EXPECT_EQ(f->Wait(ctx, milliseconds(5)), Errc::kTimedOut);
  }
  EXPECT_FALSE(f->IsSignaled());
}

TEST(Fence, WaitInterruptFaultPoint) {
  FenceRef f = Fence::Create(Fence::AllocateContext(), 1);
  OperationContext ctx;
  ctx.interruptible = true;
  {
    ScopedFault fault(FaultPoint::kWaitInterrupt, FaultSpec{.times = 1});
    EXPECT_EQ(f->Wait(ctx, milliseconds(100)), Errc::kInterrupted);
  }
  EXPECT_EQ(f->Wait(ctx, milliseconds(1)), Errc::kTimedOut);
}

TEST(Fence, CallbacksRunOnceOnSignalAndCanBeRemoved) {
  FenceRef f = Fence::Create(Fence::AllocateContext(), 7);
  int ran = 0;
  Status seen_error;
  Result<Fence::CallbackId> a = f->AddCallback([&](const Fence& fence) {
    ++ran;
    seen_error = fence.error();
    EXPECT_EQ(fence.seqno(), 7u);
  });
  ASSERT_TRUE(a.ok());
  Result<Fence::CallbackId> b = f->AddCallback([&](const Fence&) { ran += 100; });
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(f->RemoveCallback(*b));
  EXPECT_FALSE(f->RemoveCallback(*b));
  ASSERT_TRUE(f->Signal(Status(Errc::kIo, "x")).ok());
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(seen_error, Errc::kIo);
  EXPECT_FALSE(f->RemoveCallback(*a)) << "already ran";
  Result<Fence::CallbackId> late = f->AddCallback([&](const Fence&) { ++ran; });
  EXPECT_EQ(late.code(), Errc::kNotFound);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(f->AddCallback(nullptr).code(), Errc::kInvalid);
}

TEST(Fence, CallbacksChainWork) {
  // A callback may signal the next fence of a chain (how the engine pipelines jobs).
  const std::uint64_t ctx = Fence::AllocateContext();
  std::vector<FenceRef> chain;
  for (int i = 0; i < 5; ++i) chain.push_back(Fence::Create(ctx, i + 1));
  for (int i = 0; i + 1 < 5; ++i) {
    FenceRef next = chain[i + 1];
    ASSERT_TRUE(
        chain[i]->AddCallback([next](const Fence& f) { (void)next->Signal(f.error()); }).ok());
  }
  std::thread t([&] { (void)chain[0]->Signal(Status(Errc::kFault, "first job")); });
  OperationContext octx;
  EXPECT_TRUE(chain[4]->Wait(octx, std::chrono::seconds(10)).ok());
  EXPECT_EQ(chain[4]->error(), Errc::kFault);
  t.join();
}

TEST(Fence, WaitAllAndWaitAny) {
  const std::uint64_t ctx = Fence::AllocateContext();
  std::vector<FenceRef> fences = {Fence::Create(ctx, 1), nullptr, Fence::Create(ctx, 2),
                                  Fence::Create(ctx, 3)};
  OperationContext octx;
  EXPECT_EQ(Fence::WaitAll(fences, octx, milliseconds(5)), Errc::kTimedOut);
  Result<std::size_t> none = Fence::WaitAny(fences, octx, milliseconds(5));
  EXPECT_EQ(none.code(), Errc::kTimedOut);
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(10));
    (void)fences[2]->Signal();
  });
  Result<std::size_t> any = Fence::WaitAny(fences, octx);
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(*any, 2u);
  t.join();
  octx.no_wait_gpu = true;
  EXPECT_EQ(Fence::WaitAll(fences, octx), Errc::kBusy);
  octx.no_wait_gpu = false;
  std::thread t2([&] {
    (void)fences[0]->Signal();
    std::this_thread::sleep_for(milliseconds(10));
    (void)fences[3]->Signal();
  });
  EXPECT_TRUE(Fence::WaitAll(fences, octx, std::chrono::seconds(10)).ok());
  t2.join();
  std::vector<FenceRef> empty = {nullptr};
  EXPECT_EQ(Fence::WaitAny(empty, octx).code(), Errc::kInvalid);
}

TEST(Fence, WaitAnyInterrupted) {
  std::vector<FenceRef> fences = {Fence::Create(Fence::AllocateContext(), 1)};
  {
    testing::InterruptAfter interrupt(milliseconds(10));
    EXPECT_EQ(Fence::WaitAny(fences, interrupt.ctx()).code(), Errc::kInterrupted);
  }
  // The callback was removed: signalling later touches nothing of the finished wait.
  EXPECT_TRUE(fences[0]->Signal().ok());
}

TEST(Fence, ManyWaitersOneSignal) {
  FenceRef f = Fence::Create(Fence::AllocateContext(), 1);
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      OperationContext ctx;
      if (f->Wait(ctx, std::chrono::seconds(10)).ok()) ++done;
    });
  }
  std::this_thread::sleep_for(milliseconds(10));
  ASSERT_TRUE(f->Signal().ok());
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), 4);
}

}  // namespace
}  // namespace uttm
