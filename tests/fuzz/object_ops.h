// Copyright (c) uttm developers.
//
// object_ops.h: an op-sequence fuzzer over the public buffer-object API.
//
// RunObjectOps(data) reads a byte string as a configuration byte and a sequence of operations
// and runs them against a fresh, fully wired system: a MemoryContext with a small page limit and
// the watermark swapout, a real backup store (memfd or private file, sometimes nearly full), the
// test device (SYSTEM, TT, VRAM and a second arena; memcpy moves, multihop through TT) and a
// simulated GPU (pipelined engine copies, ghosts, busy objects), each wrapped by a BoShrinker,
// all registered with one Reclaimer as direct reclaim. Operations: create with a random
// placement, validate, CPU write and read of byte ranges, madvise, pin/unpin, evict, shrinker
// scans, reclaim rounds, watermark swapout, GPU jobs that keep objects busy, faults armed on every
// fault point, release, and steps run while another thread scans the shrinkers.
//
// The model keeps a shadow copy of every retained object, written with content that depends on
// (object, page, offset, version), so a page restored to the wrong place, another object's page
// or a stale page is caught. After every operation: contents of pinned objects stay put, a
// will-need object is never purged, a purged one reads as zeros, and CheckInvariants holds over
// the whole system. At the end every fault is disarmed and every retained object is read back
// byte for byte; after releasing everything no page, charge, store slot or shrinker count is left.
//
// Returns OK, or kCorrupt with a message naming the failed check and the operations that led to
// it (the trace). Deterministic for a given input, except for the concurrent steps.
#ifndef UTTM_TESTS_FUZZ_OBJECT_OPS_H_
#define UTTM_TESTS_FUZZ_OBJECT_OPS_H_

#include <cstddef>
#include <cstdint>

#include "uttm/status.h"

namespace uttm::fuzz {

struct ObjectOpsOptions {
  // Print each operation and its result to stderr as it runs.
  bool verbose = false;
  // Most operations taken from one input.
  std::size_t max_ops = 200;
};

Status RunObjectOps(const std::uint8_t* data, std::size_t size,
                    const ObjectOpsOptions& options = {});

}  // namespace uttm::fuzz

#endif  // UTTM_TESTS_FUZZ_OBJECT_OPS_H_
