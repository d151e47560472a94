// Copyright (c) uttm developers.
#include "content.h"

#include <cstring>

#include "uttm/units.h"
#include "zipf.h"

namespace uttm::tool {
namespace {

constexpr std::size_t kWordsPerPage = kPageSize / sizeof(std::uint64_t);

inline std::uint64_t PageBase(const ContentKey& key, std::uint64_t page) {
  return MixKeys(key.seed, key.buffer_id, key.generation, page);
}

inline std::uint64_t Word(std::uint64_t base, std::uint64_t i) {
  std::uint64_t x = (base + i) * 0x9e3779b97f4a7c15ULL;
  return x ^ (x >> 32);
}

// Compressible content repeats a page's first 64 words (512 bytes).
inline std::uint64_t WordIndex(const ContentKey& key, std::uint64_t i) {
  return key.compressible ? i % 64 : i;
}

}  // namespace

void FillPages(void* dst, const ContentKey& key, std::uint64_t first_page,
               std::uint64_t num_pages) {
  auto* out = static_cast<unsigned char*>(dst);
  if (key.generation == 0) {
    std::memset(out, 0, num_pages * kPageSize);
    return;
  }
  for (std::uint64_t p = 0; p < num_pages; ++p) {
    std::uint64_t words[kWordsPerPage];
    std::uint64_t base = PageBase(key, first_page + p);
    for (std::size_t i = 0; i < kWordsPerPage; ++i) words[i] = Word(base, WordIndex(key, i));
    std::memcpy(out + p * kPageSize, words, kPageSize);
  }
}

std::optional<Mismatch> VerifyPages(const void* src, const ContentKey& key,
                                    std::uint64_t first_page, std::uint64_t num_pages) {
  const auto* in = static_cast<const unsigned char*>(src);
  for (std::uint64_t p = 0; p < num_pages; ++p) {
    std::uint64_t expected[kWordsPerPage];
    if (key.generation == 0) {
      std::memset(expected, 0, sizeof(expected));
    } else {
      std::uint64_t base = PageBase(key, first_page + p);
      for (std::size_t i = 0; i < kWordsPerPage; ++i) expected[i] = Word(base, WordIndex(key, i));
    }
    const unsigned char* page = in + p * kPageSize;
    if (std::memcmp(page, expected, kPageSize) == 0) continue;
    const auto* want = reinterpret_cast<const unsigned char*>(expected);
    for (std::size_t b = 0; b < kPageSize; ++b) {
      if (page[b] != want[b]) return Mismatch{p * kPageSize + b, want[b], page[b]};
    }
  }
  return std::nullopt;
}

BufferContent::BufferContent(std::uint64_t seed, std::uint64_t buffer_id, std::uint64_t num_pages,
                             Fill fill)
    : seed_(seed),
      buffer_id_(buffer_id),
      compressible_(fill == Fill::kCompressible),
      page_generation_(num_pages, fill != Fill::kZero ? 1u : 0u) {
  if (fill != Fill::kZero) next_generation_ = 2;
}

void BufferContent::FillInitial(void* buffer) const {
  auto* out = static_cast<unsigned char*>(buffer);
  for (std::uint64_t p = 0; p < page_generation_.size(); ++p) {
    FillPages(out + p * kPageSize, Key(page_generation_[p]), p, 1);
  }
}

void BufferContent::Write(void* buffer, std::uint64_t first, std::uint64_t n) {
  Commit(first, n, Stage(buffer, first, n));
}

std::uint32_t BufferContent::Stage(void* buffer, std::uint64_t first, std::uint64_t n) {
  std::uint32_t gen = next_generation_++;
  if (next_generation_ == 0) next_generation_ = 1;  // 0 is reserved for zeros
  if (first >= page_generation_.size()) return gen;
  n = std::min<std::uint64_t>(n, page_generation_.size() - first);
  FillPages(static_cast<unsigned char*>(buffer) + first * kPageSize, Key(gen), first, n);
  return gen;
}

void BufferContent::Commit(std::uint64_t first, std::uint64_t n, std::uint32_t generation) {
  if (first >= page_generation_.size()) return;
  n = std::min<std::uint64_t>(n, page_generation_.size() - first);
  for (std::uint64_t p = first; p < first + n; ++p) page_generation_[p] = generation;
}

std::optional<Mismatch> BufferContent::Verify(const void* buffer) const {
  const auto* in = static_cast<const unsigned char*>(buffer);
  for (std::uint64_t p = 0; p < page_generation_.size(); ++p) {
    auto m = VerifyPages(in + p * kPageSize, Key(page_generation_[p]), p, 1);
    if (m) {
      m->offset += p * kPageSize;
      return m;
    }
  }
  return std::nullopt;
}

std::optional<Mismatch> BufferContent::VerifyRange(const void* pages, std::uint64_t first,
                                                   std::uint64_t n) const {
  if (first >= page_generation_.size()) return std::nullopt;
  n = std::min<std::uint64_t>(n, page_generation_.size() - first);
  const auto* in = static_cast<const unsigned char*>(pages);
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t p = first + i;
    auto m = VerifyPages(in + i * kPageSize, Key(page_generation_[p]), p, 1);
    if (m) {
      m->offset += p * kPageSize;
      return m;
    }
  }
  return std::nullopt;
}

void BufferContent::ResetToZero() {
  std::fill(page_generation_.begin(), page_generation_.end(), 0u);
}

}  // namespace uttm::tool
