// Copyright (c) uttm developers.
//
// content.h (tests only): content that tells pages apart. Word w (8 bytes) of the content of
// `key` depends on the object, the version and the word's byte offset (so on the page and the
// offset within it): a page restored to the wrong slot, a page of another object, a stale page of
// an older version and one flipped byte all differ from what is expected.
#ifndef UTTM_SRC_TESTING_CONTENT_H_
#define UTTM_SRC_TESTING_CONTENT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace uttm::testing {

struct ContentKey {
  std::uint64_t object = 0;
  std::uint32_t version = 1;
};

// Writes bytes [offset, offset + out.size()) of the content of `key` into `out`.
void FillContent(const ContentKey& key, std::uint64_t offset, std::span<std::byte> out);

// Bytes [offset, offset + len) of the content of `key`.
std::vector<std::byte> Content(const ContentKey& key, std::uint64_t offset, std::size_t len);

// The offset (relative to `offset`) of the first byte of `data` that is not the content of `key`
// at `offset`; nullopt when all match.
std::optional<std::size_t> FindMismatch(const ContentKey& key, std::uint64_t offset,
                                        std::span<const std::byte> data);

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_CONTENT_H_
