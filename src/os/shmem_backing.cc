// Copyright (c) uttm developers.
//
// shmem_backing.cc: see shmem_backing.h.
#include "uttm/shmem_backing.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "uttm/fault_injection.h"

namespace uttm {
namespace {

std::string Errno(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

bool MachineHasSwap() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "SwapTotal:") return kib > 0;
  }
  return false;
}

// Reads and writes back the first byte of every page of [p, p + bytes): faults each page in,
// writable, and on a shared file mapping makes the file system track it as dirty.
void TouchPages(std::byte* p, std::size_t bytes) {
  for (std::size_t off = 0; off < bytes; off += kPageSize) {
    volatile std::byte* b = p + off;
    *b = *b;
  }
}

// Faults [p, p + bytes) in, so that a read error surfaces here (EFAULT, EIO) and never as a SIGBUS
// on a later access. Read faults: a write fault on a shared file mapping makes the file system
// track the page as dirty (ext4's page_mkwrite), which the first real write does anyway; the
// blocks are reserved, so that write cannot fail.
int Populate(std::byte* p, std::size_t bytes) {
  for (;;) {
    if (madvise(p, bytes, MADV_POPULATE_READ) == 0) return 0;
    if (errno == EINTR) continue;
    if (errno != EINVAL) return errno;
    // A kernel before 5.14: touch every page (a read error would be a SIGBUS; there is no better
    // way there).
    TouchPages(p, bytes);
    return 0;
  }
}

}  // namespace

ShmemBacking::ShmemBacking(std::uint64_t bytes, const ShmemBackingOptions& options,
                           bool can_release)
    : options_(options),
      bytes_(bytes),
      can_release_(can_release),
      stats_(options.stats != nullptr ? options.stats : &Stats::Default()) {}

Result<std::unique_ptr<ShmemBacking>> ShmemBacking::Create(Bytes size,
                                                           const ShmemBackingOptions& options) {
  if (size.value() == 0) return Status(Errc::kInvalid, "a GEM shmem object needs a size");
  if (size.value() > (std::uint64_t{1} << 46)) {
    return Status(Errc::kInvalid, "a GEM shmem object of " + std::to_string(size.value()) +
                                      " bytes is larger than any backing file uttm makes");
  }
  const std::uint64_t bytes = size.pages_rounded_up().in_bytes().value();
  bool can_release = true;
  if (options.directory.empty()) {
    static const bool swap = MachineHasSwap();
    can_release = swap;
  } else {
    struct stat st;
    if (stat(options.directory.c_str(), &st) != 0) {
      return Status(Errc::kInvalid,
                    "backing directory '" + options.directory + "': " + std::strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
      return Status(Errc::kInvalid,
                    "backing directory '" + options.directory + "' is not a directory");
    }
    if (access(options.directory.c_str(), W_OK | X_OK) != 0) {
      return Status(Errc::kInvalid, "backing directory '" + options.directory +
                                        "' is not writable: " + std::strerror(errno));
    }
  }
  return std::unique_ptr<ShmemBacking>(new ShmemBacking(bytes, options, can_release));
}

ShmemBacking::~ShmemBacking() {
  DropMapping();
  if (fd_ >= 0) close(fd_);
}

Status ShmemBacking::OpenFile() {
  if (ShouldFail(FaultPoint::kGemCreate)) {
    return Status(Errc::kNoMemory, "creating a GEM backing file: injected EMFILE");
  }
  int fd = -1;
  if (options_.directory.empty()) {
    fd = memfd_create("uttm-gem-shmem", MFD_CLOEXEC);
    if (fd < 0) return Status(Errc::kNoMemory, Errno("memfd_create of a GEM backing file", errno));
  } else {
    fd = open(options_.directory.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
      // No O_TMPFILE on this file system: a named file, unlinked at once.
      std::string path = options_.directory + "/uttm-gem-XXXXXX";
      std::vector<char> name(path.begin(), path.end());
      name.push_back('\0');
      fd = mkostemp(name.data(), O_CLOEXEC);
      if (fd >= 0) unlink(name.data());
    }
    if (fd < 0) {
      const int err = errno;
      return Status(err == ENOSPC ? Errc::kNoSpace : Errc::kIo,
                    Errno(("creating a GEM backing file in " + options_.directory).c_str(), err));
    }
  }
  fd_ = fd;
  return Status();
}

Status ShmemBacking::Reserve() {
  if (reserved_) return Status();
  if (ShouldFail(FaultPoint::kGemExtend)) {
    return Status(Errc::kNoSpace, "reserving a GEM backing file's blocks: injected ENOSPC");
  }
  for (;;) {
    if (fallocate(fd_, 0, 0, static_cast<off_t>(bytes_)) == 0) break;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EOPNOTSUPP) {  // no block reservation on this file system: size it at least
      if (ftruncate(fd_, static_cast<off_t>(bytes_)) != 0) {
        return Status(Errc::kIo, Errno("ftruncate of a GEM backing file", errno));
      }
      break;
    }
    return Status(err == ENOSPC ? Errc::kNoSpace : Errc::kIo,
                  Errno(("reserving " + std::to_string(bytes_) +
                         " bytes of a GEM backing file in " + describe())
                            .c_str(),
                        err));
  }
  reserved_ = true;
  return Status();
}

