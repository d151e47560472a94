// Copyright (c) uttm developers.
//
// host_memory.cc: anonymous and NUMA-bound sources of page-provider regions.
#include "uttm/host_memory.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/check.h"

namespace uttm {
namespace {

constexpr std::uintptr_t kRegionAlign = std::uintptr_t{2} << 20;
constexpr int kMpolBind = 2;  // MPOL_BIND from <linux/mempolicy.h>

// Maps `bytes` of private anonymous memory aligned to 2 MiB: over-reserve by 2 MiB, then trim
// both ends.
Result<std::byte*> MapAligned(std::size_t bytes) {
  const std::size_t map_bytes = bytes + kRegionAlign;
  void* p = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Status(Errc::kNoMemory,
                  std::string("mmap of a page-provider region failed: ") + std::strerror(errno));
  }
  const auto raw = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t base = (raw + kRegionAlign - 1) & ~(kRegionAlign - 1);
  if (base > raw) munmap(p, base - raw);
  const std::uintptr_t end = raw + map_bytes;
  if (end > base + bytes) munmap(reinterpret_cast<void*>(base + bytes), end - (base + bytes));
  return reinterpret_cast<std::byte*>(base);
}

class AnonymousHostMemory : public HostMemory {
 public:
  explicit AnonymousHostMemory(bool huge_pages) : huge_pages_(huge_pages) {}
  std::string name() const override { return "anonymous"; }
  Result<std::byte*> MapRegion(std::size_t bytes) override {
    UTTM_ASSIGN_OR_RETURN(std::byte * base, MapAligned(bytes));
    if (huge_pages_) madvise(base, bytes, MADV_HUGEPAGE);
    return base;
  }
  void UnmapRegion(std::byte* base, std::size_t bytes) override { munmap(base, bytes); }

 private:
  const bool huge_pages_;
};

class NumaHostMemory : public AnonymousHostMemory {
 public:
  NumaHostMemory(int node, bool huge_pages) : AnonymousHostMemory(huge_pages), node_(node) {}
  std::string name() const override { return "numa:" + std::to_string(node_); }
  Result<std::byte*> MapRegion(std::size_t bytes) override {
    UTTM_ASSIGN_OR_RETURN(std::byte * base, AnonymousHostMemory::MapRegion(bytes));
    if (Status s = Bind(base, bytes); !s.ok()) {
      UnmapRegion(base, bytes);
      return s;
    }
    return base;
  }
  // Binds [base, base + bytes) to the node; also used to probe that mbind works at all.
  Status Bind(std::byte* base, std::size_t bytes) const {
    std::vector<unsigned long> mask(static_cast<std::size_t>(node_) / (8 * sizeof(long)) + 1, 0);
    mask[static_cast<std::size_t>(node_) / (8 * sizeof(long))] |=
        1UL << (static_cast<unsigned>(node_) % (8 * sizeof(long)));
    const unsigned long maxnode = mask.size() * 8 * sizeof(long);
    if (syscall(SYS_mbind, base, bytes, kMpolBind, mask.data(), maxnode, 0) != 0) {
      return Status(Errc::kInvalid, "mbind(MPOL_BIND) to NUMA node " + std::to_string(node_) +
                                        " failed: " + std::strerror(errno));
    }
    return Status();
  }

 private:
  const int node_;
};

// Whether `node` is in the kernel's list of online nodes ("0", "0-3", "0,2-5").
bool NodeOnline(int node) {
  std::ifstream in("/sys/devices/system/node/online");
  std::string list;
  if (!std::getline(in, list)) return node == 0;  // no NUMA sysfs: a single node 0
  std::stringstream ss(list);
  std::string part;
  while (std::getline(ss, part, ',')) {
    const std::size_t dash = part.find('-');
    try {
      const int lo = std::stoi(part.substr(0, dash));
      const int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
      if (node >= lo && node <= hi) return true;
    } catch (const std::exception&) {
      return false;
    }
  }
  return false;
}

}  // namespace

void HostMemory::Discard(std::byte* addr, std::size_t bytes) {
  const int rc = madvise(addr, bytes, MADV_DONTNEED);
  UTTM_CHECK(rc == 0, "madvise(MADV_DONTNEED) failed on a page-provider range");
}

std::shared_ptr<HostMemory> MakeAnonymousHostMemory(bool huge_pages) {
  return std::make_shared<AnonymousHostMemory>(huge_pages);
}

Result<std::shared_ptr<HostMemory>> MakeNumaHostMemory(int node, bool huge_pages) {
  if (node < 0 || node > 1023) {
    return Status(Errc::kInvalid, "NUMA node " + std::to_string(node) + " is out of range");
  }
  if (!NodeOnline(node)) {
    return Status(Errc::kInvalid, "NUMA node " + std::to_string(node) +
                                      " is not online (/sys/devices/system/node/online)");
  }
  auto memory = std::make_shared<NumaHostMemory>(node, huge_pages);
  // Probe once on a small region so that a kernel without NUMA support is reported here, not at
  // the first allocation.
  UTTM_ASSIGN_OR_RETURN(std::byte * probe, MapAligned(kRegionAlign));
  Status s = memory->Bind(probe, kRegionAlign);
  munmap(probe, kRegionAlign);
  UTTM_RETURN_IF_ERROR(s);
  return std::shared_ptr<HostMemory>(std::move(memory));
}

}  // namespace uttm
