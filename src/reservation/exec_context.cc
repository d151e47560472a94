// Copyright (c) uttm developers.
#include "uttm/exec_context.h"

#include <algorithm>

namespace uttm {

ExecContext::ExecContext(unsigned flags, std::stop_token stop, WwClass ww_class)
    : flags_(flags), stop_(std::move(stop)), ticket_(ww_class) {}

OperationContext ExecContext::LockContext() const {
  OperationContext ctx;
  ctx.interruptible = (flags_ & kInterruptible) != 0;
  ctx.stop = stop_;
  return ctx;
}

Status ExecContext::BeginPass() {
  retry_ = false;
  if (contended_.resv == nullptr) return Status();
  Entry entry = std::move(contended_);
  contended_ = Entry();
  Status status = entry.resv->LockSlow(&ticket_, LockContext());
  if (!status.ok()) return status;
  if (entry.victim) ticket_.AddVictim(entry.resv);
  objects_.push_back(entry);
  prelocked_ = std::move(entry);
  return Status();
}

Status ExecContext::EndPass(Status body_status) {
  prelocked_ = Entry();
  // A back-off an eviction walk met on this ticket's behalf.
  std::shared_ptr<const void> walk_keep_alive;
  Reservation* walk_contended = ticket_.TakeContended(&walk_keep_alive);
  if (walk_contended != nullptr && contended_.resv == nullptr && !body_status.ok()) {
    UnlockAll();
    contended_ = Entry{walk_contended, std::move(walk_keep_alive), /*victim=*/true};
  }
  if (body_status.ok()) {
    if (contended_.resv != nullptr || walk_contended != nullptr) {
      UnlockAll();
      contended_ = Entry();
      return Status(Errc::kInvalid, "ExecContext::Run: the body ignored a kDeadlock back-off");
    }
    return Status();
  }
  if (body_status.code() == Errc::kDeadlock && contended_.resv != nullptr) {
    retry_ = true;
    ++retries_;
    return Status();
  }
  UnlockAll();
  contended_ = Entry();
  return body_status;
}

Status ExecContext::Lock(Reservation* resv, std::shared_ptr<const void> keep_alive) {
  if (resv == nullptr) return Status(Errc::kInvalid, "ExecContext::Lock: null reservation");
  if (contended_.resv != nullptr) {
    return Status(Errc::kDeadlock, "ExecContext::Lock: a back-off is pending; return kDeadlock");
  }
  if (prelocked_.resv == resv) {
    prelocked_ = Entry();
    // Locked first after a walk's back-off, and now a member of the transaction.
    for (Entry& e : objects_) {
      if (e.resv == resv && e.victim) {
        e.victim = false;
        ticket_.RemoveVictim(resv);
      }
    }
    return Status();
  }
  Status status = resv->Lock(&ticket_, LockContext());
  if (status.ok()) {
    objects_.push_back(Entry{resv, std::move(keep_alive)});
    return status;
  }
  if (status.code() == Errc::kAlready && (flags_ & kIgnoreDuplicates) != 0) return Status();
  if (status.code() == Errc::kDeadlock) {
    UnlockAll();
    contended_ = Entry{resv, std::move(keep_alive)};
  }
  return status;
}

Status ExecContext::Prepare(Reservation* resv, unsigned num_fences,
                            std::shared_ptr<const void> keep_alive) {
  UTTM_RETURN_IF_ERROR(Lock(resv, std::move(keep_alive)));
  if (num_fences == 0) return Status();
  resv->AssertHeld();
  return resv->ReserveFences(num_fences);
}

Status ExecContext::PrepareArray(std::span<Reservation* const> resvs, unsigned num_fences) {
  for (Reservation* resv : resvs) UTTM_RETURN_IF_ERROR(Prepare(resv, num_fences));
  return Status();
}

// The analysis cannot follow reservations stored in a container; these two release them.
Status ExecContext::Unlock(Reservation* resv) UTTM_NO_THREAD_SAFETY_ANALYSIS {
  auto it = std::find_if(objects_.begin(), objects_.end(),
                         [resv](const Entry& e) { return e.resv == resv; });
  if (it == objects_.end()) {
    return Status(Errc::kNotFound, "ExecContext::Unlock: reservation not held by this context");
  }
  if (it->victim) ticket_.RemoveVictim(it->resv);
  it->resv->Unlock();
  objects_.erase(it);
  return Status();
}

void ExecContext::UnlockAll() UTTM_NO_THREAD_SAFETY_ANALYSIS {
  for (auto it = objects_.rbegin(); it != objects_.rend(); ++it) {
    if (it->victim) ticket_.RemoveVictim(it->resv);
    it->resv->Unlock();
  }
  objects_.clear();
  prelocked_ = Entry();
}

void ExecContext::Fini() {
  UnlockAll();
  contended_ = Entry();
}

std::vector<Reservation*> ExecContext::locked() const {
  std::vector<Reservation*> out;
  out.reserve(objects_.size());
  for (const Entry& e : objects_) out.push_back(e.resv);
  return out;
}

bool ExecContext::IsLocked(const Reservation* resv) const {
  return std::any_of(objects_.begin(), objects_.end(),
                     [resv](const Entry& e) { return e.resv == resv; });
}

}  // namespace uttm