Result<std::byte*> ShmemBacking::Map() {
  if (data_ != nullptr) return data_;
  const bool fresh = fd_ < 0 || !reserved_;
  if (fd_ < 0) UTTM_RETURN_IF_ERROR(OpenFile());
  UTTM_RETURN_IF_ERROR(Reserve());
  // Pages coming back from the file, without large folios: one read request for the whole file
  // into the page cache first, instead of the page faults' readahead windows (a small gain:
  // gem_bench swap-in 1.0 -> 1.1 GB/s). With them the fault path reads instead: readahead(2)
  // allocates single pages only (page_cache_ra_unbounded in mm/readahead.c takes the mapping's
  // minimum folio order), while a fault in a VM_HUGEPAGE range reads PMD-sized folios
  // (do_sync_mmap_readahead in mm/filemap.c), 2x faster here.
  if (!fresh && !options_.large_folios) readahead(fd_, 0, bytes_);
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) return Status(Errc::kNoMemory, Errno("mmap of a GEM backing file", errno));
  auto* bytes = static_cast<std::byte*>(p);
  // A hint: EINVAL (a kernel without transparent huge pages) leaves single pages.
  if (options_.large_folios) (void)madvise(p, bytes_, MADV_HUGEPAGE);
  // Fault in first (a read error is reported here), then lock. Sanitizer runtimes turn mlock
  // into a no-op, which is why locking alone is never relied on to fault pages in.
  int err = ShouldFail(FaultPoint::kGemSwapIn) ? EIO : Populate(bytes, bytes_);
  if (err == 0 && options_.lock_pages && mlock(p, bytes_) != 0) {
    ++lock_failures_;  // not allowed to lock (no CAP_IPC_LOCK, over RLIMIT_MEMLOCK): unlocked
  }
  if (err != 0) {
    munmap(p, bytes_);
    return Status(
        err == ENOMEM ? Errc::kNoMemory : Errc::kIo,
        Errno(("reading the pages of a GEM backing file (" + describe() + ") in").c_str(), err));
  }
  data_ = bytes;
  CountMapping(+1);
  if (redirty_) Redirty();
  return data_;
}

void ShmemBacking::Redirty() {
  TouchPages(data_, bytes_);  // a write fault on each clean page dirties it again
  redirty_ = false;
}

void ShmemBacking::CountMapping(int sign) {
  const auto pages = static_cast<std::int64_t>(bytes_ / kPageSize) * sign;
  stats_->GaugeAdd(Stat::kGemPagesHeld, pages);
  if (options_.mapped_pages != nullptr) options_.mapped_pages->fetch_add(pages);
  if (options_.mapped_backings != nullptr) options_.mapped_backings->fetch_add(sign);
}

void ShmemBacking::DropMapping() {
  if (data_ == nullptr) return;
  munmap(data_, bytes_);
  data_ = nullptr;
  CountMapping(-1);
}

Status ShmemBacking::Unmap(bool writeback) {
  if (data_ == nullptr) return Status();
  if (writeback) {
    if (ShouldFail(FaultPoint::kGemWriteback)) {
      return Status(Errc::kIo, "writing a GEM backing file back: injected EIO");
    }
    // Written and waited for, without fdatasync's journal commit: the file is private and
    // unlinked, so only the data must reach the disk before its pages can be dropped.
    if (sync_file_range(fd_, 0, static_cast<off_t>(bytes_),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      const int err = errno;
      Redirty();  // the failed pages are clean now; only the mapping's copy is good
      return Status(Errc::kIo,
                    Errno(("writing a GEM backing file back (" + describe() + ")").c_str(), err));
    }
  }
  DropMapping();
  // Clean pages go now; a memfd's pages stay (tmpfs has nowhere to write them without swap).
  if (writeback) posix_fadvise(fd_, 0, static_cast<off_t>(bytes_), POSIX_FADV_DONTNEED);
  return Status();
}

void ShmemBacking::StartWriteback() {
  if (fd_ < 0) return;
  (void)sync_file_range(fd_, 0, static_cast<off_t>(bytes_), SYNC_FILE_RANGE_WRITE);
}

Status ShmemBacking::FinishWriteback() {
  if (data_ != nullptr) return Status(Errc::kInvalid, "FinishWriteback of a mapped GEM backing");
  if (fd_ < 0) return Status();
  int err = 0;
  if (ShouldFail(FaultPoint::kGemWriteback)) {
    err = EIO;
  } else if (sync_file_range(fd_, 0, static_cast<off_t>(bytes_),
                             SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                 SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
    err = errno;
  }
  if (err != 0) {
    redirty_ = true;
    return Status(Errc::kIo,
                  Errno(("writing a GEM backing file back (" + describe() + ")").c_str(), err));
  }
  posix_fadvise(fd_, 0, static_cast<off_t>(bytes_), POSIX_FADV_DONTNEED);
  return Status();
}

void ShmemBacking::Prefetch() {
  if (fd_ < 0 || data_ != nullptr || !reserved_) return;
  (void)readahead(fd_, 0, bytes_);
}

Status ShmemBacking::Truncate() {
  if (fd_ < 0) return Status();
  if (ShouldFail(FaultPoint::kGemTruncate)) {
    return Status(Errc::kIo, "truncating a GEM backing file: injected EIO");
  }
  // The contents go first, the mapping after: a failed truncate leaves the object whole.
  if (ftruncate(fd_, 0) != 0) {
    return Status(Errc::kIo, Errno("truncating a GEM backing file", errno));
  }
  DropMapping();
  reserved_ = false;
  return Status();
}

std::uint64_t ShmemBacking::CachedPages() const {
  if (fd_ < 0) return 0;
  struct stat st;
  if (fstat(fd_, &st) != 0 || st.st_size == 0) return 0;
  const std::size_t len = static_cast<std::size_t>(st.st_size);
  void* p = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) return 0;
  std::vector<unsigned char> vec((len + kPageSize - 1) / kPageSize);
  std::uint64_t n = 0;
  if (mincore(p, len, vec.data()) == 0) {
    for (unsigned char v : vec) n += v & 1;
  }
  munmap(p, len);
  return n;
}

}  // namespace uttm
