// Copyright (c) uttm developers.
#include "uttm/exec_context.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace uttm {
namespace {

using std::chrono::milliseconds;

TEST(ExecContext, LocksAllAndUnlocksOnDestruction) {
  Reservation a, b, c;
  {
    ExecContext exec;
    Status st = exec.Run([&](ExecContext& e) -> Status {
      UTTM_RETURN_IF_ERROR(e.Prepare(&a, 1));
      UTTM_RETURN_IF_ERROR(e.Prepare(&b, 2));
      UTTM_RETURN_IF_ERROR(e.Lock(&c));
      return Status();
    });
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(exec.locked(), (std::vector<Reservation*>{&a, &b, &c}));
    EXPECT_TRUE(a.IsLockedBy(&exec.ticket()));
    EXPECT_EQ(exec.ticket().acquired(), 3);
    EXPECT_EQ(exec.retries(), 0u);
    b.AssertHeld();
    // Prepare reserved the slots.
    EXPECT_TRUE(b.AddFence(Fence::Create(Fence::AllocateContext(), 1), ResvUsage::kWrite).ok());
    EXPECT_TRUE(b.AddFence(Fence::Create(Fence::AllocateContext(), 1), ResvUsage::kWrite).ok());
    EXPECT_TRUE(exec.Unlock(&b).ok());
    EXPECT_EQ(exec.Unlock(&b), Errc::kNotFound);
    EXPECT_FALSE(b.IsLocked());
  }
  EXPECT_FALSE(a.IsLocked());
  EXPECT_FALSE(c.IsLocked());
}

TEST(ExecContext, Duplicates) {
  Reservation a;
  {
    ExecContext exec;
    Status st = exec.Run([&](ExecContext& e) -> Status {
      UTTM_RETURN_IF_ERROR(e.Lock(&a));
      return e.Lock(&a);
    });
    EXPECT_EQ(st, Errc::kAlready);
    EXPECT_FALSE(a.IsLocked()) << "a failed Run unlocks everything";
  }
  // Two objects sharing one reservation, as a VM's objects do.
  Reservation b;
  std::vector<Reservation*> objects = {&a, &b, &a};
  ExecContext exec(ExecContext::kIgnoreDuplicates);
  Status st = exec.Run([&](ExecContext& e) { return e.PrepareArray(objects, 1); });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(exec.locked(), (std::vector<Reservation*>{&a, &b}));
  exec.Fini();
  EXPECT_FALSE(a.IsLocked());
  EXPECT_EQ(exec.ticket().acquired(), 0);
}

TEST(ExecContext, NullAndSwallowedDeadlockAreErrors) {
  ExecContext exec;
  EXPECT_EQ(exec.Run([](ExecContext& e) { return e.Lock(nullptr); }), Errc::kInvalid);

  Reservation a, b;
  WwAcquireContext older;
  ASSERT_TRUE(b.Lock(&older).ok());
  b.AssertHeld();
  ExecContext younger;
  Status st = younger.Run([&](ExecContext& e) -> Status {
    UTTM_RETURN_IF_ERROR(e.Lock(&a));
    (void)e.Lock(&b);  // kDeadlock ignored: a bug
    return Status();
  });
  EXPECT_EQ(st, Errc::kInvalid);
  EXPECT_FALSE(a.IsLocked());
  b.Unlock();
}

TEST(ExecContext, BacksOffSlowLocksContendedAndRetries) {
  Reservation a, b;
  WwAcquireContext older;  // created first
  ASSERT_TRUE(b.Lock(&older).ok());
  b.AssertHeld();
  auto keep = std::make_shared<int>(7);
  std::atomic<int> passes{0};
  auto result = std::async(std::launch::async, [&] {
    ExecContext exec;
    Status st = exec.Run([&](ExecContext& e) -> Status {
      ++passes;
      UTTM_RETURN_IF_ERROR(e.Lock(&a));
      UTTM_RETURN_IF_ERROR(e.Lock(&b, keep));  // older holder: back off
      return Status();
    });
    EXPECT_EQ(exec.locked(), (std::vector<Reservation*>{&b, &a}))
        << "the contended one is locked first on the retry";
    EXPECT_GE(exec.retries(), 1u);
    EXPECT_GE(keep.use_count(), 2) << "a reference is kept while locked";
    return st;
  });
  // The younger context backs off (a is released) and then blocks in LockSlow on b.
  for (int i = 0; i < 5000 && passes.load() == 0; ++i) std::this_thread::sleep_for(milliseconds(1));
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_FALSE(a.IsLocked());
  b.Unlock();
  EXPECT_TRUE(result.get().ok());
  EXPECT_EQ(passes.load(), 2);
  EXPECT_EQ(keep.use_count(), 1);
  EXPECT_FALSE(a.IsLocked());
  EXPECT_FALSE(b.IsLocked());
}

TEST(ExecContext, InterruptedWhileWaiting) {
  Reservation a, b;
  ASSERT_TRUE(b.TryLock());
  b.AssertHeld();
  std::stop_source stop;
  auto result = std::async(std::launch::async, [&] {
    ExecContext exec(ExecContext::kInterruptible, stop.get_token());
    Status st = exec.Run([&](ExecContext& e) -> Status {
      UTTM_RETURN_IF_ERROR(e.Lock(&a));
      return e.Lock(&b);
    });
    EXPECT_TRUE(exec.locked().empty());
    return st;
  });
  std::this_thread::sleep_for(milliseconds(20));
  stop.request_stop();
  EXPECT_EQ(result.get(), Errc::kInterrupted);
  EXPECT_FALSE(a.IsLocked());
  b.Unlock();
}

// Several threads lock random subsets of a few reservations in random (often opposite) orders.
// Each reservation protects a plain counter; TSan and the final sums check mutual exclusion.
class ExecStress : public ::testing::TestWithParam<WwClass> {};

TEST_P(ExecStress, ManyThreadsOppositeOrdersAllSucceed) {
  constexpr int kThreads = 4, kIterations = 200, kObjects = 6;
  struct Obj {
    explicit Obj(WwClass c) : resv(c) {}
    Reservation resv;
    std::uint64_t counter = 0;  // guarded by resv
  };
  std::vector<std::unique_ptr<Obj>> objs;
  for (int i = 0; i < kObjects; ++i) objs.push_back(std::make_unique<Obj>(GetParam()));
  std::atomic<std::uint64_t> expected{0}, total_retries{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      for (int it = 0; it < kIterations; ++it) {
        std::vector<int> order(kObjects);
        for (int i = 0; i < kObjects; ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        const int n = 2 + static_cast<int>(rng() % 3);  // 2..4 objects
        order.resize(n);
        const unsigned delay = rng() % 4;
        ExecContext exec(ExecContext::kNone, {}, GetParam());
        Status st = exec.Run([&](ExecContext& e) -> Status {
          for (int idx : order) {
            UTTM_RETURN_IF_ERROR(e.Prepare(&objs[idx]->resv, 1));
            if (delay == 0) std::this_thread::yield();
            if (delay == 1) std::this_thread::sleep_for(std::chrono::microseconds(20));
          }
          return Status();
        });
        ASSERT_TRUE(st.ok()) << st.ToString();
        for (int idx : order) {
          ASSERT_TRUE(objs[idx]->resv.IsLockedBy(&exec.ticket()));
          ++objs[idx]->counter;
        }
        expected += n;
        total_retries += exec.retries();
      }
    });
  }
  for (auto& th : threads) th.join();
  std::uint64_t sum = 0;
  for (auto& o : objs) {
    EXPECT_FALSE(o->resv.IsLocked());
    sum += o->counter;
  }
  EXPECT_EQ(sum, expected.load());
  RecordProperty("retries", static_cast<int>(total_retries.load()));
}

