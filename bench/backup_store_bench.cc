// Copyright (c) uttm developers.
//
// backup_store_bench: throughput of the backup stores as a ratio against raw I/O on the same
// medium, measured in the same iteration (so host noise hits both alike):
//   FileStore backup  (1 GiB in 64 MiB BackupPages calls)  vs a raw 1 MiB pwrite loop, fresh file
//   FileStore restore (1 GiB in 64 MiB CopyPages calls, cold cache) vs a raw 1 MiB pread loop
//   MemfdStore backup (1 GiB in 64 MiB calls)             vs a raw 2 MiB pwrite loop, fresh memfd
//   MemfdStore backup of scattered 4 KiB pages (BackupPageList, 256 MiB) vs the same raw loop
// Arg 1 on the file cases = O_DIRECT for both sides. Each case reports the counters
// ratio_vs_raw (raw time / store time; 1.0 = as fast as raw), store_GBps and raw_GBps.
// Goals: file backup and restore >= 0.8, memfd backup >= 0.7.
//
// Environment: UTTM_BENCH_DIR (default $TMPDIR or /tmp), UTTM_BENCH_MIB (default 1024).
// Run: build/release/bench/backup_store_bench --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "uttm/backup_store.h"
#include "uttm/file_store.h"
#include "uttm/memfd_store.h"
#include "uttm/units.h"

namespace uttm {
namespace {

constexpr std::size_t kBufferBytes = std::size_t{64} << 20;
constexpr std::size_t kBufferPages = kBufferBytes / kPageSize;

std::size_t TotalBytes() {
  const char* mib = std::getenv("UTTM_BENCH_MIB");
  std::size_t n = mib ? std::strtoull(mib, nullptr, 10) : 1024;
  n = std::max<std::size_t>(64, n / 64 * 64);
  return n << 20;
}

std::string BenchDir() {
  for (const char* var : {"UTTM_BENCH_DIR", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && v[0] != '\0') return v;
  }
  return "/tmp";
}

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<std::byte, FreeDeleter>;

// A page-aligned buffer of random bytes (every page distinct, as real page contents are).
Buffer RandomBuffer(std::size_t bytes) {
  Buffer b(static_cast<std::byte*>(std::aligned_alloc(kPageSize, bytes)));
  std::mt19937_64 rng(7);
  auto* w = reinterpret_cast<std::uint64_t*>(b.get());
  for (std::size_t i = 0; i < bytes / 8; ++i) w[i] = rng();
  return b;
}

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::perror(what);
    std::abort();
  }
}

int OpenRawFile(bool direct) {
  int fd =
      ::open(BenchDir().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0), 0600);
  Check(fd >= 0, "open O_TMPFILE");
  return fd;
}

// Writes `total` bytes with `block`-sized pwrites, cycling through `src`.
void RawWrite(int fd, const std::byte* src, std::size_t total, std::size_t block) {
  for (std::size_t off = 0; off < total; off += block) {
    Check(::pwrite(fd, src + off % kBufferBytes, block, static_cast<off_t>(off)) ==
              static_cast<ssize_t>(block),
          "pwrite");
  }
}

void ReportRatio(benchmark::State& state, double raw_s, double store_s) {
  const double bytes = static_cast<double>(TotalBytes()) * static_cast<double>(state.iterations());
  state.counters["ratio_vs_raw"] = raw_s / store_s;
  state.counters["store_GBps"] = bytes / store_s / 1e9;
  state.counters["raw_GBps"] = bytes / raw_s / 1e9;
}

std::unique_ptr<BackupStore> MakeFileStore(bool direct) {
  FileStoreOptions options;
  options.directory = BenchDir();
  options.o_direct = direct;
  auto store = NewFileStore(options);
  Check(store.ok(), "NewFileStore");
  return std::move(store).value();
}

