// Copyright (c) uttm developers.
//
// CPU mappings of buffer objects: one contiguous address for the whole object, made without
// copying (pages moved by mremap when they are not already end to end); a mapped object is pinned
// against the shrinker and eviction; discard skips the read-back; xe's purgeable contract;
// nesting; and the page-vector mapping on its own, with pages that had to move.
#include "uttm/mapping.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "testing/bo_content.h"
#include "testing/content.h"
#include "testing/shrinker_device.h"
#include "testing/test_device.h"
#include "uttm/bo_shrinker.h"
#include "uttm/buffer_object.h"
#include "uttm/fault_injection.h"
#include "uttm/memfd_store.h"
#include "uttm/page_vector.h"
#include "uttm/reservation_guard.h"

namespace uttm {
namespace {

using testing::ExpectContent;
using testing::Fill;
using testing::PlacementOf;
using testing::TestDevice;

constexpr std::uint64_t kPages = 300;  // orders 8, 5, 3, 2: several chunks

class MappingTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(rig_.Init(PageCount(256)).ok()); }
  void TearDown() override {
    (*dev_)->FlushDelayedDeletes();
    dev_.reset();
    EXPECT_EQ(memory_->pages_allocated().value(), 0u);
    EXPECT_EQ(store_->BytesUsed(), 0u);
  }
  BoRef Make(MemType type) {
    OperationContext ctx;
    BoOptions opts;
    opts.size = Bytes(kPages * kPageSize);
    auto bo = BufferObject::Create(dev_->get(), opts, PlacementOf(type), ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    return bo.ok() ? *bo : BoRef();
  }
  std::uint64_t Shrink() { return rig_.Shrink(); }

  testing::ShrinkerDevice rig_;
  Stats& stats_ = rig_.stats;
  std::unique_ptr<MemoryContext>& memory_ = rig_.memory;
  std::unique_ptr<BackupStore>& store_ = rig_.store;
  std::unique_ptr<BoShrinker>& shrinker_ = rig_.shrinker;
  std::unique_ptr<TestDevice>& dev_ = rig_.dev;
};

TEST_F(MappingTest, OneContiguousAddressForTheWholeObjectAndWritesLand) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 1);
  OperationContext ctx;
  {
    auto map = Mapping::Create(bo, kMapRead | kMapWrite, ctx);
    ASSERT_TRUE(map.ok()) << map.status().ToString();
    ASSERT_EQ(map->size(), kPages * kPageSize);
    EXPECT_FALSE(testing::FindMismatch({1, 1}, 0, map->span()).has_value());
    std::vector<std::byte> v2 = testing::Content({1, 2}, 0, kPages * kPageSize);
    std::memcpy(map->data(), v2.data(), v2.size());
  }
  ExpectContent(*bo, 1, 2);  // the writes through the mapping are the object's contents
}

TEST_F(MappingTest, ARangeMapsTheRightBytesAndWritesLandAtTheirOffset) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 5);
  ASSERT_GT(Shrink(), 0u);  // backed up: the range restores the object
  OperationContext ctx;
  const std::uint64_t offset = 37 * kPageSize + 123;  // not page aligned
  const std::uint64_t length = 100 * kPageSize + 7;
  std::vector<std::byte> v2 = testing::Content({5, 2}, 0, kPages * kPageSize);
  {
    auto map = Mapping::CreateRange(bo, offset, length, kMapRead | kMapWrite, ctx);
    ASSERT_TRUE(map.ok()) << map.status().ToString();
    ASSERT_EQ(map->size(), length);
    EXPECT_FALSE(testing::FindMismatch({5, 1}, offset, map->span()).has_value());
    std::memcpy(map->data(), v2.data() + offset, length);
  }
  // Inside the range: version 2; outside it: version 1, untouched.
  std::vector<std::byte> got(kPages * kPageSize);
  ASSERT_TRUE(bo->Read(0, got, ctx).ok());
  EXPECT_FALSE(testing::FindMismatch({5, 1}, 0, std::span(got).first(offset)).has_value());
  EXPECT_FALSE(
      testing::FindMismatch({5, 2}, offset, std::span(got).subspan(offset, length)).has_value());
  EXPECT_FALSE(
      testing::FindMismatch({5, 1}, offset + length, std::span(got).subspan(offset + length))
          .has_value());
}

