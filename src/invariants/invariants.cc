// Copyright (c) uttm developers.
//
// The whole-system invariant checks of invariants.h: one pass over each device's LRU lists under
// the LRU lock (collecting referenced objects), then one pass over the objects under their
// try-locked reservations, then the totals of the memory context, its pools and its stores.
#include "uttm/invariants.h"

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "uttm/buffer_object.h"
#include "uttm/lru_bulk_move.h"
#include "uttm/page_vector.h"
#include "uttm/resource.h"

namespace uttm {
namespace {

Status Corrupt(const Device& dev, const std::string& what) {
  return Status(Errc::kCorrupt, "device " + dev.name() + ": " + what);
}

std::string Describe(const Resource& res) {
  return "resource of mem type " + std::to_string(res.mem_type()) + " at page " +
         std::to_string(res.start());
}

// What the page vectors of the checked devices hold, summed.
struct Totals {
  std::uint64_t charged_pages = 0;
  std::uint64_t dma32_charged_pages = 0;
  std::uint64_t resident_pages = 0;
  std::map<const BackupStore*, std::vector<std::uint64_t>> handles;
};

class DeviceChecker {
 public:
  DeviceChecker(Device& dev, Totals* totals) : dev_(dev), totals_(totals) {}

  // REQUIRES: the device's delayed deletes are paused.
  Status Run() {
    UTTM_RETURN_IF_ERROR(CheckLists());
    for (std::size_t i = 0; i < bos_.size(); ++i) {
      UTTM_RETURN_IF_ERROR(CheckObject(*bos_[i], *listed_[i]));
    }
    return Status::Ok();
  }

  // Walks one list: links, list membership and the resource's own LRU fields.
  Status CheckList(ListHead& list, const char* name, const ResourceManager* man, unsigned priority)
      UTTM_REQUIRES(dev_.lru().lock()) {
    const ListNode* prev = list.end_node();
    for (ListNode* n = list.front(); n != nullptr && !list.is_end(n); n = n->next()) {
      if (n->prev() != prev) return Corrupt(dev_, std::string(name) + ": broken back link");
      prev = n;
      if (n->kind() != kLruResource) continue;  // a walk cursor's hitch
      Resource* res = Resource::FromLruNode(n);
      if (!seen_.insert(res).second) {
        return Corrupt(dev_, Describe(*res) + " is on two lists (or twice on " + name + ")");
      }
      if (man != nullptr) {
        if (res->manager() != man) {
          return Corrupt(dev_, Describe(*res) + " is on the list of another memory type");
        }
        if (res->priority() != priority) {
          return Corrupt(dev_, Describe(*res) + " is on the list of priority " +
                                   std::to_string(priority) + " but has priority " +
                                   std::to_string(res->priority()));
        }
        if (res->unevictable()) {
          return Corrupt(dev_, Describe(*res) + " is marked unevictable but on an LRU list");
        }
      } else if (!res->unevictable()) {
        return Corrupt(dev_, Describe(*res) + " is on the unevictable list but not marked so");
      }
      usage_[res->mem_type()] += res->size().value();
      BufferObject* bo = res->bo();
      if (bo == nullptr) return Corrupt(dev_, Describe(*res) + " is listed without an object");
      if (!bo->GetUnlessZero()) {
        return Status(Errc::kBusy, "device " + dev_.name() + ": an object is being released");
      }
      bos_.push_back(BoRef::Adopt(bo));
      listed_.push_back(res);
    }
    if (list.back() != nullptr && list.back() != prev) {
      return Corrupt(dev_, std::string(name) + ": the tail is not the last node reached");
    }
    return Status::Ok();
  }

