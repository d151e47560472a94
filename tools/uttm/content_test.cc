// Copyright (c) uttm developers.
#include "content.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "uttm/units.h"
#include "zipf.h"

namespace uttm::tool {
namespace {

constexpr std::uint64_t kPages = 16;

std::vector<std::uint64_t> Buffer(std::uint64_t pages) {
  return std::vector<std::uint64_t>(pages * kPageSize / 8);
}

TEST(ContentTest, FillThenVerifyMatches) {
  auto buf = Buffer(kPages);
  ContentKey key{1, 2, 3};
  FillPages(buf.data(), key, 0, kPages);
  EXPECT_FALSE(VerifyPages(buf.data(), key, 0, kPages).has_value());
  // A sub-range verifies against the same page numbers.
  EXPECT_FALSE(VerifyPages(buf.data() + 5 * kPageSize / 8, key, 5, 3).has_value());
}

TEST(ContentTest, DetectsOneFlippedByteAnywhere) {
  auto buf = Buffer(kPages);
  ContentKey key{9, 77, 1};
  FillPages(buf.data(), key, 0, kPages);
  auto* bytes = reinterpret_cast<unsigned char*>(buf.data());
  std::vector<std::uint64_t> offsets;
  for (std::uint64_t p = 0; p < kPages; ++p) {
    offsets.push_back(p * kPageSize);
    offsets.push_back(p * kPageSize + kPageSize - 1);
  }
  Rng rng(5);
  for (int i = 0; i < 500; ++i) offsets.push_back(rng.Below(kPages * kPageSize));
  for (std::uint64_t off : offsets) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      unsigned char old = bytes[off];
      bytes[off] = static_cast<unsigned char>(old ^ mask);
      auto m = VerifyPages(buf.data(), key, 0, kPages);
      ASSERT_TRUE(m.has_value()) << "offset " << off;
      EXPECT_EQ(m->offset, off);
      EXPECT_EQ(m->expected, old);
      EXPECT_EQ(m->actual, static_cast<unsigned char>(old ^ mask));
      bytes[off] = old;
    }
  }
  EXPECT_FALSE(VerifyPages(buf.data(), key, 0, kPages).has_value());
}

TEST(ContentTest, ContentDependsOnSeedBufferGenerationAndPage) {
  auto a = Buffer(1), b = Buffer(1);
  ContentKey base{1, 2, 3};
  FillPages(a.data(), base, 4, 1);
  for (ContentKey other :
       {ContentKey{2, 2, 3}, ContentKey{1, 3, 3}, ContentKey{1, 2, 4}, ContentKey{1, 2, 0}}) {
    FillPages(b.data(), other, 4, 1);
    EXPECT_NE(std::memcmp(a.data(), b.data(), kPageSize), 0);
    EXPECT_TRUE(VerifyPages(b.data(), base, 4, 1).has_value());
  }
  FillPages(b.data(), base, 5, 1);  // the right buffer's page 5 is not page 4
  EXPECT_TRUE(VerifyPages(b.data(), base, 4, 1).has_value());
}

TEST(ContentTest, GenerationZeroIsZeros) {
  auto buf = Buffer(2);
  std::memset(buf.data(), 0xab, 2 * kPageSize);
  FillPages(buf.data(), ContentKey{1, 1, 0}, 0, 2);
  for (std::uint64_t w : buf) EXPECT_EQ(w, 0u);
}

TEST(ContentTest, BufferContentTracksWrites) {
  auto buf = Buffer(kPages);
  BufferContent c(7, 42, kPages, Fill::kPattern);
  c.FillInitial(buf.data());
  EXPECT_FALSE(c.Verify(buf.data()).has_value());
  auto before = buf;
  c.Write(buf.data(), 3, 4);
  EXPECT_FALSE(c.Verify(buf.data()).has_value());
  // Stale data (the pre-write content of page 4) is detected.
  std::memcpy(buf.data() + 4 * kPageSize / 8, before.data() + 4 * kPageSize / 8, kPageSize);
  auto m = c.Verify(buf.data());
  ASSERT_TRUE(m.has_value());
  EXPECT_GE(m->offset, 4 * kPageSize);
  EXPECT_LT(m->offset, 5 * kPageSize);
  // Writes past the end are clamped.
  c.Write(buf.data(), kPages - 1, 100);
  c.Write(buf.data(), kPages + 5, 1);
  c.Write(buf.data(), 4, 1);
  EXPECT_FALSE(c.Verify(buf.data()).has_value());
}

