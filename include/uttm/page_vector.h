// Copyright (c) uttm developers.
//
// page_vector.h: the system pages behind a buffer (TTM's ttm_tt).
//
// A PageVector has num_pages slots (size rounded up to pages, plus extra pages). Each slot holds
// a page (part of a chunk of 2^order pages from the MemoryContext's pools; the chunk's first slot
// records the order), a backup handle (the page's contents are in a BackupStore), a "restored"
// marker, or nothing. States (from the flags, as TTM): Unpopulated, Populated (kPopulated),
// Swapped (kSwapped: whole contents in a store by legacy Swapout), BackedUp (kBackedUp: a mix of
// handles, leftover pages and empty slots), Restoring (BackedUp with a restore in progress).
//
// Contents are always zero-filled on population (pooled pages are cleared, fresh ones are zero),
// so kZeroAlloc is always honoured. Purged (empty) slots restore as zero pages.
//
// Errors: misuse (wrong state, bad index) is kInvalid with a message. Populate/Restore: kNoMemory
// (limits or provider), kInterrupted (ctx), kIo (store read or checksum); Restore keeps its state
// after any error and continues on the next call; nothing is lost or changed.
//
// Thread-safety: a PageVector is not synchronised (its owner's lock, e.g. the buffer object's
// reservation, serialises calls). Different vectors may be used from different threads; the
// context and stores they share are thread-safe.
#ifndef UTTM_PAGE_VECTOR_H_
#define UTTM_PAGE_VECTOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "uttm/backup_store.h"
#include "uttm/caching.h"
#include "uttm/export.h"
#include "uttm/memory_context.h"
#include "uttm/operation_context.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm {

// Page vector flags (bit values as upstream ttm_tt page_flags).
enum PageVectorFlag : std::uint32_t {
  kPageVectorSwapped = 1u << 0,
  kPageVectorZeroAlloc = 1u << 1,
  kPageVectorExternal = 1u << 2,
  kPageVectorExternalMappable = 1u << 3,
  kPageVectorBackedUp = 1u << 5,
  kPageVectorPopulated = 1u << 6,
};

struct PageVectorOptions {
  Bytes size{};
  PageCount extra_pages{};
  Caching caching = Caching::kCached;
  // Only kPageVectorZeroAlloc, kPageVectorExternal, kPageVectorExternalMappable may be given.
  std::uint32_t flags = 0;
  // Pages count against the dma32 limit too.
  bool dma32 = false;
};

struct BackupOptions {
  // Free pages straight to the OS (bypassing the pools) and drop the contents.
  bool purge = false;
  // Passed to the store (start writeback now).
  bool writeback = false;
};

class UTTM_EXPORT PageVector {
 public:
  // kInvalid when the size is 0 with no extra pages, or flags contain state bits.
  static Result<std::unique_ptr<PageVector>> Create(MemoryContext* context,
                                                    const PageVectorOptions& options);
  // Releases every page and drops every handle, whatever the state (also mid-restore).
  ~PageVector();
  PageVector(const PageVector&) = delete;
  PageVector& operator=(const PageVector&) = delete;

  PageCount num_pages() const { return PageCount(slots_.size()); }
  Caching caching() const { return caching_; }
  std::uint32_t flags() const { return flags_; }
  bool is_populated() const { return (flags_ & kPageVectorPopulated) != 0; }
  bool is_swapped() const { return (flags_ & (kPageVectorSwapped | kPageVectorBackedUp)) != 0; }
  bool is_backed_up() const { return (flags_ & kPageVectorBackedUp) != 0; }
  bool is_restoring() const { return is_backed_up() && restore_started_; }
  bool dma32() const { return dma32_; }
  MemoryContext& context() const { return *context_; }

  // The store used by Backup/Restore when none is passed (TTM's tt->backup). Not owned.
  void AttachBackupStore(BackupStore* store) { attached_store_ = store; }
  BackupStore* backup_store() const { return attached_store_; }

