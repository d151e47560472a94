// Copyright (c) uttm developers.
//
// fault_injection.h: named fault-injection points (the kernel's fault_attr / should_fail()).
//
// Each point is named once in UTTM_FAULT_POINTS below. Code on a failure path asks
// `ShouldFail(FaultPoint::kStoreWrite)` and takes its error branch when the answer is true. A
// point is armed with a FaultSpec from code (FaultInjection::Arm, ScopedFault), or from a spec
// string such as the environment variable UTTM_FAULTS. The environment is read only when asked
// (ConfigureFromEnvironment, RuntimeOptions::faults_from_environment, the uttm tool): a process
// that uses the library is never armed by its environment behind its back.
//
//   UTTM_FAULTS="store.write:after=8,times=1;page.alloc:probability=10,seed=7"
//
// Rules, in the order they are applied to each call of an armed point:
//   after=N        the first N calls never fail;
//   interval=N     of the remaining calls, only every Nth may fail (N >= 1; 1 = each call);
//   probability=P  a call that passed `interval` fails with probability P percent (0..100);
//   times=N        at most N failures, then the point disarms itself (-1 = unlimited).
//   seed=S         seeds the per-point random generator so runs are repeatable.
//
// Cost when no point is armed: one relaxed atomic load. Thread-safety: all functions are
// thread-safe; arming while other threads evaluate a point is allowed.
#ifndef UTTM_FAULT_INJECTION_H_
#define UTTM_FAULT_INJECTION_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "uttm/export.h"
#include "uttm/status.h"

namespace uttm {

// X(identifier, "name", "what fails when it fires")
#define UTTM_FAULT_POINTS(X)                                                                  \
  X(kStoreWrite, "store.write", "a backup store write fails with EIO")                        \
  X(kStoreShortWrite, "store.short_write", "a backup store write stores only part of a run")  \
  X(kStoreNoSpace, "store.nospace", "a backup store write fails with ENOSPC")                 \
  X(kStoreRead, "store.read", "a backup store read fails with EIO")                           \
  X(kStoreCorrupt, "store.corrupt", "a backup store read returns flipped bits")               \
  X(kStoreInterrupt, "store.interrupt", "an interruptible store copy stops with EINTR")       \
  X(kStoreUringRefused, "store.uring_refused",                                                \
    "io_uring_setup is refused (EPERM, a seccomp "                                            \
    "profile)")                                                                               \
  X(kPageAlloc, "page.alloc", "the page provider cannot get memory (ENOMEM)")                 \
  X(kPagePrefault, "page.prefault", "the OS cannot fault a new chunk's pages in (ENOMEM)")    \
  X(kRestoreInterrupt, "restore.interrupt", "an interruptible restore stops with EINTR")      \
  X(kBackupPartial, "backup.partial", "a backup stops after half the pages (partial backup)") \
  X(kWaitInterrupt, "wait.interrupt", "an interruptible wait returns EINTR")                  \
  X(kMoveCopy, "move.copy", "a device copy between placements fails with EIO")                \
  X(kGemCreate, "gem.create", "creating a GEM object's backing file fails (EMFILE)")          \
  X(kGemExtend, "gem.extend", "reserving a backing file's blocks fails with ENOSPC")          \
  X(kGemWriteback, "gem.writeback", "writing a backing file's dirty pages back fails (EIO)")  \
  X(kGemTruncate, "gem.truncate", "truncating a purged object's backing file fails (EIO)")    \
  X(kGemSwapIn, "gem.swapin", "reading a backing file's pages back in fails (EIO)")

enum class FaultPoint : unsigned {
#define UTTM_FAULT_ENUM_(id, name, desc) id,
  UTTM_FAULT_POINTS(UTTM_FAULT_ENUM_)
#undef UTTM_FAULT_ENUM_
      kCount
};

inline constexpr unsigned kNumFaultPoints = static_cast<unsigned>(FaultPoint::kCount);
static_assert(kNumFaultPoints <= 64, "armed points are tracked in one 64-bit mask");

// How an armed point fails. See the file comment for the rules.
struct FaultSpec {
  std::uint64_t after = 0;
  std::uint64_t interval = 1;
  double probability = 100.0;
  std::int64_t times = -1;
  std::uint64_t seed = 0;
};

class UTTM_EXPORT FaultInjection {
 public:
  // Arms `point` with `spec`, resetting its call and failure counts. kInvalid if the spec is out
  // of range (interval 0, probability outside 0..100, times < -1).
  static Status Arm(FaultPoint point, const FaultSpec& spec);
  // Disarms one point / every point. Counts are kept until the next Arm.
  static void Disarm(FaultPoint point);
  static void DisarmAll();
  // Parses and applies a spec string (format in the file comment). On error nothing is armed and
  // the message names the point or the key that was wrong.
  static Status Configure(std::string_view spec);
  // Configure() from the environment variable `name` (absent or empty: nothing to do).
  static Status ConfigureFromEnvironment(const char* name = "UTTM_FAULTS");

  // Calls evaluated while armed, and failures injected, since the last Arm.
  static std::uint64_t Calls(FaultPoint point);
  static std::uint64_t Failures(FaultPoint point);

  static const char* Name(FaultPoint point);
  static const char* Description(FaultPoint point);
  static std::optional<FaultPoint> FromName(std::string_view name);
};

namespace internal {
UTTM_EXPORT extern std::atomic<std::uint64_t> g_armed_fault_mask;
UTTM_EXPORT bool ShouldFailSlow(FaultPoint point);
}  // namespace internal

// True when the armed `point` decides this call fails. Cheap when nothing is armed.
inline bool ShouldFail(FaultPoint point) {
  if (__builtin_expect(internal::g_armed_fault_mask.load(std::memory_order_relaxed) == 0, 1)) {
    return false;
  }
  return internal::ShouldFailSlow(point);
}

// Arms a point for the lifetime of the object (tests). Aborts if the spec is invalid.
class UTTM_EXPORT ScopedFault {
 public:
  ScopedFault(FaultPoint point, const FaultSpec& spec);
  ~ScopedFault();
  ScopedFault(const ScopedFault&) = delete;
  ScopedFault& operator=(const ScopedFault&) = delete;

 private:
  FaultPoint point_;
};

}  // namespace uttm

#endif  // UTTM_FAULT_INJECTION_H_
