// Copyright (c) uttm developers.
#include "backup/fd_store.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "backup/page_checksum.h"
#include "base/check.h"
#include "uttm/fault_injection.h"
#include "uttm/units.h"

namespace uttm::internal {
namespace {

// Simulated short writes stop at a multiple of this (valid for O_DIRECT on 512-byte sectors).
constexpr std::size_t kShortWriteAlign = 512;

std::uint64_t SlotOffset(std::uint64_t slot) { return slot << kPageShift; }

// Chunks at least this long are checksummed on the worker during their write; below it the
// hand-off costs more than it hides (64 KiB).
constexpr std::size_t kParallelChecksumMinPages = 16;

// Chunks one window of a batched backup or copy holds at most (64 MiB).
constexpr std::size_t kMaxBatchChunks = 64;

// Read-ahead hints one CopyPages gives at most (a badly fragmented copy skips the rest).
constexpr std::size_t kMaxReadHints = 64;

bool PageAligned(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & (kPageSize - 1)) == 0;
}

}  // namespace

int ReadFully(int fd, std::uint64_t offset, std::byte* buf, std::size_t len) {
  std::size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // A stored slot lies past the end of the file: the medium lost it.
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

FdStore::FdStore(int fd, bool o_direct, std::uint64_t max_slots, Stats* stats, std::string kind,
                 bool parallel_checksum)
    : fd_(fd),
      o_direct_(o_direct),
      stats_(stats),
      kind_(std::move(kind)),
      alloc_(max_slots),
      checksum_worker_(parallel_checksum ? std::make_unique<ChecksumWorker>() : nullptr) {}

FdStore::~FdStore() {
  std::uint64_t used;
  {
    MutexLock lock(&mu_);
    used = alloc_.used();
  }
  stats_->GaugeAdd(Stat::kStoreBytesUsed, -static_cast<std::int64_t>(SlotOffset(used)));
  ::close(fd_);
}

std::uint64_t FdStore::BytesUsed() const {
  MutexLock lock(&mu_);
  return SlotOffset(alloc_.used());
}

std::uint64_t FdStore::CapacityBytesLeft() const {
  MutexLock lock(&mu_);
  return SlotOffset(alloc_.available());
}

int BuildIov(const PageRef& pages, std::size_t first, std::size_t pos, std::size_t len,
             iovec* iov) {
  int n = 0;
  while (pos < len) {
    const std::size_t in_page = pos & (kPageSize - 1);
    std::byte* addr = pages.at(first + (pos >> kPageShift)) + in_page;
    const std::size_t chunk = kPageSize - in_page;
    if (n > 0 && static_cast<std::byte*>(iov[n - 1].iov_base) + iov[n - 1].iov_len == addr) {
      iov[n - 1].iov_len += chunk;
    } else {
      iov[n].iov_base = addr;
      iov[n].iov_len = chunk;
      ++n;
    }
    pos += chunk;
  }
  return n;
}

void TruncateIov(iovec* iov, int* n, std::size_t want) {
  std::size_t acc = 0;
  for (int i = 0; i < *n; ++i) {
    if (acc + iov[i].iov_len >= want) {
      iov[i].iov_len = want - acc;
      *n = i + 1;
      return;
    }
    acc += iov[i].iov_len;
  }
}

std::size_t ShortWriteLength(std::size_t want) {
  return std::max(kShortWriteAlign, (want / 2) & ~(kShortWriteAlign - 1));
}

int TransferRange(int fd, bool write, std::uint64_t offset, const PageRef& pages, std::size_t first,
                  std::size_t n, std::size_t* done, Mutex* write_mu) {
  UTTM_DCHECK(n <= kIoChunkPages, "Transfer of more than one chunk");
  iovec iov[kIoChunkPages];
  const std::size_t len = n * kPageSize;
  while (*done < len) {
    int niov = BuildIov(pages, first, *done, len, iov);
    const std::size_t want = len - *done;
    // store.short_write: the medium takes only part of the request; the loop must resume.
    if (write && want > kShortWriteAlign && ShouldFail(FaultPoint::kStoreShortWrite)) {
      TruncateIov(iov, &niov, ShortWriteLength(want));
    }
    const off_t pos = static_cast<off_t>(offset + *done);
    ssize_t r;
    if (write && write_mu != nullptr) {
      MutexLock lock(write_mu);  // see the file comment of fd_store.h
      r = ::pwritev(fd, iov, niov, pos);
    } else {
      r = write ? ::pwritev(fd, iov, niov, pos) : ::preadv(fd, iov, niov, pos);
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    // No progress: a full medium (write), or a stored slot past the end of the file (read).
    if (r == 0) return write ? ENOSPC : EIO;
    *done += static_cast<std::size_t>(r);
  }
  return 0;
}

int FdStore::Transfer(bool write, std::uint64_t offset, const PageRef& pages, std::size_t first,
                      std::size_t n, std::size_t* done) {
  *done = 0;
  return TransferRange(fd_, write, offset, pages, first, n, done, o_direct_ ? nullptr : &write_mu_);
}

std::size_t PagesBeforeWriteFault(std::size_t n, int* err) {
  std::size_t ok = 0;
  while (ok < n) {
    if (ShouldFail(FaultPoint::kStoreWrite)) {
      *err = EIO;
      break;
    }
    if (ShouldFail(FaultPoint::kStoreNoSpace)) {
      *err = ENOSPC;
      break;
    }
    ++ok;
  }
  return ok;
}

bool NamesAPageTwice(std::byte* const* list, std::size_t n) {
  // Page vectors' lists usually run one way through memory: no sort needed then.
  bool up = true, down = true;
  for (std::size_t i = 1; i < n && (up || down); ++i) {
    up = up && list[i - 1] < list[i];
    down = down && list[i - 1] > list[i];
  }
  if (up || down) return false;
  std::vector<std::byte*> sorted(list, list + n);
  std::sort(sorted.begin(), sorted.end());
  return std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end();
}

void FdStore::PunchSlots(std::uint64_t start, std::uint64_t count) {
  if (count == 0) return;
  // Best effort: a file system without hole punching keeps the blocks, but the slots are still
  // reused, so space stays bounded by the peak use.
  while (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     static_cast<off_t>(SlotOffset(start)),
                     static_cast<off_t>(SlotOffset(count))) != 0 &&
         errno == EINTR) {
  }
}

void FdStore::FreeSlots(const std::vector<SlotExtent>& extents) {
  std::uint64_t freed = 0;
  for (const SlotExtent& e : extents) {
    try {
      alloc_.Free(e.start, e.count);  // changes nothing when it throws
      for (std::uint64_t s = e.start; s < e.start + e.count; ++s) slots_[s] = Slot{};
      freed += e.count;
      continue;
    } catch (const std::bad_alloc&) {
    }
    // No memory to record the hole: try again slot by slot. A slot that still cannot be
    // recorded stays allocated (Busy, never handed out again) and keeps counting as used:
    // space, never data.
    for (std::uint64_t s = e.start; s < e.start + e.count; ++s) {
      try {
        alloc_.Free(s, 1);
      } catch (const std::bad_alloc&) {
        continue;
      }
      slots_[s] = Slot{};
      ++freed;
    }
  }
  stats_->GaugeAdd(Stat::kStoreBytesUsed, -static_cast<std::int64_t>(SlotOffset(freed)));
}

Result<std::size_t> FdStore::BackupPages(const std::byte* src, std::size_t count,
                                         const BackupFlags& flags, BackupHandle* handles) {
  if (src == nullptr) return Status(Errc::kInvalid, kind_ + ": BackupPages with a null source");
  try {
    return BackupImpl(PageRef{const_cast<std::byte*>(src), nullptr}, count, flags, handles);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("BackupPages");
  }
}

Result<std::size_t> FdStore::BackupPageList(const std::byte* const* pages, std::size_t count,
                                            const BackupFlags& flags, BackupHandle* handles) {
  if (pages == nullptr) return Status(Errc::kInvalid, kind_ + ": BackupPageList with no pages");
  for (std::size_t i = 0; i < count; ++i) {
    if (pages[i] == nullptr) {
      return Status(Errc::kInvalid,
                    kind_ + ": BackupPageList page " + std::to_string(i) + " is null");
    }
  }
  try {
    return BackupImpl(PageRef{nullptr, const_cast<std::byte* const*>(pages)}, count, flags,
                      handles);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("BackupPageList");
  }
}

Result<std::size_t> FdStore::BackupImpl(const PageRef& src, std::size_t count,
                                        const BackupFlags& flags, BackupHandle* handles) {
  if (count == 0) return Status(Errc::kInvalid, kind_ + ": BackupPages with count 0");
  if (handles == nullptr) {
    return Status(Errc::kInvalid, kind_ + ": BackupPages with a null handle array");
  }
  if (o_direct_) {
    for (std::size_t i = 0; i < (src.list != nullptr ? count : 1); ++i) {
      if (!PageAligned(src.at(i))) {
        return Status(Errc::kInvalid, kind_ + ": O_DIRECT needs page-aligned source pages");
      }
    }
  }
  UTTM_ASSIGN_OR_RETURN(std::uint64_t admitted, Admit(count));

  // Everything this call needs from the heap, before anything changes: a std::bad_alloc here
  // (turned into kNoMemory by the caller) leaves the store as it was. An extent holds at least
  // one slot, so `admitted` bounds both extent lists.
  std::vector<SlotExtent> extents;
  extents.reserve(admitted);
  std::vector<SlotExtent> unused;
  unused.reserve(admitted);
  std::vector<std::uint64_t> sums(admitted);
  {
    MutexLock lock(&mu_);
    // Room for the slot table to grow by this call (doubling, so growth stays amortized O(1)).
    if (slots_.capacity() < alloc_.tail() + admitted) {
      slots_.reserve(std::max<std::size_t>(alloc_.tail() + admitted, 2 * slots_.capacity()));
    }
    std::uint64_t got = alloc_.Allocate(admitted, &extents);
    if (got == 0) {
      return Status(Errc::kNoSpace, kind_ + ": full (capacity " +
                                        std::to_string(SlotOffset(alloc_.max_slots())) + " bytes)");
    }
    if (slots_.size() < alloc_.tail()) slots_.resize(alloc_.tail());
    for (const SlotExtent& e : extents) {
      for (std::uint64_t s = e.start; s < e.start + e.count; ++s)
        slots_[s].state = SlotState::kBusy;
    }
    stats_->GaugeAdd(Stat::kStoreBytesUsed, static_cast<std::int64_t>(SlotOffset(got)));
  }

  const WriteOutcome out = batch_io_ != nullptr
                               ? WriteExtentsBatched(src, extents, flags, sums.data())
                               : WriteExtents(src, extents, flags, sums.data());
  const std::size_t stored = out.stored;
  const int err = out.err;
  const std::uint64_t err_slot = out.err_slot;

  // Commit the stored pages, release the rest.
  {
    MutexLock lock(&mu_);
    std::size_t i = 0;
    for (const SlotExtent& e : extents) {
      for (std::uint64_t k = 0; k < e.count; ++k, ++i) {
        if (i < stored) {
          slots_[e.start + k] = Slot{sums[i], SlotState::kLive};
          handles[i] = BackupHandle(e.start + k + 1);
        } else {
          if (!unused.empty() && unused.back().start + unused.back().count == e.start + k) {
            ++unused.back().count;
          } else {
            unused.push_back({e.start + k, 1});
          }
        }
      }
    }
    FreeSlots(unused);
  }
  stats_->Add(Stat::kStoreBytesWritten, SlotOffset(stored));
  if (err != 0) {
    stats_->Add(Stat::kStoreWriteErrors);
    if (stored == 0) {
      // A full medium (ENOSPC, EDQUOT, or EFBIG from a file size limit) is "no space".
      const Errc code = (err == ENOSPC || err == EDQUOT || err == EFBIG) ? Errc::kNoSpace
                        : err == ENOMEM                                  ? Errc::kNoMemory
                                                                         : Errc::kIo;
      return Status(code, kind_ + ": write at slot " + std::to_string(err_slot) +
                              " failed: " + std::strerror(err));
    }
  }
  return stored;
}

FdStore::WriteOutcome FdStore::WriteExtents(const PageRef& src,
                                            const std::vector<SlotExtent>& extents,
                                            const BackupFlags& flags, std::uint64_t* sums) {
  // One large write per extent (in kIoChunkPages chunks). Fault points are evaluated per page,
  // so "fail after k pages" stores exactly k.
  std::size_t stored = 0;  // leading pages safely written
  int err = 0;
  std::uint64_t err_slot = 0;
  std::size_t page = 0;
  for (const SlotExtent& e : extents) {
    const std::uint64_t ok = err == 0 ? PagesBeforeWriteFault(e.count, &err) : 0;
    std::uint64_t written = 0;  // pages of this extent fully written
    for (std::uint64_t off = 0; off < ok;) {
      const std::uint64_t n = std::min<std::uint64_t>(ok - off, kIoChunkPages);
      std::uint64_t* const chunk_sums = sums + page + off;
      // A large chunk is checksummed on the worker's core while this thread writes it.
      const bool offloaded = checksum_worker_ != nullptr && n >= kParallelChecksumMinPages &&
                             checksum_worker_->TryStart(src, page + off, n, chunk_sums);
      std::size_t done = 0;
      int werr = Transfer(/*write=*/true, SlotOffset(e.start + off), src, page + off, n, &done);
      if (offloaded) {
        checksum_worker_->Wait();
        stats_->Add(Stat::kStoreParallelChecksums);
      } else {
        // Right after the write, whose copy just pulled the chunk into the CPU cache: hashing
        // first would read it from memory one more time.
        PageChecksums(src, page + off, done >> kPageShift, chunk_sums);
      }
      written += done >> kPageShift;
      if (werr != 0) {
        err = werr;
        break;
      }
      off += n;
    }
    if (written > 0) AfterWrite(SlotOffset(e.start), SlotOffset(written), flags);
    stored += written;
    page += e.count;
    if (err != 0) {
      err_slot = e.start + written;
      // The failed page may be half written: give its blocks (and those of a short write) back
      // before the slots can be handed out again.
      PunchSlots(err_slot, e.count - written);
      break;
    }
  }

  return WriteOutcome{stored, err, err_slot};
}

FdStore::WriteOutcome FdStore::WriteExtentsBatched(const PageRef& src,
                                                   const std::vector<SlotExtent>& extents,
                                                   const BackupFlags& flags, std::uint64_t* sums) {
  // The pages before the first fault point that fires (evaluated per page, as above).
  std::size_t total = 0;
  for (const SlotExtent& e : extents) total += e.count;
  int fault = 0;
  const std::size_t ok = PagesBeforeWriteFault(total, &fault);

  // Windows of up to `window` chunks go out together; this thread checksums a window's pages
  // while the medium writes them.
  const std::size_t window = std::min(batch_io_->depth(), kMaxBatchChunks);
  IoChunk chunks[kMaxBatchChunks];
  struct Checksummer final : BatchObserver {
    Checksummer(const PageRef& src, std::uint64_t* sums) : src(src), sums(sums) {}
    void InFlight() override { PageChecksums(src, first, n, sums + first); }
    const PageRef& src;
    std::uint64_t* const sums;
    std::size_t first = 0;
    std::size_t n = 0;
  } checksummer(src, sums);
  WriteOutcome out;
  std::size_t ext = 0;       // extent of the next chunk
  std::uint64_t in_ext = 0;  // pages of that extent already in chunks
  std::size_t page = 0;      // first page of the next chunk
  while (page < ok && out.err == 0) {
    std::size_t k = 0;
    checksummer.first = page;
    while (k < window && page < ok) {
      const SlotExtent& e = extents[ext];
      const std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>({e.count - in_ext, kIoChunkPages, ok - page}));
      chunks[k++] = IoChunk{.offset = SlotOffset(e.start + in_ext), .first = page, .n = n};
      page += n;
      in_ext += n;
      if (in_ext == e.count) {
        ++ext;
        in_ext = 0;
      }
    }
    checksummer.n = page - checksummer.first;
    batch_io_->Run(/*write=*/true, src, chunks, k, checksummer);
    // Stored are the leading pages: a chunk written after a failed one does not count.
    for (std::size_t i = 0; i < k; ++i) {
      const IoChunk& c = chunks[i];
      const std::size_t whole = c.err == 0 ? c.n : c.done >> kPageShift;
      if (whole > 0) AfterWrite(c.offset, SlotOffset(whole), flags);
      out.stored += whole;
      if (c.err != 0) {
        out.err = c.err;
        break;
      }
    }
  }
  if (out.err == 0) out.err = fault;
  if (out.err != 0) {
    // Everything past the stored pages may hold half-written or stray blocks: give them back
    // before the slots can be handed out again.
    std::size_t first = 0;
    for (const SlotExtent& e : extents) {
      if (first + e.count > out.stored) {
        const std::uint64_t skip = out.stored > first ? out.stored - first : 0;
        if (first <= out.stored) out.err_slot = e.start + skip;
        PunchSlots(e.start + skip, e.count - skip);
      }
      first += e.count;
    }
  }
  return out;
}

