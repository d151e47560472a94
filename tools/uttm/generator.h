// Copyright (c) uttm developers.
//
// generator.h: the deterministic operation stream of a workload.
//
// The buffers of a run are split into `Workload::Lanes()` lanes (the most threads of any phase).
// Each lane owns a disjoint set of buffers and yields ops only on its own buffers, so one thread
// driving a lane never races another on a buffer's content; contention happens where it should,
// inside the memory manager (LRUs, eviction, the store). In a phase with T threads, thread t
// drives lanes t, t + T, t + 2T, ... in turn.
//
// Ids: the initial population (classes[].count, in class order) gets ids 0..N-1 and buffer id i
// belongs to lane i % lanes; the k-th buffer a lane creates later gets id N + k * lanes + lane.
// Sizes and purgeable membership of the initial buffers depend only on (seed, id), so they are
// the same whatever the thread count. Everything a lane yields depends only on (workload, lane).
//
// The generator tracks each buffer's state as the application sees it: a buffer that was given
// madvise(DONTNEED) is not read or written until a madvise(WILLNEED) takes it back; the engine
// tells whether its content was retained.
//
// Thread-safety: a LaneGenerator is used by one thread at a time.
#ifndef UTTM_TOOLS_UTTM_GENERATOR_H_
#define UTTM_TOOLS_UTTM_GENERATOR_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "workload.h"
#include "zipf.h"

namespace uttm::tool {

enum class OpKind { kCreate, kRead, kWrite, kMadviseDontNeed, kMadviseWillNeed, kFree };
std::string_view OpKindName(OpKind k);  // "create", "read", "write", "dontneed", "willneed", "free"

struct Op {
  OpKind kind = OpKind::kRead;
  std::uint64_t buffer = 0;       // buffer id
  std::uint32_t class_index = 0;  // index into Workload::classes
  std::uint64_t size = 0;         // bytes (a page multiple); the buffer's size for every kind
  std::uint64_t first_page = 0;   // read/write: the pages touched
  std::uint64_t num_pages = 0;
  bool purgeable = false;  // create: the buffer belongs to its class's purgeable share
  friend bool operator==(const Op&, const Op&) = default;
};

// A buffer owned by a lane, as the generator sees it.
struct LaneBuffer {
  std::uint64_t id = 0;
  std::uint32_t class_index = 0;
  std::uint64_t size = 0;
  bool purgeable = false;
  bool dontneed = false;  // last madvise was DONTNEED
};

// Samples a size from `d`, rounded up to whole pages.
std::uint64_t SampleSize(const SizeDist& d, Rng& rng);

class LaneGenerator {
 public:
  // `w` must be valid (ValidateWorkload) and outlive the generator; lane < w.Lanes().
  LaneGenerator(const Workload& w, std::uint32_t lane);

  // The creates of this lane's share of the initial population, in id order. Call once, first.
  std::vector<Op> InitialOps();
  // The ops this lane runs in op-bound phase `phase` (the phase's ops split over the lanes).
  std::uint64_t PhaseOps(std::size_t phase) const;
  // The next op of phase `phase` (valid index). Never fails: when the drawn kind cannot apply (no
  // buffer to read, nothing purgeable) a kind that can is yielded instead (create first).
  Op Next(std::size_t phase);

  // Buffers this lane owns now (active and DONTNEED).
  std::vector<LaneBuffer> Buffers() const;
  std::uint32_t lane() const { return lane_; }

 private:
  Op Create(std::uint32_t class_index, std::uint64_t id, std::uint64_t size, bool purgeable);
  Op CreateNew();
  std::optional<Op> Access(std::size_t phase, bool write);
  std::optional<Op> Madvise();
  std::optional<Op> Free();
  std::size_t PickActive(std::size_t phase);

  const Workload& w_;
  std::uint32_t lane_;
  std::uint32_t lanes_;
  Rng rng_;
  std::uint64_t created_ = 0;  // buffers created by this lane after the initial population
  std::uint64_t sequential_cursor_ = 0;
  std::vector<LaneBuffer> active_;    // readable/writable, in a stable order (Zipf ranks)
  std::vector<LaneBuffer> dontneed_;  // after madvise(DONTNEED)
  std::optional<ZipfSampler> zipf_;
};

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_GENERATOR_H_
