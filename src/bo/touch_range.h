// Copyright (c) uttm developers.
//
// touch_range.h (internal): a buffer object's restore-on-touch range (touch_mapping.cc).
#ifndef UTTM_SRC_BO_TOUCH_RANGE_H_
#define UTTM_SRC_BO_TOUCH_RANGE_H_

#include <chrono>
#include <cstddef>
#include <memory>

#include "uttm/buffer_object.h"
#include "uttm/status.h"
#include "uttm/user_faults.h"

namespace uttm {

// Guarded by the object's reservation.
struct BufferObject::TouchRange {
  UserFaults* faults = nullptr;
  std::byte* reserved = nullptr;  // the mmap, larger than the range by the alignment
  std::size_t reserved_bytes = 0;
  std::byte* base = nullptr;
  std::size_t bytes = 0;
  int mappings = 0;
  int writers = 0;
  std::shared_ptr<TouchHandler> handler;
  Status failed;  // not OK once the range was made inaccessible
  // The first retry of the fault being handled (for kTouchPatience).
  bool retrying = false;
  std::chrono::steady_clock::time_point first_retry;
};

}  // namespace uttm

#endif  // UTTM_SRC_BO_TOUCH_RANGE_H_
