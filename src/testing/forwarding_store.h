// Copyright (c) uttm developers.
//
// forwarding_store.h (tests only): a backup store that forwards the required methods to a real
// store and counts the backup and copy calls; the base class's BackupPageList / CopyPageList stay
// in use, and remembers the flags of the last backup. `holds_memory` sets what HoldsMemory
// answers.
#ifndef UTTM_SRC_TESTING_FORWARDING_STORE_H_
#define UTTM_SRC_TESTING_FORWARDING_STORE_H_

#include <memory>
#include <string>
#include <utility>

#include "uttm/backup_store.h"

namespace uttm::testing {

class ForwardingStore : public BackupStore {
 public:
  explicit ForwardingStore(std::unique_ptr<BackupStore> base, bool holds_memory = false)
      : base_(std::move(base)), holds_memory_(holds_memory) {}
  Result<std::size_t> BackupPages(const std::byte* src, std::size_t count, const BackupFlags& flags,
                                  BackupHandle* handles) override {
    ++calls;
    last_flags = flags;
    return base_->BackupPages(src, count, flags, handles);
  }
  Status CopyPages(const BackupHandle* handles, std::size_t count, std::byte* dst,
                   const OperationContext& ctx, std::size_t* copied) override {
    ++calls;
    return base_->CopyPages(handles, count, dst, ctx, copied);
  }
  void Drop(const BackupHandle* handles, std::size_t count) override {
    base_->Drop(handles, count);
  }
  std::uint64_t BytesAvailable() const override { return base_->BytesAvailable(); }
  std::uint64_t BytesUsed() const override { return base_->BytesUsed(); }
  Status Flush() override { return base_->Flush(); }
  std::string Describe() const override { return "forward:" + base_->Describe(); }
  bool HoldsMemory() const override { return holds_memory_; }
  int calls = 0;
  BackupFlags last_flags;  // of the last BackupPages

 private:
  std::unique_ptr<BackupStore> base_;
  const bool holds_memory_;
};

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_FORWARDING_STORE_H_
