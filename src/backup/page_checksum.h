// Copyright (c) uttm developers.
//
// page_checksum.h (internal): the checksum every backed-up page carries: XXH3-64 of its 4 KiB.
//
// XXH3 is used header-only (XXH_INLINE_ALL), so the core library links no xxhash library. On
// x86-64 an AVX2 build of the same function is chosen at load time when the CPU has AVX2 (about
// twice the SSE2 speed); every variant computes the identical XXH3 value.
//
// Thread-safety: pure functions.
#ifndef UTTM_SRC_BACKUP_PAGE_CHECKSUM_H_
#define UTTM_SRC_BACKUP_PAGE_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

#include "uttm/export.h"
#include "uttm/units.h"

namespace uttm::internal {

// A caller's pages: one contiguous buffer (`base`), or one pointer per page (`list`).
struct PageRef {
  std::byte* base = nullptr;
  std::byte* const* list = nullptr;
  std::byte* at(std::size_t i) const { return list != nullptr ? list[i] : base + i * kPageSize; }
};

// out[i] = XXH3-64 of page i of `pages` (n * 4 KiB bytes).
UTTM_EXPORT void PageChecksums(const std::byte* pages, std::size_t n, std::uint64_t* out);

// out[i] = XXH3-64 of page first + i of `pages`, for i < n.
void PageChecksums(const PageRef& pages, std::size_t first, std::size_t n, std::uint64_t* out);

// The portable (SSE2 / scalar) variant, for tests comparing the variants.
void PageChecksumsGeneric(const std::byte* pages, std::size_t n, std::uint64_t* out);

// The name of the variant in use ("avx2" or "generic").
const char* PageChecksumVariant();

}  // namespace uttm::internal

#endif  // UTTM_SRC_BACKUP_PAGE_CHECKSUM_H_
