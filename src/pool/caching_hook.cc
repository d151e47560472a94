// Copyright (c) uttm developers.
#include "uttm/caching_hook.h"

namespace uttm {

void CachingHook::SetCaching(std::span<const PageChunk> chunks, Caching /*from*/, Caching /*to*/) {
  Count(chunks);
}

void CachingHook::Count(std::span<const PageChunk> chunks) {
  std::uint64_t pages = 0;
  for (const PageChunk& c : chunks) pages += c.pages();
  transitions_.fetch_add(1, std::memory_order_relaxed);
  pages_.fetch_add(pages, std::memory_order_relaxed);
}

}  // namespace uttm
