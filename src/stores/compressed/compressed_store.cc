// Copyright (c) uttm developers.
//
// compressed_store.cc: see compressed_store.h.
#include "uttm/compressed_store.h"

#include <lz4.h>
#include <unistd.h>
#include <zstd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "backup/page_checksum.h"
#include "stores/compressed/slab_pool.h"
#include "uttm/backup_store_factory.h"
#include "uttm/fault_injection.h"
#include "uttm/memory_context.h"
#include "uttm/mutex.h"
#include "uttm/page_provider.h"

namespace uttm {
namespace {

using internal::SlabPool;

// How a page is kept.
enum Kind : std::uint8_t { kFree = 0, kSame, kLz4, kZstd, kRaw };

// One backed-up page (a handle is its index + 1). 24 bytes.
struct Entry {
  std::uint64_t check = 0;  // XXH3-64 of the bytes stored; a same-filled page's word
  SlabPool::Ref ref;        // the blob; a same-filled page: the word's complement, as a check
  std::uint16_t len = 0;    // blob bytes (4096 is stored as 0 in raw entries)
  Kind kind = kFree;
  std::uint8_t element = 0;  // plane split of the blob (0: none)
  std::uint32_t next_free = 0;
};

constexpr std::size_t kChunkEntries = 1024;
constexpr std::size_t kChunkBytes = kChunkEntries * sizeof(Entry);
// Pages compressed outside the lock before one locked placement.
constexpr std::size_t kBatch = 32;
constexpr std::uint32_t kNoEntry = UINT32_MAX;
// Header bit of a plane kept as it is (byte planes).
constexpr std::uint16_t kPlaneRaw = 0x8000;
// The smallest cap: room for one slab and one chunk of entries.
constexpr std::uint64_t kMinCapacity = std::uint64_t{128} << 10;

// A page compressed (or not), waiting to be placed.
struct Packed {
  Kind kind = kFree;
  std::uint8_t element = 0;
  std::uint32_t len = 0;  // bytes of `data`
  std::uint64_t check = 0;
  const std::byte* data = nullptr;
};

struct ZstdFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Per-thread scratch: compressed pages of a batch, a page of planes, a blob copied out.
struct Scratch {
  alignas(64) std::array<std::byte, kBatch * kPageSize> out;
  alignas(64) std::array<std::byte, kPageSize> planes;
  alignas(64) std::array<std::byte, kPageSize> bits;
  alignas(64) std::array<std::byte, kPageSize> blob;
  std::unique_ptr<ZSTD_CCtx, ZstdFree> cctx;
  std::unique_ptr<ZSTD_DCtx, ZstdFree> dctx;
};
Scratch& ThreadScratch() {
  thread_local std::unique_ptr<Scratch> s(new Scratch);
  return *s;
}

// Byte planes: byte b of element i goes to plane b at position i.
void SplitPlanes(const std::byte* in, std::uint32_t element, std::byte* out) {
  const std::size_t n = kPageSize / element;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::uint32_t b = 0; b < element; ++b) out[b * n + i] = in[i * element + b];
  }
}
void JoinPlanes(const std::byte* in, std::uint32_t element, std::byte* out) {
  const std::size_t n = kPageSize / element;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::uint32_t b = 0; b < element; ++b) out[i * element + b] = in[b * n + i];
  }
}

// Transposes the 8x8 bit matrix whose row i is byte i of `x` (an involution).
std::uint64_t Transpose8x8(std::uint64_t x) {
  std::uint64_t t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
  x = x ^ t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
  x = x ^ t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
  return x ^ t ^ (t << 28);
}

