// Copyright (c) uttm developers.
#include "scratch_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace uttm::tool {

namespace {

constexpr std::size_t kGranule = std::size_t{64} << 10;

[[noreturn]] void OutOfMemory(std::size_t bytes) {
  std::fprintf(stderr, "uttm: error: cannot map %zu bytes of scratch memory: %s\n", bytes,
               std::strerror(errno));
  std::abort();
}

}  // namespace

ScratchBuffer::~ScratchBuffer() {
  if (data_ != nullptr) munmap(data_, mapped_);
}

void ScratchBuffer::resize(std::size_t bytes) {
  size_ = bytes;
  if (bytes <= mapped_) return;
  // Round up and at least double, so a run of growing buffers maps O(log n) times.
  std::size_t want = (bytes + kGranule - 1) & ~(kGranule - 1);
  if (want < 2 * mapped_) want = 2 * mapped_;
  void* p = data_ == nullptr
                ? mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                : mremap(data_, mapped_, want, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) OutOfMemory(want);
  data_ = static_cast<std::byte*>(p);
  mapped_ = want;
}

}  // namespace uttm::tool
