// Copyright (c) uttm developers.
//
// resource.h: one allocation in a memory type (TTM's ttm_resource).
//
// A Resource says where a buffer object's contents live: which memory type, which range of it
// (in pages), with which placement flags. Managers create resources (and may subclass Resource
// to keep their own allocation data) and free them. While allocated, a resource sits on exactly
// one LRU list: its manager's list for its priority, a bulk-move range inside that list, or the
// device's unevictable list (pinned, or its page vector is swapped or backed up).
//
// Thread-safety: the fields set at construction are constant. The LRU link, `bo`, `priority`,
// `bulk_move` and `unevictable` are guarded by the owning device's LRU lock.
#ifndef UTTM_RESOURCE_H_
#define UTTM_RESOURCE_H_

#include <cstdint>

#include "uttm/budget.h"
#include "uttm/caching.h"
#include "uttm/list_link.h"
#include "uttm/placement.h"
#include "uttm/units.h"

namespace uttm {

class BufferObject;
class LruBulkMove;
class ResourceManager;

// Tag and node kinds of the LRU lists: resources and cursor hitches share them.
struct LruTag {};
inline constexpr std::uint8_t kLruResource = 1;
inline constexpr std::uint8_t kLruHitch = 2;

// How the CPU reaches a resource (TTM's ttm_bus_placement).
struct ResourceBus {
  std::uint64_t offset = 0;
  bool is_iomem = false;
  Caching caching = Caching::kCached;
};

class Resource : public ListLink<LruTag> {
 public:
  // `start` in pages within the manager; `size` is the buffer object's size in bytes.
  Resource(ResourceManager* manager, const Place& place, Bytes size, BufferObject* bo)
      : ListLink<LruTag>(kLruResource),
        manager_(manager),
        mem_type_(place.mem_type),
        placement_flags_(place.flags),
        size_(size),
        bo_(bo) {}
  virtual ~Resource() = default;
  Resource(const Resource&) = delete;
  Resource& operator=(const Resource&) = delete;

  ResourceManager* manager() const { return manager_; }
  MemType mem_type() const { return mem_type_; }
  std::uint32_t placement_flags() const { return placement_flags_; }
  Bytes size() const { return size_; }
  PageCount num_pages() const { return size_.pages_rounded_up(); }
  // First page of the allocation inside the manager's range (0 for managers without ranges).
  std::uint64_t start() const { return start_; }
  void set_start(std::uint64_t start) { start_ = start; }
  ResourceBus& bus() { return bus_; }
  const ResourceBus& bus() const { return bus_; }

  // The budget charge this resource holds (budget.h): its size in its region, charged to its
  // object's client when it was allocated; released when the resource is freed.
  const BudgetCharge& charge() const { return charge_; }
  void set_charge(BudgetCharge charge) { charge_ = std::move(charge); }
  void ReleaseCharge() { charge_.Release(); }

  // --- Guarded by the device LRU lock ---
  // Weak back-pointer to the owning buffer object (null once released).
  BufferObject* bo() const { return bo_; }
  void set_bo(BufferObject* bo) { bo_ = bo; }
  unsigned priority() const { return priority_; }
  void set_priority(unsigned p) { priority_ = p; }
  LruBulkMove* bulk_move() const { return bulk_move_; }
  void set_bulk_move(LruBulkMove* bulk) { bulk_move_ = bulk; }
  bool unevictable() const { return unevictable_; }
  void set_unevictable(bool u) { unevictable_ = u; }

  // The resource a node of an LRU list is, or null for another kind of node (a cursor's hitch).
  static Resource* FromLruNode(ListNode* n) {
    return (n == nullptr || n->kind() != kLruResource)
               ? nullptr
               : static_cast<Resource*>(static_cast<ListLink<LruTag>*>(n));
  }
  ListNode* lru_node() { return static_cast<ListLink<LruTag>*>(this); }

 private:
  ResourceManager* const manager_;
  const MemType mem_type_;
  const std::uint32_t placement_flags_;
  const Bytes size_;
  std::uint64_t start_ = 0;
  ResourceBus bus_;
  BudgetCharge charge_;

  BufferObject* bo_;
  unsigned priority_ = 0;
  LruBulkMove* bulk_move_ = nullptr;
  bool unevictable_ = false;
};

}  // namespace uttm

#endif  // UTTM_RESOURCE_H_
