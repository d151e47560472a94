// Copyright (c) uttm developers.
//
// validation.cc: see validation.h.
#include "uttm/validation.h"

#include <utility>

namespace uttm {

Validation::Validation(Device* device, unsigned exec_flags, std::stop_token stop)
    : device_(device), exec_(exec_flags, std::move(stop)) {}

// The validation lock is held across calls (from Run to Fini), which the analysis cannot follow.
void Validation::LockShared() UTTM_NO_THREAD_SAFETY_ANALYSIS {
  device_->validation_lock().LockShared();
  held_ = Held::kShared;
  exclusive_retry_ = false;
}

void Validation::LockExclusive() UTTM_NO_THREAD_SAFETY_ANALYSIS {
  if (held_ == Held::kShared) device_->validation_lock().UnlockShared();
  device_->validation_lock().Lock();
  held_ = Held::kExclusive;
}

void Validation::Fini() UTTM_NO_THREAD_SAFETY_ANALYSIS {
  exec_.Fini();
  if (held_ == Held::kShared) device_->validation_lock().UnlockShared();
  if (held_ == Held::kExclusive) device_->validation_lock().Unlock();
  held_ = Held::kNone;
}

}  // namespace uttm