Status FdStore::CopyPages(const BackupHandle* handles, std::size_t count, std::byte* dst,
                          const OperationContext& ctx, std::size_t* copied) {
  try {
    return CopyImpl(handles, count, PageRef{dst, nullptr}, ctx, copied);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("CopyPages");
  }
}

Status FdStore::CopyPageList(const BackupHandle* handles, std::size_t count, std::byte* const* dst,
                             const OperationContext& ctx, std::size_t* copied) {
  if (dst != nullptr) {
    for (std::size_t i = 0; i < count; ++i) {
      if (dst[i] == nullptr) {
        if (copied != nullptr) *copied = 0;
        return Status(Errc::kInvalid,
                      kind_ + ": CopyPageList destination " + std::to_string(i) + " is null");
      }
    }
  }
  try {
    return CopyImpl(handles, count, PageRef{nullptr, dst}, ctx, copied);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("CopyPageList");
  }
}

Status FdStore::CopyImpl(const BackupHandle* handles, std::size_t count, const PageRef& dst,
                         const OperationContext& ctx, std::size_t* copied) {
  if (copied != nullptr) *copied = 0;
  if (count == 0) return Status::Ok();
  if (handles == nullptr || (dst.base == nullptr && dst.list == nullptr)) {
    return Status(Errc::kInvalid, kind_ + ": CopyPages with a null handle or destination array");
  }
  if (o_direct_) {
    for (std::size_t i = 0; i < (dst.list != nullptr ? count : 1); ++i) {
      if (!PageAligned(dst.at(i))) {
        return Status(Errc::kInvalid, kind_ + ": O_DIRECT needs page-aligned destination pages");
      }
    }
  }

  // Snapshot slot and checksum of every handle; stop at the first one that is not live.
  std::vector<Want> want;
  want.reserve(count);
  {
    MutexLock lock(&mu_);
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t v = handles[i].value();
      if (v == 0 || v > slots_.size() || slots_[v - 1].state != SlotState::kLive) break;
      want.push_back({v - 1, slots_[v - 1].checksum});
    }
  }

  // Ask for every run at once, so the medium reads ahead while earlier chunks are verified.
  if (want.size() > kIoChunkPages) {
    std::size_t hints = 0;
    for (std::size_t i = 0; i < want.size() && hints < kMaxReadHints;) {
      std::size_t j = i + 1;
      while (j < want.size() && want[j].slot == want[i].slot + (j - i)) ++j;
      BeforeRead(SlotOffset(want[i].slot), SlotOffset(j - i));
      ++hints;
      i = j;
    }
  }

  // A page list may name one destination twice (the later read must win, and no page may be
  // checked against bytes another read put there): such a list is read one run at a time, and
  // a run ends before a destination it already holds.
  const bool repeats = dst.list != nullptr && NamesAPageTwice(dst.list, want.size());

  // A medium with many requests in flight reads whole windows at once.
  if (batch_io_ != nullptr) {
    std::size_t done = 0;
    std::uint64_t bytes_read = 0;
    Status status = ReadBatched(want, dst, repeats, ctx, &done, &bytes_read);
    return FinishCopy(std::move(status), handles, count, want.size(), done, bytes_read, copied);
  }

  // Each chunk is read, then verified against its checksums: on the checksum worker while the
  // next chunk is read when the worker is free (contiguous destinations only), else right away.
  // `done` counts the leading pages read AND verified, `next` the pages read. Pages past `done`
  // never count as copied, so a chunk read ahead of a failure is simply not reported.
  // At most one chunk is pending at a time, so one buffer of checksums serves every chunk.
  Status status;
  std::vector<std::uint64_t> sums(std::min(want.size(), kIoChunkPages));
  std::size_t done = 0;
  std::size_t next = 0;
  std::uint64_t bytes_read = 0;
  struct Pending {
    std::size_t first = 0;
    std::size_t n = 0;
    bool on_worker = false;
  } pending;
  // Verifies the pending chunk; false (status set, the bad page zeroed) on a mismatch.
  auto verify_pending = [&]() -> bool {
    if (pending.n == 0) return true;
    if (pending.on_worker) {
      checksum_worker_->Wait();
    } else {
      PageChecksums(dst, pending.first, pending.n, sums.data());
    }
    const Pending p = pending;
    pending = Pending{};
    for (std::size_t k = 0; k < p.n; ++k) {
      if (sums[k] != want[p.first + k].checksum) {
        stats_->Add(Stat::kChecksumFailures);
        std::memset(dst.at(p.first + k), 0, kPageSize);  // never leave corrupt bytes as data
        status = Status(Errc::kIo, kind_ + ": backup handle " +
                                       std::to_string(want[p.first + k].slot + 1) +
                                       " failed its checksum (data corrupted in the store)");
        done = p.first + k;
        return false;
      }
    }
    done = p.first + p.n;
    return true;
  };
  while (next < want.size()) {
    if (ctx.interrupt_requested()) {
      if (verify_pending()) status = Status(Errc::kInterrupted, kind_ + ": copy interrupted");
      break;
    }
    // The longest run of consecutive slots from here.
    Errc fault = Errc::kOk;
    const std::size_t ok = NextReadRun(want, next, dst, repeats, ctx, &fault);
    if (ok > 0) {
      std::size_t got = 0;
      int err = Transfer(/*write=*/false, SlotOffset(want[next].slot), dst, next, ok, &got);
      if (err != 0) {
        stats_->Add(Stat::kStoreReadErrors);  // even if an earlier page's failure is reported
        if (verify_pending()) {
          status =
              Status(Errc::kIo, kind_ + ": read of handle " + std::to_string(want[next].slot + 1) +
                                    " failed: " + std::strerror(err));
        }
        break;
      }
      bytes_read += SlotOffset(ok);
    }
    for (std::size_t k = 0; k < ok; ++k) {
      if (ShouldFail(FaultPoint::kStoreCorrupt)) dst.at(next + k)[k] ^= std::byte{0x10};
    }
    // The previous chunk, checksummed during this read.
    if (!verify_pending()) break;
    pending = Pending{next, ok, false};
    next += ok;
    // Hand this chunk's checksums to the worker while the next chunk is read (none is after a
    // fault); otherwise check it now, while it is in the cache. Only a contiguous destination is
    // handed over: a page list may name one page twice, and the next read would then overwrite
    // what is being checked.
    if (fault == Errc::kOk && next < want.size() && dst.list == nullptr &&
        checksum_worker_ != nullptr && ok >= kParallelChecksumMinPages &&
        checksum_worker_->TryStart(dst, pending.first, ok, sums.data())) {
      pending.on_worker = true;
      stats_->Add(Stat::kStoreParallelVerifies);
    } else if (!verify_pending()) {
      break;
    }
    if (fault == Errc::kInterrupted) {
      status = Status(Errc::kInterrupted, kind_ + ": copy interrupted (fault point)");
      break;
    }
    if (fault == Errc::kIo) {
      stats_->Add(Stat::kStoreReadErrors);
      status = Status(Errc::kIo, kind_ + ": read of handle " + std::to_string(want[done].slot + 1) +
                                     " failed: Input/output error (fault point)");
      break;
    }
  }
  if (status.ok()) verify_pending();
  UTTM_DCHECK(!pending.on_worker, "CopyPages returned with the checksum worker still running");
  return FinishCopy(std::move(status), handles, count, want.size(), done, bytes_read, copied);
}

