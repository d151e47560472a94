// Copyright (c) uttm developers.
#include "uttm/tiered_store.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uttm/backup_store_factory.h"
#include "uttm/mutex.h"
#include "uttm/units.h"

namespace uttm {
namespace {

// Pages one writeback batch moves from the upper to the lower tier (256 KiB).
constexpr std::size_t kWritebackBatch = 64;
constexpr std::uint32_t kNone = UINT32_MAX;

enum class Tier : std::uint8_t { kFree, kUpper, kLower };

struct Entry {
  BackupHandle inner;
  Tier tier = Tier::kFree;
  bool moving = false;     // being written back: off the LRU, its upper handle still valid
  bool dropped = false;    // dropped while moving or read: the writeback or last reader frees it
  std::uint16_t pins = 0;  // copies reading its upper-tier page now: it stays in the upper tier
  std::uint32_t prev = kNone;
  std::uint32_t next = kNone;  // LRU links (upper-tier entries only); free-list link otherwise
};

class TieredStore final : public BackupStore {
 public:
  TieredStore(std::unique_ptr<BackupStore> upper, std::unique_ptr<BackupStore> lower, Stats* stats)
      : upper_(std::move(upper)), lower_(std::move(lower)), stats_(stats) {}

  ~TieredStore() override = default;

  Result<std::size_t> BackupPages(const std::byte* src, std::size_t count, const BackupFlags& flags,
                                  BackupHandle* handles) override {
    if (src == nullptr || handles == nullptr || count == 0) {
      return Status(Errc::kInvalid, "tiered store: BackupPages with no pages or no handle array");
    }
    std::vector<BackupHandle> inner;
    try {
      inner.resize(count);
      MutexLock lock(&mu_);
      Reserve(count);
    } catch (const std::bad_alloc&) {
      return Status(Errc::kNoMemory, "tiered store: out of memory for its entry table");
    }
    std::size_t stored = 0;
    Result<std::size_t> result = std::size_t{0};
    try {
      result = BackupInto(src, count, flags, handles, inner.data(), &stored);
    } catch (const std::bad_alloc&) {
      // Out of memory for a message: what was stored is stored, and reported so.
      result = stored > 0
                   ? Result<std::size_t>(stored)
                   : Result<std::size_t>(Status(Errc::kNoMemory, "tiered store: out of memory"));
    }
    Unreserve(count - stored);
    return result;
  }

  // The body of BackupPages; `*stored` follows the pages stored as they are.
  Result<std::size_t> BackupInto(const std::byte* src, std::size_t count, const BackupFlags& flags,
                                 BackupHandle* handles, BackupHandle* inner,
                                 std::size_t* stored_out) {
    std::size_t& stored = *stored_out;
    Status last;
    // Into the upper tier; while it is full, its coldest pages are written back to make room
    // (a few rounds: freeing entries need not free whole slabs at once).
    for (int round = 0; round < 4 && stored < count; ++round) {
      if (round > 0) {
        Result<std::size_t> moved = WriteBack(count - stored);
        if (!moved.ok()) {
          last = moved.status();
          break;
        }
        if (*moved == 0) break;  // nothing left to write back
      }
      Result<std::size_t> r =
          upper_->BackupPages(src + stored * kPageSize, count - stored, flags, inner);
      if (!r.ok()) {
        last = r.status();
        continue;
      }
      Register(Tier::kUpper, inner, *r, handles + stored);
      stored += *r;
    }
    if (stored < count) {
      Result<std::size_t> r =
          lower_->BackupPages(src + stored * kPageSize, count - stored, flags, inner);
      if (r.ok()) {
        Register(Tier::kLower, inner, *r, handles + stored);
        stats_->Add(Stat::kTierDirectPages, *r);
        stored += *r;
      } else {
        last = r.status();
      }
    }
    if (stored == 0) {
      return Status(last.code(),
                    "tiered store: neither tier took the pages: " + std::string(last.message()));
    }
    return stored;
  }

