// Copyright (c) uttm developers.
#include "bench.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine.h"
#include "report.h"
#include "size.h"
#include "uttm/bo_shrink.h"
#include "uttm/bo_shrinker.h"
#include "uttm/buffer_object.h"
#include "uttm/mapping.h"
#include "uttm/memory_context.h"
#include "uttm/reclaimer.h"
#include "uttm/resource_manager.h"
#include "uttm/runtime.h"
#include "uttm/sim_gpu.h"
#include "uttm/stats.h"
#include "workload.h"
#include "zipf.h"

namespace uttm::tool {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One scenario measured once: uttm and its baseline back to back.
struct Figure {
  std::string name;
  std::string unit;  // of uttm and baseline
  double uttm = 0;
  double baseline = 0;
  std::string baseline_name;
  bool higher_is_better = true;
  int order = 0;  // the figure's place in the table (set by RunBench)
  double ratio() const {
    if (uttm <= 0 || baseline <= 0) return 0;
    return higher_is_better ? uttm / baseline : baseline / uttm;
  }
};

// A scenario over all rounds: medians of uttm and of the baseline, and the median, lowest and
// highest of the per-round ratios (each round's two sides ran within seconds of each other, so
// drift of the host's speed between rounds cancels out of its ratio).
struct Summary {
  Figure median;  // uttm and baseline are medians
  double ratio = 0;
  double ratio_min = 0;
  double ratio_max = 0;
  std::size_t rounds = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Groups the figures of every round by their place in the table.
std::vector<Summary> Summarise(const std::vector<Figure>& figs) {
  std::map<int, std::vector<const Figure*>> by_order;
  for (const Figure& f : figs) by_order[f.order].push_back(&f);
  std::vector<Summary> out;
  for (const auto& [order, rounds] : by_order) {
    std::vector<double> uttm, baseline, ratio;
    for (const Figure* f : rounds) {
      uttm.push_back(f->uttm);
      baseline.push_back(f->baseline);
      ratio.push_back(f->ratio());
    }
    Summary s;
    s.median = *rounds.front();
    s.median.uttm = Median(uttm);
    s.median.baseline = Median(baseline);
    s.ratio = Median(ratio);
    s.ratio_min = *std::min_element(ratio.begin(), ratio.end());
    s.ratio_max = *std::max_element(ratio.begin(), ratio.end());
    s.rounds = ratio.size();
    out.push_back(std::move(s));
  }
  return out;
}

// One simulated device in a runtime of its own (memory context, store, driver shrinker), with a
// page limit large enough and background reclaim off, so that nothing is reclaimed behind the
// scenario's back.
class Rig {
 public:
  static Result<std::unique_ptr<Rig>> Create(const std::string& store_spec, std::uint64_t vram) {
    std::unique_ptr<Rig> r(new Rig());
    RuntimeOptions ro;
    ro.name = "bench";
    ro.page_limit = Bytes(std::uint64_t{4} << 30);
    ro.store_spec = store_spec;
    ro.stats = &r->stats_;
    ro.reclaim_thread = false;
    ro.watermark_swapout = false;
    ro.cgroup_headroom = false;
    UTTM_ASSIGN_OR_RETURN(r->runtime_, Runtime::Open(ro));
    SimGpuOptions so;
    so.vram_size = Bytes(vram);
    UTTM_ASSIGN_OR_RETURN(r->gpu_, r->runtime_->AddSimGpu(so));
    r->shrinker_ = r->runtime_->shrinker(r->gpu_->device());
    return r;
  }
  ~Rig() {
    bos.clear();
    if (gpu_ != nullptr) {
      gpu_->Drain();
      gpu_->device()->FlushDelayedDeletes();
    }
  }

  // Creates `n` objects of `size` in `mem`, filled with non-zero bytes.
  Status Fill(std::size_t n, std::uint64_t size, MemType mem) {
    std::vector<std::byte> data(size);
    for (std::size_t i = 0; i < size; i += 8)
      data[i] = std::byte{static_cast<unsigned char>(i / 8 + 1)};
    for (std::size_t i = 0; i < n; ++i) {
      OperationContext ctx;
      BoOptions bo;
      bo.size = Bytes(size);
      Place pl;
      pl.mem_type = mem;
      UTTM_ASSIGN_OR_RETURN(BoRef b, BufferObject::Create(gpu_->device(), bo, Placement{pl}, ctx));
      UTTM_RETURN_IF_ERROR(b->Write(0, data, ctx));
      bos.push_back(std::move(b));
    }
    gpu_->Drain();
    return Status::Ok();
  }

