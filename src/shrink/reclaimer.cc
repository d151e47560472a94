// Copyright (c) uttm developers.
//
// reclaimer.cc: shrinker registry and the do_shrink_slab arithmetic. See uttm/reclaimer.h.

#include "uttm/reclaimer.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>

namespace uttm {

struct Reclaimer::Entry {
  explicit Entry(Shrinker* s)
      : shrinker(s), seeks(s->seeks()), batch(s->batch() == 0 ? kDefaultShrinkBatch : s->batch()) {}

  Shrinker* const shrinker;
  const int seeks;
  const std::uint64_t batch;
  // Both protected by Reclaimer::mu_ (not annotated: the analysis cannot name an outer lock).
  int pins = 0;       // calls into the shrinker in flight
  bool dead = false;  // being unregistered: no new calls
  // Work carried between rounds (the kernel's nr_deferred), taken with exchange(0).
  std::atomic<std::uint64_t> deferred{0};
  std::atomic<std::uint64_t> last_count{0};
  std::atomic<bool> last_empty{false};
  std::atomic<std::uint64_t> count_calls{0};
  std::atomic<std::uint64_t> scan_calls{0};
  std::atomic<std::uint64_t> scanned{0};
  std::atomic<std::uint64_t> freed{0};
  std::atomic<std::uint64_t> stops{0};
};

namespace {

// The calls into shrinkers this thread is inside (innermost first), for recursion checks.
struct ScanFrame {
  const Reclaimer* reclaimer;
  const void* entry;
  ScanFrame* outer;
};
thread_local ScanFrame* tls_frames = nullptr;

bool InsideReclaimer(const Reclaimer* r) {
  for (ScanFrame* f = tls_frames; f != nullptr; f = f->outer) {
    if (f->reclaimer == r) return true;
  }
  return false;
}

bool InsideEntry(const void* e) {
  for (ScanFrame* f = tls_frames; f != nullptr; f = f->outer) {
    if (f->entry == e) return true;
  }
  return false;
}

class ScopedFrame {
 public:
  ScopedFrame(const Reclaimer* r, const void* e) : frame_{r, e, tls_frames} {
    tls_frames = &frame_;
  }
  ~ScopedFrame() { tls_frames = frame_.outer; }
  ScopedFrame(const ScopedFrame&) = delete;
  ScopedFrame& operator=(const ScopedFrame&) = delete;

