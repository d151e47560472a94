// Copyright (c) uttm developers.
#include "backup/page_checksum.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "uttm/units.h"

namespace uttm::internal {
namespace {

TEST(PageChecksumTest, EveryVariantAgreesAndDetectsOneFlippedBit) {
  constexpr std::size_t kPages = 64;
  std::vector<std::uint64_t> words(kPages * kPageSize / 8);
  std::mt19937_64 rng(5);
  for (auto& w : words) w = rng();
  const auto* pages = reinterpret_cast<const std::byte*>(words.data());
  std::vector<std::uint64_t> fast(kPages), generic(kPages);
  PageChecksums(pages, kPages, fast.data());
  PageChecksumsGeneric(pages, kPages, generic.data());
  EXPECT_EQ(fast, generic) << "variant " << PageChecksumVariant();
  EXPECT_EQ(std::set<std::uint64_t>(fast.begin(), fast.end()).size(), kPages);
  const std::string variant = PageChecksumVariant();
  EXPECT_TRUE(variant == "avx2" || variant == "generic") << variant;
#if defined(__x86_64__)
  // An x86-64 build always carries the AVX2 variant; a CPU with AVX2 must get it.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) {
    EXPECT_EQ(variant, "avx2");
  }
#endif

  for (std::size_t bit : {0u, 4095u * 8u, 12345u}) {
    words[bit / 64] ^= std::uint64_t{1} << (bit % 64);
    std::uint64_t changed = 0;
    PageChecksums(pages, 1, &changed);
    EXPECT_NE(changed, fast[0]) << "bit " << bit;
    words[bit / 64] ^= std::uint64_t{1} << (bit % 64);
  }
}

}  // namespace
}  // namespace uttm::internal
