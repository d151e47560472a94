// Copyright (c) uttm developers.
//
// resource_manager.h: allocates resources in one memory type (TTM's ttm_resource_manager).
//
// A manager is a small abstract class: Alloc / Free / Intersects / Compatible / DebugPrint. The
// base class keeps what every manager shares: whether the type is in use, whether it is backed by
// page vectors (use_tt), its size, its usage, and its LRU lists (one per priority), which the
// device's LRU lock protects.
//
// Contract of Alloc: returns a new Resource for the request, kNoSpace when it cannot fit (the
// caller may evict and retry; kAgain is treated the same), or another error that aborts the
// validation. It locks its own state and never calls back into the device or buffer objects.
//
// Thread-safety: Alloc/Free/Intersects/Compatible are thread-safe (managers lock internally).
// lru() and usage are guarded by the device LRU lock (see Lru).
#ifndef UTTM_RESOURCE_MANAGER_H_
#define UTTM_RESOURCE_MANAGER_H_

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "uttm/export.h"
#include "uttm/fence.h"
#include "uttm/list_link.h"
#include "uttm/mutex.h"
#include "uttm/placement.h"
#include "uttm/resource.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm {

// What a manager needs to know about the buffer object it allocates for.
struct AllocRequest {
  Bytes size;
  // Alignment of the start in pages (0 or 1: none).
  std::uint64_t page_alignment = 0;
  // Owner recorded in the resource (may be null for tests and bounce resources).
  BufferObject* bo = nullptr;
  unsigned priority = 0;
};

class UTTM_EXPORT ResourceManager {
 public:
  // `size` is in the manager's own units (pages for range managers; ignored by SYSTEM).
  ResourceManager(MemType mem_type, bool use_tt, std::uint64_t size)
      : mem_type_(mem_type), use_tt_(use_tt), size_(size) {}
  virtual ~ResourceManager();
  ResourceManager(const ResourceManager&) = delete;
  ResourceManager& operator=(const ResourceManager&) = delete;

  // Allocates a resource for `req` that satisfies `place`. See the file comment.
  virtual Result<std::unique_ptr<Resource>> Alloc(const AllocRequest& req, const Place& place) = 0;
  // Returns the space of `res` (which this manager allocated).
  virtual void Free(std::unique_ptr<Resource> res) = 0;
  // Would evicting `res` help an allocation of `size` bytes at `place`? (Default: yes.)
  virtual bool Intersects(const Resource& res, const Place& place, Bytes size) const;
  // May `res` stay where it is for `place`? (Default: yes; range checks are the caller's.)
  virtual bool Compatible(const Resource& res, const Place& place, Bytes size) const;
  // Appends a human-readable description of the manager's state (debugfs-like).
  virtual void DebugPrint(std::string* out) const;

  MemType mem_type() const { return mem_type_; }
  bool use_tt() const { return use_tt_; }
  std::uint64_t size() const { return size_; }
  bool use_type() const { return use_type_.load(std::memory_order_acquire); }
  void set_use_type(bool enabled) { use_type_.store(enabled, std::memory_order_release); }

  // Bytes of resources currently allocated (maintained by Lru under its lock; readable racily).
  std::uint64_t usage() const { return usage_.load(std::memory_order_relaxed); }

  // The LRU list of `priority`. REQUIRES: the device LRU lock is held.
  ListHead& lru(unsigned priority) { return lru_[priority]; }

  // The fence of the last pipelined eviction out of this manager (TTM's man->move): space freed
  // by it may be reused only after it signals. Null when none is pending.
  FenceRef move_fence() const UTTM_EXCLUDES(move_mu_);
  // Records `fence` unless the current one completes later (same context, higher seqno).
  void SetMoveFence(FenceRef fence) UTTM_EXCLUDES(move_mu_);

 private:
  friend class Lru;

  const MemType mem_type_;
  const bool use_tt_;
  const std::uint64_t size_;
  std::atomic<bool> use_type_{false};
  std::atomic<std::uint64_t> usage_{0};
  std::array<ListHead, kNumPriorities> lru_;
  mutable Mutex move_mu_;
  FenceRef move_fence_ UTTM_GUARDED_BY(move_mu_);
};

}  // namespace uttm

#endif  // UTTM_RESOURCE_MANAGER_H_
