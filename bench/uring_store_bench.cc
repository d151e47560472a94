// Copyright (c) uttm developers.
//
// uring_store_bench: the io_uring store (uring_store.h) against a raw io_uring O_DIRECT loop of
// the same sizes, and against the file store with O_DIRECT (one pwritev / preadv at a time), in
// the same iteration:
//   BM_UringStore/<pages per call>   128 MiB backed up in calls of that many pages (512: the
//       2 MiB runs a page vector backs up in; 2048: 8 MiB) and copied back. The raw loop writes
//       and reads the same bytes at the same offsets of a private O_DIRECT file, each call cut
//       into 1 MiB requests of which up to 16 are in flight, as the store does. Counters:
//       backup_ratio / restore_ratio (raw time / store time; the goal >= 0.9) and
//       backup_vs_file / restore_vs_file (file store time / io_uring store time: > 1 is faster).
// Run: build/release/bench/uring_store_bench --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "testing/page_buffer.h"
#include "timing.h"
#include "uttm/backup_store.h"
#include "uttm/file_store.h"
#include "uttm/stats.h"
#include "uttm/uring_store.h"

namespace uttm {
namespace {

using bench::Clock;
using bench::Since;
constexpr std::size_t kPages = 32768;  // 128 MiB
constexpr std::size_t kRequestBytes = std::size_t{1} << 20;
constexpr unsigned kDepth = 16;

// Writes or reads `len` bytes of `buf` at `offset` of `fd` as 1 MiB requests, up to kDepth in
// flight; false on any error or short transfer.
bool RawCall(io_uring* ring, bool write, std::byte* buf, std::size_t len, std::uint64_t offset) {
  std::size_t next = 0;
  unsigned in_flight = 0;
  while (next < len || in_flight > 0) {
    while (in_flight < kDepth && next < len) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      const std::size_t n = std::min(kRequestBytes, len - next);
      if (write) {
        io_uring_prep_write(sqe, 0, buf + next, static_cast<unsigned>(n), offset + next);
      } else {
        io_uring_prep_read(sqe, 0, buf + next, static_cast<unsigned>(n), offset + next);
      }
      sqe->flags |= IOSQE_FIXED_FILE;
      io_uring_sqe_set_data64(sqe, n);
      next += n;
      ++in_flight;
    }
    if (io_uring_submit_and_wait(ring, 1) < 0) return false;
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(ring, &cqe) == 0) {
      const bool ok = cqe->res == static_cast<int>(io_uring_cqe_get_data64(cqe));
      io_uring_cqe_seen(ring, cqe);
      --in_flight;
      if (!ok) return false;
    }
  }
  return true;
}

void BM_UringStore(benchmark::State& state) {
  const auto per_call = static_cast<std::size_t>(state.range(0));
  testing::PatternPages pages(kPages, 1);
  testing::PageBuffer out(kPages);
  Stats stats;
  UringStoreOptions uo;
  uo.queue_depth = kDepth;
  uo.stats = &stats;
  Result<std::unique_ptr<BackupStore>> uring = NewUringStore(uo);
  FileStoreOptions fo;
  fo.o_direct = true;
  fo.stats = &stats;
  Result<std::unique_ptr<BackupStore>> file = NewFileStore(fo);
  if (!uring.ok() || !file.ok()) {
    state.SkipWithError("cannot make the stores");
    return;
  }
  if ((*uring)->Describe().find("io_uring,") == std::string::npos) {
    state.SkipWithError(("io_uring is refused here: " + (*uring)->Describe()).c_str());
    return;
  }
  const int fd = ::open("/tmp", O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
  io_uring ring;
  if (fd < 0 || io_uring_queue_init(kDepth, &ring, 0) != 0) {
    state.SkipWithError("cannot set up the raw io_uring loop");
    return;
  }
  io_uring_register_files(&ring, &fd, 1);
  std::vector<BackupHandle> handles(kPages);
  double raw_w = 0, raw_r = 0, ur_b = 0, ur_r = 0, file_b = 0, file_r = 0;
  for (auto _ : state) {
    bool ok = true;
    auto t0 = Clock::now();
    for (std::size_t p = 0; p < kPages && ok; p += per_call) {
      ok = RawCall(&ring, true, pages.page(p), per_call * kPageSize, p * kPageSize);
    }
    raw_w += Since(t0);
    t0 = Clock::now();
    for (std::size_t p = 0; p < kPages && ok; p += per_call) {
      ok = RawCall(&ring, false, out.page(p), per_call * kPageSize, p * kPageSize);
    }
    raw_r += Since(t0);
    if (!ok || std::memcmp(out.data(), pages.data(), kPages * kPageSize) != 0) {
      state.SkipWithError("the raw io_uring loop failed");
      break;
    }
    for (BackupStore* store : {uring->get(), file->get()}) {
      out.Zero();
      t0 = Clock::now();
      for (std::size_t p = 0; p < kPages && ok; p += per_call) {
        Result<std::size_t> r = store->BackupPages(pages.page(p), per_call, {}, &handles[p]);
        ok = r.ok() && *r == per_call;
      }
      (store == uring->get() ? ur_b : file_b) += Since(t0);
      t0 = Clock::now();
      for (std::size_t p = 0; p < kPages && ok; p += per_call) {
        ok = store->CopyPages(&handles[p], per_call, out.page(p), {}).ok();
      }
      (store == uring->get() ? ur_r : file_r) += Since(t0);
      if (!ok || std::memcmp(out.data(), pages.data(), kPages * kPageSize) != 0) {
        state.SkipWithError("a store round trip failed");
        break;
      }
      store->Drop(handles.data(), kPages);
    }
  }
  io_uring_queue_exit(&ring);
  ::close(fd);
  state.counters["backup_ratio"] = raw_w / ur_b;
  state.counters["restore_ratio"] = raw_r / ur_r;
  state.counters["backup_vs_file"] = file_b / ur_b;
  state.counters["restore_vs_file"] = file_r / ur_r;
  const double bytes = static_cast<double>(kPages * kPageSize * state.iterations());
  state.counters["raw_write_GBps"] = bytes / raw_w / 1e9;
  state.counters["raw_read_GBps"] = bytes / raw_r / 1e9;
  state.counters["backup_GBps"] = bytes / ur_b / 1e9;
  state.counters["restore_GBps"] = bytes / ur_r / 1e9;
}
BENCHMARK(BM_UringStore)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
