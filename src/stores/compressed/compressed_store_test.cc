// Copyright (c) uttm developers.
//
// The compressed RAM store, for lz4 and zstd: every kind of page (same-filled, compressible,
// incompressible, byte planes) comes back exactly, its memory is real (RSS drops when data is
// dropped), counted against a memory context and capped, fragmentation stays bounded, every
// fault point loses nothing, misuse and bad specs are clear errors, and many threads share it.
#include "uttm/compressed_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "testing/content.h"
#include "testing/page_buffer.h"
#include "testing/proc_status.h"
#include "uttm/backup_store_factory.h"
#include "uttm/fault_injection.h"
#include "uttm/memory_context.h"
#include "uttm/stats.h"

namespace uttm {
namespace {

using Pages = testing::PageBuffer;

enum class Fill { kZero, kWord, kText, kRandom, kBf16 };

// Page `i` of object `id`, version `v`, of the given kind; every page differs from the others
// (kZero aside), so a page restored into the wrong place is caught.
void FillPage(std::byte* p, Fill kind, std::uint64_t id, std::uint64_t i, std::uint32_t v) {
  switch (kind) {
    case Fill::kZero:
      std::memset(p, 0, kPageSize);
      return;
    case Fill::kWord: {
      const std::uint64_t w = (id << 40) ^ (i << 8) ^ v ^ 0x5a5a000000000000ull;
      for (std::size_t k = 0; k < kPageSize; k += 8) std::memcpy(p + k, &w, 8);
      return;
    }
    case Fill::kText: {
      const std::string line = "object " + std::to_string(id) + " page " + std::to_string(i) +
                               " version " + std::to_string(v) + ": the quick brown fox\n";
      for (std::size_t k = 0; k < kPageSize; ++k)
        p[k] = static_cast<std::byte>(line[k % line.size()]);
      return;
    }
    case Fill::kRandom:
      testing::FillContent({id, v}, i * kPageSize, std::span(p, kPageSize));
      return;
    case Fill::kBf16:
      testing::FillBf16Weights(std::span(p, kPageSize),
                               static_cast<std::uint32_t>(id * 1000003 + i * 31 + v));
      return;
  }
}

struct Flavour {
  const char* name;
  const char* spec;
};
void PrintTo(const Flavour& f, std::ostream* os) { *os << f.name; }

class CompressedStoreTest : public ::testing::TestWithParam<Flavour> {
 protected:
  static void SetUpTestSuite() { RegisterCompressedStoreKinds(); }
  void SetUp() override { store_ = Make(""); }
  void TearDown() override {
    FaultInjection::DisarmAll();
    store_.reset();
  }
  std::unique_ptr<BackupStore> Make(const std::string& extra, MemoryContext* memory = nullptr) {
    Result<std::unique_ptr<BackupStore>> s =
        CreateBackupStore(std::string(GetParam().spec) + extra, &stats_, memory);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::vector<BackupHandle> BackupAll(Pages& pages, const BackupFlags& flags = {}) {
    std::vector<BackupHandle> h(pages.count());
    Result<std::size_t> r = store_->BackupPages(pages.data(), pages.count(), flags, h.data());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) {
      EXPECT_EQ(*r, pages.count());
    }
    return h;
  }
  void ExpectRestores(const std::vector<BackupHandle>& h, Pages& want) {
    Pages out(h.size());
    std::memset(out.data(), 0xee, h.size() * kPageSize);
    std::size_t copied = 0;
    Status s = store_->CopyPages(h.data(), h.size(), out.data(), {}, &copied);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(copied, h.size());
    for (std::size_t i = 0; i < h.size(); ++i) {
      ASSERT_EQ(std::memcmp(out.page(i), want.page(i), kPageSize), 0) << "page " << i;
    }
  }
  std::uint64_t Gauge(Stat s) { return static_cast<std::uint64_t>(stats_.Current(s)); }

