// Copyright (c) uttm developers.
//
// gem_lru.h: a list of GEM objects with the pages they hold (the kernel's drm_gem_lru), and the
// scan helper that shrinkers build on (drm_gem_lru_scan).
//
// Every LRU of a GemDevice shares the device's one LRU lock, so moving an object between lists
// is one locked step. An object is on at most one LRU, and each LRU counts the pages of its
// objects: moving an object from the evictable to the purgeable list moves its pages from one
// count to the other and never adds them twice (what the seed's "pages accounted by shrinker"
// flag guarded).
//
// GemLruScan(lru, nr_to_scan, &remaining, shrink) visits each object once, oldest first, until
// `nr_to_scan` pages were freed: under the LRU lock it takes the head object, skips one whose
// last reference is going (GetUnlessZero fails), and parks it on a private list so the walk
// never meets it twice; then, with the LRU lock dropped, it try-locks the object's reservation
// (a locked object is skipped and its pages added to `remaining`, never waited for) and calls
// `shrink`. A shrink that frees pages has moved the object off `lru` (its state changed); what
// is still parked at the end goes back to the tail. Returns the pages freed.
//
// Thread-safety: GemLru's methods need the device LRU lock (annotated); GemLruScan takes it.
#ifndef UTTM_GEM_LRU_H_
#define UTTM_GEM_LRU_H_

#include <cstdint>
#include <functional>

#include "uttm/export.h"
#include "uttm/list_link.h"
#include "uttm/mutex.h"
#include "uttm/status.h"

namespace uttm {

class GemShmemObject;
struct GemLruTag {};

class UTTM_EXPORT GemLru {
 public:
  GemLru(Mutex* lock, const char* name) : lock_(lock), name_(name) {}
  ~GemLru();  // must be empty
  GemLru(const GemLru&) = delete;
  GemLru& operator=(const GemLru&) = delete;

  Mutex* lock() const UTTM_RETURN_CAPABILITY(lock_) { return lock_; }
  const char* name() const { return name_; }
  // Pages of the objects on this list.
  std::uint64_t count() const UTTM_REQUIRES(lock_) { return count_; }
  std::uint64_t objects() const UTTM_REQUIRES(lock_) { return objects_; }
  bool empty() const UTTM_REQUIRES(lock_) { return list_.empty(); }

  // Moves `obj` to the tail of this list (off any other list of the device), counting `pages`.
  void MoveTail(GemShmemObject& obj, std::uint64_t pages) UTTM_REQUIRES(lock_);
  // Takes `obj` off whatever list holds it (no-op when on none).
  static void Remove(GemShmemObject& obj);

  // The object after `obj` on this list (null: `obj` is last, or not on this list).
  GemShmemObject* Next(GemShmemObject& obj) UTTM_REQUIRES(lock_);
  // Calls fn(object) for each object in order. fn must not change the lists.
  void ForEach(const std::function<void(GemShmemObject&)>& fn) UTTM_REQUIRES(lock_);

 private:
  friend UTTM_EXPORT std::uint64_t GemLruScan(
      GemLru&, std::uint64_t, std::uint64_t*,
      const std::function<Result<std::uint64_t>(GemShmemObject&)>&);
  Mutex* const lock_;
  const char* const name_;
  ListHead list_;
  std::uint64_t count_ UTTM_GUARDED_BY(lock_) = 0;
  std::uint64_t objects_ UTTM_GUARDED_BY(lock_) = 0;
};

// The shrink callback of a scan: called with the object's reservation held (try-locked by the
// scan). Returns the pages freed (0: nothing, the object stays), or an error (kBusy for a busy
// object: counted in `remaining`).
using GemShrinkFn = std::function<Result<std::uint64_t>(GemShmemObject&)>;

// drm_gem_lru_scan (see the file comment). `remaining` (may be null) grows by the pages of the
// objects that were skipped because they were locked or busy.
UTTM_EXPORT std::uint64_t GemLruScan(GemLru& lru, std::uint64_t nr_to_scan,
                                     std::uint64_t* remaining, const GemShrinkFn& shrink);

}  // namespace uttm

#endif  // UTTM_GEM_LRU_H_
