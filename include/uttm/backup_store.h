// Copyright (c) uttm developers.
//
// backup_store.h: where page contents go when a page vector is backed up (TTM's ttm_backup).
//
// A BackupStore takes runs of 4 KiB pages and gives back one handle per page; later it copies a
// page back by handle, or drops it. One store can serve many page vectors at once: it allocates
// its own slots, so callers never manage offsets. Handles are opaque, never 0, and stay valid
// until dropped (or the store is destroyed).
//
// Failure model (shared by every implementation):
//   * BackupPages may store fewer pages than asked (a partial backup is a valid outcome). It
//     returns how many leading pages are safely stored; the source pages of the rest were not
//     consumed and must be kept by the caller. It returns an error only when no page was stored:
//     kNoSpace (store full), kIo (write failed), kNoMemory.
//   * Every stored page carries a checksum. CopyPages verifies it: a corrupted or unreadable
//     page is reported as kIo and its bytes are never passed off as data. The handle stays
//     valid, so a later retry (after a transient read error) can still succeed.
//   * CopyPages honours ctx.interruptible / ctx.stop between pages: kInterrupted means the pages
//     before the returned count were copied; nothing is dropped by a copy.
//
// Thread-safety: implementations are internally synchronised; every method may be called from
// any thread concurrently, also for different page vectors. Stores never call back into uttm.
#ifndef UTTM_BACKUP_STORE_H_
#define UTTM_BACKUP_STORE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "uttm/export.h"
#include "uttm/operation_context.h"
#include "uttm/status.h"

namespace uttm {

// Identifies one backed-up page inside a store. The zero value is invalid (TTM stores idx + 1).
class BackupHandle {
 public:
  constexpr BackupHandle() = default;
  constexpr explicit BackupHandle(std::uint64_t value) : value_(value) {}
  constexpr std::uint64_t value() const { return value_; }
  constexpr bool valid() const { return value_ != 0; }
  friend constexpr bool operator==(BackupHandle, BackupHandle) = default;

 private:
  std::uint64_t value_ = 0;
};

struct BackupFlags {
  // Start writing the data out to the store's medium now (TTM's writeback flag), so memory that
  // holds it (page cache, shmem) can be reclaimed; best effort.
  bool writeback = false;
  // What the pages hold, for stores that compress: elements of this many bytes (2: fp16/bf16
  // tensors, 4: fp32), whose bytes such a store may split into planes. 0: unknown.
  std::uint32_t element_size = 0;
};

class UTTM_EXPORT BackupStore {
 public:
  virtual ~BackupStore() = default;

  // Stores `count` pages read from `src` (count * kPageSize bytes, page aligned) and writes one
  // handle per stored page to `handles`. Returns the number of leading pages stored (1..count),
  // or an error if none was (see the failure model). REQUIRES: count > 0.
  virtual Result<std::size_t> BackupPages(const std::byte* src, std::size_t count,
                                          const BackupFlags& flags, BackupHandle* handles) = 0;

  // Copies the pages behind `handles[0..count)` into `dst` (count * kPageSize bytes). Returns
  // OK when all were copied and verified; otherwise the error of the first page that failed
  // (kIo for read or checksum failure, kInterrupted), with `*copied` (if not null) set to the
  // number of leading pages that were copied and verified. Handles stay valid either way.
  virtual Status CopyPages(const BackupHandle* handles, std::size_t count, std::byte* dst,
                           const OperationContext& ctx, std::size_t* copied = nullptr) = 0;

  // As BackupPages, but page i is read from `pages[i]` (page aligned; the pages need not be
  // adjacent, e.g. the order-0 pages of a page vector). Stores that can write scattered pages in
  // one call (pwritev) override it, so a run of scattered pages is still one large write. Same
  // results and failure model as BackupPages. The default calls BackupPages once per run of
  // adjacent pages. REQUIRES: count > 0.
  virtual Result<std::size_t> BackupPageList(const std::byte* const* pages, std::size_t count,
                                             const BackupFlags& flags, BackupHandle* handles);

  // As CopyPages, but page i goes to `dst[i]` (page aligned, need not be adjacent). Stores
  // override it with preadv; the default calls CopyPages once per run of adjacent destinations.
  virtual Status CopyPageList(const BackupHandle* handles, std::size_t count, std::byte* const* dst,
                              const OperationContext& ctx, std::size_t* copied = nullptr);

  // Releases the pages behind `handles` and returns their space (to the OS where the medium
  // allows, e.g. by punching holes). Invalid (0) handles are ignored.
  virtual void Drop(const BackupHandle* handles, std::size_t count) = 0;

  // Bytes that can still be backed up before the store reports kNoSpace (an estimate, as the
  // kernel's free swap is). Backing up only makes sense when this is large enough.
  virtual std::uint64_t BytesAvailable() const = 0;

  // Bytes currently held for live handles.
  virtual std::uint64_t BytesUsed() const = 0;

  // Pushes everything stored so far to the medium and drops cached copies where possible
  // (page cache, shmem); kIo if the medium reports a failure.
  virtual Status Flush() = 0;

  // Short description for reports ("file:/tmp (O_DIRECT)", "memfd").
  virtual std::string Describe() const = 0;

  // True when what the store holds is memory under the same limits as the pages it backs up
  // (a compressed RAM store): a restore then keeps no clean copy there, as zswap frees an entry
  // once it is loaded, since the copy would take the budget the restored pages need.
  virtual bool HoldsMemory() const { return false; }

  // Convenience single-page forms.
  Result<BackupHandle> BackupPage(const std::byte* src, const BackupFlags& flags);
  Status CopyPage(BackupHandle handle, std::byte* dst, const OperationContext& ctx);
  void DropPage(BackupHandle handle) { Drop(&handle, 1); }
};

}  // namespace uttm

#endif  // UTTM_BACKUP_STORE_H_