  Stats stats_;
  std::unique_ptr<BackupStore> store_;
};

TEST_P(CompressedStoreTest, EveryKindOfPageComesBackExactly) {
  ASSERT_TRUE(store_);
  const Fill kinds[] = {Fill::kZero, Fill::kWord, Fill::kText, Fill::kRandom, Fill::kBf16};
  Pages pages(5 * 40);
  for (std::size_t i = 0; i < pages.count(); ++i) FillPage(pages.page(i), kinds[i % 5], 1, i, 1);
  std::vector<BackupHandle> h = BackupAll(pages);
  ExpectRestores(h, pages);
  EXPECT_EQ(stats_.Get(Stat::kZstoreSameFilled), 80u);  // zero and word pages
  // Random pages are kept raw; bf16 weights without their hint compress with zstd's entropy
  // coder (about 1.25) but not with lz4.
  const bool lz4 = std::string(GetParam().name) == "Lz4";
  EXPECT_EQ(stats_.Get(Stat::kZstoreRaw), lz4 ? 80u : 40u);
  EXPECT_EQ(stats_.Get(Stat::kZstoreCompressed), lz4 ? 40u : 80u);
  EXPECT_EQ(Gauge(Stat::kZstorePages), 200u);
  // Scattered lists both ways, in another order.
  std::vector<const std::byte*> src;
  std::vector<std::byte*> dst;
  Pages out(pages.count());
  for (std::size_t i = pages.count(); i-- > 0;) {
    src.push_back(pages.page(i));
    dst.push_back(out.page(pages.count() - 1 - i));
  }
  std::vector<BackupHandle> h2(pages.count());
  Result<std::size_t> r = store_->BackupPageList(src.data(), src.size(), {}, h2.data());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(*r, pages.count());
  ASSERT_TRUE(store_->CopyPageList(h2.data(), h2.size(), dst.data(), {}).ok());
  for (std::size_t i = 0; i < pages.count(); ++i) {
    ASSERT_EQ(std::memcmp(dst[i], src[i], kPageSize), 0) << "page " << i;
  }
  store_->Drop(h.data(), h.size());
  store_->Drop(h2.data(), h2.size());
  EXPECT_EQ(Gauge(Stat::kZstorePages), 0u);
  EXPECT_EQ(Gauge(Stat::kZstorePayloadBytes), 0u);
}

TEST_P(CompressedStoreTest, SameFilledPagesTakeNoSlabMemory) {
  Pages pages(1000);
  for (std::size_t i = 0; i < pages.count(); ++i) {
    FillPage(pages.page(i), i % 2 ? Fill::kZero : Fill::kWord, 2, i, 1);
  }
  std::vector<BackupHandle> h = BackupAll(pages);
  EXPECT_EQ(Gauge(Stat::kZstoreSlabBytes), 0u);
  EXPECT_LE(store_->BytesUsed(), 1000 * 24u + 24 * 1024) << "entries only";
  ExpectRestores(h, pages);
}

TEST_P(CompressedStoreTest, BytePlanesCompressWeightsBetterAndComeBackExactly) {
  Pages pages(256);
  for (std::size_t i = 0; i < pages.count(); ++i) FillPage(pages.page(i), Fill::kBf16, 3, i, 1);
  std::vector<BackupHandle> plain = BackupAll(pages);
  const std::uint64_t plain_bytes = Gauge(Stat::kZstorePayloadBytes);
  std::vector<BackupHandle> planes = BackupAll(pages, {.element_size = 2});
  const std::uint64_t plane_bytes = Gauge(Stat::kZstorePayloadBytes) - plain_bytes;
  ExpectRestores(plain, pages);
  ExpectRestores(planes, pages);
  const double plain_ratio = 256.0 * kPageSize / static_cast<double>(plain_bytes);
  const double plane_ratio = 256.0 * kPageSize / static_cast<double>(plane_bytes);
  std::printf("bf16 weights: ratio %.3f as they are, %.3f in byte planes\n", plain_ratio,
              plane_ratio);
  EXPECT_GT(plane_ratio, plain_ratio * 1.1) << plain_ratio << " vs " << plane_ratio;
  EXPECT_GE(plane_ratio, 1.2);
  // fp32 planes too.
  std::vector<BackupHandle> four = BackupAll(pages, {.element_size = 4});
  ExpectRestores(four, pages);
  std::vector<BackupHandle> bad(1);
  EXPECT_EQ(store_->BackupPages(pages.data(), 1, {.element_size = 3}, bad.data()).code(),
            Errc::kInvalid);
}

TEST_P(CompressedStoreTest, DroppingDataGivesMemoryBackToTheSystem) {
  constexpr std::size_t kCount = 16384;  // 64 MiB of text pages: about 2-8 MiB compressed
  Pages pages(kCount);
  for (std::size_t i = 0; i < kCount; ++i) FillPage(pages.page(i), Fill::kRandom, 4, i, 1);
  // Half of each page random, half zero: compresses to about half.
  for (std::size_t i = 0; i < kCount; ++i)
    std::memset(pages.page(i) + kPageSize / 2, 0, kPageSize / 2);
  const std::uint64_t before = testing::RssAnonBytes();
  std::vector<BackupHandle> h = BackupAll(pages);
  const std::uint64_t held = testing::RssAnonBytes();
  const std::uint64_t used = store_->BytesUsed();
  EXPECT_GT(used, kCount * kPageSize / 3);
  EXPECT_LT(used, kCount * kPageSize * 2 / 3);
  EXPECT_GE(held, before + used * 9 / 10) << "the slabs are real memory";
  store_->Drop(h.data(), h.size());
  // What stays: the spare slabs (4 MiB by default), one slab per class and the entry tables.
  const std::uint64_t kept = store_->BytesUsed();
  EXPECT_LT(kept, 9u << 20);
  EXPECT_LE(testing::RssAnonBytes(), held - (used - kept) * 9 / 10) << "the rest went back";
  // Without spares nearly everything goes.
  store_ = Make(",spare=0");
  h = BackupAll(pages);
  store_->Drop(h.data(), h.size());
  EXPECT_LT(store_->BytesUsed(), 5u << 20);
}

TEST_P(CompressedStoreTest, FragmentationStaysBoundedAfterRandomDrops) {
  store_ = Make(",spare=0");  // no spare slabs: only the live data and its slack
  constexpr std::size_t kCount = 16384;
  Pages pages(kCount);
  std::mt19937 rng(9);
  for (std::size_t i = 0; i < kCount; ++i) {
    // Pages of several compressibilities (random bytes in a random share of the page), about
    // eight size classes.
    FillPage(pages.page(i), Fill::kRandom, 5, i, 1);
    const std::size_t keep = 1024 + rng() % 512;
    std::memset(pages.page(i) + keep, 0, kPageSize - keep);
  }
  std::vector<BackupHandle> h = BackupAll(pages);
  const std::uint64_t peak = Gauge(Stat::kZstoreSlabBytes);
  std::vector<BackupHandle> dropped, kept;
  std::vector<std::size_t> kept_index;
  for (std::size_t i = 0; i < kCount; ++i) {
    if (rng() % 4 != 0) {
      dropped.push_back(h[i]);
    } else {
      kept.push_back(h[i]);
      kept_index.push_back(i);
    }
  }
  store_->Drop(dropped.data(), dropped.size());
  EXPECT_GT(stats_.Get(Stat::kZstoreCompacted), 0u);
  // A quarter of the data left: the slabs shrink to about a quarter too (slack at most a third
  // of the live slots, plus two slabs per class used).
  const std::uint64_t payload = Gauge(Stat::kZstorePayloadBytes);
  EXPECT_LE(Gauge(Stat::kZstoreSlabBytes), payload * 3 / 2 + (4u << 20)) << "peak " << peak;
  EXPECT_LT(Gauge(Stat::kZstoreSlabBytes), peak * 40 / 100)
      << "without compaction most slabs would keep a live object";
  Pages out(1);
  for (std::size_t k = 0; k < kept.size(); ++k) {
    ASSERT_TRUE(store_->CopyPage(kept[k], out.data(), {}).ok());
    ASSERT_EQ(std::memcmp(out.data(), pages.page(kept_index[k]), kPageSize), 0) << k;
  }
}

TEST_P(CompressedStoreTest, TheCapGivesAPartialBackupThenNoSpace) {
  store_ = Make(",cap=512K");
  Pages pages(256);  // 1 MiB of incompressible pages: raw
  for (std::size_t i = 0; i < pages.count(); ++i) FillPage(pages.page(i), Fill::kRandom, 6, i, 1);
  std::vector<BackupHandle> h(pages.count());
  Result<std::size_t> r = store_->BackupPages(pages.data(), pages.count(), {}, h.data());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(*r, 64u);
  EXPECT_LT(*r, 128u);
  EXPECT_LE(store_->BytesUsed(), 512u << 10);
  Result<std::size_t> full = store_->BackupPages(pages.page(*r), 1, {}, h.data() + *r);
  EXPECT_EQ(full.code(), Errc::kNoSpace) << full.status().ToString();
  EXPECT_NE(full.status().message().find("cap"), std::string::npos);
  EXPECT_EQ(stats_.Get(Stat::kStoreWriteErrors), 0u) << "a full store is an answer, not an error";
  {
    ScopedFault fault(FaultPoint::kStoreWrite, {});
    EXPECT_EQ(store_->BackupPages(pages.page(*r), 1, {}, h.data() + *r).code(), Errc::kIo);
  }
  EXPECT_EQ(stats_.Get(Stat::kStoreWriteErrors), 1u) << "a failed write is";
  // Zero pages need no slab: they still fit.
  Pages zero(4);
  std::vector<BackupHandle> hz(4);
  EXPECT_TRUE(store_->BackupPages(zero.data(), 4, {}, hz.data()).ok());
  h.resize(*r);
  Pages want(h.size());
  std::memcpy(want.data(), pages.data(), h.size() * kPageSize);
  ExpectRestores(h, want);
}

TEST_P(CompressedStoreTest, ItsMemoryCountsAgainstTheMemoryContext) {
  MemoryContextOptions mo;
  mo.stats = &stats_;
  mo.pages_limit = PageCount(1024);  // 4 MiB
  auto memory = std::make_unique<MemoryContext>(mo);
  Pages pages(2048);  // 8 MiB that do not compress: kept raw
  for (std::size_t i = 0; i < pages.count(); ++i) FillPage(pages.page(i), Fill::kRandom, 7, i, 1);
  std::vector<BackupHandle> h(pages.count());
  // By default the store takes at most half the page limit, then says it is full.
  store_ = Make(",spare=0", memory.get());
  Result<std::size_t> r = store_->BackupPages(pages.data(), pages.count(), {}, h.data());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(*r, 400u);
  EXPECT_LE(*r, 512u);
  EXPECT_LE(store_->BytesUsed(), 2u << 20);
  EXPECT_EQ(store_->BackupPages(pages.page(*r), 1, {}, h.data() + *r).code(), Errc::kNoSpace);
  EXPECT_EQ(memory->external_pages().value(), (store_->BytesUsed() + kPageSize - 1) / kPageSize);
  EXPECT_EQ(memory->pages_allocated().value(), 0u) << "page vectors' pages only";
  EXPECT_EQ(Gauge(Stat::kExternalPages), memory->external_pages().value());
  EXPECT_EQ(memory->accounted_pages().value(), memory->external_pages().value());
  EXPECT_FALSE(memory->over_limit());
  store_->Drop(h.data(), *r);
  // With a cap of its own it can pass the limit: the context is then over it.
  store_ = Make(",cap=16M,spare=0", memory.get());
  h = BackupAll(pages);
  EXPECT_EQ(memory->external_pages().value(), (store_->BytesUsed() + kPageSize - 1) / kPageSize);
  EXPECT_TRUE(memory->over_limit()) << "8 MiB of raw pages over a 4 MiB limit";
  EXPECT_GE(memory->OverBy(), 1024u);
  store_->Drop(h.data(), h.size());
  EXPECT_FALSE(memory->over_limit());
  store_.reset();
  EXPECT_EQ(memory->external_pages().value(), 0u) << "a destroyed store uncharges everything";
}

TEST_P(CompressedStoreTest, WriteFaultsGiveAPartialBackupAndLoseNothing) {
  Pages pages(100);
  for (std::size_t i = 0; i < pages.count(); ++i) FillPage(pages.page(i), Fill::kText, 8, i, 1);
  std::vector<BackupHandle> h(100);
  for (FaultPoint fp : {FaultPoint::kStoreWrite, FaultPoint::kStoreNoSpace}) {
    ASSERT_TRUE(FaultInjection::Arm(fp, {.after = 37, .times = 1}).ok());
    Result<std::size_t> r = store_->BackupPages(pages.data(), 100, {}, h.data());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, 37u);
    h.resize(37);
    Pages want(37);
    std::memcpy(want.data(), pages.data(), 37 * kPageSize);
    ExpectRestores(h, want);
    store_->Drop(h.data(), h.size());
    h.assign(100, BackupHandle());
    ASSERT_TRUE(FaultInjection::Arm(fp, {.after = 0, .times = 1}).ok());
    r = store_->BackupPages(pages.data(), 100, {}, h.data());
    EXPECT_EQ(r.code(), fp == FaultPoint::kStoreWrite ? Errc::kIo : Errc::kNoSpace);
    FaultInjection::DisarmAll();
  }
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreShortWrite, {.after = 0, .times = 1}).ok());
  Result<std::size_t> r = store_->BackupPages(pages.data(), 100, {}, h.data());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 50u);
  EXPECT_EQ(Gauge(Stat::kZstorePages), 50u);
}

