// Copyright (c) uttm developers.
//
// reclaim_thread.cc: background reclaim driven by watermarks and kernel events.

#include "uttm/reclaim_thread.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace uttm {

const char* ReclaimTriggerName(ReclaimTrigger trigger) {
  switch (trigger) {
    case ReclaimTrigger::kWatermark:
      return "watermark";
    case ReclaimTrigger::kEvent:
      return "event";
    case ReclaimTrigger::kWake:
      return "wake";
  }
  return "?";
}

ReclaimThread::ReclaimThread(Reclaimer* reclaimer, ReclaimThreadOptions options)
    : reclaimer_(reclaimer), options_(options) {}

ReclaimThread::~ReclaimThread() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

Status ReclaimThread::AddSource(std::unique_ptr<PressureSource> source) {
  if (source == nullptr) return Status(Errc::kInvalid, "ReclaimThread::AddSource: null source");
  MutexLock lock(&mu_);
  if (running_) {
    return Status(Errc::kInvalid, "ReclaimThread::AddSource: sources are fixed while running");
  }
  sources_.push_back(std::move(source));
  return Status::Ok();
}

Status ReclaimThread::Start() {
  if (reclaimer_ == nullptr) return Status(Errc::kInvalid, "ReclaimThread: null reclaimer");
  if (!(options_.low_watermark > 0 && options_.low_watermark < options_.high_watermark &&
        options_.high_watermark <= 1.0)) {
    return Status(Errc::kInvalid, "ReclaimThread: need 0 < low_watermark < high_watermark <= 1");
  }
  if (options_.period.count() <= 0) {
    return Status(Errc::kInvalid, "ReclaimThread: period must be positive");
  }
  MutexLock lock(&mu_);
  if (running_) return Status(Errc::kAlready, "ReclaimThread: already running");
  if (wake_fd_ < 0) {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
      return Status(Errc::kIo, std::string("ReclaimThread: eventfd: ") + std::strerror(errno));
    }
  }
  stop_.store(false);
  running_ = true;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void ReclaimThread::Stop() {
  std::thread t;
  {
    MutexLock lock(&mu_);
    if (!running_) return;
    stop_.store(true);
    const std::uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof(one)) < 0) {
      // The thread still notices stop_ within one period.
    }
    t = std::move(thread_);
    running_ = false;
  }
  t.join();
}

bool ReclaimThread::running() const {
  MutexLock lock(&mu_);
  return running_;
}

void ReclaimThread::Wake(std::uint64_t target_pages) {
  if (target_pages > 0) wake_target_.fetch_add(target_pages, std::memory_order_relaxed);
  const std::uint64_t one = 1;
  if (wake_fd_ >= 0 && write(wake_fd_, &one, sizeof(one)) < 0) {
    // Counter saturated: a wake-up is already pending.
  }
}

std::uint64_t ReclaimThread::episodes() const {
  MutexLock lock(&mu_);
  return episodes_;
}

bool ReclaimThread::WaitForEpisodes(std::uint64_t n, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&mu_);
  while (episodes_ < n) {
    if (!episode_done_.WaitUntil(&mu_, deadline) && episodes_ < n &&
        std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
  }
  return true;
}

std::vector<ReclaimEpisode> ReclaimThread::History() const {
  MutexLock lock(&mu_);
  return std::vector<ReclaimEpisode>(history_.begin(), history_.end());
}

std::string ReclaimThread::HistoryString() const {
  std::string out;
  char line[256];
  for (const ReclaimEpisode& e : History()) {
    std::snprintf(line, sizeof(line),
                  "#%" PRIu64 " %s(%s) %s target=%" PRIu64 " freed=%" PRIu64
                  " pages in %.1f us, usage %" PRIu64 " -> %" PRIu64 " of %" PRIu64 "\n",
                  e.id, ReclaimTriggerName(e.trigger), PressureLevelName(e.level), e.source.c_str(),
                  e.target_pages, e.freed_pages, static_cast<double>(e.duration.count()) / 1e3,
                  e.usage_before, e.usage_after, e.limit_bytes);
    out += line;
  }
  return out;
}

std::string ReclaimThread::DescribeSources() const {
  MutexLock lock(&mu_);  // AddSource may run concurrently before Start
  std::string out;
  for (const auto& s : sources_) out += s->Describe() + "\n";
  return out;
}

ReclaimThread::Need ReclaimThread::ComputeNeed(bool* above_high) {
  Need need;
  *above_high = false;
  for (const auto& s : sources_) {
    Result<MemorySample> sample = s->Sample();
    if (!sample.ok() || !sample->has_limit) continue;
    const double limit = static_cast<double>(sample->limit_bytes);
    const auto high = static_cast<std::uint64_t>(limit * options_.high_watermark);
    const auto low = static_cast<std::uint64_t>(limit * options_.low_watermark);
    if (sample->usage_bytes >= high) *above_high = true;
    std::uint64_t pages = 0;
    if (sample->usage_bytes > low) pages = (sample->usage_bytes - low + kPageSize - 1) / kPageSize;
    if (need.source == nullptr || pages > need.pages) {
      need.pages = pages;
      need.source = s.get();
      need.sample = *sample;
    }
  }
  return need;
}

