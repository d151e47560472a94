// Copyright (c) uttm developers.
//
// objects_bench: hot paths of devices, LRUs and buffer objects on the test device (real arenas
// and pages). Read per-operation medians (--benchmark_repetitions=5
// --benchmark_report_aggregates_only=true) and CPU time (the machine is shared):
//   BM_Baseline_MutexLockUnlock  a Mutex lock/unlock: the floor of every LRU operation;
//   BM_LruMoveToTail             lock LRU, move a resource to its tail, unlock (goal < 50 ns);
//   BM_ReserveUnreserveBump      Reserve + Unreserve of an object (the LRU bump of a use);
//   BM_CursorPerCandidate/N      ReservedBoCursor over N objects; counter per_candidate (< 300 ns);
//   BM_EvictWalkPerCandidate/N   a validation that walks N-1 objects not worth evicting, then
//                                evicts the last; counter per_candidate (< 300 ns);
//   BM_CreateDestroySystem/L     create (init + validate) and destroy a 4 KiB SYSTEM object with L
//                                other objects alive; L=1000000 should cost < 1.5x L=1000.
//   BM_Baseline_Copy4MiB         memcpy of 4 MiB: the staging copy a mapping avoids;
//   BM_MapUnmap4MiB/0            Mapping::Create + reset of a resident 4 MiB TT object whose pages
//                                are already end to end (goal < 2 us);
//   BM_MapUnmap4MiB/1            the same for 4 MiB - 4 KiB whose last page came from the pool
//                                elsewhere: mapped once (pages moved), then every map is free;
//   BM_FirstMapMoved4MiB         that first map: every chunk moved by mremap (the object is
//                                repopulated between iterations, untimed);
//   BM_MapDiscardBackedUp4MiB    map with kMapDiscard a backed-up 4 MiB object, unmap, back it up
//                                again; counter bytes_read must be 0 (no I/O for the map).
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <vector>

#include "testing/test_device.h"
#include "uttm/buffer_object.h"
#include "uttm/lru_walk.h"
#include "uttm/mapping.h"
#include "uttm/memfd_store.h"
#include "uttm/mutex.h"
#include "uttm/page_vector.h"