  Status CopyPages(const BackupHandle* handles, std::size_t count, std::byte* dst,
                   const OperationContext& ctx, std::size_t* copied) override {
    if (copied != nullptr) *copied = 0;
    if (count == 0) return Status::Ok();
    if (handles == nullptr || dst == nullptr) {
      return Status(Errc::kInvalid, "tiered store: CopyPages with a null handle or destination");
    }
    std::vector<BackupHandle> inner;
    std::vector<Tier> tiers;
    try {
      inner.resize(count);
      tiers.resize(count);
    } catch (const std::bad_alloc&) {
      return Status(Errc::kNoMemory, "tiered store: out of memory for a copy");
    }
    // Upper-tier entries are pinned while they are read: a writeback leaves a pinned entry in
    // the upper tier, so no page is freed under a copy (and no copy waits for a writeback).
    std::size_t live = 0;
    {
      MutexLock lock(&mu_);
      for (; live < count; ++live) {
        const std::uint64_t v = handles[live].value();
        if (v == 0 || v > entries_.size() || entries_[v - 1].tier == Tier::kFree ||
            entries_[v - 1].dropped || entries_[v - 1].pins == UINT16_MAX) {
          break;
        }
        const auto idx = static_cast<std::uint32_t>(v - 1);
        Entry& e = entries_[idx];
        inner[live] = e.inner;
        tiers[live] = e.tier;
        if (e.tier == Tier::kUpper) {
          ++e.pins;
          if (!e.moving) {
            Unlink(idx);
            PushMru(idx);
          }
        }
      }
    }
    std::size_t done = 0;
    Status status;
    while (done < live) {
      std::size_t run = 1;
      while (done + run < live && tiers[done + run] == tiers[done]) ++run;
      BackupStore* store = tiers[done] == Tier::kUpper ? upper_.get() : lower_.get();
      std::size_t got = 0;
      status = store->CopyPages(inner.data() + done, run, dst + done * kPageSize, ctx, &got);
      stats_->Add(tiers[done] == Tier::kUpper ? Stat::kTierUpperReads : Stat::kTierLowerReads, got);
      done += got;
      if (!status.ok()) break;
    }
    // Unpin; an entry dropped while it was read is freed by its last reader.
    BackupHandle freed[kWritebackBatch];
    std::size_t nfreed = 0;
    for (std::size_t i = 0; i < live;) {
      {
        MutexLock lock(&mu_);
        for (; i < live && nfreed < kWritebackBatch; ++i) {
          if (tiers[i] != Tier::kUpper) continue;
          const auto idx = static_cast<std::uint32_t>(handles[i].value() - 1);
          Entry& e = entries_[idx];
          if (--e.pins == 0 && e.dropped && !e.moving) {
            freed[nfreed++] = e.inner;
            Free(idx);
          }
        }
      }
      if (nfreed > 0) upper_->Drop(freed, nfreed);
      nfreed = 0;
    }
    if (copied != nullptr) *copied = done;
    if (!status.ok()) return status;
    if (live < count) {
      return Status(Errc::kInvalid, "tiered store: handle " +
                                        std::to_string(handles[live].value()) + " (index " +
                                        std::to_string(live) + ") is not a live handle");
    }
    return Status::Ok();
  }

  void Drop(const BackupHandle* handles, std::size_t count) override {
    if (handles == nullptr) return;
    // Inner handles to drop, gathered in small batches (no allocation).
    BackupHandle up[kWritebackBatch];
    BackupHandle down[kWritebackBatch];
    std::size_t i = 0;
    while (i < count) {
      std::size_t nu = 0, nd = 0;
      {
        MutexLock lock(&mu_);
        for (; i < count && nu < kWritebackBatch && nd < kWritebackBatch; ++i) {
          const std::uint64_t v = handles[i].value();
          if (v == 0 || v > entries_.size()) continue;
          const auto idx = static_cast<std::uint32_t>(v - 1);
          Entry& e = entries_[idx];
          if (e.tier == Tier::kFree || e.dropped) continue;
          if (e.moving || e.pins > 0) {
            // Being written back, or read: the writeback or the last reader frees it.
            if (!e.moving) Unlink(idx);
            e.dropped = true;
            continue;
          }
          (e.tier == Tier::kUpper ? up[nu++] : down[nd++]) = e.inner;
          if (e.tier == Tier::kUpper) Unlink(idx);
          Free(idx);
        }
      }
      if (nu > 0) upper_->Drop(up, nu);
      if (nd > 0) lower_->Drop(down, nd);
    }
  }

  std::uint64_t BytesAvailable() const override {
    return upper_->BytesAvailable() + lower_->BytesAvailable();
  }
  std::uint64_t BytesUsed() const override { return upper_->BytesUsed() + lower_->BytesUsed(); }

  Status Flush() override {
    Status a = upper_->Flush();
    Status b = lower_->Flush();
    return a.ok() ? b : a;
  }

  std::string Describe() const override {
    return "tier:" + upper_->Describe() + " over " + lower_->Describe();
  }

  bool HoldsMemory() const override { return upper_->HoldsMemory(); }