void ReclaimThread::Run() {
  std::vector<pollfd> fds;
  fds.push_back({wake_fd_, POLLIN, 0});
  std::vector<std::pair<std::size_t, std::size_t>> ranges;  // per source: first fd, count
  for (const auto& s : sources_) {
    const std::size_t first = fds.size();
    s->AppendPollFds(&fds);
    ranges.emplace_back(first, fds.size() - first);
  }
  const int timeout_ms = static_cast<int>(options_.period.count());
  while (!stop_.load()) {
    for (pollfd& p : fds) p.revents = 0;
    const int rc = poll(fds.data(), fds.size(), timeout_ms);
    if (stop_.load()) break;
    if (rc < 0 && errno != EINTR) {
      // Should not happen with valid fds; fall back to sleeping one period.
      std::this_thread::sleep_for(options_.period);
    }
    bool woke = false;
    std::uint64_t explicit_target = 0;
    if (fds[0].revents & POLLIN) {
      std::uint64_t n;
      if (read(wake_fd_, &n, sizeof(n)) < 0) {
        // Nothing pending (raced with another read): ignore.
      }
      woke = true;
      explicit_target = wake_target_.exchange(0, std::memory_order_relaxed);
    }
    PressureLevel level = PressureLevel::kNone;
    const PressureSource* event_source = nullptr;
    for (std::size_t i = 0; i < sources_.size(); ++i) {
      if (ranges[i].second == 0) continue;
      PressureLevel l = sources_[i]->ConsumeEvents(&fds[ranges[i].first], ranges[i].second);
      if (l > level) {
        level = l;
        event_source = sources_[i].get();
      }
    }
    bool above_high = false;
    Need need = ComputeNeed(&above_high);
    if (level != PressureLevel::kNone) reclaimer_->stats()->Add(Stat::kPressureEvents);
    ReclaimTrigger trigger;
    if (level != PressureLevel::kNone) {
      trigger = ReclaimTrigger::kEvent;
      explicit_target = std::max(explicit_target, options_.event_target_pages);
      if (event_source != nullptr) need.source = event_source;
    } else if (woke) {
      trigger = ReclaimTrigger::kWake;
    } else if (above_high) {
      // Over the mark but nothing is freeable (memory we do not own): no futile episode every
      // period; check again next period.
      ReclaimContext ctx = options_.context;
      ctx.background = true;
      if (reclaimer_->CountFreeable(ctx) == 0) continue;
      trigger = ReclaimTrigger::kWatermark;
    } else {
      continue;
    }
    if (!above_high && trigger != ReclaimTrigger::kEvent) need.pages = 0;  // hysteresis
    RunEpisode(trigger, level, need, explicit_target);
  }
}

void ReclaimThread::RunEpisode(ReclaimTrigger trigger, PressureLevel level, const Need& first,
                               std::uint64_t explicit_target) {
  ReclaimEpisode ep;
  ep.trigger = trigger;
  ep.level = level;
  ep.source = trigger == ReclaimTrigger::kWake ? "wake"
              : first.source != nullptr        ? first.source->name()
                                               : "-";
  ep.start = std::chrono::steady_clock::now();
  ep.usage_before = first.sample.usage_bytes;
  ep.limit_bytes = first.sample.limit_bytes;
  ep.target_pages = std::max(first.pages, explicit_target);
  ReclaimContext ctx = options_.context;
  ctx.background = true;

  Need need = first;
  std::uint64_t explicit_left = explicit_target;
  while (!stop_.load()) {
    const std::uint64_t target = std::max(need.pages, explicit_left);
    if (target == 0) break;
    const ShrinkResult res = reclaimer_->Shrink(ctx, kDefPriority, target);
    ++ep.shrink_calls;
    ep.freed_pages += res.freed;
    explicit_left = explicit_left > res.freed ? explicit_left - res.freed : 0;
    if (res.freed == 0) break;  // nothing more to free in this context
    bool above_high;
    need = ComputeNeed(&above_high);  // allocations go on meanwhile: follow the real usage
  }
  ep.usage_after = need.sample.usage_bytes;
  ep.duration = std::chrono::steady_clock::now() - ep.start;

  reclaimer_->stats()->Add(Stat::kReclaimEpisodes);
  MutexLock lock(&mu_);
  ep.id = ++episodes_;
  history_.push_back(std::move(ep));
  while (history_.size() > options_.history_capacity) history_.pop_front();
  episode_done_.SignalAll();
}

}  // namespace uttm
