// Copyright (c) uttm developers.
//
// scratch_buffer.h: a worker thread's staging buffer for buffer contents, mapped straight from
// the OS.
//
// The engine checks the process's peak RSS against the workload's page limit, so its own memory
// must leave the process when a phase ends. Buffers of megabytes from malloc stay in the worker
// thread's arena after the thread exits (glibc raises its mmap threshold after the first large
// free), and a second run in the same process (`uttm bench` rounds) then started with tens of MiB
// of dead scratch counted against it. This buffer maps its bytes with mmap, grows into a new
// mapping and unmaps on destruction.
//
// Thread-safety: none; one per worker thread.
#ifndef UTTM_TOOLS_UTTM_SCRATCH_BUFFER_H_
#define UTTM_TOOLS_UTTM_SCRATCH_BUFFER_H_

#include <cstddef>

namespace uttm::tool {

class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer();

  // Makes at least `bytes` bytes available at data(). Contents up to the old size are kept;
  // bytes beyond it are unspecified. Aborts with a message when the OS refuses the memory (the
  // engine cannot go on without it).
  void resize(std::size_t bytes);
  std::byte* data() { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;
};

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_SCRATCH_BUFFER_H_