TEST_P(CompressedStoreTest, ReadFaultsAndCorruptionAreErrorsNeverData) {
  Pages pages(3);
  FillPage(pages.page(0), Fill::kText, 9, 0, 1);
  FillPage(pages.page(1), Fill::kWord, 9, 1, 1);
  FillPage(pages.page(2), Fill::kRandom, 9, 2, 1);
  std::vector<BackupHandle> h = BackupAll(pages);
  Pages out(1);
  for (std::size_t i = 0; i < 3; ++i) {
    for (FaultPoint fp : {FaultPoint::kStoreRead, FaultPoint::kStoreCorrupt}) {
      std::memset(out.data(), 0, kPageSize);
      ASSERT_TRUE(FaultInjection::Arm(fp, {.after = 0, .times = 1}).ok());
      Status s = store_->CopyPage(h[i], out.data(), {});
      EXPECT_EQ(s.code(), Errc::kIo) << "page " << i << ": " << s.ToString();
      // The handle stays valid: a retry gets the bytes.
      ASSERT_TRUE(store_->CopyPage(h[i], out.data(), {}).ok());
      EXPECT_EQ(std::memcmp(out.data(), pages.page(i), kPageSize), 0);
    }
  }
  EXPECT_EQ(stats_.Get(Stat::kChecksumFailures), 3u);
}

