// Copyright (c) uttm developers.
//
// Exhaustive eviction: an eviction walk that meets a victim held by an older transaction answers
// kDeadlock (never kNoSpace or kNoMemory) and records the victim in the ticket; an ExecContext
// backs off and retries with it locked first, and may then evict it; the "no room" codes stay
// apart (kNoSpace with DeviceOptions::propagate_nospace); and the stress test: threads running
// Validation transactions over overlapping sets of objects in a VRAM that holds only a few of
// them, every transaction completing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "testing/test_device.h"
#include "uttm/buffer_object.h"
#include "uttm/exec_context.h"
#include "uttm/validation.h"

namespace uttm {
namespace {

using testing::PlacementOf;
using testing::TestDevice;

constexpr std::uint64_t kObjPages = 4;

BoRef MakeIn(Device* dev, MemType type, unsigned priority = 0) {
  BoOptions o;
  o.size = Bytes(kObjPages * kPageSize);
  o.priority = priority;
  OperationContext ctx;
  Result<BoRef> r = BufferObject::Create(dev, o, PlacementOf(type), ctx);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : BoRef();
}

MemType TypeOf(const BoRef& bo) {
  return bo->resource() == nullptr ? kMemSystem : bo->resource()->mem_type();
}

// VRAM holds two objects: `held` (locked by an older ticket in another thread) and `mine`
// (locked by the younger transaction). Validating `want` into VRAM must evict `held`.
struct Contended {
  TestDevice dev{PageCount(2 * kObjPages)};
  BoRef held = MakeIn(dev.get(), kMemVram);
  BoRef mine = MakeIn(dev.get(), kMemVram);
  BoRef want = MakeIn(dev.get(), kMemSystem);
};

TEST(ExhaustiveEvictionTest, AWalkThatMustBackOffAnswersDeadlockAndNamesTheVictim) {
  Contended c;
  WwAcquireContext older;
  ASSERT_TRUE(c.held->resv()->Lock(&older).ok());
  WwAcquireContext younger;
  ASSERT_TRUE(younger.IsOlderThan(older) == false);
  ASSERT_TRUE(c.mine->resv()->Lock(&younger).ok());
  ASSERT_TRUE(c.want->resv()->Lock(&younger).ok());
  c.want->resv()->AssertHeld();
  OperationContext ctx;
  Status s = c.want->Validate(PlacementOf(kMemVram), ctx);
  EXPECT_EQ(s.code(), Errc::kDeadlock) << s.ToString();
  std::shared_ptr<const void> keep;
  EXPECT_EQ(younger.TakeContended(&keep), c.held->resv()) << "the ticket names the victim";
  EXPECT_NE(keep, nullptr);
  EXPECT_EQ(TypeOf(c.want), kMemSystem) << "nothing moved";
  c.want->resv()->Unlock();
  c.mine->resv()->AssertHeld();
  c.mine->resv()->Unlock();
  c.held->resv()->AssertHeld();
  c.held->resv()->Unlock();
}

TEST(ExhaustiveEvictionTest, TheTransactionRetriesWithTheVictimLockedFirstAndEvictsIt) {
  Contended c;
  WwAcquireContext older;
  ASSERT_TRUE(c.held->resv()->Lock(&older).ok());
  // The older transaction finishes a little later.
  std::thread finisher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    c.held->resv()->AssertHeld();
    c.held->resv()->Unlock();
  });
  ExecContext exec;
  unsigned passes = 0;
  Status s = exec.Run([&](ExecContext& e) -> Status {
    ++passes;
    UTTM_RETURN_IF_ERROR(e.Prepare(c.mine->resv(), 1));
    UTTM_RETURN_IF_ERROR(e.Prepare(c.want->resv(), 1));
    c.want->resv()->AssertHeld();
    OperationContext ctx;
    return c.want->Validate(PlacementOf(kMemVram), ctx);
  });
  finisher.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(exec.retries(), 1u);
  EXPECT_EQ(passes, 2u);
  EXPECT_EQ(TypeOf(c.want), kMemVram);
  EXPECT_EQ(TypeOf(c.mine), kMemVram) << "a member of the transaction is never its victim";
  EXPECT_NE(TypeOf(c.held), kMemVram) << "the victim locked after the back-off was evicted";
  EXPECT_TRUE(exec.IsLocked(c.held->resv()));
  EXPECT_TRUE(exec.ticket().IsVictim(c.held->resv()));
  exec.Fini();
  EXPECT_FALSE(exec.ticket().IsVictim(c.held->resv()));
}

