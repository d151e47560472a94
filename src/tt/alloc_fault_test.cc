// Copyright (c) uttm developers.
//
// The reclaim path under heap exhaustion. This test binary replaces the global operator new so
// that the k-th allocation made by the test thread throws std::bad_alloc, for every k the
// operation meets: a backup, a restore, a drop, a legacy swapout and its swap-in of a page vector
// in a file store must end with OK or kNoMemory (never an exception), leave the vector consistent
// and lose no byte.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "testing/content.h"
#include "uttm/file_store.h"
#include "uttm/memory_context.h"
#include "uttm/page_vector.h"

namespace {

// Only the test thread's allocations count (a store's helper threads allocate too).
thread_local bool t_armed = false;
thread_local long t_count = 0;
thread_local long t_fail_at = -1;
thread_local long t_failed = 0;

}  // namespace

// The replacement pairs malloc with free; g++ cannot see that through the inlined callers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n) {
  if (t_armed && t_count++ == t_fail_at) {
    ++t_failed;
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace uttm {
namespace {

constexpr std::size_t kPages = 64;

void Arm(long fail_at) {
  t_count = 0;
  t_fail_at = fail_at;
  t_failed = 0;
  t_armed = true;
}
// Returns whether an allocation failure was injected since Arm.
bool Disarm() {
  t_armed = false;
  return t_failed > 0;
}

struct Rig {
  Rig() {
    memory = std::make_unique<MemoryContext>(MemoryContextOptions{});
    FileStoreOptions fo;
    fo.parallel_checksum = false;
    auto s = NewFileStore(fo);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store = std::move(s).value();
    auto v = PageVector::Create(memory.get(), {.size = Bytes(kPages * kPageSize)});
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    tt = std::move(v).value();
    OperationContext ctx;
    EXPECT_TRUE(tt->Populate(ctx).ok());
    EXPECT_TRUE(tt->Write(0, testing::Content({5, 1}, 0, kPages * kPageSize)).ok());
  }
  // Brings the vector back if needed and checks every byte.
  void ExpectIntact() {
    OperationContext ctx;
    if (tt->is_backed_up()) {
      ASSERT_TRUE(tt->Restore(ctx, store.get()).ok());
    }
    if (tt->is_swapped()) {
      ASSERT_TRUE(tt->Populate(ctx).ok());
    }
    std::vector<std::byte> got(kPages * kPageSize);
    ASSERT_TRUE(tt->Read(0, got).ok());
    ASSERT_FALSE(testing::FindMismatch({5, 1}, 0, got).has_value());
  }
  std::unique_ptr<MemoryContext> memory;
  std::unique_ptr<BackupStore> store;
  std::unique_ptr<PageVector> tt;
};

// Runs `op` with allocation k failing, for k = 0, 1, ... until an run meets no failure; `check`
// looks at the outcome.
template <typename Op, typename Check>
void ForEveryAllocation(Op op, Check check) {
  for (long k = 0;; ++k) {
    ASSERT_LT(k, 100000) << "the operation never ran through";
    Rig rig;
    Arm(k);
    Status s;
    try {
      s = op(rig);
    } catch (const std::bad_alloc&) {
      Disarm();
      FAIL() << "the failure of allocation " << k << " escaped as an exception";
    }
    const bool injected = Disarm();
    ASSERT_TRUE(s.ok() || s.code() == Errc::kNoMemory)
        << "allocation " << k << ": " << s.ToString();
    if (!injected) {
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    Status consistent = rig.tt->CheckConsistency();
    ASSERT_TRUE(consistent.ok()) << "allocation " << k << ": " << consistent.ToString();
    check(rig, s);
    rig.ExpectIntact();
    if (!injected) {
      std::printf("%ld allocations met, each failed once\n", k);
      return;
    }
  }
}

TEST(AllocFaultTest, ABackupUnderEveryAllocationFailureLosesNothing) {
  ForEveryAllocation(
      [](Rig& rig) {
        Result<PageCount> r = rig.tt->Backup(BackupOptions{}, rig.store.get());
        return r.status();
      },
      [](Rig& rig, const Status& s) {
        if (!s.ok()) {
          EXPECT_TRUE(rig.tt->is_populated() || rig.tt->is_partial());
        }
      });
}

// Dropping a backup (the object goes away) under allocation failure: no exception, and the store
// gives the space back even when it has to go page by page.
TEST(AllocFaultTest, DroppingABackupUnderEveryAllocationFailureFreesTheStore) {
  for (long k = 0;; ++k) {
    ASSERT_LT(k, 100000);
    Rig rig;
    ASSERT_TRUE(rig.tt->Backup(BackupOptions{}, rig.store.get()).ok());
    Arm(k);
    try {
      rig.tt->DiscardBackup();
    } catch (const std::bad_alloc&) {
      Disarm();
      FAIL() << "the failure of allocation " << k << " escaped as an exception";
    }
    const bool injected = Disarm();
    EXPECT_EQ(rig.store->BytesUsed(), 0u) << "allocation " << k;
    EXPECT_TRUE(rig.tt->CheckConsistency().ok());
    if (!injected) break;
  }
}

TEST(AllocFaultTest, ARestoreUnderEveryAllocationFailureLosesNothing) {
  ForEveryAllocation(
      [](Rig& rig) {
        t_armed = false;  // the backup runs with no fault; counting starts at the restore
        if (Result<PageCount> r = rig.tt->Backup(BackupOptions{}, rig.store.get()); !r.ok()) {
          return r.status();
        }
        OperationContext ctx;
        Arm(t_fail_at);
        return rig.tt->Restore(ctx, rig.store.get());
      },
      [](Rig& rig, const Status& s) {
        EXPECT_EQ(rig.tt->is_populated(), s.ok());
        EXPECT_EQ(rig.tt->is_backed_up(), !s.ok());
      });
}

TEST(AllocFaultTest, ASwapoutAndSwapInUnderEveryAllocationFailureLoseNothing) {
  ForEveryAllocation([](Rig& rig) { return rig.tt->Swapout(rig.store.get()).status(); },
                     [](Rig& rig, const Status& s) {
                       EXPECT_EQ(rig.tt->is_swapped(), s.ok());
                       EXPECT_EQ(rig.tt->is_populated(), !s.ok());
                     });
  ForEveryAllocation(
      [](Rig& rig) {
        t_armed = false;
        if (Result<PageCount> r = rig.tt->Swapout(rig.store.get()); !r.ok()) return r.status();
        OperationContext ctx;
        Arm(t_fail_at);
        return rig.tt->Populate(ctx);
      },
      [](Rig& rig, const Status& s) {
        EXPECT_EQ(rig.tt->is_populated(), s.ok());
        // A swap-in that failed midway keeps its progress as a partial backup.
        EXPECT_EQ(rig.tt->is_swapped() || rig.tt->is_backed_up(), !s.ok());
      });
}

// Giving pages back and releasing the pool under allocation failure: the pool's lists may not
// grow, yet every page is accounted for (back in the pool or back with the OS).
TEST(AllocFaultTest, UnpopulatingIntoThePoolUnderEveryAllocationFailureLeaksNothing) {
  for (long k = 0;; ++k) {
    ASSERT_LT(k, 100000);
    MemoryContextOptions mo;
    auto memory = std::make_unique<MemoryContext>(mo);
    const std::uint64_t before = memory->provider().pages_in_use();
    auto v = PageVector::Create(
        memory.get(), {.size = Bytes(kPages * kPageSize), .caching = Caching::kWriteCombined});
    ASSERT_TRUE(v.ok());
    OperationContext ctx;
    ASSERT_TRUE((*v)->Populate(ctx).ok());
    Arm(k);
    try {
      (*v)->Unpopulate();
      v->reset();
      memory->pool().Fini();
    } catch (const std::bad_alloc&) {
      Disarm();
      FAIL() << "the failure of allocation " << k << " escaped as an exception";
    }
    const bool injected = Disarm();
    EXPECT_EQ(memory->pool().pooled_pages(), 0u) << "allocation " << k;
    EXPECT_EQ(memory->provider().pages_in_use(), before) << "allocation " << k;
    if (!injected) {
      std::printf("%ld allocations met, each failed once\n", k);
      break;
    }
  }
}

}  // namespace
}  // namespace uttm
