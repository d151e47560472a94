// Copyright (c) uttm developers.
#include "scratch_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
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
  const std::size_t old_size = size_;
  size_ = bytes;
  if (bytes <= mapped_) return;
  if (bytes > SIZE_MAX / 2) {
    errno = ENOMEM;
    OutOfMemory(bytes);
  }
  // Round up and at least double, so a run of growing buffers maps O(log n) times.
  std::size_t want = (bytes + kGranule - 1) & ~(kGranule - 1);
  if (want < 2 * mapped_) want = 2 * mapped_;
  // A fresh mapping and a copy rather than mremap: ThreadSanitizer does not see mremap release
  // the old range, and reports the next user of those addresses as racing with this thread.
  void* p = mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) OutOfMemory(want);
  if (data_ != nullptr) {
    std::memcpy(p, data_, old_size);
    munmap(data_, mapped_);
  }
  data_ = static_cast<std::byte*>(p);
  mapped_ = want;
}

}  // namespace uttm::tool
