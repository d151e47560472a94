// Copyright (c) uttm developers.
//
// The Prefetcher: restores ahead of use on its own threads, a map meanwhile waits only for that
// object, hints beyond the queue are refused, Stop loses nothing. A real runtime (page budget,
// file store, simulated GPU); contents depend on the object and the offset.
#include "uttm/prefetcher.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "testing/content.h"
#include "uttm/buffer_object.h"
#include "uttm/mapping.h"
#include "uttm/runtime.h"
#include "uttm/sim_gpu.h"

namespace uttm {
namespace {

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kSize = 4 * kMiB;

class PrefetcherTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(1); }

  void Open(unsigned threads) {
    bos_.clear();
    rt_.reset();
    RuntimeOptions o;
    o.page_limit = Bytes(16 * kMiB);
    o.detect_pressure = false;
    o.prefetch_threads = threads;
    o.stats = &stats_;
    auto rt = Runtime::Open(o);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    rt_ = std::move(*rt);
    SimGpuOptions g;
    g.vram_size = Bytes(4 * kMiB);
    auto gpu = rt_->AddSimGpu(g);
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    dev_ = (*gpu)->device();
    // 8 objects of 4 MiB over a 16 MiB budget: the first ones are backed up by the time the
    // last are written.
    for (std::uint64_t i = 0; i < 8; ++i) {
      OperationContext ctx;
      Place system;
      system.mem_type = kMemSystem;
      auto bo = BufferObject::Create(dev_, {.size = Bytes(kSize)}, Placement{system}, ctx);
      ASSERT_TRUE(bo.ok()) << bo.status().ToString();
      ASSERT_TRUE((*bo)->Write(0, testing::Content({i, 1}, 0, kSize), ctx).ok());
      bos_.push_back(*bo);
    }
  }

  void TearDown() override {
    bos_.clear();
    if (rt_) {
      EXPECT_TRUE(rt_->Close().ok());
    }
  }

  bool Resident(BufferObject& bo) {
    OperationContext ctx;
    if (!bo.Reserve(ctx).ok()) return false;
    bo.resv()->AssertHeld();
    const bool r = bo.tt() != nullptr && bo.tt()->is_populated();
    bo.Unreserve();
    return r;
  }

  // Maps the object for reading; checks every byte; returns the pages that map restored.
  std::uint64_t MapAndCheck(std::uint64_t i) {
    OperationContext ctx;
    Result<Mapping> m = Mapping::Create(bos_[i], kMapRead, ctx);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) return 0;
    EXPECT_FALSE(testing::FindMismatch({i, 1}, 0, m->span()).has_value()) << "object " << i;
    return ctx.pages_restored;
  }

  Stats stats_;
  std::unique_ptr<Runtime> rt_;
  Device* dev_ = nullptr;
  std::vector<BoRef> bos_;
};

TEST_F(PrefetcherTest, ARestoreAheadLeavesTheMapNothingToRead) {
  ASSERT_FALSE(Resident(*bos_[0]));
  ASSERT_TRUE(rt_->Prefetch(bos_[0]).ok());
  rt_->prefetcher()->Drain();
  EXPECT_TRUE(Resident(*bos_[0]));
  EXPECT_EQ(stats_.Get(Stat::kPrefetches), 1u);
  EXPECT_EQ(stats_.Get(Stat::kPrefetchPagesRestored), kSize / kPageSize);
  EXPECT_EQ(MapAndCheck(0), 0u) << "already resident";
  // A resident object: a reserve and nothing else.
  ASSERT_TRUE(rt_->Prefetch(bos_[0]).ok());
  rt_->prefetcher()->Drain();
  EXPECT_EQ(stats_.Get(Stat::kPrefetchPagesRestored), kSize / kPageSize);
}

