// Copyright (c) uttm developers.
#include "uttm/prefetcher.h"

#include <algorithm>
#include <string>
#include <utility>

#include "uttm/mapping.h"
#include "uttm/operation_context.h"

namespace uttm {

Prefetcher::Prefetcher(const PrefetcherOptions& options)
    : options_(options), stats_(options.stats != nullptr ? options.stats : &Stats::Default()) {
  const unsigned n = std::max(1u, options.threads);
  MutexLock lock(&stop_mu_);
  workers_.reserve(n);
  for (unsigned i = 0; i < n; ++i) workers_.emplace_back([this] { Run(); });
}

Prefetcher::~Prefetcher() { Stop(); }

Status Prefetcher::Prefetch(BoRef bo) {
  if (!bo) return Status(Errc::kInvalid, "Prefetcher::Prefetch: null buffer object");
  {
    MutexLock lock(&mu_);
    if (stopping_) return Status(Errc::kInvalid, "Prefetcher::Prefetch: the prefetcher stopped");
    if (queue_.size() < options_.queue_limit) {
      queue_.push_back(std::move(bo));
      work_cv_.Signal();
      return Status::Ok();
    }
  }
  stats_->Add(Stat::kPrefetchDropped);
  return Status(Errc::kBusy, "Prefetcher::Prefetch: " + std::to_string(options_.queue_limit) +
                                 " hints are already waiting; this one is dropped");
}

void Prefetcher::Run() {
  for (;;) {
    BoRef bo;
    {
      MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) work_cv_.Wait(&mu_);
      if (stopping_) return;
      bo = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    OperationContext ctx;
    ctx.interruptible = true;
    ctx.stop = stop_.get_token();
    Result<Mapping> map = Mapping::Create(bo, kMapRead, ctx);
    if (map.ok()) {
      map->reset();
      stats_->Add(Stat::kPrefetches);
      stats_->Add(Stat::kPrefetchPagesRestored, ctx.pages_restored);
    } else {
      stats_->Add(Stat::kPrefetchFailures);
    }
    bo.reset();  // the last reference may go here: outside the lock
    MutexLock lock(&mu_);
    if (--busy_ == 0 && queue_.empty()) idle_cv_.SignalAll();
  }
}

void Prefetcher::Drain() {
  MutexLock lock(&mu_);
  while (!queue_.empty() || busy_ != 0) idle_cv_.Wait(&mu_);
}

void Prefetcher::Stop() {
  MutexLock join(&stop_mu_);  // one Stop joins; a concurrent one waits for it
  std::deque<BoRef> dropped;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(queue_);
    work_cv_.SignalAll();
  }
  stop_.request_stop();
  for (std::thread& t : workers_) t.join();
  workers_.clear();  // each worker left with nothing in progress
  if (!dropped.empty()) stats_->Add(Stat::kPrefetchDropped, dropped.size());
  dropped.clear();  // references go outside the lock
  MutexLock lock(&mu_);
  idle_cv_.SignalAll();
}

std::size_t Prefetcher::pending() const {
  MutexLock lock(&mu_);
  return queue_.size() + busy_;
}

}  // namespace uttm
