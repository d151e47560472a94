// Copyright (c) uttm developers.
//
// GEM shmem objects under reclaim: every state transition and the LRU it puts the object on,
// the no-double-count rule, the scan helper's lock rules, the staged shrinker (purge before
// evict, busy objects only waited for in background reclaim), the driver callbacks, misuse,
// injected backing-file faults, and memory really given back.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "testing/content.h"
#include "testing/proc_status.h"
#include "uttm/fault_injection.h"
#include "uttm/fence.h"
#include "uttm/gem_device.h"
#include "uttm/gem_lru.h"
#include "uttm/gem_shmem_object.h"

namespace uttm {
namespace {

constexpr std::uint64_t kPages = 64;
constexpr std::uint64_t kSize = kPages * kPageSize;

// A driver that maps objects into a device: it must tear the mapping down before eviction and
// purge, and rebuild it on swap-in.
class MappingDriver : public GemShmemFuncs {
 public:
  Result<std::uint64_t> Purge(GemShmemObject& obj) override UTTM_REQUIRES(obj.resv()) {
    ++teardowns;
    return obj.PurgeLocked();
  }
  Result<std::uint64_t> Evict(GemShmemObject& obj, bool writeback) override
      UTTM_REQUIRES(obj.resv()) {
    ++teardowns;
    return obj.EvictLocked(writeback);
  }
  Status SwapIn(GemShmemObject& obj) override UTTM_REQUIRES(obj.resv()) {
    UTTM_RETURN_IF_ERROR(obj.SwapInLocked());
    ++rebuilds;
    return Status();
  }
  int teardowns = 0;
  int rebuilds = 0;
};

class GemShrinkerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(::testing::TempDir()); }
  void TearDown() override {
    FaultInjection::DisarmAll();
    objs_.clear();
    dev_.reset();
  }
  void Open(const std::string& directory, bool eviction = true) {
    objs_.clear();
    dev_.reset();
    GemDeviceOptions o;
    o.name = "test";
    o.backing.directory = directory;
    o.funcs = &driver_;
    o.enable_eviction = eviction;
    o.stats = &stats_;
    auto dev = GemDevice::Create(o);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    dev_ = std::move(dev).value();
  }
  // Object `id` with pages holding version 1 of its content, not pinned.
  GemRef MakeFilled(std::uint64_t id, std::uint32_t version = 1) {
    Result<GemRef> r = dev_->CreateObject(Bytes(kSize));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    GemRef obj = *r;
    Locked(obj, [&] {
      obj->resv()->AssertHeld();
      Result<std::byte*> p = obj->Vmap();
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      testing::FillContent({id, version}, 0, std::span(*p, kSize));
      ASSERT_TRUE(obj->GetPages().ok());  // a use reference stays after the vmap goes
      ASSERT_TRUE(obj->Vunmap().ok());
    });
    return obj;
  }
  template <typename Fn>
  void Locked(const GemRef& obj, Fn fn) {
    ASSERT_TRUE(obj->resv()->TryLock());
    fn();
    obj->resv()->AssertHeld();
    obj->resv()->Unlock();
  }
  void ExpectContent(const GemRef& obj, std::uint64_t id, std::uint32_t version = 1) {
    Locked(obj, [&] {
      obj->resv()->AssertHeld();
      Result<std::byte*> p = obj->Vmap();
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      EXPECT_FALSE(testing::FindMismatch({id, version}, 0, std::span(*p, kSize)).has_value())
          << "object " << id;
      ASSERT_TRUE(obj->Vunmap().ok());
    });
  }
  // Evicts every object of objs_, written back, in order.
  void EvictAllWithWriteback() {
    for (GemRef& o : objs_) {
      Locked(o, [&] {
        o->resv()->AssertHeld();
        OperationContext ctx;
        ASSERT_TRUE(o->Evict(/*writeback=*/true, ctx).ok());
      });
    }
  }
  std::uint64_t Pages(GemLru& lru) {
    MutexLock lock(lru.lock());
    return lru.count();
  }

  Stats stats_;
  MappingDriver driver_;
  std::unique_ptr<GemDevice> dev_;
  std::vector<GemRef> objs_;
};