 private:
  // Makes room for `n` more entries than the calls in progress have made room for (may throw
  // std::bad_alloc; changes nothing then). Register uses it up, Unreserve gives back the rest.
  void Reserve(std::size_t n) UTTM_REQUIRES(mu_) {
    const std::size_t spare = (entries_.size() - used_) + (entries_.capacity() - entries_.size());
    if (spare < reserved_ + n) {
      entries_.reserve(
          std::max(entries_.capacity() + (reserved_ + n - spare), 2 * entries_.capacity()));
    }
    reserved_ += n;
  }
  void Unreserve(std::size_t n) {
    MutexLock lock(&mu_);
    reserved_ -= n;
  }

  // Gives `n` inner handles of `tier` tiered handles (written to `out`). Never allocates beyond
  // what Reserve made room for.
  void Register(Tier tier, const BackupHandle* inner, std::size_t n, BackupHandle* out) {
    MutexLock lock(&mu_);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint32_t idx;
      if (free_ != kNone) {
        idx = free_;
        free_ = entries_[idx].next;
      } else {
        idx = static_cast<std::uint32_t>(entries_.size());
        entries_.emplace_back();  // within the reserved capacity
      }
      entries_[idx] = Entry{};
      entries_[idx].inner = inner[i];
      entries_[idx].tier = tier;
      ++used_;
      --reserved_;
      if (tier == Tier::kUpper) PushMru(idx);
      out[i] = BackupHandle(std::uint64_t{idx} + 1);
    }
  }

  void Free(std::uint32_t idx) UTTM_REQUIRES(mu_) {
    entries_[idx] = Entry{};
    entries_[idx].next = free_;
    free_ = idx;
    --used_;
  }

  void PushMru(std::uint32_t idx) UTTM_REQUIRES(mu_) {
    Entry& e = entries_[idx];
    e.prev = kNone;
    e.next = mru_;
    if (mru_ != kNone) entries_[mru_].prev = idx;
    mru_ = idx;
    if (lru_ == kNone) lru_ = idx;
  }

  void Unlink(std::uint32_t idx) UTTM_REQUIRES(mu_) {
    Entry& e = entries_[idx];
    (e.prev != kNone ? entries_[e.prev].next : mru_) = e.next;
    (e.next != kNone ? entries_[e.next].prev : lru_) = e.prev;
    e.prev = e.next = kNone;
  }

  // Moves up to `want` of the upper tier's least recently used pages to the lower tier, in
  // batches of at most kWritebackBatch; returns how many moved (0: the upper tier is empty). An
  // error of the lower tier stops it; the entries of that batch stay in the upper tier.
  Result<std::size_t> WriteBack(std::size_t want) {
    MutexLock one(&writeback_mu_);
    if (scratch_ == nullptr) {
      scratch_.reset(
          static_cast<std::byte*>(std::aligned_alloc(kPageSize, kWritebackBatch * kPageSize)));
      if (scratch_ == nullptr) {
        return Status(Errc::kNoMemory, "tiered store: no memory for its writeback buffer");
      }
    }
    std::size_t moved = 0;
    while (moved < want) {
      std::uint32_t idx[kWritebackBatch];
      BackupHandle up[kWritebackBatch];
      BackupHandle down[kWritebackBatch];
      std::size_t n = 0;
      {
        MutexLock lock(&mu_);
        while (n < std::min(kWritebackBatch, want - moved) && lru_ != kNone) {
          const std::uint32_t i = lru_;
          Unlink(i);
          entries_[i].moving = true;
          idx[n] = i;
          up[n] = entries_[i].inner;
          ++n;
        }
      }
      if (n == 0) break;
      std::size_t read = 0;
      Status s = upper_->CopyPages(up, n, scratch_.get(), OperationContext{}, &read);
      std::size_t written = 0;
      if (read > 0) {
        Result<std::size_t> r = lower_->BackupPages(scratch_.get(), read, {}, down);
        if (r.ok()) {
          written = *r;
        } else {
          s = r.status();
        }
      }
      if (written < n && s.ok()) {
        s = Status(Errc::kNoSpace, "tiered store: the lower tier took only part of a writeback");
      }
      // Switch the written entries to the lower tier and free them in the upper one; an entry a
      // copy is reading stays where it is (its new copy is dropped). The rest go back to the
      // cold end of the LRU.
      BackupHandle freed_up[kWritebackBatch];
      BackupHandle freed_down[kWritebackBatch];
      std::size_t nfu = 0, nfd = 0, switched = 0;
      {
        MutexLock lock(&mu_);
        for (std::size_t k = n; k-- > 0;) {
          Entry& e = entries_[idx[k]];
          e.moving = false;
          if (k < written && e.pins == 0) {
            freed_up[nfu++] = up[k];
            ++switched;
            if (e.dropped) {
              freed_down[nfd++] = down[k];
              Free(idx[k]);
            } else {
              e.tier = Tier::kLower;
              e.inner = down[k];
            }
            continue;
          }
          if (k < written) freed_down[nfd++] = down[k];  // pinned: read now, so not cold
          if (e.dropped && e.pins == 0) {
            freed_up[nfu++] = up[k];
            Free(idx[k]);
          } else if (e.dropped) {
            // Dropped while a copy reads it: off the LRU, freed by the copy's unpin.
          } else if (k < written || (k == read && read < n)) {
            PushMru(idx[k]);  // being read, or unreadable in the upper tier: not next to go
          } else {
            PushLru(idx[k]);
          }
        }
      }
      if (nfu > 0) upper_->Drop(freed_up, nfu);
      if (nfd > 0) lower_->Drop(freed_down, nfd);
      stats_->Add(Stat::kTierWritebackPages, switched);
      moved += switched;
      if (!s.ok()) {
        stats_->Add(Stat::kTierWritebackErrors);
        return Status(s.code(), "tiered store: writeback to " + lower_->Describe() +
                                    " failed: " + std::string(s.message()));
      }
    }
    return moved;
  }

