// Copyright (c) uttm developers.
//
// gem_bench: GEM shmem objects backed by files (gem.md), each figure a ratio against a baseline
// measured in the same iteration:
//   BM_GemEvictSwapIn/M   evict M MiB of 4 MiB objects with write-back through the device's
//                         shrinker (the pages written to their files and dropped), then swap them
//                         all back in (read from the disk: the page cache was dropped), against a
//                         raw pwrite + fdatasync + POSIX_FADV_DONTNEED of the same bytes to a file
//                         in the same directory, then a raw pread of them from a dropped cache.
//                         Counters evict_ratio and swapin_ratio (raw time / GEM time; goal >= 0.8),
//                         evict_GBps, swapin_GBps, with the default options (large folios, no
//                         swap-in readahead); swapin_per_file_ratio the swap-in against a raw
//                         pread of the same bytes laid out as the objects are, one file per 4 MiB;
//                         readahead_swapin_ratio the swap-in with the device's swap-in readahead
//                         turned on (readahead(2) brings single pages); small_folio_swapin_ratio
//                         and small_folio_evict_ratio a device without large folios
//                         (ShmemBackingOptions::large_folios false, readahead on: the former
//                         default).
//   BM_GemTimeToFree256MiB  in a 384 MiB memory cgroup, a child holds 256 MiB of objects, evicts
//                         them all, then faults 256 MiB of new anonymous memory in: the time from
//                         the eviction to the last new page, with write-back eviction against lazy
//                         release (the kernel's own reclaim must write the pages back then).
//                         Counters writeback_ms, lazy_ms, lazy_over_writeback. Needs root and a
//                         cgroup v1 memory controller (the case says why when it cannot run).
// Environment: UTTM_BENCH_DIR (default $TMPDIR or /tmp).
// Run: build/release/bench/gem_bench --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "pressure/test_cgroup.h"
#include "timing.h"
#include "uttm/gem_device.h"
#include "uttm/gem_shmem_object.h"