namespace uttm {
namespace {

using namespace unit_literals;
using testing::PlacementOf;
using testing::TestDevice;

std::vector<BoRef> MakeSystemObjects(Device* dev, std::size_t n) {
  std::vector<BoRef> bos;
  bos.reserve(n);
  OperationContext ctx;
  for (std::size_t i = 0; i < n; ++i) {
    auto bo = BufferObject::Create(dev, BoOptions{.size = 4_KiB}, PlacementOf(kMemSystem), ctx);
    if (!bo.ok()) std::abort();
    bos.push_back(std::move(bo).value());
  }
  return bos;
}

void BM_Baseline_MutexLockUnlock(benchmark::State& state) {
  Mutex mu;
  for (auto _ : state) {
    mu.Lock();
    benchmark::ClobberMemory();
    mu.Unlock();
  }
}
BENCHMARK(BM_Baseline_MutexLockUnlock);

void BM_LruMoveToTail(benchmark::State& state) {
  TestDevice dev;
  std::vector<BoRef> bos = MakeSystemObjects(dev.get(), 1000);
  std::vector<Resource*> res;
  for (auto& bo : bos) res.push_back(bo->resource());
  std::size_t i = 0;
  Lru& lru = dev->lru();
  for (auto _ : state) {
    MutexLock lock(lru.lock());
    lru.MoveToTail(res[i]);
    i = (i + 1 == res.size()) ? 0 : i + 1;
  }
}
BENCHMARK(BM_LruMoveToTail);

void BM_ReserveUnreserveBump(benchmark::State& state) {
  TestDevice dev;
  std::vector<BoRef> bos = MakeSystemObjects(dev.get(), 1000);
  std::size_t i = 0;
  OperationContext ctx;
  for (auto _ : state) {
    BufferObject& bo = *bos[i];
    Status s = bo.Reserve(ctx);
    benchmark::DoNotOptimize(s);
    bo.Unreserve();
    i = (i + 1 == bos.size()) ? 0 : i + 1;
  }
}
BENCHMARK(BM_ReserveUnreserveBump);

void BM_CursorPerCandidate(benchmark::State& state) {
  TestDevice dev;
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<BoRef> bos = MakeSystemObjects(dev.get(), n);
  OperationContext ctx;
  std::size_t visited = 0;
  for (auto _ : state) {
    ReservedBoCursor cursor(dev.get(), dev->manager(kMemSystem), LruWalkArg{.ctx = &ctx});
    for (;;) {
      auto next = cursor.Next();
      if (!next.ok() || *next == nullptr) break;
      ++visited;
    }
  }
  if (visited != n * state.iterations()) state.SkipWithError("the walk missed objects");
  state.counters["per_candidate"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                     benchmark::Counter::kInvert);
}
BENCHMARK(BM_CursorPerCandidate)->Arg(1000)->Arg(10000);

void BM_EvictWalkPerCandidate(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  TestDevice dev{PageCount(n)};
  // n one-page objects fill VRAM in LRU order; only the newest (page n - 1) intersects the place.
  std::vector<BoRef> bos;
  OperationContext ctx;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto bo = BufferObject::Create(dev.get(), BoOptions{.size = 4_KiB}, PlacementOf(kMemVram), ctx);
    if (!bo.ok()) std::abort();
    bos.push_back(std::move(bo).value());
  }
  Place last_page = testing::PlaceOf(kMemVram);
  last_page.fpfn = n - 1;
  last_page.lpfn = n;
  Placement want{last_page};
  for (auto _ : state) {
    auto fresh = BufferObject::Create(dev.get(), BoOptions{.size = 4_KiB}, want, ctx);
    if (!fresh.ok()) {
      state.SkipWithError("eviction failed");
      break;
    }
    state.PauseTiming();
    fresh->reset();
    BufferObject& victim = *bos.back();
    if (!victim.Reserve(ctx).ok() || !victim.Validate(want, ctx).ok()) std::abort();
    victim.Unreserve();
    state.ResumeTiming();
  }
  state.counters["per_candidate"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                     benchmark::Counter::kInvert);
}
BENCHMARK(BM_EvictWalkPerCandidate)->Arg(1000)->Arg(10000);

void BM_CreateDestroySystem(benchmark::State& state) {
  TestDevice dev;
  std::vector<BoRef> live = MakeSystemObjects(dev.get(), static_cast<std::size_t>(state.range(0)));
  OperationContext ctx;
  for (auto _ : state) {
    auto bo =
        BufferObject::Create(dev.get(), BoOptions{.size = 4_KiB}, PlacementOf(kMemSystem), ctx);
    benchmark::DoNotOptimize(bo);
  }
  state.counters["live"] = static_cast<double>(dev->bo_count());
  live.clear();
  dev->FlushDelayedDeletes();
}
BENCHMARK(BM_CreateDestroySystem)->Arg(1000)->Arg(1000000)->Unit(benchmark::kNanosecond);

void BM_Baseline_Copy4MiB(benchmark::State& state) {
  std::vector<std::byte> src((4_MiB).value(), std::byte{1});
  std::vector<std::byte> dst(src.size());
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Baseline_Copy4MiB);

// Write-combined single pages, every other one freed: the pool then holds scattered pages, and
// the last page of a 4 MiB - 4 KiB write-combined object comes from there. Returns the others.
std::vector<BoRef> ScatterTheWcPool(Device* dev) {
  OperationContext ctx;
  std::vector<BoRef> spacers;
  for (int i = 0; i < 64; ++i) {
    auto bo =
        BufferObject::Create(dev, BoOptions{.size = 4_KiB, .caching = Caching::kWriteCombined},
                             PlacementOf(kMemTt), ctx);
    if (!bo.ok()) std::abort();
    spacers.push_back(std::move(bo).value());
  }
  for (std::size_t i = 0; i < spacers.size(); i += 2) spacers[i].reset();
  return spacers;
}

void BM_MapUnmap4MiB(benchmark::State& state) {
  const bool scattered = state.range(0) != 0;
  MemoryContext memory;  // its own pages: fresh chunks lie end to end
  TestDevice dev(PageCount(256), Bytes(std::uint64_t{1} << 30), &memory);
  OperationContext ctx;
  std::vector<BoRef> spacers;
  if (scattered) spacers = ScatterTheWcPool(dev.get());
  const Bytes size = scattered ? Bytes((4_MiB).value() - 4096) : 4_MiB;
  auto bo =
      BufferObject::Create(dev.get(), BoOptions{.size = size, .caching = Caching::kWriteCombined},
                           PlacementOf(kMemTt), ctx);
  if (!bo.ok()) std::abort();
  bool moved = false;
  for (auto _ : state) {
    auto map = Mapping::Create(*bo, kMapRead | kMapWrite, ctx);
    if (!map.ok()) std::abort();
    moved = (*bo)->tt()->mapping_moved_pages();
    benchmark::DoNotOptimize(map->data());
  }
  state.counters["moved"] = moved ? 1 : 0;
}
BENCHMARK(BM_MapUnmap4MiB)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void BM_MapDiscardBackedUp4MiB(benchmark::State& state) {
  Stats stats;
  MemoryContextOptions mo;
  mo.stats = &stats;
  MemoryContext memory(mo);
  MemfdStoreOptions so;
  so.allow_without_swap = true;
  so.stats = &stats;
  auto store = NewMemfdStore(so);
  if (!store.ok()) std::abort();
  TestDevice dev(PageCount(256), Bytes(std::uint64_t{1} << 30), &memory, store->get());
  OperationContext ctx;
  auto bo = BufferObject::Create(dev.get(), BoOptions{.size = 4_MiB}, PlacementOf(kMemTt), ctx);
  if (!bo.ok()) std::abort();
  std::uint64_t read = 0;
  for (auto _ : state) {
    state.PauseTiming();
    if (!(*bo)->tt()->Backup({}).ok()) std::abort();
    const std::uint64_t before = stats.Get(Stat::kStoreBytesRead);
    state.ResumeTiming();
    auto map = Mapping::Create(*bo, kMapWrite | kMapDiscard, ctx);
    if (!map.ok()) std::abort();
    map->reset();
    read += stats.Get(Stat::kStoreBytesRead) - before;
  }
  state.counters["bytes_read"] = static_cast<double>(read);
}
BENCHMARK(BM_MapDiscardBackedUp4MiB)->Unit(benchmark::kMicrosecond);

void BM_FirstMapMoved4MiB(benchmark::State& state) {
  MemoryContext memory;
  TestDevice dev(PageCount(256), Bytes(std::uint64_t{1} << 30), &memory);
  OperationContext ctx;
  std::vector<BoRef> spacers = ScatterTheWcPool(dev.get());
  auto bo = BufferObject::Create(
      dev.get(),
      BoOptions{.size = Bytes((4_MiB).value() - 4096), .caching = Caching::kWriteCombined},
      PlacementOf(kMemTt), ctx);
  if (!bo.ok()) std::abort();
  PageVector* tt = (*bo)->tt();
  bool moved = true;
  for (auto _ : state) {
    state.PauseTiming();
    tt->Unpopulate();  // moves the pages home and frees them; the pool keeps the scattered page
    if (!tt->Populate(ctx).ok()) std::abort();
    state.ResumeTiming();
    auto map = Mapping::Create(*bo, kMapRead | kMapWrite, ctx);
    if (!map.ok()) std::abort();
    moved = moved && tt->mapping_moved_pages();
  }
  state.counters["moved"] = moved ? 1 : 0;
}
BENCHMARK(BM_FirstMapMoved4MiB)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