TEST_F(GemShrinkerTest, EveryStateTransitionPutsTheObjectOnItsLru) {
  ASSERT_TRUE(dev_->can_evict()) << "a backing directory makes eviction possible";
  GemRef obj = MakeFilled(1);
  auto expect = [&](GemPageState state, const GemLru* lru) {
    EXPECT_EQ(obj->state(), state) << GemPageStateName(obj->state());
    MutexLock lock(dev_->lru_lock());
    EXPECT_EQ(obj->lru(), lru) << GemPageStateName(state);
  };
  expect(GemPageState::kEvictable, &dev_->willneed());
  Locked(obj, [&] {
    obj->resv()->AssertHeld();
    ASSERT_TRUE(obj->Pin().ok());
    expect(GemPageState::kPinned, &dev_->pinned());
    ASSERT_TRUE(obj->Unpin().ok());
    expect(GemPageState::kEvictable, &dev_->willneed());
    EXPECT_TRUE(obj->Madvise(1));
    expect(GemPageState::kPurgeable, &dev_->dontneed());
    ASSERT_TRUE(obj->DisablePurging().ok());
    expect(GemPageState::kPinned, &dev_->pinned());
    ASSERT_TRUE(obj->EnablePurging().ok());
    EXPECT_TRUE(obj->Madvise(0));
    expect(GemPageState::kEvictable, &dev_->willneed());
    ASSERT_TRUE(obj->DisableEviction().ok());
    expect(GemPageState::kPinned, &dev_->pinned());
    ASSERT_TRUE(obj->EnableEviction().ok());
    OperationContext ctx;
    Result<std::uint64_t> n = obj->Evict(/*writeback=*/true, ctx);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, kPages);
    expect(GemPageState::kEvicted, &dev_->evicted());
    EXPECT_EQ(driver_.teardowns, 1);
    ASSERT_TRUE(obj->GetPages().ok());  // swaps in through the driver
    EXPECT_EQ(driver_.rebuilds, 1);
    expect(GemPageState::kEvictable, &dev_->willneed());
    ASSERT_TRUE(obj->PutPages().ok());
    ASSERT_TRUE(obj->PutPages().ok());
    expect(GemPageState::kUnpinned, nullptr);
  });
  ExpectContent(obj, 1);
  EXPECT_EQ(stats_.Get(Stat::kGemPagesEvicted), kPages);
  EXPECT_EQ(stats_.Get(Stat::kGemPagesSwappedIn), kPages);
}

TEST_F(GemShrinkerTest, PagesAreNeverCountedTwice) {
  for (std::uint64_t i = 0; i < 6; ++i) objs_.push_back(MakeFilled(i));
  EXPECT_EQ(Pages(dev_->willneed()), 6 * kPages);
  EXPECT_EQ(Pages(dev_->dontneed()), 0u);
  // Flip objects between evictable and purgeable, several times each, in every order.
  for (int round = 0; round < 5; ++round) {
    for (std::uint64_t i = 0; i < objs_.size(); ++i) {
      Locked(objs_[i], [&] {
        objs_[i]->resv()->AssertHeld();
        objs_[i]->Madvise((i + round) % 2 == 0 ? 1 : 0);
        objs_[i]->Madvise((i + round) % 3 == 0 ? 1 : objs_[i]->madv());
      });
      EXPECT_EQ(dev_->purgeable_pages() + dev_->evictable_pages(), 6 * kPages) << round;
    }
  }
  std::uint64_t purgeable = 0;
  for (const GemRef& o : objs_) purgeable += o->madv() > 0 ? kPages : 0;
  EXPECT_EQ(dev_->purgeable_pages(), purgeable);
  EXPECT_EQ(dev_->shrinker().Count({}), 6 * kPages);
}

