// Copyright (c) uttm developers.
//
// pressure_headroom.cc: a pressure source's limit as the allocation path's headroom.

#include "uttm/pressure_headroom.h"

#include <algorithm>
#include <utility>

namespace uttm {
namespace {

constexpr std::uint64_t kMinMargin = std::uint64_t{8} << 20;

}  // namespace

std::uint64_t PressureHeadroom::Margin() const {
  return options_.margin.value() != 0 ? options_.margin.value() : std::max(limit_ / 16, kMinMargin);
}

PressureHeadroom::PressureHeadroom(std::unique_ptr<PressureSource> source,
                                   const PressureHeadroomOptions& options)
    : source_(std::move(source)), options_(options) {}

Result<std::unique_ptr<PressureHeadroom>> PressureHeadroom::Create(
    std::unique_ptr<PressureSource> source, const PressureHeadroomOptions& options) {
  if (source == nullptr) return Status(Errc::kInvalid, "PressureHeadroom: no pressure source");
  return std::unique_ptr<PressureHeadroom>(new PressureHeadroom(std::move(source), options));
}

Result<std::unique_ptr<PressureHeadroom>> PressureHeadroom::DetectCgroup(
    const PressureHeadroomOptions& options) {
  std::unique_ptr<PressureSource> source;
  std::string why;
  if (auto v2 = CgroupV2Source::Detect(); v2.ok()) {
    source = std::move(v2).value();
  } else if (auto v1 = CgroupV1Source::Detect(); v1.ok()) {
    source = std::move(v1).value();
  } else {
    return Status(Errc::kNotFound,
                  "no memory cgroup: " + v2.status().ToString() + "; " + v1.status().ToString());
  }
  Result<MemorySample> sample = source->Sample();
  if (!sample.ok()) return sample.status();
  if (!sample->has_limit) {
    return Status(Errc::kNotFound, std::string(source->name()) + ": the cgroup has no limit");
  }
  return Create(std::move(source), options);
}

std::uint64_t PressureHeadroom::AvailableBytes(std::uint64_t charged_bytes, bool fresh) {
  MutexLock lock(&mu_);
  const auto now = std::chrono::steady_clock::now();
  std::uint64_t estimate = 0;
  if (have_sample_) {
    const std::uint64_t grown =
        charged_bytes > charged_at_sample_ ? charged_bytes - charged_at_sample_ : 0;
    estimate = available_ > grown ? available_ - grown : 0;
  }
  const std::uint64_t refresh_below =
      options_.refresh_below.value() != 0 ? options_.refresh_below.value() : Margin();
  if (fresh || !have_sample_ || now - sampled_at_ > options_.max_age || estimate < refresh_below) {
    Result<MemorySample> s = source_->Sample();
    ++samples_;
    if (!s.ok()) {
      // Unreadable for now: the limit is not known, so it does not hold the allocation back.
      have_sample_ = false;
      return UINT64_MAX;
    }
    have_sample_ = true;
    sampled_at_ = now;
    charged_at_sample_ = charged_bytes;
    has_limit_ = s->has_limit;
    limit_ = s->limit_bytes;
    const std::uint64_t used = s->usage_bytes + Margin();
    available_ = !has_limit_ ? UINT64_MAX : (limit_ > used ? limit_ - used : 0);
    estimate = available_;
  }
  return has_limit_ ? estimate : UINT64_MAX;
}

std::string PressureHeadroom::Describe() const {
  MutexLock lock(&mu_);
  std::string out = source_->name();
  if (has_limit_) out += " limit " + std::to_string(limit_ >> 20) + " MiB";
  return out;
}

std::uint64_t PressureHeadroom::samples() const {
  MutexLock lock(&mu_);
  return samples_;
}

}  // namespace uttm