namespace uttm {
namespace {

using bench::Clock;
using bench::Since;
constexpr std::uint64_t kObjectBytes = std::uint64_t{4} << 20;

std::string BenchDir() {
  for (const char* var : {"UTTM_BENCH_DIR", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && v[0] != '\0') return v;
  }
  return "/tmp";
}

// Objects holding their pages (a use reference each), every page with distinct bytes.
std::vector<GemRef> MakeObjects(GemDevice& dev, std::uint64_t total) {
  std::vector<GemRef> objs;
  for (std::uint64_t made = 0; made < total; made += kObjectBytes) {
    Result<GemRef> obj = dev.CreateObject(Bytes(kObjectBytes));
    if (!obj.ok() || !(*obj)->resv()->TryLock()) return {};
    (*obj)->resv()->AssertHeld();
    Result<std::byte*> p = (*obj)->Vmap();
    bool ok = p.ok();
    if (ok) {
      auto* w = reinterpret_cast<std::uint64_t*>(*p);
      for (std::uint64_t k = 0; k < kObjectBytes / 8; ++k)
        w[k] = (made + k * 8) * 0x9E3779B97F4A7C15ull;
      ok = (*obj)->GetPages().ok() && (*obj)->Vunmap().ok();
    }
    (*obj)->resv()->Unlock();
    if (!ok) return {};
    objs.push_back(*obj);
  }
  return objs;
}

// Evicts every object (with or without write-back); false on an error.
bool EvictAll(const std::vector<GemRef>& objs, bool writeback) {
  for (const GemRef& o : objs) {
    if (!o->resv()->TryLock()) return false;
    o->resv()->AssertHeld();
    OperationContext ctx;
    const bool ok = o->Evict(writeback, ctx).ok();
    o->resv()->Unlock();
    if (!ok) return false;
  }
  return true;
}

// Swaps every object back in, in eviction order (GetPages, then the extra use reference goes).
bool SwapInAll(const std::vector<GemRef>& objs) {
  for (const GemRef& o : objs) {
    if (!o->resv()->TryLock()) return false;
    o->resv()->AssertHeld();
    const bool ok = o->GetPages().ok() && o->PutPages().ok();
    o->resv()->Unlock();
    if (!ok) return false;
  }
  return true;
}

// Evicts every object of `dev` through its shrinker, then swaps them all back in, adding the
// seconds of each to `evict_s` and `swapin_s`; false (with `state` told why) on an error.
bool EvictAndSwapIn(benchmark::State& state, GemDevice& dev, const std::vector<GemRef>& objs,
                    std::uint64_t total, double* evict_s, double* swapin_s) {
  // Evicted through the device's shrinker, as reclaim does (its write-back stage starts every
  // victim's I/O before waiting for the first).
  auto t0 = Clock::now();
  ShrinkControl sc;
  sc.nr_to_scan = total / kPageSize;
  if (dev.shrinker().Scan(sc) != total / kPageSize) {
    state.SkipWithError("the shrinker did not evict every object");
    return false;
  }
  *evict_s += Since(t0);
  t0 = Clock::now();
  if (!SwapInAll(objs)) {
    state.SkipWithError("a swap-in failed");
    return false;
  }
  *swapin_s += Since(t0);
  return true;
}

void BM_GemEvictSwapIn(benchmark::State& state) {
  const std::uint64_t total = static_cast<std::uint64_t>(state.range(0)) << 20;
  GemDeviceOptions o;
  o.name = "bench";
  o.backing.directory = BenchDir();
  GemDeviceOptions small_o = o;
  small_o.name = "bench-small-folios";
  small_o.backing.large_folios = false;
  Result<std::unique_ptr<GemDevice>> dev = GemDevice::Create(o);
  Result<std::unique_ptr<GemDevice>> small = GemDevice::Create(small_o);
  if (!dev.ok() || !small.ok()) {
    state.SkipWithError((dev.ok() ? small : dev).status().ToString().c_str());
    return;
  }
  std::vector<GemRef> objs = MakeObjects(**dev, total);
  std::vector<GemRef> small_objs = MakeObjects(**small, total);
  if (objs.empty() || small_objs.empty()) {
    state.SkipWithError("cannot make the objects");
    return;
  }
  std::vector<std::byte> buf(kObjectBytes);
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<std::byte>(i * 131 + 7);
  double evict_s = 0, swapin_s = 0, ra_evict_s = 0, ra_swapin_s = 0, small_evict_s = 0,
         small_swapin_s = 0, raw_w = 0, raw_r = 0, raw_files_r = 0;
  for (auto _ : state) {
    if (!EvictAndSwapIn(state, **dev, objs, total, &evict_s, &swapin_s)) return;
    // Again with the swap-in readahead on.
    (*dev)->set_swapin_readahead(GemDeviceOptions{}.swapin_readahead);
    const bool ra_ok = EvictAndSwapIn(state, **dev, objs, total, &ra_evict_s, &ra_swapin_s);
    (*dev)->set_swapin_readahead(0);
    if (!ra_ok) return;
    if (!EvictAndSwapIn(state, **small, small_objs, total, &small_evict_s, &small_swapin_s)) {
      return;
    }
    // The raw baseline: the same bytes, the same file system, the same cache dropping.
    const int fd = open(BenchDir().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
      state.SkipWithError("cannot open a raw file");
      return;
    }
    bool ok = true;
    auto t0 = Clock::now();
    for (std::uint64_t off = 0; off < total && ok; off += kObjectBytes) {
      ok = pwrite(fd, buf.data(), kObjectBytes, static_cast<off_t>(off)) ==
           static_cast<ssize_t>(kObjectBytes);
    }
    ok = ok && fdatasync(fd) == 0;
    posix_fadvise(fd, 0, static_cast<off_t>(total), POSIX_FADV_DONTNEED);
    raw_w += Since(t0);
    t0 = Clock::now();
    for (std::uint64_t off = 0; off < total && ok; off += kObjectBytes) {
      ok = pread(fd, buf.data(), kObjectBytes, static_cast<off_t>(off)) ==
           static_cast<ssize_t>(kObjectBytes);
    }
    raw_r += Since(t0);
    close(fd);
    // The same reads with the objects' layout: one file per 4 MiB (each read waits for its own
    // file, as a swap-in without readahead does).
    std::vector<int> files;
    for (std::uint64_t off = 0; off < total && ok; off += kObjectBytes) {
      const int f = open(BenchDir().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
      ok = f >= 0 && pwrite(f, buf.data(), kObjectBytes, 0) == static_cast<ssize_t>(kObjectBytes);
      if (f >= 0) files.push_back(f);
    }
    for (int f : files) {
      ok = ok && fdatasync(f) == 0;
      posix_fadvise(f, 0, static_cast<off_t>(kObjectBytes), POSIX_FADV_DONTNEED);
    }
    t0 = Clock::now();
    for (int f : files) {
      ok = ok && pread(f, buf.data(), kObjectBytes, 0) == static_cast<ssize_t>(kObjectBytes);
    }
    raw_files_r += Since(t0);
    for (int f : files) close(f);
    if (!ok) {
      state.SkipWithError("raw I/O failed");
      return;
    }
  }
  const double bytes = static_cast<double>(total) * static_cast<double>(state.iterations());
  state.counters["evict_ratio"] = raw_w / evict_s;
  state.counters["swapin_ratio"] = raw_r / swapin_s;
  state.counters["evict_GBps"] = bytes / evict_s / 1e9;
  state.counters["swapin_GBps"] = bytes / swapin_s / 1e9;
  state.counters["swapin_per_file_ratio"] = raw_files_r / swapin_s;
  state.counters["readahead_swapin_ratio"] = raw_r / ra_swapin_s;
  state.counters["small_folio_swapin_ratio"] = raw_r / small_swapin_s;
  state.counters["small_folio_evict_ratio"] = raw_w / small_evict_s;
}
BENCHMARK(BM_GemEvictSwapIn)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

struct FreeReport {
  int stage = 0;
  double seconds = 0;
};

// The child: holds 256 MiB of objects, evicts them, faults 256 MiB of anonymous memory in.
[[noreturn]] void TimeToFreeChild(bool lazy, int fd) {
  FreeReport rep;
  GemDeviceOptions o;
  o.name = "bench-free";
  o.backing.directory = BenchDir();
  Result<std::unique_ptr<GemDevice>> dev = GemDevice::Create(o);
  if (!dev.ok()) testing::FinishChild(fd, rep, 1);
  std::vector<GemRef> objs = MakeObjects(**dev, std::uint64_t{256} << 20);
  if (objs.empty()) testing::FinishChild(fd, rep, 2);
  const std::size_t anon = std::size_t{256} << 20;
  void* p = mmap(nullptr, anon, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) testing::FinishChild(fd, rep, 3);
  const auto t0 = Clock::now();
  if (!EvictAll(objs, /*writeback=*/!lazy)) testing::FinishChild(fd, rep, 4);
  if (madvise(p, anon, MADV_POPULATE_WRITE) != 0) std::memset(p, 1, anon);
  rep.seconds = Since(t0);
  testing::FinishChild(fd, rep, 0);
}

// Runs the child in a fresh 384 MiB group; the seconds it measured, or a negative value with
// `why` set.
double TimeToFree(bool lazy, std::string* why) {
  auto cg = testing::MakeTestCgroupOrSkip(std::uint64_t{384} << 20, why);
  if (cg == nullptr) return -1;
  testing::CgroupChildRun<FreeReport> r = testing::RunInCgroup<FreeReport>(
      cg.get(), std::chrono::seconds(120), [&](int fd) { TimeToFreeChild(lazy, fd); });
  if (!r.problem.empty() || !r.have_report || r.report.stage != 0) {
    *why = "the child failed: " + r.problem + " stage " + std::to_string(r.report.stage) +
           " status " + std::to_string(r.status) + " oom kills " + std::to_string(cg->OomKills());
    return -1;
  }
  return r.report.seconds;
}

void BM_GemTimeToFree256MiB(benchmark::State& state) {
  double writeback = 0, lazy = 0;
  for (auto _ : state) {
    std::string why;
    const double w = TimeToFree(false, &why);
    const double l = w < 0 ? -1 : TimeToFree(true, &why);
    if (w < 0 || l < 0) {
      state.SkipWithError(why.c_str());
      return;
    }
    writeback += w;
    lazy += l;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["writeback_ms"] = writeback / n * 1e3;
  state.counters["lazy_ms"] = lazy / n * 1e3;
  state.counters["lazy_over_writeback"] = lazy / writeback;
}
BENCHMARK(BM_GemTimeToFree256MiB)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
