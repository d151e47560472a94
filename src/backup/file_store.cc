// Copyright (c) uttm developers.
#include "uttm/file_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backup/batch_io.h"
#include "backup/fd_store.h"
#include "uttm/units.h"

namespace uttm {
namespace internal {
namespace {

class FileStore final : public FdStore {
 public:
  FileStore(int fd, const FileStoreOptions& options, std::string directory, std::uint64_t max_slots,
            Stats* stats, std::string label)
      : FdStore(fd, options.o_direct, max_slots, stats, label + " store",
                options.parallel_checksum),
        directory_(std::move(directory)),
        reserve_bytes_(options.reserve_bytes),
        label_(std::move(label)) {}

  // Moves through `io` from now on (null: one chunk at a time, `fallback` says why).
  void UseBatchIo(std::unique_ptr<BatchIo> io, std::string fallback) {
    set_batch_io(std::move(io));
    fallback_ = std::move(fallback);
  }

  std::uint64_t BytesAvailable() const override {
    return std::min(FileSystemBytesLeft(), CapacityBytesLeft());
  }

  Status Flush() override {
    while (::fdatasync(fd()) != 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      stats()->Add(Stat::kStoreWriteErrors);
      return Status(Errc::kIo,
                    label_ + " store " + directory_ + ": fdatasync failed: " + std::strerror(err));
    }
    if (!o_direct()) (void)::posix_fadvise(fd(), 0, 0, POSIX_FADV_DONTNEED);
    return Status::Ok();
  }

  std::string Describe() const override {
    std::string d = label_ + ":" + directory_;
    if (batch_io() != nullptr) return d + " (O_DIRECT, " + batch_io()->Describe() + ")";
    if (!fallback_.empty()) return d + " (O_DIRECT, " + fallback_ + ")";
    return d + (o_direct() ? " (O_DIRECT)" : "");
  }

 protected:
  Result<std::uint64_t> Admit(std::uint64_t n) override {
    if (reserve_bytes_ == 0) return n;
    const std::uint64_t pages = FileSystemBytesLeft() >> kPageShift;
    if (pages == 0) {
      return Status(Errc::kNoSpace, label_ + " store " + directory_ +
                                        ": the file system is down to " + "its reserve of " +
                                        std::to_string(reserve_bytes_) + " bytes");
    }
    return std::min(n, pages);
  }

  void BeforeRead(std::uint64_t offset, std::uint64_t len) override {
    if (!o_direct()) {
      (void)::posix_fadvise(fd(), static_cast<off_t>(offset), static_cast<off_t>(len),
                            POSIX_FADV_WILLNEED);
    }
  }

  void AfterWrite(std::uint64_t offset, std::uint64_t len, const BackupFlags& flags) override {
    // Start writeback now so the page cache holding the backup can be reclaimed soon; async.
    if (flags.writeback && !o_direct()) {
      (void)::sync_file_range(fd(), static_cast<off_t>(offset), static_cast<off_t>(len),
                              SYNC_FILE_RANGE_WRITE);
    }
  }

 private:
  // Free bytes on the file system for unprivileged users, minus the reserve.
  std::uint64_t FileSystemBytesLeft() const {
    struct statvfs vfs {};
    if (::fstatvfs(fd(), &vfs) != 0) return 0;
    const std::uint64_t free = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    return free > reserve_bytes_ ? free - reserve_bytes_ : 0;
  }

