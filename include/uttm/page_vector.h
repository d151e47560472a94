// Copyright (c) uttm developers.
//
// page_vector.h: the system pages behind a buffer (TTM's ttm_tt).
//
// A PageVector has num_pages slots (size rounded up to pages, plus extra pages). Each slot holds
// a page (part of a chunk of 2^order pages from the MemoryContext's pools; the chunk's first slot
// records the order), a backup handle (the page's contents are in a BackupStore), a "restored"
// marker, or nothing. States (from the flags, as TTM): Unpopulated, Populated (kPopulated),
// Swapped (kSwapped: whole contents in a store by legacy Swapout), BackedUp (kBackedUp: handles
// and empty slots), Partial (kBackedUp | kPartial: the vector still holds some pages: leftovers of
// a backup the store took only part of, or what a failed restore brought back), Restoring
// (BackedUp with a restore in progress; it is also Partial whenever it holds pages).
//
// Accounting: the context is charged for exactly the pages the vector holds (resident_pages()),
// at every rest point: a backup uncharges what went to the store, a restore charges the whole
// vector up front and, if it fails, gives back what it does not hold. (The kernel's ttm_tt is
// charged whole; upstream's proposed TTM_TT_FLAG_PARTIAL keeps a remaining-pages count likewise.)
// A Partial vector is shrinkable by its resident pages: Backup continues it, Restore completes it.
//
// Clean copies (the kernel's swap cache, mm/swap_state.c): with keep_clean_copy on, a Restore
// that read pages back from the store keeps the store's copy of each (its handle) instead of
// dropping it, while the page's contents are unchanged. A later Backup gives those pages up without
// writing them again (the copy is still exact); only the other pages are written. Whoever changes
// the contents must say so first: DropCleanCopy (Write does it; a buffer object does it for a
// write mapping, a write fence and a move that copied into the pages). A copy is kept only while
// the store is at most half full (as the kernel frees the swap slot on swap-in once swap is half
// full: vm_swap_full() in mm/swap.h, tested by do_swap_page in mm/memory.c). Clean pages are
// still resident and charged; their store space counts in the store's BytesUsed.
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

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "uttm/backup_store.h"
#include "uttm/caching.h"
#include "uttm/export.h"
#include "uttm/memory_context.h"
#include "uttm/operation_context.h"
#include "uttm/shmem_backing.h"
#include "uttm/status.h"
#include "uttm/units.h"
#include "uttm/user_faults.h"

namespace uttm {

// Page vector flags (bit values as upstream ttm_tt page_flags).
//   EXTERNAL             the pages are not the pool's (imported, or a file's): never charged
//                        against the page limit, never swapped out or backed up by TTM's paths.
//   EXTERNAL_MAPPABLE    a driver shrinker owns the vector (xe's rule): TTM's watermark swapout
//                        never touches it; the shrinker backs it up and purges it. Alone (without
//                        EXTERNAL) the pages are the pool's and count against the page limit, so
//                        a populate over the limit goes to direct reclaim, i.e. that shrinker:
//                        in user space nothing else would bound them. Upstream always sets it
//                        with EXTERNAL, the kernel's own reclaim bounding the pages.
enum PageVectorFlag : std::uint32_t {
  kPageVectorSwapped = 1u << 0,
  kPageVectorZeroAlloc = 1u << 1,
  kPageVectorExternal = 1u << 2,
  kPageVectorExternalMappable = 1u << 3,
  kPageVectorBackedUp = 1u << 5,
  kPageVectorPopulated = 1u << 6,
  // With kPageVectorBackedUp: some pages are still held (resident_pages() > 0).
  kPageVectorPartial = 1u << 7,
};

struct PageVectorOptions {
  Bytes size{};
  PageCount extra_pages{};
  Caching caching = Caching::kCached;
  // Only kPageVectorZeroAlloc, kPageVectorExternal, kPageVectorExternalMappable may be given.
  std::uint32_t flags = 0;
  // Pages count against the dma32 limit too.
  bool dma32 = false;
  // Non-null: a file-backed vector (i915's shmem tt, i915_gem_ttm.c): its pages live in a file
  // created at the first Populate (never at Create), mapped shared (ShmemBacking). Such a vector is
  // EXTERNAL and EXTERNAL_MAPPABLE (never charged, never swapped or backed up by TTM's paths),
  // cached only, and one contiguous range while populated. See "File-backed vectors" below.
  const ShmemBackingOptions* shmem = nullptr;
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
  // Backed up, yet still holding pages (see the file comment).
  bool is_partial() const { return (flags_ & kPageVectorPartial) != 0; }
  // Pages held right now (all of them when populated; leftovers and restore progress when
  // partial; none when unpopulated, swapped or fully backed up). Equal to the pages charged.
  PageCount resident_pages() const { return PageCount(resident_pages_); }
  bool dma32() const { return dma32_; }
  MemoryContext& context() const { return *context_; }

