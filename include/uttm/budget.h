// Copyright (c) uttm developers.
//
// budget.h: per-client budgets, the dmem cgroup controller's model (kernel/cgroup/dmem.c, merged
// in v6.14) in user space. Clients and nested groups of clients form a tree (a BudgetTree); every
// buffer object may belong to one group. For each group and each region (one memory domain of
// one device, named as dmem names them: "drm/<device>/<region>") the tree keeps a counter with
// `current`, `peak`, `min`, `low`, `high` and `max`, in bytes, as the kernel's page_counter
// (mm/page_counter.c) does:
//
//   * A charge adds to the group and every ancestor, and fails (nothing charged) when any of them
//     would go over its `max`; the failing group is the limiting one. Charges and uncharges are
//     lock-free (atomics); concurrent charges at a limit never overshoot it.
//   * Protection is effective, not declared: a child's `min` / `low` counts up to its usage, and
//     a parent's effective protection is shared among its children in proportion to their
//     protected usage when they claim more than it has, and the unclaimed rest in proportion to
//     their unprotected usage (recursive protection, as dmem computes it:
//     page_counter_calculate_protection with recursive_protection set).
//   * EvictValuable is dmem_cgroup_state_evict_valuable: may an object of `test` be evicted for
//     an allocation limited by `limit`? Always within the limiting group itself; otherwise only
//     inside its subtree, never at or below the test group's effective `min`, and (unless
//     `ignore_low`) not at or below its effective `low` (then `*hit_low` is set so the caller can
//     retry with ignore_low). With no limiting group, TTM's 2026 rule applies: the common ancestor
//     of the two groups is the limit ("drm/ttm: Use common ancestor of evictor and evictee as
//     limit pool"), so explicitly protected siblings win over unprotected ones while protection
//     inherited from further up still holds between subtrees. (A limit at the root compares
//     top-level groups by their own min and low, as page_counter does for the root's children.)
//   * `high` is uttm's own (proposed upstream as dmem.high, not merged): a group above it is
//     over its soft limit; its objects are the first victims (OverHigh).
//
// Thread-safety: every method may be called from any thread. Adding and removing groups and
// regions takes the tree's lock; charges, uncharges and reads are atomics; a group stays valid
// until it is removed, which needs it to hold no charge and have no children.
#ifndef UTTM_BUDGET_H_
#define UTTM_BUDGET_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "uttm/export.h"
#include "uttm/mutex.h"
#include "uttm/status.h"

namespace uttm {

inline constexpr int kMaxBudgetRegions = 16;
inline constexpr std::uint64_t kBudgetUnlimited = UINT64_MAX;

// The settable values of one group in one region.
enum class BudgetLimit { kMin, kLow, kHigh, kMax };

// The rounds in which memory-pressure reclaim (the shrinkers, the watermark swapout) takes
// objects: first only those of groups above their high (when any group has one), then those of
// unprotected groups, then of groups within their low; never of groups within their min.
enum class ProtectionRound { kOverHigh, kUnprotected, kLow };

// Counters of one group in one region, as read at one moment.
struct BudgetCounters {
  std::uint64_t current = 0;
  std::uint64_t peak = 0;
  std::uint64_t min = 0;
  std::uint64_t low = 0;
  std::uint64_t high = kBudgetUnlimited;
  std::uint64_t max = kBudgetUnlimited;
  std::uint64_t max_hits = 0;          // charges this group's max refused
  std::uint64_t evictions_caused = 0;  // objects evicted for this group's allocations
  std::uint64_t evictions_suffered = 0;
  std::uint64_t protection_breaches = 0;  // evictions that took an object below its low
  std::uint64_t reclaim_runs = 0;         // reclaims to a lowered max (CountReclaim)
  std::uint64_t reclaimed_bytes = 0;      // bytes those reclaims moved out of the region
};

class BudgetTree;

// A client, or a group of clients. Owned by its tree.
class UTTM_EXPORT BudgetGroup {
 public:
  BudgetGroup(const BudgetGroup&) = delete;
  BudgetGroup& operator=(const BudgetGroup&) = delete;