  const std::string directory_;
  const std::uint64_t reserve_bytes_;
  const std::string label_;  // "file", "uring"
  std::string fallback_;     // why a store meant for batched I/O moves one chunk at a time
};

Status OpenError(const std::string& label, const std::string& dir, const char* what, int err) {
  return Status(ErrcFromErrno(err),
                label + " store " + dir + ": " + what + " failed: " + std::strerror(err));
}

// Checks that one aligned page can be written and read back through `fd` (O_DIRECT may be
// accepted by open() and refused by the first I/O), then punches it out again.
Status ProbeDirectIo(int fd, const std::string& label, const std::string& dir) {
  void* buf = nullptr;
  if (::posix_memalign(&buf, kPageSize, kPageSize) != 0) {
    return Status(Errc::kNoMemory, label + " store: no memory for the O_DIRECT probe");
  }
  std::memset(buf, 0, kPageSize);
  int err = 0;
  if (::pwrite(fd, buf, kPageSize, 0) != static_cast<ssize_t>(kPageSize)) err = errno ? errno : EIO;
  if (err == 0 && ReadFully(fd, 0, static_cast<std::byte*>(buf), kPageSize) != 0) err = EINVAL;
  std::free(buf);
  (void)::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, kPageSize);
  (void)::ftruncate(fd, 0);
  if (err == EINVAL) {
    return Status(Errc::kNotSupported, label + " store " + dir +
                                           ": the file system refuses O_DIRECT I/O; use the "
                                           "buffered mode (drop the direct option)");
  }
  if (err != 0) return OpenError(label, dir, "O_DIRECT probe write", err);
  return Status::Ok();
}

Result<int> OpenPrivateFile(const std::string& label, const std::string& dir,
                            const FileStoreOptions& options) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Status(Errc::kNotFound, label + " store: directory " + dir + " does not exist");
    }
    return OpenError(label, dir, "stat", err);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status(Errc::kInvalid, label + " store: " + dir + " is not a directory");
  }
  const int direct = options.o_direct ? O_DIRECT : 0;
  int fd = -1;
  if (options.use_o_tmpfile) {
    fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC | direct, 0600);
    if (fd < 0 && errno == EINVAL && direct != 0) {
      // Is it O_DIRECT that the file system refuses?
      int probe = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
      if (probe >= 0) {
        ::close(probe);
        return Status(Errc::kNotSupported, label + " store " + dir +
                                               ": the file system refuses O_DIRECT; use the "
                                               "buffered mode (drop the direct option)");
      }
    }
    if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
      return OpenError(label, dir, "open(O_TMPFILE)", errno);
    }
  }
  if (fd < 0) {
    // No O_TMPFILE here: a unique name, unlinked at once (mkstemp creates it 0600).
    std::string path = dir + "/.uttm-backup-XXXXXX";
    std::vector<char> name(path.begin(), path.end());
    name.push_back('\0');
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) return OpenError(label, dir, "mkostemp", errno);
    if (::unlink(name.data()) != 0) {
      const int err = errno;
      ::close(fd);
      return OpenError(label, dir, "unlink of the temporary name", err);
    }
    if (direct != 0 && ::fcntl(fd, F_SETFL, O_DIRECT) != 0) {
      ::close(fd);
      return Status(Errc::kNotSupported, label + " store " + dir +
                                             ": the file system refuses O_DIRECT; use the "
                                             "buffered mode (drop the direct option)");
    }
  }
  (void)::fchmod(fd, 0600);  // O_TMPFILE honours the umask; make sure of 0600 (never wider).
  if (options.o_direct) {
    Status probe = ProbeDirectIo(fd, label, dir);
    if (!probe.ok()) {
      ::close(fd);
      return probe;
    }
  }
  return fd;
}

}  // namespace
}  // namespace internal

namespace internal {

Result<std::unique_ptr<BackupStore>> NewFileStoreWithIo(
    const FileStoreOptions& options, const std::string& label,
    const std::function<std::unique_ptr<BatchIo>(int fd, std::string* fallback)>& make_io) {
  if (options.capacity_bytes != 0 && options.capacity_bytes < kPageSize) {
    return Status(Errc::kInvalid, label + " store: capacity_bytes " +
                                      std::to_string(options.capacity_bytes) +
                                      " is below one page (4096); use 0 for no cap");
  }
  std::string dir = options.directory;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    dir = (tmp != nullptr && tmp[0] != '\0') ? tmp : "/tmp";
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  UTTM_ASSIGN_OR_RETURN(int fd, OpenPrivateFile(label, dir, options));
  const std::uint64_t max_slots =
      options.capacity_bytes == 0 ? kMaxSlotsUnlimited : options.capacity_bytes >> kPageShift;
  Stats* stats = options.stats != nullptr ? options.stats : &Stats::Default();
  auto store = std::make_unique<FileStore>(fd, options, std::move(dir), max_slots, stats, label);
  if (make_io) {
    std::string fallback;
    std::unique_ptr<BatchIo> io = make_io(fd, &fallback);
    store->UseBatchIo(std::move(io), std::move(fallback));
  }
  return std::unique_ptr<BackupStore>(std::move(store));
}

}  // namespace internal

Result<std::unique_ptr<BackupStore>> NewFileStore(const FileStoreOptions& options) {
  return internal::NewFileStoreWithIo(options, "file", nullptr);
}

}  // namespace uttm