TEST_F(GemShrinkerTest, TheScanSkipsLockedObjectsAndVisitsEachOnce) {
  for (std::uint64_t i = 0; i < 4; ++i) objs_.push_back(MakeFilled(i));
  ASSERT_TRUE(objs_[1]->resv()->TryLock());  // held elsewhere: must be skipped, not waited for
  std::vector<GemShmemObject*> visited;
  std::uint64_t remaining = 0;
  std::uint64_t freed = GemLruScan(dev_->willneed(), 1000, &remaining,
                                   [&](GemShmemObject& o) -> Result<std::uint64_t> {
                                     visited.push_back(&o);
                                     return std::uint64_t{0};  // frees nothing: stays
                                   });
  EXPECT_EQ(freed, 0u);
  EXPECT_EQ(remaining, kPages);
  ASSERT_EQ(visited.size(), 3u);
  EXPECT_EQ(visited[0], objs_[0].get());
  EXPECT_EQ(visited[1], objs_[2].get());
  EXPECT_EQ(visited[2], objs_[3].get());
  // Every object met (the skipped one too) went back to the tail, in the order met.
  std::vector<GemShmemObject*> order;
  {
    MutexLock lock(dev_->willneed().lock());
    dev_->willneed().ForEach([&](GemShmemObject& o) { order.push_back(&o); });
    EXPECT_EQ(dev_->willneed().count(), 4 * kPages);
  }
  ASSERT_EQ(order.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(order[i], objs_[i].get()) << i;
  objs_[1]->resv()->AssertHeld();
  objs_[1]->resv()->Unlock();
  // A scan that frees stops at its target.
  remaining = 0;
  freed = GemLruScan(dev_->willneed(), kPages, &remaining,
                     [&](GemShmemObject& o) UTTM_NO_THREAD_SAFETY_ANALYSIS {
                       OperationContext ctx;
                       return o.Evict(true, ctx);
                     });
  EXPECT_EQ(freed, kPages);
  EXPECT_EQ(Pages(dev_->willneed()), 3 * kPages);
  EXPECT_EQ(Pages(dev_->evicted()), kPages);
}

TEST_F(GemShrinkerTest, TheShrinkerPurgesBeforeItEvicts) {
  for (std::uint64_t i = 0; i < 4; ++i) objs_.push_back(MakeFilled(i));
  for (std::uint64_t i = 0; i < 2; ++i) {
    Locked(objs_[i], [&] {
      objs_[i]->resv()->AssertHeld();
      objs_[i]->Madvise(1);
    });
  }
  Shrinker& s = dev_->shrinker();
  EXPECT_EQ(s.Count({}), 4 * kPages);
  ShrinkControl sc;
  sc.nr_to_scan = 2 * kPages;
  EXPECT_EQ(s.Scan(sc), 2 * kPages);
  EXPECT_EQ(objs_[0]->state(), GemPageState::kPurged);
  EXPECT_EQ(objs_[1]->state(), GemPageState::kPurged);
  EXPECT_EQ(objs_[2]->state(), GemPageState::kEvictable) << "evicted before purging was done";
  // Without may_fs nothing may be written to the backing files: no eviction.
  sc = ShrinkControl{};
  sc.nr_to_scan = 2 * kPages;
  sc.reclaim.may_fs = false;
  EXPECT_EQ(s.Scan(sc), kShrinkStop);
  sc.reclaim.may_fs = true;
  EXPECT_EQ(s.Scan(sc), 2 * kPages);
  EXPECT_EQ(objs_[2]->state(), GemPageState::kEvicted);
  EXPECT_EQ(objs_[3]->state(), GemPageState::kEvicted);
  EXPECT_EQ(s.Count({}), kShrinkEmpty);
  ExpectContent(objs_[2], 2);
  ExpectContent(objs_[3], 3);
  EXPECT_EQ(driver_.teardowns, 4);
}

TEST_F(GemShrinkerTest, BusyObjectsAreWaitedForOnlyInBackgroundReclaim) {
  objs_.push_back(MakeFilled(7));
  FenceRef fence = Fence::Create(Fence::AllocateContext(), 1);
  Locked(objs_[0], [&] {
    objs_[0]->resv()->AssertHeld();
    ASSERT_TRUE(objs_[0]->resv()->ReserveFences(1).ok());
    ASSERT_TRUE(objs_[0]->resv()->AddFence(fence, ResvUsage::kWrite).ok());
    objs_[0]->Madvise(1);
  });
  ShrinkControl sc;
  sc.nr_to_scan = kPages;
  EXPECT_EQ(dev_->shrinker().Scan(sc), kShrinkStop) << "direct reclaim must not wait";
  EXPECT_EQ(objs_[0]->state(), GemPageState::kPurgeable);
  std::thread signaller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE(fence->Signal().ok());
  });
  sc.reclaim.background = true;
  std::uint64_t freed = 0;
  for (int i = 0; i < 100 && freed != kPages; ++i) {  // each stage waits at most 10 ms
    std::uint64_t r = dev_->shrinker().Scan(sc);
    if (r != kShrinkStop) freed += r;
  }
  signaller.join();
  EXPECT_EQ(freed, kPages);
  EXPECT_EQ(objs_[0]->state(), GemPageState::kPurged);
}

