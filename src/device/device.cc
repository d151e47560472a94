// Copyright (c) uttm developers.
#include "uttm/device.h"

#include <algorithm>
#include <list>

#include "base/check.h"
#include "uttm/reservation.h"
#include "uttm/system_manager.h"

namespace uttm {
Device::Device(DeviceFuncs* funcs, const DeviceOptions& options)
    : name_(options.name),
      funcs_(funcs),
      memory_(options.memory != nullptr ? options.memory : &MemoryContext::Default()),
      backup_store_(options.backup_store),
      propagate_nospace_(options.propagate_nospace),
      keep_clean_copies_(options.keep_clean_copies),
      budgets_(options.budgets) {
  budget_regions_.fill(-1);
}

Result<std::unique_ptr<Device>> Device::Create(DeviceFuncs* funcs, const DeviceOptions& options) {
  if (funcs == nullptr) return Status(Errc::kInvalid, "a device needs driver callbacks");
  std::unique_ptr<Device> dev(new Device(funcs, options));
  UTTM_RETURN_IF_ERROR(dev->SetManager(std::make_unique<SystemManager>()));
  dev->delete_worker_ = std::thread([d = dev.get()] { d->DelayedDeleteWorker(); });
  dev->memory_->AddUser(dev.get());
  return dev;
}

Device::~Device() {
  memory_->RemoveUser(this);
  FlushDelayedDeletes();
  {
    MutexLock lock(&delete_mu_);
    stopping_ = true;
    delete_cv_.SignalAll();
  }
  delete_worker_.join();
  UTTM_CHECK(bo_count() == 0, "device destroyed while buffer objects are alive");
  for (auto& man : managers_) {
    if (man) man->set_use_type(false);
  }
}

Status Device::SetManager(std::unique_ptr<ResourceManager> manager) {
  if (manager == nullptr) return Status(Errc::kInvalid, "null resource manager");
  MemType type = manager->mem_type();
  if (type >= kNumMemTypes) return Status(Errc::kInvalid, "memory type out of range");
  if (managers_[type]) return Status(Errc::kInvalid, "memory type already has a manager");
  if (budgets_ != nullptr && budget_regions_[type] < 0) {
    UTTM_ASSIGN_OR_RETURN(budget_regions_[type],
                          budgets_->AddRegion("drm/" + name_ + "/" + MemTypeName(type)));
  }
  manager->set_use_type(true);
  managers_[type] = std::move(manager);
  return Status();
}

std::unique_ptr<ResourceManager> Device::TakeManager(MemType type) {
  if (type >= kNumMemTypes || !managers_[type]) return nullptr;
  managers_[type]->set_use_type(false);
  return std::move(managers_[type]);
}

ResourceManager* Device::manager(MemType type) const {
  return type < kNumMemTypes ? managers_[type].get() : nullptr;
}

void Device::QueueDelayedDelete(DelayedDelete* zombie) {
  MutexLock lock(&delete_mu_);
  delete_queue_.push_back(zombie);
  delete_cv_.SignalAll();
}

void Device::DelayedDeleteWorker() {
  MutexLock lock(&delete_mu_);
  for (;;) {
    while ((delete_queue_.empty() || delete_paused_ > 0) && !stopping_) {
      delete_cv_.Wait(&delete_mu_);
    }
    if (delete_queue_.empty()) return;
    DelayedDelete* zombie = delete_queue_.front();
    delete_queue_.pop_front();
    delete_waiting_ = true;
    delete_mu_.Unlock();
    // Wait (without bound, as the kernel's delayed delete) for the object to go idle. The wait
    // touches nothing of the object's memory, so a pause does not wait for it: an observer that
    // pauses while a zombie's fence is pending (maybe one the observer signals itself) goes on.
    OperationContext ctx;
    Status idle = zombie->delayed_delete_resv()->Wait(ResvUsage::kBookkeep, ctx);
    (void)idle;
    delete_mu_.Lock();
    while (delete_paused_ > 0) delete_cv_.Wait(&delete_mu_);
    delete_waiting_ = false;
    delete_busy_ = true;
    delete_mu_.Unlock();
    zombie->FinishDelayedDelete();
    delete_mu_.Lock();
    delete_busy_ = false;
    delete_cv_.SignalAll();
  }
}

void Device::FlushDelayedDeletes() {
  MutexLock lock(&delete_mu_);
  while (!delete_queue_.empty() || delete_waiting_ || delete_busy_) delete_cv_.Wait(&delete_mu_);
}

void Device::PauseDelayedDeletes() {
  MutexLock lock(&delete_mu_);
  ++delete_paused_;
  while (delete_busy_) delete_cv_.Wait(&delete_mu_);
}

void Device::ResumeDelayedDeletes() {
  MutexLock lock(&delete_mu_);
  UTTM_CHECK(delete_paused_ > 0, "ResumeDelayedDeletes without a pause");
  --delete_paused_;
  delete_cv_.SignalAll();
}

void Device::ForEachDevice(MemoryContext& memory, const std::function<void(Device&)>& fn) {
  // Only devices register as users of a memory context.
  memory.ForEachUser([&](MemoryUser& user) { fn(static_cast<Device&>(user)); });
}

void Device::RotateToBack(Device* dev) { dev->memory_->RotateUserToBack(dev); }

}  // namespace uttm
