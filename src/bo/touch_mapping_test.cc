// Copyright (c) uttm developers.
//
// Restore-on-touch mappings (kMapRestoreOnTouch): the range stays while reclaim backs the object
// up, a touch (by the CPU, or by the kernel copying from it in a system call) restores it there
// with every byte exact, writes through the range survive evictions, the object stays evictable
// and counted, many threads touch while reclaim runs, a restore that fails closes the range and
// says why, misuse is refused, and a process refused userfaultfd gets an explicit mapping.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "testing/bo_content.h"
#include "testing/child_process.h"
#include "testing/content.h"
#include "testing/shrinker_device.h"
#include "testing/test_device.h"
#include "uttm/bo_shrinker.h"
#include "uttm/buffer_object.h"
#include "uttm/fault_injection.h"
#include "uttm/mapping.h"
#include "uttm/page_vector.h"
#include "uttm/reservation_guard.h"

namespace uttm {
namespace {

using testing::ExpectContent;
using testing::Fill;
using testing::PlacementOf;

constexpr std::uint64_t kPages = 300;  // orders 8, 5, 3, 2: several chunks
constexpr unsigned kTouchRw = kMapRead | kMapWrite | kMapRestoreOnTouch;

// Copies `len` bytes at `addr` out through a pipe: the kernel reads them (copy_from_user), so a
// missing page is a fault the service answers, and a closed range is EFAULT instead of a signal.
// Returns 0 or the errno.
int CopyOutBySyscall(const std::byte* addr, std::size_t len, std::vector<std::byte>* out) {
  int fds[2];
  if (pipe(fds) != 0) return errno;
  out->resize(len);
  int err = 0;
  for (std::size_t done = 0; done < len && err == 0;) {
    const std::size_t n = std::min<std::size_t>(16 << 10, len - done);
    const ssize_t w = write(fds[1], addr + done, n);
    if (w <= 0) {
      err = w < 0 ? errno : EIO;
      break;
    }
    for (std::size_t got = 0; got < static_cast<std::size_t>(w);) {
      const ssize_t r = read(fds[0], out->data() + done + got, static_cast<std::size_t>(w) - got);
      if (r <= 0) {
        err = EIO;
        break;
      }
      got += static_cast<std::size_t>(r);
    }
    done += static_cast<std::size_t>(w);
  }
  close(fds[0]);
  close(fds[1]);
  return err;
}

class TouchMappingTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(rig_.Init(PageCount(1024)).ok()); }
  void TearDown() override {
    (*dev_)->FlushDelayedDeletes();
    dev_.reset();
    EXPECT_EQ(memory_->pages_allocated().value(), 0u);
    EXPECT_EQ(store_->BytesUsed(), 0u);
  }
  BoRef Make(MemType type, std::uint64_t pages = kPages) {
    OperationContext ctx;
    BoOptions opts;
    opts.size = Bytes(pages * kPageSize);
    auto bo = BufferObject::Create(dev_->get(), opts, PlacementOf(type), ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    return bo.ok() ? *bo : BoRef();
  }
  Mapping MapOnTouch(const BoRef& bo, unsigned flags = kTouchRw) {
    OperationContext ctx;
    auto map = Mapping::Create(bo, flags, ctx);
    EXPECT_TRUE(map.ok()) << map.status().ToString();
    if (!map.ok()) return Mapping();
    EXPECT_TRUE(map->restores_on_touch());
    return std::move(map).value();
  }
  // Backs every object up (the shrinker, as reclaim would).
  void Evict() {
    for (int i = 0; i < 16; ++i) {
      const std::uint64_t freed = rig_.Shrink();
      if (freed == 0 || freed == kShrinkStop) break;
    }
  }
  // State read under the reservation (the fault service changed it on its own thread).
  // An object filled with content `object`, mapped read-only on touch into *map, then backed up.
  BoRef MakeBackedUp(std::uint64_t object, Mapping* map) {
    BoRef bo = Make(kMemTt);
    Fill(*bo, object);
    *map = MapOnTouch(bo, kMapRead | kMapRestoreOnTouch);
    Evict();
    EXPECT_TRUE(BackedUp(bo));
    return bo;
  }
  static bool BackedUp(const BoRef& bo) {
    OperationContext ctx;
    auto guard = ReservationGuard::Acquire(*bo, ctx);
    EXPECT_TRUE(guard.ok());
    bo->resv()->AssertHeld();
    return bo->tt() != nullptr && bo->tt()->is_backed_up();
  }
  static MemType PlacedIn(const BoRef& bo) {
    OperationContext ctx;
    auto guard = ReservationGuard::Acquire(*bo, ctx);
    EXPECT_TRUE(guard.ok());
    bo->resv()->AssertHeld();
    return bo->resource()->mem_type();
  }
  static Madvice Advice(const BoRef& bo) {
    OperationContext ctx;
    auto guard = ReservationGuard::Acquire(*bo, ctx);
    EXPECT_TRUE(guard.ok());
    bo->resv()->AssertHeld();
    return bo->madvice();
  }

  testing::ShrinkerDevice rig_;
  Stats& stats_ = rig_.stats;
  std::unique_ptr<MemoryContext>& memory_ = rig_.memory;
  std::unique_ptr<BackupStore>& store_ = rig_.store;
  std::unique_ptr<testing::TestDevice>& dev_ = rig_.dev;
};

// The range keeps its address while the object goes to the store and back, three times; a CPU
// touch brings back every byte, exactly, and nothing is restored before a touch.
TEST_F(TouchMappingTest, ABackedUpObjectComesBackWhereItWasWhenTouched) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 11);
  Mapping map = MapOnTouch(bo, kMapRead | kMapRestoreOnTouch);
  ASSERT_TRUE(map);
  EXPECT_EQ(bo->pin_count(), 0) << "a restore-on-touch mapping must not pin";
  std::byte* const addr = map.data();
  for (int round = 0; round < 3; ++round) {
    Evict();
    ASSERT_TRUE(BackedUp(bo)) << "round " << round;
    EXPECT_EQ(memory_->pages_allocated().value(), 0u) << "the object's pages left with it";
    EXPECT_EQ(stats_.Get(Stat::kTouchRestores), static_cast<std::uint64_t>(round));
    EXPECT_FALSE(testing::FindMismatch({11, 1}, 0, map.span()).has_value()) << "round " << round;
    EXPECT_EQ(map.data(), addr);
    EXPECT_FALSE(BackedUp(bo));
    EXPECT_EQ(stats_.Get(Stat::kTouchRestores), static_cast<std::uint64_t>(round) + 1);
  }
  EXPECT_TRUE(map.touch_status().ok());
}

