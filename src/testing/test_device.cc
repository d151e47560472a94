// Copyright (c) uttm developers.
#include "testing/test_device.h"

#include <sys/mman.h>

#include "base/check.h"
#include "uttm/tt_manager.h"

namespace uttm::testing {

ArenaManager::ArenaManager(MemType type, PageCount pages)
    : RangeManager(type, pages), bytes_(pages.in_bytes().value()) {
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  UTTM_CHECK(p != MAP_FAILED, "could not map a VRAM arena");
  base_ = static_cast<std::byte*>(p);
}

ArenaManager::~ArenaManager() { munmap(base_, bytes_); }

void TestDriver::EvictFlags(const BufferObject& bo, Placement* placement) {
  if (bad_evict) {
    *placement = PlacementOf(kMemMock1);
    return;
  }
  switch (bo.resource()->mem_type()) {
    case kMemVram:
    case kMemSystem:
      *placement = PlacementOf(kMemSystem, kPlaceFallback);
      break;
    case kMemTt:
      *placement = PlacementOf(kMemMock2);
      break;
    case kMemMock1:
      *placement = Placement();
      break;
    default:
      *placement = PlacementOf(kMemSystem);
      break;
  }
}

Status TestDriver::Move(BufferObject& bo, bool, OperationContext& ctx,
                        std::unique_ptr<Resource>& new_res, Place* hop) {
  ++moves;
  bo.resv()->AssertHeld();  // the core calls Move with the reservation held
  const Resource* old = bo.resource();
  MemType to = new_res->mem_type();
  if (old == nullptr || (old->mem_type() == kMemSystem && bo.tt() == nullptr)) {
    // Nothing to copy from but an unpopulated (cleared) page vector, if any: page-vector domains
    // take it as it is, device memory is written (zeroes, or CPU-written pages) by the memcpy
    // move, so memory a freed object left there never shows through.
    if (new_res->manager()->use_tt()) {
      bo.MoveNull(std::move(new_res));
      return Status();
    }
    return bo.MoveMemcpy(ctx, std::move(new_res));
  }
  if (old->mem_type() == kMemVram && to == kMemSystem) {
    *hop = PlaceOf(kMemTt, kPlaceTemporary);
    return Status(Errc::kMultihop, "VRAM to SYSTEM goes through TT");
  }
  if ((old->mem_type() == kMemSystem && to == kMemTt) ||
      (old->mem_type() == kMemTt && to == kMemSystem)) {
    bo.MoveNull(std::move(new_res));
    return Status();
  }
  return bo.MoveMemcpy(ctx, std::move(new_res));
}

std::byte* TestDriver::AccessMemory(const Resource& res) {
  auto* arena = dynamic_cast<ArenaManager*>(res.manager());
  if (arena == nullptr) return nullptr;
  return arena->base() + res.start() * kPageSize;
}

TestDevice::TestDevice(PageCount vram_pages, Bytes tt_budget, MemoryContext* memory,
                       BackupStore* store, const std::function<DeviceFuncs*(DeviceFuncs*)>& wrap,
                       BudgetTree* budgets) {
  DeviceOptions opts;
  opts.budgets = budgets;
  opts.name = "test";
  opts.memory = memory;
  opts.backup_store = store;
  auto dev = Device::Create(wrap ? wrap(&driver) : &driver, opts);
  UTTM_CHECK(dev.ok(), "test device creation failed");
  device = std::move(dev).value();
  UTTM_CHECK(device->SetManager(std::make_unique<TtManager>(kMemTt, tt_budget)).ok(), "tt");
  AddArena(kMemVram, vram_pages);
}

TestDevice::~TestDevice() { device.reset(); }

ArenaManager* TestDevice::vram() const {
  return static_cast<ArenaManager*>(device->manager(kMemVram));
}

ArenaManager* TestDevice::AddArena(MemType type, PageCount pages) {
  auto man = std::make_unique<ArenaManager>(type, pages);
  ArenaManager* raw = man.get();
  UTTM_CHECK(device->SetManager(std::move(man)).ok(), "arena manager");
  return raw;
}

Place PlaceOf(MemType type, std::uint32_t flags) {
  Place p;
  p.mem_type = type;
  p.flags = flags;
  return p;
}

Placement PlacementOf(MemType type, std::uint32_t flags) { return Placement{PlaceOf(type, flags)}; }

}  // namespace uttm::testing
