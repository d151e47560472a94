// Copyright (c) uttm developers.
//
// test_shrinkers.h (internal, tests and benchmarks only): shrinkers that own real memory.
//
//   PageArenaShrinker  one populated anonymous mapping of N pages; Scan releases pages from the
//                      top with MADV_DONTNEED (exact page granularity), logs every nr_to_scan,
//                      and can be told to answer kShrinkStop or to report less work scanned.
//   ChunkShrinker      a growing list of populated 2 MiB mappings (an allocator's memory); Scan
//                      munmaps the oldest chunks.
//   RssAnonBytes()     RssAnon of this process from /proc/self/status.
//
// Memory is populated with MADV_POPULATE_WRITE, so the kernel faults the pages in (real RSS)
// without sanitizer shadow for them. Thread-safe: state behind a Mutex.
#ifndef UTTM_SRC_SHRINK_TEST_SHRINKERS_H_
#define UTTM_SRC_SHRINK_TEST_SHRINKERS_H_

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "uttm/mutex.h"
#include "uttm/shrinker.h"
#include "uttm/units.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#include "testing/proc_status.h"

namespace uttm::testing {

// Maps and populates `bytes` of anonymous memory; nullptr on failure.
inline void* MapPopulated(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  if (madvise(p, bytes, MADV_POPULATE_WRITE) != 0) {
    munmap(p, bytes);
    return nullptr;
  }
  return p;
}

class PageArenaShrinker : public Shrinker {
 public:
  struct Options {
    std::string name = "test-arena";
    int seeks = kDefaultSeeks;
    std::uint64_t batch = 0;
    // Answer kShrinkStop from this Scan call on (1-based; 0 = never).
    std::uint64_t stop_from_call = 0;
    // Report at most this many pages scanned per call (0 = report what was done).
    std::uint64_t max_scanned_per_call = 0;
  };

  PageArenaShrinker(std::uint64_t pages, Options options)
      : options_(std::move(options)), capacity_(pages) {
    base_ = static_cast<char*>(MapPopulated(pages * kPageSize));
    resident_ = base_ != nullptr ? pages : 0;
  }
  explicit PageArenaShrinker(std::uint64_t pages) : PageArenaShrinker(pages, Options()) {}
  ~PageArenaShrinker() override {
    if (base_ != nullptr) munmap(base_, capacity_ * kPageSize);
  }
  PageArenaShrinker(const PageArenaShrinker&) = delete;
  PageArenaShrinker& operator=(const PageArenaShrinker&) = delete;

  bool ok() const { return base_ != nullptr; }

  std::uint64_t Count(const ShrinkControl&) override {
    MutexLock lock(&mu_);
    return resident_ == 0 ? kShrinkEmpty : resident_;
  }

  std::uint64_t Scan(ShrinkControl& sc) override {
    MutexLock lock(&mu_);
    calls_.push_back(sc.nr_to_scan);
    if (options_.stop_from_call != 0 && calls_.size() >= options_.stop_from_call) {
      return kShrinkStop;
    }
    const std::uint64_t n = std::min(sc.nr_to_scan, resident_);
    if (n > 0) {
      madvise(base_ + (resident_ - n) * kPageSize, n * kPageSize, MADV_DONTNEED);
      resident_ -= n;
    }
    sc.nr_scanned = options_.max_scanned_per_call != 0
                        ? std::min(sc.nr_to_scan, options_.max_scanned_per_call)
                        : sc.nr_to_scan;
    return n;
  }

  const char* name() const override { return options_.name.c_str(); }
  int seeks() const override { return options_.seeks; }
  std::uint64_t batch() const override { return options_.batch; }

  // Re-populates every page (the owner allocating again).
  void Refill() {
    MutexLock lock(&mu_);
    if (base_ == nullptr) return;
    madvise(base_, capacity_ * kPageSize, MADV_POPULATE_WRITE);
    resident_ = capacity_;
  }
  std::uint64_t resident() const {
    MutexLock lock(&mu_);
    return resident_;
  }
  // The nr_to_scan of every Scan call so far.
  std::vector<std::uint64_t> calls() const {
    MutexLock lock(&mu_);
    return calls_;
  }
  void ClearCalls() {
    MutexLock lock(&mu_);
    calls_.clear();
  }

 private:
  const Options options_;
  const std::uint64_t capacity_;
  char* base_ = nullptr;
  mutable Mutex mu_;
  std::uint64_t resident_ UTTM_GUARDED_BY(mu_) = 0;
  std::vector<std::uint64_t> calls_ UTTM_GUARDED_BY(mu_);
};

class ChunkShrinker : public Shrinker {
 public:
  static constexpr std::size_t kChunkBytes = std::size_t{2} << 20;
  static constexpr std::uint64_t kChunkPages = kChunkBytes / kPageSize;

  explicit ChunkShrinker(std::string name = "test-chunks", int seeks = kDefaultSeeks)
      : name_(std::move(name)), seeks_(seeks) {}
  ~ChunkShrinker() override {
    for (void* p : chunks_) munmap(p, kChunkBytes);
  }
  ChunkShrinker(const ChunkShrinker&) = delete;
  ChunkShrinker& operator=(const ChunkShrinker&) = delete;

  // Allocates and populates one 2 MiB chunk. Returns false when the OS refused.
  bool AddChunk() {
    void* p = MapPopulated(kChunkBytes);
    if (p == nullptr) return false;
    MutexLock lock(&mu_);
    chunks_.push_back(p);
    return true;
  }

  std::uint64_t Count(const ShrinkControl&) override {
    MutexLock lock(&mu_);
    return chunks_.empty() ? kShrinkEmpty : chunks_.size() * kChunkPages;
  }

  std::uint64_t Scan(ShrinkControl& sc) override {
    MutexLock lock(&mu_);
    std::uint64_t freed = 0;
    while (freed < sc.nr_to_scan && !chunks_.empty()) {
      munmap(chunks_.front(), kChunkBytes);
      chunks_.pop_front();
      freed += kChunkPages;
    }
    freed_total_ += freed;
    sc.nr_scanned = freed;
    return freed;
  }

  const char* name() const override { return name_.c_str(); }
  int seeks() const override { return seeks_; }
  // One chunk per call.
  std::uint64_t batch() const override { return kChunkPages; }

  std::uint64_t held_pages() const {
    MutexLock lock(&mu_);
    return chunks_.size() * kChunkPages;
  }
  std::uint64_t freed_total() const {
    MutexLock lock(&mu_);
    return freed_total_;
  }

 private:
  const std::string name_;
  const int seeks_;
  mutable Mutex mu_;
  std::deque<void*> chunks_ UTTM_GUARDED_BY(mu_);
  std::uint64_t freed_total_ UTTM_GUARDED_BY(mu_) = 0;
};

}  // namespace uttm::testing

#endif  // UTTM_SRC_SHRINK_TEST_SHRINKERS_H_