TEST_F(MappingTest, BadRangesAreClearErrorsAndChangeNothing) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 6);
  OperationContext ctx;
  const std::uint64_t size = kPages * kPageSize;
  struct Case {
    std::uint64_t offset, length;
    unsigned flags;
  };
  for (const Case& c :
       {Case{0, 0, kMapRead}, Case{size, 1, kMapRead}, Case{1, size, kMapRead},
        Case{~std::uint64_t{0}, 2, kMapRead}, Case{4096, ~std::uint64_t{0}, kMapRead},
        Case{0, size - 1, kMapWrite | kMapDiscard}}) {
    auto map = Mapping::CreateRange(bo, c.offset, c.length, c.flags, ctx);
    ASSERT_FALSE(map.ok()) << c.offset << "+" << c.length;
    EXPECT_EQ(map.code(), Errc::kInvalid);
    EXPECT_NE(map.status().ToString().find("Mapping::CreateRange"), std::string::npos);
  }
  EXPECT_EQ(bo->pin_count(), 0);
  ExpectContent(*bo, 6, 1);
  // The whole object as a range, with discard, is allowed.
  auto map = Mapping::CreateRange(bo, 0, size, kMapWrite | kMapDiscard, ctx);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->size(), size);
}

TEST_F(MappingTest, AMappedObjectIsPinnedAgainstTheShrinkerAndEviction) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 2);
  OperationContext ctx;
  auto map = Mapping::Create(bo, kMapRead, ctx);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(shrinker_->shrinkable_pages(), 0u);
  Shrink();
  (void)BufferObject::EvictAll(*(*dev_).get(), (*dev_)->manager(kMemTt), ctx);
  EXPECT_TRUE(bo->tt()->is_populated());
  EXPECT_EQ(store_->BytesUsed(), 0u);
  EXPECT_EQ(bo->resource()->mem_type(), kMemTt);
  EXPECT_FALSE(testing::FindMismatch({2, 1}, 0, map->span()).has_value());
  map->reset();
  EXPECT_EQ(shrinker_->shrinkable_pages(), kPages);
  Shrink();  // unmapped: reclaimable again
  EXPECT_TRUE(bo->tt()->is_backed_up());
  ExpectContent(*bo, 2);
}

TEST_F(MappingTest, MappingABackedUpObjectRestoresItAndDiscardSkipsTheReadBack) {
  BoRef a = Make(kMemTt);
  BoRef b = Make(kMemTt);
  Fill(*a, 3);
  Fill(*b, 4);
  ASSERT_GT(Shrink(), 0u);
  ASSERT_TRUE(a->tt()->is_backed_up() && b->tt()->is_backed_up());
  OperationContext ctx;
  const std::uint64_t read_before = stats_.Get(Stat::kStoreBytesRead);
  auto ma = Mapping::Create(a, kMapRead, ctx);
  ASSERT_TRUE(ma.ok()) << ma.status().ToString();
  EXPECT_FALSE(testing::FindMismatch({3, 1}, 0, ma->span()).has_value());
  const std::uint64_t read_for_a = stats_.Get(Stat::kStoreBytesRead) - read_before;
  EXPECT_EQ(read_for_a, kPages * kPageSize);
  auto mb = Mapping::Create(b, kMapWrite | kMapDiscard, ctx);
  ASSERT_TRUE(mb.ok()) << mb.status().ToString();
  EXPECT_EQ(stats_.Get(Stat::kStoreBytesRead) - read_before, read_for_a) << "discard read data";
  for (std::byte x : mb->span()) ASSERT_EQ(x, std::byte{0});
  EXPECT_FALSE(b->tt()->is_backed_up());
}

