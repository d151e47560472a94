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
//   other kinds  registered at run time by the optional store libraries (RegisterBackupStoreKind;
//             the compressed RAM store registers "lz4" and "zstd", compressed_store.h)
//   options on every kind, registered the same way (RegisterBackupStoreOption): "encrypt"
//             (encrypted_store.h)
//
// Examples: "memfd,allow_without_swap", "file:/var/tmp", "file:/mnt/nvme,direct,cap=64G".
#ifndef UTTM_BACKUP_STORE_FACTORY_H_
#define UTTM_BACKUP_STORE_FACTORY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "uttm/backup_store.h"
#include "uttm/export.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

class MemoryContext;

// A spec split into its parts; the views point into the spec string.
struct BackupStoreSpec {
  std::string_view text;  // the whole spec, for messages
  std::string_view kind;
  std::string_view directory;  // after "kind:"
  bool has_directory = false;
  std::vector<std::string_view> options;  // after the kind, split at ','
};

// What a store may need from its creator besides its spec.
struct BackupStoreEnv {
  Stats* stats = nullptr;  // never null when a maker is called
  // The memory context whose limits a store's own memory counts against (a compressed RAM
  // store's slabs); null: none.
  MemoryContext* memory = nullptr;
};

using BackupStoreMaker = std::function<Result<std::unique_ptr<BackupStore>>(
    const BackupStoreSpec& spec, const BackupStoreEnv& env)>;

// Creates the store `spec` describes. kInvalid with a message naming the bad part for a
// malformed spec (unknown kind or option, an option the kind does not take, a bad size, an
// empty directory); otherwise the errors of the kind's maker (NewMemfdStore, NewFileStore, ...).
// `stats` null = Stats::Default(). Thread-safe.
UTTM_EXPORT Result<std::unique_ptr<BackupStore>> CreateBackupStore(std::string_view spec,
                                                                   Stats* stats = nullptr,
                                                                   MemoryContext* memory = nullptr);

using BackupStoreWrapper = std::function<Result<std::unique_ptr<BackupStore>>(
    std::unique_ptr<BackupStore> inner, const BackupStoreEnv& env)>;

// Makes CreateBackupStore accept the option `option` on every kind: the store is made without
// it, then given to `wrap` (which owns it from then on), e.g. "encrypt" (encrypted_store.h).
// kInvalid for an empty option or one with ':', ',' or '='. Thread-safe.
UTTM_EXPORT Status RegisterBackupStoreOption(std::string option, BackupStoreWrapper wrap);

// Makes CreateBackupStore build `kind` with `make` (replacing an earlier registration of the
// same kind). kInvalid for an empty kind, one with ':' or ',', or a built-in kind (memfd, shmem,
// file). Thread-safe.
UTTM_EXPORT Status RegisterBackupStoreKind(std::string kind, BackupStoreMaker make);

// For makers: the kInvalid error CreateBackupStore gives for a bad spec ("backup store spec
// \"...\": what"), and the SIZE syntax above (false on a malformed size or overflow).
UTTM_EXPORT Status BackupStoreSpecError(std::string_view spec, const std::string& what);
UTTM_EXPORT bool ParseBackupStoreSize(std::string_view text, std::uint64_t* out);

}  // namespace uttm

#endif  // UTTM_BACKUP_STORE_FACTORY_H_