  // The store used by Backup/Restore when none is passed (TTM's tt->backup). Not owned. Clean
  // copies held in the previous store are dropped.
  void AttachBackupStore(BackupStore* store) {
    if (store != attached_store_) DropCleanCopy();
    attached_store_ = store;
  }
  BackupStore* backup_store() const { return attached_store_; }

  // Allocates every page (no-op if populated): charges the context (kNoMemory over a limit),
  // takes chunks with order descent, stages caching changes. A Swapped vector is swapped in: on a
  // failure before any page came back it stays Swapped; after some did (an interrupted or failed
  // store read), it keeps them and becomes a partial BackedUp vector with its store attached, so
  // the next call (Restore) goes on from there (unless another store is attached for backups:
  // then it stays Swapped and starts over). Contents are intact either way. kInvalid if backed
  // up (use Restore).
  Status Populate(OperationContext& ctx);
  // Gives every page back to the pools (cleared) and uncharges. No-op unless populated.
  void Unpopulate();

  // Address of page `i` when populated (inside the contiguous mapping while there is one);
  // nullptr otherwise or if out of range.
  std::byte* PageAddress(std::size_t i) const;

  // One contiguous, stable address for the whole populated vector, made without copying a byte:
  // when the chunks already lie end to end, their address; otherwise each chunk's pages are moved
  // (mremap with MREMAP_DONTUNMAP, page tables only) into a range reserved for the vector, 2 MiB
  // aligned so huge pages stay huge. The range stays while the vector holds its pages, so a later
  // call returns the same address at no cost; PageAddress/Read/Write use it meanwhile.
  // UnmapContiguous moves the pages back home; everything that gives pages up (Unpopulate,
  // Backup, Swapout, destruction) calls it first.
  // Errors: kInvalid unless populated; kNotSupported on a kernel without MREMAP_DONTUNMAP (5.7);
  // kNoMemory when the address space cannot be reserved. On error nothing changed.
  Result<std::byte*> MapContiguous();
  void UnmapContiguous();
  std::byte* mapped_address() const { return map_base_; }

  // --- A range that outlives the pages (restore on touch, mapping.h) ---
  // Makes `base` (num_pages() pages of the caller's anonymous private memory, added to `faults`
  // by the caller, who keeps owning it) the vector's contiguous mapping for as long as it is
  // attached: MapContiguous moves the pages into it even when they lie end to end at home, and
  // everything that takes the pages away arms the range with `faults` before moving them out,
  // so the range is left empty and a touch of it faults to the range's handler instead of
  // reading zeros. A populated vector mapped elsewhere is moved home first (pages are not moved
  // in until MapContiguous). kInvalid for a file-backed vector, a null or misaligned base, or a
  // vector with a range attached already.
  Status AttachRange(std::byte* base, UserFaults* faults);
  // Moves the pages out of the attached range (armed, empty) and forgets it; a no-op without
  // one. The vector then maps as before.
  void DetachRange();
  std::byte* attached_range() const { return attached_; }