  Status CheckLists() {
    MutexLock lock(dev_.lru().lock());
    for (MemType t = 0; t < kNumMemTypes; ++t) {
      ResourceManager* man = dev_.manager(t);
      if (man == nullptr) continue;
      for (unsigned p = 0; p < kNumPriorities; ++p) {
        UTTM_RETURN_IF_ERROR(CheckList(man->lru(p), "an LRU list", man, p));
      }
    }
    UTTM_RETURN_IF_ERROR(CheckList(dev_.lru().unevictable(), "the unevictable list", nullptr, 0));
    for (MemType t = 0; t < kNumMemTypes; ++t) {
      ResourceManager* man = dev_.manager(t);
      if (man == nullptr) continue;
      if (man->usage() != usage_[t]) {
        return Corrupt(dev_, "mem type " + std::to_string(t) + " reports usage " +
                                 std::to_string(man->usage()) + " bytes, its resources sum to " +
                                 std::to_string(usage_[t]));
      }
    }
    return Status::Ok();
  }

  Status CheckObject(BufferObject& bo, const Resource& listed) {
    if (!bo.TryReserve()) {
      return Status(Errc::kBusy, "device " + dev_.name() + ": an object is locked");
    }
    bo.resv()->AssertHeld();
    Status s = CheckReserved(bo, listed);
    bo.resv()->Unlock();
    return s;
  }

  Status CheckReserved(BufferObject& bo, const Resource& listed) {
    const Resource* res = bo.resource();
    if (res != &listed) {
      return Corrupt(dev_, Describe(listed) + " names an object whose resource is another one");
    }
    if (res->priority() != bo.priority()) {
      return Corrupt(dev_, Describe(*res) + " has priority " + std::to_string(res->priority()) +
                               ", its object " + std::to_string(bo.priority()));
    }
    const PageVector* tt = bo.tt();
    const bool use_tt = res->manager()->use_tt();
    // Nothing left to reclaim (swapped, or backed up holding no page): unevictable, as pinned.
    const bool swapped = tt != nullptr && tt->is_swapped() && !tt->is_partial() && use_tt;
    const bool want_unevictable = bo.pin_count() > 0 || swapped;
    if (res->unevictable() != want_unevictable) {
      return Corrupt(dev_, Describe(*res) + (res->unevictable() ? " is" : " is not") +
                               " unevictable, but its object has pin count " +
                               std::to_string(bo.pin_count()) +
                               (swapped ? " and a swapped page vector" : ""));
    }
    if (tt == nullptr) return Status::Ok();
    Status consistent = tt->CheckConsistency();
    if (!consistent.ok())
      return Corrupt(dev_, Describe(*res) + ": " + std::string(consistent.message()));
    const PageVector::Usage u = tt->usage();
    if (!use_tt && (u.resident_pages != 0 || u.backup_pages != 0 || u.swap_pages != 0)) {
      return Corrupt(dev_, "an object in device memory (" + Describe(*res) + ") still holds " +
                               std::to_string(u.resident_pages) + " pages and " +
                               std::to_string(u.backup_pages + u.swap_pages) +
                               " backed-up pages in its page vector");
    }
    // Pages held are pages charged (CheckConsistency checked it; the message says how far off).
    const bool external = (tt->flags() & kPageVectorExternal) != 0;
    if (!external && u.charged_pages != u.resident_pages) {
      return Corrupt(dev_, Describe(*res) + ": its page vector holds " +
                               std::to_string(u.resident_pages) + " pages but has charged " +
                               std::to_string(u.charged_pages));
    }
    // A live object's pages are present while it is device-visible; a released object or a
    // ghost may be purged where it lies (its contents are dead, the shrinker does not move it).
    const bool dead = bo.is_ghost() || bo.deleted();
    if (use_tt && res->mem_type() != kMemSystem && !tt->is_populated() && !dead) {
      return Corrupt(dev_, "an object in a device-visible page-vector domain (" + Describe(*res) +
                               ") has no pages present");
    }
    totals_->charged_pages += u.charged_pages;
    if (tt->dma32()) totals_->dma32_charged_pages += u.charged_pages;
    totals_->resident_pages += u.resident_pages;
    tt->ForEachHandle([&](const BackupStore* store, BackupHandle h) {
      totals_->handles[store].push_back(h.value());
    });
    return Status::Ok();
  }

