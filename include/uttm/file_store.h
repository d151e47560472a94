// Copyright (c) uttm developers.
//
// file_store.h: a backup store in a private file (for a fast local disk, e.g. NVMe).
//
// The file is created with O_TMPFILE in the chosen directory (or, where the file system lacks
// O_TMPFILE, with mkstemp() and unlinked at once), mode 0600, so it never has a name another
// process could open and disappears with the store, even after a crash. Many page vectors share
// it: a run of pages is one large pwrite, dropped pages are hole-punched so the disk blocks
// return to the file system, and freed slots are reused.
//
// Options, all with defaults (a default-constructed FileStoreOptions is a valid configuration):
//   directory       where the file lives; "" = $TMPDIR, or /tmp when unset.
//   o_direct        bypass the page cache (O_DIRECT): source/destination buffers must be page
//                   aligned (kInvalid otherwise); creation fails with kNotSupported, naming the
//                   directory, if the file system refuses O_DIRECT.
//   capacity_bytes  most bytes held at once; 0 = no cap (the file system's free space limits).
//   reserve_bytes   free space to leave on the file system: BackupPages admits only what keeps
//                   this much free, and BytesAvailable subtracts it.
//   use_o_tmpfile   false forces the mkstemp + unlink path.
//
// BackupFlags::writeback starts writeback of the just-written range (sync_file_range WRITE,
// asynchronous). Flush() waits until everything is on the medium (fdatasync) and drops the
// file's pages from the page cache (POSIX_FADV_DONTNEED). ENOSPC in the middle of a run gives a
// partial backup (the pages before the failure are stored).
//
// Thread-safety: the store is internally synchronised (see backup_store.h).
#ifndef UTTM_FILE_STORE_H_
#define UTTM_FILE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "uttm/backup_store.h"
#include "uttm/export.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

struct FileStoreOptions {
  std::string directory;  // "" = $TMPDIR or /tmp
  bool o_direct = false;
  std::uint64_t capacity_bytes = 0;  // 0 = no cap
  std::uint64_t reserve_bytes = 0;
  bool use_o_tmpfile = true;
  // Checksum large backups (64 KiB chunks and up) on one helper thread of the store while the
  // calling thread writes them, so the checksum costs no wall time; the thread starts on first
  // use. Only one caller at a time gets it; the others checksum inline. false = always inline.
  bool parallel_checksum = true;
  // Where counters and the store.bytes_used gauge go; null = Stats::Default().
  Stats* stats = nullptr;
};

// Creates a file store. Errors: kNotFound (no such directory), kInvalid (not a directory,
// capacity below one page), kNotSupported (O_DIRECT refused), or the errno of open() with a
// message naming the directory.
UTTM_EXPORT Result<std::unique_ptr<BackupStore>> NewFileStore(const FileStoreOptions& options = {});

}  // namespace uttm

#endif  // UTTM_FILE_STORE_H_
