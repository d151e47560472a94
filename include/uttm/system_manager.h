// Copyright (c) uttm developers.
//
// system_manager.h: the SYSTEM memory type's manager (TTM's ttm_sys_manager). It has no range
// and never runs out: a SYSTEM resource only records that the contents live in a page vector
// under uttm's control (use_tt), which the watermark and the shrinkers may back up any time.
//
// Thread-safety: stateless; all methods are thread-safe.
#ifndef UTTM_SYSTEM_MANAGER_H_
#define UTTM_SYSTEM_MANAGER_H_

#include "uttm/resource_manager.h"

namespace uttm {

class UTTM_EXPORT SystemManager : public ResourceManager {
 public:
  SystemManager() : ResourceManager(kMemSystem, /*use_tt=*/true, /*size=*/0) {}

  Result<std::unique_ptr<Resource>> Alloc(const AllocRequest& req, const Place& place) override;
  void Free(std::unique_ptr<Resource> res) override;
  void DebugPrint(std::string* out) const override;
};

}  // namespace uttm

#endif  // UTTM_SYSTEM_MANAGER_H_
