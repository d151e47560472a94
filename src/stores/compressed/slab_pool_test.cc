// Copyright (c) uttm developers.
//
// The slab pool of the compressed store: every object keeps its bytes through frees and
// compaction, emptied slabs are unmapped, and compaction bounds the slack of a class.
#include "stores/compressed/slab_pool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <vector>

namespace uttm::internal {
namespace {

// Fills an object's bytes from its owner, so a moved or overwritten object is caught.
void Fill(std::byte* p, std::uint32_t len, std::uint32_t owner) {
  for (std::uint32_t i = 0; i < len; ++i) p[i] = static_cast<std::byte>(owner * 31 + i * 7 + 1);
}
bool Holds(const std::byte* p, std::uint32_t len, std::uint32_t owner) {
  for (std::uint32_t i = 0; i < len; ++i) {
    if (p[i] != static_cast<std::byte>(owner * 31 + i * 7 + 1)) return false;
  }
  return true;
}

struct Live {
  SlabPool::Ref ref;
  std::uint32_t len;
};

// Allocates objects [first, last) of random sizes, fills them and records them in `live`.
void AllocSome(SlabPool& pool, std::uint32_t first, std::uint32_t last, std::mt19937& rng,
               std::map<std::uint32_t, Live>& live) {
  for (std::uint32_t owner = first; owner < last; ++owner) {
    const std::uint32_t len = 1 + rng() % 4096;
    SlabPool::Ref ref;
    ASSERT_TRUE(pool.Alloc(len, owner, &ref));
    Fill(pool.At(ref), len, owner);
    live[owner] = Live{ref, len};
  }
}

TEST(SlabPoolTest, ObjectsKeepTheirBytesThroughFreesAndCompaction) {
  PageProvider provider;
  SlabPool pool(&provider);
  std::mt19937 rng(5);
  std::map<std::uint32_t, Live> live;
  AllocSome(pool, 0, 20000, rng, live);
  const std::uint64_t peak = pool.bytes();
  // Free three quarters at random, then compact: the owners learn their new places.
  for (auto it = live.begin(); it != live.end();) {
    if (rng() % 4 != 0) {
      pool.Free(it->second.ref);
      it = live.erase(it);
    } else {
      ++it;
    }
  }
  std::size_t reported = 0;
  const std::size_t moved = pool.Compact([&](std::uint32_t owner, SlabPool::Ref to) {
    ASSERT_EQ(live.count(owner), 1u) << "a freed object was moved";
    live[owner].ref = to;
    ++reported;
  });
  EXPECT_EQ(moved, reported);
  EXPECT_GT(moved, 0u);
  for (const auto& [owner, l] : live) {
    ASSERT_TRUE(Holds(pool.At(l.ref), l.len, owner)) << "object " << owner;
  }
  EXPECT_EQ(pool.used_slots(), live.size());
  // The slack bound of every class: at most a quarter free, or two slabs' worth.
  std::uint64_t bound = pool.used_slots() / 3 + 1;
  for (std::uint32_t cls = 0; cls < SlabPool::kClasses; ++cls)
    bound += 2 * SlabPool::SlotsPerSlab(cls);
  EXPECT_LE(pool.slot_capacity() - pool.used_slots(), bound);
  EXPECT_LT(pool.bytes(), peak / 2) << "compaction gave slabs back";
  // New objects still fit and nothing old is disturbed.
  AllocSome(pool, 20000, 21000, rng, live);
  for (const auto& [owner, l] : live) {
    ASSERT_TRUE(Holds(pool.At(l.ref), l.len, owner)) << "object " << owner;
  }
}

TEST(SlabPoolTest, AClassThatEmptiesKeepsAtMostOneSlab) {
  PageProvider provider;
  SlabPool pool(&provider);
  const std::uint32_t per_slab = SlabPool::SlotsPerSlab(SlabPool::ClassOf(1000));
  std::vector<SlabPool::Ref> refs(per_slab * 3 + 1);
  for (std::uint32_t i = 0; i < refs.size(); ++i) ASSERT_TRUE(pool.Alloc(1000, i, &refs[i]));
  const std::uint64_t slab = SlabPool::kSlabBytes + per_slab * sizeof(std::uint32_t);
  EXPECT_EQ(pool.bytes(), 4 * slab);
  for (const SlabPool::Ref& r : refs) pool.Free(r);
  // One slab stays with the class; the three others wait as spares (64 KiB each).
  EXPECT_EQ(pool.bytes(), slab + 3 * SlabPool::kSlabBytes);
  EXPECT_EQ(pool.used_slots(), 0u);
  EXPECT_TRUE(pool.TakeReleased().empty()) << "spares are kept";
  // A new class takes a spare before it asks the provider.
  const std::uint64_t provider_pages = provider.pages_in_use();
  SlabPool::Ref r;
  ASSERT_TRUE(pool.Alloc(100, 1, &r));
  EXPECT_EQ(provider.pages_in_use(), provider_pages);
  EXPECT_EQ(pool.bytes(),
            slab + 3 * SlabPool::kSlabBytes +
                SlabPool::SlotsPerSlab(SlabPool::ClassOf(100)) * sizeof(std::uint32_t));
}

TEST(SlabPoolTest, SlabsBeyondTheSparesGoBackToTheProvider) {
  PageProvider provider;
  const std::uint32_t per_slab = SlabPool::SlotsPerSlab(SlabPool::ClassOf(4096));
  constexpr std::size_t kSpares = 16;
  SlabPool pool(&provider, kSpares);
  const std::uint32_t slabs = kSpares + 10;
  std::vector<SlabPool::Ref> refs(per_slab * slabs);
  for (std::uint32_t i = 0; i < refs.size(); ++i) ASSERT_TRUE(pool.Alloc(4096, i, &refs[i]));
  EXPECT_EQ(provider.pages_in_use(), slabs * 16u);
  for (const SlabPool::Ref& r : refs) pool.Free(r);
  std::vector<PageChunk> released = pool.TakeReleased();
  EXPECT_EQ(released.size(), 9u) << "one kept by the class, kSpareSlabs spares";
  provider.Free(released);
  EXPECT_EQ(provider.pages_in_use(), (kSpares + 1) * 16u);
}

TEST(SlabPoolTest, SizesMapToTheNextClass) {
  EXPECT_EQ(SlabPool::ClassOf(1), 0u);
  EXPECT_EQ(SlabPool::ClassOf(64), 0u);
  EXPECT_EQ(SlabPool::ClassOf(65), 1u);
  EXPECT_EQ(SlabPool::ClassOf(4096), SlabPool::kClasses - 1);
  EXPECT_EQ(SlabPool::SlotBytes(SlabPool::kClasses - 1), 4096u);
  EXPECT_EQ(SlabPool::SlotsPerSlab(SlabPool::kClasses - 1), 16u);
}

}  // namespace
}  // namespace uttm::internal
