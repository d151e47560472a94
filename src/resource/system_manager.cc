// Copyright (c) uttm developers.
#include "uttm/system_manager.h"

namespace uttm {

Result<std::unique_ptr<Resource>> SystemManager::Alloc(const AllocRequest& req,
                                                       const Place& place) {
  if (place.mem_type != mem_type()) {
    return Status(Errc::kInvalid, "SYSTEM manager asked for another memory type");
  }
  auto res = std::make_unique<Resource>(this, place, req.size, req.bo);
  res->set_priority(req.priority);
  return res;
}

void SystemManager::Free(std::unique_ptr<Resource> res) { res.reset(); }

void SystemManager::DebugPrint(std::string* out) const {
  *out += "system: ";
  ResourceManager::DebugPrint(out);
}

}  // namespace uttm
