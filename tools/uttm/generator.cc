// Copyright (c) uttm developers.
#include "generator.h"

#include <algorithm>
#include <cmath>

#include "uttm/units.h"

namespace uttm::tool {
namespace {

std::uint64_t RoundUpToPage(std::uint64_t bytes) {
  return (std::max<std::uint64_t>(bytes, 1) + kPageSize - 1) / kPageSize * kPageSize;
}

// Picks an index with probability proportional to weights[i] (some weight > 0).
std::size_t PickWeighted(const double* weights, std::size_t n, Rng& rng) {
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += weights[i];
  double x = rng.Uniform() * total;
  for (std::size_t i = 0; i < n; ++i) {
    if (x < weights[i]) return i;
    x -= weights[i];
  }
  for (std::size_t i = n; i > 0; --i) {
    if (weights[i - 1] > 0) return i - 1;
  }
  return 0;
}

}  // namespace

std::string_view OpKindName(OpKind k) {
  switch (k) {
    case OpKind::kCreate:
      return "create";
    case OpKind::kRead:
      return "read";
    case OpKind::kWrite:
      return "write";
    case OpKind::kMadviseDontNeed:
      return "dontneed";
    case OpKind::kMadviseWillNeed:
      return "willneed";
    case OpKind::kFree:
      return "free";
  }
  return "?";
}

std::uint64_t SampleSize(const SizeDist& d, Rng& rng) {
  switch (d.kind) {
    case SizeDist::Kind::kFixed:
      return RoundUpToPage(d.min);
    case SizeDist::Kind::kUniform:
      return RoundUpToPage(d.min + rng.Below(d.max - d.min + 1));
    case SizeDist::Kind::kLogUniform: {
      double lo = std::log(static_cast<double>(d.min));
      double hi = std::log(static_cast<double>(d.max));
      double v = std::exp(lo + rng.Uniform() * (hi - lo));
      auto bytes = static_cast<std::uint64_t>(std::llround(v));
      return RoundUpToPage(std::clamp(bytes, d.min, d.max));
    }
  }
  return RoundUpToPage(d.min);
}

LaneGenerator::LaneGenerator(const Workload& w, std::uint32_t lane)
    : w_(w), lane_(lane), lanes_(w.Lanes()), rng_(MixKeys(w.seed, 0x6c616e65, lane)) {}

Op LaneGenerator::Create(std::uint32_t class_index, std::uint64_t id, std::uint64_t size,
                         bool purgeable) {
  active_.push_back(LaneBuffer{id, class_index, size, purgeable, false});
  Op op;
  op.kind = OpKind::kCreate;
  op.buffer = id;
  op.class_index = class_index;
  op.size = size;
  op.num_pages = size / kPageSize;
  op.purgeable = purgeable;
  return op;
}

std::vector<Op> LaneGenerator::InitialOps() {
  std::vector<Op> ops;
  std::uint64_t id = 0;
  for (std::uint32_t c = 0; c < w_.classes.size(); ++c) {
    const BufferClass& cls = w_.classes[c];
    for (std::uint32_t j = 0; j < cls.count; ++j, ++id) {
      if (id % lanes_ != lane_) continue;
      // Size and purgeable share depend on (seed, id) only; the share is exact per class.
      Rng r(MixKeys(w_.seed, 0x73697a65, id));
      std::uint64_t size = SampleSize(cls.size, r);
      bool purgeable = std::floor((j + 1) * cls.purgeable) > std::floor(j * cls.purgeable);
      ops.push_back(Create(c, id, size, purgeable));
    }
  }
  return ops;
}

std::uint64_t LaneGenerator::PhaseOps(std::size_t phase) const {
  std::uint64_t ops = w_.phases[phase].ops;
  return ops / lanes_ + (lane_ < ops % lanes_ ? 1 : 0);
}

Op LaneGenerator::CreateNew() {
  std::vector<double> weights;
  bool any = false;
  for (const BufferClass& c : w_.classes) {
    weights.push_back(static_cast<double>(c.count));
    any = any || c.count > 0;
  }
  if (!any) std::fill(weights.begin(), weights.end(), 1.0);
  auto c = static_cast<std::uint32_t>(PickWeighted(weights.data(), weights.size(), rng_));
  const BufferClass& cls = w_.classes[c];
  std::uint64_t id = w_.InitialBuffers() + created_++ * lanes_ + lane_;
  std::uint64_t size = SampleSize(cls.size, rng_);
  bool purgeable = rng_.Uniform() < cls.purgeable;
  return Create(c, id, size, purgeable);
}

std::size_t LaneGenerator::PickActive(std::size_t phase) {
  std::uint64_t n = active_.size();
  const AccessPattern& a = w_.AccessOf(phase);
  switch (a.kind) {
    case AccessPattern::Kind::kUniform:
      return rng_.Below(n);
    case AccessPattern::Kind::kSequential:
      return sequential_cursor_++ % n;
    case AccessPattern::Kind::kZipf:
      if (!zipf_ || zipf_->n() != n || zipf_->exponent() != a.exponent)
        zipf_.emplace(n, a.exponent);
      return zipf_->Sample(rng_) - 1;
  }
  return 0;
}

std::optional<Op> LaneGenerator::Access(std::size_t phase, bool write) {
  if (active_.empty()) return std::nullopt;
  const LaneBuffer& b = active_[PickActive(phase)];
  std::uint64_t pages = b.size / kPageSize;
  std::uint64_t span = w_.AccessOf(phase).span_pages;
  Op op;
  op.kind = write ? OpKind::kWrite : OpKind::kRead;
  op.buffer = b.id;
  op.class_index = b.class_index;
  op.size = b.size;
  op.purgeable = b.purgeable;
  op.num_pages = span == 0 ? pages : std::min(span, pages);
  op.first_page = op.num_pages == pages ? 0 : rng_.Below(pages - op.num_pages + 1);
  return op;
}

std::optional<Op> LaneGenerator::Madvise() {
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < active_.size(); ++i) {
    if (active_[i].purgeable) candidates.push_back(i);
  }
  bool take_back = !dontneed_.empty() && (candidates.empty() || rng_.Below(2) == 0);
  if (!take_back && candidates.empty()) return std::nullopt;
  Op op;
  LaneBuffer b;
  if (take_back) {
    std::size_t i = rng_.Below(dontneed_.size());
    b = dontneed_[i];
    dontneed_.erase(dontneed_.begin() + static_cast<std::ptrdiff_t>(i));
    b.dontneed = false;
    active_.push_back(b);
    op.kind = OpKind::kMadviseWillNeed;
  } else {
    std::size_t i = candidates[rng_.Below(candidates.size())];
    b = active_[i];
    active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(i));
    b.dontneed = true;
    dontneed_.push_back(b);
    op.kind = OpKind::kMadviseDontNeed;
  }
  op.buffer = b.id;
  op.class_index = b.class_index;
  op.size = b.size;
  op.purgeable = true;
  return op;
}

