// Copyright (c) uttm developers.
//
// encrypted_store.h: encryption at rest for any backup store. An optional library: link
// uttm::encrypted_store (it needs OpenSSL's libcrypto).
//
// An EncryptedStore wraps another store (it owns it) and hands it only ciphertext: every page is
// sealed with AES-256-GCM before the inner store sees it and opened after it comes back.
//   * The key: 32 bytes from getrandom(2), made when the store is created and kept only in this
//     process's memory, on a page that is locked (never swapped) and left out of core dumps
//     (MADV_DONTDUMP); cleared (OPENSSL_cleanse) when the store is destroyed. Nothing written
//     ever lets anyone read the data back after the process is gone.
//   * Nonces: 96 bits, a random 32-bit prefix of the store and a 64-bit counter taken once per
//     page sealed, so no nonce repeats under the key (2^64 pages).
//   * The 16-byte tag of every page, with its nonce, stays in memory beside the inner handle
//     (24 bytes per page). Opening checks the tag, so a page changed, swapped with another or
//     replaced behind the store's back is kIo ("authentication failed"), never data; the inner
//     store's own checksum still catches media errors first.
// Handles are the inner store's. Space, partial backups, interruptions and every error are the
// inner store's, reported as they are (a page the inner store did not take was never recorded).
//
// Thread-safety: internally synchronised (backup_store.h): the tag table has its own lock,
// sealing and opening run outside it on per-thread cipher contexts.
#ifndef UTTM_ENCRYPTED_STORE_H_
#define UTTM_ENCRYPTED_STORE_H_

#include <memory>

#include "uttm/backup_store.h"
#include "uttm/export.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

struct EncryptedStoreOptions {
  // Counters (store.checksum_failures counts failed authentications; null: Stats::Default()).
  Stats* stats = nullptr;
};

// Wraps `inner`. kInvalid for a null inner store; kNoMemory when no key can be made (getrandom
// failed, or the key's page cannot be mapped).
UTTM_EXPORT Result<std::unique_ptr<BackupStore>> NewEncryptedStore(
    std::unique_ptr<BackupStore> inner, const EncryptedStoreOptions& options = {});

// Registers the spec option "encrypt" with CreateBackupStore for every kind: "file:/dir,encrypt",
// "memfd,encrypt", "lz4,encrypt" (backup_store_factory.h). Idempotent and thread-safe.
UTTM_EXPORT void RegisterEncryptedStoreOption();

}  // namespace uttm

#endif  // UTTM_ENCRYPTED_STORE_H_
