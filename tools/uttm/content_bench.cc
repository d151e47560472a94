// Copyright (c) uttm developers.
//
// Speed of the verification pattern: FillPages and VerifyPages against memcpy and memcmp of the
// same size measured in the same run (the baselines). Compare bytes_per_second of the pairs.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "content.h"
#include "uttm/units.h"

namespace uttm::tool {
namespace {

constexpr std::uint64_t kPages = 256;  // 1 MiB: stays in L2/L3 like a restored chunk would

void BM_MemcpyBaseline(benchmark::State& state) {
  std::vector<std::uint64_t> src(kPages * kPageSize / 8, 7), dst(src.size());
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), kPages * kPageSize);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kPages * kPageSize));
}
BENCHMARK(BM_MemcpyBaseline);

void BM_FillPages(benchmark::State& state) {
  std::vector<std::uint64_t> dst(kPages * kPageSize / 8);
  ContentKey key{1, 2, 3};
  for (auto _ : state) {
    FillPages(dst.data(), key, 0, kPages);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kPages * kPageSize));
}
BENCHMARK(BM_FillPages);

void BM_MemcmpBaseline(benchmark::State& state) {
  std::vector<std::uint64_t> a(kPages * kPageSize / 8, 7), b(a);
  for (auto _ : state) {
    benchmark::DoNotOptimize(std::memcmp(a.data(), b.data(), kPages * kPageSize));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kPages * kPageSize));
}
BENCHMARK(BM_MemcmpBaseline);

void BM_VerifyPages(benchmark::State& state) {
  std::vector<std::uint64_t> buf(kPages * kPageSize / 8);
  ContentKey key{1, 2, 3};
  FillPages(buf.data(), key, 0, kPages);
  for (auto _ : state) {
    benchmark::DoNotOptimize(VerifyPages(buf.data(), key, 0, kPages));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kPages * kPageSize));
}
BENCHMARK(BM_VerifyPages);

}  // namespace
}  // namespace uttm::tool

BENCHMARK_MAIN();