  // The scatter view (a driver's DMA descriptor list, sg_alloc_table_from_pages): calls
  // fn(first_page, address, pages) for each run of pages at adjacent addresses, in order, chunks
  // that happen to be adjacent merged into one run (one run while a contiguous mapping exists).
  // Returns the number of runs; 0 unless populated. Does not allocate.
  template <typename Fn>
  std::size_t ForEachRun(Fn fn) const {
    if (!is_populated()) return 0;
    std::size_t runs = 0;
    for (std::size_t i = 0; i < slots_.size();) {
      std::byte* const start = PageAt(i);
      std::size_t j = i + 1;
      while (j < slots_.size() && PageAt(j) == start + (j - i) * kPageSize) ++j;
      fn(i, start, j - i);
      ++runs;
      i = j;
    }
    return runs;
  }
  // True when the last MapContiguous had to move pages (false: they were already contiguous).
  bool mapping_moved_pages() const { return map_moved_; }
  // Copies bytes in/out at `offset` (kInvalid unless populated and in range).
  Status Write(std::uint64_t offset, std::span<const std::byte> data);
  Status Read(std::uint64_t offset, std::span<std::byte> out) const;

  // The content hint every backup passes to the store (BackupFlags::element_size: elements of
  // this many bytes, 0 unknown); BoOptions::element_size sets it for a buffer object's vector.
  void set_element_size(std::uint32_t bytes) { element_size_ = bytes; }
  std::uint32_t element_size() const { return element_size_; }

  // --- Clean copies (see the file comment) ---
  // Off by default. Turning it off keeps the copies already held (DropCleanCopy drops them).
  void set_keep_clean_copy(bool keep) { keep_clean_ = keep; }
  bool keep_clean_copy() const { return keep_clean_; }
  // Pages whose store copy is kept (resident, unchanged since their restore).
  PageCount clean_pages() const { return PageCount(clean_pages_); }
  bool has_clean_copy() const { return clean_pages_ > 0; }
  // The contents are about to change: drops every clean copy (their store space is freed). Call
  // it before writing through PageAddress/MapContiguous; Write calls it. Cannot fail; a no-op
  // without clean copies.
  void DropCleanCopy();

  // Legacy whole-vector swapout (the watermark path): every page to `store`, then unpopulate and
  // set kSwapped. Returns the pages swapped. On any error the vector is unchanged and nothing is
  // left in the store. kInvalid unless populated.
  Result<PageCount> Swapout(BackupStore* store);

  // Backs up the pages the vector holds (TTM ttm_pool_backup): all of a Populated vector, the
  // rest of a Partial one (a restore in progress gives up its progress first: what it brought
  // back is backed up again). Clean pages are given up first, without a write (their store copy
  // becomes their handle; this needs no store space); the rest are written. A purge, or a store
  // other than the one holding the clean copies, drops them. Returns the pages backed up or purged
  // (> 0 moves the vector to BackedUp, Partial when the store took only some; 0 = nothing held,
  // nothing to do). Purge frees every page held and drops every handle: the contents are lost by
  // contract. Errors: kInvalid (no store, or a different store than the one holding the earlier
  // part), kBusy (store has no room and not purging), or the store's error when no page was stored
  // (the vector is then unchanged). A partial backup (store short, error mid-way, fault point
  // backup.partial) is a valid Partial state. Allocates no memory in proportion to the vector.
  Result<PageCount> Backup(const BackupOptions& options, BackupStore* store = nullptr);

  // Brings a BackedUp vector back to Populated (TTM ttm_pool_restore_and_alloc). Resumable: on
  // kInterrupted / kNoMemory / kIo the work done so far is kept, the vector is Partial if it holds
  // pages (charged for exactly those), and the next call continues.
  // kInvalid when not backed up or when handles remain and there is no store.
  Status Restore(OperationContext& ctx, BackupStore* store = nullptr);

  // Drops all backed-up or swapped-out contents and leftover pages and clears kBackedUp and
  // kSwapped (driver use before re-populating a purged vector, ttm_tt_clear_backed_up plus
  // cleanup; an object gutted or destroyed). Contents are lost.
  void DiscardBackup();
  // Populates with fresh zeroed pages, discarding what a backed-up or swapped vector holds in
  // its store (and its leftover pages), without reading it: for a caller that will overwrite
  // every byte. The old contents are dropped only once the new pages are in: on error
  // (kNoMemory) the vector is exactly as it was. A populated vector is left as it is.
  Status PopulateDiscarding(OperationContext& ctx);

