// Copyright (c) uttm developers.
//
// lru.h: a device's LRU state and the operations on it (TTM's lru_lock, unevictable list and
// the ttm_resource LRU helpers).
//
// Every allocated resource is on exactly one list:
//   * the device's unevictable list, when it is marked unevictable (its buffer object is pinned,
//     or its page vector is swapped out or backed up);
//   * otherwise its manager's list for its priority, inside its bulk-move range if it has one.
// Lists are kept oldest first; "move to tail" marks a resource as most recently used. Walks go
// priority 0 to 3, head to tail, so low priorities and old resources are evicted first.
//
// Locking: one Mutex per device (lock()). It protects the lists, manager usage, bulk-move ranges,
// cursor hitches and each resource's LRU fields. It is never held across blocking work: under it
// only try-locks of reservations are allowed.
#ifndef UTTM_LRU_H_
#define UTTM_LRU_H_

#include "uttm/export.h"
#include "uttm/list_link.h"
#include "uttm/mutex.h"
#include "uttm/resource.h"
#include "uttm/resource_manager.h"

namespace uttm {

class LruBulkMove;

class UTTM_EXPORT Lru {
 public:
  Lru() = default;
  ~Lru();
  Lru(const Lru&) = delete;
  Lru& operator=(const Lru&) = delete;

  Mutex* lock() UTTM_RETURN_CAPABILITY(mu_) { return &mu_; }

  // Files a newly allocated resource as its object stands (ttm_resource_init, which reads the
  // object's pin count and priority): the resource takes `priority` and is marked unevictable iff
  // `pinned`; it goes to the tail of the unevictable list when pinned, else of its manager's list
  // for `priority` (kInvalid-free: priority is clamped to kNumPriorities - 1); its size is added
  // to the manager's usage, and it joins its bulk move if it has one and is evictable
  // (ttm_resource_add_bulk_move).
  void AddResource(Resource* res, unsigned priority, bool pinned) UTTM_REQUIRES(mu_);
  // Takes a resource off every list and subtracts its usage (ttm_resource_fini + del_bulk_move).
  void RemoveResource(Resource* res) UTTM_REQUIRES(mu_);
  // Marks the resource most recently used: tail of its list or of its bulk range.
  void MoveToTail(Resource* res) UTTM_REQUIRES(mu_);
  // Changes whether the resource is unevictable, moving it between lists (to the tail) and in or
  // out of its bulk range. No-op when unchanged (the resource keeps its place, so a walk that
  // failed on it does not meet it again at the tail).
  void SetUnevictable(Resource* res, bool unevictable) UTTM_REQUIRES(mu_);
  // Changes the resource's priority (moves it to the tail of the new list).
  void SetPriority(Resource* res, unsigned priority) UTTM_REQUIRES(mu_);
  // Moves the resource into `bulk` (or out, when null), keeping bulk ranges contiguous.
  void SetBulkMove(Resource* res, LruBulkMove* bulk) UTTM_REQUIRES(mu_);

  // The device-wide list of unevictable resources.
  ListHead& unevictable() UTTM_REQUIRES(mu_) { return unevictable_; }

 private:
  friend class LruBulkMove;
  void BulkAdd(Resource* res) UTTM_REQUIRES(mu_);
  void BulkDel(Resource* res) UTTM_REQUIRES(mu_);

  Mutex mu_;
  ListHead unevictable_ UTTM_GUARDED_BY(mu_);
};

}  // namespace uttm

#endif  // UTTM_LRU_H_
