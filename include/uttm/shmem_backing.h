// Copyright (c) uttm developers.
//
// shmem_backing.h: the pages of one GEM shmem object, in a file (the kernel's shmem file of a
// drm_gem_object, in user space).
//
// The backing file is created lazily, at the first Map (an object that never gets pages never
// gets a file): a memfd when no directory is given (tmpfs, exactly the kernel's shmem; its pages
// can only leave memory where the machine has swap), or an unlinked file, mode 0600, in the
// directory the user names (the user-space stand-in for shmem plus swap: the kernel writes dirty
// pages back and drops clean ones under its own pressure, memory cgroup limits included).
//
//   Map        creates the file (fault point gem.create), reserves its blocks with fallocate so a
//              write through the mapping can never meet a full disk (gem.extend: kNoSpace), maps it
//              shared and faults every page in with MADV_POPULATE_READ: a page the file system
//              cannot read back (gem.swapin) is kIo here, never a SIGBUS later. With
//              `large_folios` the mapping is advised MADV_HUGEPAGE first, so the fault path reads
//              the file (and allocates new pages) in large folios where the file system has them;
//              without, a file coming back from disk is read ahead whole first. With `lock_pages`
//              the pages are then mlocked, as the kernel pins the shmem pages of an object that
//              holds them (the kernel cannot reclaim them until they are released). Idempotent
//              while mapped.
//   Unmap      releases the pages. With `writeback`, dirty pages are written to the file now
//              (sync_file_range, data only: the file is private and unlinked; gem.writeback:
//              kIo, the mapping is kept and its pages marked dirty again, nothing lost) and dropped
//              from the page cache (posix_fadvise DONTNEED): memory is free when it returns.
//              Without, the mapping goes and the pages stay in the page cache for the kernel's own
//              lazy reclaim (it writes them back under pressure).
//   StartWriteback / FinishWriteback
//              the write-back of an unmapped file in two steps, so that a caller releasing many
//              objects keeps the disk busy with all of them at once (the GEM shrinker's batch):
//              start the I/O for each, then wait for each and drop its pages. Writing back pages
//              nobody maps is also cheaper than writing mapped ones (no write-protect walk).
//   Prefetch   starts reading an unmapped file's pages into the page cache (readahead), so that
//              the next Map finds them there: a streaming user swaps one object in while the
//              next one's read is in flight. readahead(2) fills the page cache with single
//              pages, never large folios: with `large_folios` a prefetched Map maps more, smaller
//              pages (slower on a fast disk: see gem.md).
//   Truncate   drops the contents (the purge): unmaps and truncates the file to nothing
//              (gem.truncate: kIo, contents and mapping kept). The next Map gives zeros.
//
// Errors name the file operation and the errno. Thread-safety: none; the owner (the GEM object,
// under its reservation) serializes every call.
#ifndef UTTM_SHMEM_BACKING_H_
#define UTTM_SHMEM_BACKING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "uttm/export.h"
#include "uttm/stats.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm {

struct ShmemBackingOptions {
  // Directory for backing files (unlinked, mode 0600). Empty: a memfd.
  std::string directory = {};
  // mlock the pages while mapped (see the file comment). Without CAP_IPC_LOCK and over
  // RLIMIT_MEMLOCK, pages are faulted in unlocked instead (counted in lock_failures()).
  bool lock_pages = true;
  // Advise the mapping MADV_HUGEPAGE (see Map): the page cache then holds the file in large
  // folios (2 MiB where the file system supports them: ext4 from Linux 6.16, xfs, tmpfs as its
  // shmem_enabled setting allows), which makes reading, mapping and writing it back cheaper per
  // byte. A hint only: where the kernel ignores it, pages are single pages as before.
  bool large_folios = true;
  // Where gem.pages_held goes (null: Stats::Default()).
  Stats* stats = nullptr;
  // Optional: pages mapped and backings that hold a mapping, kept up to date by every backing
  // made with these options (a shrinker's cheap Count). Must outlive them.
  std::atomic<std::int64_t>* mapped_pages = nullptr;
  std::atomic<std::int64_t>* mapped_backings = nullptr;
};

class UTTM_EXPORT ShmemBacking {
 public:
  // `size` is rounded up to whole pages. kInvalid for 0 or a directory that is not a writable
  // directory. No file is created yet.
  static Result<std::unique_ptr<ShmemBacking>> Create(Bytes size,
                                                      const ShmemBackingOptions& options);
  ~ShmemBacking();  // unmaps and closes; the file's blocks go with it
  ShmemBacking(const ShmemBacking&) = delete;
  ShmemBacking& operator=(const ShmemBacking&) = delete;

  Result<std::byte*> Map();
  Status Unmap(bool writeback);
  // Starts writing the file's dirty pages back without waiting (sync_file_range WRITE), mapped or
  // not: a later Unmap(writeback) or FinishWriteback finds its I/O in flight or done. Errors are
  // ignored (the call that waits reports them). No-op without a file.
  void StartWriteback();
  // For an unmapped file: writes its dirty pages back, waits, and drops them from the page cache.
  // kIo (gem.writeback, or the file system's error): the pages stay in the page cache, and the
  // next Map marks them dirty again (a failed write-back leaves them clean, so the kernel could
  // otherwise drop the only good copy); the caller should Map again at once. kInvalid when mapped.
  Status FinishWriteback();
  // Starts reading an unmapped file back into the page cache (readahead) without waiting. No-op
  // when mapped, without a file or after a truncate.
  void Prefetch();
  Status Truncate();

  bool has_file() const { return fd_ >= 0; }
  bool mapped() const { return data_ != nullptr; }
  std::byte* data() const { return data_; }
  Bytes size() const { return Bytes(bytes_); }
  PageCount num_pages() const { return PageCount(bytes_ / kPageSize); }
  // Pages of the file in the page cache (mincore over a fresh read-only mapping); 0 without a file.
  std::uint64_t CachedPages() const;
  // Whether releasing pages frees memory: a directory file, or a memfd on a machine with swap.
  bool can_release() const { return can_release_; }
  std::uint64_t lock_failures() const { return lock_failures_; }
  // Where backings made with `options` keep their pages: "memfd" or the directory.
  static std::string Describe(const ShmemBackingOptions& options) {
    return options.directory.empty() ? "memfd" : options.directory;
  }
  std::string describe() const { return Describe(options_); }

 private:
  ShmemBacking(std::uint64_t bytes, const ShmemBackingOptions& options, bool can_release);
  Status OpenFile();
  Status Reserve();
  void DropMapping();
  // Marks every mapped page dirty (a write of its own first byte through the shared mapping).
  void Redirty();
  // Counts a mapping made (+1) or dropped (-1) in the gauge and the options' counters.
  void CountMapping(int sign);

  const ShmemBackingOptions options_;
  const std::uint64_t bytes_;
  const bool can_release_;
  Stats* stats_;
  int fd_ = -1;
  bool reserved_ = false;  // fallocate done since the last truncate
  // A write-back failed: the page cache may hold the only good copy, marked clean. The next Map
  // dirties every page again.
  bool redirty_ = false;
  std::byte* data_ = nullptr;
  std::uint64_t lock_failures_ = 0;
};

}  // namespace uttm

#endif  // UTTM_SHMEM_BACKING_H_