  // Applies `fn` to every object with its reservation held.
  Status ForEach(const std::function<Status(BufferObject&, OperationContext&)>& fn) {
    for (BoRef& b : bos) {
      OperationContext ctx;
      UTTM_RETURN_IF_ERROR(b->Reserve(ctx));
      b->resv()->AssertHeld();
      Status s = fn(*b, ctx);
      b->Unreserve();
      UTTM_RETURN_IF_ERROR(s);
    }
    return Status::Ok();
  }

  Stats& stats() { return stats_; }
  MemoryContext& memory() { return runtime_->memory(); }
  BoShrinker& shrinker() { return *shrinker_; }
  SimGpu& gpu() { return *gpu_; }
  std::vector<BoRef> bos;

 private:
  Rig() = default;
  Stats stats_;
  std::unique_ptr<Runtime> runtime_;
  SimGpu* gpu_ = nullptr;           // the runtime's
  BoShrinker* shrinker_ = nullptr;  // the runtime's
};

// A raw file of the store's kind: an unlinked file in the same directory, or a memfd.
int RawFile(bool memfd) {
  if (memfd) return memfd_create("uttm-bench-raw", MFD_CLOEXEC);
  const char* dir = std::getenv("TMPDIR");
  return open(dir != nullptr && *dir != '\0' ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

// The raw way to do what a backup and a restore do: `n` chunks of `size` bytes of populated
// memory written with pwrite, then read back with pread into freshly mapped memory (a restore
// gets fresh pages too). Seconds of each.
Status RawWriteRead(bool memfd, std::size_t n, std::uint64_t size, double* write_s,
                    double* read_s) {
  const std::size_t bytes = n * size;
  auto* src = static_cast<std::byte*>(
      mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (src == MAP_FAILED) return Status(Errc::kNoMemory, "raw baseline: mmap failed");
  std::memset(src, 0x5a, bytes);
  auto* dst = static_cast<std::byte*>(
      mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  int fd = RawFile(memfd);
  Status status;
  if (dst == MAP_FAILED || fd < 0) {
    status = Status(Errc::kIo, fmt::format("raw baseline setup: {}", std::strerror(errno)));
  }
  auto t0 = Clock::now();
  for (std::size_t i = 0; status.ok() && i < n; ++i) {
    if (pwrite(fd, src + i * size, size, static_cast<off_t>(i * size)) !=
        static_cast<ssize_t>(size)) {
      status = Status(Errc::kIo, "raw pwrite failed");
    }
  }
  *write_s = Since(t0);
  t0 = Clock::now();
  for (std::size_t i = 0; status.ok() && i < n; ++i) {
    if (pread(fd, dst + i * size, size, static_cast<off_t>(i * size)) !=
        static_cast<ssize_t>(size)) {
      status = Status(Errc::kIo, "raw pread failed");
    }
  }
  *read_s = Since(t0);
  if (fd >= 0) close(fd);
  if (dst != MAP_FAILED) munmap(dst, bytes);
  munmap(src, bytes);
  return status;
}

Status BenchStore(bool memfd, std::uint64_t total, std::vector<Figure>* out) {
  constexpr std::uint64_t kSize = 1 << 20;
  const std::size_t n = total / kSize;
  const std::string spec = memfd ? "memfd,allow_without_swap" : "file";
  const std::string kind = memfd ? "memfd" : "file";
  UTTM_ASSIGN_OR_RETURN(auto rig, Rig::Create(spec, 16 << 20));
  UTTM_RETURN_IF_ERROR(rig->Fill(n, kSize, kMemSystem));
  auto t0 = Clock::now();
  UTTM_RETURN_IF_ERROR(rig->ForEach([](BufferObject& bo, OperationContext& ctx) -> Status {
    Result<std::int64_t> r = Shrink(ctx, bo, ShrinkFlags{});
    if (!r.ok()) return r.status();
    return *r > 0 ? Status::Ok() : Status(Errc::kBusy, "nothing backed up");
  }));
  const double backup_s = Since(t0);
  t0 = Clock::now();
  UTTM_RETURN_IF_ERROR(rig->ForEach([](BufferObject& bo, OperationContext& ctx) {
    bo.resv()->AssertHeld();  // ForEach reserves each object
    return bo.Populate(ctx);
  }));
  const double restore_s = Since(t0);
  if (rig->stats().Get(Stat::kPagesRestored) < n * (kSize / kPageSize)) {
    return Status(Errc::kFault, "restore scenario restored fewer pages than backed up");
  }
  double raw_w = 0, raw_r = 0;
  UTTM_RETURN_IF_ERROR(RawWriteRead(memfd, n, kSize, &raw_w, &raw_r));
  const double bytes = static_cast<double>(n * kSize);
  out->push_back({"backup (" + kind + ")", "MiB/s", bytes / backup_s / (1 << 20),
                  bytes / raw_w / (1 << 20), "raw pwrite", true});
  out->push_back({"restore (" + kind + ")", "MiB/s", bytes / restore_s / (1 << 20),
                  bytes / raw_r / (1 << 20), "raw pread, fresh pages", true});
  return Status::Ok();
}

Status BenchPurge(std::uint64_t total, std::vector<Figure>* out) {
  constexpr std::uint64_t kSize = 1 << 20;
  const std::size_t n = total / kSize;
  UTTM_ASSIGN_OR_RETURN(auto rig, Rig::Create("memfd,allow_without_swap", 16 << 20));
  UTTM_RETURN_IF_ERROR(rig->Fill(n, kSize, kMemSystem));
  for (BoRef& b : rig->bos) {
    OperationContext ctx;
    UTTM_RETURN_IF_ERROR(b->Madvise(Madvice::kDontNeed, ctx).status());
  }
  auto t0 = Clock::now();
  UTTM_RETURN_IF_ERROR(rig->ForEach([](BufferObject& bo, OperationContext& ctx) -> Status {
    ShrinkFlags f;
    f.purge = true;
    return Shrink(ctx, bo, f).status();
  }));
  const double uttm_s = Since(t0);
  // The same kind of memory as the page provider's: 2 MiB aligned, transparent huge pages asked
  // for, touched, then released 1 MiB at a time.
  constexpr std::uint64_t kAlign = 2 << 20;
  const std::uint64_t len = n * kSize + kAlign;
  void* map = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) return Status(Errc::kNoMemory, "baseline mmap failed");
  char* p = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(map) + kAlign - 1) &
                                    ~std::uintptr_t{kAlign - 1});
  madvise(p, n * kSize, MADV_HUGEPAGE);
  std::memset(p, 0x5a, n * kSize);
  t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) madvise(p + i * kSize, kSize, MADV_DONTNEED);
  const double raw_s = Since(t0);
  munmap(map, len);
  const double bytes = static_cast<double>(n * kSize);
  out->push_back({"purge", "MiB/s", bytes / uttm_s / (1 << 20), bytes / raw_s / (1 << 20),
                  "raw madvise(DONTNEED)", true});
  return Status::Ok();
}

Status BenchEvict(std::uint64_t vram, std::vector<Figure>* out) {
  constexpr std::uint64_t kSize = 64 << 10;
  const std::size_t n = vram / kSize;
  UTTM_ASSIGN_OR_RETURN(auto rig, Rig::Create("memfd,allow_without_swap", vram));
  UTTM_RETURN_IF_ERROR(rig->Fill(n, kSize, kMemVram));
  Device* dev = rig->gpu().device();
  ResourceManager* vman = dev->manager(kMemVram);
  const std::uint64_t before = vman->usage();
  OperationContext ctx;
  auto t0 = Clock::now();
  UTTM_RETURN_IF_ERROR(BufferObject::EvictAll(*dev, vman, ctx));
  rig->gpu().Drain();
  const double uttm_s = Since(t0);
  const std::uint64_t evicted = (before - std::min(before, vman->usage())) / kSize;
  if (evicted == 0) return Status(Errc::kFault, "eviction scenario evicted nothing");
  // The raw way to move as many 64 KiB objects out of device memory: copy each from a
  // populated arena of the same size into freshly mapped host memory (the eviction's TT pages
  // are fresh memory too).
  const std::size_t bytes = evicted * kSize;
  auto* from = static_cast<std::byte*>(
      mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  auto* to = static_cast<std::byte*>(
      mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (from == MAP_FAILED || to == MAP_FAILED) {
    return Status(Errc::kNoMemory, "eviction baseline: mmap failed");
  }
  std::memset(from, 0x5a, bytes);
  t0 = Clock::now();
  for (std::size_t i = 0; i < evicted; ++i) std::memcpy(to + i * kSize, from + i * kSize, kSize);
  const double raw_s = Since(t0);
  munmap(from, bytes);
  munmap(to, bytes);
  out->push_back({"evict to TT (per 64 KiB object)", "ns",
                  uttm_s * 1e9 / static_cast<double>(evicted),
                  raw_s * 1e9 / static_cast<double>(evicted), "memcpy to fresh pages", false});
  return Status::Ok();
}

Status BenchShrinker(std::uint64_t total, std::vector<Figure>* out) {
  constexpr std::uint64_t kSize = 1 << 20;
  const std::size_t n = total / kSize;
  UTTM_ASSIGN_OR_RETURN(auto rig, Rig::Create("file", 16 << 20));
  UTTM_RETURN_IF_ERROR(rig->Fill(n, kSize, kMemSystem));
  Reclaimer reclaimer(&rig->stats());
  UTTM_RETURN_IF_ERROR(reclaimer.Register(&rig->shrinker()));
  ReclaimContext rc;
  rc.background = true;
  auto t0 = Clock::now();
  ShrinkResult r = reclaimer.Shrink(rc, kDefPriority, n * (kSize / kPageSize));
  const double uttm_s = Since(t0);
  (void)reclaimer.Unregister(&rig->shrinker());
  if (r.freed == 0) return Status(Errc::kFault, "shrinker scenario freed nothing");
  double raw_w = 0, raw_r = 0;
  const std::size_t chunks = (r.freed * kPageSize + kSize - 1) / kSize;
  UTTM_RETURN_IF_ERROR(RawWriteRead(false, chunks, kSize, &raw_w, &raw_r));
  out->push_back({"shrinker scan (file)", "MiB/s",
                  static_cast<double>(r.freed * kPageSize) / uttm_s / (1 << 20),
                  static_cast<double>(chunks * kSize) / raw_w / (1 << 20), "raw pwrite", true});
  return Status::Ok();
}

// The first error a run reported, or what else kept it from verifying.
std::string FirstError(const Report& r) {
  if (!r.errors.empty()) return r.errors.front();
  return fmt::format("{} of {} buffers verified, {} mismatched", r.buffers.verified,
                     r.buffers.total, r.buffers.mismatched);
}

Status BenchDemo(std::uint64_t ops, std::vector<Figure>* out) {
  UTTM_ASSIGN_OR_RETURN(Workload w, LoadPreset("demo"));
  Overrides o;
  o.ops = ops;
  UTTM_RETURN_IF_ERROR(ApplyOverrides(&w, o));
  EngineOptions eo;
  eo.quiet = true;
  eo.handle_sigusr1 = false;
  UTTM_ASSIGN_OR_RETURN(RunOutcome tight, RunWorkload(w, eo));
  if (!tight.report.verified) {
    return Status(Errc::kFault, "demo run did not verify: " + FirstError(tight.report));
  }
  Workload roomy = w;
  roomy.limits.page_limit = w.limits.page_limit * 8;
  UTTM_ASSIGN_OR_RETURN(RunOutcome loose, RunWorkload(roomy, eo));
  if (!loose.report.verified) {
    return Status(Errc::kFault,
                  "unconstrained demo run did not verify: " + FirstError(loose.report));
  }
  out->push_back({"demo end to end", "ops/s", tight.report.throughput.ops_per_s,
                  loose.report.throughput.ops_per_s, "same run, 8x page limit", true});
  return Status::Ok();
}

std::uint64_t WsWord(std::size_t buffer, std::uint32_t version, std::uint64_t word) {
  return ((std::uint64_t{buffer} << 40) ^ (std::uint64_t{version} << 32) ^ word) *
             0x9E3779B97F4A7C15ull +
         1;
}

void WsFill(std::uint64_t* words, std::size_t count, std::size_t buffer, std::uint32_t version) {
  for (std::size_t k = 0; k < count; ++k) words[k] = WsWord(buffer, version, k);
}

bool WsCheck(const std::uint64_t* words, std::size_t count, std::size_t buffer,
             std::uint32_t version) {
  for (std::size_t k = 0; k < count; ++k) {
    if (words[k] != WsWord(buffer, version, k)) return false;
  }
  return true;
}

// Runs the accesses of thread `t` of 2; `access(id, rewrite, next)` does one and returns false on
// a failure (`next`: the buffer the thread reads next, or SIZE_MAX when it rewrites it or there
// is none). Latencies in microseconds are appended to `lat`.
template <typename Access>
bool WsRun(const WorkingSet& p, int t, std::vector<double>* lat, Access access) {
  std::vector<std::size_t> mine;
  for (std::size_t i = static_cast<std::size_t>(t); i < p.n; i += 2) mine.push_back(i);
  Rng rng(MixKeys(7, static_cast<std::uint64_t>(t)));
  for (std::size_t i = mine.size(); i > 1; --i) std::swap(mine[i - 1], mine[rng.Below(i)]);
  ZipfSampler zipf(mine.size(), 0.9);
  auto draw = [&] {
    const std::size_t id = mine[zipf.Sample(rng) - 1];
    return std::pair<std::size_t, bool>(id, rng.Below(100) < 10);
  };
  std::pair<std::size_t, bool> cur = draw();
  for (std::size_t a = static_cast<std::size_t>(t); a < p.accesses; a += 2) {
    const bool last = a + 2 >= p.accesses;
    const std::pair<std::size_t, bool> next = last ? cur : draw();
    const std::size_t hint = last || next.second ? SIZE_MAX : next.first;
    const auto t0 = Clock::now();
    if (!access(cur.first, cur.second, hint)) return false;
    lat->push_back(Since(t0) * 1e6);
    cur = next;
  }
  return true;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

template <typename Access>
bool WsRunBoth(const WorkingSet& p, std::vector<double>* lat, Access access) {
  std::vector<double> other_lat;
  bool other_ok = true;
  std::thread other([&] { other_ok = WsRun(p, 1, &other_lat, access); });
  const bool ok = WsRun(p, 0, lat, access);
  other.join();
  lat->insert(lat->end(), other_lat.begin(), other_lat.end());
  return ok && other_ok;
}

// The uttm part of the working set: the accesses over a runtime with the page limit, then every
// buffer verified.
struct WsPhase {
  double seconds = 0;
  std::vector<double> latencies;
  double restore_s = 0;
  std::uint64_t restored = 0, written = 0, rewritten = 0, peak_rss = 0;
};

Result<WsPhase> RunWorkingSetPhase(const WorkingSet& p) {
  WsPhase out;
  const std::size_t words = p.size / 8;
  // uttm: a runtime with the page limit, a private file store, background reclaim on.
  Stats stats;
  RuntimeOptions ro;
  ro.name = "working-set";
  ro.page_limit = Bytes(p.limit);
  ro.stats = &stats;
  ro.detect_pressure = false;
  UTTM_ASSIGN_OR_RETURN(std::unique_ptr<Runtime> rt, Runtime::Open(ro));
  SimGpuOptions so;
  so.vram_size = Bytes(4 << 20);
  UTTM_ASSIGN_OR_RETURN(SimGpu * gpu, rt->AddSimGpu(so));
  std::vector<BoRef> bos;
  std::vector<std::uint32_t> version(p.n, 1);
  OperationContext ctx;
  Place system;
  system.mem_type = kMemSystem;
  for (std::size_t i = 0; i < p.n; ++i) {
    UTTM_ASSIGN_OR_RETURN(BoRef bo, BufferObject::Create(gpu->device(), {.size = Bytes(p.size)},
                                                         Placement{system}, ctx));
    UTTM_ASSIGN_OR_RETURN(Mapping m, Mapping::Create(bo, kMapWrite | kMapDiscard, ctx));
    WsFill(reinterpret_cast<std::uint64_t*>(m.data()), words, i, 1);
    bos.push_back(std::move(bo));
  }
  // Start cold, as a working set larger than memory runs in its steady state: every buffer has
  // been in the store once, so the writes of the access phase are the rewrites' (and whatever
  // else the store had to take again), not the first write of the buffers filled last.
  for (;;) {
    UTTM_ASSIGN_OR_RETURN(std::uint64_t freed, rt->TtShrink());
    if (freed == 0) break;
  }
  // Touch mode: every buffer keeps a restore-on-touch mapping; a read is a touch of it.
  std::vector<Mapping> touch_maps;
  for (std::size_t i = 0; p.touch && i < p.n; ++i) {
    UTTM_ASSIGN_OR_RETURN(Mapping m, Mapping::Create(bos[i], kMapRead | kMapRestoreOnTouch, ctx));
    if (!m.restores_on_touch()) {
      return Status(Errc::kNotSupported, "working set: restore on touch is refused here");
    }
    touch_maps.push_back(std::move(m));
  }
  const std::uint64_t read0 = stats.Get(Stat::kStoreBytesRead);
  const std::uint64_t written0 = stats.Get(Stat::kStoreBytesWritten);
  Mutex mu;
  double restore_s = 0;
  std::uint64_t peak_rss = 0;
  std::atomic<std::uint64_t> rewrites{0};
  auto uttm_access = [&](std::size_t id, bool rewrite, std::size_t next) {
    if (p.prefetch && next != SIZE_MAX) (void)rt->Prefetch(bos[next]);  // a hint: may be refused
    if (p.touch && !rewrite) {
      const auto* w = reinterpret_cast<const std::uint64_t*>(touch_maps[id].data());
      if (!WsCheck(w, words, id, version[id])) return false;
      const std::uint64_t rss = ReadRssBytes();
      MutexLock lock(&mu);
      peak_rss = std::max(peak_rss, rss);
      return true;
    }
    OperationContext c;
    const auto t0 = Clock::now();
    Result<Mapping> m = Mapping::Create(bos[id], rewrite ? (kMapWrite | kMapDiscard) : kMapRead, c);
    if (!m.ok()) return false;
    const double map_s = Since(t0);
    auto* w = reinterpret_cast<std::uint64_t*>(m->data());
    if (rewrite) {
      WsFill(w, words, id, ++version[id]);
      rewrites.fetch_add(1, std::memory_order_relaxed);
    } else if (!WsCheck(w, words, id, version[id])) {
      return false;
    }
    const std::uint64_t rss = ReadRssBytes();
    MutexLock lock(&mu);
    if (c.pages_restored > 0) restore_s += map_s;
    peak_rss = std::max(peak_rss, rss);
    return true;
  };
  std::vector<double> lat;
  const auto t0 = Clock::now();
  if (!WsRunBoth(p, &lat, uttm_access)) {
    return Status(Errc::kFault, "working set: an access failed or read wrong bytes");
  }
  const double uttm_s = Since(t0);
  for (std::size_t i = 0; i < p.n; ++i) {  // every buffer verified at the end
    UTTM_ASSIGN_OR_RETURN(Mapping m, Mapping::Create(bos[i], kMapRead, ctx));
    if (!WsCheck(reinterpret_cast<const std::uint64_t*>(m.data()), words, i, version[i])) {
      return Status(Errc::kFault, "working set: the final check of a buffer failed");
    }
  }
  const std::uint64_t restored = stats.Get(Stat::kStoreBytesRead) - read0;
  const std::uint64_t written = stats.Get(Stat::kStoreBytesWritten) - written0;
  const std::uint64_t rewritten = rewrites.load() * p.size;
  touch_maps.clear();
  bos.clear();
  gpu->Drain();
  rt.reset();

  out.seconds = uttm_s;
  out.latencies = std::move(lat);
  out.restore_s = restore_s;
  out.restored = restored;
  out.written = written;
  out.rewritten = rewritten;
  out.peak_rss = peak_rss;
  return out;
}

}  // namespace

Result<WorkingSetResult> RunWorkingSet(const WorkingSet& p) {
  if (p.n < 2 || p.size < 8 || p.size % 8 != 0 || p.limit == 0 || p.accesses == 0) {
    return Status(Errc::kInvalid,
                  "working set: at least 2 buffers, a size that is a multiple of 8, "
                  "a page limit and some accesses");
  }
  WorkingSetResult res;
  const std::size_t words = p.size / 8;
  if (p.touch) {
    // The explicit-mapping mode first, in the same run: the touch mode's baseline.
    WorkingSet explicit_mode = p;
    explicit_mode.touch = false;
    UTTM_ASSIGN_OR_RETURN(WsPhase e, RunWorkingSetPhase(explicit_mode));
    res.explicit_accesses_per_s = static_cast<double>(p.accesses) / e.seconds;
  }
  UTTM_ASSIGN_OR_RETURN(WsPhase u, RunWorkingSetPhase(p));
  const double uttm_s = u.seconds;
  const std::vector<double>& lat = u.latencies;
  const double restore_s = u.restore_s;
  const std::uint64_t restored = u.restored;
  const std::uint64_t written = u.written;
  const std::uint64_t rewritten = u.rewritten;
  const std::uint64_t peak_rss = u.peak_rss;
  std::vector<std::uint32_t> version(p.n, 1);

  // Plain memory, no limit: the same accesses.
  std::vector<std::vector<std::uint64_t>> plain(p.n, std::vector<std::uint64_t>(words));
  std::fill(version.begin(), version.end(), 1);
  for (std::size_t i = 0; i < p.n; ++i) WsFill(plain[i].data(), words, i, 1);
  auto plain_access = [&](std::size_t id, bool rewrite, std::size_t) {
    if (rewrite) {
      WsFill(plain[id].data(), words, id, ++version[id]);
      return true;
    }
    return WsCheck(plain[id].data(), words, id, version[id]);
  };
  std::vector<double> plat;
  const auto p0 = Clock::now();
  if (!WsRunBoth(p, &plat, plain_access)) {
    return Status(Errc::kFault, "working set: a plain-memory access read wrong bytes");
  }
  const double plain_s = Since(p0);
  plain.clear();

  double raw_w = 0, raw_r = 0;
  const std::size_t raw_n = std::min<std::size_t>(p.n, 64);
  UTTM_RETURN_IF_ERROR(RawWriteRead(false, raw_n, p.size, &raw_w, &raw_r));
  const double accesses = static_cast<double>(p.accesses);
  res.accesses_per_s = accesses / uttm_s;
  res.plain_accesses_per_s = accesses / plain_s;
  res.restore_bytes_per_s = restore_s > 0 ? static_cast<double>(restored) / restore_s : 0;
  res.raw_pread_bytes_per_s = static_cast<double>(raw_n * p.size) / raw_r;
  res.p50_us = Percentile(lat, 0.5);
  res.p99_us = Percentile(lat, 0.99);
  res.plain_p50_us = Percentile(plat, 0.5);
  res.plain_p99_us = Percentile(plat, 0.99);
  res.peak_rss_bytes = peak_rss;
  res.restored_bytes = restored;
  res.written_bytes = written;
  res.rewritten_bytes = rewritten;
  return res;
}

namespace {

Status BenchWorkingSet(const WorkingSet& p, std::vector<Figure>* out) {
  UTTM_ASSIGN_OR_RETURN(WorkingSetResult r, RunWorkingSet(p));
  if (p.touch) {
    out->push_back({"working set: accesses on touch", "/s", r.accesses_per_s,
                    r.explicit_accesses_per_s, "explicit mappings, same run", true});
    return Status::Ok();
  }
  const double mib = 1 << 20;
  const double accesses = static_cast<double>(p.accesses);
  out->push_back({"working set: accesses", "/s", r.accesses_per_s, r.plain_accesses_per_s,
                  "plain memory, no limit", true});
  if (r.restore_bytes_per_s > 0) {
    out->push_back({"working set: restore", "MiB/s", r.restore_bytes_per_s / mib,
                    r.raw_pread_bytes_per_s / mib, "raw pread, fresh pages", true});
  }
  out->push_back(
      {"working set: p50 access", "us", r.p50_us, r.plain_p50_us, "plain memory", false});
  out->push_back(
      {"working set: p99 access", "us", r.p99_us, r.plain_p99_us, "plain memory", false});
  out->push_back({"working set: peak RSS", "MiB", static_cast<double>(r.peak_rss_bytes) / mib,
                  static_cast<double>(p.limit) / mib, "the page limit", false});
  if (r.rewritten_bytes > 0 && r.written_bytes > 0) {
    out->push_back({"working set: bytes written", "MiB", static_cast<double>(r.written_bytes) / mib,
                    static_cast<double>(r.rewritten_bytes) / mib, "bytes the workload rewrote",
                    false});
  }
  out->push_back({"working set: store traffic", "MiB",
                  static_cast<double>(r.restored_bytes + r.written_bytes) / mib,
                  accesses * static_cast<double>(p.size) / mib, "bytes accessed", false});
  return Status::Ok();
}

}  // namespace

int RunBench(bool quick, int rounds, const std::string& json_path) {
  const std::uint64_t total = quick ? (16u << 20) : (128u << 20);
  if (rounds <= 0) rounds = quick ? 3 : 5;
  std::vector<Figure> figs;
  std::vector<std::string> errors;
  // Each scenario's figures get its place in the table; a figure with a side measured as zero
  // (a clock that did not move) is an error, not a round with ratio 0.
  int scenario = 0;
  auto run = [&](int round, const char* name,
                 const std::function<Status(std::vector<Figure>*)>& fn) {
    std::vector<Figure> got;
    Status s = fn(&got);
    if (!s.ok()) errors.push_back(fmt::format("{} (round {}): {}", name, round + 1, s.ToString()));
    for (std::size_t i = 0; i < got.size(); ++i) {
      got[i].order = scenario * 16 + static_cast<int>(i);
      if (got[i].ratio() <= 0) {
        errors.push_back(
            fmt::format("{} (round {}): {} measured zero", name, round + 1, got[i].name));
      } else {
        figs.push_back(std::move(got[i]));
      }
    }
    ++scenario;
  };
  // Round by round, so a slow spell of the host hits one round of every scenario rather than
  // every round of one.
  for (int r = 0; r < rounds; ++r) {
    scenario = 0;
    run(r, "store file", [&](auto* out) { return BenchStore(false, total, out); });
    run(r, "store memfd", [&](auto* out) { return BenchStore(true, total, out); });
    run(r, "purge", [&](auto* out) { return BenchPurge(total, out); });
    run(r, "eviction",
        [&](auto* out) { return BenchEvict(quick ? (8u << 20) : (64u << 20), out); });
    run(r, "shrinker", [&](auto* out) { return BenchShrinker(total, out); });
    run(r, "demo", [&](auto* out) { return BenchDemo(quick ? 400 : 4000, out); });
    // The figure: 1024 x 4 MiB (4 GiB) over a 1 GiB page limit, 3000 accesses.
    run(r, "working set", [&](auto* out) {
      return BenchWorkingSet(quick
                                 ? WorkingSet{32, 1u << 20, 8u << 20, 300, false}
                                 : WorkingSet{1024, 4u << 20, std::uint64_t{1} << 30, 3000, false},
                             out);
    });
    // The same with restore-on-touch mappings, against explicit ones in the same run.
    run(r, "working set on touch", [&](auto* out) {
      WorkingSet p = quick ? WorkingSet{32, 1u << 20, 8u << 20, 300, false}
                           : WorkingSet{1024, 4u << 20, std::uint64_t{1} << 30, 3000, false};
      p.touch = true;
      Status s = BenchWorkingSet(p, out);
      if (s.code() != Errc::kNotSupported) return s;
      // userfaultfd refused to this process: nothing to compare, which is not a failure.
      if (r == 0)
        std::printf("working set on touch: not measured here (%s)\n", s.ToString().c_str());
      return Status::Ok();
    });
  }
  const std::vector<Summary> summaries = Summarise(figs);

  std::printf("%-32s %14s %14s  %-26s %8s %13s\n", "scenario", "uttm", "baseline", "baseline is",
              "ratio", "ratio range");
  for (const Summary& s : summaries) {
    const Figure& f = s.median;
    std::printf("%-32s %14s %14s  %-26s %8.2f %13s\n", f.name.c_str(),
                fmt::format("{:.1f} {}", f.uttm, f.unit).c_str(),
                fmt::format("{:.1f} {}", f.baseline, f.unit).c_str(), f.baseline_name.c_str(),
                s.ratio, fmt::format("{:.2f}-{:.2f}", s.ratio_min, s.ratio_max).c_str());
    if (s.rounds < static_cast<std::size_t>(rounds)) {
      std::printf("%-32s (from %zu of %d rounds; see the errors)\n", "", s.rounds, rounds);
    }
  }
  std::printf(
      "medians of %d rounds; ratio > 1: uttm faster than the baseline (ns figures: baseline / "
      "uttm); the ratio is the median of each round's paired ratio\n",
      rounds);
  std::fflush(stdout);
  for (const std::string& e : errors) std::fprintf(stderr, "uttm: error: bench %s\n", e.c_str());

  if (!json_path.empty()) {
    nlohmann::json j;
    j["schema"] = "uttm.bench";
    j["version"] = 2;  // 2: medians over rounds, ratio_min/ratio_max/rounds
    j["quick"] = quick;
    j["rounds"] = rounds;
    nlohmann::json arr = nlohmann::json::array();
    for (const Summary& s : summaries) {
      const Figure& f = s.median;
      arr.push_back({{"name", f.name},
                     {"unit", f.unit},
                     {"uttm", f.uttm},
                     {"baseline", f.baseline},
                     {"baseline_name", f.baseline_name},
                     {"higher_is_better", f.higher_is_better},
                     {"ratio", s.ratio},
                     {"ratio_min", s.ratio_min},
                     {"ratio_max", s.ratio_max},
                     {"rounds", s.rounds}});
    }
    j["scenarios"] = arr;
    j["errors"] = errors;
    Status s = WriteTextFile(json_path, j.dump(2) + "\n");
    if (!s.ok()) {
      std::fprintf(stderr, "uttm: error: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  return errors.empty() ? 0 : 1;
}

}  // namespace uttm::tool
