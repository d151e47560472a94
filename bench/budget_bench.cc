// Copyright (c) uttm developers.
//
// budget_bench: the cost of per-client budgets (budget.h), each against a baseline in the same
// run.
//   BM_BudgetCharge        a charge and an uncharge of a group three levels below the root
//       (four counters) against the same adds and subtracts on four plain atomics:
//       ns_per_pair, and ratio (budget time / plain time).
//   BM_BudgetEvictionWalk  256 allocations into a full VRAM of 1-page objects, each evicting the
//       least recently used one, on a device with budgets (three-level tree, every group with a
//       min and low it is above, so every victim is checked and found evictable) against the
//       same on a device without: walk_ratio (with / without; the goal <= 1.3).
// Run: build/release/bench/budget_bench --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <vector>

#include "testing/test_device.h"
#include "timing.h"
#include "uttm/budget.h"
#include "uttm/buffer_object.h"

namespace uttm {
namespace {

using bench::Clock;
using bench::Since;

void BM_BudgetCharge(benchmark::State& state) {
  BudgetTree tree;
  const int r = *tree.AddRegion("drm/bench/vram");
  BudgetGroup* a = *tree.AddGroup(nullptr, "a");
  BudgetGroup* b = *tree.AddGroup(a, "b");
  BudgetGroup* c = *tree.AddGroup(b, "c");
  (void)tree.SetLimit(a, r, BudgetLimit::kMax, 1ull << 40);
  (void)tree.SetLimit(b, r, BudgetLimit::kLow, 1ull << 30);
  (void)tree.SetLimit(c, r, BudgetLimit::kMin, 1ull << 20);
  std::atomic<std::uint64_t> plain[4] = {};
  constexpr int kPairs = 1 << 16;
  double with = 0, without = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    for (int i = 0; i < kPairs; ++i) {
      if (!tree.TryCharge(c, r, 4096).ok()) state.SkipWithError("charge refused");
      tree.Uncharge(c, r, 4096);
    }
    with += Since(t0);
    t0 = Clock::now();
    for (int i = 0; i < kPairs; ++i) {
      for (auto& p : plain) p.fetch_add(4096, std::memory_order_relaxed);
      for (auto& p : plain) p.fetch_sub(4096, std::memory_order_relaxed);
      benchmark::DoNotOptimize(plain);
    }
    without += Since(t0);
  }
  const double pairs = static_cast<double>(state.iterations()) * kPairs;
  state.counters["ns_per_pair"] = with / pairs * 1e9;
  state.counters["plain_ns"] = without / pairs * 1e9;
  state.counters["ratio"] = with / without;
}
BENCHMARK(BM_BudgetCharge)->Unit(benchmark::kMillisecond)->UseRealTime();

// Fills a 1024-page VRAM with 1-page objects of `clients` in turn, then times 256 more, each of
// which evicts one.
double EvictionRound(BudgetTree* tree, const std::vector<BudgetGroup*>& clients) {
  testing::TestDevice dev(PageCount(1024), Bytes(64 << 20), nullptr, nullptr, nullptr, tree);
  std::vector<BoRef> keep;
  OperationContext ctx;
  auto make = [&](std::size_t i) {
    BoOptions o;
    o.size = Bytes(kPageSize);
    o.client = clients.empty() ? nullptr : clients[i % clients.size()];
    auto bo = BufferObject::Create(dev.get(), o, testing::PlacementOf(kMemVram), ctx);
    if (bo.ok()) keep.push_back(*bo);
    return bo.ok();
  };
  for (std::size_t i = 0; i < 1024; ++i) make(i);
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < 256; ++i) make(i);
  const double t = Since(t0);
  keep.clear();
  dev->FlushDelayedDeletes();
  return t;
}

void BM_BudgetEvictionWalk(benchmark::State& state) {
  BudgetTree tree;
  BudgetGroup* top = *tree.AddGroup(nullptr, "top");
  std::vector<BudgetGroup*> clients;
  for (int t = 0; t < 2; ++t) {
    BudgetGroup* team = *tree.AddGroup(top, "team" + std::to_string(t));
    for (int c = 0; c < 4; ++c) clients.push_back(*tree.AddGroup(team, "c" + std::to_string(c)));
  }
  // Regions exist once a device registers them; set limits the groups stay above.
  {
    testing::TestDevice probe(PageCount(16), Bytes(1 << 20), nullptr, nullptr, nullptr, &tree);
    const int vram = probe->budget_region(kMemVram);
    for (BudgetGroup* g : tree.Groups()) {
      if (g == tree.root()) continue;
      (void)tree.SetLimit(g, vram, BudgetLimit::kMin, 4 * kPageSize);
      (void)tree.SetLimit(g, vram, BudgetLimit::kLow, 16 * kPageSize);
    }
  }
  double with = 0, without = 0;
  for (auto _ : state) {
    with += EvictionRound(&tree, clients);
    without += EvictionRound(nullptr, {});
  }
  state.counters["walk_ratio"] = with / without;
  state.counters["us_per_eviction"] =
      with / (256.0 * static_cast<double>(state.iterations())) * 1e6;
}
BENCHMARK(BM_BudgetEvictionWalk)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
