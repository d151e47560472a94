// Copyright (c) uttm developers.
//
// bo_internal.h: the buffer-object operations the core's reclaim paths need and users never call
// (not installed). Every function needs the object's reservation held.
#ifndef UTTM_SRC_BO_BO_INTERNAL_H_
#define UTTM_SRC_BO_BO_INTERNAL_H_

#include "uttm/buffer_object.h"

namespace uttm::internal {

class BoInternal {
 public:
  // The zombie cleanup: the resource and the page vector go (ttm_bo_cleanup_memtype_use).
  static void CleanupMemtypeUse(BufferObject& bo) UTTM_REQUIRES(bo.resv()) {
    bo.CleanupMemtypeUse();
  }
  // Fixes the LRU list of the object's resource after its page vector changed state.
  static void UpdateLruState(BufferObject& bo) UTTM_REQUIRES(bo.resv()) { bo.UpdateLruState(); }
  // Drops the page vector's clean copy if a fence that may write was added since the restore
  // that kept it (before a backup relies on it).
  static void DropStaleCleanCopy(BufferObject& bo) UTTM_REQUIRES(bo.resv()) {
    bo.DropStaleCleanCopy();
  }
  // Records that a purge dropped the contents (the advice becomes kPurged, sticky).
  static void MarkPurged(BufferObject& bo) UTTM_REQUIRES(bo.resv()) { bo.MarkPurged(); }
};

}  // namespace uttm::internal

#endif  // UTTM_SRC_BO_BO_INTERNAL_H_
