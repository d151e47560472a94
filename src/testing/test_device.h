// Copyright (c) uttm developers.
//
// test_device.h (internal): the driver the object tests run against, modelled on TTM's KUnit
// helpers (ttm_kunit_helpers.c, ttm_mock_manager.c). Everything is real: VRAM-like types are
// range managers over real memory arenas, page vectors get real pages, copies copy real bytes.
//
// Memory types: SYSTEM, TT (budgeted page vectors), VRAM (range manager + arena), and two extra
// types MOCK1 = kMemPriv + 1 and MOCK2 = kMemPriv + 2 that tests install as needed.
// Moves (as ttm_dev_funcs' mock_move): from nothing or an unpopulated SYSTEM object → null move;
// VRAM → SYSTEM asks for a multihop through TT (TEMPORARY); SYSTEM <-> TT → null move; anything
// else → memcpy. Eviction (mock_evict_flags): VRAM and SYSTEM → SYSTEM (FALLBACK), TT → MOCK2,
// MOCK1 → empty placement (purge). `bad_evict` makes every eviction go to MOCK1.
#ifndef UTTM_SRC_TESTING_TEST_DEVICE_H_
#define UTTM_SRC_TESTING_TEST_DEVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>

#include "uttm/buffer_object.h"
#include "uttm/device.h"
#include "uttm/device_funcs.h"
#include "uttm/range_manager.h"
#include "uttm/resource_manager.h"

namespace uttm::testing {

inline constexpr MemType kMemMock1 = kMemPriv + 1;
inline constexpr MemType kMemMock2 = kMemPriv + 2;

// A range manager whose pages are a real anonymous mapping the CPU can read and write.
class ArenaManager : public RangeManager {
 public:
  ArenaManager(MemType type, PageCount pages);
  ~ArenaManager() override;
  std::byte* base() const { return base_; }

 private:
  std::byte* base_;
  std::size_t bytes_;
};

// A manager whose every allocation fails with a fixed code (TTM's "bad" (-ENOSPC) and "busy"
// (-EBUSY) mock managers): real behaviour of a full or broken memory type.
class FailingManager : public ResourceManager {
 public:
  FailingManager(MemType type, Errc code) : ResourceManager(type, false, 0), code_(code) {}
  Result<std::unique_ptr<Resource>> Alloc(const AllocRequest&, const Place&) override {
    return Status(code_, "this manager never has room");
  }
  void Free(std::unique_ptr<Resource>) override {}
  bool Compatible(const Resource&, const Place&, Bytes) const override { return true; }

 private:
  Errc code_;
};

class TestDriver : public DeviceFuncs {
 public:
  bool bad_evict = false;
  std::atomic<int> moves{0};  // concurrent tests move objects from several threads

  void EvictFlags(const BufferObject& bo, Placement* placement) override;
  Status Move(BufferObject& bo, bool evict, OperationContext& ctx,
              std::unique_ptr<Resource>& new_res, Place* hop) override;
  std::byte* AccessMemory(const Resource& res) override;
};

// A device with SYSTEM, TT (budget `tt_budget`) and VRAM (`vram_pages` pages) installed.
struct TestDevice {
  // `wrap` (optional) returns the funcs the device is created with, given the test driver (for
  // decorators such as BoShrinker::funcs()).
  explicit TestDevice(PageCount vram_pages = PageCount(256), Bytes tt_budget = Bytes(64 << 20),
                      MemoryContext* memory = nullptr, BackupStore* store = nullptr,
                      const std::function<DeviceFuncs*(DeviceFuncs*)>& wrap = {},
                      BudgetTree* budgets = nullptr);
  ~TestDevice();

  Device* get() const { return device.get(); }
  Device* operator->() const { return device.get(); }
  ArenaManager* vram() const;
  // Installs an arena manager for `type` with `pages` pages.
  ArenaManager* AddArena(MemType type, PageCount pages);

  TestDriver driver;
  std::unique_ptr<Device> device;
};

// Places and placements used by the tests.
Place PlaceOf(MemType type, std::uint32_t flags = 0);
Placement PlacementOf(MemType type, std::uint32_t flags = 0);

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_TEST_DEVICE_H_
