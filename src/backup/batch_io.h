// Copyright (c) uttm developers.
//
// batch_io.h (internal): many transfers in flight at once, for a file store whose medium takes
// several requests together (io_uring; src/stores/uring). FdStore uses a BatchIo, when it has
// one, in place of one pwritev / preadv at a time: a backup or a copy is cut into chunks, all
// submitted before the first is waited for, and the store checksums (backup) or verifies (copy)
// on the calling thread while the medium works.
#ifndef UTTM_SRC_BACKUP_BATCH_IO_H_
#define UTTM_SRC_BACKUP_BATCH_IO_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "backup/page_checksum.h"
#include "uttm/backup_store.h"
#include "uttm/file_store.h"
#include "uttm/status.h"

namespace uttm::internal {

// One request of a batch: `n` pages of a PageRef, from page `first`, to or from byte `offset`
// of the store's file. BatchIo::Run sets `done` (bytes moved) and `err` (0 or an errno).
struct IoChunk {
  std::uint64_t offset = 0;
  std::size_t first = 0;
  std::size_t n = 0;
  std::size_t done = 0;
  int err = 0;
};

// What a batch's caller does while its requests are in flight; called on the calling thread.
class BatchObserver {
 public:
  // Once, after the first requests were submitted: work to overlap with the I/O.
  virtual void InFlight() {}
  // As chunk i finishes (in any order), with its done / err final.
  virtual void Complete(std::size_t i) { (void)i; }

 protected:
  ~BatchObserver() = default;
};

class BatchIo {
 public:
  virtual ~BatchIo() = default;

  // Transfers every chunk of chunks[0..count), several at once, and returns when all have
  // finished. A chunk ends with err 0 only when all its bytes moved: a short transfer is
  // continued, EINTR / EAGAIN retried; a transfer that moves nothing is ENOSPC (write) or EIO
  // (read). Honours the store.short_write fault point (a request takes half its bytes).
  // Thread-safe: concurrent calls use separate queues.
  virtual void Run(bool write, const PageRef& pages, IoChunk* chunks, std::size_t count,
                   BatchObserver& observer) = 0;

  // Most chunks one call keeps in flight (callers size their batches by it).
  virtual std::size_t depth() const = 0;

  // For Describe(): "io_uring, 32 in flight".
  virtual std::string Describe() const = 0;
};

// Fills `iov` with bytes [pos, len) of the pages from page `first` of `pages`, merging pages
// that follow each other in memory. Returns the entries used (at most the pages covered).
int BuildIov(const PageRef& pages, std::size_t first, std::size_t pos, std::size_t len, iovec* iov);

// Shortens an iovec array to its first `want` bytes.
void TruncateIov(iovec* iov, int* n, std::size_t want);

// The length a store.short_write fault cuts a request of `want` bytes to (half, 512-aligned,
// valid for O_DIRECT).
std::size_t ShortWriteLength(std::size_t want);

// A file store (file_store.h) named `label` ("uring": "uring:DIR" in Describe, "uring store" in
// messages) whose transfers go through the BatchIo `make_io` returns for the store's open
// descriptor. When it returns null the store moves one chunk at a time, and Describe adds
// `fallback` (why). Errors as NewFileStore.
Result<std::unique_ptr<BackupStore>> NewFileStoreWithIo(
    const FileStoreOptions& options, const std::string& label,
    const std::function<std::unique_ptr<BatchIo>(int fd, std::string* fallback)>& make_io);

}  // namespace uttm::internal

#endif  // UTTM_SRC_BACKUP_BATCH_IO_H_