// Bit planes of `n` bytes (a multiple of 8): bit k of byte i goes to bit plane k (n / 8 bytes)
// at bit i. Nearly constant bits (the high exponent bits of weights) become runs of equal bytes,
// which an LZ compressor without an entropy coder (lz4) can use.
void SplitBits(const std::byte* in, std::size_t n, std::byte* out) {
  const std::size_t groups = n / 8;
  for (std::size_t g = 0; g < groups; ++g) {
    std::uint64_t x;
    std::memcpy(&x, in + g * 8, 8);
    x = Transpose8x8(x);
    for (std::size_t k = 0; k < 8; ++k) out[k * groups + g] = static_cast<std::byte>(x >> (8 * k));
  }
}
void JoinBits(const std::byte* in, std::size_t n, std::byte* out) {
  const std::size_t groups = n / 8;
  for (std::size_t g = 0; g < groups; ++g) {
    std::uint64_t x = 0;
    for (std::size_t k = 0; k < 8; ++k) {
      x |= static_cast<std::uint64_t>(in[k * groups + g]) << (8 * k);
    }
    x = Transpose8x8(x);
    std::memcpy(out + g * 8, &x, 8);
  }
}

// True when the page is one 8-byte word repeated (then in *word): each byte equals the one
// eight before it.
bool SameFilled(const std::byte* page, std::uint64_t* word) {
  if (std::memcmp(page, page + 8, kPageSize - 8) != 0) return false;
  std::memcpy(word, page, 8);
  return true;
}

SlabPool::Ref WordCheck(std::uint64_t word) {
  return SlabPool::Ref{static_cast<std::uint32_t>(~word), static_cast<std::uint32_t>(~word >> 32)};
}

std::uint64_t PhysicalRamBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0
             ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(size)
             : std::uint64_t{1} << 30;
}

// A fifth of RAM (zswap's max_pool_percent), and under a memory context at most half of its
// page limit: the rest stays for the pages in use, and a store full of pages that do not compress
// says so (kNoSpace) instead of growing until every charge fails.
std::uint64_t DefaultCapacity(const MemoryContext* memory) {
  std::uint64_t cap = PhysicalRamBytes() / 5;
  if (memory != nullptr) {
    cap = std::min(cap, memory->pages_limit().value() * kPageSize / 2);
  }
  return std::max(cap, kMinCapacity);
}

