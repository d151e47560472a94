// Copyright (c) uttm developers.
//
// Encryption at rest: pages come back exactly through real file and memfd stores, the store
// file holds no plaintext, a page changed or swapped behind the store's back is refused, equal
// pages never give equal ciphertext (no nonce repeats), the inner store's faults pass through
// and lose nothing, specs take ",encrypt", and many threads share one store.
#include "uttm/encrypted_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "testing/content.h"
#include "testing/page_buffer.h"
#include "uttm/backup_store_factory.h"
#include "uttm/fault_injection.h"
#include "uttm/stats.h"

namespace uttm {
namespace {

using Pages = testing::PageBuffer;

// Pages whose bytes spell `marker` over and over, with the page number in front.
void FillMarked(Pages& pages, const std::string& marker) {
  for (std::size_t i = 0; i < pages.count(); ++i) {
    const std::string line = marker + " page " + std::to_string(i) + "|";
    for (std::size_t k = 0; k < kPageSize; ++k) {
      pages.page(i)[k] = static_cast<std::byte>(line[k % line.size()]);
    }
  }
}

// A store keeping pages in a plain array with no checksum of its own, so that only the tags
// stand between a changed page and the caller (the file and memfd stores' checksums would catch
// the change first). Tests reach into `pages` to tamper.
class UncheckedStore : public BackupStore {
 public:
  Result<std::size_t> BackupPages(const std::byte* src, std::size_t count, const BackupFlags&,
                                  BackupHandle* handles) override {
    for (std::size_t i = 0; i < count; ++i) {
      pages.emplace_back(src + i * kPageSize, src + (i + 1) * kPageSize);
      handles[i] = BackupHandle(pages.size());
    }
    return count;
  }
  Status CopyPages(const BackupHandle* handles, std::size_t count, std::byte* dst,
                   const OperationContext&, std::size_t* copied) override {
    for (std::size_t i = 0; i < count; ++i) {
      if (!handles[i].valid() || handles[i].value() > pages.size()) {
        if (copied != nullptr) *copied = i;
        return Status(Errc::kInvalid, "unknown handle");
      }
      std::memcpy(dst + i * kPageSize, pages[handles[i].value() - 1].data(), kPageSize);
    }
    if (copied != nullptr) *copied = count;
    return Status();
  }
  void Drop(const BackupHandle*, std::size_t) override {}
  std::uint64_t BytesAvailable() const override { return std::uint64_t{1} << 30; }
  std::uint64_t BytesUsed() const override { return pages.size() * kPageSize; }
  Status Flush() override { return Status(); }
  std::string Describe() const override { return "unchecked"; }
  std::vector<std::vector<std::byte>> pages;
};

class EncryptedStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { RegisterEncryptedStoreOption(); }
  void SetUp() override {
    char tmpl[] = "/tmp/uttm-encrypted-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    FaultInjection::DisarmAll();
    rmdir(dir_.c_str());
  }
  std::unique_ptr<BackupStore> Make(const std::string& spec) {
    Result<std::unique_ptr<BackupStore>> s = CreateBackupStore(spec, &stats_);
    EXPECT_TRUE(s.ok()) << spec << ": " << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  // Every byte of the store file in dir_ (found through /proc/self/fd).
  std::string StoreFileBytes() {
    std::string out;
    DIR* d = opendir("/proc/self/fd");
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char target[PATH_MAX];
      const std::string link = std::string("/proc/self/fd/") + e->d_name;
      const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0 || std::string(target, static_cast<std::size_t>(n)).rfind(dir_ + "/", 0) != 0) {
        continue;
      }
      const int fd = std::atoi(e->d_name);
      char buf[1 << 16];
      for (off_t off = 0;; off += sizeof buf) {
        const ssize_t r = pread(fd, buf, sizeof buf, off);
        if (r <= 0) break;
        out.append(buf, static_cast<std::size_t>(r));
      }
    }
    closedir(d);
    return out;
  }
  std::vector<BackupHandle> BackupAll(BackupStore& store, Pages& pages) {
    std::vector<BackupHandle> h(pages.count());
    Result<std::size_t> r = store.BackupPages(pages.data(), pages.count(), {}, h.data());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) {
      EXPECT_EQ(*r, pages.count());
    }
    return h;
  }

  std::string dir_;
  Stats stats_;
};