TEST_F(GemShrinkerTest, MisuseIsAClearErrorNeverACrash) {
  GemRef obj = MakeFilled(3);
  Locked(obj, [&] {
    obj->resv()->AssertHeld();
    EXPECT_EQ(obj->Unpin().code(), Errc::kInvalid);
    EXPECT_EQ(obj->Vunmap().code(), Errc::kInvalid);
    EXPECT_EQ(obj->EnableEviction().code(), Errc::kInvalid);
    EXPECT_EQ(obj->EnablePurging().code(), Errc::kInvalid);
    EXPECT_EQ(obj->PurgeLocked().code(), Errc::kInvalid) << "an active object is not purgeable";
    ASSERT_TRUE(obj->Pin().ok());
    OperationContext ctx;
    EXPECT_EQ(obj->Evict(true, ctx).code(), Errc::kInvalid) << "a pinned object";
    EXPECT_EQ(obj->EvictLocked(true).code(), Errc::kInvalid);
    ASSERT_TRUE(obj->Unpin().ok());
    ASSERT_TRUE(obj->PutPages().ok());
    EXPECT_EQ(obj->PutPages().code(), Errc::kInvalid);
    obj->Madvise(1);
    ASSERT_TRUE(obj->GetPages().ok());
    ASSERT_TRUE(obj->PurgeLocked().ok());
    EXPECT_EQ(obj->Vmap().code(), Errc::kInvalid);
    EXPECT_EQ(obj->Pin().code(), Errc::kInvalid);
    EXPECT_FALSE(obj->Madvise(0));
    EXPECT_EQ(obj->PurgeLocked().code(), Errc::kInvalid) << "purged twice";
  });
}

TEST_F(GemShrinkerTest, InjectedBackingFaultsLoseNothing) {
  // Create and extend fail at the first pages: nothing changes, the next try works.
  Result<GemRef> r = dev_->CreateObject(Bytes(kSize));
  ASSERT_TRUE(r.ok());
  GemRef fresh = *r;
  for (FaultPoint p : {FaultPoint::kGemCreate, FaultPoint::kGemExtend, FaultPoint::kGemSwapIn}) {
    ASSERT_TRUE(FaultInjection::Arm(p, {.times = 1}).ok());
    Locked(fresh, [&] {
      fresh->resv()->AssertHeld();
      Status s = fresh->GetPages();
      EXPECT_FALSE(s.ok()) << FaultInjection::Name(p);
      EXPECT_EQ(fresh->pages_use_count(), 0u);
      EXPECT_FALSE(fresh->backing().mapped());
    });
  }
  EXPECT_EQ(FaultInjection::Failures(FaultPoint::kGemExtend), 1u);
  FaultInjection::DisarmAll();

  // A failed write-back keeps the pages mapped and the object evictable.
  GemRef obj = MakeFilled(11);
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kGemWriteback, {.times = 1}).ok());
  Locked(obj, [&] {
    obj->resv()->AssertHeld();
    OperationContext ctx;
    EXPECT_EQ(obj->Evict(true, ctx).code(), Errc::kIo);
    EXPECT_EQ(obj->state(), GemPageState::kEvictable);
    EXPECT_TRUE(obj->backing().mapped());
  });
  ExpectContent(obj, 11);
  // A failed swap-in leaves it evicted; the next one brings every byte back.
  Locked(obj, [&] {
    obj->resv()->AssertHeld();
    OperationContext ctx;
    ASSERT_TRUE(obj->Evict(true, ctx).ok());
    ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kGemSwapIn, {.times = 1}).ok());
    EXPECT_EQ(obj->GetPages().code(), Errc::kIo);
    EXPECT_EQ(obj->state(), GemPageState::kEvicted);
  });
  ExpectContent(obj, 11);
  // A failed truncate keeps the contents and the object purgeable.
  Locked(obj, [&] {
    obj->resv()->AssertHeld();
    obj->Madvise(1);
    ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kGemTruncate, {.times = 1}).ok());
    EXPECT_EQ(obj->PurgeLocked().code(), Errc::kIo);
    EXPECT_EQ(obj->state(), GemPageState::kPurgeable);
    obj->Madvise(0);
  });
  ExpectContent(obj, 11);
}