  const std::string& name() const { return name_; }
  // "/" for the root, "/a/b" below it.
  std::string path() const;
  BudgetGroup* parent() const { return parent_; }
  BudgetTree& tree() const { return *tree_; }
  // True when `this` is `g` or one of its descendants.
  bool IsWithin(const BudgetGroup* g) const;

  // The counters in `region` (kInvalid region: zeros).
  BudgetCounters Read(int region) const;
  std::uint64_t current(int region) const;

 private:
  friend class BudgetTree;
  struct Counter {
    std::atomic<std::uint64_t> usage{0};
    std::atomic<std::uint64_t> peak{0};
    std::atomic<std::uint64_t> min{0};
    std::atomic<std::uint64_t> low{0};
    std::atomic<std::uint64_t> high{kBudgetUnlimited};
    std::atomic<std::uint64_t> max{kBudgetUnlimited};
    // min(usage, min) and min(usage, low) as last propagated, and the sums of the children's.
    std::atomic<std::uint64_t> min_usage{0};
    std::atomic<std::uint64_t> low_usage{0};
    std::atomic<std::uint64_t> children_min_usage{0};
    std::atomic<std::uint64_t> children_low_usage{0};
    std::atomic<std::uint64_t> max_hits{0};
    std::atomic<std::uint64_t> evictions_caused{0};
    std::atomic<std::uint64_t> evictions_suffered{0};
    std::atomic<std::uint64_t> protection_breaches{0};
    std::atomic<std::uint64_t> reclaim_runs{0};
    std::atomic<std::uint64_t> reclaimed_bytes{0};
  };

  BudgetGroup(BudgetTree* tree, BudgetGroup* parent, std::string name)
      : tree_(tree), parent_(parent), name_(std::move(name)) {}
  void PropagateProtected(int region, std::uint64_t usage);

  BudgetTree* const tree_;
  BudgetGroup* const parent_;
  const std::string name_;
  std::array<Counter, kMaxBudgetRegions> c_;
  std::vector<std::unique_ptr<BudgetGroup>> children_;  // guarded by the tree's lock
};

// Effective protection of a group in a region, relative to a limiting group.
struct BudgetProtection {
  std::uint64_t emin = 0;
  std::uint64_t elow = 0;
};

// One charge held (by a resource): uncharged when destroyed or Released. Move-only.
class UTTM_EXPORT BudgetCharge {
 public:
  BudgetCharge() = default;
  BudgetCharge(BudgetGroup* group, int region, std::uint64_t bytes)
      : group_(group), region_(region), bytes_(bytes) {}
  BudgetCharge(BudgetCharge&& o) noexcept { *this = std::move(o); }
  BudgetCharge& operator=(BudgetCharge&& o) noexcept;
  BudgetCharge(const BudgetCharge&) = delete;
  BudgetCharge& operator=(const BudgetCharge&) = delete;
  ~BudgetCharge() { Release(); }

  // Uncharges now (idempotent).
  void Release();
  bool held() const { return group_ != nullptr; }
  BudgetGroup* group() const { return group_; }
  int region() const { return region_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  BudgetGroup* group_ = nullptr;
  int region_ = -1;
  std::uint64_t bytes_ = 0;
};

class UTTM_EXPORT BudgetTree {
 public:
  BudgetTree();
  ~BudgetTree();
  BudgetTree(const BudgetTree&) = delete;
  BudgetTree& operator=(const BudgetTree&) = delete;

  // The root group ("/"): the whole of every region; it has no limits (as dmem's root).
  BudgetGroup* root() { return root_.get(); }

  // Registers a region ("drm/<device>/<region>", as dmem's region names), or returns the index
  // of the one of that name. kInvalid for an empty name; kNoSpace past kMaxBudgetRegions. (The
  // region's capacity is its manager's: a charge is checked against groups' limits only.)
  Result<int> AddRegion(std::string name);
  // The index of a region by name; kNotFound.
  Result<int> FindRegion(std::string_view name) const;
  std::string RegionName(int region) const;
  int num_regions() const { return num_regions_.load(std::memory_order_acquire); }