std::size_t FdStore::NextReadRun(const std::vector<Want>& want, std::size_t next,
                                 const PageRef& dst, bool repeats, const OperationContext& ctx,
                                 Errc* fault) {
  std::size_t run = 1;
  while (next + run < want.size() && run < kIoChunkPages &&
         want[next + run].slot == want[next].slot + run &&
         !(repeats && std::find(dst.list + next, dst.list + next + run, dst.list[next + run]) !=
                          dst.list + next + run)) {
    ++run;
  }
  // Per-page fault points cut the run short.
  for (std::size_t ok = 0; ok < run; ++ok) {
    if (ctx.interruptible && ShouldFail(FaultPoint::kStoreInterrupt)) {
      *fault = Errc::kInterrupted;
      return ok;
    }
    if (ShouldFail(FaultPoint::kStoreRead)) {
      *fault = Errc::kIo;
      return ok;
    }
  }
  return run;
}

Status FdStore::FinishCopy(Status status, const BackupHandle* handles, std::size_t count,
                           std::size_t live, std::size_t done, std::uint64_t bytes_read,
                           std::size_t* copied) {
  stats_->Add(Stat::kStoreBytesRead, bytes_read);
  if (copied != nullptr) *copied = done;
  if (status.ok() && live < count) {
    status = Status(Errc::kInvalid, kind_ + ": handle " + std::to_string(handles[done].value()) +
                                        " (index " + std::to_string(done) +
                                        ") is not a live handle of this store");
  }
  return status;
}

