// Copyright (c) uttm developers.
//
// fd_store.h (internal): the engine shared by the memfd and file backup stores.
//
// Both stores keep pages in one file descriptor as an array of 4 KiB slots (slot s at byte
// offset s * kPageSize). FdStore owns the descriptor, the SlotAllocator, and the slot table
// (state + XXH3-64 checksum of every slot), and implements BackupPages / CopyPages / Drop on top
// of pwrite / pread / fallocate(PUNCH_HOLE). Subclasses supply admission (how much may be stored
// now), the writeback hint, BytesAvailable, Flush and Describe.
//
// Locking: `mu_` guards the allocator and the slot table and is held only for bookkeeping; all
// I/O, checksumming and hole punching run outside it. A slot is Busy while it is being written or
// dropped, so no other call can allocate, read or drop it in that window. `write_mu_` lets one
// buffered pwritev at a time into the file: the file system serializes buffered writes to one
// file on its inode lock anyway, and there concurrent writers spin (rwsem_spin_on_owner) where
// here they sleep. O_DIRECT writes, which ext4 can run side by side, are not serialized. Measured
// on the working-set benchmark with every backup going through the shrinker: 11 % of the time
// spinning before, restore bandwidth 0.72-0.74 of pread before and 0.84-1.20 after.
#ifndef UTTM_SRC_BACKUP_FD_STORE_H_
#define UTTM_SRC_BACKUP_FD_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backup/batch_io.h"
#include "backup/checksum_worker.h"
#include "backup/page_checksum.h"
#include "backup/slot_allocator.h"
#include "uttm/backup_store.h"
#include "uttm/mutex.h"
#include "uttm/stats.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm::internal {

// Pages per pread/pwrite: a longer run is split into chunks of this size, so each chunk is
// checksummed while it sits in the CPU cache, or on the checksum worker during its write (1 MiB;
// 128 KiB to 1 MiB measured alike in bench/pages_bench.cc, and the copy loop checks for
// interruption between chunks).
inline constexpr std::size_t kIoChunkPages = 256;

// Slots never exceed this many (offsets stay far below the 2^63 file size limit).
inline constexpr std::uint64_t kMaxSlotsUnlimited = std::uint64_t{1} << 40;

// Reads exactly `len` bytes at `offset`, retrying EINTR and short reads. Returns 0 or an errno
// (EIO for an unexpected end of file).
int ReadFully(int fd, std::uint64_t offset, std::byte* buf, std::size_t len);

// Moves pages [first, first + n) of `pages` to (write) or from (read) `fd` at `offset` with
// pwritev / preadv (adjacent pages merged), from byte `*done` on, retrying EINTR and short
// transfers; `write_mu` (if not null) serializes the writes. REQUIRES: n <= kIoChunkPages.
// Returns 0 or an errno (ENOSPC / EIO when a call moves nothing); `*done` = bytes moved.
int TransferRange(int fd, bool write, std::uint64_t offset, const PageRef& pages, std::size_t first,
                  std::size_t n, std::size_t* done, Mutex* write_mu);

// The pages of a write of `n` before the store.write (EIO) or store.nospace (ENOSPC) fault point
// fires, evaluated per page; `*err` is set when one fires.
std::size_t PagesBeforeWriteFault(std::size_t n, int* err);

// True when `list[0..n)` names one page twice.
bool NamesAPageTwice(std::byte* const* list, std::size_t n);

class FdStore : public BackupStore {
 public:
  ~FdStore() override;
  FdStore(const FdStore&) = delete;
  FdStore& operator=(const FdStore&) = delete;

  Result<std::size_t> BackupPages(const std::byte* src, std::size_t count, const BackupFlags& flags,
                                  BackupHandle* handles) final;
  Result<std::size_t> BackupPageList(const std::byte* const* pages, std::size_t count,
                                     const BackupFlags& flags, BackupHandle* handles) final;
  Status CopyPages(const BackupHandle* handles, std::size_t count, std::byte* dst,
                   const OperationContext& ctx, std::size_t* copied) final;
  Status CopyPageList(const BackupHandle* handles, std::size_t count, std::byte* const* dst,
                      const OperationContext& ctx, std::size_t* copied) final;
  void Drop(const BackupHandle* handles, std::size_t count) final;
  std::uint64_t BytesUsed() const final;

 protected:
  // Takes ownership of `fd`. `max_slots`: capacity in pages. `stats` must not be null.
  // `parallel_checksum`: checksum large backups on a helper thread during the write.
  FdStore(int fd, bool o_direct, std::uint64_t max_slots, Stats* stats, std::string kind,
          bool parallel_checksum);

  int fd() const { return fd_; }
  bool o_direct() const { return o_direct_; }
  Stats* stats() const { return stats_; }
  // Bytes the capacity cap still admits.
  std::uint64_t CapacityBytesLeft() const;
  // Gives the store a medium that takes many requests at once: from then on every backup and
  // copy goes through it (chunks in flight together, checksums on the calling thread while they
  // are). Call before the store is used.
  void set_batch_io(std::unique_ptr<BatchIo> io) { batch_io_ = std::move(io); }
  const BatchIo* batch_io() const { return batch_io_.get(); }

