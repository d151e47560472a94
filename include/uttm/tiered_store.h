// Copyright (c) uttm developers.
//
// tiered_store.h: two backup stores as one, a fast upper tier (the compressed RAM store, say)
// over a larger lower one (a file or io_uring store), the way zswap sits in front of swap. An
// optional library: link uttm::tiered_store (it needs nothing beyond the core).
//
//   * A backup goes to the upper tier. When the upper tier cannot take it all, the tiered store
//     first writes the upper tier's least recently used entries back to the lower tier (zswap's
//     writeback when its pool is full), in batches of 64 pages, then tries the upper tier again;
//     what still does not fit goes straight to the lower tier.
//   * Handles are the tiered store's own and stay valid while an entry moves; a copy reads from
//     whichever tier holds each page (runs of one tier in one inner call). A copy makes the
//     upper-tier pages it reads most recently used.
//   * A failed writeback (the lower tier full, a write error) leaves the entries in the upper
//     tier, counts tier.writeback_errors, and the backup that needed the room gets what the tiers
//     could take (a partial backup), or the lower tier's error if nothing was stored.
//   * Checksums, corruption and read errors are the inner stores' (a copy fails with their error,
//     with the pages before it copied).
//
// Counters (stats.h): tier.writeback_pages, tier.writeback_errors, tier.direct_pages (backed up
// straight to the lower tier), tier.upper_reads and tier.lower_reads (pages copied from each).
// HoldsMemory() is the upper tier's.
//
// Thread-safety: internally synchronised (backup_store.h). One writeback runs at a time. A copy
// pins the upper-tier pages it reads; a writeback leaves a pinned page in the upper tier (its
// lower-tier copy is dropped), so copies never wait for writebacks nor writebacks for copies.
#ifndef UTTM_TIERED_STORE_H_
#define UTTM_TIERED_STORE_H_

#include <memory>

#include "uttm/backup_store.h"
#include "uttm/export.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

// A tiered store that owns both tiers. `stats` null = Stats::Default(). kInvalid for a null tier.
UTTM_EXPORT Result<std::unique_ptr<BackupStore>> NewTieredStore(std::unique_ptr<BackupStore> upper,
                                                                std::unique_ptr<BackupStore> lower,
                                                                Stats* stats = nullptr);

// Makes CreateBackupStore (backup_store_factory.h) accept "tier:UPPER+LOWER", each side a spec
// of its own (options after commas; the first '+' separates them), e.g.
// "tier:lz4,cap=256M+file:/var/tmp,direct" or "tier:zstd+uring:/mnt/nvme". The upper tier's
// memory counts against the creator's memory context. An option registered for every kind
// ("encrypt") after the whole spec applies to the tiered store, so to both tiers. Idempotent,
// thread-safe.
UTTM_EXPORT void RegisterTieredStoreKind();

}  // namespace uttm

#endif  // UTTM_TIERED_STORE_H_