  void PushLru(std::uint32_t idx) UTTM_REQUIRES(mu_) {
    Entry& e = entries_[idx];
    e.next = kNone;
    e.prev = lru_;
    if (lru_ != kNone) entries_[lru_].next = idx;
    lru_ = idx;
    if (mru_ == kNone) mru_ = idx;
  }

  struct FreeDeleter {
    void operator()(std::byte* p) const { std::free(p); }
  };

  const std::unique_ptr<BackupStore> upper_;
  const std::unique_ptr<BackupStore> lower_;
  Stats* const stats_;
  Mutex writeback_mu_;  // one writeback at a time
  std::unique_ptr<std::byte, FreeDeleter> scratch_ UTTM_GUARDED_BY(writeback_mu_);
  Mutex mu_;
  std::vector<Entry> entries_ UTTM_GUARDED_BY(mu_);
  std::size_t used_ UTTM_GUARDED_BY(mu_) = 0;      // entries not free
  std::size_t reserved_ UTTM_GUARDED_BY(mu_) = 0;  // entries backups in progress may still take
  std::uint32_t free_ UTTM_GUARDED_BY(mu_) = kNone;
  std::uint32_t mru_ UTTM_GUARDED_BY(mu_) = kNone;  // most recently used upper-tier entry
  std::uint32_t lru_ UTTM_GUARDED_BY(mu_) = kNone;  // least recently used: written back first
};

Result<std::unique_ptr<BackupStore>> MakeFromSpec(const BackupStoreSpec& spec,
                                                  const BackupStoreEnv& env) {
  // The factory split "tier:UPPER+LOWER" at ':' and ','; put the two specs back together.
  std::string both(spec.directory);
  for (std::string_view opt : spec.options) both += "," + std::string(opt);
  const std::size_t plus = both.find('+');
  if (!spec.has_directory || plus == std::string::npos) {
    return BackupStoreSpecError(spec.text,
                                "a tiered store is \"tier:UPPER+LOWER\" (e.g. "
                                "\"tier:lz4,cap=256M+file:/var/tmp\")");
  }
  const std::string upper_spec = both.substr(0, plus);
  const std::string lower_spec = both.substr(plus + 1);
  if (upper_spec.empty() || lower_spec.empty()) {
    return BackupStoreSpecError(
        spec.text,
        std::string("the ") + (upper_spec.empty() ? "upper" : "lower") + " tier's spec is empty");
  }
  Result<std::unique_ptr<BackupStore>> upper = CreateBackupStore(upper_spec, env.stats, env.memory);
  if (!upper.ok()) {
    return Status(upper.code(),
                  "tiered store, upper tier: " + std::string(upper.status().message()));
  }
  Result<std::unique_ptr<BackupStore>> lower = CreateBackupStore(lower_spec, env.stats, env.memory);
  if (!lower.ok()) {
    return Status(lower.code(),
                  "tiered store, lower tier: " + std::string(lower.status().message()));
  }
  return NewTieredStore(std::move(upper).value(), std::move(lower).value(), env.stats);
}

}  // namespace

Result<std::unique_ptr<BackupStore>> NewTieredStore(std::unique_ptr<BackupStore> upper,
                                                    std::unique_ptr<BackupStore> lower,
                                                    Stats* stats) {
  if (upper == nullptr || lower == nullptr) {
    return Status(Errc::kInvalid, "tiered store: both tiers are needed");
  }
  return std::unique_ptr<BackupStore>(new TieredStore(
      std::move(upper), std::move(lower), stats != nullptr ? stats : &Stats::Default()));
}

void RegisterTieredStoreKind() { (void)RegisterBackupStoreKind("tier", MakeFromSpec); }

}  // namespace uttm
