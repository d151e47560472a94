// Copyright (c) uttm developers.
#include "testing/content.h"

namespace uttm::testing {
namespace {

std::uint64_t Mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t Word(const ContentKey& key, std::uint64_t word_index) {
  return Mix(Mix(key.object) ^ (std::uint64_t{key.version} << 40) ^ word_index);
}

}  // namespace

void FillContent(const ContentKey& key, std::uint64_t offset, std::span<std::byte> out) {
  std::uint64_t index = ~std::uint64_t{0};
  std::uint64_t word = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::uint64_t at = offset + i;
    if (at / 8 != index) {
      index = at / 8;
      word = Word(key, index);
    }
    out[i] = static_cast<std::byte>(word >> (8 * (at % 8)));
  }
}

std::vector<std::byte> Content(const ContentKey& key, std::uint64_t offset, std::size_t len) {
  std::vector<std::byte> v(len);
  FillContent(key, offset, v);
  return v;
}

std::optional<std::size_t> FindMismatch(const ContentKey& key, std::uint64_t offset,
                                        std::span<const std::byte> data) {
  std::vector<std::byte> want = Content(key, offset, data.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data[i] != want[i]) return i;
  }
  return std::nullopt;
}

}  // namespace uttm::testing
