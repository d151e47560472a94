// Copyright (c) uttm developers.
//
// caching_hook.h: the expensive caching transition of page chunks (x86 set_pages_array_wc/uc/wb).
//
// Page vectors and pools call SetCaching whenever chunks change their Caching attribute: fresh
// provider chunks are kCached and become the vector's caching (staged: one call per run of
// chunks, the "caching divide"), and anything returned to the OS or backed up becomes kCached
// again. The default hook changes nothing in user space but counts the transitions (calls and
// pages), so tests and benchmarks can see how often the expensive step would run. A device
// supplies its own hook.
//
// Thread-safety: SetCaching may be called from any thread concurrently.
#ifndef UTTM_CACHING_HOOK_H_
#define UTTM_CACHING_HOOK_H_

#include <atomic>
#include <cstdint>
#include <span>

#include "uttm/caching.h"
#include "uttm/export.h"
#include "uttm/page_provider.h"

namespace uttm {

class UTTM_EXPORT CachingHook {
 public:
  virtual ~CachingHook() = default;

  // Changes `chunks` from caching `from` to `to` (from != to). Must not fail.
  virtual void SetCaching(std::span<const PageChunk> chunks, Caching from, Caching to);

  // Calls and pages transitioned so far.
  std::uint64_t transitions() const { return transitions_.load(std::memory_order_relaxed); }
  std::uint64_t pages_transitioned() const { return pages_.load(std::memory_order_relaxed); }

 protected:
  void Count(std::span<const PageChunk> chunks);

 private:
  std::atomic<std::uint64_t> transitions_{0};
  std::atomic<std::uint64_t> pages_{0};
};

}  // namespace uttm

#endif  // UTTM_CACHING_HOOK_H_
