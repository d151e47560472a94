// Copyright (c) uttm developers.
//
// host_memory.h: where the page provider's memory comes from, and hooks on its regions.
//
// The page provider (page_provider.h) carves 4 KiB pages out of large regions of host memory.
// HostMemory is the source of those regions: by default private anonymous memory
// (AnonymousHostMemory, transparent huge pages requested), or memory bound to one NUMA node
// (NumaHostMemory: mbind(MPOL_BIND), so a device attached to that node reads local memory). A
// backend with other needs implements the interface (hugetlbfs, device-visible memory).
//
// HostMemoryHooks are called for every region the provider maps and unmaps, whatever its
// source: a device backend registers the region for DMA there (cudaHostRegister-style), and
// unregisters it before it is unmapped. A failing `region_created` hook makes the allocation that
// needed the region fail with kNoMemory naming the hook's error; the region is unmapped again.
//
// Pages move within the address space: freed pages are given back with Discard (they read as
// zeros next time), and a CPU Mapping (mapping.h) moves an object's pages into one contiguous
// range with mremap. A backend that registers memory must therefore register by physical page
// (pinning), not by address range, or not map objects it has handed to the device.
//
// Thread-safety: the provider calls MapRegion, UnmapRegion and the hooks under its own lock, one
// call at a time (hooks must not allocate from the same provider); Discard runs outside it,
// concurrently, on disjoint ranges.
#ifndef UTTM_HOST_MEMORY_H_
#define UTTM_HOST_MEMORY_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "uttm/export.h"
#include "uttm/status.h"

namespace uttm {

class UTTM_EXPORT HostMemory {
 public:
  virtual ~HostMemory() = default;

  // A short name for reports and errors ("anonymous", "numa:0").
  virtual std::string name() const = 0;
  // Maps a region of `bytes` (a multiple of 2 MiB) of readable, writable memory that reads as
  // zeros, aligned to 2 MiB. Address space only where the source allows (MAP_NORESERVE): pages
  // are faulted in when the provider hands them out. kNoMemory when it cannot.
  virtual Result<std::byte*> MapRegion(std::size_t bytes) = 0;
  // Unmaps a region MapRegion returned, whole.
  virtual void UnmapRegion(std::byte* base, std::size_t bytes) = 0;
  // Gives the memory behind [addr, addr + bytes) (page aligned, inside one region) back to the
  // system; the range reads as zeros afterwards. Never fails for a valid range (the default,
  // madvise(MADV_DONTNEED), does not).
  virtual void Discard(std::byte* addr, std::size_t bytes);
};

// Private anonymous memory, MAP_NORESERVE, with MADV_HUGEPAGE when `huge_pages`.
UTTM_EXPORT std::shared_ptr<HostMemory> MakeAnonymousHostMemory(bool huge_pages = true);

// Anonymous memory whose pages come from NUMA node `node` only (mbind MPOL_BIND): a page the
// node cannot supply fails the allocation (kNoMemory), never lands on another node. kInvalid
// when the node does not exist or is offline (/sys/devices/system/node/online), or mbind is not
// available (kernel without NUMA support).
UTTM_EXPORT Result<std::shared_ptr<HostMemory>> MakeNumaHostMemory(int node,
                                                                   bool huge_pages = true);

struct HostMemoryHooks {
  // After a region is mapped, before any page of it is handed out. An error fails the
  // allocation that needed the region.
  std::function<Status(std::byte* base, std::size_t bytes)> region_created = nullptr;
  // Before a region is unmapped (when the provider is destroyed).
  std::function<void(std::byte* base, std::size_t bytes)> region_released = nullptr;
};

}  // namespace uttm

#endif  // UTTM_HOST_MEMORY_H_
