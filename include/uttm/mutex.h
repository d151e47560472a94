// Copyright (c) uttm developers.
//
// mutex.h: annotated locks. libstdc++'s std::mutex carries no thread-safety attributes, so uttm
// wraps it (as leveldb's port::Mutex does) and every lock in the library is one of these.
//
//   Mutex        exclusive lock; Lock/Unlock/TryLock/AssertHeld.
//   SharedMutex  reader/writer lock.
//   MutexLock    scoped guard for Mutex; ReaderLock / WriterLock for SharedMutex.
//   CondVar      condition variable bound to a Mutex.
//
// Thread-safety: these are the synchronisation primitives; all methods are thread-safe.
#ifndef UTTM_MUTEX_H_
#define UTTM_MUTEX_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <shared_mutex>
#include <stop_token>
#include <thread>

#include "uttm/thread_annotations.h"

namespace uttm {

class CondVar;

// An exclusive, non-recursive lock.
class UTTM_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() UTTM_ACQUIRE() {
    mu_.lock();
    SetOwner();
  }
  void Unlock() UTTM_RELEASE() {
    ClearOwner();
    mu_.unlock();
  }
  // Takes the lock if it is free; never blocks. Returns true when taken.
  bool TryLock() UTTM_TRY_ACQUIRE(true) {
    if (!mu_.try_lock()) return false;
    SetOwner();
    return true;
  }
  // Tells the analysis the lock is held; in debug builds also aborts if the calling thread does
  // not hold it.
  void AssertHeld() const UTTM_ASSERT_CAPABILITY(this) {
#ifndef NDEBUG
    if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
      std::fprintf(stderr, "uttm: Mutex::AssertHeld failed: lock not held by this thread\n");
      std::abort();
    }
#endif
  }

 private:
  friend class CondVar;
  // The owner is recorded in every build, so the layout and the lock's behaviour do not depend
  // on the NDEBUG of whoever includes this header (a debug consumer of a release library checks
  // an owner the library's own Lock recorded).
  void SetOwner() { owner_.store(std::this_thread::get_id(), std::memory_order_relaxed); }
  void ClearOwner() { owner_.store(std::thread::id(), std::memory_order_relaxed); }
  std::atomic<std::thread::id> owner_{};
  std::mutex mu_;
};

// A reader/writer lock.
class UTTM_CAPABILITY("shared_mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() UTTM_ACQUIRE() { mu_.lock(); }
  void Unlock() UTTM_RELEASE() { mu_.unlock(); }
  bool TryLock() UTTM_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  void LockShared() UTTM_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() UTTM_RELEASE_SHARED() { mu_.unlock_shared(); }
  bool TryLockShared() UTTM_TRY_ACQUIRE_SHARED(true) { return mu_.try_lock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds a Mutex for its scope.
class UTTM_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) UTTM_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() UTTM_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Holds a SharedMutex shared for its scope.
class UTTM_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex* mu) UTTM_ACQUIRE_SHARED(mu) : mu_(mu) { mu_->LockShared(); }
  ~ReaderLock() UTTM_RELEASE() { mu_->UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// Holds a SharedMutex exclusively for its scope.
class UTTM_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex* mu) UTTM_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~WriterLock() UTTM_RELEASE() { mu_->Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// A condition variable used with a Mutex the caller holds. Waits may wake spuriously; callers
// loop on their predicate. The stop_token overload returns early when a stop is requested (the
// user-space stand-in for a pending signal in an interruptible kernel wait).
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // REQUIRES: `mu` held. Atomically releases it, waits for a notification, re-acquires it.
  void Wait(Mutex* mu) UTTM_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    mu->ClearOwner();
    cv_.wait(lock);
    mu->SetOwner();
    lock.release();
  }
  // As Wait, but gives up at `deadline`. Returns false on timeout.
  bool WaitUntil(Mutex* mu, std::chrono::steady_clock::time_point deadline) UTTM_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    mu->ClearOwner();
    bool notified = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    mu->SetOwner();
    lock.release();
    return notified;
  }
  // REQUIRES: `mu` held. Waits until `done()` is true or `stop` is requested; `done` is evaluated
  // with `mu` held. Returns done() (false means the wait was interrupted).
  template <typename Pred>
  bool WaitInterruptible(Mutex* mu, std::stop_token stop, Pred done) UTTM_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    mu->ClearOwner();
    bool result = cv_.wait(lock, stop, [&]() UTTM_NO_THREAD_SAFETY_ANALYSIS {
      mu->SetOwner();
      bool d = done();
      mu->ClearOwner();
      return d;
    });
    mu->SetOwner();
    lock.release();
    return result;
  }

  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
};

}  // namespace uttm

#endif  // UTTM_MUTEX_H_
