// Copyright (c) uttm developers.
#include "uttm/tt_manager.h"

namespace uttm {

TtManager::TtManager(MemType mem_type, Bytes budget)
    : ResourceManager(mem_type, /*use_tt=*/true, budget.pages_rounded_up().value()),
      budget_(budget) {}

Result<std::unique_ptr<Resource>> TtManager::Alloc(const AllocRequest& req, const Place& place) {
  if (place.mem_type != mem_type()) {
    return Status(Errc::kInvalid, "TT manager asked for another memory type");
  }
  std::uint64_t size = req.size.value();
  const bool temporary = place.has(kPlaceTemporary) || shrinker_bounded();
  std::uint64_t cur = allocated_.load(std::memory_order_relaxed);
  do {
    if (!temporary && cur + size > budget_.value()) {
      return Status(Errc::kNoSpace, "TT budget exhausted");
    }
  } while (!allocated_.compare_exchange_weak(cur, cur + size, std::memory_order_relaxed));
  auto res = std::make_unique<Resource>(this, place, req.size, req.bo);
  res->set_priority(req.priority);
  return res;
}

void TtManager::Free(std::unique_ptr<Resource> res) {
  allocated_.fetch_sub(res->size().value(), std::memory_order_relaxed);
  res.reset();
}

void TtManager::DebugPrint(std::string* out) const {
  *out += "tt: budget " + std::to_string(budget_.value()) +
          (shrinker_bounded() ? " (not a cap: bounded by the shrinker)" : "") + " allocated " +
          std::to_string(allocated().value()) + " bytes; ";
  ResourceManager::DebugPrint(out);
}

}  // namespace uttm
