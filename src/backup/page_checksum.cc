// Copyright (c) uttm developers.
#include "backup/page_checksum.h"

#include "uttm/units.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace uttm::internal {

#if defined(UTTM_HAVE_AVX2_CHECKSUM)
// In page_checksum_avx2.cc, compiled with -mavx2.
void PageChecksumsAvx2(const std::byte* pages, std::size_t n, std::uint64_t* out);
#endif

void PageChecksumsGeneric(const std::byte* pages, std::size_t n, std::uint64_t* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = XXH3_64bits(pages + i * kPageSize, kPageSize);
}

namespace {

using ChecksumFn = void (*)(const std::byte*, std::size_t, std::uint64_t*);

struct Variant {
  ChecksumFn fn;
  const char* name;
};

Variant Select() {
#if defined(UTTM_HAVE_AVX2_CHECKSUM)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return {PageChecksumsAvx2, "avx2"};
#endif
  return {PageChecksumsGeneric, "generic"};
}

const Variant& Chosen() {
  static const Variant variant = Select();
  return variant;
}

}  // namespace

void PageChecksums(const std::byte* pages, std::size_t n, std::uint64_t* out) {
  Chosen().fn(pages, n, out);
}

void PageChecksums(const PageRef& pages, std::size_t first, std::size_t n, std::uint64_t* out) {
  if (pages.list == nullptr) {
    PageChecksums(pages.base + first * kPageSize, n, out);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) PageChecksums(pages.list[first + i], 1, out + i);
}

const char* PageChecksumVariant() { return Chosen().name; }

}  // namespace uttm::internal