 private:
  ScanFrame frame_;
};

}  // namespace

Reclaimer::Reclaimer(Stats* stats) : stats_(stats != nullptr ? stats : &Stats::Default()) {}

Reclaimer::~Reclaimer() = default;

Status Reclaimer::Register(Shrinker* shrinker) {
  if (shrinker == nullptr) return Status(Errc::kInvalid, "Reclaimer::Register: null shrinker");
  if (shrinker->seeks() < 0) {
    return Status(Errc::kInvalid,
                  std::string("Reclaimer::Register: negative seeks() of ") + shrinker->name());
  }
  auto entry = std::make_shared<Entry>(shrinker);
  MutexLock lock(&mu_);
  for (const auto& e : entries_) {
    if (e->shrinker == shrinker) {
      return Status(Errc::kInvalid,
                    std::string("Reclaimer::Register: already registered: ") + shrinker->name());
    }
  }
  entries_.push_back(std::move(entry));
  return Status::Ok();
}

Status Reclaimer::Unregister(Shrinker* shrinker) {
  std::shared_ptr<Entry> entry;
  {
    MutexLock lock(&mu_);
    auto it = std::find_if(entries_.begin(), entries_.end(),
                           [&](const auto& e) { return e->shrinker == shrinker; });
    if (it == entries_.end()) {
      return Status(Errc::kNotFound, "Reclaimer::Unregister: shrinker not registered");
    }
    if (InsideEntry(it->get())) {
      return Status(Errc::kDeadlock, std::string("Reclaimer::Unregister: called from inside ") +
                                         shrinker->name() + "'s own Count/Scan");
    }
    entry = *it;
    entries_.erase(it);
    entry->dead = true;
    // Wait for every call in flight (the kernel's shrinker_free: refcount + completion).
    while (entry->pins > 0) unpinned_.Wait(&mu_);
  }
  return Status::Ok();
}

bool Reclaimer::Pin(Entry* entry) {
  MutexLock lock(&mu_);
  if (entry->dead) return false;
  ++entry->pins;
  return true;
}

void Reclaimer::Unpin(Entry* entry) {
  MutexLock lock(&mu_);
  if (--entry->pins == 0 && entry->dead) unpinned_.SignalAll();
}

Status Reclaimer::ShortfallReason() const {
  for (const std::shared_ptr<Entry>& e : LiveEntries()) {
    Status why = e->shrinker->blocked();
    if (!why.ok()) return why;
  }
  return Status();
}

std::vector<std::shared_ptr<Reclaimer::Entry>> Reclaimer::LiveEntries() const {
  MutexLock lock(&mu_);
  return entries_;
}

std::uint64_t Reclaimer::DoShrinkOne(Entry* e, const ReclaimContext& ctx, int priority,
                                     std::uint64_t* scanned_out, bool* stopped) {
  ShrinkControl sc;
  sc.reclaim = ctx;
  ScopedFrame frame(this, e);
  e->count_calls.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t count = e->shrinker->Count(sc);
  if (count == kShrinkEmpty || count == kShrinkStop) {
    e->last_count.store(0, std::memory_order_relaxed);
    e->last_empty.store(true, std::memory_order_relaxed);
    return 0;
  }
  e->last_count.store(count, std::memory_order_relaxed);
  e->last_empty.store(false, std::memory_order_relaxed);
  if (count == 0) return 0;  // "can't tell right now": leave the deferred work alone

  // Arithmetic in signed 64 bits like the kernel's longs; counts above 2^61 pages are absurd.
  const std::int64_t freeable =
      static_cast<std::int64_t>(std::min<std::uint64_t>(count, 1ull << 61));
  const std::int64_t nr = static_cast<std::int64_t>(
      std::min<std::uint64_t>(e->deferred.exchange(0, std::memory_order_acq_rel), 1ull << 62));
  std::int64_t delta;
  if (e->seeks != 0) {
    delta = ((freeable >> priority) * 4) / e->seeks;
  } else {
    delta = freeable / 2;  // free to recreate: trim hard
  }
  std::int64_t total_scan = std::min((nr >> priority) + delta, 2 * freeable);
  const std::int64_t batch = static_cast<std::int64_t>(e->batch);

  std::uint64_t freed = 0;
  std::int64_t scanned = 0;
  while (total_scan >= batch || total_scan >= freeable) {
    const std::int64_t nr_to_scan = std::min(batch, total_scan);
    if (nr_to_scan <= 0) break;
    sc.nr_to_scan = static_cast<std::uint64_t>(nr_to_scan);
    sc.nr_scanned = sc.nr_to_scan;
    e->scan_calls.fetch_add(1, std::memory_order_relaxed);
    stats_->Add(Stat::kShrinkerScans);
    const std::uint64_t ret = e->shrinker->Scan(sc);
    if (ret == kShrinkStop) {
      e->stops.fetch_add(1, std::memory_order_relaxed);
      *stopped = true;
      break;
    }
    freed += ret;
    const std::int64_t done =
        static_cast<std::int64_t>(std::min<std::uint64_t>(sc.nr_scanned, 1ull << 61));
    total_scan -= done;
    scanned += done;
    if (done == 0) break;  // a shrinker that scans nothing would loop forever at total >= freeable
  }

  const std::int64_t next = std::min(std::max<std::int64_t>(nr + delta - scanned, 0), 2 * freeable);
  // Concurrent rounds may have deferred work meanwhile: add, then cap again at 2 * freeable.
  std::uint64_t cur = e->deferred.load(std::memory_order_relaxed);
  std::uint64_t want;
  do {
    want = std::min<std::uint64_t>(cur + static_cast<std::uint64_t>(next),
                                   2 * static_cast<std::uint64_t>(freeable));
  } while (!e->deferred.compare_exchange_weak(cur, want, std::memory_order_acq_rel));

  e->scanned.fetch_add(static_cast<std::uint64_t>(scanned), std::memory_order_relaxed);
  e->freed.fetch_add(freed, std::memory_order_relaxed);
  if (freed > 0) stats_->Add(Stat::kShrinkerPagesFreed, freed);
  *scanned_out += static_cast<std::uint64_t>(scanned);
  return freed;
}

struct Reclaimer::RoundState {
  // Shrinkers that answered kShrinkStop in this Shrink() call: not called again.
  std::vector<const Entry*> stopped;
  bool IsStopped(const Entry* e) const {
    return std::find(stopped.begin(), stopped.end(), e) != stopped.end();
  }
};

ShrinkResult Reclaimer::ShrinkRound(const ReclaimContext& ctx, int priority) {
  return Shrink(ctx, priority, 0);
}

ShrinkResult Reclaimer::Shrink(const ReclaimContext& ctx, int start_priority,
                               std::uint64_t target_pages) {
  ShrinkResult result;
  if (InsideReclaimer(this)) return result;  // no recursion from a Scan into its own reclaimer
  struct InFlight {
    explicit InFlight(std::atomic<std::uint32_t>& n) : n_(n) { n_.fetch_add(1); }
    ~InFlight() { n_.fetch_sub(1); }
    std::atomic<std::uint32_t>& n_;
  } in_flight(in_flight_);
  const int start = std::clamp(start_priority, 0, kDefPriority);
  RoundState state;
  for (int priority = start; priority >= 0; --priority) {
    ++result.rounds;
    result.last_priority = priority;
    bool any_called = false;
    for (const auto& entry : LiveEntries()) {
      Entry* e = entry.get();
      if (state.IsStopped(e) || !Pin(e)) continue;
      any_called = true;
      bool stopped = false;
      result.freed += DoShrinkOne(e, ctx, priority, &result.scanned, &stopped);
      Unpin(e);
      if (stopped) state.stopped.push_back(e);
    }
    if (result.freed >= target_pages || !any_called) break;
  }
  return result;
}

std::uint64_t Reclaimer::ReclaimDirect(std::uint64_t target_pages) {
  ReclaimContext ctx;
  ctx.background = false;
  return ReclaimPages(target_pages, ctx);
}

std::uint64_t Reclaimer::ReclaimPages(std::uint64_t target_pages, const ReclaimContext& ctx) {
  if (target_pages == 0) return 0;
  if (!ctx.background) stats_->Add(Stat::kReclaimDirect);
  return Shrink(ctx, kDefPriority, target_pages).freed;
}

std::uint64_t Reclaimer::CountFreeable(const ReclaimContext& ctx) {
  if (InsideReclaimer(this)) return 0;
  std::uint64_t total = 0;
  for (const auto& entry : LiveEntries()) {
    Entry* e = entry.get();
    if (!Pin(e)) continue;
    ShrinkControl sc;
    sc.reclaim = ctx;
    std::uint64_t n;
    {
      ScopedFrame frame(this, e);
      n = e->shrinker->Count(sc);
    }
    Unpin(e);
    if (n != kShrinkEmpty && n != kShrinkStop) total += n;
  }
  return total;
}

std::size_t Reclaimer::num_shrinkers() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

std::vector<ShrinkerSnapshot> Reclaimer::Snapshot() const {
  std::vector<ShrinkerSnapshot> out;
  for (const auto& entry : LiveEntries()) {
    const Entry& e = *entry;
    ShrinkerSnapshot s;
    s.name = e.shrinker->name();
    s.seeks = e.seeks;
    s.batch = e.batch;
    s.last_count = e.last_count.load(std::memory_order_relaxed);
    s.last_empty = e.last_empty.load(std::memory_order_relaxed);
    s.count_calls = e.count_calls.load(std::memory_order_relaxed);
    s.scan_calls = e.scan_calls.load(std::memory_order_relaxed);
    s.scanned = e.scanned.load(std::memory_order_relaxed);
    s.freed = e.freed.load(std::memory_order_relaxed);
    s.stops = e.stops.load(std::memory_order_relaxed);
    s.deferred = e.deferred.load(std::memory_order_relaxed);
    out.push_back(std::move(s));
  }
  return out;
}

std::string Reclaimer::DebugString() const {
  std::string out;
  char line[256];
  for (const ShrinkerSnapshot& s : Snapshot()) {
    std::snprintf(line, sizeof(line),
                  "%s seeks=%d batch=%" PRIu64 " count=%" PRIu64 "%s scans=%" PRIu64
                  " scanned=%" PRIu64 " freed=%" PRIu64 " deferred=%" PRIu64 " stops=%" PRIu64 "\n",
                  s.name.c_str(), s.seeks, s.batch, s.last_count, s.last_empty ? "(empty)" : "",
                  s.scan_calls, s.scanned, s.freed, s.deferred, s.stops);
    out += line;
  }
  return out;
}

}  // namespace uttm