  // What the vector holds right now (for invariant checks and inspection).
  struct Usage {
    std::uint64_t charged_pages = 0;   // pages counted against the context's limits
    std::uint64_t resident_pages = 0;  // pages held from the context's provider (pool chunks,
                                       // leftovers of a backup, a restore's in-flight chunk)
    std::uint64_t backup_pages = 0;    // handles held in backup_store()
    std::uint64_t swap_pages = 0;      // handles held by a legacy Swapout
    std::uint64_t clean_pages = 0;     // resident pages whose copy in backup_store() is kept
  };
  Usage usage() const;
  // Calls fn(store, handle) for every backup, swap or clean-copy handle the vector holds.
  void ForEachHandle(const std::function<void(const BackupStore*, BackupHandle)>& fn) const;
  // Checks the vector's own state: flags agree with the slots, chunks are whole, a restore's
  // progress is within bounds, handles have a store, the pages charged and counted are the pages
  // held. kCorrupt naming the first violation. Call between operations (not from a callback).
  Status CheckConsistency() const;

  // Slot inspection for tests and debugging.
  enum class SlotKind { kEmpty, kPage, kHandle, kRestored };
  SlotKind slot_kind(std::size_t i) const;
  // Order of the chunk starting at slot i (pages only; chunk tails report -1).
  int slot_order(std::size_t i) const;

  // --- File-backed vectors (options.shmem; i915_gem_ttm.c's shmem tt) ---
  // Populate creates the file at the first call, maps it and faults every page in (a swapped
  // vector's pages come back from the file; kSwapped is cleared); Unpopulate unmaps, the
  // contents staying in the file. Swapout, Backup and Restore refuse them (kInvalid): their own
  // shrink helpers below release them, and TTM's accounting and watermark swapout never see them.
  bool is_shmem() const { return shmem_options_ != nullptr; }
  // The backing file (null before the first Populate, or for a pool-backed vector).
  const ShmemBacking* shmem() const { return shmem_.get(); }
  // i915_ttm_shrink's will-need path: marks the vector swapped and releases its pages to the
  // file; with `writeback` they are written and dropped now, else left to the kernel's lazy
  // reclaim. On failure (kIo) nothing changed: the swapped mark is undone, the pages stay mapped.
  // Returns the pages released. kInvalid unless a populated file-backed vector.
  Result<PageCount> ShmemSwapout(bool writeback);
  // i915_ttm_purge: truncates the file (the contents are gone; the next Populate reads zeros).
  // Returns the pages dropped (0 without a file). On failure (kIo) nothing changed.
  Result<PageCount> ShmemPurge();

 private:
  PageVector(MemoryContext* context, const PageVectorOptions& options, std::size_t pages);

