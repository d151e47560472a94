// Copyright (c) uttm developers.
#include "uttm/uring_store.h"

#include <liburing.h>
#include <sched.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "backup/batch_io.h"
#include "backup/fd_store.h"
#include "uttm/backup_store_factory.h"
#include "uttm/fault_injection.h"
#include "uttm/file_store.h"
#include "uttm/mutex.h"
#include "uttm/units.h"

namespace uttm {
namespace {

using internal::BatchIo;
using internal::BatchObserver;
using internal::IoChunk;
using internal::kIoChunkPages;
using internal::PageRef;

constexpr unsigned kMaxDepth = 64;
// Rings kept for reuse when no call holds them (more are made for more concurrent calls).
constexpr std::size_t kMaxIdleRings = 4;

// One io_uring with the store's file registered, and an iovec array per request slot.
struct Ring {
  io_uring ring{};
  bool live = false;  // ring set up (and to be torn down)
  bool fixed_file = false;
  std::unique_ptr<iovec[]> iovs;

  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    if (live) io_uring_queue_exit(&ring);
  }
};

// A new ring of `depth` entries for `fd`, or null with `*err` set (a positive errno).
std::unique_ptr<Ring> MakeRing(unsigned depth, int fd, int* err) noexcept {
  if (ShouldFail(FaultPoint::kStoreUringRefused)) {
    *err = EPERM;
    return nullptr;
  }
  std::unique_ptr<Ring> r;
  try {
    r = std::make_unique<Ring>();
    r->iovs = std::make_unique<iovec[]>(std::size_t{depth} * kIoChunkPages);
  } catch (const std::bad_alloc&) {
    *err = ENOMEM;
    return nullptr;
  }
  // Deferred task work runs when this thread waits anyway (no interrupting IPIs); kernels
  // before 5.19 refuse the flag, and get a plain ring.
  int rc = io_uring_queue_init(depth, &r->ring, IORING_SETUP_COOP_TASKRUN);
  if (rc == -EINVAL) rc = io_uring_queue_init(depth, &r->ring, 0);
  if (rc < 0) {
    *err = -rc;
    return nullptr;
  }
  r->live = true;
  r->fixed_file = io_uring_register_files(&r->ring, &fd, 1) == 0;
  return r;
}

// Moves the rest of one chunk with preadv / pwritev (a call without a ring).
void TransferSync(int fd, bool write, const PageRef& pages, IoChunk& c) {
  c.err = internal::TransferRange(fd, write, c.offset, pages, c.first, c.n, &c.done, nullptr);
}

// Prints the fallback once per process: an operator should know, a log should not fill up.
void SayRefusedOnce(const std::string& why) {
  static std::atomic<bool> said{false};
  if (!said.exchange(true)) {
    std::fprintf(stderr, "uttm: uring store: %s; moving one request at a time (pwritev/preadv)\n",
                 why.c_str());
  }
}

class UringIo final : public BatchIo {
 public:
  UringIo(int fd, unsigned depth, std::unique_ptr<Ring> first, Stats* stats)
      : fd_(fd), depth_(depth), stats_(stats) {
    idle_.push_back(std::move(first));
  }

  std::size_t depth() const override { return depth_; }

  std::string Describe() const override {
    return "io_uring, " + std::to_string(depth_) + " in flight";
  }

  void Run(bool write, const PageRef& pages, IoChunk* chunks, std::size_t count,
           BatchObserver& observer) override {
    for (std::size_t i = 0; i < count; ++i) chunks[i].done = chunks[i].err = 0;
    std::unique_ptr<Ring> ring = refused_.load(std::memory_order_relaxed) ? nullptr : Acquire();
    if (ring == nullptr) {
      // No ring for this call (the kernel refuses io_uring_enter, or has no memory for a ring):
      // one chunk at a time.
      observer.InFlight();
      for (std::size_t i = 0; i < count; ++i) {
        TransferSync(fd_, write, pages, chunks[i]);
        observer.Complete(i);
      }
      return;
    }
    if (RunOnRing(*ring, write, pages, chunks, count, observer)) Release(std::move(ring));
  }

 private:
  std::unique_ptr<Ring> Acquire() {
    {
      MutexLock lock(&mu_);
      // A child of fork() shares its parent's rings (their memory is mapped shared): it must
      // never submit on them. Its copies are closed and it makes rings of its own.
      if (const pid_t pid = ::getpid(); pid != owner_) {
        idle_.clear();
        owner_ = pid;
      }
      if (!idle_.empty()) {
        std::unique_ptr<Ring> r = std::move(idle_.back());
        idle_.pop_back();
        return r;
      }
    }
    int err = 0;
    return MakeRing(depth_, fd_, &err);
  }

