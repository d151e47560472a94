// Copyright (c) uttm developers.
//
// tt_manager.h: a manager for a page-vector-backed memory type with a byte budget (the xe
// TT manager, xe_ttm_sys_mgr): resources have no range; an allocation fails with kNoSpace when it
// would take the type's usage past its budget, so placement evicts or falls back. Temporary
// (multihop bounce) allocations may exceed the budget, as upstream allows, because they are
// released right after the move.
//
// When a driver shrinker owns the TT domain (set_shrinker_bounded, done by BoShrinker::Attach),
// the budget stops being a cap (xe raised its TT manager's size for its shrinker: "drm/xe:
// Increase the XE_PL_TT watermark"): every TT placement fits, and TT memory is bounded by the page
// limit, which a populate over it enforces through direct reclaim, i.e. the shrinker.
//
// Thread-safety: all methods are thread-safe (one atomic counter).
#ifndef UTTM_TT_MANAGER_H_
#define UTTM_TT_MANAGER_H_

#include <atomic>

#include "uttm/resource_manager.h"

namespace uttm {

class UTTM_EXPORT TtManager : public ResourceManager {
 public:
  // `budget` in bytes; `mem_type` is usually kMemTt.
  TtManager(MemType mem_type, Bytes budget);

  Result<std::unique_ptr<Resource>> Alloc(const AllocRequest& req, const Place& place) override;
  void Free(std::unique_ptr<Resource> res) override;
  void DebugPrint(std::string* out) const override;

  Bytes budget() const { return budget_; }
  void set_shrinker_bounded(bool bounded) { shrinker_bounded_.store(bounded); }
  bool shrinker_bounded() const { return shrinker_bounded_.load(); }
  // Bytes currently allocated (including temporary overshoot).
  Bytes allocated() const { return Bytes(allocated_.load(std::memory_order_relaxed)); }

 private:
  const Bytes budget_;
  std::atomic<std::uint64_t> allocated_{0};
  std::atomic<bool> shrinker_bounded_{false};
};

}  // namespace uttm

#endif  // UTTM_TT_MANAGER_H_
