// Copyright (c) uttm developers.
//
// lru_cursor.h: a restartable position in a manager's LRU lists (TTM's ttm_resource_cursor).
//
// The cursor parks a "hitch" node in the list right after the last resource it returned. Next()
// continues from the hitch, so the walker may drop the LRU lock (to lock a buffer object, to do
// I/O) and resume correctly even if that resource was moved or freed meanwhile. Priorities are
// walked 0 to 3, each list head to tail. When the hitch sits inside a bulk-move range, the cursor
// registers with that bulk move so a bulk tail move drags the hitch behind the range: nothing
// after the range is skipped and the walk ends. Like any resource bumped to the tail during a
// walk (the kernel's ttm_resource_cursor behaves the same), the members of a range moved to the
// tail come again, once each: a walk meets a resource at most once more per tail move of it.
//
// Init (First) and Fini must balance; Fini is idempotent. Locking: every method requires the
// device LRU lock. (The lock is the cursor's Lru's; clang's analysis cannot tie a caller's
// lock to `lru_`, so the methods assert it inside instead of declaring it.)
#ifndef UTTM_LRU_CURSOR_H_
#define UTTM_LRU_CURSOR_H_

#include "uttm/export.h"
#include "uttm/list_link.h"
#include "uttm/lru.h"
#include "uttm/lru_bulk_move.h"
#include "uttm/resource.h"
#include "uttm/resource_manager.h"

namespace uttm {

class UTTM_EXPORT LruCursor : private ListLink<BulkCursorTag> {
 public:
  explicit LruCursor(Lru* lru) : lru_(lru), hitch_(kLruHitch) {}
  // REQUIRES: Fini() was called (or the cursor never started). The destructor asserts it.
  ~LruCursor();
  LruCursor(const LruCursor&) = delete;
  LruCursor& operator=(const LruCursor&) = delete;

  // Starts a walk over `man` at priority 0; returns the first resource or null.
  Resource* First(ResourceManager* man);
  // The next resource after the hitch, or null at the end (which also finishes the cursor).
  Resource* Next();
  // Unparks the hitch and detaches from any bulk move. Idempotent.
  void Fini();

  unsigned priority() const { return priority_; }
  bool active() const { return hitch_.linked(); }

 private:
  friend class LruBulkMove;
  struct Hitch : ListLink<LruTag> {
    explicit Hitch(std::uint8_t kind) : ListLink<LruTag>(kind) {}
  };

  void CheckBulk(Resource* next);
  void ClearBulk();
  static LruCursor* FromBulkLink(ListNode* n) {
    return static_cast<LruCursor*>(static_cast<ListLink<BulkCursorTag>*>(n));
  }
  ListNode* bulk_link() { return static_cast<ListLink<BulkCursorTag>*>(this); }

  Lru* const lru_;
  ResourceManager* man_ = nullptr;
  unsigned priority_ = 0;
  Hitch hitch_;
  LruBulkMove* bulk_ = nullptr;
  MemType bulk_mem_type_ = 0;
};

}  // namespace uttm

#endif  // UTTM_LRU_CURSOR_H_
