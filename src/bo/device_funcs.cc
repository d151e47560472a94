// Copyright (c) uttm developers.
#include "uttm/device_funcs.h"

#include "uttm/buffer_object.h"

namespace uttm {

Result<std::unique_ptr<PageVector>> DeviceFuncs::TtCreate(BufferObject& bo,
                                                          std::uint32_t page_flags) {
  PageVectorOptions opts;
  opts.size = bo.size();
  opts.caching = bo.caching();
  opts.flags = page_flags;
  auto tt = PageVector::Create(&bo.device().memory(), opts);
  if (tt.ok() && bo.device().backup_store() != nullptr) {
    (*tt)->AttachBackupStore(bo.device().backup_store());
  }
  return tt;
}

Status DeviceFuncs::TtPopulate(BufferObject&, PageVector& tt, OperationContext& ctx) {
  if (tt.is_backed_up()) return tt.Restore(ctx);
  return tt.Populate(ctx);
}

void DeviceFuncs::TtUnpopulate(BufferObject&, PageVector& tt) { tt.Unpopulate(); }

bool DeviceFuncs::EvictionValuable(const BufferObject& bo, const Place& place) {
  const Resource* res = bo.resource();
  if (res == nullptr) return false;
  if (res->mem_type() == kMemSystem) return true;
  return res->manager()->Intersects(*res, place, bo.size());
}

std::byte* DeviceFuncs::AccessMemory(const Resource&) { return nullptr; }
void DeviceFuncs::SwapNotify(BufferObject&) {}
void DeviceFuncs::ReleaseNotify(BufferObject&) {}
void DeviceFuncs::DeleteMemNotify(BufferObject&) {}
void DeviceFuncs::MadviseNotify(BufferObject&) {}

void DeviceFuncs::PinNotify(BufferObject&) {}

}  // namespace uttm