// Two objects, so that the budget (four) holds both with room to spare: a prefetched object is
// not pinned, and a tighter budget could take it back before its map (then it is read twice).
TEST_F(PrefetcherTest, AMapDuringThePrefetchWaitsForItAndTheObjectIsReadOnce) {
  for (std::uint64_t i = 0; i < 2; ++i) {
    ASSERT_FALSE(Resident(*bos_[i])) << i;
    ASSERT_TRUE(rt_->Prefetch(bos_[i]).ok());
  }
  std::uint64_t restored_by_maps = 0;
  for (std::uint64_t i = 0; i < 2; ++i) restored_by_maps += MapAndCheck(i);
  rt_->prefetcher()->Drain();
  // Each object was read once: by the prefetch or by the map that came first.
  EXPECT_EQ(restored_by_maps + stats_.Get(Stat::kPrefetchPagesRestored), 2 * kSize / kPageSize);
  EXPECT_EQ(stats_.Get(Stat::kPrefetchFailures), 0u);
}

TEST_F(PrefetcherTest, HintsBeyondTheQueueAreRefusedAndNothingIsLost) {
  Prefetcher p({.threads = 1, .queue_limit = 1, .stats = &stats_});
  // The worker blocks on object 0, whose reservation the test holds.
  OperationContext ctx;
  ASSERT_TRUE(bos_[0]->Reserve(ctx).ok());
  bos_[0]->resv()->AssertHeld();
  ASSERT_TRUE(p.Prefetch(bos_[0]).ok());
  while (p.pending() != 1 || stats_.Get(Stat::kPrefetches) != 0) std::this_thread::yield();
  // Object 0 is taken (in progress); one more waits; the next is refused.
  for (int spin = 0; spin < 1000000 && p.pending() == 1; ++spin) {
    if (p.Prefetch(bos_[1]).ok()) break;
  }
  Status refused = p.Prefetch(bos_[2]);
  EXPECT_EQ(refused.code(), Errc::kBusy) << refused.ToString();
  EXPECT_GE(stats_.Get(Stat::kPrefetchDropped), 1u);
  bos_[0]->Unreserve();
  p.Drain();
  EXPECT_EQ(p.pending(), 0u);
  EXPECT_EQ(p.Prefetch(BoRef()).code(), Errc::kInvalid);
  p.Stop();
  EXPECT_EQ(p.Prefetch(bos_[3]).code(), Errc::kInvalid);
  for (std::uint64_t i = 0; i < bos_.size(); ++i) MapAndCheck(i);
}

TEST_F(PrefetcherTest, StopInterruptsAndDropsAndEveryByteSurvives) {
  Open(2);
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < bos_.size(); ++i) ASSERT_TRUE(rt_->Prefetch(bos_[i]).ok());
  }
  rt_->prefetcher()->Stop();
  EXPECT_EQ(rt_->prefetcher()->pending(), 0u);
  EXPECT_EQ(stats_.Get(Stat::kPrefetches) + stats_.Get(Stat::kPrefetchFailures) +
                stats_.Get(Stat::kPrefetchDropped),
            3 * bos_.size());
  EXPECT_EQ(rt_->Prefetch(bos_[0]).code(), Errc::kInvalid);
  for (std::uint64_t i = 0; i < bos_.size(); ++i) MapAndCheck(i);
  EXPECT_TRUE(rt_->CheckInvariants().ok()) << rt_->CheckInvariants().ToString();
}

TEST_F(PrefetcherTest, BadHintsAreClearErrors) {
  EXPECT_EQ(rt_->Prefetch(BoRef()).code(), Errc::kInvalid);
  // An object of another runtime.
  RuntimeOptions o;
  o.page_limit = Bytes(16 * kMiB);
  o.detect_pressure = false;
  auto other = Runtime::Open(o);
  ASSERT_TRUE(other.ok());
  Status s = (*other)->Prefetch(bos_[0]);
  EXPECT_EQ(s.code(), Errc::kInvalid);
  EXPECT_NE(s.message().find("another runtime"), std::string_view::npos) << s.ToString();
  // No prefetcher.
  o.prefetch_threads = 0;
  auto none = Runtime::Open(o);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ((*none)->prefetcher(), nullptr);
  s = (*none)->Prefetch(bos_[0]);
  EXPECT_EQ(s.code(), Errc::kInvalid);
  EXPECT_NE(s.message().find("prefetch_threads"), std::string_view::npos) << s.ToString();
}

}  // namespace
}  // namespace uttm
