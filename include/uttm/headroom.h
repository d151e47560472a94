// Copyright (c) uttm developers.
//
// headroom.h: an outside limit that the allocation path respects (a memory cgroup's limit, say).
//
// uttm's own limits (pages_limit, dma32_pages_limit) count only the pages its page vectors hold.
// The kernel's limit on the process counts everything: the heap, the page pools, a buffered
// backup file's dirty page cache. When the outside limit is the tighter one, a reclaim thread
// that samples it every few milliseconds is too late for an allocation burst, and the kernel's
// OOM killer ends the process. MemoryContext::Charge therefore asks an installed Headroom, after
// its own limits, whether the pages it is about to charge fit; when they do not, it runs direct
// reclaim for the difference and asks again (see memory_context.h).
//
// Thread-safety: implementations must be thread-safe; Charge calls them from any thread with no
// lock of its own held.
#ifndef UTTM_HEADROOM_H_
#define UTTM_HEADROOM_H_

#include <cstdint>
#include <string>

#include "uttm/export.h"

namespace uttm {

class UTTM_EXPORT Headroom {
 public:
  virtual ~Headroom() = default;
  // Bytes that can still be allocated before the outside limit, less a safety margin: 0 at or
  // beyond it, UINT64_MAX when there is no limit (or it cannot be read). `charged_bytes` is what
  // the asking memory context has charged so far (without the charge being decided): an
  // implementation may estimate from its last reading plus the growth of that figure since,
  // unless `fresh` asks for the limit's state as it is now. Cheap when not fresh.
  virtual std::uint64_t AvailableBytes(std::uint64_t charged_bytes, bool fresh) = 0;
  // Names the limit, for error messages ("memory cgroup /sys/fs/cgroup/memory/a, 256 MiB").
  virtual std::string Describe() const = 0;
};

}  // namespace uttm

#endif  // UTTM_HEADROOM_H_
