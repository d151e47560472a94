// Copyright (c) uttm developers.
//
// Clean copies (page_vector.h): a restore keeps the store's copy of each page it read, a backup
// of the unchanged pages writes nothing, and every way the contents can change drops the copy.
// Real pages, a real file store; contents depend on the vector, the page, the offset and the
// version, so a page given up with the wrong copy is caught.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "testing/content.h"
#include "testing/forwarding_store.h"
#include "uttm/fault_injection.h"
#include "uttm/file_store.h"
#include "uttm/page_vector.h"

namespace uttm {
namespace {

std::unique_ptr<BackupStore> NewStore(Stats* stats, std::uint64_t capacity = 0) {
  FileStoreOptions options;
  options.capacity_bytes = capacity;
  options.stats = stats;
  auto s = NewFileStore(options);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(*s);
}

class CleanCopyTest : public ::testing::Test {
 protected:
  // 300 pages: chunks of several orders (256 + 32 + 8 + 4), so runs and chunk edges both matter.
  static constexpr std::size_t kPages = 300;

  void SetUp() override {
    MemoryContextOptions mo;
    mo.stats = &stats_;
    memory_ = std::make_unique<MemoryContext>(mo);
    Remake(/*capacity=*/0);
  }

  // A fresh vector (version 1 of its contents) on a fresh store of `capacity` bytes (0: no cap).
  void Remake(std::uint64_t capacity) {
    vec_.reset();
    store_ = NewStore(&stats_, capacity);
    auto v = PageVector::Create(memory_.get(), {.size = Bytes(kPages * kPageSize)});
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    vec_ = std::move(*v);
    vec_->set_keep_clean_copy(true);
    vec_->AttachBackupStore(store_.get());
    ASSERT_TRUE(vec_->Populate(op_).ok());
    Fill(1);
  }

  void TearDown() override {
    if (vec_) {
      ASSERT_TRUE(vec_->CheckConsistency().ok()) << vec_->CheckConsistency().ToString();
    }
    vec_.reset();
    if (store_) {
      EXPECT_EQ(store_->BytesUsed(), 0u) << "a handle leaked";
    }
    EXPECT_EQ(stats_.Current(Stat::kCleanPages), 0);
  }