  // Adds a child group `name` under `parent` (null: the root). kInvalid for an empty name or one
  // with '/', kAlready when `parent` has a child of that name.
  Result<BudgetGroup*> AddGroup(BudgetGroup* parent, std::string name);
  // The group at `path` ("/a/b"; "/" the root); kNotFound.
  Result<BudgetGroup*> FindGroup(std::string_view path);
  // Removes a group: kBusy while it has children or holds a charge in any region.
  Status RemoveGroup(BudgetGroup* group);
  // Every group, parents before children.
  std::vector<BudgetGroup*> Groups();

  // Sets one limit of `group` in `region` (any value, as dmem's files take: min above max is the
  // caller's business). kInvalid for the root (its limits are the regions' own) or a bad region.
  // Lowering max below `current` is allowed: charges fail until usage is back under it (the
  // caller reclaims the group's objects, as dmem's reclaim callback does).
  Status SetLimit(BudgetGroup* group, int region, BudgetLimit which, std::uint64_t value);

  // Charges `bytes` to `group` and its ancestors in `region`. OK, or kNoSpace naming the limiting
  // group (and *limiting set to it, if not null) when one would go over its max; nothing is
  // charged then. kInvalid for a bad region.
  Status TryCharge(BudgetGroup* group, int region, std::uint64_t bytes,
                   BudgetGroup** limiting = nullptr);
  void Uncharge(BudgetGroup* group, int region, std::uint64_t bytes);

  // Effective min / low of `group` relative to `limit` (null: the root), recursive protection.
  BudgetProtection Effective(const BudgetGroup* limit, const BudgetGroup* group, int region) const;
  // usage <= effective min / low (relative to the root), with usage > 0.
  bool BelowMin(const BudgetGroup* group, int region) const;
  bool BelowLow(const BudgetGroup* group, int region) const;
  // True when `group` or an ancestor is above its `high`.
  bool OverHigh(const BudgetGroup* group, int region) const;
  // True when some group has a finite `high` in `region` (region -1: in any region): only then
  // do eviction walks, shrinkers and swapouts look for over-high victims first (a relaxed load).
  bool HasHighLimits(int region = -1) const;

  // May reclaim take an object of `group` in `region` in `round` (ProtectionRound)? Objects of
  // no group are unprotected. *hit_low is set when the answer is no only for the group's low.
  bool MayReclaim(const BudgetGroup* group, int region, ProtectionRound round, bool* hit_low) const;

  // See the header comment. `limit` null: the common ancestor of `limit_for` and `test` is used.
  bool EvictValuable(const BudgetGroup* limit, const BudgetGroup* limit_for,
                     const BudgetGroup* test, int region, bool ignore_low, bool* hit_low) const;
  static const BudgetGroup* CommonAncestor(const BudgetGroup* a, const BudgetGroup* b);

  // Counts an eviction (BudgetCounters) of an object of `victim` for an allocation of `evictor`;
  // `breach`: the victim's group was at or below its effective low when it was picked.
  void CountEviction(BudgetGroup* evictor, BudgetGroup* victim, int region, bool breach);
  // Counts one reclaim of `group` to its lowered max that moved `bytes` out of `region`.
  void CountReclaim(BudgetGroup* group, int region, std::uint64_t bytes);

 private:
  mutable Mutex mu_;
  std::unique_ptr<BudgetGroup> root_;
  std::array<std::string, kMaxBudgetRegions> region_names_ UTTM_GUARDED_BY(mu_);
  std::atomic<int> num_regions_{0};
  // Per region, and in all regions together: how many (group, region) pairs have a finite high.
  std::array<std::atomic<int>, kMaxBudgetRegions> high_limits_{};
  std::atomic<int> all_high_limits_{0};
};

}  // namespace uttm

#endif  // UTTM_BUDGET_H_