Status FdStore::ReadBatched(const std::vector<Want>& want, const PageRef& dst, bool repeats,
                            const OperationContext& ctx, std::size_t* done_out,
                            std::uint64_t* bytes_read) {
  // Every chunk is verified on this thread as soon as it is read, while later chunks are still
  // in flight. `bad[i]`: the first page of chunk i that failed its checksum (n: none).
  IoChunk chunks[kMaxBatchChunks];
  std::size_t bad[kMaxBatchChunks];
  struct Verifier final : BatchObserver {
    Verifier(FdStore* store, const std::vector<Want>& want, const PageRef& dst, IoChunk* chunks,
             std::size_t* bad)
        : store(store), want(want), dst(dst), chunks(chunks), bad(bad) {}
    void Complete(std::size_t i) override {
      const IoChunk& c = chunks[i];
      bad[i] = c.n;
      if (c.err != 0) return;
      for (std::size_t k = 0; k < c.n; ++k) {
        if (ShouldFail(FaultPoint::kStoreCorrupt)) dst.at(c.first + k)[k] ^= std::byte{0x10};
      }
      PageChecksums(dst, c.first, c.n, sums);
      for (std::size_t k = 0; k < c.n; ++k) {
        if (sums[k] != want[c.first + k].checksum) {
          store->stats_->Add(Stat::kChecksumFailures);
          bad[i] = k;
          return;
        }
      }
    }
    FdStore* const store;
    const std::vector<Want>& want;
    const PageRef& dst;
    IoChunk* const chunks;
    std::size_t* const bad;
    std::uint64_t sums[kIoChunkPages];
  } verifier(this, want, dst, chunks, bad);

  // A list naming one destination twice is read one chunk at a time (see CopyImpl).
  const std::size_t window = repeats ? 1 : std::min(batch_io_->depth(), kMaxBatchChunks);
  std::size_t done = 0;  // leading pages read and verified
  Status status;
  while (done < want.size() && status.ok()) {
    if (ctx.interrupt_requested()) {
      status = Status(Errc::kInterrupted, kind_ + ": copy interrupted");
      break;
    }
    // Runs of consecutive slots, cut short by the per-page fault points.
    std::size_t k = 0;
    std::size_t next = done;
    Errc fault = Errc::kOk;
    while (k < window && next < want.size() && fault == Errc::kOk) {
      const std::size_t ok = NextReadRun(want, next, dst, repeats, ctx, &fault);
      if (ok > 0)
        chunks[k++] = IoChunk{.offset = SlotOffset(want[next].slot), .first = next, .n = ok};
      next += ok;
    }
    if (k > 0) batch_io_->Run(/*write=*/false, dst, chunks, k, verifier);
    for (std::size_t i = 0; i < k && status.ok(); ++i) {
      const IoChunk& c = chunks[i];
      if (c.err != 0) {
        stats_->Add(Stat::kStoreReadErrors);
        const std::size_t at = c.first + (c.done >> kPageShift);
        status = Status(Errc::kIo, kind_ + ": read of handle " + std::to_string(want[at].slot + 1) +
                                       " failed: " + std::strerror(c.err));
      } else if (bad[i] < c.n) {
        done = c.first + bad[i];
        std::memset(dst.at(done), 0, kPageSize);  // never leave corrupt bytes as data
        status =
            Status(Errc::kIo, kind_ + ": backup handle " + std::to_string(want[done].slot + 1) +
                                  " failed its checksum (data corrupted in the store)");
      } else {
        done = c.first + c.n;
        *bytes_read += SlotOffset(c.n);
      }
    }
    if (!status.ok()) break;
    if (fault == Errc::kInterrupted) {
      status = Status(Errc::kInterrupted, kind_ + ": copy interrupted (fault point)");
    } else if (fault == Errc::kIo) {
      stats_->Add(Stat::kStoreReadErrors);
      status = Status(Errc::kIo, kind_ + ": read of handle " + std::to_string(want[done].slot + 1) +
                                     " failed: Input/output error (fault point)");
    }
  }
  *done_out = done;
  return status;
}