  std::vector<std::byte> Expected(std::uint32_t version, std::uint64_t offset,
                                  std::uint64_t len) const {
    return testing::Content({7, version}, offset, len);
  }
  void Fill(std::uint32_t version) {
    ASSERT_TRUE(vec_->Write(0, Expected(version, 0, kPages * kPageSize)).ok());
    version_.assign(kPages, version);
  }
  // Writes page `page` with `version` through the raw address, as a mapping would.
  void WritePageRaw(std::size_t page, std::uint32_t version) {
    vec_->DropCleanCopy();
    std::vector<std::byte> d = Expected(version, page * kPageSize, kPageSize);
    std::memcpy(vec_->PageAddress(page), d.data(), kPageSize);
    version_[page] = version;
  }
  void ExpectContents() {
    ASSERT_TRUE(vec_->is_populated());
    for (std::size_t p = 0; p < kPages; ++p) {
      std::vector<std::byte> got(kPageSize);
      ASSERT_TRUE(vec_->Read(p * kPageSize, got).ok());
      ASSERT_TRUE(got == Expected(version_[p], p * kPageSize, kPageSize)) << "page " << p;
    }
  }
  void ExpectConsistent() {
    Status s = vec_->CheckConsistency();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  PageCount Backup() {
    Result<PageCount> r = vec_->Backup({});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    ExpectConsistent();
    return r.ok() ? *r : PageCount(0);
  }
  void Restore() {
    Status s = vec_->Restore(op_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ExpectConsistent();
  }
  std::uint64_t Written() const { return stats_.Get(Stat::kStoreBytesWritten); }

  Stats stats_;
  OperationContext op_;
  std::unique_ptr<MemoryContext> memory_;
  std::unique_ptr<BackupStore> store_;
  std::unique_ptr<PageVector> vec_;
  std::vector<std::uint32_t> version_;
};

TEST_F(CleanCopyTest, ARestoreKeepsTheCopyAndTheNextBackupWritesNothing) {
  EXPECT_EQ(Backup().value(), kPages);
  EXPECT_EQ(Written(), kPages * kPageSize);
  Restore();
  EXPECT_EQ(vec_->clean_pages().value(), kPages);
  EXPECT_EQ(store_->BytesUsed(), kPages * kPageSize) << "the copy stays in the store";
  EXPECT_EQ(stats_.Current(Stat::kCleanPages), static_cast<std::int64_t>(kPages));
  EXPECT_EQ(vec_->usage().clean_pages, kPages);
  ExpectContents();
  // Given up again: no byte written, the pages freed, the copy now the backup.
  EXPECT_EQ(Backup().value(), kPages);
  EXPECT_EQ(Written(), kPages * kPageSize);
  EXPECT_EQ(stats_.Get(Stat::kPagesBackedUpClean), kPages);
  EXPECT_EQ(stats_.Get(Stat::kPagesBackedUp), kPages);
  EXPECT_EQ(vec_->resident_pages().value(), 0u);
  EXPECT_EQ(memory_->pages_allocated().value(), 0u);
  EXPECT_FALSE(vec_->has_clean_copy());
  Restore();
  ExpectContents();
}

TEST_F(CleanCopyTest, AStoreThatHoldsMemoryKeepsNoCopy) {
  vec_.reset();
  // A real file store that says it holds memory, as a compressed RAM store does.
  store_ = std::make_unique<testing::ForwardingStore>(NewStore(&stats_), /*holds_memory=*/true);
  auto v = PageVector::Create(memory_.get(), {.size = Bytes(kPages * kPageSize)});
  ASSERT_TRUE(v.ok());
  vec_ = std::move(*v);
  vec_->set_keep_clean_copy(true);
  vec_->AttachBackupStore(store_.get());
  ASSERT_TRUE(vec_->Populate(op_).ok());
  Fill(1);
  EXPECT_EQ(Backup().value(), kPages);
  Restore();
  EXPECT_FALSE(vec_->has_clean_copy()) << "the copy would take the budget the pages need";
  EXPECT_EQ(store_->BytesUsed(), 0u);
  ExpectContents();
  // The content hint goes with every backup.
  auto* forwarding = static_cast<testing::ForwardingStore*>(store_.get());
  EXPECT_EQ(forwarding->last_flags.element_size, 0u);
  vec_->set_element_size(2);
  EXPECT_EQ(Backup().value(), kPages);
  EXPECT_EQ(forwarding->last_flags.element_size, 2u);
  Restore();
  ExpectContents();
}

TEST_F(CleanCopyTest, AWriteDropsTheCopyAndTheNewBytesAreBackedUp) {
  Backup();
  Restore();
  ASSERT_TRUE(vec_->has_clean_copy());
  ASSERT_TRUE(vec_->Write(5 * kPageSize + 100, Expected(2, 5 * kPageSize + 100, 8)).ok());
  // The whole copy goes (the vector cannot tell which pages a later raw write touches).
  EXPECT_FALSE(vec_->has_clean_copy());
  EXPECT_EQ(store_->BytesUsed(), 0u);
  EXPECT_EQ(stats_.Get(Stat::kCleanPagesDropped), kPages);
  std::vector<std::byte> page = Expected(1, 5 * kPageSize, kPageSize);
  std::vector<std::byte> patch = Expected(2, 5 * kPageSize + 100, 8);
  std::memcpy(page.data() + 100, patch.data(), 8);
  const std::uint64_t before = Written();
  EXPECT_EQ(Backup().value(), kPages);
  EXPECT_EQ(Written() - before, kPages * kPageSize);
  Restore();
  std::vector<std::byte> got(kPageSize);
  ASSERT_TRUE(vec_->Read(5 * kPageSize, got).ok());
  EXPECT_TRUE(got == page);
}

TEST_F(CleanCopyTest, RawWritesAfterDropCleanCopyAreKept) {
  Backup();
  Restore();
  WritePageRaw(0, 3);
  WritePageRaw(299, 4);
  WritePageRaw(256, 5);
  Backup();
  Restore();
  ExpectContents();
}

TEST_F(CleanCopyTest, OffByDefaultAndOffKeepsNothing) {
  vec_->set_keep_clean_copy(false);
  Backup();
  Restore();
  EXPECT_FALSE(vec_->has_clean_copy());
  EXPECT_EQ(store_->BytesUsed(), 0u);
  auto fresh = PageVector::Create(memory_.get(), {.size = Bytes(kPageSize)});
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE((*fresh)->keep_clean_copy());
}

TEST_F(CleanCopyTest, AStoreHalfFullKeepsNoCopy) {
  // 1.5 vectors of room: after the backup the store is two thirds full.
  Remake(kPages * kPageSize * 3 / 2);
  Backup();
  Restore();
  EXPECT_FALSE(vec_->has_clean_copy());
  EXPECT_EQ(store_->BytesUsed(), 0u);
  ExpectContents();
  // Four vectors of room: a quarter full, the copy is kept.
  Remake(kPages * kPageSize * 4);
  Backup();
  Restore();
  EXPECT_EQ(vec_->clean_pages().value(), kPages);
}

// A partial backup leaves leftover pages, which never were in the store: the restore keeps
// copies of the pages it read only, and the next backup writes exactly the others.
TEST_F(CleanCopyTest, LeftoversOfAPartialBackupAreWrittenTheRestIsNot) {
  {
    ScopedFault partial(FaultPoint::kBackupPartial, FaultSpec{});
    Result<PageCount> r = vec_->Backup({});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->value(), kPages / 2);
  }
  ExpectConsistent();
  ASSERT_TRUE(vec_->is_partial());
  Restore();
  EXPECT_EQ(vec_->clean_pages().value(), kPages / 2);
  ExpectContents();
  const std::uint64_t before = Written();
  EXPECT_EQ(Backup().value(), kPages);
  EXPECT_EQ(Written() - before, (kPages - kPages / 2) * kPageSize);
  EXPECT_EQ(stats_.Get(Stat::kPagesBackedUpClean), kPages / 2);
  Restore();
  ExpectContents();
}

// An interrupted restore keeps what it read, copies included; it resumes, and the vector it ends
// with gives every page up without a write.
TEST_F(CleanCopyTest, AnInterruptedRestoreResumesWithItsCopies) {
  Backup();
  op_.interruptible = true;
  int failures = 0;
  {
    ScopedFault stop(FaultPoint::kRestoreInterrupt, FaultSpec{.after = 1, .interval = 2});
    for (;;) {
      Status s = vec_->Restore(op_);
      if (s.ok()) break;
      ASSERT_EQ(s.code(), Errc::kInterrupted) << s.ToString();
      ExpectConsistent();
      ASSERT_LT(++failures, 1000);
      // What it holds meanwhile can be backed up again: clean pages without a write.
      if (failures == 2 && vec_->is_partial()) {
        const std::uint64_t before = Written();
        const std::uint64_t clean = vec_->clean_pages().value();
        const std::uint64_t held = vec_->resident_pages().value();
        ASSERT_TRUE(vec_->Backup({}).ok());
        ExpectConsistent();
        EXPECT_EQ(Written() - before, (held - clean) * kPageSize);
      }
    }
  }
  op_.interruptible = false;
  EXPECT_GT(failures, 0);
  ExpectContents();
  EXPECT_EQ(vec_->clean_pages().value(), kPages);
  const std::uint64_t before = Written();
  Backup();
  EXPECT_EQ(Written(), before);
  Restore();
  ExpectContents();
}

TEST_F(CleanCopyTest, APurgeUnpopulateOrDestructionDropsTheCopy) {
  Backup();
  Restore();
  ASSERT_TRUE(vec_->Backup({.purge = true}).ok());
  EXPECT_EQ(store_->BytesUsed(), 0u);
  vec_->DiscardBackup();
  ASSERT_TRUE(vec_->Populate(op_).ok());
  Fill(2);
  Backup();
  Restore();
  ASSERT_TRUE(vec_->has_clean_copy());
  vec_->Unpopulate();
  EXPECT_EQ(store_->BytesUsed(), 0u);
  ASSERT_TRUE(vec_->Populate(op_).ok());
  Fill(3);
  Backup();
  Restore();
  ASSERT_TRUE(vec_->has_clean_copy());
  vec_.reset();
  EXPECT_EQ(store_->BytesUsed(), 0u);
}

TEST_F(CleanCopyTest, ABackupToAnotherStoreWritesEverythingThereAndDropsTheCopy) {
  Backup();
  Restore();
  std::unique_ptr<BackupStore> other = NewStore(&stats_);
  vec_->AttachBackupStore(other.get());  // a driver switching stores
  Result<PageCount> r = vec_->Backup({}, other.get());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(store_->BytesUsed(), 0u);
  EXPECT_EQ(other->BytesUsed(), kPages * kPageSize);
  ASSERT_TRUE(vec_->Restore(op_).ok());
  ExpectContents();
  vec_.reset();
}

// The store refuses every write: the clean pages still go (no write needed), the others stay,
// and nothing is lost.
TEST_F(CleanCopyTest, AFullStoreStillTakesTheCleanPages) {
  Backup();
  Restore();
  WritePageRaw(10, 6);  // drops the whole copy
  Backup();
  ASSERT_TRUE(vec_->Restore(op_).ok());
  ASSERT_EQ(vec_->clean_pages().value(), kPages);
  ScopedFault full(FaultPoint::kStoreNoSpace, FaultSpec{});
  EXPECT_EQ(Backup().value(), kPages);
  EXPECT_EQ(FaultInjection::Failures(FaultPoint::kStoreNoSpace), 0u) << "nothing was written";
  Restore();
  ExpectContents();
}

// A store read error in the middle of a restore keeps what came back, copies included.
TEST_F(CleanCopyTest, AReadErrorKeepsTheCopiesReadSoFar) {
  Backup();
  {
    ScopedFault bad(FaultPoint::kStoreRead, FaultSpec{.after = 100});
    Status s = vec_->Restore(op_);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Errc::kIo) << s.ToString();
  }
  ExpectConsistent();
  EXPECT_GT(vec_->clean_pages().value(), 0u);
  EXPECT_LE(vec_->clean_pages().value(), vec_->resident_pages().value());
  Restore();
  ExpectContents();
  EXPECT_EQ(vec_->clean_pages().value(), kPages);
}

}  // namespace
}  // namespace uttm