TEST(ExhaustiveEvictionTest, NoRoomIsNoSpaceOnlyWhenTheDeviceAsks) {
  for (bool propagate : {false, true}) {
    TestDevice dev{PageCount(kObjPages)};
    // Rebuild the device with the option (TestDevice makes its own).
    DeviceOptions o;
    o.propagate_nospace = propagate;
    o.memory = &dev->memory();
    Result<std::unique_ptr<Device>> d = Device::Create(&dev.driver, o);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(
        (*d)->SetManager(std::make_unique<testing::ArenaManager>(kMemVram, PageCount(kObjPages)))
            .ok());
    BoRef pinned = MakeIn(d->get(), kMemVram);
    ASSERT_TRUE(pinned->resv()->TryLock());
    pinned->resv()->AssertHeld();
    pinned->Pin();
    pinned->resv()->Unlock();
    OperationContext ctx;
    BoRef other = MakeIn(d->get(), kMemSystem);
    ASSERT_TRUE(other->resv()->TryLock());
    other->resv()->AssertHeld();
    Status s = other->Validate(PlacementOf(kMemVram), ctx);
    EXPECT_EQ(s.code(), propagate ? Errc::kNoSpace : Errc::kNoMemory) << s.ToString();
    other->resv()->Unlock();
    ASSERT_TRUE(pinned->resv()->TryLock());
    pinned->resv()->AssertHeld();
    pinned->Unpin();
    pinned->resv()->Unlock();
    pinned.reset();
    other.reset();
    (*d)->FlushDelayedDeletes();
  }
}

// Threads run Validation transactions, each over a random set of three of 16 objects, into a
// VRAM that holds four: no two transactions fit at once, yet each one alone does, so every one
// must complete (backing off, retrying with its victims locked first, at worst once more with
// the device's validation lock held exclusively).
TEST(ExhaustiveEvictionTest, EveryTransactionThatFitsCompletesUnderContention) {
  constexpr unsigned kObjects = 16, kThreads = 4, kSet = 3;
  const unsigned transactions = 120;
  TestDevice dev{PageCount(4 * kObjPages)};
  std::vector<BoRef> objs;
  for (unsigned i = 0; i < kObjects; ++i) objs.push_back(MakeIn(dev.get(), kMemSystem));
  std::atomic<unsigned> completed{0}, failed{0}, backoffs{0}, exclusive{0}, max_backoffs{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(77 + t);
      for (unsigned n = 0; n < transactions; ++n) {
        std::vector<unsigned> set;
        while (set.size() < kSet) {
          const unsigned k = rng() % kObjects;
          if (std::find(set.begin(), set.end(), k) == set.end()) set.push_back(k);
        }
        Validation v(dev.get());
        Status s = v.Run([&](ExecContext& exec) -> Status {
          for (unsigned k : set) {
            UTTM_RETURN_IF_ERROR(exec.Prepare(objs[k]->resv(), 1));
            objs[k]->resv()->AssertHeld();
            OperationContext ctx;
            UTTM_RETURN_IF_ERROR(objs[k]->Validate(PlacementOf(kMemVram), ctx));
            std::this_thread::yield();  // let the others run between two objects
          }
          return Status();
        });
        if (s.ok()) {
          for (unsigned k : set) {
            if (TypeOf(objs[k]) != kMemVram) {
              ADD_FAILURE() << "object " << k << " left VRAM while its transaction held it";
            }
          }
          completed.fetch_add(1);
          // The work the objects were placed for, with their locks held.
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        } else {
          failed.fetch_add(1);
          ADD_FAILURE() << "a transaction that fits failed: " << s.ToString();
        }
        backoffs.fetch_add(v.backoffs());
        exclusive.fetch_add(v.exclusive_retries());
        unsigned prev = max_backoffs.load();
        while (v.backoffs() > prev && !max_backoffs.compare_exchange_weak(prev, v.backoffs())) {
        }
        v.Fini();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  const unsigned total = kThreads * transactions;
  EXPECT_EQ(completed.load(), total);
  EXPECT_EQ(failed.load(), 0u);
  // Wound-wait guarantees progress; a transaction that backed off this often would be a livelock.
  EXPECT_LT(max_backoffs.load(), 1000u);
  std::printf(
      "exhaustive eviction: %u of %u transactions completed, %u back-offs (%.2f per "
      "transaction, at most %u in one), %u exclusive retries\n",
      completed.load(), total, backoffs.load(), static_cast<double>(backoffs.load()) / total,
      max_backoffs.load(), exclusive.load());
  ::testing::Test::RecordProperty("backoffs", static_cast<int>(backoffs.load()));
  ::testing::Test::RecordProperty("exclusive_retries", static_cast<int>(exclusive.load()));
  objs.clear();
  dev->FlushDelayedDeletes();
}

}  // namespace
}  // namespace uttm