std::string MiB(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

class CompressedStore final : public BackupStore {
 public:
  explicit CompressedStore(const CompressedStoreOptions& o)
      : o_(o),
        cap_(o.capacity_bytes != 0 ? o.capacity_bytes : DefaultCapacity(o.memory)),
        stats_(o.stats != nullptr ? o.stats : &Stats::Default()),
        provider_(ProviderOptions(&provider_stats_)),
        pool_(std::make_unique<SlabPool>(&provider_, o.spare_bytes / SlabPool::kSlabBytes)) {}

  ~CompressedStore() override {
    WriterLock lock(&mu_);
    stats_->GaugeAdd(Stat::kZstorePages, -static_cast<std::int64_t>(pages_));
    stats_->GaugeAdd(Stat::kZstorePayloadBytes, -static_cast<std::int64_t>(payload_));
    pages_ = 0;
    payload_ = 0;
    chunks_.clear();
    pool_.reset();  // gives every slab back to the provider
    SyncMemoryLocked(/*force_zero=*/true);
  }

  Result<std::size_t> BackupPages(const std::byte* src, std::size_t count, const BackupFlags& flags,
                                  BackupHandle* handles) override {
    if (src == nullptr || count == 0 || handles == nullptr) {
      return Status(Errc::kInvalid, "CompressedStore::BackupPages: no pages");
    }
    return Backup([src](std::size_t i) { return src + i * kPageSize; }, count, flags, handles);
  }

  Result<std::size_t> BackupPageList(const std::byte* const* pages, std::size_t count,
                                     const BackupFlags& flags, BackupHandle* handles) override {
    if (pages == nullptr || count == 0 || handles == nullptr) {
      return Status(Errc::kInvalid, "CompressedStore::BackupPageList: no pages");
    }
    return Backup([pages](std::size_t i) { return pages[i]; }, count, flags, handles);
  }

  Status CopyPages(const BackupHandle* handles, std::size_t count, std::byte* dst,
                   const OperationContext& ctx, std::size_t* copied) override {
    return Copy([dst](std::size_t i) { return dst + i * kPageSize; }, handles, count, ctx, copied);
  }

  Status CopyPageList(const BackupHandle* handles, std::size_t count, std::byte* const* dst,
                      const OperationContext& ctx, std::size_t* copied) override {
    return Copy([dst](std::size_t i) { return dst[i]; }, handles, count, ctx, copied);
  }

  void Drop(const BackupHandle* handles, std::size_t count) override {
    std::vector<PageChunk> released;
    {
      WriterLock lock(&mu_);
      DropLocked(handles, count);
      released = pool_->TakeReleased();
    }
    provider_.Free(released);  // the madvise calls, outside the lock
  }

  std::uint64_t BytesAvailable() const override {
    ReaderLock lock(&mu_);
    const std::uint64_t used = UsedLocked();
    return used < cap_ ? cap_ - used : 0;
  }

  std::uint64_t BytesUsed() const override {
    ReaderLock lock(&mu_);
    return UsedLocked();
  }

  Status Flush() override { return Status(); }  // nothing below memory

  bool HoldsMemory() const override { return true; }

  std::string Describe() const override {
    std::string d = o_.codec == CompressedStoreOptions::Codec::kLz4
                        ? "lz4"
                        : "zstd (level " + std::to_string(o_.zstd_level) + ")";
    d += ": compressed RAM, cap " + MiB(cap_);
    if (o_.element_size > 1) d += ", planes of " + std::to_string(o_.element_size) + " bytes";
    return d;
  }

 private:
  // Drop under the lock: frees the entries and their slots, then compacts.
  void DropLocked(const BackupHandle* handles, std::size_t count) UTTM_REQUIRES(mu_) {
    std::int64_t pages = 0, payload = 0;
    for (std::size_t i = 0; i < count; ++i) {
      Entry* e = Find(handles[i]);
      if (e == nullptr) continue;
      if (e->kind != kSame) {
        pool_->Free(e->ref);
        payload += e->len == 0 ? kPageSize : e->len;
      }
      e->kind = kFree;
      e->next_free = free_entries_;
      free_entries_ = static_cast<std::uint32_t>(handles[i].value() - 1);
      ++pages;
    }
    const std::size_t moved =
        pool_->Compact([this](std::uint32_t owner, SlabPool::Ref to) { Relocated(owner, to); });
    if (moved != 0) stats_->Add(Stat::kZstoreCompacted, moved);
    pages_ -= static_cast<std::uint64_t>(pages);
    payload_ -= static_cast<std::uint64_t>(payload);
    stats_->GaugeAdd(Stat::kZstorePages, -pages);
    stats_->GaugeAdd(Stat::kZstorePayloadBytes, -payload);
    SyncMemoryLocked(false);
  }

  // Compresses `n` bytes at `in` into at most `room` bytes at `out`: the compressed length, or 0
  // when it does not fit.
  std::size_t CompressBlock(const std::byte* in, std::size_t n, std::byte* out, std::size_t room,
                            Scratch& s) {
    if (room == 0) return 0;
    if (o_.codec == CompressedStoreOptions::Codec::kLz4) {
      const int len =
          LZ4_compress_default(reinterpret_cast<const char*>(in), reinterpret_cast<char*>(out),
                               static_cast<int>(n), static_cast<int>(room));
      return len > 0 ? static_cast<std::size_t>(len) : 0;
    }
    if (!s.cctx) s.cctx.reset(ZSTD_createCCtx());
    if (!s.cctx) return 0;
    const std::size_t len = ZSTD_compressCCtx(s.cctx.get(), out, room, in, n, o_.zstd_level);
    return ZSTD_isError(len) ? 0 : len;
  }

  // Decompresses a block of `len` bytes that must give exactly `n` bytes.
  static bool DecompressBlock(Kind kind, const std::byte* in, std::size_t len, std::byte* out,
                              std::size_t n, Scratch& s) {
    if (kind == kLz4) {
      return LZ4_decompress_safe(reinterpret_cast<const char*>(in), reinterpret_cast<char*>(out),
                                 static_cast<int>(len), static_cast<int>(n)) == static_cast<int>(n);
    }
    if (!s.dctx) s.dctx.reset(ZSTD_createDCtx());
    return s.dctx != nullptr && ZSTD_decompressDCtx(s.dctx.get(), out, n, in, len) == n;
  }

  // Packs page `src` into `out` (room for kPageSize bytes) as `p`; never fails (a page that does
  // not compress is kept raw, pointing at `src`). In byte planes each plane is a block of its
  // own behind a 2-byte header (its length; the top bit: kept as it is), so an entropy coder
  // (zstd's) builds one table per plane, and a plane that does not compress (mantissas) costs
  // its bytes and no more.
  void Pack(const std::byte* src, std::uint32_t element, std::byte* out, Scratch& s, Packed* p) {
    std::uint64_t word = 0;
    if (SameFilled(src, &word)) {
      *p = Packed{.kind = kSame, .check = word};
      return;
    }
    const Kind kind = o_.codec == CompressedStoreOptions::Codec::kLz4 ? kLz4 : kZstd;
    std::size_t len = 0;
    if (element <= 1) {
      len = CompressBlock(src, kPageSize, out, o_.raw_above, s);
    } else {
      SplitPlanes(src, element, s.planes.data());
      const std::size_t n = kPageSize / element;
      for (std::uint32_t b = 0; b < element; ++b) {
        if (len + 2 >= o_.raw_above) {
          len = 0;
          break;
        }
        const std::size_t room = std::min<std::size_t>(o_.raw_above - len - 2, n - 1);
        const std::byte* plane = s.planes.data() + b * n;
        const std::byte* in = plane;
        if (kind == kLz4) {
          SplitBits(plane, n, s.bits.data());
          in = s.bits.data();
        }
        std::size_t block = CompressBlock(in, n, out + len + 2, room, s);
        std::uint16_t header = static_cast<std::uint16_t>(block);
        if (block == 0) {  // kept as it is, if it fits
          if (len + 2 + n > o_.raw_above) {
            len = 0;
            break;
          }
          std::memcpy(out + len + 2, plane, n);
          block = n;
          header = static_cast<std::uint16_t>(n | kPlaneRaw);
        }
        std::memcpy(out + len, &header, 2);
        len += 2 + block;
      }
    }
    if (len == 0 || len >= kPageSize) {  // (a blob of a whole page would save nothing)
      *p = Packed{.kind = kRaw, .len = kPageSize, .data = src};
    } else {
      *p = Packed{.kind = kind,
                  .element = static_cast<std::uint8_t>(element > 1 ? element : 0),
                  .len = static_cast<std::uint32_t>(len),
                  .data = out};
    }
  }

  // Unpacks a compressed blob into `dst`; false when it is malformed.
  static bool Unpack(const Entry& e, const std::byte* blob, std::byte* dst, Scratch& s) {
    if (e.element <= 1) return DecompressBlock(e.kind, blob, e.len, dst, kPageSize, s);
    const std::size_t n = kPageSize / e.element;
    std::size_t pos = 0;
    for (std::uint32_t b = 0; b < e.element; ++b) {
      std::uint16_t header = 0;
      if (pos + 2 > e.len) return false;
      std::memcpy(&header, blob + pos, 2);
      pos += 2;
      const std::size_t block = header & ~kPlaneRaw;
      if (pos + block > e.len) return false;
      std::byte* plane = s.planes.data() + b * n;
      if ((header & kPlaneRaw) != 0) {
        if (block != n) return false;
        std::memcpy(plane, blob + pos, n);
      } else if (e.kind == kLz4) {
        if (!DecompressBlock(e.kind, blob + pos, block, s.bits.data(), n, s)) return false;
        JoinBits(s.bits.data(), n, plane);
      } else if (!DecompressBlock(e.kind, blob + pos, block, plane, n, s)) {
        return false;
      }
      pos += block;
    }
    if (pos != e.len) return false;
    JoinPlanes(s.planes.data(), e.element, dst);
    return true;
  }

  template <typename PageAt>
  Result<std::size_t> Backup(PageAt page_at, std::size_t count, const BackupFlags& flags,
                             BackupHandle* handles) {
    const std::uint32_t element = flags.element_size > 1 ? flags.element_size : o_.element_size;
    if (element != 0 && element != 1 && element != 2 && element != 4) {
      return Status(Errc::kInvalid, "CompressedStore: element size " + std::to_string(element) +
                                        " (expected 0, 1, 2 or 4)");
    }
    if (count > 1 && ShouldFail(FaultPoint::kStoreShortWrite)) count = (count + 1) / 2;
    Scratch& s = ThreadScratch();
    std::size_t done = 0;
    Status stop;
    bool full = false;
    while (done < count && stop.ok()) {
      std::size_t n = std::min(kBatch, count - done);
      std::array<Packed, kBatch> packed;
      std::array<const std::byte*, kBatch> src;
      for (std::size_t k = 0; k < n; ++k) {
        if (ShouldFail(FaultPoint::kStoreWrite)) {
          stop = Status(Errc::kIo, "compressed store: injected write failure");
        } else if (ShouldFail(FaultPoint::kStoreNoSpace)) {
          stop = Status(Errc::kNoSpace, "compressed store: injected ENOSPC");
        }
        if (!stop.ok()) {
          n = k;
          break;
        }
        src[k] = page_at(done + k);
        Pack(src[k], element, s.out.data() + k * kPageSize, s, &packed[k]);
      }
      // Checksums of the bytes stored: a page kept raw, or the compressed blob (far fewer bytes
      // to hash, and a corrupt blob never reaches the decompressor).
      for (std::size_t k = 0; k < n; ++k) {
        if (packed[k].kind == kRaw) {
          internal::PageChecksums(src[k], 1, &packed[k].check);
        } else if (packed[k].kind != kSame) {
          packed[k].check = XXH3_64bits(packed[k].data, packed[k].len);
        }
      }
      const std::size_t placed = Place(packed.data(), n, handles + done, &stop, &full);
      done += placed;
      if (placed < n) break;
    }
    stats_->Add(Stat::kStoreBytesWritten, done * kPageSize);
    if (done == 0) {
      // Its cap reached is an answer, as a file store's capacity is (a tier above another meets
      // it routinely); a write that failed is an error.
      if (!full) stats_->Add(Stat::kStoreWriteErrors);
      return stop.ok() ? Status(Errc::kNoSpace, "compressed store: full") : stop;
    }
    return done;
  }

  // Places `n` packed pages under the lock; returns how many (the rest did not fit: *why, and
  // *full when that is the cap).
  std::size_t Place(const Packed* packed, std::size_t n, BackupHandle* handles, Status* why,
                    bool* full) {
    WriterLock lock(&mu_);
    std::size_t k = 0;
    std::uint64_t payload = 0, same = 0, raw = 0, compressed = 0;
    for (; k < n; ++k) {
      const Packed& p = packed[k];
      // Room: a new entry chunk or slab must fit under the cap.
      std::uint64_t grow = free_entries_ == kNoEntry ? kChunkBytes : 0;
      if (p.kind != kSame && !pool_->FitsWithoutNewSlab(p.len)) {
        grow += pool_->NewSlabGrowth(p.len);
      }
      if (grow != 0 && UsedLocked() + grow > cap_) {
        *why = Status(Errc::kNoSpace, "compressed store: its cap of " + MiB(cap_) + " is reached");
        *full = true;
        break;
      }
      const std::uint32_t idx = NewEntryLocked();
      if (idx == kNoEntry) {
        *why = Status(Errc::kNoMemory, "compressed store: no memory for its entry table");
        break;
      }
      Entry& e = EntryAt(idx);
      e.kind = p.kind;
      e.element = p.element;
      e.check = p.check;
      if (p.kind == kSame) {
        e.ref = WordCheck(p.check);
        e.len = 0;
        ++same;
      } else {
        if (!pool_->Alloc(p.len, idx, &e.ref)) {
          e.kind = kFree;
          e.next_free = free_entries_;
          free_entries_ = idx;
          *why = Status(Errc::kNoMemory, "compressed store: cannot map a slab");
          break;
        }
        std::memcpy(pool_->At(e.ref), p.data, p.len);
        e.len = static_cast<std::uint16_t>(p.len == kPageSize ? 0 : p.len);
        payload += p.len;
        (p.kind == kRaw ? raw : compressed) += 1;
      }
      handles[k] = BackupHandle(std::uint64_t{idx} + 1);
    }
    pages_ += k;
    payload_ += payload;
    stats_->GaugeAdd(Stat::kZstorePages, static_cast<std::int64_t>(k));
    stats_->GaugeAdd(Stat::kZstorePayloadBytes, static_cast<std::int64_t>(payload));
    if (same != 0) stats_->Add(Stat::kZstoreSameFilled, same);
    if (raw != 0) stats_->Add(Stat::kZstoreRaw, raw);
    if (compressed != 0) stats_->Add(Stat::kZstoreCompressed, compressed);
    SyncMemoryLocked(false);
    return k;
  }

  template <typename DstAt>
  Status Copy(DstAt dst_at, const BackupHandle* handles, std::size_t count,
              const OperationContext& ctx, std::size_t* copied) {
    if (copied != nullptr) *copied = 0;
    Scratch& s = ThreadScratch();
    std::uint64_t read = 0;
    Status result;
    std::size_t i = 0;
    for (; i < count; ++i) {
      if (ctx.interruptible &&
          (ctx.stop.stop_requested() || ShouldFail(FaultPoint::kStoreInterrupt))) {
        result = Status(Errc::kInterrupted, "compressed store: copy interrupted");
        break;
      }
      result = CopyOne(handles[i], dst_at(i), s);
      if (!result.ok()) break;
      read += kPageSize;
    }
    if (copied != nullptr) *copied = i;
    stats_->Add(Stat::kStoreBytesRead, read);
    return result;
  }

  // Copies one page: decoded straight from its slab under the shared lock (which keeps
  // compaction from moving it), verified after.
  Status CopyOne(BackupHandle h, std::byte* dst, Scratch& s) {
    if (ShouldFail(FaultPoint::kStoreRead)) {
      stats_->Add(Stat::kStoreReadErrors);
      return Status(Errc::kIo, "compressed store: injected read failure of handle " +
                                   std::to_string(h.value()));
    }
    const bool corrupt = ShouldFail(FaultPoint::kStoreCorrupt);
    Entry e;
    bool ok = true;
    {
      ReaderLock lock(&mu_);
      const Entry* found = Find(h);
      if (found == nullptr) {
        return Status(Errc::kInvalid,
                      "compressed store: unknown backup handle " + std::to_string(h.value()));
      }
      e = *found;
      if (e.kind == kSame) {
        if (corrupt) e.check ^= 0x10;
        const SlabPool::Ref expect = WordCheck(e.check);
        ok = expect.slab == e.ref.slab && expect.slot == e.ref.slot;
        if (ok) {
          for (std::size_t k = 0; k < kPageSize; k += 8) std::memcpy(dst + k, &e.check, 8);
        }
      } else {
        const std::byte* blob = pool_->At(e.ref);
        if (corrupt) {  // the injected corruption of a read: a copy with one bit flipped
          std::memcpy(s.blob.data(), blob, BlobLen(e));
          s.blob[BlobLen(e) / 2] ^= std::byte{0x10};
          blob = s.blob.data();
        }
        if (e.kind == kRaw) {
          std::memcpy(dst, blob, kPageSize);
        } else {
          ok = XXH3_64bits(blob, e.len) == e.check && Unpack(e, blob, dst, s);
        }
      }
    }
    if (ok && e.kind == kRaw) {
      std::uint64_t sum = 0;
      internal::PageChecksums(dst, 1, &sum);
      ok = sum == e.check;
    }
    if (!ok) {
      stats_->Add(Stat::kChecksumFailures);
      return Status(Errc::kIo, "compressed store: handle " + std::to_string(h.value()) +
                                   " is corrupt (its checksum or decompression failed)");
    }
    return Status();
  }

  static std::size_t BlobLen(const Entry& e) { return e.len == 0 ? kPageSize : e.len; }

  Entry& EntryAt(std::uint32_t idx) const UTTM_REQUIRES_SHARED(mu_) {
    return chunks_[idx / kChunkEntries][idx % kChunkEntries];
  }

  // The slab pool's callback from Compact, which Drop runs with mu_ held exclusively (the
  // analysis cannot follow the lock into the callback).
  void Relocated(std::uint32_t owner, SlabPool::Ref to) UTTM_NO_THREAD_SAFETY_ANALYSIS {
    EntryAt(owner).ref = to;
  }

  // The live entry of `h`, or null for 0, a never-issued or a dropped handle.
  Entry* Find(BackupHandle h) const UTTM_REQUIRES_SHARED(mu_) {
    if (!h.valid() || h.value() > chunks_.size() * kChunkEntries) return nullptr;
    Entry& e = EntryAt(static_cast<std::uint32_t>(h.value() - 1));
    return e.kind == kFree ? nullptr : &e;
  }

  std::uint32_t NewEntryLocked() UTTM_REQUIRES(mu_) {
    if (free_entries_ == kNoEntry) {
      if (chunks_.size() >= (kNoEntry - 1) / kChunkEntries) return kNoEntry;
      std::unique_ptr<Entry[]> chunk(new (std::nothrow) Entry[kChunkEntries]);
      if (!chunk) return kNoEntry;
      const auto base = static_cast<std::uint32_t>(chunks_.size() * kChunkEntries);
      for (std::size_t k = 0; k < kChunkEntries; ++k) {
        chunk[k].next_free =
            k + 1 < kChunkEntries ? base + static_cast<std::uint32_t>(k) + 1 : kNoEntry;
      }
      chunks_.push_back(std::move(chunk));
      free_entries_ = base;
    }
    const std::uint32_t idx = free_entries_;
    free_entries_ = EntryAt(idx).next_free;
    return idx;
  }

  std::uint64_t UsedLocked() const UTTM_REQUIRES_SHARED(mu_) {
    return (pool_ ? pool_->bytes() : 0) + chunks_.size() * kChunkBytes;
  }

  // Brings the memory context's charge, store.bytes_used and zstore.slab_bytes to the memory
  // held now (or to nothing).
  void SyncMemoryLocked(bool force_zero) UTTM_REQUIRES(mu_) {
    const std::uint64_t used = force_zero ? 0 : UsedLocked();
    const std::uint64_t slabs = force_zero || !pool_ ? 0 : pool_->bytes();
    stats_->GaugeAdd(Stat::kStoreBytesUsed,
                     static_cast<std::int64_t>(used) - static_cast<std::int64_t>(reported_used_));
    stats_->GaugeAdd(Stat::kZstoreSlabBytes,
                     static_cast<std::int64_t>(slabs) - static_cast<std::int64_t>(reported_slabs_));
    reported_used_ = used;
    reported_slabs_ = slabs;
    const std::uint64_t pages = (used + kPageSize - 1) / kPageSize;
    if (o_.memory != nullptr && pages != charged_pages_) {
      if (pages > charged_pages_) {
        o_.memory->ChargeExternal(PageCount(pages - charged_pages_));
      } else {
        o_.memory->UnchargeExternal(PageCount(charged_pages_ - pages));
      }
    }
    charged_pages_ = pages;
  }

  static PageProviderOptions ProviderOptions(Stats* stats) {
    PageProviderOptions po;
    po.region_size = Bytes(std::uint64_t{64} << 20);  // address space, reserved as it grows
    po.huge_pages = false;  // 64 KiB slabs: a huge page would be split by the first release
    po.stats = stats;       // its own counters: provider.* stays the memory context's
    return po;
  }

  const CompressedStoreOptions o_;
  const std::uint64_t cap_;
  Stats* const stats_;
  Stats provider_stats_;
  PageProvider provider_;
  mutable SharedMutex mu_;
  std::unique_ptr<SlabPool> pool_ UTTM_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Entry[]>> chunks_ UTTM_GUARDED_BY(mu_);
  std::uint32_t free_entries_ UTTM_GUARDED_BY(mu_) = kNoEntry;
  std::uint64_t pages_ UTTM_GUARDED_BY(mu_) = 0;
  std::uint64_t payload_ UTTM_GUARDED_BY(mu_) = 0;
  std::uint64_t reported_used_ UTTM_GUARDED_BY(mu_) = 0;
  std::uint64_t reported_slabs_ UTTM_GUARDED_BY(mu_) = 0;
  std::uint64_t charged_pages_ UTTM_GUARDED_BY(mu_) = 0;
};

// Parses the options of an "lz4" or "zstd" spec.
Result<std::unique_ptr<BackupStore>> MakeFromSpec(const BackupStoreSpec& spec,
                                                  const BackupStoreEnv& env) {
  CompressedStoreOptions o;
  o.codec = spec.kind == "zstd" ? CompressedStoreOptions::Codec::kZstd
                                : CompressedStoreOptions::Codec::kLz4;
  o.stats = env.stats;
  o.memory = env.memory;
  if (spec.has_directory) {
    return BackupStoreSpecError(spec.text, "a compressed RAM store takes no directory");
  }
  auto number = [&](std::string_view text, std::uint64_t* out) {
    return ParseBackupStoreSize(text, out) && !text.empty() && text.back() >= '0' &&
           text.back() <= '9';
  };
  for (std::string_view opt : spec.options) {
    std::uint64_t v = 0;
    if (opt.starts_with("cap=")) {
      if (!ParseBackupStoreSize(opt.substr(4), &o.capacity_bytes)) {
        return BackupStoreSpecError(spec.text, "bad size in \"" + std::string(opt) + "\"");
      }
    } else if (opt.starts_with("spare=")) {
      if (!ParseBackupStoreSize(opt.substr(6), &o.spare_bytes)) {
        return BackupStoreSpecError(spec.text, "bad size in \"" + std::string(opt) + "\"");
      }
    } else if (opt.starts_with("raw_above=") && number(opt.substr(10), &v) && v <= kPageSize) {
      o.raw_above = static_cast<std::uint32_t>(v);
    } else if (opt.starts_with("planes=") && number(opt.substr(7), &v) && v <= 4) {
      o.element_size = static_cast<std::uint32_t>(v);
    } else if (spec.kind == "zstd" && opt.starts_with("level=") && number(opt.substr(6), &v) &&
               v <= 19) {
      o.zstd_level = static_cast<int>(v);
    } else {
      return BackupStoreSpecError(
          spec.text, "unknown or malformed " + std::string(spec.kind) + " option \"" +
                         std::string(opt) +
                         "\" (known: cap=SIZE, spare=SIZE, raw_above=64..4096, planes=2|4" +
                         (spec.kind == "zstd" ? ", level=1..19)" : ")"));
    }
  }
  Result<std::unique_ptr<BackupStore>> store = NewCompressedStore(o);
  if (!store.ok() && store.code() == Errc::kInvalid) {
    return BackupStoreSpecError(spec.text, std::string(store.status().message()));
  }
  return store;
}

}  // namespace

