// Copyright (c) uttm developers.
//
// memfd_store.h: a backup store in anonymous shared memory (memfd), TTM's shmem ttm_backup.
//
// Pages go into one private memfd_create() file shared by every page vector that uses the store;
// runs of pages are written with one large pwrite, dropped pages are hole-punched so the shmem
// really returns to the system (fstat().st_blocks shows it; process RSS does not).
//
// The swap rule. Copying anonymous pages into shmem frees nothing by itself: shmem is freed only
// when the kernel swaps it out. So, like ttm_backup_bytes_avail(), the store by default admits
// only as many bytes as there is free swap (sysinfo().freeswap) and answers kNoSpace beyond that;
// BytesAvailable() reports the free swap. On a machine without swap it admits nothing. Setting
// `allow_without_swap` lifts the rule (for tests, or to move memory into a memfd deliberately);
// BytesAvailable() then reports MemAvailable + SwapFree (from /proc/meminfo).
//
// Thread-safety: the store is internally synchronised (see backup_store.h).
#ifndef UTTM_MEMFD_STORE_H_
#define UTTM_MEMFD_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "uttm/backup_store.h"
#include "uttm/export.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

struct MemfdStoreOptions {
  // Name of the memfd, shown as "/memfd:<name> (deleted)" in /proc/<pid>/fd.
  std::string name = "uttm-backup";
  // Admit backups without free swap (see the file comment). Default false: the kernel rule.
  bool allow_without_swap = false;
  // Most bytes held at once (rounded down to whole pages); 0 = no cap.
  std::uint64_t capacity_bytes = 0;
  // As FileStoreOptions::parallel_checksum: checksum large backups on a helper thread.
  bool parallel_checksum = true;
  // Where counters and the store.bytes_used gauge go; null = Stats::Default().
  Stats* stats = nullptr;
};

// Creates a memfd store. Errors: kInvalid (capacity below one page, empty name), or the errno
// of memfd_create (kNoMemory, ...) with a message.
UTTM_EXPORT Result<std::unique_ptr<BackupStore>> NewMemfdStore(
    const MemfdStoreOptions& options = {});

}  // namespace uttm

#endif  // UTTM_MEMFD_STORE_H_
