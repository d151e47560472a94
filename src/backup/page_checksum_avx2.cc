// Copyright (c) uttm developers.
//
// The AVX2 build of PageChecksums (this file alone is compiled with -mavx2; page_checksum.cc
// calls it only when the CPU reports AVX2).
#include <cstddef>
#include <cstdint>

#include "uttm/units.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace uttm::internal {

void PageChecksumsAvx2(const std::byte* pages, std::size_t n, std::uint64_t* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = XXH3_64bits(pages + i * kPageSize, kPageSize);
}

}  // namespace uttm::internal
