// Copyright (c) uttm developers.
//
// compressed_store.h: a backup store in compressed RAM (the role of the kernel's zswap and zram).
// An optional library: link uttm::compressed_store (it needs liblz4 and libzstd).
//
// Each page is stored on its own, as the kernel's compressed swap does:
//   * A same-filled page (one 8-byte word repeated: zero pages above all, which TTM clears new
//     pages to) is kept as that word in the page's entry: no compression, no slab memory.
//   * Otherwise it is compressed (lz4 by default, zstd for colder data). A page that does not
//     compress to `raw_above` bytes or less is kept as it is (raw), as zram keeps its huge class.
//   * With an element size (options, or BackupFlags::element_size per backup: 2 for fp16/bf16
//     tensors, 4 for fp32), the page's bytes are split into planes first (byte 0 of every
//     element, then byte 1, ...), each compressed on its own: the exponent bytes of
//     floating-point weights compress, the mantissas barely do (a plane that does not compress
//     is kept as it is). zstd's entropy coder packs a byte plane; for lz4, which has none, each
//     byte plane is split further into bit planes (bitshuffle), where nearly constant exponent
//     bits become runs. bf16 weights from a normal distribution: lz4 1.00 -> 1.32, zstd 1.26 ->
//     1.42 (compressed_store_test prints them).
//   * Every compressed or raw page carries the XXH3-64 of the bytes stored (the compressed blob,
//     or the page kept raw), checked on every copy before anything is decompressed: a corrupt
//     blob is kIo, never returned as data. (Hashing the blob costs a fraction of hashing the
//     page: a text page compresses fifty-fold.)
//
// Compressed data lives in size-classed slabs (zsmalloc's idea): 64 classes of 64-byte steps,
// each with 64 KiB slabs cut into equal slots. When a class has more than a quarter of its slots
// free (and at least two slabs' worth), its objects are moved out of its emptiest slabs into the
// others and the emptied slabs are unmapped, so fragmentation stays bounded and dropped data
// really returns memory to the system.
//
// The store's own memory (slabs and entry tables) is counted against the `memory` context's
// page limit (MemoryContext::ChargeExternal), never hidden beside it, and capped by
// `capacity_bytes`. BytesUsed is that memory; BytesAvailable the cap minus it.
//
// Fault points (fault_injection.h): store.write (kIo) and store.nospace (kNoSpace) at a page, a
// partial backup up to it; store.short_write stores half a run; store.read (kIo) and
// store.corrupt (a flipped bit in the blob, caught by decompression or the checksum) on a copy;
// store.interrupt stops an interruptible copy.
//
// Thread-safety: internally synchronised (backup_store.h). Compression, decompression and
// checksums run outside the store's lock; the lock covers the slot bookkeeping and the copy of a
// blob in or out (at most 4 KiB).
#ifndef UTTM_COMPRESSED_STORE_H_
#define UTTM_COMPRESSED_STORE_H_

#include <cstdint>
#include <memory>

#include "uttm/backup_store.h"
#include "uttm/export.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

class MemoryContext;

struct CompressedStoreOptions {
  enum class Codec { kLz4, kZstd };
  Codec codec = Codec::kLz4;
  // zstd's level (1..19): 1 is its fast end, higher levels trade backup time for ratio.
  int zstd_level = 1;
  // Most bytes of memory the store holds at once (slabs plus entry tables). 0: a fifth of the
  // machine's RAM (zswap's max_pool_percent default), and with `memory` at most half of its page
  // limit (at creation). At least 128 KiB (a slab and an entry
  // table).
  std::uint64_t capacity_bytes = 0;
  // Emptied slabs kept for new ones (counted in BytesUsed, and against `memory`), so that a
  // store that drops while it backs up does not give memory to the kernel and fault it back in.
  std::uint64_t spare_bytes = std::uint64_t{4} << 20;
  // A page that compresses to more than this many bytes is kept raw (64..4096): by default
  // one that saves less than an eighth (zram keeps pages above about 80 % raw).
  std::uint32_t raw_above = 3584;
  // Split pages into byte planes of elements of this size before compressing (0 or 1: no
  // split; 2 or 4). BackupFlags::element_size, when set, wins for that backup.
  std::uint32_t element_size = 0;
  // Whose page limit the store's memory counts against (not owned; must outlive the store);
  // null: none.
  MemoryContext* memory = nullptr;
  // Counters and gauges (null: Stats::Default()).
  Stats* stats = nullptr;
};

// Creates a compressed RAM store. kInvalid for a zstd level outside 1..19, raw_above outside
// 64..4096, an element size other than 0, 1, 2 or 4, or a capacity below 128 KiB.
UTTM_EXPORT Result<std::unique_ptr<BackupStore>> NewCompressedStore(
    const CompressedStoreOptions& options = {});

// Registers the spec kinds "lz4" and "zstd" with CreateBackupStore (backup_store_factory.h):
//   lz4[,cap=SIZE][,spare=SIZE][,raw_above=N][,planes=2|4]
//   zstd[,level=N][,cap=SIZE][,spare=SIZE][,raw_above=N][,planes=2|4]
// The store's memory counts against the memory context CreateBackupStore is given. Idempotent
// and thread-safe.
UTTM_EXPORT void RegisterCompressedStoreKinds();

}  // namespace uttm

#endif  // UTTM_COMPRESSED_STORE_H_
