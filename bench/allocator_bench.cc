// Copyright (c) uttm developers.
//
// allocator_bench: the device-memory range allocators under steady churn.
//
// Workload (the Objects issue): an 8 GiB domain in 4 KiB units (2 Mi units), requests of a
// uniformly random 1..512 units (4 KiB .. 2 MiB), held at 97 % full. Setup fills the domain to
// 97 %; each timed iteration frees one random live allocation and then allocates new random
// requests until the domain is back at 97 % (one alloc on average). Time per iteration = one
// alloc+free pair. Counters: failed allocations per pair (a failure frees another victim).
//
// Baseline in the same run: an rbtree best-fit allocator from the standard library (holes in a
// std::set keyed (size, start) plus a std::map keyed by start for coalescing), the textbook
// structure drm_mm's best-fit mode is built on.
//
// Also the port of gpu_buddy_test.c's fragmentation_performance (4 GiB, 8 KiB blocks at 64 KiB
// alignment freed as clear/dirty, then 64 KiB requests; and the reverse-order free).
//
// Run: build/release/bench/allocator_bench --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "resource/buddy_allocator.h"
#include "resource/range_allocator.h"

namespace uttm {
namespace {

constexpr std::uint64_t kDomainUnits = std::uint64_t{8} << 30 >> 12;  // 8 GiB of 4 KiB
constexpr std::uint64_t kMaxRequest = 512;                            // 2 MiB
constexpr std::uint64_t kTarget = kDomainUnits * 97 / 100;

struct Rng {
  std::uint64_t s = 0x9e3779b97f4a7c15ull;
  std::uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  std::uint64_t Request() { return 1 + Next() % kMaxRequest; }
};

// Drives one allocator through the churn. A must provide: bool Alloc(size, slot*), void
// Free(slot), with slots drawn from a fixed table so no per-operation heap use is timed.
template <typename A>
void RunChurn(benchmark::State& state, A& a) {
  Rng rng;
  std::vector<std::uint32_t> live;
  std::vector<std::uint64_t> sizes(a.capacity());
  std::vector<std::uint32_t> free_slots;
  for (std::uint32_t i = a.capacity(); i-- > 0;) free_slots.push_back(i);
  std::uint64_t used = 0;
  std::uint64_t failures = 0;
  auto alloc_one = [&]() {
    const std::uint64_t size = rng.Request();
    const std::uint32_t slot = free_slots.back();
    if (!a.Alloc(size, slot)) return false;
    free_slots.pop_back();
    sizes[slot] = size;
    live.push_back(slot);
    used += size;
    return true;
  };
  auto free_random = [&]() {
    const std::size_t i = rng.Next() % live.size();
    const std::uint32_t slot = live[i];
    live[i] = live.back();
    live.pop_back();
    a.Free(slot);
    used -= sizes[slot];
    free_slots.push_back(slot);
  };
  while (used < kTarget) {
    if (!alloc_one()) free_random();
  }
  for (auto _ : state) {
    free_random();
    while (used < kTarget) {
      if (!alloc_one()) {
        ++failures;
        free_random();
      }
    }
  }
  state.counters["fail_per_pair"] =
      benchmark::Counter(static_cast<double>(failures), benchmark::Counter::kAvgIterations);
  state.counters["live"] = static_cast<double>(live.size());
}

constexpr std::uint32_t kSlots = 64 * 1024;

class RangeChurn {
 public:
  explicit RangeChurn(RangeInsertMode mode)
      : nodes_(new RangeNode[kSlots]), mm_(0, kDomainUnits), mode_(mode) {}
  std::uint32_t capacity() const { return kSlots; }
  bool Alloc(std::uint64_t size, std::uint32_t slot) {
    RangeInsertOptions o;
    o.mode = mode_;
    return mm_.InsertNode(&nodes_[slot], size, o).ok();
  }
  void Free(std::uint32_t slot) { (void)mm_.RemoveNode(&nodes_[slot]); }

 private:
  std::unique_ptr<RangeNode[]> nodes_;  // outlives mm_, which detaches them on destruction
  RangeAllocator mm_;
  RangeInsertMode mode_;
};

class BuddyChurn {
 public:
  BuddyChurn() : blocks_(kSlots) { (void)mm_.Init(kDomainUnits, 1); }
  ~BuddyChurn() {
    for (auto& b : blocks_) (void)mm_.FreeBlocks(&b, 0);
    (void)mm_.Fini();
  }
  std::uint32_t capacity() const { return kSlots; }
  bool Alloc(std::uint64_t size, std::uint32_t slot) {
    if (!mm_.AllocBlocks(0, kDomainUnits, size, 1, 0, &blocks_[slot]).ok()) return false;
    blocks_handed_out_ += blocks_[slot].size();
    ++allocations_;
    return true;
  }
  double blocks_per_allocation() const {
    return static_cast<double>(blocks_handed_out_) / static_cast<double>(allocations_);
  }
  void Free(std::uint32_t slot) { (void)mm_.FreeBlocks(&blocks_[slot], 0); }

