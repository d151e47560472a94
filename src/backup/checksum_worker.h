// Copyright (c) uttm developers.
//
// checksum_worker.h (internal): a helper thread that checksums a chunk of pages while the
// calling thread writes the same chunk to the store's medium (backup), or reads the next chunk
// (restore, which verifies the previous chunk's checksums).
//
// A backup reads every page twice: once for the copy into the medium (pwritev) and once for
// its checksum. Done one after the other on one core, the checksum adds about a fifth to a
// large backup. Handed to this worker, it runs on a second core during the write, and whichever
// of the two reads the chunk first brings it into the shared cache for the other.
//
// One worker serves one caller at a time: TryStart returns false while another thread's job is
// in flight, and that caller checksums inline instead (never waits for the worker). The thread
// is started on first use and stopped by the destructor. In a child process after fork() the
// parent's thread does not exist; the worker notices (pid check) and declines every job.
//
// Thread-safety: TryStart and Wait may be called from any thread; the thread that got true from
// TryStart must call Wait before reading the checksums or starting another job.
#ifndef UTTM_SRC_BACKUP_CHECKSUM_WORKER_H_
#define UTTM_SRC_BACKUP_CHECKSUM_WORKER_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

#include "backup/page_checksum.h"
#include "uttm/mutex.h"
#include "uttm/thread_annotations.h"

namespace uttm::internal {

class ChecksumWorker {
 public:
  ChecksumWorker() = default;
  ~ChecksumWorker();
  ChecksumWorker(const ChecksumWorker&) = delete;
  ChecksumWorker& operator=(const ChecksumWorker&) = delete;

  // Starts checksumming pages [first, first + n) of `pages` into out[0..n) on the worker thread.
  // Returns false, doing nothing, when the worker is serving another caller, could not start its
  // thread, or belongs to the parent of a fork: the caller then checksums inline. The pages and
  // `out` must stay valid until Wait returns.
  bool TryStart(const PageRef& pages, std::size_t first, std::size_t n, std::uint64_t* out)
      UTTM_EXCLUDES(mu_);

  // Blocks until the job started by this caller's TryStart is done; then the worker is free.
  void Wait() UTTM_EXCLUDES(mu_);

 private:
  void Run() UTTM_EXCLUDES(mu_);
  // True in a child of fork() of the process that started the thread.
  bool ForeignProcess() const;

  mutable Mutex mu_;
  CondVar cv_;
  bool owned_ UTTM_GUARDED_BY(mu_) = false;    // a caller holds the worker (TryStart..Wait)
  bool pending_ UTTM_GUARDED_BY(mu_) = false;  // a job waits for the thread
  bool done_ UTTM_GUARDED_BY(mu_) = false;     // the job is finished
  bool stop_ UTTM_GUARDED_BY(mu_) = false;
  PageRef pages_ UTTM_GUARDED_BY(mu_);
  std::size_t first_ UTTM_GUARDED_BY(mu_) = 0;
  std::size_t count_ UTTM_GUARDED_BY(mu_) = 0;
  std::uint64_t* out_ UTTM_GUARDED_BY(mu_) = nullptr;
  // Process that started the thread (0: none yet). Atomic, so a child of fork() can tell it is
  // not that process without touching mu_, which may have been copied locked.
  std::atomic<pid_t> owner_pid_{0};
  std::thread* thread_ UTTM_GUARDED_BY(mu_) = nullptr;
};

}  // namespace uttm::internal

#endif  // UTTM_SRC_BACKUP_CHECKSUM_WORKER_H_
