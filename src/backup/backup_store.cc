// Copyright (c) uttm developers.
#include "uttm/backup_store.h"

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

}  // namespace uttm
