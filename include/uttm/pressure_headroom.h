// Copyright (c) uttm developers.
//
// pressure_headroom.h: the Headroom of a pressure source's limit (memory cgroup v1 or v2,
// MemAvailable, a budget), for MemoryContext::set_headroom.
//
// Readings are cached: a call with `fresh` false answers from the last sample less the growth of
// the caller's charged bytes since it was taken, and samples again only when that estimate comes
// within `refresh_below` of the margin or the sample is older than `max_age`. Close to the limit
// every call samples (a cgroup v1 sample reads usage_in_bytes, memory.stat and the limits up the
// path: tens of microseconds), far from it almost none do.
//
// Thread-safety: AvailableBytes and Describe are thread-safe (one internal mutex).
#ifndef UTTM_PRESSURE_HEADROOM_H_
#define UTTM_PRESSURE_HEADROOM_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "uttm/export.h"
#include "uttm/headroom.h"
#include "uttm/mutex.h"
#include "uttm/pressure_source.h"
#include "uttm/status.h"
#include "uttm/units.h"

namespace uttm {

struct PressureHeadroomOptions {
  // Kept free below the limit for what uttm does not charge (heap, stacks, the page pools' and a
  // store's memory). 0 = max(limit / 16, 8 MiB).
  Bytes margin{};
  // A sample older than this is taken again.
  std::chrono::milliseconds max_age{50};
  // An estimate closer than this to the margin is checked with a fresh sample. 0 = the margin.
  Bytes refresh_below{};
};

class UTTM_EXPORT PressureHeadroom final : public Headroom {
 public:
  // `source` must not be null. Errors: kInvalid when it is.
  static Result<std::unique_ptr<PressureHeadroom>> Create(
      std::unique_ptr<PressureSource> source, const PressureHeadroomOptions& options = {});
  // The limit of the memory cgroup this process is in (v2, else v1). Errors: kNotFound when the
  // process is in no memory cgroup, or its cgroup (and every ancestor) has no limit.
  static Result<std::unique_ptr<PressureHeadroom>> DetectCgroup(
      const PressureHeadroomOptions& options = {});

  std::uint64_t AvailableBytes(std::uint64_t charged_bytes, bool fresh) override;
  std::string Describe() const override;

  // Samples taken so far (for tests and reports).
  std::uint64_t samples() const;
  PressureSource& source() { return *source_; }

 private:
  PressureHeadroom(std::unique_ptr<PressureSource> source, const PressureHeadroomOptions& options);
  std::uint64_t Margin() const UTTM_REQUIRES(mu_);

  const std::unique_ptr<PressureSource> source_;
  const PressureHeadroomOptions options_;
  mutable Mutex mu_;
  bool have_sample_ UTTM_GUARDED_BY(mu_) = false;
  bool has_limit_ UTTM_GUARDED_BY(mu_) = false;
  std::uint64_t limit_ UTTM_GUARDED_BY(mu_) = 0;
  std::uint64_t available_ UTTM_GUARDED_BY(mu_) = 0;  // at the sample, margin already taken off
  std::uint64_t charged_at_sample_ UTTM_GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point sampled_at_ UTTM_GUARDED_BY(mu_);
  std::uint64_t samples_ UTTM_GUARDED_BY(mu_) = 0;
};

}  // namespace uttm

#endif  // UTTM_PRESSURE_HEADROOM_H_