// A discard mapping that cannot get its fresh pages fails and leaves the backup where it was (the
// fuzzer found the first version dropping the backup before it had the pages).
TEST_F(MappingTest, ADiscardMappingThatFailsKeepsTheContents) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 8);
  ASSERT_GT(Shrink(), 0u);
  ASSERT_TRUE(bo->tt()->is_backed_up());
  // The pages the backup gave up wait in the pool (recycled), which serves them, cleared, when
  // the provider fails: give them to the OS so that the failure reaches the mapping.
  memory_->pool().Shrink(~std::uint64_t{0});
  OperationContext ctx;
  {
    ScopedFault fault(FaultPoint::kPageAlloc, FaultSpec{});
    EXPECT_EQ(Mapping::Create(bo, kMapWrite | kMapDiscard, ctx).status().code(), Errc::kNoMemory);
  }
  EXPECT_TRUE(bo->tt()->is_backed_up());
  EXPECT_EQ(bo->pin_count(), 0);
  EXPECT_EQ(shrinker_->shrinkable_pages(), 0u);  // nothing resident to reclaim
  ExpectContent(*bo, 8);
}

TEST_F(MappingTest, PurgeableObjectsFollowTheXeContract) {
  BoRef bo = Make(kMemTt);
  Fill(*bo, 5);
  OperationContext ctx;
  ASSERT_TRUE(bo->Madvise(Madvice::kDontNeed, ctx).ok());
  EXPECT_EQ(Mapping::Create(bo, kMapRead, ctx).status().code(), Errc::kBusy);
  ASSERT_GT(Shrink(), 0u);  // purged
  EXPECT_EQ(bo->madvice(), Madvice::kPurged);
  EXPECT_EQ(Mapping::Create(bo, kMapRead, ctx).status().code(), Errc::kInvalid);
  EXPECT_EQ(Mapping::Create(BoRef(), kMapRead, ctx).status().code(), Errc::kInvalid);
  EXPECT_EQ(Mapping::Create(Make(kMemTt), 0, ctx).status().code(), Errc::kInvalid);
}

TEST_F(MappingTest, MappingsNestAndShareOneAddress) {
  BoRef bo = Make(kMemSystem);
  Fill(*bo, 6);
  OperationContext ctx;
  auto m1 = Mapping::Create(bo, kMapRead, ctx);
  auto m2 = Mapping::Create(bo, kMapRead | kMapWrite, ctx);
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_EQ(m1->data(), m2->data());
  EXPECT_EQ(bo->pin_count(), 2);
  m1->reset();
  EXPECT_FALSE(testing::FindMismatch({6, 1}, 0, m2->span()).has_value());
  Mapping moved = std::move(*m2);
  EXPECT_FALSE(*m2);
  EXPECT_EQ(bo->pin_count(), 1);
  moved.reset();
  EXPECT_EQ(bo->pin_count(), 0);
}

// The reservation as a scope: held while the guard lives (another try fails), released at its
// end or by Release, handed over by a move; an adopted reservation is released too.
TEST_F(MappingTest, AReservationGuardHoldsForItsScope) {
  BoRef bo = Make(kMemTt);
  OperationContext ctx;
  {
    auto guard = ReservationGuard::Acquire(*bo, ctx);
    ASSERT_TRUE(guard.ok()) << guard.status().ToString();
    EXPECT_FALSE(bo->TryReserve());
    EXPECT_EQ(ReservationGuard::Acquire(*bo, ctx, /*no_wait=*/true).status().code(), Errc::kBusy);
    ReservationGuard moved = std::move(*guard);
    EXPECT_FALSE(*guard);
    EXPECT_TRUE(moved);
    bo->resv()->AssertHeld();  // the guard holds it
    EXPECT_TRUE(bo->Validate(PlacementOf(kMemSystem), ctx).ok());
  }
  ASSERT_TRUE(bo->TryReserve());
  bo->resv()->AssertHeld();
  ReservationGuard adopted = ReservationGuard::Adopt(*bo);
  adopted.Release();
  EXPECT_FALSE(adopted);
  EXPECT_TRUE(bo->TryReserve());
  bo->resv()->AssertHeld();
  bo->Unreserve();
  EXPECT_EQ(bo->resource()->mem_type(), kMemSystem);
}

