// Copyright (c) uttm developers.
//
// zipf.h: the deterministic random sources of the op generator.
//
//   Rng          xoshiro256** seeded through splitmix64: fast, 64-bit, same sequence everywhere.
//   ZipfSampler  ranks 1..n with P(k) proportional to k^-s, by rejection-inversion (Hormann and
//                Derflinger, "Rejection-inversion to generate variates from monotone discrete
//                distributions", 1996): O(1) setup and expected O(1) per sample, any s > 0.
//
// Thread-safety: plain values; use one per thread.
#ifndef UTTM_TOOLS_UTTM_ZIPF_H_
#define UTTM_TOOLS_UTTM_ZIPF_H_

#include <cstdint>

namespace uttm::tool {

// One step of splitmix64 (also a good 64-bit mixer for hashing a counter).
inline std::uint64_t SplitMix64(std::uint64_t* state) {
  std::uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Hashes a few 64-bit words into one (order matters).
inline std::uint64_t MixKeys(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0,
                             std::uint64_t d = 0) {
  std::uint64_t s = a;
  std::uint64_t h = SplitMix64(&s);
  s = h ^ b;
  h = SplitMix64(&s);
  s = h ^ c;
  h = SplitMix64(&s);
  s = h ^ d;
  return SplitMix64(&s);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (std::uint64_t& w : s_) w = SplitMix64(&seed);
  }
  std::uint64_t Next() {
    std::uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n); n > 0. (Lemire's multiply-shift; the tiny bias is irrelevant here.)
  std::uint64_t Below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  static std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

class ZipfSampler {
 public:
  // Ranks 1..n (n >= 1), exponent s > 0.
  ZipfSampler(std::uint64_t n, double s);
  // A rank in [1, n]; rank 1 is the most likely.
  std::uint64_t Sample(Rng& rng) const;
  std::uint64_t n() const { return n_; }
  double exponent() const { return s_; }

 private:
  double H(double x) const;     // an antiderivative of h(x) = x^-s
  double HInv(double x) const;  // its inverse
  double h(double x) const;

  std::uint64_t n_;
  double s_;
  double h_integral_x1_;
  double h_integral_n_;
  double s_limit_;
};

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_ZIPF_H_