Result<std::unique_ptr<BackupStore>> NewCompressedStore(const CompressedStoreOptions& options) {
  if (options.codec == CompressedStoreOptions::Codec::kZstd &&
      (options.zstd_level < 1 || options.zstd_level > 19)) {
    return Status(Errc::kInvalid, "compressed store: zstd level " +
                                      std::to_string(options.zstd_level) + " (expected 1..19)");
  }
  if (options.raw_above < 64 || options.raw_above > kPageSize) {
    return Status(Errc::kInvalid, "compressed store: raw_above " +
                                      std::to_string(options.raw_above) + " (expected 64..4096)");
  }
  if (options.element_size != 0 && options.element_size != 1 && options.element_size != 2 &&
      options.element_size != 4) {
    return Status(Errc::kInvalid, "compressed store: element size " +
                                      std::to_string(options.element_size) +
                                      " (expected 0, 1, 2 or 4)");
  }
  if (options.capacity_bytes != 0 && options.capacity_bytes < kMinCapacity) {
    return Status(Errc::kInvalid, "compressed store: a cap of " +
                                      std::to_string(options.capacity_bytes) +
                                      " bytes is below one slab and one entry table (128 KiB)");
  }
  return std::unique_ptr<BackupStore>(new CompressedStore(options));
}

void RegisterCompressedStoreKinds() {
  (void)RegisterBackupStoreKind("lz4", MakeFromSpec);
  (void)RegisterBackupStoreKind("zstd", MakeFromSpec);
}

}  // namespace uttm