// The page vector alone, with chunks that are not end to end: the pool hands back a single page
// from elsewhere for the tail of a three-page vector, so the mapping has to move pages.
TEST(PageVectorMapTest, ScatteredChunksAreMovedIntoOneRangeAndBackWithoutCopying) {
  MemoryContext memory;
  OperationContext ctx;
  auto make = [&](std::size_t pages) {
    auto v = PageVector::Create(
        &memory, {.size = Bytes(pages * kPageSize), .caching = Caching::kWriteCombined});
    EXPECT_TRUE(v.ok());
    EXPECT_TRUE((*v)->Populate(ctx).ok());
    return std::move(v).value();
  };
  auto spacer1 = make(1);
  auto spacer2 = make(1);
  auto spacer3 = make(1);
  spacer1->Unpopulate();  // two single pages in the WC pool, apart from each other
  spacer3->Unpopulate();
  auto v = make(3);  // an order-1 chunk from the provider, then a pooled page
  std::vector<std::byte> data = testing::Content({7, 1}, 0, 3 * kPageSize);
  ASSERT_TRUE(v->Write(0, data).ok());
  ASSERT_NE(v->PageAddress(2), v->PageAddress(1) + kPageSize) << "pages happened to be adjacent";
  std::byte* const home2 = v->PageAddress(2);
  const std::uint64_t provider_pages = memory.provider().pages_in_use();

  Result<std::byte*> base = v->MapContiguous();
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  EXPECT_TRUE(v->mapping_moved_pages());
  EXPECT_EQ(memory.provider().pages_in_use(), provider_pages);  // no page allocated or copied
  EXPECT_EQ(std::memcmp(*base, data.data(), data.size()), 0);
  EXPECT_EQ(v->PageAddress(2), *base + 2 * kPageSize);
  Result<std::byte*> again = v->MapContiguous();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *base);  // the range stays: mapping again is free
  std::vector<std::byte> v2 = testing::Content({7, 2}, 0, 3 * kPageSize);
  std::memcpy(*base, v2.data(), v2.size());
  std::vector<std::byte> got(3 * kPageSize);
  ASSERT_TRUE(v->Read(0, got).ok());
  EXPECT_EQ(got, v2);

  std::size_t run_pages = 0;
  EXPECT_EQ(v->ForEachRun([&](std::size_t first, std::byte* addr, std::size_t pages) {
    EXPECT_EQ(addr, *base + first * kPageSize);
    run_pages += pages;
  }),
            1u);  // mapped: one run
  EXPECT_EQ(run_pages, 3u);

  v->UnmapContiguous();
  EXPECT_EQ(v->PageAddress(2), home2);
  // Home again: the order-1 chunk and the pooled page are two runs, and they cover the bytes.
  std::vector<std::byte> gathered;
  EXPECT_EQ(v->ForEachRun([&](std::size_t first, std::byte* addr, std::size_t pages) {
    EXPECT_EQ(first * kPageSize, gathered.size());
    gathered.insert(gathered.end(), addr, addr + pages * kPageSize);
  }),
            2u);
  EXPECT_EQ(gathered, v2);  // home again, with the bytes written through the mapping
  ASSERT_TRUE(v->Read(0, got).ok());
  EXPECT_EQ(got, v2);
  ASSERT_TRUE(v->MapContiguous().ok());
  v->Unpopulate();  // unmaps first
  EXPECT_EQ(v->mapped_address(), nullptr);
}

}  // namespace
}  // namespace uttm
