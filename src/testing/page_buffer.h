// Copyright (c) uttm developers.
//
// page_buffer.h (tests and benchmarks only): page-aligned buffers of whole pages, and contents
// that compress the way real data does.
#ifndef UTTM_SRC_TESTING_PAGE_BUFFER_H_
#define UTTM_SRC_TESTING_PAGE_BUFFER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <span>

#include "uttm/units.h"

namespace uttm::testing {

// `count` page-aligned pages, zero-filled.
class PageBuffer {
 public:
  explicit PageBuffer(std::size_t count) : count_(count) {
    void* p = std::aligned_alloc(kPageSize, std::max<std::size_t>(count, 1) * kPageSize);
    data_.reset(static_cast<std::byte*>(p));
    Zero();
  }
  void Zero() { std::memset(data_.get(), 0, count_ * kPageSize); }
  std::byte* data() { return data_.get(); }
  std::byte* page(std::size_t i) { return data_.get() + i * kPageSize; }
  std::size_t count() const { return count_; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::size_t count_;
  std::unique_ptr<std::byte, Free> data_;
};

// Pages filled with random words from `seed`: every page distinct, and different for another
// seed, so a misplaced or stale page is caught.
class PatternPages : public PageBuffer {
 public:
  explicit PatternPages(std::size_t count, std::uint64_t seed = 0) : PageBuffer(count) {
    Fill(seed);
  }
  void Fill(std::uint64_t seed) {
    std::mt19937_64 rng(seed * 7919 + 1);
    auto* words = reinterpret_cast<std::uint64_t*>(data());
    for (std::size_t i = 0; i < count() * kPageSize / 8; ++i) words[i] = rng();
  }
};

inline bool SamePage(const std::byte* a, const std::byte* b) {
  return std::memcmp(a, b, kPageSize) == 0;
}

// Fills `out` (an even number of bytes) with bfloat16 weights drawn from a normal distribution
// with standard deviation 0.02 (each the top 16 bits of a float), from `seed`.
inline void FillBf16Weights(std::span<std::byte> out, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (std::size_t k = 0; k + 1 < out.size(); k += 2) {
    const float f = normal(rng);
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    const auto half = static_cast<std::uint16_t>(bits >> 16);
    std::memcpy(out.data() + k, &half, 2);
  }
}

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_PAGE_BUFFER_H_
