// Copyright (c) uttm developers.
//
// compressed_store_bench: the compressed RAM store (compressed_store.h) against the raw library
// calls it is built on, on the same pages in the same iteration:
//   BM_CompressedStore/codec/content   16 MiB of 4 KiB pages of one content (0 zeros, 1 repeated
//       text, 2 bf16 weights from a normal distribution, 3 random bytes), backed up into the store
//       and copied back, against a raw loop compressing each page (LZ4_compress_default or
//       ZSTD_compressCCtx at the store's level) and decompressing it (LZ4_decompress_safe,
//       ZSTD_decompressDCtx). Counters: backup_ratio and restore_ratio (raw time / store time;
//       goal >= 0.8), ratio (bytes in / compressed bytes held), for zeros same_filled_ratio (a
//       memcmp of each page against a zero page / the store's backup; goal >= 0.5), for bf16
//       plane_ratio (the compression ratio with BackupFlags::element_size = 2; goal >= 1.2).
//       cold_backup_ratio the same backup into a new store, whose memory all comes fresh from the
//       kernel. codec 0: lz4, 1: zstd (level 1).
// Run: build/release/bench/compressed_store_bench --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <lz4.h>
#include <zstd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "testing/content.h"
#include "testing/page_buffer.h"
#include "timing.h"
#include "uttm/compressed_store.h"
#include "uttm/stats.h"
#include "uttm/units.h"

