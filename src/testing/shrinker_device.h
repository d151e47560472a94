// Copyright (c) uttm developers.
//
// shrinker_device.h (tests only): the test device (SYSTEM, TT, VRAM) on a memory context and a
// memfd store of its own, created through a BoShrinker, with the counters in `stats`: the set-up
// of the tests that shrink, map and check objects. Init() builds it; the members are then ready.
#ifndef UTTM_SRC_TESTING_SHRINKER_DEVICE_H_
#define UTTM_SRC_TESTING_SHRINKER_DEVICE_H_

#include <memory>

#include "testing/test_device.h"
#include "uttm/bo_shrinker.h"
#include "uttm/memfd_store.h"
#include "uttm/memory_context.h"
#include "uttm/stats.h"

namespace uttm::testing {

struct ShrinkerDevice {
  // `owns_tt` (BoShrinkerOptions::owns_tt): false for the tests of the legacy split, where the
  // watermark swapout and the shrinker both take the device's page vectors.
  // `with_store`: the backup store to use (its stats should be `stats`); null: a memfd store.
  // `budgets`: the device's budget tree (budget.h), or none.
  Status Init(PageCount vram_pages, bool owns_tt = true,
              std::unique_ptr<BackupStore> with_store = nullptr, BudgetTree* budgets = nullptr) {
    MemoryContextOptions mo;
    mo.stats = &stats;
    memory = std::make_unique<MemoryContext>(mo);
    MemfdStoreOptions so;
    so.stats = &stats;
    so.allow_without_swap = true;
    if (with_store != nullptr) {
      store = std::move(with_store);
    } else {
      UTTM_ASSIGN_OR_RETURN(store, NewMemfdStore(so));
    }
    dev = std::make_unique<TestDevice>(
        vram_pages, Bytes(64 << 20), memory.get(), store.get(),
        [&](DeviceFuncs* driver) {
          shrinker = std::make_unique<BoShrinker>(driver, BoShrinkerOptions{.owns_tt = owns_tt});
          return shrinker->funcs();
        },
        budgets);
    return shrinker->Attach(dev->get());
  }
  // One shrinker scan of up to `nr` pages; its answer.
  std::uint64_t Shrink(std::uint64_t nr = 4096) {
    ShrinkControl sc;
    sc.nr_to_scan = nr;
    return shrinker->Scan(sc);
  }

  Stats stats;
  std::unique_ptr<MemoryContext> memory;
  std::unique_ptr<BackupStore> store;
  std::unique_ptr<BoShrinker> shrinker;  // declared before the device, which uses its funcs
  std::unique_ptr<TestDevice> dev;
};

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_SHRINKER_DEVICE_H_
