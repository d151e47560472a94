// Copyright (c) uttm developers.
//
// shrink_bench: the driver shrinker's cost, as ratios against baselines of the same run.
//
//   BM_ShrinkerCount          BoShrinker::Count with a populated device (64 objects) and a file
//                             store (goal < 100 ns per call).
//   BM_ScanThroughput         256 MiB of populated 16 MiB objects backed up through
//                             BoShrinker::Scan (direct context) to a FileStore in $TMPDIR,
//                             versus raw pwrite of the same bytes from populated memory to a file
//                             in the same directory, interleaved object by object. Counters:
//                             shrink_MiBps, raw_MiBps and ratio = shrink / raw (goal >= 0.7);
//                             quote the median over repetitions. Restoring between repetitions
//                             is not timed.
//   BM_PurgeOnlySwapout       1 GiB of don't-need 4 MiB objects in TT purged by GlobalSwapout with
//                             ShrinkReason::kPurge, called until it frees nothing (the pages go
//                             back to the OS: the pool keeps none), versus a raw
//                             madvise(MADV_DONTNEED) in 4 MiB steps of 1 GiB of the same kind of
//                             memory (anonymous, 2 MiB aligned, MADV_HUGEPAGE, populated). Counters
//                             purge_GiBps, raw_GiBps, ratio = raw time / purge time (goal >= 0.8).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "testing/test_device.h"
#include "uttm/bo_shrinker.h"
#include "uttm/bo_swapout.h"
#include "uttm/buffer_object.h"
#include "uttm/file_store.h"

namespace {

using uttm::BoRef;
using uttm::BufferObject;
using uttm::Bytes;
using uttm::PageCount;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMiB = 1u << 20;

struct Rig {
  explicit Rig(int objects, std::uint64_t bytes) {
    auto fs = uttm::NewFileStore();
    if (!fs.ok()) std::abort();
    store = std::move(fs).value();
    dev = std::make_unique<uttm::testing::TestDevice>(
        PageCount(256), Bytes(4096 * kMiB), &memory, store.get(), [&](uttm::DeviceFuncs* d) {
          shrinker = std::make_unique<uttm::BoShrinker>(d);
          return shrinker->funcs();
        });
    if (!shrinker->Attach(dev->get()).ok()) std::abort();
    std::vector<std::byte> data(bytes, std::byte{0x5a});
    for (int i = 0; i < objects; ++i) {
      uttm::OperationContext ctx;
      uttm::BoOptions opts;
      opts.size = Bytes(bytes);
      auto bo =
          BufferObject::Create(dev->get(), opts, uttm::testing::PlacementOf(uttm::kMemTt), ctx);
      if (!bo.ok() || !(*bo)->Write(0, data, ctx).ok()) std::abort();
      bos.push_back(*bo);
    }
  }
  ~Rig() {
    bos.clear();
    dev.reset();
  }
  void RestoreAll() {
    for (BoRef& bo : bos) {
      uttm::OperationContext ctx;
      if (!bo->Reserve(ctx).ok()) std::abort();
      bo->resv()->AssertHeld();
      if (!bo->Validate(uttm::testing::PlacementOf(uttm::kMemTt), ctx).ok() ||
          !bo->Populate(ctx).ok()) {
        std::abort();
      }
      bo->Unreserve();
    }
  }

