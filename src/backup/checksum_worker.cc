// Copyright (c) uttm developers.
#include "backup/checksum_worker.h"

#include <unistd.h>

#include <system_error>

namespace uttm::internal {

ChecksumWorker::~ChecksumWorker() {
  // In a child of fork() the thread object describes the parent's thread, which this process
  // does not have: joining it would hang, and the mutex may have been copied locked, so nothing
  // is touched and the object is left behind on purpose.
  if (ForeignProcess()) return;
  std::thread* thread;
  {
    MutexLock lock(&mu_);
    stop_ = true;
    thread = thread_;
  }
  cv_.SignalAll();
  if (thread == nullptr) return;
  thread->join();
  delete thread;
}

bool ChecksumWorker::TryStart(const PageRef& pages, std::size_t first, std::size_t n,
                              std::uint64_t* out) {
  // In a child of fork() the mutex may have been copied locked by a parent thread that does not
  // exist here: decline before touching it.
  if (ForeignProcess()) return false;
  MutexLock lock(&mu_);
  if (owned_ || stop_) return false;
  if (thread_ == nullptr) {
    try {
      thread_ = new std::thread([this] { Run(); });
    } catch (const std::system_error&) {
      return false;  // no thread to be had (resource limits): the caller hashes inline
    }
    owner_pid_.store(::getpid(), std::memory_order_release);
  }
  owned_ = true;
  pending_ = true;
  done_ = false;
  pages_ = pages;
  first_ = first;
  count_ = n;
  out_ = out;
  cv_.SignalAll();
  return true;
}

bool ChecksumWorker::ForeignProcess() const {
  const pid_t owner = owner_pid_.load(std::memory_order_acquire);
  return owner != 0 && owner != ::getpid();
}

void ChecksumWorker::Wait() {
  MutexLock lock(&mu_);
  while (!done_) cv_.Wait(&mu_);
  done_ = false;
  owned_ = false;
}

void ChecksumWorker::Run() {
  for (;;) {
    PageRef pages;
    std::size_t first;
    std::size_t n;
    std::uint64_t* out;
    {
      MutexLock lock(&mu_);
      while (!pending_ && !stop_) cv_.Wait(&mu_);
      if (!pending_) return;  // stopping, and no job left
      pending_ = false;
      pages = pages_;
      first = first_;
      n = count_;
      out = out_;
    }
    PageChecksums(pages, first, n, out);
    {
      MutexLock lock(&mu_);
      done_ = true;
    }
    cv_.SignalAll();
  }
}

}  // namespace uttm::internal
