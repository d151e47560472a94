// Copyright (c) uttm developers.
//
// lru_bulk_move.h: keeps a group's resources contiguous on the LRU lists so the whole group can
// be marked recently used in one step (TTM's ttm_lru_bulk_move).
//
// All members of one bulk move share one reservation (e.g. the buffer objects of one VM), so
// the group is locked as one. For every (memory type, priority) the members form one contiguous
// range [first, last] of that LRU list. MoveTail() splices every range to its list's tail in
// O(memory types x priorities). Walk cursors that are parked inside a range are moved behind it
// first, so a walk neither loops nor visits a member twice. Pinned, swapped or backed-up
// resources are never in a bulk range.
//
// Locking: everything here requires the owning device's LRU lock.
#ifndef UTTM_LRU_BULK_MOVE_H_
#define UTTM_LRU_BULK_MOVE_H_

#include <array>

#include "uttm/export.h"
#include "uttm/list_link.h"
#include "uttm/lru.h"
#include "uttm/placement.h"
#include "uttm/resource.h"

namespace uttm {

struct BulkCursorTag {};

class UTTM_EXPORT LruBulkMove {
 public:
  struct Range {
    Resource* first = nullptr;
    Resource* last = nullptr;
  };

  explicit LruBulkMove(Lru* lru) : lru_(lru) {}
  // Detaches any cursor still attached (ttm_lru_bulk_move_fini). REQUIRES: no member resources.
  ~LruBulkMove();
  LruBulkMove(const LruBulkMove&) = delete;
  LruBulkMove& operator=(const LruBulkMove&) = delete;

  // Moves every range to the tail of its LRU list. REQUIRES: LRU lock held.
  void MoveTail();

  // The range for a memory type and priority. REQUIRES: LRU lock held.
  Range range(MemType type, unsigned priority) const { return pos_[type][priority]; }

 private:
  friend class Lru;
  friend class LruCursor;

  Range& pos(const Resource* res) { return pos_[res->mem_type()][res->priority()]; }
  void AdjustCursors();

  Lru* const lru_;
  std::array<std::array<Range, kNumPriorities>, kNumMemTypes> pos_{};
  // Cursors whose hitch is inside one of the ranges (linked through LruCursor's bulk link).
  ListHead cursors_;
};

}  // namespace uttm

#endif  // UTTM_LRU_BULK_MOVE_H_