  // Allocates every page (no-op if populated): charges the context (kNoMemory over a limit),
  // takes chunks with order descent, stages caching changes. A Swapped vector is swapped in
  // (on failure it stays Swapped, contents intact). kInvalid if backed up (use Restore).
  Status Populate(OperationContext& ctx);
  // Gives every page back to the pools (cleared) and uncharges. No-op unless populated.
  void Unpopulate();

  // Address of page `i` when populated; nullptr otherwise or if out of range.
  std::byte* PageAddress(std::size_t i) const;
  // Copies bytes in/out at `offset` (kInvalid unless populated and in range).
  Status Write(std::uint64_t offset, std::span<const std::byte> data);
  Status Read(std::uint64_t offset, std::span<std::byte> out) const;

  // Legacy whole-vector swapout (the watermark path): every page to `store`, then unpopulate and
  // set kSwapped. Returns the pages swapped. On any error the vector is unchanged and nothing is
  // left in the store. kInvalid unless populated.
  Result<PageCount> Swapout(BackupStore* store);

  // Backs the pages up (TTM ttm_pool_backup). Returns pages backed up or purged (> 0 moves the
  // vector to BackedUp; 0 = nothing to do). Errors: kInvalid (already backed up, no store),
  // kBusy (store has no room and not purging), or the store's error when no page was stored
  // (the vector is then unchanged). A partial backup (store short, error mid-way, fault point
  // backup.partial) is a valid BackedUp state.
  Result<PageCount> Backup(const BackupOptions& options, BackupStore* store = nullptr);

  // Brings a BackedUp vector back to Populated (TTM ttm_pool_restore_and_alloc). Resumable: on
  // kInterrupted / kNoMemory / kIo the work done so far is kept and the next call continues.
  // kInvalid when not backed up or when handles remain and there is no store.
  Status Restore(OperationContext& ctx, BackupStore* store = nullptr);

  // Drops all backed-up contents and leftover pages and clears kBackedUp (driver use before
  // re-populating a purged vector, ttm_tt_clear_backed_up plus cleanup). Contents are lost.
  void DiscardBackup();

  // Slot inspection for tests and debugging.
  enum class SlotKind { kEmpty, kPage, kHandle, kRestored };
  SlotKind slot_kind(std::size_t i) const;
  // Order of the chunk starting at slot i (pages only; chunk tails report -1).
  int slot_order(std::size_t i) const;

 private:
  PageVector(MemoryContext* context, const PageVectorOptions& options, std::size_t pages);

  // Allocates chunks for slots [from, end) (order descent, caching divide) and commits them.
  // On error frees what it allocated in this call. Does not touch flags.
  Status AllocateRange(std::size_t from);
  // Pending caching change for committed slots [divide_, end).
  void ApplyCaching(std::size_t end);
  // Gives back pages in slots [from, to) (chunk heads); `caching` for [from, divide) else cached.
  void FreePages(std::size_t from, std::size_t to, bool bypass_pool);
  void CommitChunk(std::size_t slot, const PageChunk& chunk);
  Status ChargeIfNeeded(const OperationContext& ctx);
  void UnchargeIfNeeded();
  void DropHandlesAndLeftovers(std::size_t from);
  Status RestoreChunk(OperationContext& ctx, BackupStore* store);

  MemoryContext* context_;
  std::vector<std::uintptr_t> slots_;
  Caching caching_;
  std::uint32_t flags_;
  bool dma32_;
  bool charged_ = false;
  BackupStore* attached_store_ = nullptr;
  // Slots [0, divide_) of the committed prefix already have caching_; [divide_, ...) are cached.
  std::size_t divide_ = 0;
  // Legacy swap: one handle per page, in the store swap_store_.
  std::vector<BackupHandle> swap_handles_;
  BackupStore* swap_store_ = nullptr;
  // Restore progress: slots [0, restored_) hold committed fresh pages; `inflight_` is the chunk
  // being filled for slots [restored_, restored_ + 2^order), `inflight_done_` of them done.
  bool restore_started_ = false;
  std::size_t restored_ = 0;
  PageChunk inflight_;
  Caching inflight_caching_ = Caching::kCached;
  std::size_t inflight_done_ = 0;
};

}  // namespace uttm

#endif  // UTTM_PAGE_VECTOR_H_