TEST_F(EncryptedStoreTest, PagesComeBackExactlyThroughRealStores) {
  for (const std::string& spec :
       {"file:" + dir_ + ",encrypt", std::string("memfd,allow_without_swap,encrypt")}) {
    SCOPED_TRACE(spec);
    std::unique_ptr<BackupStore> store = Make(spec);
    ASSERT_TRUE(store);
    EXPECT_NE(store->Describe().find("encrypted (AES-256-GCM)"), std::string::npos);
    Pages pages(300);
    testing::FillContent({31, 1}, 0, std::span(pages.data(), 300 * kPageSize));
    std::vector<BackupHandle> h = BackupAll(*store, pages);
    Pages out(300);
    ASSERT_TRUE(store->CopyPages(h.data(), h.size(), out.data(), {}).ok());
    EXPECT_EQ(std::memcmp(out.data(), pages.data(), 300 * kPageSize), 0);
    // Scattered, in reverse.
    std::vector<const std::byte*> src;
    std::vector<std::byte*> dst;
    for (std::size_t i = 300; i-- > 0;) {
      src.push_back(pages.page(i));
      dst.push_back(out.page(299 - i));
    }
    std::vector<BackupHandle> h2(300);
    Result<std::size_t> r = store->BackupPageList(src.data(), 300, {}, h2.data());
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(store->CopyPageList(h2.data(), 300, dst.data(), {}).ok());
    for (std::size_t i = 0; i < 300; ++i) ASSERT_EQ(std::memcmp(dst[i], src[i], kPageSize), 0);
    store->Drop(h.data(), h.size());
    store->Drop(h2.data(), h2.size());
    EXPECT_EQ(store->BytesUsed(), 0u);
  }
}

TEST_F(EncryptedStoreTest, TheStoreFileHoldsNoPlaintext) {
  const std::string marker = "UTTM-PLAINTEXT-MARKER-4f1c";
  Pages pages(64);
  FillMarked(pages, marker);
  {
    std::unique_ptr<BackupStore> plain = Make("file:" + dir_);
    std::vector<BackupHandle> h = BackupAll(*plain, pages);
    ASSERT_TRUE(plain->Flush().ok());
    EXPECT_NE(StoreFileBytes().find(marker), std::string::npos) << "the control: plaintext seen";
    plain->Drop(h.data(), h.size());
  }
  std::unique_ptr<BackupStore> store = Make("file:" + dir_ + ",encrypt");
  std::vector<BackupHandle> h = BackupAll(*store, pages);
  ASSERT_TRUE(store->Flush().ok());
  const std::string bytes = StoreFileBytes();
  EXPECT_GE(bytes.size(), 64 * kPageSize);
  EXPECT_EQ(bytes.find(marker), std::string::npos) << "plaintext in the store file";
  EXPECT_EQ(bytes.find("page 1|"), std::string::npos);
  Pages out(64);
  ASSERT_TRUE(store->CopyPages(h.data(), 64, out.data(), {}).ok());
  EXPECT_EQ(std::memcmp(out.data(), pages.data(), 64 * kPageSize), 0);
  store->Drop(h.data(), h.size());
}

TEST_F(EncryptedStoreTest, APageChangedOrSwappedBehindTheStoreIsRefused) {
  auto inner = std::make_unique<UncheckedStore>();
  UncheckedStore* raw = inner.get();
  Result<std::unique_ptr<BackupStore>> store = NewEncryptedStore(std::move(inner), {&stats_});
  ASSERT_TRUE(store.ok());
  Pages pages(4);
  FillMarked(pages, "secret");
  std::vector<BackupHandle> h = BackupAll(**store, pages);
  Pages out(1);
  // One bit changed.
  raw->pages[0][100] ^= std::byte{1};
  std::memset(out.data(), 0x55, kPageSize);
  Status s = (*store)->CopyPage(h[0], out.data(), {});
  EXPECT_EQ(s.code(), Errc::kIo) << s.ToString();
  EXPECT_NE(s.message().find("authentication failed"), std::string::npos) << s.ToString();
  for (std::size_t k = 0; k < kPageSize; ++k) ASSERT_EQ(out.data()[k], std::byte{0}) << k;
  // Two pages swapped: each is refused under the other's handle.
  std::swap(raw->pages[1], raw->pages[2]);
  EXPECT_EQ((*store)->CopyPage(h[1], out.data(), {}).code(), Errc::kIo);
  EXPECT_EQ((*store)->CopyPage(h[2], out.data(), {}).code(), Errc::kIo);
  // The untouched one still opens; a run stops at the first bad page with its count.
  ASSERT_TRUE((*store)->CopyPage(h[3], out.data(), {}).ok());
  EXPECT_EQ(std::memcmp(out.data(), pages.page(3), kPageSize), 0);
  Pages two(2);
  std::vector<BackupHandle> run = {h[3], h[0]};
  std::size_t copied = 9;
  EXPECT_EQ((*store)->CopyPages(run.data(), 2, two.data(), {}, &copied).code(), Errc::kIo);
  EXPECT_EQ(copied, 1u);
  EXPECT_EQ(stats_.Get(Stat::kChecksumFailures), 4u);  // 0, 1, 2, then 0 in the run
  // A page the inner store holds but this store never sealed is refused too.
  Result<BackupHandle> unsealed = raw->BackupPage(pages.page(0), {});
  ASSERT_TRUE(unsealed.ok());
  Status s2 = (*store)->CopyPage(*unsealed, out.data(), {});
  EXPECT_EQ(s2.code(), Errc::kIo);
  EXPECT_NE(s2.message().find("no tag"), std::string::npos) << s2.ToString();
  // An unknown handle is the inner store's error.
  EXPECT_EQ((*store)->CopyPage(BackupHandle(77), out.data(), {}).code(), Errc::kInvalid);
}

