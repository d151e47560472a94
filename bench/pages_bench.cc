// Copyright (c) uttm developers.
//
// pages_bench: page provider, pools and page vectors against raw system calls measured in the
// same run. Pairs to compare (ratio = baseline time / uttm time, goal >= 0.8):
//   BM_Purge_1GiB               vs BM_Baseline_MadviseDontneed_1GiB
//   BM_Backup_1GiB_FileStore    vs raw 1 MiB pwrite of 1 GiB (same directory, $TMPDIR or /tmp)
//   BM_Restore_1GiB_FileStore   vs raw 1 MiB pread of 1 GiB into fresh memory
//                               Both are paired: the baseline runs interleaved with the uttm
//                               operation (64 MiB slices) and `ratio` is reported; quote its
//                               median.
//   BM_PoolHit_TakeGive/order   (median < 100 ns for order 0; includes the 4 KiB clear on give)
//                               vs BM_Baseline_Memset4KiB (the clearing share)
// Only the operation itself is timed (manual time); setup (faulting pages in, filling) is not.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "uttm/file_store.h"
#include "uttm/memory_context.h"
#include "uttm/page_vector.h"

namespace uttm {
namespace {

constexpr std::size_t kGiB = std::size_t{1} << 30;
constexpr std::size_t kVectorBytes = std::size_t{64} << 20;

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void Touch(std::byte* p, std::size_t bytes, unsigned seed) {
  for (std::size_t off = 0; off < bytes; off += kPageSize) {
    std::memset(p + off, static_cast<int>((off >> kPageShift) + seed), 64);
  }
}

std::vector<std::unique_ptr<PageVector>> MakeVectors(MemoryContext* ctx) {
  std::vector<std::unique_ptr<PageVector>> vs;
  for (std::size_t i = 0; i < kGiB / kVectorBytes; ++i) {
    auto v = PageVector::Create(ctx, {.size = Bytes(kVectorBytes)});
    if (!v.ok()) std::abort();
    vs.push_back(std::move(*v));
  }
  return vs;
}

void PopulateAndFill(std::vector<std::unique_ptr<PageVector>>& vs) {
  OperationContext op;
  for (auto& v : vs) {
    if (!v->Populate(op).ok()) std::abort();
    for (std::size_t i = 0; i < v->num_pages().value(); ++i) {
      std::memset(v->PageAddress(i), static_cast<int>(i), 64);
    }
  }
}

// Baseline: one madvise(MADV_DONTNEED) over 1 GiB of touched anonymous memory. Arg 1 asks for
// THP (MADV_HUGEPAGE on a 2 MiB aligned range), as the provider does; arg 0 uses 4 KiB pages.
void BM_Baseline_MadviseDontneed_1GiB(benchmark::State& state) {
  const std::size_t huge = std::size_t{2} << 20;
  for (auto _ : state) {
    void* raw =
        mmap(nullptr, kGiB + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) std::abort();
    auto* p = reinterpret_cast<void*>((reinterpret_cast<std::uintptr_t>(raw) + huge - 1) &
                                      ~(std::uintptr_t{huge} - 1));
    madvise(p, kGiB, state.range(0) != 0 ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    Touch(static_cast<std::byte*>(p), kGiB, 1);
    auto t0 = Clock::now();
    madvise(p, kGiB, MADV_DONTNEED);
    state.SetIterationTime(Seconds(t0, Clock::now()));
    munmap(raw, kGiB + huge);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kGiB));
}
BENCHMARK(BM_Baseline_MadviseDontneed_1GiB)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(1)
    ->Repetitions(5);

void BM_Purge_1GiB(benchmark::State& state) {
  MemoryContext ctx;
  for (auto _ : state) {
    auto vs = MakeVectors(&ctx);
    PopulateAndFill(vs);
    auto t0 = Clock::now();
    for (auto& v : vs) {
      if (!v->Backup({.purge = true}).ok()) std::abort();
    }
    state.SetIterationTime(Seconds(t0, Clock::now()));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kGiB));
}
BENCHMARK(BM_Purge_1GiB)->UseManualTime()->Iterations(1)->Repetitions(5);

void BM_Baseline_Memset4KiB(benchmark::State& state) {
  alignas(4096) static std::byte page[kPageSize];
  for (auto _ : state) {
    std::memset(page, 0, kPageSize);
    benchmark::DoNotOptimize(page);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Baseline_Memset4KiB)->Repetitions(5)->ReportAggregatesOnly(true);

void BM_PoolHit_TakeGive(benchmark::State& state) {
  MemoryContext ctx;
  PagePool& pool = ctx.pool();
  const PageOrder order(static_cast<unsigned>(state.range(0)));
  auto warm = pool.Allocate(Caching::kWriteCombined, order);
  if (!warm.ok()) std::abort();
  const std::span<const PageChunk> one(&warm->chunk, 1);
  if (warm->caching != Caching::kWriteCombined) {
    ctx.caching_hook().SetCaching(one, warm->caching, Caching::kWriteCombined);
  }
  pool.Give(one, Caching::kWriteCombined);
  for (auto _ : state) {
    auto chunk = pool.Take(Caching::kWriteCombined, order);
    if (!chunk) std::abort();
    pool.Give(std::span<const PageChunk>(&*chunk, 1), Caching::kWriteCombined);
  }
}
BENCHMARK(BM_PoolHit_TakeGive)->Arg(0)->Arg(4)->Repetitions(5)->ReportAggregatesOnly(true);

const char* Dir() {
  const char* d = std::getenv("TMPDIR");
  return d != nullptr && *d != 0 ? d : "/tmp";
}

int TmpFile() {
  int fd = open(Dir(), O_TMPFILE | O_RDWR, 0600);
  if (fd < 0) std::abort();
  return fd;
}

std::unique_ptr<BackupStore> Store() {
  FileStoreOptions options;
  options.directory = Dir();
  auto s = NewFileStore(options);
  if (!s.ok()) std::abort();
  return std::move(*s);
}

// Raw baseline for one 64 MiB slice: written (backup) or read back into fresh anonymous memory,
// as a restore gets fresh pages (restore), with 1 MiB pwrite / pread calls at `offset` of `fd`.
// Returns seconds.
double RawSlice(int fd, std::byte* src, std::size_t offset, bool restore) {
  std::byte* buf = src;
  if (restore) {
    buf = static_cast<std::byte*>(
        mmap(nullptr, kVectorBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (buf == MAP_FAILED) std::abort();
  }
  auto t0 = Clock::now();
  for (std::size_t off = 0; off < kVectorBytes; off += 1 << 20) {
    const off_t pos = static_cast<off_t>(offset + off);
    const ssize_t r =
        restore ? pread(fd, buf + off, 1 << 20, pos) : pwrite(fd, buf + off, 1 << 20, pos);
    if (r != (1 << 20)) std::abort();
  }
  const double secs = Seconds(t0, Clock::now());
  if (restore) munmap(buf, kVectorBytes);
  return secs;
}

// Backup (or restore) of 1 GiB in 64 MiB page vectors against the raw 1 MiB pwrite (pread) loop
// on the same file system. The host's speed drifts by tens of percent within seconds, so the
// two sides are interleaved slice by slice (64 MiB each, alternating which goes first) and
// summed: both see the same machine. The `ratio` counter (raw time / uttm time) is the goal's
// figure; quote its median over repetitions. Manual time is the uttm side.
void PairedFileStoreBench(benchmark::State& state, bool restore) {
  MemoryContext ctx;
  auto* src = static_cast<std::byte*>(
      mmap(nullptr, kGiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (src == MAP_FAILED) std::abort();
  Touch(src, kGiB, 2);
  double raw = 0;
  double ours = 0;
  for (auto _ : state) {
    raw = 0;
    ours = 0;
    const int fd = TmpFile();
    auto store = Store();
    auto vs = MakeVectors(&ctx);
    PopulateAndFill(vs);
    if (restore) {
      // Both sides need their data stored first (untimed).
      for (std::size_t i = 0; i < vs.size(); ++i) {
        RawSlice(fd, src + i * kVectorBytes, i * kVectorBytes, /*restore=*/false);
        auto n = vs[i]->Backup({}, store.get());
        if (!n.ok() || n->value() != vs[i]->num_pages().value()) std::abort();
      }
    }
    OperationContext op;
    for (std::size_t i = 0; i < vs.size(); ++i) {
      const bool raw_first = (i % 2) == 0;
      if (raw_first) raw += RawSlice(fd, src + i * kVectorBytes, i * kVectorBytes, restore);
      auto t0 = Clock::now();
      if (restore) {
        if (!vs[i]->Restore(op).ok()) std::abort();
      } else {
        auto n = vs[i]->Backup({}, store.get());
        if (!n.ok() || n->value() != vs[i]->num_pages().value()) std::abort();
      }
      ours += Seconds(t0, Clock::now());
      if (!raw_first) raw += RawSlice(fd, src + i * kVectorBytes, i * kVectorBytes, restore);
    }
    state.SetIterationTime(ours);
    close(fd);
  }
  munmap(src, kGiB);
  state.counters["raw_ms"] = raw * 1e3;
  state.counters["ratio"] = raw / ours;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kGiB));
}

void BM_Backup_1GiB_FileStore(benchmark::State& state) { PairedFileStoreBench(state, false); }
BENCHMARK(BM_Backup_1GiB_FileStore)->UseManualTime()->Iterations(1)->Repetitions(7);

void BM_Restore_1GiB_FileStore(benchmark::State& state) { PairedFileStoreBench(state, true); }
BENCHMARK(BM_Restore_1GiB_FileStore)->UseManualTime()->Iterations(1)->Repetitions(7);

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
