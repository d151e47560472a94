// Copyright (c) uttm developers.
#include "uttm/backup_store.h"

#include "uttm/units.h"

namespace uttm {

Result<BackupHandle> BackupStore::BackupPage(const std::byte* src, const BackupFlags& flags) {
  BackupHandle handle;
  Result<std::size_t> stored = BackupPages(src, 1, flags, &handle);
  if (!stored.ok()) return stored.status();
  return handle;
}

Status BackupStore::CopyPage(BackupHandle handle, std::byte* dst, const OperationContext& ctx) {
  return CopyPages(&handle, 1, dst, ctx);
}

namespace {

// Pages from `first` on that follow each other in memory (at least 1).
std::size_t AdjacentRun(const std::byte* const* pages, std::size_t first, std::size_t count) {
  std::size_t run = 1;
  while (first + run < count && pages[first + run] == pages[first] + run * kPageSize) ++run;
  return run;
}

}  // namespace

Result<std::size_t> BackupStore::BackupPageList(const std::byte* const* pages, std::size_t count,
                                                const BackupFlags& flags, BackupHandle* handles) {
  if (count == 0 || pages == nullptr || handles == nullptr) {
    return Status(Errc::kInvalid, "BackupPageList: count 0 or a null page or handle array");
  }
  std::size_t stored = 0;
  while (stored < count) {
    const std::size_t run = AdjacentRun(pages, stored, count);
    Result<std::size_t> r = BackupPages(pages[stored], run, flags, handles + stored);
    if (!r.ok()) {
      if (stored == 0) return r.status();
      break;  // a partial backup: the pages stored so far stay stored
    }
    stored += *r;
    if (*r < run) break;
  }
  return stored;
}

Status BackupStore::CopyPageList(const BackupHandle* handles, std::size_t count,
                                 std::byte* const* dst, const OperationContext& ctx,
                                 std::size_t* copied) {
  if (copied != nullptr) *copied = 0;
  if (count == 0) return Status::Ok();
  if (handles == nullptr || dst == nullptr) {
    return Status(Errc::kInvalid, "CopyPageList: a null handle or destination array");
  }
  std::size_t done = 0;
  while (done < count) {
    const std::size_t run = AdjacentRun(dst, done, count);
    std::size_t n = 0;
    Status s = CopyPages(handles + done, run, dst[done], ctx, &n);
    done += n;
    if (!s.ok()) {
      if (copied != nullptr) *copied = done;
      return s;
    }
  }
  if (copied != nullptr) *copied = done;
  return Status::Ok();
}

}  // namespace uttm
