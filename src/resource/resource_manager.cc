// Copyright (c) uttm developers.
#include "uttm/resource_manager.h"

#include "base/check.h"

namespace uttm {

ResourceManager::~ResourceManager() {
  for (const ListHead& list : lru_) {
    UTTM_CHECK(list.empty(), "resource manager destroyed with resources on its LRU");
  }
}

bool ResourceManager::Intersects(const Resource&, const Place&, Bytes) const { return true; }

bool ResourceManager::Compatible(const Resource&, const Place&, Bytes) const { return true; }

void ResourceManager::DebugPrint(std::string* out) const {
  *out += "mem_type " + std::to_string(mem_type_) + (use_type() ? " enabled" : " disabled") +
          (use_tt_ ? " use_tt" : "") + " size " + std::to_string(size_) + " usage " +
          std::to_string(usage()) + " bytes\n";
}

FenceRef ResourceManager::move_fence() const {
  MutexLock lock(&move_mu_);
  return move_fence_;
}

void ResourceManager::SetMoveFence(FenceRef fence) {
  MutexLock lock(&move_mu_);
  if (move_fence_ && !move_fence_->IsSignaled() && move_fence_->IsLaterOrSame(*fence)) return;
  move_fence_ = std::move(fence);
}

}  // namespace uttm
