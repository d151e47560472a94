// Copyright (c) uttm developers.
//
// base_bench: the cost of the base layer on hot paths. A disarmed fault point and a counter bump
// sit on every page operation, so both must be a few nanoseconds; the baseline is an empty loop
// body (benchmark::DoNotOptimize of a counter).
#include <benchmark/benchmark.h>

#include "base/intrusive_list.h"
#include "uttm/fault_injection.h"
#include "uttm/stats.h"

#include <memory>

namespace uttm {
namespace {

void BM_Baseline_Increment(benchmark::State& state) {
  std::uint64_t x = 0;
  for (auto _ : state) benchmark::DoNotOptimize(++x);
}
BENCHMARK(BM_Baseline_Increment);

void BM_FaultPoint_Disarmed(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ShouldFail(FaultPoint::kStoreWrite));
}
BENCHMARK(BM_FaultPoint_Disarmed);

void BM_Stats_CounterAdd(benchmark::State& state) {
  static Stats stats;
  for (auto _ : state) stats.Add(Stat::kPagesBackedUp);
}
BENCHMARK(BM_Stats_CounterAdd)->Threads(1)->Threads(2);

struct Tag {};
struct Item : ListLink<Tag> {
  Item() : ListLink<Tag>(1) {}
};

void BM_IntrusiveList_MoveToTail(benchmark::State& state) {
  IntrusiveList<Item, Tag, 1> list;
  auto items = std::make_unique<Item[]>(1024);
  for (int i = 0; i < 1024; ++i) list.PushBack(&items[i]);
  std::size_t k = 0;
  for (auto _ : state) {
    list.MoveToTail(&items[k]);
    k = (k + 7) & 1023;
  }
  for (int i = 0; i < 1024; ++i) decltype(list)::Remove(&items[i]);
}
BENCHMARK(BM_IntrusiveList_MoveToTail);

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