// Writes through the range are the object's contents: they survive an eviction, reach Read, and
// a restore done by someone else (Read) is moved into the range at the next touch.
TEST_F(TouchMappingTest, WritesThroughTheRangeSurviveEvictionAndAreTheObjectsContents) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 12);
  Mapping map = MapOnTouch(bo);
  ASSERT_TRUE(map);
  for (std::uint32_t version = 2; version <= 4; ++version) {
    Evict();
    ASSERT_TRUE(BackedUp(bo));
    std::vector<std::byte> v = testing::Content({12, version}, 0, map.size());
    std::memcpy(map.data(), v.data(), v.size());  // the first byte written restores the object
    Evict();
    ASSERT_TRUE(BackedUp(bo));
    ExpectContent(*bo, 12, version);  // Read restores it, outside the range
    EXPECT_FALSE(testing::FindMismatch({12, version}, 0, map.span()).has_value());
  }
}

// The kernel reading the range (a write(2) from it) is served like a CPU touch.
TEST_F(TouchMappingTest, ASystemCallReadingTheRangeIsServedToo) {
  Mapping map;
  BoRef bo = MakeBackedUp(13, &map);
  std::vector<std::byte> out;
  ASSERT_EQ(CopyOutBySyscall(map.data(), map.size(), &out), 0);
  EXPECT_FALSE(testing::FindMismatch({13, 1}, 0, out).has_value());
}