  void Release(std::unique_ptr<Ring> ring) {
    MutexLock lock(&mu_);
    if (idle_.size() < kMaxIdleRings) idle_.push_back(std::move(ring));
  }

  // The batch on `ring`. False when the ring broke (io_uring_enter refused): the requests the
  // kernel had taken are waited for (they read into the caller's pages or write into slots the
  // store may hand out again), the rest of every chunk is moved with pwritev / preadv, the store
  // moves one request at a time from then on, and the ring must not be reused.
  bool RunOnRing(Ring& ring, bool write, const PageRef& pages, IoChunk* chunks, std::size_t count,
                 BatchObserver& observer) {
    unsigned free_slots[kMaxDepth];
    std::size_t slot_chunk[kMaxDepth];
    unsigned nfree = depth_;
    for (unsigned i = 0; i < depth_; ++i) free_slots[i] = depth_ - 1 - i;
    std::size_t next = 0;
    std::size_t finished = 0;
    unsigned in_flight = 0;  // prepared and not yet completed (submitted or not)
    std::uint64_t requests = 0;
    std::uint64_t resubmits = 0;
    bool overlapped = false;
    int broken = 0;

    // Queues the rest of slot's chunk (from its `done` bytes on).
    auto prep = [&](unsigned slot) {
      IoChunk& c = chunks[slot_chunk[slot]];
      iovec* iov = ring.iovs.get() + std::size_t{slot} * kIoChunkPages;
      const std::size_t len = c.n * kPageSize;
      int niov = internal::BuildIov(pages, c.first, c.done, len, iov);
      if (write && len - c.done > 512 && ShouldFail(FaultPoint::kStoreShortWrite)) {
        internal::TruncateIov(iov, &niov, internal::ShortWriteLength(len - c.done));
      }
      io_uring_sqe* sqe = io_uring_get_sqe(&ring.ring);  // never null: depth_ slots, depth_ SQEs
      const int file = ring.fixed_file ? 0 : fd_;
      const std::uint64_t pos = c.offset + c.done;
      if (write) {
        io_uring_prep_writev(sqe, file, iov, static_cast<unsigned>(niov), pos);
      } else {
        io_uring_prep_readv(sqe, file, iov, static_cast<unsigned>(niov), pos);
      }
      if (ring.fixed_file) sqe->flags |= IOSQE_FIXED_FILE;
      io_uring_sqe_set_data64(sqe, slot);
      ++in_flight;
      ++requests;
    };

    // Takes every completion that is ready. A broken ring resubmits nothing.
    auto reap = [&] {
      io_uring_cqe* cqe = nullptr;
      while (io_uring_peek_cqe(&ring.ring, &cqe) == 0) {
        const auto slot = static_cast<unsigned>(io_uring_cqe_get_data64(cqe));
        const int res = cqe->res;
        io_uring_cqe_seen(&ring.ring, cqe);
        --in_flight;
        const std::size_t index = slot_chunk[slot];
        IoChunk& c = chunks[index];
        bool again = false;
        if (res == -EINTR || res == -EAGAIN) {
          again = true;
        } else if (res < 0) {
          c.err = -res;
        } else if (res == 0) {
          c.err = write ? ENOSPC : EIO;  // a full medium, or a slot past the end of the file
        } else {
          c.done += static_cast<std::size_t>(res);
          again = c.done < c.n * kPageSize;
        }
        if (again && broken == 0) {
          ++resubmits;
          prep(slot);
        } else if (!again) {
          free_slots[nfree++] = slot;
          ++finished;
          observer.Complete(index);
        }
        // (again on a broken ring: the slot keeps its chunk, finished below without the ring)
      }
    };

    while (finished < count && broken == 0) {
      while (nfree > 0 && next < count) {
        const unsigned slot = free_slots[--nfree];
        slot_chunk[slot] = next++;
        prep(slot);
      }
      int rc;
      if (!overlapped) {
        // Let the caller work while the first requests run.
        rc = io_uring_submit(&ring.ring);
        if (rc >= 0) {
          overlapped = true;
          observer.InFlight();
          continue;
        }
      } else {
        rc = io_uring_submit_and_wait(&ring.ring, 1);
      }
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        broken = -rc;
        break;
      }
      reap();
    }
    stats_->Add(Stat::kStoreUringRequests, requests);
    if (resubmits != 0) stats_->Add(Stat::kStoreUringResubmits, resubmits);
    if (broken == 0) return true;