  // Allocates chunks for slots [from, end) (order descent, caching divide) and commits them.
  // On error frees what it allocated in this call. Does not touch flags.
  Status AllocateRange(std::size_t from);
  // Populate of a file-backed vector.
  Status ShmemPopulate();
  // A file-backed vector's mapping went: no pages held, `clear_flags` cleared.
  void ShmemReleased(std::uint32_t clear_flags);
  // Pending caching change for committed slots [divide_, end).
  void ApplyCaching(std::size_t end);
  // Gives back pages in slots [from, to) (chunk heads); `caching` for [from, divide) else cached.
  void FreePages(std::size_t from, std::size_t to, bool bypass_pool);
  void CommitChunk(std::size_t slot, const PageChunk& chunk);
  // Charges up to `pages` (no-op for EXTERNAL vectors) / gives back the charge above `pages`.
  Status ChargeUpTo(std::uint64_t pages, const OperationContext& ctx);
  void UnchargeDownTo(std::uint64_t pages);
  // Pages held, counted from the slots (call with no chunk in flight).
  std::uint64_t CountResident() const;
  // After a backup or a failed restore: recounts the pages held, uncharges the rest, and sets or
  // clears kPageVectorPartial.
  void SettleBackedUp();
  // A swap-in that failed after `progress` pages: keeps them, the rest become store handles.
  void KeepSwapInProgress(std::size_t progress);
  // Caching of committed slots [0, divide_) back to kCached (before pages leave the vector).
  void MakeCached();
  // Frees the unused tail of the in-flight restore chunk; its filled pages become leftovers in
  // their slots.
  void ReleaseInflight();
  // kCorrupt unless slots [from, to) are whole chunks.
  Status CheckChunks(std::size_t from, std::size_t to) const;
  // Turns a restore in progress into leftover pages (for a backup of a partial vector).
  void CollapseRestore();
  // Drops the store handles and frees the leftover pages among `slots` (zeroing them).
  void DropHandlesAndLeftovers(std::span<std::uintptr_t> slots);
  // Drops a legacy swapout's store copy and clears kSwapped.
  void DropSwapHandles();
  // `keep`: keep the store's copy of each page read (clean copies) instead of dropping it.
  Status RestoreChunk(OperationContext& ctx, BackupStore* store, bool keep);
  Status RestoreChunks(OperationContext& ctx, BackupStore* store, bool keep);
  // Whether this Restore from `store` keeps clean copies (option, store, room, the array).
  bool KeepCleanFrom(const BackupStore* store);
  // Backup's first step: clean pages among slots [0, limit) become their handles, no write.
  std::size_t GiveUpCleanPages(std::size_t limit);
  void AddClean(std::int64_t pages);

  MemoryContext* context_;
  std::vector<std::uintptr_t> slots_;
  // File-backed vectors: their options and (after the first Populate) their file.
  std::unique_ptr<ShmemBackingOptions> shmem_options_;
  std::unique_ptr<ShmemBacking> shmem_;
  Caching caching_;
  // Changed under the owner's reservation; atomic because the LRU filing of a released object
  // (BufferObject::WantsUnevictable) looks at the state while a shrinker holding the reservation
  // may be changing it (the holder refiles the object when it is done).
  std::atomic<std::uint32_t> flags_;
  bool dma32_;
  // Pages charged to the context, and pages held (see the file comment).
  std::uint64_t charged_pages_ = 0;
  std::uint64_t resident_pages_ = 0;
  BackupStore* attached_store_ = nullptr;
  // Slots [0, divide_) of the committed prefix already have caching_; [divide_, ...) are cached.
  std::size_t divide_ = 0;
  // Clean copies: clean_[i] is the handle value (in attached_store_) of the copy of slot i's page
  // (0: none); allocated at the first Restore that keeps copies, empty before. Between calls a
  // non-zero entry always belongs to a slot holding a page. clean_pages_ counts them.
  bool keep_clean_ = false;
  std::uint32_t element_size_ = 0;
  std::vector<std::uint64_t> clean_;
  std::uint64_t clean_pages_ = 0;
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
  // The in-flight chunk came uncleared from the pool's recycled pages.
  bool inflight_uncleared_ = false;
  // The contiguous mapping (MapContiguous): its base, whether pages were moved into it, and the
  // reserved range (aligned inside a larger reservation).
  std::byte* map_base_ = nullptr;
  bool map_moved_ = false;
  std::byte* map_reserved_ = nullptr;
  std::size_t map_reserved_bytes_ = 0;
  // The attached range (AttachRange) and the service that arms it.
  std::byte* attached_ = nullptr;
  UserFaults* attached_faults_ = nullptr;
  std::byte* PageAt(std::size_t i) const;
  // Arms the attached range, then moves the chunks of slots [0, pages) out of it; a range the
  // kernel will not arm is made inaccessible instead (a touch is then a SIGSEGV, never zeros).
  void EmptyAttachedRange(std::size_t pages);
  // MapContiguous with a range attached.
  Result<std::byte*> MapIntoAttached();
  // Moves the chunks of slots [0, pages), mapped at `base`, back to their home addresses.
  void MovePagesHome(std::byte* base, std::size_t pages);
};

}  // namespace uttm

#endif  // UTTM_PAGE_VECTOR_H_