namespace uttm {
namespace {

using bench::Clock;
using bench::Since;
constexpr std::size_t kPages = 4096;

void FillPages(std::byte* p, int content) {
  switch (content) {
    case 0:
      std::memset(p, 0, kPages * kPageSize);
      return;
    case 1: {
      for (std::size_t i = 0; i < kPages; ++i) {
        const std::string line =
            "page " + std::to_string(i) + ": the quick brown fox jumps over the lazy dog\n";
        for (std::size_t k = 0; k < kPageSize; ++k) {
          p[i * kPageSize + k] = static_cast<std::byte>(line[k % line.size()]);
        }
      }
      return;
    }
    case 2:
      testing::FillBf16Weights(std::span(p, kPages * kPageSize), 7);
      return;
    default:
      testing::FillContent({1, 1}, 0, std::span(p, kPages * kPageSize));
      return;
  }
}

void BM_CompressedStore(benchmark::State& state) {
  const bool zstd = state.range(0) == 1;
  const int content = static_cast<int>(state.range(1));
  testing::PageBuffer pages(kPages);
  testing::PageBuffer out(kPages);
  FillPages(pages.data(), content);
  const std::size_t bound =
      zstd ? ZSTD_compressBound(kPageSize) : static_cast<std::size_t>(LZ4_compressBound(kPageSize));
  std::vector<std::byte> raw(kPages * bound);
  std::vector<std::size_t> raw_len(kPages);
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::vector<std::byte> zero(kPageSize);
  Stats stats;
  CompressedStoreOptions o;
  o.codec = zstd ? CompressedStoreOptions::Codec::kZstd : CompressedStoreOptions::Codec::kLz4;
  o.stats = &stats;
  CompressedStoreOptions cold_o = o;
  Stats cold_stats;
  cold_o.stats = &cold_stats;
  // Warm: the slabs of one iteration stay as spares for the next (the steady state of a store
  // that drops as much as it backs up); cold: a new store each iteration takes all its memory
  // fresh from the kernel.
  o.spare_bytes = 2 * kPages * kPageSize;
  Result<std::unique_ptr<BackupStore>> store = NewCompressedStore(o);
  if (!store.ok()) {
    state.SkipWithError(store.status().ToString().c_str());
    return;
  }
  std::vector<BackupHandle> handles(kPages);
  double raw_c = 0, raw_d = 0, raw_cmp = 0, st_b = 0, st_r = 0, cold_b = 0, ratio = 0,
         plane_ratio = 0;
  std::size_t sink = 0;
  for (auto _ : state) {
    // The raw library calls, page by page.
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < kPages; ++i) {
      const std::byte* src = pages.data() + i * kPageSize;
      std::byte* dst = raw.data() + i * bound;
      if (zstd) {
        raw_len[i] = ZSTD_compressCCtx(cctx.get(), dst, bound, src, kPageSize, o.zstd_level);
      } else {
        raw_len[i] = static_cast<std::size_t>(
            LZ4_compress_default(reinterpret_cast<const char*>(src), reinterpret_cast<char*>(dst),
                                 static_cast<int>(kPageSize), static_cast<int>(bound)));
      }
    }
    raw_c += Since(t0);
    t0 = Clock::now();
    for (std::size_t i = 0; i < kPages; ++i) {
      const std::byte* src = raw.data() + i * bound;
      std::byte* dst = out.data() + i * kPageSize;
      if (zstd) {
        sink += ZSTD_decompressDCtx(dctx.get(), dst, kPageSize, src, raw_len[i]);
      } else {
        sink += static_cast<std::size_t>(
            LZ4_decompress_safe(reinterpret_cast<const char*>(src), reinterpret_cast<char*>(dst),
                                static_cast<int>(raw_len[i]), static_cast<int>(kPageSize)));
      }
    }
    raw_d += Since(t0);
    t0 = Clock::now();
    for (std::size_t i = 0; i < kPages; ++i) {
      sink += std::memcmp(pages.data() + i * kPageSize, zero.data(), kPageSize) == 0;
    }
    raw_cmp += Since(t0);
    // The store.
    t0 = Clock::now();
    Result<std::size_t> n = (*store)->BackupPages(pages.data(), kPages, {}, handles.data());
    st_b += Since(t0);
    if (!n.ok() || *n != kPages) {
      state.SkipWithError("the backup failed");
      return;
    }
    // Bytes in over compressed bytes held; zero pages hold none, so for them over the memory
    // the store holds (its entries).
    const auto held = content == 0
                          ? (*store)->BytesUsed()
                          : static_cast<std::uint64_t>(stats.Current(Stat::kZstorePayloadBytes));
    ratio = static_cast<double>(kPages * kPageSize) /
            static_cast<double>(std::max<std::uint64_t>(held, 1));
    t0 = Clock::now();
    const Status s = (*store)->CopyPages(handles.data(), kPages, out.data(), {});
    st_r += Since(t0);
    if (!s.ok() || std::memcmp(out.data(), pages.data(), kPages * kPageSize) != 0) {
      state.SkipWithError("the restore failed or differs");
      return;
    }
    (*store)->Drop(handles.data(), kPages);
    {
      Result<std::unique_ptr<BackupStore>> cold = NewCompressedStore(cold_o);
      t0 = Clock::now();
      n = cold.ok() ? (*cold)->BackupPages(pages.data(), kPages, {}, handles.data())
                    : Result<std::size_t>(cold.status());
      cold_b += Since(t0);
      if (!n.ok() || *n != kPages) {
        state.SkipWithError("the cold backup failed");
        return;
      }
    }
    if (content == 2) {
      n = (*store)->BackupPages(pages.data(), kPages, {.element_size = 2}, handles.data());
      if (!n.ok() || *n != kPages) {
        state.SkipWithError("the plane backup failed");
        return;
      }
      plane_ratio = static_cast<double>(kPages * kPageSize) /
                    static_cast<double>(stats.Current(Stat::kZstorePayloadBytes));
      (*store)->Drop(handles.data(), kPages);
    }
  }
  benchmark::DoNotOptimize(sink);
  state.counters["backup_ratio"] = raw_c / st_b;
  state.counters["cold_backup_ratio"] = raw_c / cold_b;
  state.counters["restore_ratio"] = raw_d / st_r;
  state.counters["backup_GBps"] = static_cast<double>(kPages * kPageSize) *
                                  static_cast<double>(state.iterations()) / st_b / 1e9;
  state.counters["restore_GBps"] = static_cast<double>(kPages * kPageSize) *
                                   static_cast<double>(state.iterations()) / st_r / 1e9;
  state.counters["ratio"] = ratio;
  if (content == 0) state.counters["same_filled_ratio"] = raw_cmp / st_b;
  if (content == 2) state.counters["plane_ratio"] = plane_ratio;
}
BENCHMARK(BM_CompressedStore)
    ->ArgsProduct({{0, 1}, {0, 1, 2, 3}})
    ->ArgNames({"codec", "content"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