std::optional<Op> LaneGenerator::Free() {
  std::size_t total = active_.size() + dontneed_.size();
  if (total == 0) return std::nullopt;
  std::size_t i = rng_.Below(total);
  std::vector<LaneBuffer>& from = i < active_.size() ? active_ : dontneed_;
  if (i >= active_.size()) i -= active_.size();
  LaneBuffer b = from[i];
  // Order-preserving erase: Zipf ranks of the other buffers stay where they were.
  from.erase(from.begin() + static_cast<std::ptrdiff_t>(i));
  Op op;
  op.kind = OpKind::kFree;
  op.buffer = b.id;
  op.class_index = b.class_index;
  op.size = b.size;
  op.purgeable = b.purgeable;
  return op;
}

Op LaneGenerator::Next(std::size_t phase) {
  const OpMix& m = w_.phases[phase].mix;
  const double weights[] = {m.read, m.write, m.create, m.free, m.madvise};
  std::size_t pick = PickWeighted(weights, 5, rng_);
  std::optional<Op> op;
  switch (pick) {
    case 0:
      op = Access(phase, false);
      break;
    case 1:
      op = Access(phase, true);
      break;
    case 2:
      return CreateNew();
    case 3:
      op = Free();
      break;
    default:
      op = Madvise();
      if (!op) op = Access(phase, false);
      break;
  }
  if (op) return *op;
  // Nothing to act on: take a DONTNEED buffer back if there is one, else create.
  if (!dontneed_.empty() && m.madvise > 0) {
    if (auto back = Madvise()) return *back;
  }
  return CreateNew();
}

std::vector<LaneBuffer> LaneGenerator::Buffers() const {
  std::vector<LaneBuffer> all = active_;
  all.insert(all.end(), dontneed_.begin(), dontneed_.end());
  return all;
}

}  // namespace uttm::tool
