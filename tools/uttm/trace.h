// Copyright (c) uttm developers.
//
// trace.h: a Chrome trace event format writer (loads in Perfetto and chrome://tracing).
//
// Output: {"traceEvents":[...],"displayTimeUnit":"ms"} with complete events ("ph":"X", ts and
// dur in microseconds), counter events ("ph":"C", one series per arg) and thread-name metadata
// ("ph":"M"). Events are written sorted by timestamp (stable for equal timestamps).
//
// Memory is bounded: at most `max_events` events are kept; later ones are counted as dropped
// and the count is written in the trace's "otherData".
//
// Event names the engine emits (kEv*) and counter names (kCtr*) are below, so the tests, the docs
// and the engine agree.
//
// Thread-safety: every method may be called from any thread.
#ifndef UTTM_TOOLS_UTTM_TRACE_H_
#define UTTM_TOOLS_UTTM_TRACE_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uttm/mutex.h"
#include "uttm/status.h"

namespace uttm::tool {

// Complete-event names.
inline constexpr std::string_view kEvEvict = "evict";      // one buffer evicted
inline constexpr std::string_view kEvBackup = "backup";    // pages written to the store
inline constexpr std::string_view kEvRestore = "restore";  // pages read back
inline constexpr std::string_view kEvPurge = "purge";      // a DONTNEED buffer dropped
inline constexpr std::string_view kEvSwapout = "swapout";  // one LRU swapout pass
inline constexpr std::string_view kEvShrinkerScan = "shrinker_scan";
inline constexpr std::string_view kEvPhase = "phase";    // a workload phase
inline constexpr std::string_view kEvVerify = "verify";  // the end-of-run check
// Budget events per client over a sample interval (args: one per client that had any).
inline constexpr std::string_view kEvBudgetMaxHit = "budget_max_hit";     // charges refused
inline constexpr std::string_view kEvBudgetEviction = "budget_eviction";  // suffered / caused
inline constexpr std::string_view kEvProtectionBreach = "protection_breach";
inline constexpr std::string_view kEvBudgetReclaim = "budget_reclaim";  // bytes to a lowered max
// Counter names (series are the counter's args).
inline constexpr std::string_view kCtrDomainUsage = "domain_usage";  // bytes per domain
inline constexpr std::string_view kCtrPoolSize = "pool_size";        // bytes in the page pool
inline constexpr std::string_view kCtrRss = "rss";                   // process RSS bytes
inline constexpr std::string_view kCtrClientUsage = "client_usage";  // "<client> <domain>" bytes

class TraceWriter {
 public:
  using Args = std::vector<std::pair<std::string, double>>;

  explicit TraceWriter(std::size_t max_events = 1 << 20);

  // Microseconds since the writer was created (steady clock): the timestamp to pass below.
  double NowUs() const;

  // A complete event of `dur_us` starting at `ts_us` on thread `tid`, category `cat`.
  void Complete(std::string_view name, std::string_view cat, std::uint32_t tid, double ts_us,
                double dur_us, Args args = {});
  // A counter sample: each arg is one series of the counter track `name`.
  void Counter(std::string_view name, double ts_us, Args series);
  // Names thread `tid` in the viewer.
  void ThreadName(std::uint32_t tid, std::string_view name);

  std::size_t size() const;
  std::uint64_t dropped() const;

  // The JSON document, events sorted by timestamp.
  std::string ToJson() const;
  // Writes ToJson() to `path`. Errors: kIo naming the path.
  Status WriteFile(const std::string& path) const;

 private:
  struct Event {
    char ph;
    std::string name;
    std::string cat;
    std::uint32_t tid;
    double ts;
    double dur;
    Args args;
  };
  void Add(Event e);

  const std::chrono::steady_clock::time_point start_;
  const std::size_t max_events_;
  mutable Mutex mu_;
  std::vector<Event> events_ UTTM_GUARDED_BY(mu_);
  std::uint64_t dropped_ UTTM_GUARDED_BY(mu_) = 0;
};

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_TRACE_H_
