// Copyright (c) uttm developers.
#include "zipf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace uttm::tool {
namespace {

TEST(RngTest, DeterministicAndInRange) {
  Rng a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    std::uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs = differs || x != c.Next();
  }
  EXPECT_TRUE(differs);
  for (int i = 0; i < 10000; ++i) {
    EXPECT_LT(a.Below(13), 13u);
    double u = a.Uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

// Draws `samples` ranks and compares the frequency of each of the first ranks with the exact pmf.
void CheckAgainstPmf(std::uint64_t n, double s, int samples) {
  ZipfSampler z(n, s);
  Rng rng(12345);
  std::vector<std::uint64_t> counts(n + 1, 0);
  for (int i = 0; i < samples; ++i) {
    std::uint64_t k = z.Sample(rng);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, n);
    ++counts[k];
  }
  double norm = 0;
  for (std::uint64_t k = 1; k <= n; ++k) norm += std::pow(static_cast<double>(k), -s);
  // Chi-square over all ranks: with n - 1 degrees of freedom the statistic stays well under
  // n + 6 sqrt(2n) for a correct sampler (a wrong one is off by orders of magnitude).
  double chi2 = 0;
  for (std::uint64_t k = 1; k <= n; ++k) {
    double expected = samples * std::pow(static_cast<double>(k), -s) / norm;
    double d = static_cast<double>(counts[k]) - expected;
    chi2 += d * d / expected;
  }
  double bound = static_cast<double>(n) + 6 * std::sqrt(2.0 * static_cast<double>(n));
  EXPECT_LT(chi2, bound) << "n=" << n << " s=" << s;
  // The head ratio follows the power law: P(1)/P(2) = 2^s.
  double ratio = static_cast<double>(counts[1]) / static_cast<double>(counts[2]);
  EXPECT_NEAR(ratio, std::pow(2.0, s), 0.1 * std::pow(2.0, s)) << "n=" << n << " s=" << s;
}

TEST(ZipfTest, MatchesPmf) {
  CheckAgainstPmf(50, 1.1, 200000);
  CheckAgainstPmf(50, 1.0, 200000);
  CheckAgainstPmf(100, 0.6, 200000);
  CheckAgainstPmf(20, 2.5, 200000);
}

TEST(ZipfTest, LargeNStaysInRangeAndSkewed) {
  ZipfSampler z(1000000, 1.2);
  Rng rng(1);
  double norm = 0, head_mass = 0;
  for (int k = 1; k <= 1000000; ++k) {
    double pk = std::pow(static_cast<double>(k), -1.2);
    norm += pk;
    if (k <= 10) head_mass += pk;
  }
  int head = 0;
  for (int i = 0; i < 100000; ++i) {
    std::uint64_t k = z.Sample(rng);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, 1000000u);
    if (k <= 10) ++head;
  }
  // The first 10 of a million ranks carry ~47% of the mass at s = 1.2.
  EXPECT_NEAR(head / 100000.0, head_mass / norm, 0.01);
}

TEST(ZipfTest, SingleItem) {
  ZipfSampler z(1, 1.5);
  Rng rng(3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(z.Sample(rng), 1u);
}

}  // namespace
}  // namespace uttm::tool