TEST_F(GemShrinkerTest, AFailedWritebackInTheShrinkersBatchSwapsTheObjectBackIn) {
  for (std::uint64_t i = 0; i < 3; ++i) objs_.push_back(MakeFilled(20 + i));
  // The second write-back the batch waits for fails: that object (the second oldest) comes back
  // into its mapping, the other two are evicted, and only their pages count as freed.
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kGemWriteback, {.after = 1, .times = 1}).ok());
  ShrinkControl sc;
  sc.nr_to_scan = 3 * kPages;
  EXPECT_EQ(dev_->shrinker().Scan(sc), 2 * kPages);
  EXPECT_EQ(FaultInjection::Failures(FaultPoint::kGemWriteback), 1u);
  EXPECT_EQ(dev_->shrinker().writeback_failures(), 1u);
  EXPECT_EQ(objs_[0]->state(), GemPageState::kEvicted);
  EXPECT_EQ(objs_[1]->state(), GemPageState::kEvictable) << "swapped back in";
  EXPECT_TRUE(objs_[1]->backing().mapped());
  EXPECT_EQ(objs_[2]->state(), GemPageState::kEvicted);
  EXPECT_EQ(driver_.rebuilds, 1) << "the driver rebuilt the swapped-in object's mapping";
  EXPECT_EQ(objs_[0]->backing().CachedPages(), 0u) << "written back and dropped";
  FaultInjection::DisarmAll();
  for (std::uint64_t i = 0; i < 3; ++i) ExpectContent(objs_[i], 20 + i);
  // The scan did not try again; the next one (the content checks swapped all three in) writes
  // them all back.
  EXPECT_EQ(dev_->shrinker().Scan(sc), 3 * kPages);
  EXPECT_EQ(objs_[1]->state(), GemPageState::kEvicted);
  ExpectContent(objs_[1], 21);
}

TEST_F(GemShrinkerTest, PrefetchReadsAnEvictedObjectBackWithoutSwappingItIn) {
  GemRef obj = MakeFilled(30);
  Locked(obj, [&] {
    obj->resv()->AssertHeld();
    OperationContext ctx;
    ASSERT_TRUE(obj->Evict(/*writeback=*/true, ctx).ok());
    ASSERT_EQ(obj->backing().CachedPages(), 0u);
    ASSERT_TRUE(obj->Prefetch().ok());
    EXPECT_EQ(obj->state(), GemPageState::kEvicted) << "a prefetch changes no state";
    EXPECT_FALSE(obj->backing().mapped());
  });
  // readahead(2) returns with the reads in flight; mincore counts a page once it is read.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (obj->backing().CachedPages() != kPages && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(obj->backing().CachedPages(), kPages) << "nothing read the pages but the prefetch";
  ExpectContent(obj, 30);
  Locked(obj, [&] {
    obj->resv()->AssertHeld();
    EXPECT_TRUE(obj->Prefetch().ok()) << "a no-op while it holds its pages";
    obj->Madvise(1);
    ASSERT_TRUE(obj->PurgeLocked().ok());
    EXPECT_EQ(obj->Prefetch().code(), Errc::kInvalid) << "purged";
  });
}

TEST_F(GemShrinkerTest, LargeFolioBackingsHaveNoSwapInReadaheadUnlessAskedFor) {
  ASSERT_TRUE(GemDeviceOptions{}.backing.large_folios);
  for (std::uint64_t i = 0; i < 4; ++i) objs_.push_back(MakeFilled(60 + i));
  EvictAllWithWriteback();
  for (std::size_t i = 0; i < 3; ++i) {  // a stream
    Locked(objs_[i], [&] {
      objs_[i]->resv()->AssertHeld();
      ASSERT_TRUE(objs_[i]->GetPages().ok());
      ASSERT_TRUE(objs_[i]->PutPages().ok());
    });
  }
  EXPECT_EQ(dev_->readahead_window(), 0u);
  EXPECT_EQ(objs_[3]->backing().CachedPages(), 0u) << "nothing read ahead";
  for (std::uint64_t i = 0; i < 4; ++i) ExpectContent(objs_[i], 60 + i);
}

