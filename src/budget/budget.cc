// Copyright (c) uttm developers.
#include "uttm/budget.h"

#include <algorithm>
#include <utility>

namespace uttm {
namespace {

bool ValidRegion(int region, int regions) { return region >= 0 && region < regions; }

// mm/page_counter.c's effective_protection with recursive protection: what a child keeps of
// `setting` given its parent's effective protection and what all siblings claim and use.
std::uint64_t EffectiveProtection(std::uint64_t usage, std::uint64_t parent_usage,
                                  std::uint64_t setting, std::uint64_t parent_effective,
                                  std::uint64_t siblings_protected) {
  const std::uint64_t claimed = std::min(usage, setting);
  // The siblings claim more than the parent has: shares in proportion to what each uses of it.
  if (siblings_protected > parent_effective) {
    return static_cast<std::uint64_t>(static_cast<unsigned __int128>(claimed) * parent_effective /
                                      siblings_protected);
  }
  std::uint64_t effective = claimed;
  // What the siblings leave unclaimed is shared in proportion to unprotected usage, so groups
  // that set nothing compete freely for it but are protected together from other subtrees.
  if (parent_effective > siblings_protected && parent_usage > siblings_protected &&
      usage > claimed) {
    const unsigned __int128 unclaimed = parent_effective - siblings_protected;
    effective += static_cast<std::uint64_t>(unclaimed * (usage - claimed) /
                                            (parent_usage - siblings_protected));
  }
  return effective;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// BudgetGroup

std::string BudgetGroup::path() const {
  if (parent_ == nullptr) return "/";
  std::string p = parent_->path();
  if (p.size() > 1) p += '/';
  return p + name_;
}

bool BudgetGroup::IsWithin(const BudgetGroup* g) const {
  for (const BudgetGroup* x = this; x != nullptr; x = x->parent_) {
    if (x == g) return true;
  }
  return false;
}

BudgetCounters BudgetGroup::Read(int region) const {
  BudgetCounters out;
  if (!ValidRegion(region, tree_->num_regions())) return out;
  const Counter& c = c_[static_cast<std::size_t>(region)];
  out.current = c.usage.load(std::memory_order_relaxed);
  out.peak = c.peak.load(std::memory_order_relaxed);
  out.min = c.min.load(std::memory_order_relaxed);
  out.low = c.low.load(std::memory_order_relaxed);
  out.high = c.high.load(std::memory_order_relaxed);
  out.max = c.max.load(std::memory_order_relaxed);
  out.max_hits = c.max_hits.load(std::memory_order_relaxed);
  out.evictions_caused = c.evictions_caused.load(std::memory_order_relaxed);
  out.evictions_suffered = c.evictions_suffered.load(std::memory_order_relaxed);
  out.protection_breaches = c.protection_breaches.load(std::memory_order_relaxed);
  out.reclaim_runs = c.reclaim_runs.load(std::memory_order_relaxed);
  out.reclaimed_bytes = c.reclaimed_bytes.load(std::memory_order_relaxed);
  return out;
}

std::uint64_t BudgetGroup::current(int region) const {
  if (!ValidRegion(region, tree_->num_regions())) return 0;
  return c_[static_cast<std::size_t>(region)].usage.load(std::memory_order_relaxed);
}

// page_counter's propagate_protected_usage: keep the parent's sums of the children's
// min(usage, min) and min(usage, low) current.
void BudgetGroup::PropagateProtected(int region, std::uint64_t usage) {
  if (parent_ == nullptr) return;
  Counter& c = c_[static_cast<std::size_t>(region)];
  Counter& p = parent_->c_[static_cast<std::size_t>(region)];
  // Read first: a group without protection (or whose protected part did not change) pays no
  // read-modify-write. Differences wrap as signed ones.
  const std::uint64_t min_now = std::min(usage, c.min.load(std::memory_order_relaxed));
  if (min_now != c.min_usage.load(std::memory_order_relaxed)) {
    const std::uint64_t min_was = c.min_usage.exchange(min_now, std::memory_order_relaxed);
    if (min_now != min_was) p.children_min_usage.fetch_add(min_now - min_was);
  }
  const std::uint64_t low_now = std::min(usage, c.low.load(std::memory_order_relaxed));
  if (low_now != c.low_usage.load(std::memory_order_relaxed)) {
    const std::uint64_t low_was = c.low_usage.exchange(low_now, std::memory_order_relaxed);
    if (low_now != low_was) p.children_low_usage.fetch_add(low_now - low_was);
  }
}

// ---------------------------------------------------------------------------------------------
// BudgetCharge

BudgetCharge& BudgetCharge::operator=(BudgetCharge&& o) noexcept {
  if (this != &o) {
    Release();
    group_ = std::exchange(o.group_, nullptr);
    region_ = std::exchange(o.region_, -1);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

void BudgetCharge::Release() {
  if (group_ == nullptr) return;
  group_->tree().Uncharge(group_, region_, bytes_);
  group_ = nullptr;
  bytes_ = 0;
}

// ---------------------------------------------------------------------------------------------
// BudgetTree

BudgetTree::BudgetTree() : root_(new BudgetGroup(this, nullptr, "")) {}

BudgetTree::~BudgetTree() = default;

Result<int> BudgetTree::AddRegion(std::string name) {
  if (name.empty()) return Status(Errc::kInvalid, "budget region: empty name");
  MutexLock lock(&mu_);
  const int n = num_regions_.load(std::memory_order_relaxed);
  for (int i = 0; i < n; ++i) {
    if (region_names_[static_cast<std::size_t>(i)] == name) return i;
  }
  if (n == kMaxBudgetRegions) {
    return Status(Errc::kNoSpace, "budget region \"" + name + "\": all " +
                                      std::to_string(kMaxBudgetRegions) + " regions are in use");
  }
  region_names_[static_cast<std::size_t>(n)] = std::move(name);
  num_regions_.store(n + 1, std::memory_order_release);
  return n;
}

Result<int> BudgetTree::FindRegion(std::string_view name) const {
  MutexLock lock(&mu_);
  const int n = num_regions_.load(std::memory_order_relaxed);
  for (int i = 0; i < n; ++i) {
    if (region_names_[static_cast<std::size_t>(i)] == name) return i;
  }
  return Status(Errc::kNotFound, "no budget region \"" + std::string(name) + "\"");
}

std::string BudgetTree::RegionName(int region) const {
  MutexLock lock(&mu_);
  if (!ValidRegion(region, num_regions_.load(std::memory_order_relaxed))) return "?";
  return region_names_[static_cast<std::size_t>(region)];
}

Result<BudgetGroup*> BudgetTree::AddGroup(BudgetGroup* parent, std::string name) {
  if (name.empty() || name.find('/') != std::string::npos) {
    return Status(Errc::kInvalid, "budget group name \"" + name + "\": empty or holds '/'");
  }
  if (parent == nullptr) parent = root_.get();
  if (&parent->tree() != this) {
    return Status(Errc::kInvalid, "budget group \"" + name + "\": parent of another tree");
  }
  MutexLock lock(&mu_);
  for (const auto& c : parent->children_) {
    if (c->name() == name) {
      return Status(Errc::kAlready, "budget group " + c->path() + " exists");
    }
  }
  parent->children_.push_back(std::unique_ptr<BudgetGroup>(new BudgetGroup(this, parent, name)));
  return parent->children_.back().get();
}

Result<BudgetGroup*> BudgetTree::FindGroup(std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return Status(Errc::kInvalid, "budget group path \"" + std::string(path) + "\": not absolute");
  }
  MutexLock lock(&mu_);
  BudgetGroup* g = root_.get();
  std::string_view rest = path.substr(1);
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    BudgetGroup* next = nullptr;
    for (const auto& c : g->children_) {
      if (c->name() == part) next = c.get();
    }
    if (next == nullptr) {
      return Status(Errc::kNotFound, "no budget group \"" + std::string(path) + "\"");
    }
    g = next;
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  return g;
}

Status BudgetTree::RemoveGroup(BudgetGroup* group) {
  if (group == nullptr || group == root_.get() || &group->tree() != this) {
    return Status(Errc::kInvalid, "RemoveGroup: not a removable group of this tree");
  }
  MutexLock lock(&mu_);
  if (!group->children_.empty()) {
    return Status(Errc::kBusy, "budget group " + group->path() + " has children");
  }
  for (int r = 0; r < num_regions_.load(std::memory_order_relaxed); ++r) {
    if (group->current(r) != 0) {
      return Status(Errc::kBusy, "budget group " + group->path() + " holds " +
                                     std::to_string(group->current(r)) + " bytes in " +
                                     region_names_[static_cast<std::size_t>(r)]);
    }
  }
  for (int r = 0; r < num_regions_.load(std::memory_order_relaxed); ++r) {
    const auto i = static_cast<std::size_t>(r);
    if (group->c_[i].high.load(std::memory_order_relaxed) != kBudgetUnlimited) {
      high_limits_[i].fetch_sub(1);
      all_high_limits_.fetch_sub(1);
    }
  }
  auto& siblings = group->parent_->children_;
  siblings.erase(std::find_if(siblings.begin(), siblings.end(),
                              [&](const auto& c) { return c.get() == group; }));
  return Status();
}

std::vector<BudgetGroup*> BudgetTree::Groups() {
  MutexLock lock(&mu_);
  std::vector<BudgetGroup*> out{root_.get()};
  for (std::size_t i = 0; i < out.size(); ++i) {
    for (const auto& c : out[i]->children_) out.push_back(c.get());
  }
  return out;
}

Status BudgetTree::SetLimit(BudgetGroup* group, int region, BudgetLimit which,
                            std::uint64_t value) {
  if (group == nullptr || &group->tree() != this) {
    return Status(Errc::kInvalid, "SetLimit: not a group of this tree");
  }
  if (group == root_.get()) {
    return Status(Errc::kInvalid, "SetLimit: the root group has no limits (as dmem's root)");
  }
  if (!ValidRegion(region, num_regions())) {
    return Status(Errc::kInvalid, "SetLimit: no budget region " + std::to_string(region));
  }
  BudgetGroup::Counter& c = group->c_[static_cast<std::size_t>(region)];
  switch (which) {
    case BudgetLimit::kMin:
      c.min.store(value, std::memory_order_relaxed);
      break;
    case BudgetLimit::kLow:
      c.low.store(value, std::memory_order_relaxed);
      break;
    case BudgetLimit::kHigh: {
      const std::uint64_t was = c.high.exchange(value, std::memory_order_relaxed);
      const int delta = (value != kBudgetUnlimited ? 1 : 0) - (was != kBudgetUnlimited ? 1 : 0);
      if (delta != 0) {
        high_limits_[static_cast<std::size_t>(region)].fetch_add(delta);
        all_high_limits_.fetch_add(delta);
      }
      break;
    }
    case BudgetLimit::kMax:
      c.max.store(value, std::memory_order_relaxed);
      break;
  }
  group->PropagateProtected(region, c.usage.load(std::memory_order_relaxed));
  return Status();
}

// page_counter_try_charge, but each level is charged by compare-and-swap against its max, so
// no reader ever sees a level above its max, not even for a moment; the first level that would
// go over stops the charge and the levels below it are given back.
Status BudgetTree::TryCharge(BudgetGroup* group, int region, std::uint64_t bytes,
                             BudgetGroup** limiting) {
  if (limiting != nullptr) *limiting = nullptr;
  if (group == nullptr || !ValidRegion(region, num_regions())) {
    return Status(Errc::kInvalid, "TryCharge: no group, or a bad region");
  }
  const auto r = static_cast<std::size_t>(region);
  BudgetGroup* failed = nullptr;
  for (BudgetGroup* g = group; g != nullptr; g = g->parent_) {
    BudgetGroup::Counter& c = g->c_[r];
    std::uint64_t was = c.usage.load(std::memory_order_relaxed);
    bool over = false;
    do {
      over = bytes > c.max.load(std::memory_order_relaxed) ||
             was > c.max.load(std::memory_order_relaxed) - bytes;
    } while (!over && !c.usage.compare_exchange_weak(was, was + bytes, std::memory_order_relaxed));
    if (over) {
      c.max_hits.fetch_add(1, std::memory_order_relaxed);
      failed = g;
      break;
    }
    const std::uint64_t now = was + bytes;
    g->PropagateProtected(region, now);
    // The peak is a watermark: raced updates keep the largest.
    std::uint64_t peak = c.peak.load(std::memory_order_relaxed);
    while (now > peak && !c.peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
  }
  if (failed == nullptr) return Status();
  for (BudgetGroup* g = group; g != failed; g = g->parent_) {
    BudgetGroup::Counter& c = g->c_[r];
    const std::uint64_t now = c.usage.fetch_sub(bytes, std::memory_order_relaxed) - bytes;
    g->PropagateProtected(region, now);
  }
  if (limiting != nullptr) *limiting = failed;
  return Status(Errc::kNoSpace, "budget group " + failed->path() + " is at its max of " +
                                    std::to_string(failed->c_[r].max.load()) + " bytes in " +
                                    RegionName(region));
}

void BudgetTree::Uncharge(BudgetGroup* group, int region, std::uint64_t bytes) {
  if (group == nullptr || !ValidRegion(region, num_regions())) return;
  const auto r = static_cast<std::size_t>(region);
  for (BudgetGroup* g = group; g != nullptr; g = g->parent_) {
    const std::uint64_t now = g->c_[r].usage.fetch_sub(bytes, std::memory_order_relaxed) - bytes;
    g->PropagateProtected(region, now);
  }
}

// page_counter_calculate_protection along the path from `limit` down to `group`.
BudgetProtection BudgetTree::Effective(const BudgetGroup* limit, const BudgetGroup* group,
                                       int region) const {
  BudgetProtection out;
  if (limit == nullptr) limit = root_.get();
  if (group == nullptr || group == limit || !group->IsWithin(limit) ||
      !ValidRegion(region, num_regions())) {
    return out;
  }
  const auto r = static_cast<std::size_t>(region);
  std::vector<const BudgetGroup*> path;
  for (const BudgetGroup* g = group; g != limit; g = g->parent_) path.push_back(g);
  std::uint64_t parent_emin = 0;
  std::uint64_t parent_elow = 0;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    const BudgetGroup* g = *it;
    const BudgetGroup::Counter& c = g->c_[r];
    const std::uint64_t usage = c.usage.load(std::memory_order_relaxed);
    BudgetProtection p;
    if (usage == 0) {
      p = {};  // nothing to protect; its children use nothing either
    } else if (g->parent_ == limit) {
      p.emin = c.min.load(std::memory_order_relaxed);
      p.elow = c.low.load(std::memory_order_relaxed);
    } else {
      const BudgetGroup::Counter& pc = g->parent_->c_[r];
      const std::uint64_t parent_usage = pc.usage.load(std::memory_order_relaxed);
      p.emin =
          EffectiveProtection(usage, parent_usage, c.min.load(std::memory_order_relaxed),
                              parent_emin, pc.children_min_usage.load(std::memory_order_relaxed));
      p.elow =
          EffectiveProtection(usage, parent_usage, c.low.load(std::memory_order_relaxed),
                              parent_elow, pc.children_low_usage.load(std::memory_order_relaxed));
    }
    parent_emin = p.emin;
    parent_elow = p.elow;
    out = p;
  }
  return out;
}

bool BudgetTree::BelowMin(const BudgetGroup* group, int region) const {
  if (group == nullptr || group == root_.get()) return false;
  const std::uint64_t usage = group->current(region);
  return usage > 0 && usage <= Effective(nullptr, group, region).emin;
}

bool BudgetTree::BelowLow(const BudgetGroup* group, int region) const {
  if (group == nullptr || group == root_.get()) return false;
  const std::uint64_t usage = group->current(region);
  return usage > 0 && usage <= Effective(nullptr, group, region).elow;
}

bool BudgetTree::OverHigh(const BudgetGroup* group, int region) const {
  if (!ValidRegion(region, num_regions())) return false;
  const auto r = static_cast<std::size_t>(region);
  for (const BudgetGroup* g = group; g != nullptr; g = g->parent_) {
    if (g->c_[r].usage.load(std::memory_order_relaxed) >
        g->c_[r].high.load(std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

bool BudgetTree::HasHighLimits(int region) const {
  if (region == -1) return all_high_limits_.load(std::memory_order_relaxed) > 0;
  return ValidRegion(region, num_regions()) &&
         high_limits_[static_cast<std::size_t>(region)].load(std::memory_order_relaxed) > 0;
}

bool BudgetTree::MayReclaim(const BudgetGroup* group, int region, ProtectionRound round,
                            bool* hit_low) const {
  if (round == ProtectionRound::kOverHigh && !OverHigh(group, region)) return false;
  if (BelowMin(group, region)) return false;
  if (round != ProtectionRound::kLow && BelowLow(group, region)) {
    if (hit_low != nullptr) *hit_low = true;
    return false;
  }
  return true;
}

const BudgetGroup* BudgetTree::CommonAncestor(const BudgetGroup* a, const BudgetGroup* b) {
  for (const BudgetGroup* x = a; x != nullptr; x = x->parent_) {
    if (b != nullptr && b->IsWithin(x)) return x;
  }
  return nullptr;
}

// dmem_cgroup_state_evict_valuable, with the common-ancestor limit when none is given.
bool BudgetTree::EvictValuable(const BudgetGroup* limit, const BudgetGroup* limit_for,
                               const BudgetGroup* test, int region, bool ignore_low,
                               bool* hit_low) const {
  if (test == nullptr) return true;  // an object of no group is never protected
  if (limit == nullptr) {
    limit = CommonAncestor(limit_for != nullptr ? limit_for : root_.get(), test);
  }
  if (limit == nullptr) return false;  // another tree's
  if (limit == test) return true;      // a group may always give up its own
  if (!test->IsWithin(limit)) return false;
  const std::uint64_t used = test->current(region);
  const BudgetProtection p = Effective(limit, test, region);
  if (used <= p.emin) return false;
  if (ignore_low) return true;
  if (used > p.elow) return true;
  if (hit_low != nullptr) *hit_low = true;
  return false;
}

void BudgetTree::CountEviction(BudgetGroup* evictor, BudgetGroup* victim, int region, bool breach) {
  if (!ValidRegion(region, num_regions())) return;
  const auto r = static_cast<std::size_t>(region);
  if (evictor != nullptr) evictor->c_[r].evictions_caused.fetch_add(1, std::memory_order_relaxed);
  if (victim != nullptr) {
    victim->c_[r].evictions_suffered.fetch_add(1, std::memory_order_relaxed);
    if (breach) victim->c_[r].protection_breaches.fetch_add(1, std::memory_order_relaxed);
  }
}

void BudgetTree::CountReclaim(BudgetGroup* group, int region, std::uint64_t bytes) {
  if (group == nullptr || !ValidRegion(region, num_regions())) return;
  BudgetGroup::Counter& c = group->c_[static_cast<std::size_t>(region)];
  c.reclaim_runs.fetch_add(1, std::memory_order_relaxed);
  c.reclaimed_bytes.fetch_add(bytes, std::memory_order_relaxed);
}

}  // namespace uttm