TEST_F(EncryptedStoreTest, EqualPagesNeverGiveEqualCiphertext) {
  auto inner = std::make_unique<UncheckedStore>();
  UncheckedStore* raw = inner.get();
  Result<std::unique_ptr<BackupStore>> store = NewEncryptedStore(std::move(inner), {&stats_});
  ASSERT_TRUE(store.ok());
  Pages page(1);  // zeros
  std::set<std::vector<std::byte>> seen;
  for (int i = 0; i < 2000; ++i) {
    Result<BackupHandle> h = (*store)->BackupPage(page.data(), {});
    ASSERT_TRUE(h.ok());
  }
  for (const auto& p : raw->pages) seen.insert(p);
  EXPECT_EQ(seen.size(), 2000u) << "a nonce was used twice";
  // Another store has another key: the same page, the same position, other bytes.
  auto inner2 = std::make_unique<UncheckedStore>();
  UncheckedStore* raw2 = inner2.get();
  Result<std::unique_ptr<BackupStore>> other = NewEncryptedStore(std::move(inner2), {&stats_});
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->BackupPage(page.data(), {}).ok());
  EXPECT_NE(raw2->pages[0], raw->pages[0]);
}

TEST_F(EncryptedStoreTest, TheInnerStoresFaultsPassThroughAndLoseNothing) {
  std::unique_ptr<BackupStore> store = Make("memfd,allow_without_swap,encrypt");
  Pages pages(100);
  testing::FillContent({32, 1}, 0, std::span(pages.data(), 100 * kPageSize));
  std::vector<BackupHandle> h(100);
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreNoSpace, {.after = 0, .times = 1}).ok());
  Result<std::size_t> r = store->BackupPages(pages.data(), 100, {}, h.data());
  EXPECT_EQ(r.code(), Errc::kNoSpace) << r.status().ToString();
  FaultInjection::DisarmAll();
  // The inner store's second write fails: what it wrote before stays stored (a partial backup).
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreWrite, {.after = 1, .times = 1}).ok());
  r = store->BackupPages(pages.data(), 100, {}, h.data());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_GT(*r, 0u);
  ASSERT_LT(*r, 100u);
  const std::size_t stored = *r;
  FaultInjection::DisarmAll();
  Pages out(100);
  ASSERT_TRUE(store->CopyPages(h.data(), stored, out.data(), {}).ok());
  EXPECT_EQ(std::memcmp(out.data(), pages.data(), stored * kPageSize), 0);
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreRead, {.after = 0, .times = 1}).ok());
  EXPECT_EQ(store->CopyPages(h.data(), stored, out.data(), {}).code(), Errc::kIo);
  FaultInjection::DisarmAll();
  OperationContext ctx;
  ctx.interruptible = true;
  std::stop_source stop;
  ctx.stop = stop.get_token();
  stop.request_stop();
  std::size_t copied = 99;
  EXPECT_EQ(store->CopyPages(h.data(), stored, out.data(), ctx, &copied).code(),
            Errc::kInterrupted);
  EXPECT_LT(copied, stored);
  ASSERT_TRUE(store->CopyPages(h.data(), stored, out.data(), {}).ok());
  EXPECT_EQ(std::memcmp(out.data(), pages.data(), stored * kPageSize), 0);
}

TEST_F(EncryptedStoreTest, SpecsTakeEncryptAndBadOnesAreClearErrors) {
  EXPECT_EQ(CreateBackupStore("file:" + dir_ + ",encrypt=1", &stats_).code(), Errc::kInvalid);
  EXPECT_EQ(CreateBackupStore("tape,encrypt", &stats_).code(), Errc::kInvalid);
  EXPECT_EQ(NewEncryptedStore(nullptr).code(), Errc::kInvalid);
  EXPECT_EQ(RegisterBackupStoreOption("a=b", nullptr).code(), Errc::kInvalid);
}

TEST_F(EncryptedStoreTest, ManyThreadsShareOneStore) {
  std::unique_ptr<BackupStore> store = Make("memfd,allow_without_swap,encrypt");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Pages pages(128), out(128);
      for (std::uint32_t round = 1; round <= 4; ++round) {
        testing::FillContent({static_cast<std::uint64_t>(40 + t), round}, 0,
                             std::span(pages.data(), 128 * kPageSize));
        std::vector<BackupHandle> h(128);
        Result<std::size_t> r = store->BackupPages(pages.data(), 128, {}, h.data());
        if (!r.ok() || *r != 128 || !store->CopyPages(h.data(), 128, out.data(), {}).ok() ||
            std::memcmp(out.data(), pages.data(), 128 * kPageSize) != 0) {
          ++failures;
        }
        if (r.ok()) store->Drop(h.data(), *r);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->BytesUsed(), 0u);
}

}  // namespace
}  // namespace uttm