Status FdStore::OutOfMemory(const char* call) const {
  // The heap refused the store's bookkeeping. The caller keeps its pages (nothing it asked for
  // is reported stored); at worst some store space stays allocated until the store closes.
  try {
    return Status(Errc::kNoMemory,
                  kind_ + ": " + call + ": out of memory for the store's bookkeeping");
  } catch (const std::bad_alloc&) {
    return Status(Errc::kNoMemory, "backup store: out of memory for the store's bookkeeping");
  }
}

void FdStore::Drop(const BackupHandle* handles, std::size_t count) {
  if (handles == nullptr || count == 0) return;
  try {
    DropBatched(handles, count);
  } catch (const std::bad_alloc&) {
    // Page by page, with no allocation of our own (the slot allocator may still need a node to
    // record a hole: a slot it cannot take back stays allocated, never reused while live).
    for (std::size_t i = 0; i < count; ++i) {
      std::uint64_t slot = 0;
      {
        MutexLock lock(&mu_);
        const std::uint64_t v = handles[i].value();
        if (v == 0 || v > slots_.size() || slots_[v - 1].state != SlotState::kLive) continue;
        slot = v - 1;
        slots_[slot].state = SlotState::kBusy;
      }
      PunchSlots(slot, 1);
      MutexLock lock(&mu_);
      try {
        alloc_.Free(slot, 1);  // changes nothing when it throws: the slot stays Busy, leaked
        slots_[slot] = Slot{};
        stats_->GaugeAdd(Stat::kStoreBytesUsed, -static_cast<std::int64_t>(SlotOffset(1)));
      } catch (const std::bad_alloc&) {
      }
    }
  }
}

void FdStore::DropBatched(const BackupHandle* handles, std::size_t count) {
  std::vector<std::uint64_t> slots;
  slots.reserve(count);
  std::vector<SlotExtent> runs;
  runs.reserve(count);  // before any slot changes state: nothing below allocates
  {
    MutexLock lock(&mu_);
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t v = handles[i].value();
      if (v == 0 || v > slots_.size() || slots_[v - 1].state != SlotState::kLive) continue;
      slots_[v - 1].state = SlotState::kBusy;
      slots.push_back(v - 1);
    }
  }
  if (slots.empty()) return;
  std::sort(slots.begin(), slots.end());
  for (std::uint64_t s : slots) {
    if (!runs.empty() && runs.back().start + runs.back().count == s) {
      ++runs.back().count;
    } else {
      runs.push_back({s, 1});
    }
  }
  // Punch while the slots are still Busy, so no new owner's data can be hit.
  for (const SlotExtent& r : runs) PunchSlots(r.start, r.count);
  MutexLock lock(&mu_);
  FreeSlots(runs);
}

}  // namespace uttm::internal
