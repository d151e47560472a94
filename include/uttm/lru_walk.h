// Copyright (c) uttm developers.
//
// lru_walk.h: walking a manager's LRU and getting each buffer object locked and referenced
// (TTM's ttm_bo_lru_cursor, ttm_bo_lru_for_each_reserved_guarded and ttm_lru_walk_for_evict).
//
// ReservedBoCursor yields buffer objects oldest first (priority 0 to 3). For each candidate, under
// the LRU lock, it try-locks the reservation (or accepts an object sharing ctx.resv when
// ctx.allow_res_evict); if that fails and a ticket is given (and neither trylock_only nor
// no_wait_gpu is set), it takes a reference, drops the LRU lock and blocks on the reservation
// with the ticket — only once per walk, then it reverts to try-locking. After any lock drop it
// revalidates that the object still has a resource of the same memory type. kDeadlock from the
// ticket lock is returned as kNoSpace (the caller must leave its transaction); kAlready (the
// ticket already holds it) skips the object silently. The current object is unlocked and
// unreferenced when the cursor advances or is destroyed, on every exit path.
//
// LruWalkForEvict runs `process(bo, ctx)` on each yielded object: a non-negative result adds to
// the progress; kBusy and kAlready mean "skipped"; any other error ends the walk. It stops once
// progress reaches `target`.
//
// Locking: do not hold the LRU lock when calling; the cursor takes it as needed.
#ifndef UTTM_LRU_WALK_H_
#define UTTM_LRU_WALK_H_

#include <cstdint>

#include "uttm/buffer_object.h"
#include "uttm/device.h"
#include "uttm/export.h"
#include "uttm/lru_cursor.h"
#include "uttm/operation_context.h"
#include "uttm/status.h"
#include "uttm/ww_acquire_context.h"

namespace uttm {

struct LruWalkArg {
  OperationContext* ctx = nullptr;
  // Ticket for at most one blocking lock per walk (cleared after use); null: try-lock only.
  WwAcquireContext* ticket = nullptr;
  bool trylock_only = false;
  // The ticket of the transaction the walk works for (the reserving ticket of the object being
  // validated; null: none). Objects it holds as eviction victims (IsVictim) are handed out
  // without locking; a kDeadlock of the ticketed lock is recorded in it (SetContended) and ends
  // the walk with kDeadlock, so the transaction backs off and retries with that reservation
  // locked first.
  WwAcquireContext* owner = nullptr;
};

class UTTM_EXPORT ReservedBoCursor {
 public:
  ReservedBoCursor(Device* device, ResourceManager* man, const LruWalkArg& arg);
  ~ReservedBoCursor();
  ReservedBoCursor(const ReservedBoCursor&) = delete;
  ReservedBoCursor& operator=(const ReservedBoCursor&) = delete;

  // The next locked, referenced object (the previous one is released first), null at the end,
  // or an error that ends the walk.
  Result<BufferObject*> Next();
  // Releases the current object now (it is also released by Next and the destructor).
  void ReleaseCurrent();

 private:
  Device* const device_;
  ResourceManager* const man_;
  LruWalkArg arg_;
  LruCursor cursor_;
  bool started_ = false;
  BufferObject* bo_ = nullptr;
  bool needs_unlock_ = false;
};

// Sums process(bo, ctx) over the walk until `target` (see the file comment).
template <typename Process>
Result<std::int64_t> LruWalkForEvict(Device* device, ResourceManager* man, LruWalkArg arg,
                                     std::int64_t target, Process&& process) {
  ReservedBoCursor cursor(device, man, arg);
  std::int64_t progress = 0;
  for (;;) {
    Result<BufferObject*> next = cursor.Next();
    if (!next.ok()) return next.status();
    if (*next == nullptr) break;
    Result<std::int64_t> r = process(**next, *arg.ctx);
    if (!r.ok()) {
      if (r.code() == Errc::kBusy || r.code() == Errc::kAlready) continue;
      return r.status();
    }
    progress += *r;
    if (progress >= target) break;
  }
  return progress;
}

}  // namespace uttm

#endif  // UTTM_LRU_WALK_H_
