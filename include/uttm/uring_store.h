// Copyright (c) uttm developers.
//
// uring_store.h: a backup store in a private O_DIRECT file, written and read through io_uring
// (for a fast local disk, NVMe above all). An optional library: link uttm::uring_store (it needs
// liburing).
//
// The file is a file store's (file_store.h: O_TMPFILE or mkstemp + unlink, mode 0600, slots of
// 4 KiB, dropped pages hole-punched, XXH3-64 checksums), opened with O_DIRECT. What differs is
// how it moves pages: a backup or copy is cut into requests of up to 1 MiB, and up to
// `queue_depth` of them are in flight at once in one submission (readv / writev on the
// registered file). The calling thread checksums a backup's pages while the disk writes them and
// verifies each read request as soon as it completes, while later ones are still in flight.
// Completions are reaped by the call that submitted them (each call takes an io_uring of its own
// from a small pool), so nothing depends on the caller polling. Short transfers, EINTR and EAGAIN
// are continued; a request that moves nothing is ENOSPC (write) or EIO (read). Buffers are not
// registered: the pages are the caller's and differ on every call, and registering pins them at
// a cost like the one it saves.
//
// Where the kernel refuses io_uring (io_uring_setup fails: an old kernel, a seccomp profile such
// as a container default, the io_uring_disabled sysctl), the store says so once on stderr, and
// in Describe(), and moves one request at a time with pwritev / preadv instead; it works the same
// otherwise. A later failure to set up another ring (memory) falls back the same way for that
// call only.
//
// Fault points: those of the file store (store.write, store.nospace, store.short_write, which
// here cuts an io_uring request short, store.read, store.corrupt, store.interrupt) and
// store.uring_refused (io_uring_setup refused with EPERM at creation).
//
// Thread-safety: internally synchronised (backup_store.h).
#ifndef UTTM_URING_STORE_H_
#define UTTM_URING_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "uttm/backup_store.h"
#include "uttm/export.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

struct UringStoreOptions {
  std::string directory;             // "" = $TMPDIR or /tmp
  std::uint64_t capacity_bytes = 0;  // most bytes held at once; 0 = no cap
  std::uint64_t reserve_bytes = 0;   // free space to leave on the file system
  // Requests one call keeps in flight (1..64); each is up to 1 MiB.
  unsigned queue_depth = 16;
  bool use_o_tmpfile = true;  // false forces the mkstemp + unlink path
  Stats* stats = nullptr;     // null = Stats::Default()
};

// Creates an io_uring store. Errors: kInvalid (queue_depth out of range, capacity below one
// page), and those of NewFileStore with O_DIRECT (kNotFound, kNotSupported when the file system
// refuses O_DIRECT, ...), each naming the directory. A refused io_uring is not an error (see
// above).
UTTM_EXPORT Result<std::unique_ptr<BackupStore>> NewUringStore(
    const UringStoreOptions& options = {});

// Makes CreateBackupStore (backup_store_factory.h) accept "uring[:DIR]" with the options
// cap=SIZE, reserve=SIZE, depth=1..64 and no_tmpfile. Idempotent, thread-safe.
UTTM_EXPORT void RegisterUringStoreKind();

}  // namespace uttm

#endif  // UTTM_URING_STORE_H_