    // Requests still queued were never seen by the kernel; the others must complete before
    // their pages are touched again. Task work is run on any return from a system call, so a
    // yield lets completions arrive even where io_uring_enter itself is refused.
    const unsigned unsubmitted = io_uring_sq_ready(&ring.ring);
    while (in_flight > unsubmitted) {
      reap();
      if (in_flight <= unsubmitted) break;
      io_uring_cqe* cqe = nullptr;
      const int rc = io_uring_wait_cqe(&ring.ring, &cqe);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN) ::sched_yield();
    }
    refused_.store(true, std::memory_order_relaxed);
    SayRefusedOnce("io_uring_enter failed (" + std::string(std::strerror(broken)) + ")");
    if (!overlapped) observer.InFlight();
    // The rest of every chunk not finished (its slot not free), one at a time, from where the
    // ring left it.
    for (unsigned slot = 0; slot < depth_; ++slot) {
      if (std::find(free_slots, free_slots + nfree, slot) == free_slots + nfree) {
        IoChunk& c = chunks[slot_chunk[slot]];
        if (c.err == 0) TransferSync(fd_, write, pages, c);
        observer.Complete(slot_chunk[slot]);
      }
    }
    for (std::size_t i = next; i < count; ++i) {
      TransferSync(fd_, write, pages, chunks[i]);
      observer.Complete(i);
    }
    return false;
  }

  const int fd_;
  const unsigned depth_;
  Stats* const stats_;
  Mutex mu_;
  std::vector<std::unique_ptr<Ring>> idle_ UTTM_GUARDED_BY(mu_);
  // The kernel refused io_uring_enter once: every call moves one request at a time since.
  std::atomic<bool> refused_{false};
  pid_t owner_ UTTM_GUARDED_BY(mu_) = ::getpid();  // the process the idle rings belong to
};

Result<std::unique_ptr<BackupStore>> MakeFromSpec(const BackupStoreSpec& spec,
                                                  const BackupStoreEnv& env) {
  UringStoreOptions o;
  o.stats = env.stats;
  if (spec.has_directory && spec.directory.empty()) {
    return BackupStoreSpecError(spec.text, "empty directory after \"uring:\"");
  }
  o.directory = std::string(spec.directory);
  for (std::string_view opt : spec.options) {
    std::uint64_t v = 0;
    if (opt == "no_tmpfile") {
      o.use_o_tmpfile = false;
    } else if (opt.starts_with("cap=")) {
      if (!ParseBackupStoreSize(opt.substr(4), &o.capacity_bytes)) {
        return BackupStoreSpecError(spec.text, "bad size in \"" + std::string(opt) + "\"");
      }
    } else if (opt.starts_with("reserve=")) {
      if (!ParseBackupStoreSize(opt.substr(8), &o.reserve_bytes)) {
        return BackupStoreSpecError(spec.text, "bad size in \"" + std::string(opt) + "\"");
      }
    } else if (opt.starts_with("depth=") && ParseBackupStoreSize(opt.substr(6), &v) &&
               opt.back() >= '0' && opt.back() <= '9' && v >= 1 && v <= kMaxDepth) {
      o.queue_depth = static_cast<unsigned>(v);
    } else {
      return BackupStoreSpecError(spec.text, "unknown or malformed uring option \"" +
                                                 std::string(opt) +
                                                 "\" (known: cap=SIZE, reserve=SIZE, depth=1..64, "
                                                 "no_tmpfile)");
    }
  }
  return NewUringStore(o);
}

}  // namespace

Result<std::unique_ptr<BackupStore>> NewUringStore(const UringStoreOptions& options) {
  if (options.queue_depth < 1 || options.queue_depth > kMaxDepth) {
    return Status(Errc::kInvalid, "uring store: queue_depth " +
                                      std::to_string(options.queue_depth) + " (expected 1..64)");
  }
  FileStoreOptions fo;
  fo.directory = options.directory;
  fo.o_direct = true;
  fo.capacity_bytes = options.capacity_bytes;
  fo.reserve_bytes = options.reserve_bytes;
  fo.use_o_tmpfile = options.use_o_tmpfile;
  fo.parallel_checksum = false;  // the calling thread checksums while its requests are in flight
  fo.stats = options.stats;
  Stats* stats = options.stats != nullptr ? options.stats : &Stats::Default();
  const unsigned depth = options.queue_depth;
  return internal::NewFileStoreWithIo(
      fo, "uring", [depth, stats](int fd, std::string* fallback) -> std::unique_ptr<BatchIo> {
        int err = 0;
        std::unique_ptr<Ring> ring = MakeRing(depth, fd, &err);
        if (ring == nullptr) {
          *fallback = std::string("io_uring refused: ") + std::strerror(err);
          SayRefusedOnce("io_uring_setup failed (" + std::string(std::strerror(err)) + ")");
          return nullptr;
        }
        return std::make_unique<UringIo>(fd, depth, std::move(ring), stats);
      });
}

void RegisterUringStoreKind() { (void)RegisterBackupStoreKind("uring", MakeFromSpec); }

}  // namespace uttm