  // How many of `n` pages may be stored now (1..n), or kNoSpace with a reason.
  virtual Result<std::uint64_t> Admit(std::uint64_t n) { return n; }
  // Called (outside the lock) before CopyPages reads [offset, offset + len): a read-ahead hint.
  virtual void BeforeRead(std::uint64_t offset, std::uint64_t len) {
    (void)offset;
    (void)len;
  }
  // Called (outside the lock) after bytes [offset, offset + len) were written by BackupPages.
  virtual void AfterWrite(std::uint64_t offset, std::uint64_t len, const BackupFlags& flags) {
    (void)offset;
    (void)len;
    (void)flags;
  }

 private:
  enum class SlotState : std::uint8_t { kFree, kBusy, kLive };
  struct Slot {
    std::uint64_t checksum = 0;
    SlotState state = SlotState::kFree;
  };
  // A page a copy reads: its slot and the checksum it must match.
  struct Want {
    std::uint64_t slot;
    std::uint64_t checksum;
  };
  // How far a backup got: leading pages stored, and the errno (and slot) that stopped it.
  struct WriteOutcome {
    std::size_t stored = 0;
    int err = 0;
    std::uint64_t err_slot = 0;
  };

  // kNoMemory naming `call`, for a std::bad_alloc caught at a public entry point.
  Status OutOfMemory(const char* call) const;
  // Drop with batched hole punching (allocates); Drop falls back to one page at a time.
  void DropBatched(const BackupHandle* handles, std::size_t count);
  Result<std::size_t> BackupImpl(const PageRef& src, std::size_t count, const BackupFlags& flags,
                                 BackupHandle* handles);
  Status CopyImpl(const BackupHandle* handles, std::size_t count, const PageRef& dst,
                  const OperationContext& ctx, std::size_t* copied);
  // Moves pages [first, first + n) of `pages` to (write) or from (read) the medium at `offset`
  // with one pwritev / preadv (adjacent pages merged), retrying EINTR and short transfers.
  // REQUIRES: n <= kIoChunkPages. Returns 0 or an errno; `*done` = leading bytes transferred.
  int Transfer(bool write, std::uint64_t offset, const PageRef& pages, std::size_t first,
               std::size_t n, std::size_t* done);
  // The write of a backup's allocated extents: one chunk at a time (pwritev), or through the
  // batch medium. `sums` receives the stored pages' checksums.
  WriteOutcome WriteExtents(const PageRef& src, const std::vector<SlotExtent>& extents,
                            const BackupFlags& flags, std::uint64_t* sums);
  WriteOutcome WriteExtentsBatched(const PageRef& src, const std::vector<SlotExtent>& extents,
                                   const BackupFlags& flags, std::uint64_t* sums);
  // The reads of a copy through the batch medium: `*done` = leading pages read and verified.
  // `repeats`: the destination list names a page twice.
  Status ReadBatched(const std::vector<Want>& want, const PageRef& dst, bool repeats,
                     const OperationContext& ctx, std::size_t* done, std::uint64_t* bytes_read);
  // The pages of the next read from want[next]: the longest run of consecutive slots (at most
  // kIoChunkPages; with `repeats`, ending before a destination page of `dst` already in the
  // run), cut short where a per-page fault point fires (`*fault` then says which).
  static std::size_t NextReadRun(const std::vector<Want>& want, std::size_t next,
                                 const PageRef& dst, bool repeats, const OperationContext& ctx,
                                 Errc* fault);
  // The end of every copy: counts the bytes read, sets `*copied`, and turns a handle that was
  // not live (`live` < count) into kInvalid when nothing failed before it.
  Status FinishCopy(Status status, const BackupHandle* handles, std::size_t count, std::size_t live,
                    std::size_t done, std::uint64_t bytes_read, std::size_t* copied);
  // Punches a hole over the slots (best effort; the space is reusable either way).
  void PunchSlots(std::uint64_t start, std::uint64_t count);
  // Marks the extents' slots free and returns them to the allocator.
  void FreeSlots(const std::vector<SlotExtent>& extents) UTTM_REQUIRES(mu_);

  const int fd_;
  const bool o_direct_;
  Stats* const stats_;
  const std::string kind_;  // "memfd store" / "file store", for messages

  mutable Mutex mu_;
  Mutex write_mu_;  // one pwritev at a time (see the file comment)
  SlotAllocator alloc_ UTTM_GUARDED_BY(mu_);
  std::vector<Slot> slots_ UTTM_GUARDED_BY(mu_);
  // Checksums large backups on a second core while they are written (null = inline only).
  std::unique_ptr<ChecksumWorker> checksum_worker_;
  // Many requests in flight at once (null: one pwritev / preadv at a time).
  std::unique_ptr<BatchIo> batch_io_;
};

}  // namespace uttm::internal

#endif  // UTTM_SRC_BACKUP_FD_STORE_H_