 private:
  BuddyAllocator mm_;
  std::vector<std::vector<BuddyBlockId>> blocks_;
  std::uint64_t blocks_handed_out_ = 0;
  std::uint64_t allocations_ = 0;
};

// The baseline: best fit over std::set<(size, start)>, coalescing through std::map<start, end>.
class StdMapBestFit {
 public:
  StdMapBestFit() : starts_(kSlots) {
    by_start_.emplace(0, kDomainUnits);
    by_size_.emplace(kDomainUnits, 0);
  }
  std::uint32_t capacity() const { return kSlots; }
  bool Alloc(std::uint64_t size, std::uint32_t slot) {
    auto it = by_size_.lower_bound({size, 0});
    if (it == by_size_.end()) return false;
    const auto [hole_size, hole_start] = *it;
    by_size_.erase(it);
    by_start_.erase(hole_start);
    if (hole_size > size) {
      by_start_.emplace(hole_start + size, hole_start + hole_size);
      by_size_.emplace(hole_size - size, hole_start + size);
    }
    starts_[slot] = {hole_start, size};
    return true;
  }
  void Free(std::uint32_t slot) {
    std::uint64_t start = starts_[slot].first;
    std::uint64_t end = start + starts_[slot].second;
    auto next = by_start_.lower_bound(start);
    if (next != by_start_.end() && next->first == end) {
      end = next->second;
      by_size_.erase({next->second - next->first, next->first});
      next = by_start_.erase(next);
    }
    if (next != by_start_.begin()) {
      auto prev = std::prev(next);
      if (prev->second == start) {
        start = prev->first;
        by_size_.erase({prev->second - prev->first, prev->first});
        by_start_.erase(prev);
      }
    }
    by_start_.emplace(start, end);
    by_size_.emplace(end - start, start);
  }

 private:
  std::map<std::uint64_t, std::uint64_t> by_start_;
  std::set<std::pair<std::uint64_t, std::uint64_t>> by_size_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> starts_;
};

void BM_Churn97_Baseline_StdSetBestFit(benchmark::State& state) {
  StdMapBestFit a;
  RunChurn(state, a);
}
BENCHMARK(BM_Churn97_Baseline_StdSetBestFit);

void BM_Churn97_RangeAllocator_Best(benchmark::State& state) {
  RangeChurn a(RangeInsertMode::kBest);
  RunChurn(state, a);
}
BENCHMARK(BM_Churn97_RangeAllocator_Best);

void BM_Churn97_BuddyAllocator(benchmark::State& state) {
  BuddyChurn a;
  RunChurn(state, a);
  state.counters["blocks_per_alloc"] = a.blocks_per_allocation();
}
BENCHMARK(BM_Churn97_BuddyAllocator);

// gpu_test_buddy_fragmentation_performance, first half: the timed part is 4 GiB of 8 KiB blocks
// at 64 KiB alignment, freed a quarter-pattern as clear and the rest dirty (no coalescing), then
// 65536 requests of 64 KiB and their free. Times one whole scenario per iteration.
void BM_GpuBuddy_FragmentationPerformance(benchmark::State& state) {
  constexpr std::uint64_t kSize = std::uint64_t{4} << 30;
  constexpr std::uint64_t kPs = 4096;
  constexpr std::uint64_t kNum = kSize / (64 * 1024);
  const bool reverse = state.range(0) != 0;
  for (auto _ : state) {
    BuddyAllocator mm;
    (void)mm.Init(kSize, kPs);
    std::vector<BuddyBlockId> all, a, b;
    for (std::uint64_t i = 0; i < kNum; ++i) {
      if (!mm.AllocBlocks(0, kSize, 8 * 1024, 64 * 1024, 0, &all).ok()) {
        state.SkipWithError("fragmenting allocation failed");
        return;
      }
    }
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (reverse) {
        (i % 2 == 0 ? a : b).push_back(all[i]);
      } else {
        (i % 4 == 0 || i % 4 == 3 ? a : b).push_back(all[i]);
      }
    }
    if (!reverse) {
      (void)mm.FreeBlocks(&a, kBuddyCleared);
      (void)mm.FreeBlocks(&b, 0);
      std::vector<BuddyBlockId> test;
      for (std::uint64_t i = 0; i < kNum; ++i) {
        if (!mm.AllocBlocks(0, kSize, 64 * 1024, 64 * 1024, 0, &test).ok()) {
          state.SkipWithError("64 KiB allocation failed");
          return;
        }
      }
      (void)mm.FreeBlocks(&test, 0);
    } else {
      (void)mm.FreeBlocks(&a, kBuddyCleared);
      std::vector<BuddyBlockId> rev(b.rbegin(), b.rend());
      (void)mm.FreeBlocks(&rev, kBuddyCleared);
    }
    (void)mm.Fini();
  }
}
BENCHMARK(BM_GpuBuddy_FragmentationPerformance)
    ->ArgName("reverse_free")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
