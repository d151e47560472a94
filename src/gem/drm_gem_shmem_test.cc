// Copyright (c) uttm developers.
//
// The upstream drm_gem_shmem KUnit cases (drivers/gpu/drm/tests/drm_gem_shmem_test.c) ported to
// uttm's GEM shmem objects: create, pin, vmap, get pages, madvise and purge. The cases about
// imported objects and sg tables (obj_create_private, get_pages_sgt) have no counterpart: uttm
// objects are never imported and a driver builds its scatter list from Vmap's address.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "uttm/gem_device.h"
#include "uttm/gem_shmem_object.h"

namespace uttm {
namespace {

constexpr std::uint64_t kSize = 16 * kPageSize;

class DrmGemShmemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GemDeviceOptions o;
    o.name = "kunit";
    o.backing.directory = ::testing::TempDir();
    o.stats = &stats_;
    auto dev = GemDevice::Create(o);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    dev_ = std::move(dev).value();
  }
  GemRef Make() {
    Result<GemRef> obj = dev_->CreateObject(Bytes(kSize));
    EXPECT_TRUE(obj.ok()) << obj.status().ToString();
    return obj.ok() ? *obj : GemRef();
  }
  Stats stats_;
  std::unique_ptr<GemDevice> dev_;
};

// drm_gem_shmem_test_obj_create: size and backing set; the file comes with the first pages.
TEST_F(DrmGemShmemTest, ObjCreate) {
  GemRef obj = Make();
  ASSERT_TRUE(obj);
  EXPECT_EQ(obj->size().value(), kSize);
  EXPECT_EQ(obj->num_pages().value(), kSize / kPageSize);
  EXPECT_FALSE(obj->backing().has_file()) << "the backing file is created lazily";
  EXPECT_EQ(&obj->device(), dev_.get());
  EXPECT_EQ(obj->state(), GemPageState::kUnpinned);
  EXPECT_EQ(dev_->object_count(), 1u);
  Result<GemRef> zero = dev_->CreateObject(Bytes(0));
  EXPECT_EQ(zero.code(), Errc::kInvalid);
}

// drm_gem_shmem_test_pin_pages: a pin maps every page, use count 1; unpin releases them.
TEST_F(DrmGemShmemTest, PinPages) {
  GemRef obj = Make();
  ASSERT_TRUE(obj->resv()->TryLock());
  obj->resv()->AssertHeld();
  ASSERT_TRUE(obj->Pin().ok());
  EXPECT_TRUE(obj->backing().mapped());
  EXPECT_EQ(obj->pages_use_count(), 1u);
  EXPECT_EQ(obj->pages_pin_count(), 1u);
  EXPECT_EQ(stats_.Current(Stat::kGemPagesHeld), static_cast<std::int64_t>(kSize / kPageSize));
  EXPECT_EQ(obj->state(), GemPageState::kPinned);
  for (std::uint64_t i = 0; i < kSize; i += kPageSize) obj->backing().data()[i] = std::byte{7};
  ASSERT_TRUE(obj->Unpin().ok());
  EXPECT_EQ(obj->pages_use_count(), 0u);
  EXPECT_EQ(obj->pages_pin_count(), 0u);
  EXPECT_FALSE(obj->backing().mapped());
  EXPECT_EQ(stats_.Current(Stat::kGemPagesHeld), 0);
  obj->resv()->Unlock();
}

