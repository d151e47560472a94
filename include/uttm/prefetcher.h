// Copyright (c) uttm developers.
//
// prefetcher.h: restores buffer objects ahead of their use, on threads of its own: the
// "will need" hint of madvise(MADV_WILLNEED), which for anonymous memory starts swap-in readahead
// (madvise_willneed in mm/madvise.c) and returns at once.
//
//   uttm::Prefetcher prefetch({.threads = 1, .stats = &stats});
//   prefetch.Prefetch(next_bo);                    // returns at once
//   ...                                            // work on something else meanwhile
//   auto map = uttm::Mapping::Create(next_bo, uttm::kMapRead, ctx);   // ready, or waits for it
//
// A worker takes a queued object, maps it for reading (Mapping::Create with kMapRead: reserve,
// wait for the GPU, restore or populate, map contiguously) and unmaps it again. The object's
// reservation is held while its restore runs, so a Mapping::Create of that object meanwhile waits
// for exactly that restore and nothing else; the contiguous mapping stays with the pages, so the
// user's own map costs only the reserve. A prefetch reads: the object's clean copy is kept.
//
// A hint, never a promise: an object already resident costs a reserve and an unmap; a prefetch
// that fails (kNoMemory with the budget full of pinned objects, kIo, a purged object) is counted
// in prefetch.failed and dropped, and the user's own map reports the error. The pages a prefetch
// brings in are unpinned again at once: under pressure reclaim may take them back before use.
//
// Errors: Prefetch gives kInvalid for a null object or after Stop, kBusy when `queue_limit`
// hints are waiting (this one is dropped, counted in prefetch.dropped).
// Thread-safety: every method may be called from any thread. Stop (and the destructor)
// interrupts a restore in progress (restores are resumable: nothing is lost), drops the hints
// still queued and joins the workers; do not call them from a worker's own call chain.
#ifndef UTTM_PREFETCHER_H_
#define UTTM_PREFETCHER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <stop_token>
#include <thread>
#include <vector>

#include "uttm/buffer_object.h"
#include "uttm/export.h"
#include "uttm/mutex.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

struct PrefetcherOptions {
  // Worker threads (at least 1): restores of different objects run side by side, each its own
  // stream of reads.
  unsigned threads = 1;
  // Hints waiting at most; more are refused with kBusy.
  std::size_t queue_limit = 256;
  // Where prefetch.* counters go (null: Stats::Default()).
  Stats* stats = nullptr;
};

class UTTM_EXPORT Prefetcher {
 public:
  explicit Prefetcher(const PrefetcherOptions& options = {});
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Queues `bo` to be made resident (see the file comment). Returns at once.
  Status Prefetch(BoRef bo);
  // Waits until every hint queued so far has been handled (done, failed or dropped by Stop).
  void Drain();
  // Interrupts, drops the queue, joins the workers; later Prefetch calls get kInvalid. Idempotent.
  void Stop();

  // Hints waiting or in progress right now.
  std::size_t pending() const;

 private:
  void Run();

  const PrefetcherOptions options_;
  Stats* const stats_;
  std::stop_source stop_;
  Mutex stop_mu_;  // serializes Stop
  std::vector<std::thread> workers_ UTTM_GUARDED_BY(stop_mu_);
  mutable Mutex mu_;
  CondVar work_cv_;
  CondVar idle_cv_;
  std::deque<BoRef> queue_ UTTM_GUARDED_BY(mu_);
  std::size_t busy_ UTTM_GUARDED_BY(mu_) = 0;
  bool stopping_ UTTM_GUARDED_BY(mu_) = false;
};

}  // namespace uttm

#endif  // UTTM_PREFETCHER_H_
