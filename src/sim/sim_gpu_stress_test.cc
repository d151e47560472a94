// Copyright (c) uttm developers.
//
// Many threads create, validate, write/read, pin, submit GPU jobs and free buffer objects on a
// simulated GPU whose engine runs asynchronously, while another thread keeps evicting. Every
// object's content is checked after every step. Runs under TSan and ASan.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "uttm/sim_gpu.h"

namespace uttm {
namespace {

using namespace unit_literals;

Placement In(MemType type) {
  Place p;
  p.mem_type = type;
  return Placement{p};
}

std::vector<std::byte> Pattern(std::size_t n, std::uint64_t seed) {
  std::vector<std::byte> v(n);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (std::size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (std::size_t k = 0; k < 8 && i + k < n; ++k) v[i + k] = std::byte(x >> (8 * k));
  }
  return v;
}

TEST(SimGpuStress, ThreadsAndEvictorKeepContentExact) {
  SimGpuOptions opts;
  opts.vram_size = 2_MiB;
  opts.tt_budget = 4_MiB;
  auto gpu_or = SimGpu::Create(opts);
  ASSERT_TRUE(gpu_or.ok());
  std::unique_ptr<SimGpu> gpu = std::move(gpu_or).value();
  Device* dev = gpu->device();

  constexpr int kThreads = 3;
  constexpr int kIterations = 150;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> verified{0};

  std::thread evictor([&] {
    std::mt19937 rng(99);
    while (!stop.load()) {
      OperationContext ctx;
      ctx.no_wait_gpu = rng() % 2 == 0;
      MemType type = rng() % 2 ? kMemVram : kMemTt;
      Status s = BufferObject::EvictFirst(*dev, dev->manager(type), ctx);
      if (!s.ok() && s.code() != Errc::kNotFound && s.code() != Errc::kBusy &&
          s.code() != Errc::kNoMemory) {
        ADD_FAILURE() << "evictor: " << s.ToString();
        failures++;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });

  auto worker = [&](int id) {
    std::mt19937 rng(id + 1);
    struct Live {
      BoRef bo;
      std::uint64_t seed;
    };
    std::vector<Live> live;
    const MemType types[] = {kMemSystem, kMemTt, kMemVram};
    for (int it = 0; it < kIterations && failures == 0; ++it) {
      OperationContext ctx;
      int op = rng() % 6;
      if (live.size() < 3 || op == 0) {
        BoOptions bo_opts;
        bo_opts.size = Bytes((1 + rng() % 16) * 4096);
        bo_opts.priority = rng() % 4;
        auto bo = BufferObject::Create(dev, bo_opts, In(types[rng() % 3]), ctx);
        if (!bo.ok()) {
          if (bo.code() == Errc::kNoMemory) continue;  // everything pinned or busy: fine
          ADD_FAILURE() << "create: " << bo.status().ToString();
          failures++;
          break;
        }
        std::uint64_t seed = (std::uint64_t(id) << 32) | it;
        Status w = (*bo)->Write(0, Pattern((*bo)->size().value(), seed), ctx);
        if (!w.ok()) {
          ADD_FAILURE() << "write: " << w.ToString();
          failures++;
          break;
        }
        live.push_back(Live{std::move(bo).value(), seed});
        continue;
      }
      Live& l = live[rng() % live.size()];
      if (op == 1) {  // validate somewhere else
        Status s = l.bo->Reserve(ctx);
        if (s.ok()) {
          l.bo->resv()->AssertHeld();
          s = l.bo->Validate(In(types[rng() % 3]), ctx);
          l.bo->Unreserve();
        }
        if (!s.ok() && s.code() != Errc::kNoMemory && s.code() != Errc::kInvalid) {
          ADD_FAILURE() << "validate: " << s.ToString();
          failures++;
        }
      } else if (op == 2) {  // GPU job
        if (l.bo->Reserve(ctx).ok()) {
          l.bo->resv()->AssertHeld();
          (void)gpu->SubmitJob(*l.bo, std::chrono::microseconds(rng() % 300));
          l.bo->Unreserve();
        }
      } else if (op == 3) {  // pin for a moment
        if (l.bo->Reserve(ctx).ok()) {
          l.bo->resv()->AssertHeld();
          l.bo->Pin();
          l.bo->Unreserve();
          std::this_thread::sleep_for(std::chrono::microseconds(100));
          if (l.bo->Reserve(ctx).ok()) {
            l.bo->resv()->AssertHeld();
            l.bo->Unpin();
            l.bo->Unreserve();
          }
        }
      } else if (op == 4) {  // free
        live.erase(live.begin() + (&l - live.data()));
        continue;
      }
      std::vector<std::byte> got(l.bo->size().value());
      Status r = l.bo->Read(0, got, ctx);
      if (!r.ok() || got != Pattern(got.size(), l.seed)) {
        ADD_FAILURE() << "content check failed: " << r.ToString();
        failures++;
      } else {
        verified++;
      }
    }
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) workers.emplace_back(worker, t);
  for (auto& w : workers) w.join();
  stop = true;
  evictor.join();
  gpu->Drain();
  dev->FlushDelayedDeletes();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(verified.load(), kThreads * kIterations / 4);
  EXPECT_EQ(dev->bo_count(), 0u);
  EXPECT_EQ(dev->manager(kMemVram)->usage(), 0u);
  EXPECT_EQ(dev->manager(kMemTt)->usage(), 0u);
}

}  // namespace
}  // namespace uttm