TEST_P(CompressedStoreTest, AnInterruptedCopyStopsWithItsCountAndResumes) {
  Pages pages(64);
  for (std::size_t i = 0; i < pages.count(); ++i) FillPage(pages.page(i), Fill::kText, 10, i, 1);
  std::vector<BackupHandle> h = BackupAll(pages);
  Pages out(64);
  OperationContext ctx;
  ctx.interruptible = true;
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreInterrupt, {.after = 20, .times = 1}).ok());
  std::size_t copied = 0;
  Status s = store_->CopyPages(h.data(), 64, out.data(), ctx, &copied);
  EXPECT_EQ(s.code(), Errc::kInterrupted);
  EXPECT_EQ(copied, 20u);
  ASSERT_TRUE(store_->CopyPages(h.data() + 20, 44, out.page(20), ctx, &copied).ok());
  EXPECT_EQ(std::memcmp(out.data(), pages.data(), 64 * kPageSize), 0);
  std::stop_source stop;
  ctx.stop = stop.get_token();
  stop.request_stop();
  EXPECT_EQ(store_->CopyPages(h.data(), 64, out.data(), ctx, &copied).code(), Errc::kInterrupted);
  EXPECT_EQ(copied, 0u);
}

TEST_P(CompressedStoreTest, MisuseGetsClearErrors) {
  Pages pages(3);
  FillPage(pages.page(0), Fill::kText, 11, 0, 1);
  std::vector<BackupHandle> h(3);
  EXPECT_EQ(store_->BackupPages(pages.data(), 0, {}, h.data()).code(), Errc::kInvalid);
  EXPECT_EQ(store_->BackupPages(nullptr, 1, {}, h.data()).code(), Errc::kInvalid);
  h = BackupAll(pages);
  Pages out(2);
  std::vector<BackupHandle> bad = {h[0], BackupHandle(999999)};
  std::size_t copied = 0;
  Status s = store_->CopyPages(bad.data(), 2, out.data(), {}, &copied);
  EXPECT_EQ(s.code(), Errc::kInvalid);
  EXPECT_NE(s.message().find("999999"), std::string::npos) << s.ToString();
  EXPECT_EQ(copied, 1u);
  EXPECT_EQ(store_->CopyPage(BackupHandle(), out.data(), {}).code(), Errc::kInvalid);
  store_->DropPage(h[1]);
  store_->DropPage(h[1]);  // a double drop is ignored
  store_->DropPage(BackupHandle());
  EXPECT_EQ(store_->CopyPage(h[1], out.data(), {}).code(), Errc::kInvalid);
  EXPECT_TRUE(store_->CopyPage(h[2], out.data(), {}).ok());
  EXPECT_TRUE(store_->Flush().ok());
  EXPECT_EQ(store_->Describe().rfind(GetParam().name[0] == 'L' ? "lz4" : "zstd", 0), 0u)
      << store_->Describe();
}