// A write that fails is staged but never committed: the old content is still what is expected
// (the engine's verification then tells a failed write from lost content).
TEST(ContentTest, AStagedWriteIsExpectedOnlyOnceCommitted) {
  auto buf = Buffer(kPages);
  BufferContent c(7, 43, kPages, Fill::kPattern);
  c.FillInitial(buf.data());
  auto old = buf;
  auto scratch = buf;
  const std::uint32_t gen = c.Stage(scratch.data(), 2, 3);
  EXPECT_NE(scratch, old);                         // the new content was written to scratch
  EXPECT_FALSE(c.Verify(old.data()).has_value());  // not committed: the old content is expected
  EXPECT_TRUE(c.Verify(scratch.data()).has_value());
  c.Commit(2, 3, gen);
  EXPECT_FALSE(c.Verify(scratch.data()).has_value());
  EXPECT_TRUE(c.Verify(old.data()).has_value());
}

// Compressible content: every page is its first 512 bytes repeated, and those bytes still
// depend on seed, buffer, generation and page, so a misplaced or stale page is caught.
TEST(ContentTest, CompressibleContentRepeatsAUniqueBlockAndVerifiesAsStrictly) {
  constexpr std::uint64_t kPages = 4;
  std::vector<std::uint8_t> buf(kPages * kPageSize);
  const ContentKey key{.seed = 3, .buffer_id = 9, .generation = 2, .compressible = true};
  FillPages(buf.data(), key, 0, kPages);
  EXPECT_FALSE(VerifyPages(buf.data(), key, 0, kPages).has_value());
  for (std::uint64_t p = 0; p < kPages; ++p) {
    const std::uint8_t* page = buf.data() + p * kPageSize;
    for (std::size_t k = 512; k < kPageSize; k += 512) {
      ASSERT_EQ(std::memcmp(page, page + k, 512), 0) << "page " << p << " block " << k / 512;
    }
    if (p > 0) {
      EXPECT_NE(std::memcmp(page, page - kPageSize, 512), 0) << "pages alike";
    }
  }
  // The incompressible pattern of the same key is something else.
  EXPECT_TRUE(VerifyPages(buf.data(), ContentKey{3, 9, 2}, 0, kPages).has_value());
  // Another generation, another page: both caught.
  EXPECT_TRUE(
      VerifyPages(buf.data(),
                  ContentKey{.seed = 3, .buffer_id = 9, .generation = 3, .compressible = true}, 0,
                  kPages)
          .has_value());
  EXPECT_TRUE(VerifyPages(buf.data() + kPageSize, key, 0, 1).has_value());
  buf[kPageSize + 3000] ^= 1;
  auto m = VerifyPages(buf.data(), key, 0, kPages);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->offset, kPageSize + 3000);
  // Through BufferContent, initial content and writes.
  BufferContent c(3, 9, kPages, Fill::kCompressible);
  std::vector<std::uint8_t> b(kPages * kPageSize);
  c.FillInitial(b.data());
  EXPECT_EQ(std::memcmp(b.data(), b.data() + 512, 512), 0);
  c.Write(b.data(), 1, 2);
  EXPECT_FALSE(c.Verify(b.data()).has_value());
  EXPECT_EQ(std::memcmp(b.data() + kPageSize, b.data() + kPageSize + 2048, 512), 0);
}

TEST(ContentTest, ZeroFillAndReset) {
  auto buf = Buffer(4);
  BufferContent c(1, 1, 4, Fill::kZero);
  c.FillInitial(buf.data());
  EXPECT_FALSE(c.Verify(buf.data()).has_value());
  c.Write(buf.data(), 0, 4);
  EXPECT_FALSE(c.Verify(buf.data()).has_value());
  c.ResetToZero();
  EXPECT_TRUE(c.Verify(buf.data()).has_value());
  std::memset(buf.data(), 0, 4 * kPageSize);
  EXPECT_FALSE(c.Verify(buf.data()).has_value());
}

}  // namespace
}  // namespace uttm::tool