  uttm::MemoryContext memory;
  std::unique_ptr<uttm::BackupStore> store;
  std::unique_ptr<uttm::BoShrinker> shrinker;
  std::unique_ptr<uttm::testing::TestDevice> dev;
  std::vector<BoRef> bos;
};

void BM_ShrinkerCount(benchmark::State& state) {
  Rig rig(64, kMiB);
  uttm::ShrinkControl sc;
  sc.reclaim = {.may_fs = true, .may_io = true, .background = false};
  std::uint64_t sum = 0;
  for (auto _ : state) {
    sum += rig.shrinker->Count(sc);
    benchmark::DoNotOptimize(sum);
  }
  state.counters["count"] = static_cast<double>(rig.shrinker->Count(sc));
}
BENCHMARK(BM_ShrinkerCount);

std::string TmpDir() {
  const char* t = std::getenv("TMPDIR");
  return (t != nullptr && *t != '\0') ? t : "/tmp";
}

void BM_ScanThroughput(benchmark::State& state) {
  constexpr int kObjects = 16;
  constexpr std::uint64_t kBo = 16 * kMiB;
  constexpr std::uint64_t kTotal = kObjects * kBo;
  Rig rig(kObjects, kBo);
  // Raw baseline source: populated memory of the same size.
  auto* src = static_cast<std::byte*>(
      mmap(nullptr, kTotal, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (src == MAP_FAILED) std::abort();
  std::memset(src, 0x5a, kTotal);
  const std::string dir = TmpDir();
  double shrink_s = 0;
  double raw_s = 0;
  for (auto _ : state) {
    shrink_s = 0;
    raw_s = 0;
    // The raw side writes the same bytes with pwrite to a fresh unnamed file in the same
    // directory. The host's speed drifts within seconds, so the sides are interleaved object by
    // object (alternating which goes first): each Scan asks for one object's pages, so it backs
    // up one object (pass A, direct context), and each raw step writes 16 MiB.
    int fd = open(dir.c_str(), O_TMPFILE | O_RDWR, 0600);
    if (fd < 0) std::abort();
    std::uint64_t freed = 0;
    for (int i = 0; i < kObjects; ++i) {
      const bool raw_first = (i % 2) == 0;
      auto raw_step = [&] {
        auto t0 = Clock::now();
        if (pwrite(fd, src + i * kBo, kBo, static_cast<off_t>(i * kBo)) !=
            static_cast<ssize_t>(kBo)) {
          std::abort();
        }
        raw_s += std::chrono::duration<double>(Clock::now() - t0).count();
      };
      if (raw_first) raw_step();
      uttm::ShrinkControl sc;
      sc.nr_to_scan = kBo / uttm::kPageSize;
      sc.reclaim = {.may_fs = true, .may_io = true, .background = false};
      auto t0 = Clock::now();
      freed += rig.shrinker->Scan(sc);
      shrink_s += std::chrono::duration<double>(Clock::now() - t0).count();
      if (!raw_first) raw_step();
    }
    close(fd);
    if (freed != kTotal / uttm::kPageSize) {
      state.SkipWithError("shrinker did not back everything up");
      break;
    }
    state.SetIterationTime(shrink_s);
    rig.RestoreAll();  // untimed: manual time counts the scans only
  }
  munmap(src, kTotal);
  state.counters["shrink_MiBps"] = static_cast<double>(kTotal) / kMiB / shrink_s;
  state.counters["raw_MiBps"] = static_cast<double>(kTotal) / kMiB / raw_s;
  state.counters["ratio"] = raw_s / shrink_s;
}
BENCHMARK(BM_ScanThroughput)
    ->UseManualTime()
    ->Iterations(1)
    ->Repetitions(7)
    ->Unit(benchmark::kMillisecond);

void BM_PurgeOnlySwapout(benchmark::State& state) {
  constexpr std::uint64_t kBo = 4 * kMiB;
  constexpr std::uint64_t kTotal = 1024 * kMiB;
  uttm::MemoryContextOptions mo;
  mo.pages_limit = PageCount(2 * kTotal / uttm::kPageSize);
  mo.page_pool_size = PageCount(1);  // purged pages go back to the OS, as madvise gives them
  uttm::MemoryContext memory(mo);
  uttm::testing::TestDevice dev(PageCount(256), Bytes(2 * kTotal), &memory);
  double purge_s = 0, raw_s = 0;
  for (auto _ : state) {
    std::vector<BoRef> bos;
    for (std::uint64_t made = 0; made < kTotal; made += kBo) {
      uttm::OperationContext ctx;
      uttm::BoOptions opts;
      opts.size = Bytes(kBo);
      auto bo =
          BufferObject::Create(dev.get(), opts, uttm::testing::PlacementOf(uttm::kMemTt), ctx);
      if (!bo.ok() || !(*bo)->Reserve(ctx).ok()) std::abort();
      (*bo)->resv()->AssertHeld();
      if (!(*bo)->Populate(ctx).ok()) std::abort();
      (*bo)->Unreserve();
      if (!(*bo)->Madvise(uttm::Madvice::kDontNeed, ctx).ok()) std::abort();
      bos.push_back(*bo);
    }
    auto t0 = Clock::now();
    std::uint64_t freed = 0;
    for (;;) {
      uttm::OperationContext ctx;
      auto r = uttm::GlobalSwapout(ctx, memory, uttm::ShrinkReason::kPurge);
      if (!r.ok()) std::abort();
      if (*r == 0) break;
      freed += *r;
    }
    purge_s += std::chrono::duration<double>(Clock::now() - t0).count();
    if (freed != kTotal / uttm::kPageSize || memory.pages_allocated().value() != 0) {
      state.SkipWithError("the purge-only swapout did not purge every object");
      return;
    }
    bos.clear();
    dev->FlushDelayedDeletes();
    // The raw side: the same memory as the page provider's (anonymous, 2 MiB aligned, huge
    // pages asked for, faulted in with MADV_POPULATE_WRITE), released with madvise.
    constexpr std::uint64_t kAlign = 2 * kMiB;
    auto* map = static_cast<std::byte*>(
        mmap(nullptr, kTotal + kAlign, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (map == MAP_FAILED) std::abort();
    auto* mem = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(map) + kAlign - 1) &
                                             ~(kAlign - 1));
    madvise(mem, kTotal, MADV_HUGEPAGE);
    if (madvise(mem, kTotal, 23 /* MADV_POPULATE_WRITE */) != 0) {
      for (std::uint64_t off = 0; off < kTotal; off += uttm::kPageSize) mem[off] = std::byte{1};
    }
    t0 = Clock::now();
    for (std::uint64_t off = 0; off < kTotal; off += kBo) {
      if (madvise(mem + off, kBo, MADV_DONTNEED) != 0) std::abort();
    }
    raw_s += std::chrono::duration<double>(Clock::now() - t0).count();
    munmap(map, kTotal + kAlign);
    state.SetIterationTime(purge_s);
  }
  const double gib =
      static_cast<double>(kTotal) / (1024.0 * kMiB) * static_cast<double>(state.iterations());
  state.counters["purge_GiBps"] = gib / purge_s;
  state.counters["raw_GiBps"] = gib / raw_s;
  state.counters["ratio"] = raw_s / purge_s;
}
BENCHMARK(BM_PurgeOnlySwapout)
    ->UseManualTime()
    ->Iterations(1)
    ->Repetitions(5)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
