// Copyright (c) uttm developers.
#include "uttm/mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace uttm {
namespace testing {
std::size_t MutexSizeWithNdebug();
std::size_t MutexAlignWithNdebug();
void LockWithNdebug(Mutex& mu);
std::size_t MutexSizeWithoutNdebug();
std::size_t MutexAlignWithoutNdebug();
void AssertHeldWithoutNdebug(const Mutex& mu);
}  // namespace testing
namespace {

// A consumer built with the other NDEBUG than the library sees the same Mutex: same size and
// alignment, and an owner recorded by a release Lock satisfies a debug AssertHeld.
TEST(MutexTest, LayoutDoesNotDependOnNdebug) {
  EXPECT_EQ(testing::MutexSizeWithNdebug(), testing::MutexSizeWithoutNdebug());
  EXPECT_EQ(testing::MutexAlignWithNdebug(), testing::MutexAlignWithoutNdebug());
  Mutex mu;
  testing::LockWithNdebug(mu);
  testing::AssertHeldWithoutNdebug(mu);  // aborts the test binary if no owner was recorded
  mu.AssertHeld();
  mu.Unlock();
}

class Counter {
 public:
  void Bump() UTTM_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    ++value_;
  }
  int Get() UTTM_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return value_;
  }
  Mutex* mu() UTTM_RETURN_CAPABILITY(mu_) { return &mu_; }

 private:
  Mutex mu_;
  int value_ UTTM_GUARDED_BY(mu_) = 0;
};

TEST(Mutex, ExcludesConcurrentUpdates) {
  Counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.Bump();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Get(), 40000);
}

TEST(Mutex, TryLockFailsWhenHeld) {
  Mutex mu;
  mu.Lock();
  std::atomic<bool> got{true};
  std::thread t([&] {
    got = false;
    if (mu.TryLock()) {
      mu.Unlock();
      got = true;
    }
  });
  t.join();
  EXPECT_FALSE(got);
  mu.Unlock();
  if (mu.TryLock()) {
    mu.Unlock();
  } else {
    ADD_FAILURE() << "TryLock failed on a free mutex";
  }
}

// Probes whether an exclusive lock could be taken right now. The analysis cannot know the
// caller already holds a shared lock on purpose, so it is told to stay out.
bool TryExclusive(SharedMutex* mu) UTTM_NO_THREAD_SAFETY_ANALYSIS {
  if (!mu->TryLock()) return false;
  mu->Unlock();
  return true;
}

bool TryShared(SharedMutex* mu) UTTM_NO_THREAD_SAFETY_ANALYSIS {
  if (!mu->TryLockShared()) return false;
  mu->UnlockShared();
  return true;
}

TEST(SharedMutex, ReadersShareWritersExclude) {
  SharedMutex mu;
  {
    ReaderLock r1(&mu);
    EXPECT_TRUE(TryShared(&mu)) << "a second reader was refused";
    EXPECT_FALSE(TryExclusive(&mu)) << "a writer got in beside a reader";
  }
  WriterLock w(&mu);
  std::atomic<bool> got{true};
  std::thread t([&] { got = TryShared(&mu); });
  t.join();
  EXPECT_FALSE(got);
}

TEST(CondVar, SignalWakesWaiter) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  std::thread t([&] {
    MutexLock lock(&mu);
    ready = true;
    cv.SignalAll();
  });
  {
    MutexLock lock(&mu);
    while (!ready) cv.Wait(&mu);
    EXPECT_TRUE(ready);
  }
  t.join();
}

TEST(CondVar, WaitUntilTimesOut) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(&mu);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
  while (cv.WaitUntil(&mu, deadline)) {
  }
  EXPECT_GE(std::chrono::steady_clock::now(), deadline);
}

TEST(CondVar, StopInterruptsWait) {
  Mutex mu;
  CondVar cv;
  std::stop_source stop;
  bool done = false;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    stop.request_stop();
  });
  bool completed;
  {
    MutexLock lock(&mu);
    completed = cv.WaitInterruptible(&mu, stop.get_token(), [&]() { return done; });
  }
  t.join();
  EXPECT_FALSE(completed);
}

TEST(CondVar, InterruptibleWaitCompletes) {
  Mutex mu;
  CondVar cv;
  std::stop_source stop;
  bool done = false;
  std::thread t([&] {
    MutexLock lock(&mu);
    done = true;
    cv.SignalAll();
  });
  bool completed;
  {
    MutexLock lock(&mu);
    completed = cv.WaitInterruptible(&mu, stop.get_token(), [&]() { return done; });
  }
  t.join();
  EXPECT_TRUE(completed);
}

#ifndef NDEBUG
TEST(MutexDeathTest, AssertHeldCatchesMissingLock) {
  Mutex mu;
  EXPECT_DEATH(mu.AssertHeld(), "not held");
  mu.Lock();
  mu.AssertHeld();
  mu.Unlock();
}
#endif

}  // namespace
}  // namespace uttm