// drm_gem_shmem_test_vmap: vmap count 1, a pattern written reads back; vunmap count 0.
TEST_F(DrmGemShmemTest, Vmap) {
  GemRef obj = Make();
  ASSERT_TRUE(obj->resv()->TryLock());
  obj->resv()->AssertHeld();
  Result<std::byte*> addr = obj->Vmap();
  ASSERT_TRUE(addr.ok()) << addr.status().ToString();
  EXPECT_EQ(obj->vmap_use_count(), 1u);
  EXPECT_EQ(obj->pages_pin_count(), 1u);
  std::memset(*addr, 0x5a, kSize);
  for (std::uint64_t i = 0; i < kSize; ++i) ASSERT_EQ((*addr)[i], std::byte{0x5a}) << i;
  ASSERT_TRUE(obj->Vunmap().ok());
  EXPECT_EQ(obj->vmap_use_count(), 0u);
  EXPECT_EQ(obj->pages_pin_count(), 0u);
  // The contents stay in the file: a new mapping sees them.
  addr = obj->Vmap();
  ASSERT_TRUE(addr.ok());
  for (std::uint64_t i = 0; i < kSize; i += 97) ASSERT_EQ((*addr)[i], std::byte{0x5a}) << i;
  ASSERT_TRUE(obj->Vunmap().ok());
  obj->resv()->Unlock();
}

// drm_gem_shmem_test_get_sg_table (adapted): getting pages holds every page, use count 1.
TEST_F(DrmGemShmemTest, GetPages) {
  GemRef obj = Make();
  ASSERT_TRUE(obj->resv()->TryLock());
  obj->resv()->AssertHeld();
  ASSERT_TRUE(obj->GetPages().ok());
  EXPECT_EQ(obj->pages_use_count(), 1u);
  EXPECT_EQ(obj->pages_pin_count(), 0u);
  EXPECT_EQ(obj->backing().CachedPages(), kSize / kPageSize);
  EXPECT_EQ(obj->state(), GemPageState::kEvictable);
  ASSERT_TRUE(obj->PutPages().ok());
  EXPECT_EQ(obj->pages_use_count(), 0u);
  obj->resv()->Unlock();
}

// drm_gem_shmem_test_madvise: settable while >= 0; a negative value is sticky and the answer is
// false from then on.
TEST_F(DrmGemShmemTest, Madvise) {
  GemRef obj = Make();
  ASSERT_TRUE(obj->resv()->TryLock());
  obj->resv()->AssertHeld();
  EXPECT_EQ(obj->madv(), 0);
  EXPECT_TRUE(obj->Madvise(1));
  EXPECT_EQ(obj->madv(), 1);
  EXPECT_TRUE(obj->Madvise(0));  // back to active
  EXPECT_EQ(obj->madv(), 0);
  EXPECT_FALSE(obj->Madvise(-1));  // marks it purged
  EXPECT_EQ(obj->madv(), -1);
  EXPECT_FALSE(obj->Madvise(0));  // cannot be undone
  EXPECT_EQ(obj->madv(), -1);
  EXPECT_EQ(obj->state(), GemPageState::kPurged);
  obj->resv()->Unlock();
}

// drm_gem_shmem_test_purge: not purgeable by default; with madv > 0 and pages it is; a purge
// frees the pages and the contents, and madv becomes -1.
TEST_F(DrmGemShmemTest, Purge) {
  GemRef obj = Make();
  ASSERT_TRUE(obj->resv()->TryLock());
  obj->resv()->AssertHeld();
  EXPECT_FALSE(obj->IsPurgeable());
  EXPECT_TRUE(obj->Madvise(1));
  EXPECT_FALSE(obj->IsPurgeable()) << "no pages, no file: nothing to purge";
  ASSERT_TRUE(obj->GetPages().ok());
  EXPECT_TRUE(obj->IsPurgeable());
  Result<std::uint64_t> freed = obj->PurgeLocked();
  ASSERT_TRUE(freed.ok()) << freed.status().ToString();
  EXPECT_EQ(*freed, kSize / kPageSize);
  EXPECT_EQ(obj->madv(), -1);
  EXPECT_EQ(obj->pages_use_count(), 0u);
  EXPECT_FALSE(obj->backing().mapped());
  EXPECT_EQ(obj->backing().CachedPages(), 0u);
  EXPECT_EQ(stats_.Get(Stat::kGemPagesPurged), kSize / kPageSize);
  EXPECT_EQ(obj->GetPages().code(), Errc::kInvalid);
  EXPECT_EQ(obj->Vmap().code(), Errc::kInvalid);
  obj->resv()->Unlock();
}

}  // namespace
}  // namespace uttm