  Device& dev_;
  Totals* const totals_;
  std::unordered_set<const Resource*> seen_;
  std::array<std::uint64_t, kNumMemTypes> usage_{};
  std::vector<BoRef> bos_;
  std::vector<const Resource*> listed_;
};

Status CheckStore(const BackupStore* store, std::vector<std::uint64_t>& handles) {
  const std::string name = store != nullptr ? store->Describe() : std::string("(no store)");
  if (store == nullptr && !handles.empty()) {
    return Status(Errc::kCorrupt, std::to_string(handles.size()) + " handles have no store");
  }
  std::sort(handles.begin(), handles.end());
  for (std::size_t i = 0; i < handles.size(); ++i) {
    if (handles[i] == 0)
      return Status(Errc::kCorrupt, "store " + name + ": an invalid handle is held");
    if (i > 0 && handles[i] == handles[i - 1]) {
      return Status(Errc::kCorrupt,
                    "store " + name + ": handle " + std::to_string(handles[i]) + " is held twice");
    }
  }
  if (store == nullptr) return Status::Ok();
  const std::uint64_t live = store->BytesUsed() / kPageSize;
  if (live != handles.size()) {
    return Status(Errc::kCorrupt, "store " + name + " holds " + std::to_string(live) +
                                      " pages, the page vectors hold " +
                                      std::to_string(handles.size()) + " handles");
  }
  return Status::Ok();
}

// Holds the delayed-delete workers of `devices` while it lives.
class DeletePause {
 public:
  explicit DeletePause(std::vector<Device*> devices) : devices_(std::move(devices)) {
    for (Device* d : devices_) d->PauseDelayedDeletes();
  }
  ~DeletePause() {
    for (Device* d : devices_) d->ResumeDelayedDeletes();
  }
  DeletePause(const DeletePause&) = delete;
  DeletePause& operator=(const DeletePause&) = delete;

 private:
  std::vector<Device*> devices_;
};

}  // namespace

Status CheckDeviceInvariants(Device& device) {
  DeletePause pause({&device});
  Totals totals;
  return DeviceChecker(device, &totals).Run();
}

Status CheckInvariants(MemoryContext& memory, const InvariantOptions& options) {
  std::vector<Device*> devices;
  Device::ForEachDevice(memory, [&](Device& d) { devices.push_back(&d); });
  DeletePause pause(devices);
  Totals totals;
  for (Device* d : devices) {
    totals.handles[d->backup_store()];  // a store nobody holds handles in must be empty
    UTTM_RETURN_IF_ERROR(DeviceChecker(*d, &totals).Run());
  }
  if (memory.pages_allocated().value() != totals.charged_pages) {
    return Status(Errc::kCorrupt,
                  "memory context: " + std::to_string(memory.pages_allocated().value()) +
                      " pages charged, the page vectors account for " +
                      std::to_string(totals.charged_pages));
  }
  if (memory.dma32_pages_allocated().value() != totals.dma32_charged_pages) {
    return Status(Errc::kCorrupt,
                  "memory context: " + std::to_string(memory.dma32_pages_allocated().value()) +
                      " dma32 pages charged, the page vectors account for " +
                      std::to_string(totals.dma32_charged_pages));
  }
  const std::uint64_t in_use = memory.provider().pages_in_use();
  const std::uint64_t pooled = memory.pool().pooled_pages();
  if (in_use != pooled + totals.resident_pages) {
    return Status(Errc::kCorrupt, "memory context: the provider has " + std::to_string(in_use) +
                                      " pages out, the pools hold " + std::to_string(pooled) +
                                      " and the page vectors " +
                                      std::to_string(totals.resident_pages));
  }
  for (auto& [store, handles] : totals.handles) {
    UTTM_RETURN_IF_ERROR(CheckStore(store, handles));
  }
  for (BoShrinker* shrinker : options.shrinkers) {
    if (shrinker == nullptr) continue;
    Result<ShrinkAccounting> r = shrinker->CheckAccounting();
    if (r.code() == Errc::kBusy) return r.status();
    if (!r.ok())
      return Status(Errc::kCorrupt,
                    std::string(shrinker->name()) + ": " + std::string(r.status().message()));
  }
  return Status::Ok();
}

}  // namespace uttm
