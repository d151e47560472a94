// Copyright (c) uttm developers.
//
// reservation_bench: the cost of the reservation primitives on hot paths, each with a baseline
// from the same run:
//   Lock/Unlock of an uncontended Reservation (ticketed and not)  vs  std::mutex lock/unlock;
//   Reservation::TryLock/Unlock                                    vs  std::mutex try_lock/unlock;
//   AddFence (slot reuse) + TestSignaled                          vs  creating the fence alone.
// Read the figures as ratios: BM_Resv_*/BM_Baseline_*.
#include <benchmark/benchmark.h>

#include <mutex>

#include "uttm/exec_context.h"
#include "uttm/fence.h"
#include "uttm/reservation.h"

namespace uttm {
namespace {

void BM_Baseline_StdMutexLockUnlock(benchmark::State& state) {
  std::mutex mu;
  for (auto _ : state) {
    mu.lock();
    benchmark::ClobberMemory();
    mu.unlock();
  }
}
BENCHMARK(BM_Baseline_StdMutexLockUnlock);

void BM_Resv_LockUnlockNoTicket(benchmark::State& state) {
  Reservation resv;
  for (auto _ : state) {
    Status st = resv.Lock(nullptr);
    benchmark::DoNotOptimize(st);
    resv.Unlock();
  }
}
BENCHMARK(BM_Resv_LockUnlockNoTicket);

void BM_Resv_LockUnlockTicket(benchmark::State& state) {
  Reservation resv;
  WwAcquireContext ticket;
  for (auto _ : state) {
    Status st = resv.Lock(&ticket);
    benchmark::DoNotOptimize(st);
    resv.Unlock();
  }
}
BENCHMARK(BM_Resv_LockUnlockTicket);

void BM_Baseline_StdMutexTryLockUnlock(benchmark::State& state) {
  std::mutex mu;
  for (auto _ : state) {
    bool ok = mu.try_lock();
    benchmark::DoNotOptimize(ok);
    if (ok) mu.unlock();
  }
}
BENCHMARK(BM_Baseline_StdMutexTryLockUnlock);

void BM_Resv_TryLockUnlock(benchmark::State& state) {
  Reservation resv;
  for (auto _ : state) {
    if (resv.TryLock()) resv.Unlock();
  }
}
BENCHMARK(BM_Resv_TryLockUnlock);

// TryLock of a held reservation (what an LRU walk does for a busy object).
void BM_Resv_TryLockContended(benchmark::State& state) {
  Reservation resv;
  if (!resv.TryLock()) state.SkipWithError("could not lock");
  for (auto _ : state) benchmark::DoNotOptimize(resv.TryLock());
  resv.Unlock();
}
BENCHMARK(BM_Resv_TryLockContended);

// Locks 8 reservations through an ExecContext and drops them, per iteration.
void BM_Resv_ExecContext8(benchmark::State& state) {
  std::vector<std::unique_ptr<Reservation>> resvs;
  for (int i = 0; i < 8; ++i) resvs.push_back(std::make_unique<Reservation>());
  for (auto _ : state) {
    ExecContext exec;
    Status st = exec.Run([&](ExecContext& e) -> Status {
      for (auto& r : resvs) UTTM_RETURN_IF_ERROR(e.Prepare(r.get(), 1));
      return Status();
    });
    benchmark::DoNotOptimize(st);
  }
}
BENCHMARK(BM_Resv_ExecContext8);

void BM_Baseline_CreateFence(benchmark::State& state) {
  const std::uint64_t ctx = Fence::AllocateContext();
  std::uint64_t seqno = 0;
  for (auto _ : state) {
    FenceRef fence = Fence::Create(ctx, ++seqno);
    benchmark::DoNotOptimize(fence);
  }
}
BENCHMARK(BM_Baseline_CreateFence);

// A fence per submission on one timeline: the slot is reused (later fence of the same context).
void BM_Resv_AddFenceTestSignaled(benchmark::State& state) {
  Reservation resv;
  const std::uint64_t ctx = Fence::AllocateContext();
  std::uint64_t seqno = 0;
  if (!resv.TryLock()) state.SkipWithError("could not lock");
  for (auto _ : state) {
    FenceRef fence = Fence::Create(ctx, ++seqno);
    Status st = resv.ReserveFences(1);
    benchmark::DoNotOptimize(st);
    st = resv.AddFence(std::move(fence), ResvUsage::kWrite);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(resv.TestSignaled(ResvUsage::kRead));
  }
  resv.Unlock();
}
BENCHMARK(BM_Resv_AddFenceTestSignaled);

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
