// Copyright (c) uttm developers.
//
// gem_lru.cc: see gem_lru.h.
#include "uttm/gem_lru.h"

#include "base/check.h"
#include "base/intrusive_list.h"
#include "uttm/gem_shmem_object.h"

namespace uttm {
namespace {

using ObjectList = IntrusiveList<GemShmemObject, GemLruTag>;

}  // namespace

GemLru::~GemLru() { UTTM_CHECK(list_.empty(), "a GEM LRU destroyed with objects on it"); }

void GemLru::MoveTail(GemShmemObject& obj, std::uint64_t pages) {
  Remove(obj);
  list_.PushBack(ObjectList::ToNode(&obj));
  obj.lru_ = this;
  obj.lru_pages_ = pages;
  count_ += pages;
  ++objects_;
}

// The caller holds the device LRU lock (every LRU of the object's device shares it).
void GemLru::Remove(GemShmemObject& obj) UTTM_NO_THREAD_SAFETY_ANALYSIS {
  GemLru* from = obj.lru_;
  if (from == nullptr) return;
  ObjectList::ToNode(&obj)->Unlink();
  from->count_ -= obj.lru_pages_;
  --from->objects_;
  obj.lru_ = nullptr;
  obj.lru_pages_ = 0;
}

GemShmemObject* GemLru::Next(GemShmemObject& obj) {
  if (obj.lru_ != this) return nullptr;
  ListNode* n = ObjectList::ToNode(&obj)->next();
  return list_.is_end(n) ? nullptr : ObjectList::FromNode(n);
}

void GemLru::ForEach(const std::function<void(GemShmemObject&)>& fn) {
  for (ListNode* n = list_.front(); n != nullptr && !list_.is_end(n); n = n->next()) {
    fn(*ObjectList::FromNode(n));
  }
}

// The LRU lock is dropped and retaken around each shrink, which the analysis cannot follow.
std::uint64_t GemLruScan(GemLru& lru, std::uint64_t nr_to_scan, std::uint64_t* remaining,
                         const GemShrinkFn& shrink) UTTM_NO_THREAD_SAFETY_ANALYSIS {
  Mutex* mu = lru.lock();
  // Objects visited stay here until the end, so none is visited twice; the list shares the LRU
  // lock, so an object parked here can still change state (and list) under it.
  GemLru parked(mu, "scan");
  std::uint64_t freed = 0;
  std::uint64_t skipped = 0;
  mu->Lock();
  while (freed < nr_to_scan) {
    GemShmemObject* obj = ObjectList::FromNode(lru.list_.front());
    if (obj == nullptr) break;
    if (!obj->GetUnlessZero()) {
      // Its last reference is going: take it off the list here (its release would, too), so it
      // is neither met again nor parked while it is being freed.
      GemLru::Remove(*obj);
      continue;
    }
    const std::uint64_t pages = obj->lru_pages_;
    parked.MoveTail(*obj, pages);
    mu->Unlock();
    if (obj->resv()->TryLock()) {
      Result<std::uint64_t> r = shrink(*obj);
      obj->resv()->Unlock();
      if (r.ok()) {
        freed += *r;
      } else if (r.code() == Errc::kBusy) {
        skipped += pages;
      }
    } else {
      skipped += pages;  // locked: skipped, never waited for
    }
    obj->Put();  // may be the last reference: the release takes the LRU lock itself
    mu->Lock();
  }
  // What is still parked goes back to the tail, in the order it was met.
  for (;;) {
    GemShmemObject* obj = ObjectList::FromNode(parked.list_.front());
    if (obj == nullptr) break;
    lru.MoveTail(*obj, obj->lru_pages_);
  }
  mu->Unlock();
  if (remaining != nullptr) *remaining += skipped;
  return freed;
}

}  // namespace uttm