// Unlike an explicit mapping, the object stays on its LRU and in the shrinker's counts.
TEST_F(TouchMappingTest, TheObjectStaysEvictableAndCounted) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 14);
  Mapping map = MapOnTouch(bo);
  ShrinkControl sc;
  EXPECT_GE(rig_.shrinker->Count(sc), kPages);
  Evict();
  EXPECT_TRUE(BackedUp(bo));
  OperationContext ctx;
  {
    auto pinned = Mapping::Create(bo, kMapRead, ctx);  // an explicit one, in the same range
    ASSERT_TRUE(pinned.ok()) << pinned.status().ToString();
    EXPECT_EQ(pinned->data(), map.data());
    EXPECT_EQ(bo->pin_count(), 1);
    Evict();
    EXPECT_FALSE(BackedUp(bo)) << "an explicitly mapped object is pinned";
    map.reset();  // the range stays for the explicit mapping
    EXPECT_FALSE(testing::FindMismatch({14, 1}, 0, pinned->span()).has_value());
  }
  Evict();
  EXPECT_TRUE(BackedUp(bo));
  ExpectContent(*bo, 14, 1);
}

// Four threads write and check their objects through restore-on-touch ranges while another
// thread keeps backing everything up: every byte is right every time, and touches restored.
TEST_F(TouchMappingTest, ThreadsTouchWhileReclaimBacksTheObjectsUp) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 3;
  constexpr std::uint64_t kSmall = 64;
  std::vector<BoRef> bos;
  std::vector<Mapping> maps;
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    bos.push_back(Make(kMemTt, kSmall));
    Fill(*bos.back(), 100 + static_cast<std::uint64_t>(i));
    maps.push_back(MapOnTouch(bos.back()));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread reclaim([&] {
    while (!stop.load()) {
      rig_.Shrink(128);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::vector<std::thread> users;
  for (int t = 0; t < kThreads; ++t) {
    users.emplace_back([&, t] {
      for (std::uint32_t version = 2; version < 40; ++version) {
        for (int k = 0; k < kPerThread; ++k) {
          const int i = t * kPerThread + k;
          const std::uint64_t object = 100 + static_cast<std::uint64_t>(i);
          if (testing::FindMismatch({object, version - 1}, 0, maps[i].span()).has_value()) {
            bad.fetch_add(1);
          }
          testing::FillContent({object, version}, 0, maps[i].span());
        }
      }
    });
  }
  for (std::thread& u : users) u.join();
  stop.store(true);
  reclaim.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(stats_.Get(Stat::kTouchRestores), 0u) << "reclaim never took a touched object";
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    ExpectContent(*bos[i], 100 + static_cast<std::uint64_t>(i), 39);
  }
}

// A restore that fails (the store cannot read the object back) closes the range: the touch is
// EFAULT for a system call (a SIGSEGV for the CPU), touch_status says why, and the object's
// contents are intact for an explicit read once the store reads again.
TEST_F(TouchMappingTest, AFailedRestoreClosesTheRangeAndSaysWhy) {
  Mapping map;
  BoRef bo = MakeBackedUp(15, &map);
  std::vector<std::byte> out;
  {
    ScopedFault fault(FaultPoint::kStoreRead, {});
    EXPECT_EQ(CopyOutBySyscall(map.data(), kPageSize, &out), EFAULT);
  }
  const Status why = map.touch_status();
  EXPECT_EQ(why.code(), Errc::kIo) << why.ToString();
  EXPECT_EQ(stats_.Get(Stat::kTouchFailures), 1u);
  EXPECT_EQ(CopyOutBySyscall(map.data(), kPageSize, &out), EFAULT) << "the range stays closed";
  ExpectContent(*bo, 15, 1);
  OperationContext ctx;
  EXPECT_EQ(Mapping::Create(bo, kMapRead | kMapRestoreOnTouch, ctx).code(), Errc::kIo)
      << "a second restore-on-touch mapping shares the closed range";
}

// A purged object has nothing to restore: the range closes, saying so.
TEST_F(TouchMappingTest, APurgedObjectClosesTheRange) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 16);
  Mapping map = MapOnTouch(bo, kMapRead | kMapRestoreOnTouch);
  OperationContext ctx;
  ASSERT_TRUE(bo->Madvise(Madvice::kDontNeed, ctx).ok());
  Evict();
  ASSERT_EQ(Advice(bo), Madvice::kPurged);
  std::vector<std::byte> out;
  EXPECT_EQ(CopyOutBySyscall(map.data(), kPageSize, &out), EFAULT);
  EXPECT_NE(map.touch_status().message().find("purged"), std::string_view::npos)
      << map.touch_status().ToString();
}