TEST_P(CompressedStoreTest, ManyThreadsShareOneStore) {
  constexpr int kThreads = 4;
  constexpr std::size_t kPages = 256;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Pages pages(kPages);
      Pages out(kPages);
      for (std::uint32_t round = 1; round <= 4; ++round) {
        const Fill kinds[] = {Fill::kText, Fill::kRandom, Fill::kWord, Fill::kBf16};
        for (std::size_t i = 0; i < kPages; ++i) {
          FillPage(pages.page(i), kinds[(i + round) % 4], 100 + t, i, round);
        }
        std::vector<BackupHandle> h(kPages);
        Result<std::size_t> r = store_->BackupPages(pages.data(), kPages, {}, h.data());
        if (!r.ok() || *r != kPages) {
          ++failures;
          return;
        }
        if (!store_->CopyPages(h.data(), kPages, out.data(), {}).ok() ||
            std::memcmp(out.data(), pages.data(), kPages * kPageSize) != 0) {
          ++failures;
        }
        store_->Drop(h.data(), h.size());
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Gauge(Stat::kZstorePages), 0u);
}

TEST_P(CompressedStoreTest, SpecsAreValidatedWithClearErrors) {
  const std::string kind = GetParam().name[0] == 'L' ? "lz4" : "zstd";
  EXPECT_TRUE(CreateBackupStore(kind + ",cap=1M,spare=0,raw_above=2048,planes=2", &stats_).ok());
  // Each bad spec, and what its error must name (beyond the spec, which every error quotes).
  const std::pair<std::string, std::string> bad_specs[] = {
      {kind + ":/tmp", "takes no directory"},   {kind + ",bogus", "\"bogus\""},
      {kind + ",cap=12Q", "\"cap=12Q\""},       {kind + ",planes=3", "element size 3"},
      {kind + ",raw_above=10", "raw_above 10"}, {kind + ",raw_above=5000", "\"raw_above=5000\""},
      {kind + ",cap=4K", "below one slab"},     {kind + ",level=3x", "\"level=3x\""},
      {kind + ",spare=lots", "\"spare=lots\""}};
  for (const auto& [bad, names] : bad_specs) {
    Result<std::unique_ptr<BackupStore>> s = CreateBackupStore(bad, &stats_);
    EXPECT_EQ(s.code(), Errc::kInvalid) << bad;
    const Status status = s.status();  // message() views into it
    const std::string_view message = status.message();
    EXPECT_NE(message.find("\"" + bad + "\""), std::string::npos) << s.status().ToString();
    EXPECT_NE(message.substr(bad.size() + 2).find(names), std::string::npos)
        << s.status().ToString();
  }
  EXPECT_TRUE(CreateBackupStore("zstd,level=19", &stats_).ok());
  EXPECT_EQ(CreateBackupStore("zstd,level=20", &stats_).code(), Errc::kInvalid);
  EXPECT_EQ(CreateBackupStore("lz4,level=3", &stats_).code(), Errc::kInvalid);
  Result<std::unique_ptr<BackupStore>> unknown = CreateBackupStore("lz5", &stats_);
  EXPECT_NE(unknown.status().message().find("lz4, zstd"), std::string::npos)
      << unknown.status().ToString();
  EXPECT_EQ(RegisterBackupStoreKind("file", nullptr).code(), Errc::kInvalid);
  EXPECT_EQ(RegisterBackupStoreKind("a,b", nullptr).code(), Errc::kInvalid);
}

INSTANTIATE_TEST_SUITE_P(Codecs, CompressedStoreTest,
                         ::testing::Values(Flavour{"Lz4", "lz4"}, Flavour{"Zstd", "zstd"}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace uttm