TEST_F(GemShrinkerTest, SwapInReadaheadFollowsAStreamAndStopsOnRandomAccess) {
  // Off by default on large folios (readahead(2) would bring single pages back): asked for here.
  dev_->set_swapin_readahead(GemDeviceOptions{}.swapin_readahead);
  for (std::uint64_t i = 0; i < 8; ++i) objs_.push_back(MakeFilled(40 + i));
  EvictAllWithWriteback();
  auto swap_in = [&](std::size_t i) {
    Locked(objs_[i], [&] {
      objs_[i]->resv()->AssertHeld();
      ASSERT_TRUE(objs_[i]->GetPages().ok());
      ASSERT_TRUE(objs_[i]->PutPages().ok());
    });
  };
  // readahead(2) returns with the reads in flight; mincore counts a page once it is read.
  auto cached = [&](std::size_t i) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (objs_[i]->backing().CachedPages() != kPages &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return objs_[i]->backing().CachedPages() == kPages;
  };
  swap_in(0);
  EXPECT_EQ(dev_->readahead_window(), 0u) << "one swap-in is no stream yet";
  swap_in(1);  // evicted right after 0: a stream
  EXPECT_EQ(dev_->readahead_window(), 1u);
  EXPECT_TRUE(cached(2)) << "the next object was read ahead";
  swap_in(2);
  EXPECT_EQ(dev_->readahead_window(), 2u);
  EXPECT_TRUE(cached(3));
  EXPECT_TRUE(cached(4));
  swap_in(7);  // a jump: the window halves
  EXPECT_EQ(dev_->readahead_window(), 1u);
  swap_in(5);  // another
  EXPECT_EQ(dev_->readahead_window(), 0u);
  EXPECT_EQ(objs_[6]->backing().CachedPages(), 0u) << "random access reads nothing extra";
  for (std::uint64_t i = 0; i < 8; ++i) ExpectContent(objs_[i], 40 + i);
}

TEST_F(GemShrinkerTest, EvictionAndPurgeReallyGiveMemoryBack) {
  constexpr std::uint64_t kBig = 64ull << 20;
  Result<GemRef> a = dev_->CreateObject(Bytes(kBig));
  Result<GemRef> b = dev_->CreateObject(Bytes(kBig));
  ASSERT_TRUE(a.ok() && b.ok());
  for (GemRef* o : {&*a, &*b}) {
    Locked(*o, [&] {
      (*o)->resv()->AssertHeld();
      Result<std::byte*> p = (*o)->Vmap();
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      std::memset(*p, 0x3c, kBig);
      ASSERT_TRUE((*o)->GetPages().ok());
      ASSERT_TRUE((*o)->Vunmap().ok());
    });
  }
  const std::uint64_t rss0 = testing::RssBytes();
  Locked(*a, [&] {
    (*a)->resv()->AssertHeld();
    OperationContext ctx;
    ASSERT_TRUE((*a)->Evict(/*writeback=*/true, ctx).ok());
  });
  const std::uint64_t rss1 = testing::RssBytes();
  EXPECT_GE(rss0 - rss1, kBig - (4ull << 20)) << "RSS " << rss0 << " -> " << rss1;
  EXPECT_EQ((*a)->backing().CachedPages(), 0u) << "written back and dropped from the page cache";
  Locked(*b, [&] {
    (*b)->resv()->AssertHeld();
    (*b)->Madvise(1);
    ASSERT_TRUE((*b)->PurgeLocked().ok());
  });
  const std::uint64_t rss2 = testing::RssBytes();
  EXPECT_GE(rss1 - rss2, kBig - (4ull << 20)) << "RSS " << rss1 << " -> " << rss2;
  EXPECT_EQ((*b)->backing().CachedPages(), 0u);
}

TEST_F(GemShrinkerTest, MemfdObjectsCannotBeEvictedWithoutSwap) {
  Open("");  // memfd: tmpfs pages leave memory only to swap
  if (dev_->can_evict()) GTEST_SKIP() << "this machine has swap: memfd objects can be evicted";
  objs_.push_back(MakeFilled(5));
  EXPECT_EQ(objs_[0]->state(), GemPageState::kPinned) << "held, and nothing can take it";
  EXPECT_EQ(dev_->shrinker().Count({}), kShrinkEmpty);
  Locked(objs_[0], [&] {
    objs_[0]->resv()->AssertHeld();
    objs_[0]->Madvise(1);
  });
  EXPECT_EQ(dev_->shrinker().Count({}), kPages) << "purging still frees tmpfs pages";
  ShrinkControl sc;
  sc.nr_to_scan = kPages;
  EXPECT_EQ(dev_->shrinker().Scan(sc), kPages);
}

}  // namespace
}  // namespace uttm