// Backs up TotalBytes() from `src` in 64 MiB calls; returns the handles.
std::vector<BackupHandle> StoreBackup(BackupStore& store, const std::byte* src) {
  const std::size_t pages = TotalBytes() / kPageSize;
  std::vector<BackupHandle> handles(pages);
  for (std::size_t p = 0; p < pages; p += kBufferPages) {
    Result<std::size_t> r = store.BackupPages(src, kBufferPages, {}, handles.data() + p);
    Check(r.ok() && *r == kBufferPages, "BackupPages");
  }
  return handles;
}

void BM_FileStore_Backup(benchmark::State& state) {
  const bool direct = state.range(0) != 0;
  Buffer src = RandomBuffer(kBufferBytes);
  double raw_s = 0, store_s = 0;
  for (auto _ : state) {
    {
      int fd = OpenRawFile(direct);
      auto t0 = std::chrono::steady_clock::now();
      RawWrite(fd, src.get(), TotalBytes(), std::size_t{1} << 20);
      auto t1 = std::chrono::steady_clock::now();
      raw_s += Seconds(t0, t1);
      ::close(fd);
    }
    {
      std::unique_ptr<BackupStore> store = MakeFileStore(direct);
      auto t0 = std::chrono::steady_clock::now();
      StoreBackup(*store, src.get());
      auto t1 = std::chrono::steady_clock::now();
      store_s += Seconds(t0, t1);
      state.SetIterationTime(Seconds(t0, t1));
    }
  }
  ReportRatio(state, raw_s, store_s);
}
BENCHMARK(BM_FileStore_Backup)
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_FileStore_Restore(benchmark::State& state) {
  const bool direct = state.range(0) != 0;
  Buffer src = RandomBuffer(kBufferBytes);
  Buffer dst(static_cast<std::byte*>(std::aligned_alloc(kPageSize, kBufferBytes)));
  std::memset(dst.get(), 0, kBufferBytes);
  const std::size_t total = TotalBytes();
  int raw_fd = OpenRawFile(direct);
  RawWrite(raw_fd, src.get(), total, std::size_t{1} << 20);
  std::unique_ptr<BackupStore> store = MakeFileStore(direct);
  std::vector<BackupHandle> handles = StoreBackup(*store, src.get());
  OperationContext ctx;
  double raw_s = 0, store_s = 0;
  for (auto _ : state) {
    // Cold cache on both sides: written out and dropped from the page cache.
    Check(::fdatasync(raw_fd) == 0, "fdatasync");
    (void)::posix_fadvise(raw_fd, 0, 0, POSIX_FADV_DONTNEED);
    Check(store->Flush().ok(), "Flush");
    auto t0 = std::chrono::steady_clock::now();
    constexpr std::size_t kBlock = std::size_t{1} << 20;
    for (std::size_t off = 0; off < total; off += kBlock) {
      Check(::pread(raw_fd, dst.get() + off % kBufferBytes, kBlock, static_cast<off_t>(off)) ==
                static_cast<ssize_t>(kBlock),
            "pread");
    }
    auto t1 = std::chrono::steady_clock::now();
    for (std::size_t p = 0; p < handles.size(); p += kBufferPages) {
      Check(store->CopyPages(handles.data() + p, kBufferPages, dst.get(), ctx).ok(), "CopyPages");
    }
    auto t2 = std::chrono::steady_clock::now();
    raw_s += Seconds(t0, t1);
    store_s += Seconds(t1, t2);
    state.SetIterationTime(Seconds(t1, t2));
  }
  Check(std::memcmp(dst.get(), src.get(), kBufferBytes) == 0, "restored bytes differ");
  ::close(raw_fd);
  ReportRatio(state, raw_s, store_s);
}
BENCHMARK(BM_FileStore_Restore)
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_MemfdStore_Backup(benchmark::State& state) {
  Buffer src = RandomBuffer(kBufferBytes);
  double raw_s = 0, store_s = 0;
  for (auto _ : state) {
    {
      int fd = ::memfd_create("raw-bench", MFD_CLOEXEC);
      Check(fd >= 0, "memfd_create");
      auto t0 = std::chrono::steady_clock::now();
      RawWrite(fd, src.get(), TotalBytes(), std::size_t{2} << 20);
      auto t1 = std::chrono::steady_clock::now();
      raw_s += Seconds(t0, t1);
      ::close(fd);
    }
    {
      MemfdStoreOptions options;
      options.allow_without_swap = true;
      auto store = NewMemfdStore(options);
      Check(store.ok(), "NewMemfdStore");
      auto t0 = std::chrono::steady_clock::now();
      StoreBackup(**store, src.get());
      auto t1 = std::chrono::steady_clock::now();
      store_s += Seconds(t0, t1);
      state.SetIterationTime(Seconds(t0, t1));
    }
  }
  ReportRatio(state, raw_s, store_s);
}
BENCHMARK(BM_MemfdStore_Backup)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// Scattered 4 KiB pages (a page vector of order-0 pages): BackupPageList (pwritev of up to 1 MiB)
// against the raw 2 MiB memfd loop; `per_page_ratio` is the naive page-at-a-time BackupPage on
// the same pages, for contrast. Uses a quarter of UTTM_BENCH_MIB.
void BM_MemfdStore_BackupScattered(benchmark::State& state) {
  Buffer src = RandomBuffer(kBufferBytes);
  // Swap neighbours so no two consecutive list entries are adjacent in memory.
  std::vector<const std::byte*> list(kBufferPages);
  for (std::size_t i = 0; i < kBufferPages; ++i) list[i] = src.get() + (i ^ 1) * kPageSize;
  const std::size_t total = TotalBytes() / 4 / kBufferBytes * kBufferBytes;
  const std::size_t rounds = std::max<std::size_t>(1, total / kBufferBytes);
  double raw_s = 0, store_s = 0, page_s = 0;
  MemfdStoreOptions options;
  options.allow_without_swap = true;
  std::vector<BackupHandle> handles(kBufferPages * rounds);
  for (auto _ : state) {
    {
      int fd = ::memfd_create("raw-bench", MFD_CLOEXEC);
      Check(fd >= 0, "memfd_create");
      auto t0 = std::chrono::steady_clock::now();
      RawWrite(fd, src.get(), rounds * kBufferBytes, std::size_t{2} << 20);
      raw_s += Seconds(t0, std::chrono::steady_clock::now());
      ::close(fd);
    }
    {
      auto store = NewMemfdStore(options);
      Check(store.ok(), "NewMemfdStore");
      auto t0 = std::chrono::steady_clock::now();
      for (std::size_t r = 0; r < rounds; ++r) {
        Result<std::size_t> n = (*store)->BackupPageList(list.data(), kBufferPages, {},
                                                         handles.data() + r * kBufferPages);
        Check(n.ok() && *n == kBufferPages, "BackupPageList");
      }
      auto t1 = std::chrono::steady_clock::now();
      store_s += Seconds(t0, t1);
      state.SetIterationTime(Seconds(t0, t1));
    }
    {
      auto store = NewMemfdStore(options);
      Check(store.ok(), "NewMemfdStore");
      auto t0 = std::chrono::steady_clock::now();
      for (std::size_t r = 0; r < rounds; ++r) {
        for (std::size_t i = 0; i < kBufferPages; ++i) {
          Check((*store)->BackupPages(list[i], 1, {}, &handles[r * kBufferPages + i]).ok(),
                "BackupPages");
        }
      }
      page_s += Seconds(t0, std::chrono::steady_clock::now());
    }
  }
  state.counters["ratio_vs_raw"] = raw_s / store_s;
  state.counters["per_page_ratio"] = raw_s / page_s;
}
BENCHMARK(BM_MemfdStore_BackupScattered)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