// An object a driver moved to device memory meanwhile comes back to SYSTEM on the touch.
TEST_F(TouchMappingTest, AnObjectMovedToDeviceMemoryComesBackOnTouch) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 17);
  Mapping map = MapOnTouch(bo, kMapRead | kMapRestoreOnTouch);
  OperationContext ctx;
  {
    auto guard = ReservationGuard::Acquire(*bo, ctx);
    ASSERT_TRUE(guard.ok());
    bo->resv()->AssertHeld();
    ASSERT_TRUE(bo->Validate(PlacementOf(kMemVram), ctx).ok());
  }
  ASSERT_EQ(PlacedIn(bo), kMemVram);
  EXPECT_FALSE(testing::FindMismatch({17, 1}, 0, map.span()).has_value());
  EXPECT_EQ(PlacedIn(bo), kMemSystem);
}

TEST_F(TouchMappingTest, MisuseIsRefusedWithAClearError) {
  BoRef bo = Make(kMemTt);
  BoRef vram = Make(kMemVram);
  OperationContext ctx;
  EXPECT_EQ(Mapping::Create(bo, kMapWrite | kMapDiscard | kMapRestoreOnTouch, ctx).code(),
            Errc::kInvalid);
  EXPECT_EQ(Mapping::Create(bo, kMapRestoreOnTouch, ctx).code(), Errc::kInvalid);
  auto in_vram = Mapping::Create(vram, kTouchRw, ctx);
  EXPECT_EQ(in_vram.code(), Errc::kInvalid);
  EXPECT_NE(in_vram.status().ToString().find("device memory"), std::string::npos);
  {
    auto pinned = Mapping::Create(bo, kMapRead, ctx);
    ASSERT_TRUE(pinned.ok());
    EXPECT_EQ(Mapping::Create(bo, kTouchRw, ctx).code(), Errc::kBusy);
  }
  Mapping a = MapOnTouch(bo);
  Mapping b = MapOnTouch(bo, kMapRead | kMapRestoreOnTouch);
  EXPECT_EQ(a.data(), b.data()) << "restore-on-touch mappings of one object share its range";
}

// A process whose seccomp profile refuses userfaultfd gets explicit (pinned) mappings, working,
// and is told once why.
TEST(TouchMappingRefusedTest, ARefusedUserfaultfdGivesAnExplicitMappingAndSaysSoOnce) {
  const testing::ChildResult r = testing::RunInChild([] {
    if (!testing::RefuseWithSeccomp(__NR_userfaultfd)) return 3;
    testing::ShrinkerDevice rig;
    if (!rig.Init(PageCount(256)).ok()) return 4;
    OperationContext ctx;
    BoOptions opts;
    opts.size = Bytes(kPages * kPageSize);
    for (std::uint64_t i = 0; i < 2; ++i) {
      auto bo = BufferObject::Create(rig.dev->get(), opts, PlacementOf(kMemTt), ctx);
      if (!bo.ok()) return 5;
      Fill(**bo, 18 + i);
      auto map = Mapping::Create(*bo, kTouchRw, ctx);
      if (!map.ok() || map->restores_on_touch() || (*bo)->pin_count() != 1) return 6;
      if (testing::FindMismatch({18 + i, 1}, 0, map->span()).has_value()) return 7;
    }
    return 0;
  });
  ASSERT_NE(r.code, 3) << "the kernel refused the seccomp filter";
  EXPECT_EQ(r.code, 0) << r.err;
  const std::string said = "restore-on-touch mappings are made as explicit mappings here";
  ASSERT_NE(r.err.find(said), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("userfaultfd: Operation not permitted"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(said, r.err.find(said) + 1), std::string::npos) << "said twice: " << r.err;
}

}  // namespace
}  // namespace uttm
