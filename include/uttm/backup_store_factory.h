// Copyright (c) uttm developers.
//
// backup_store_factory.h: creates a backup store from a spec string, so tools and tests can
// choose one with a flag (like rocksdb's CreateFromString).
//
//   spec      := kind [ ":" directory ] { "," option }
//   "memfd"   (alias "shmem")  a MemfdStore; options: allow_without_swap, cap=SIZE,
//             inline_checksum, name=NAME
//   "file"    a FileStore in $TMPDIR or /tmp; "file:/dir" in /dir;
//             options: direct (O_DIRECT), cap=SIZE, inline_checksum, reserve=SIZE, no_tmpfile
//   inline_checksum  checksum on the calling thread only (parallel_checksum = false)
//   SIZE      a number with an optional K, M, G or T suffix (binary units), e.g. cap=512M
//
// Examples: "memfd,allow_without_swap", "file:/var/tmp", "file:/mnt/nvme,direct,cap=64G".
#ifndef UTTM_BACKUP_STORE_FACTORY_H_
#define UTTM_BACKUP_STORE_FACTORY_H_

#include <memory>
#include <string_view>

#include "uttm/backup_store.h"
#include "uttm/export.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

// Creates the store `spec` describes. kInvalid with a message naming the bad part for a
// malformed spec (unknown kind or option, an option the kind does not take, a bad size, an
// empty directory); otherwise the errors of NewMemfdStore / NewFileStore. `stats` null =
// Stats::Default().
UTTM_EXPORT Result<std::unique_ptr<BackupStore>> CreateBackupStore(std::string_view spec,
                                                                   Stats* stats = nullptr);

}  // namespace uttm

#endif  // UTTM_BACKUP_STORE_FACTORY_H_
