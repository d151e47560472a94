// Copyright (c) uttm developers.
//
// redis_store_bench: the remote store (redis_store.h) against raw hiredis SET / GET pipelines of
// the same values to the same server, in the same iteration. The bench starts its own
// redis-server (unix socket, persistence off; src/testing/redis_server.h).
//   BM_RedisStore/<value KiB>   128 MiB backed up in calls of 32 MiB, cut into values of that
//       size (64 KiB, 2 MiB, 16 MiB: the store's max_value_bytes), then copied back. The raw
//       loop sends the same bytes as the same number of SETs per 32 MiB, pipelined (all
//       appended, then the replies read), and reads them back with pipelined GETs, copying each
//       value into the destination buffer (where a user of raw hiredis must put it). Counters:
//       backup_ratio / restore_ratio (raw time / store time; the goal >= 0.8) and each
//       side's MiB/s. Every round trip is checked byte for byte, outside the timing.
// Run: build/release/bench/redis_store_bench --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "testing/page_buffer.h"
#include "testing/redis_server.h"
#include "timing.h"
#include "uttm/backup_store.h"
#include "uttm/redis_store.h"
#include "uttm/stats.h"

namespace uttm {
namespace {

using bench::Clock;
using bench::Since;
constexpr std::size_t kPages = 32768;     // 128 MiB
constexpr std::size_t kCallPages = 8192;  // 32 MiB per call

// Raw SETs (write) or GETs (read, copied into `buf`) of `len` bytes at `buf` as values of
// `value` bytes, all appended, then the replies read; false on any error.
bool RawCall(redisContext* c, bool write, std::byte* buf, std::size_t len, std::size_t value,
             std::size_t first_key) {
  std::size_t n = 0;
  for (std::size_t off = 0; off < len; off += value, ++n) {
    const std::string key = "raw:" + std::to_string(first_key + n);
    const char* argv[] = {write ? "SET" : "GET", key.c_str(),
                          reinterpret_cast<const char*>(buf + off)};
    const std::size_t lens[] = {3, key.size(), value};
    if (redisAppendCommandArgv(c, write ? 3 : 2, argv, lens) != REDIS_OK) return false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK) return false;
    auto* r = static_cast<redisReply*>(raw);
    bool ok = write ? r->type == REDIS_REPLY_STATUS
                    : r->type == REDIS_REPLY_STRING && static_cast<std::size_t>(r->len) == value;
    if (ok && !write) std::memcpy(buf + i * value, r->str, value);
    freeReplyObject(r);
    if (!ok) return false;
  }
  return true;
}

void BM_RedisStore(benchmark::State& state) {
  const std::size_t value = static_cast<std::size_t>(state.range(0)) << 10;
  testing::RedisServer server;
  if (!server.ok()) {
    state.SkipWithError(("no redis-server: " + server.why()).c_str());
    return;
  }
  testing::PatternPages pages(kPages, 1);
  testing::PageBuffer out(kPages);
  Stats stats;
  RedisStoreOptions o;
  o.servers = {server.unix_address()};
  o.max_value_bytes = value;
  o.stats = &stats;
  Result<std::unique_ptr<BackupStore>> store = NewRedisStore(o);
  redisContext* raw = redisConnectUnix(server.socket_path().c_str());
  if (!store.ok() || raw == nullptr || raw->err != 0) {
    state.SkipWithError("cannot connect to the server");
    if (raw != nullptr) redisFree(raw);
    return;
  }
  std::vector<BackupHandle> handles(kPages);
  double raw_w = 0, raw_r = 0, st_b = 0, st_r = 0;
  for (auto _ : state) {
    bool ok = true;
    auto t0 = Clock::now();
    for (std::size_t p = 0; p < kPages && ok; p += kCallPages) {
      ok = RawCall(raw, true, pages.page(p), kCallPages * kPageSize, value, p);
    }
    raw_w += Since(t0);
    out.Zero();
    t0 = Clock::now();
    for (std::size_t p = 0; p < kPages && ok; p += kCallPages) {
      ok = RawCall(raw, false, out.page(p), kCallPages * kPageSize, value, p);
    }
    raw_r += Since(t0);
    freeReplyObject(redisCommand(raw, "FLUSHALL"));
    if (!ok || std::memcmp(out.data(), pages.data(), kPages * kPageSize) != 0) {
      state.SkipWithError("the raw hiredis loop failed");
      break;
    }
    out.Zero();
    t0 = Clock::now();
    for (std::size_t p = 0; p < kPages && ok; p += kCallPages) {
      Result<std::size_t> r = (*store)->BackupPages(pages.page(p), kCallPages, {}, &handles[p]);
      ok = r.ok() && *r == kCallPages;
    }
    st_b += Since(t0);
    t0 = Clock::now();
    for (std::size_t p = 0; p < kPages && ok; p += kCallPages) {
      ok = (*store)->CopyPages(&handles[p], kCallPages, out.page(p), {}).ok();
    }
    st_r += Since(t0);
    if (!ok || std::memcmp(out.data(), pages.data(), kPages * kPageSize) != 0) {
      state.SkipWithError("a store round trip failed");
      break;
    }
    (*store)->Drop(handles.data(), kPages);
    (void)(*store)->Flush();  // the deletes go now, outside the next timing
  }
  redisFree(raw);
  state.counters["backup_ratio"] = raw_w / st_b;
  state.counters["restore_ratio"] = raw_r / st_r;
  const double mib = static_cast<double>(kPages * kPageSize * state.iterations()) / (1 << 20);
  state.counters["raw_set_MiBps"] = mib / raw_w;
  state.counters["raw_get_MiBps"] = mib / raw_r;
  state.counters["backup_MiBps"] = mib / st_b;
  state.counters["restore_MiBps"] = mib / st_r;
}
BENCHMARK(BM_RedisStore)
    ->Arg(64)
    ->Arg(2048)
    ->Arg(16384)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