// Threads hold their reservations across a wait for GPU work: each submission waits for the
// fences already on its reservations (implicit sync), adds its own fence, and waits for it before
// unlocking. An engine thread signals submitted fences in order after a short delay.
TEST_P(ExecStress, HoldLocksAcrossFenceWaits) {
  constexpr int kThreads = 4, kIterations = 100, kObjects = 5;
  std::vector<std::unique_ptr<Reservation>> resvs;
  for (int i = 0; i < kObjects; ++i) resvs.push_back(std::make_unique<Reservation>(GetParam()));

  Mutex queue_mu;
  CondVar queue_cv;
  std::deque<FenceRef> queue;  // guarded by queue_mu
  bool stop = false;           // guarded by queue_mu
  std::thread engine([&] {
    while (true) {
      FenceRef next;
      {
        MutexLock lock(&queue_mu);
        while (queue.empty() && !stop) queue_cv.Wait(&queue_mu);
        if (queue.empty()) return;
        next = queue.front();
        queue.pop_front();
      }
      std::this_thread::sleep_for(std::chrono::microseconds(30));
      (void)next->Signal();
    }
  });

  std::atomic<int> completed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(99 + t);
      const std::uint64_t timeline = Fence::AllocateContext();
      for (int it = 0; it < kIterations; ++it) {
        std::vector<int> order(kObjects);
        for (int i = 0; i < kObjects; ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        order.resize(2 + rng() % 2);
        ExecContext exec(ExecContext::kNone, {}, GetParam());
        Status st = exec.Run([&](ExecContext& e) -> Status {
          for (int idx : order) UTTM_RETURN_IF_ERROR(e.Prepare(resvs[idx].get(), 1));
          return Status();
        });
        ASSERT_TRUE(st.ok()) << st.ToString();
        OperationContext ctx;
        for (int idx : order) ASSERT_TRUE(resvs[idx]->Wait(ResvUsage::kWrite, ctx).ok());
        FenceRef job = Fence::Create(timeline, it + 1);
        for (int idx : order) {
          resvs[idx]->AssertHeld();
          ASSERT_TRUE(resvs[idx]->AddFence(job, ResvUsage::kWrite).ok());
        }
        {
          MutexLock lock(&queue_mu);
          queue.push_back(job);
          queue_cv.SignalAll();
        }
        ASSERT_TRUE(job->Wait(ctx).ok());  // still holding every lock
        ++completed;
      }
    });
  }
  for (auto& th : threads) th.join();
  {
    MutexLock lock(&queue_mu);
    stop = true;
    queue_cv.SignalAll();
  }
  engine.join();
  EXPECT_EQ(completed.load(), kThreads * kIterations);
  for (auto& r : resvs) {
    EXPECT_TRUE(r->TestSignaled(ResvUsage::kBookkeep));
    EXPECT_LE(r->num_fences(), static_cast<std::size_t>(kThreads)) << "one slot per timeline";
  }
}

INSTANTIATE_TEST_SUITE_P(Classes, ExecStress,
                         ::testing::Values(WwClass::kWaitDie, WwClass::kWoundWait),
                         [](const auto& info) {
                           return info.param == WwClass::kWaitDie ? std::string("WaitDie")
                                                                  : std::string("WoundWait");
                         });

}  // namespace
}  // namespace uttm
