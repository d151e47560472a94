// Copyright (c) uttm developers.
//
// runtime.cc: Runtime::Open and its teardown (the wiring that users used to copy from the tool).

#include "uttm/runtime.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "uttm/backup_store_factory.h"
#include "uttm/bo_shrinker.h"
#include "uttm/bo_swapout.h"
#include "uttm/caching.h"
#include "uttm/fault_injection.h"
#include "uttm/invariants.h"
#include "uttm/lru.h"
#include "uttm/pressure_headroom.h"
#include "uttm/pressure_source.h"
#include "uttm/resource_manager.h"
#include "uttm/shmem_tt_funcs.h"

namespace uttm {

// One device and what was made for it. Destroyed in member order reversed: the device (or the
// simulated GPU that owns it) before the shrinker whose callbacks it uses.
struct Runtime::DeviceEntry {
  std::unique_ptr<ShmemTtFuncs> file_backed;  // set for a file-backed share (AddSimGpu)
  std::unique_ptr<BoShrinker> shrinker;
  std::unique_ptr<SimGpu> gpu;     // set for AddSimGpu
  std::unique_ptr<Device> device;  // set for AddDevice
  Device* get() const { return gpu != nullptr ? gpu->device() : device.get(); }
};

namespace {

std::uint64_t CountResources(ListHead& head) {
  std::uint64_t n = 0;
  for (ListNode* node = head.front(); node != nullptr && !head.is_end(node); node = node->next()) {
    if (node->kind() == kLruResource) ++n;
  }
  return n;
}

std::string MiB(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// The default page limit: 3/4 of the memory cgroup's limit (`cgroup`: null when the process has
// none), else half of MemAvailable.
Result<std::uint64_t> DefaultPageLimit(PressureHeadroom* cgroup, std::string* why) {
  if (cgroup != nullptr) {
    Result<MemorySample> s = cgroup->source().Sample();
    if (s.ok() && s->has_limit) {
      *why = "3/4 of the memory cgroup's limit of " + MiB(s->limit_bytes);
      return s->limit_bytes / 4 * 3;
    }
  }
  Result<MemInfo> mi = ReadMemInfo();
  if (!mi.ok()) return mi.status();
  *why = "half of MemAvailable (" + MiB(mi->mem_available) + ")";
  return mi->mem_available / 2;
}

}  // namespace

Runtime::Runtime(const RuntimeOptions& options)
    : options_(options),
      owned_stats_(options.stats == nullptr ? std::make_unique<Stats>() : nullptr),
      stats_(options.stats != nullptr ? options.stats : owned_stats_.get()),
      budgets_(std::make_unique<BudgetTree>()),
      reclaimer_(stats_) {}

Result<std::unique_ptr<Runtime>> Runtime::Open(const RuntimeOptions& options) {
  if (options.page_limit.value() % kPageSize != 0) {
    return Status(Errc::kInvalid, "RuntimeOptions::page_limit: must be a multiple of 4096 (got " +
                                      std::to_string(options.page_limit.value()) + ")");
  }
  if (options.page_pool_size.value() % kPageSize != 0) {
    return Status(Errc::kInvalid,
                  "RuntimeOptions::page_pool_size: must be a multiple of 4096 (got " +
                      std::to_string(options.page_pool_size.value()) + ")");
  }
  if (options.file_backed_budget.value() != 0 && !options.reclaim_thread) {
    return Status(Errc::kInvalid,
                  "RuntimeOptions::file_backed_budget: needs the reclaim thread (reclaim_thread)");
  }
  if (options.faults_from_environment) {
    Status s = FaultInjection::ConfigureFromEnvironment();
    if (!s.ok()) return Status(Errc::kInvalid, "UTTM_FAULTS: " + std::string(s.message()));
  }
  std::unique_ptr<Runtime> rt(new Runtime(options));
  UTTM_RETURN_IF_ERROR(rt->Build());
  return rt;
}

Status Runtime::Build() {
  // The memory cgroup's limit, if the process has one: the default page limit and the headroom.
  std::unique_ptr<PressureHeadroom> cgroup;
  if (auto h = PressureHeadroom::DetectCgroup(); h.ok()) cgroup = std::move(h).value();
  std::uint64_t limit = options_.page_limit.value();
  if (limit == 0) {
    std::string why;
    UTTM_ASSIGN_OR_RETURN(limit, DefaultPageLimit(cgroup.get(), &why));
    limit = std::max<std::uint64_t>(limit / kPageSize * kPageSize, kPageSize);
    notes_.push_back("page limit " + MiB(limit) + ": " + why);
  } else {
    notes_.push_back("page limit " + MiB(limit) + ": from the options");
  }
  MemoryContextOptions mo;
  mo.pages_limit = PageCount(limit / kPageSize);
  mo.page_pool_size = PageCount(options_.page_pool_size.value() / kPageSize);
  mo.soft_pages_limit = options_.soft_page_limit;
  mo.host_memory = options_.host_memory;
  mo.host_memory_hooks = options_.host_memory_hooks;
  mo.stats = stats_;
  memory_ = std::make_unique<MemoryContext>(mo);

  if (options_.store != nullptr) {
    store_ = options_.store;
  } else {
    Result<std::unique_ptr<BackupStore>> s =
        CreateBackupStore(options_.store_spec, stats_, memory_.get());
    if (!s.ok()) {
      return Status(s.status().code(), "backup store '" + options_.store_spec +
                                           "': " + std::string(s.status().message()));
    }
    owned_store_ = std::move(s).value();
    if (options_.wrap_store) {
      owned_store_ = options_.wrap_store(std::move(owned_store_));
      if (owned_store_ == nullptr) {
        return Status(Errc::kInvalid, "RuntimeOptions::wrap_store returned no store");
      }
    }
    store_ = owned_store_.get();
  }
  notes_.push_back("store: " + store_->Describe());

  // The pool's shrinker, and the reclaimer as the direct-reclaim hook (for charges and the pool).
  UTTM_RETURN_IF_ERROR(RegisterDeviceReclaim(&reclaimer_, nullptr, memory_.get()));
  pool_registered_ = true;
  if (options_.watermark_swapout) InstallWatermarkSwapout(*memory_);
  if (options_.cgroup_headroom && cgroup != nullptr) {
    headroom_ = std::move(cgroup);
    memory_->set_headroom(headroom_.get());
    notes_.push_back("headroom: every charge fits below " + headroom_->Describe());
  }
  if (options_.reclaim_thread) {
    reclaim_thread_ = std::make_unique<ReclaimThread>(&reclaimer_, options_.reclaim_thread_options);
    MemoryContext* m = memory_.get();
    UTTM_RETURN_IF_ERROR(reclaim_thread_->AddSource(std::make_unique<BudgetSource>(
        "page-limit", [m] { return m->accounted_pages().value() * kPageSize; }, limit)));
    if (options_.file_backed_budget.value() != 0) {
      UTTM_RETURN_IF_ERROR(reclaim_thread_->AddSource(std::make_unique<BudgetSource>(
          "file-backed", [this] { return FileBackedResidentBytes(); },
          options_.file_backed_budget.value())));
      notes_.push_back("file-backed budget " + MiB(options_.file_backed_budget.value()));
    }
    if (options_.detect_pressure) {
      std::vector<std::string> found;
      for (auto& source : DetectPressureSources(&found)) {
        UTTM_RETURN_IF_ERROR(reclaim_thread_->AddSource(std::move(source)));
      }
      for (std::string& f : found) notes_.push_back("pressure: " + f);
    }
    UTTM_RETURN_IF_ERROR(reclaim_thread_->Start());
  }
  if (options_.prefetch_threads > 0) {
    prefetcher_ = std::make_unique<Prefetcher>(
        PrefetcherOptions{.threads = options_.prefetch_threads, .stats = stats_});
  }
  return Status::Ok();
}

Runtime::~Runtime() {
  Status s = Close();
  if (!s.ok()) {
    std::fprintf(stderr,
                 "uttm: runtime '%s' destroyed with live buffer objects: %s; those devices, the "
                 "memory context, the store and the stats stay allocated until the process ends\n",
                 options_.name.c_str(), std::string(s.message()).c_str());
  }
  if (memory_ != nullptr) {
    memory_->set_over_limit(nullptr);
    memory_->set_headroom(nullptr);
  }
  if (pool_registered_) UnregisterDeviceReclaim(&reclaimer_, nullptr, memory_.get());
  if (!leaked_) return;
  // Devices that still hold objects, and everything they use, outlive the runtime (a deferred
  // release): nothing of the runtime that goes now is reachable from them any more.
  MutexLock lock(&mu_);
  for (auto& e : devices_) {
    (void)reclaimer_.Unregister(e->shrinker.get());
    (void)e.release();
  }
  (void)memory_.release();
  (void)budgets_.release();
  (void)owned_store_.release();
  (void)owned_stats_.release();
}

Result<Runtime::DeviceEntry*> Runtime::Register(std::unique_ptr<DeviceEntry> entry) {
  UTTM_RETURN_IF_ERROR(entry->shrinker->Attach(entry->get()));
  UTTM_RETURN_IF_ERROR(reclaimer_.Register(entry->shrinker.get()));
  if (entry->file_backed != nullptr) {
    entry->file_backed->Bind(entry->get());
    Status s = reclaimer_.Register(entry->file_backed->shrinker());
    if (!s.ok()) {
      (void)reclaimer_.Unregister(entry->shrinker.get());
      return s;
    }
  }
  MutexLock lock(&mu_);
  devices_.push_back(std::move(entry));
  return devices_.back().get();
}

Result<Device*> Runtime::AddDevice(DeviceFuncs* driver, const RuntimeDeviceOptions& options) {
  if (driver == nullptr) return Status(Errc::kInvalid, "Runtime::AddDevice: null driver");
  auto entry = std::make_unique<DeviceEntry>();
  BoShrinkerOptions so;
  so.name = "uttm-bo-" + options.name;
  so.owns_tt = options_.shrinker_owns_tt;
  entry->shrinker = std::make_unique<BoShrinker>(driver, so);
  DeviceOptions o;
  o.name = options.name;
  o.memory = memory_.get();
  o.backup_store = store_;
  o.keep_clean_copies = options_.keep_clean_copies;
  o.budgets = budgets_.get();
  UTTM_ASSIGN_OR_RETURN(entry->device, Device::Create(entry->shrinker->funcs(), o));
  UTTM_ASSIGN_OR_RETURN(DeviceEntry * e, Register(std::move(entry)));
  return e->get();
}

Result<SimGpu*> Runtime::AddSimGpu(const SimGpuOptions& options,
                                   const ShmemTtFuncsOptions& file_backed) {
  if (!(file_backed.share >= 0 && file_backed.share <= 1)) {
    return Status(Errc::kInvalid, "Runtime::AddSimGpu: the file-backed share must be in 0..1");
  }
  if (options.memory != nullptr || options.backup_store != nullptr || options.wrap_funcs) {
    return Status(Errc::kInvalid,
                  "Runtime::AddSimGpu: memory, backup_store and wrap_funcs are the runtime's to "
                  "set");
  }
  auto entry = std::make_unique<DeviceEntry>();
  SimGpuOptions o = options;
  o.memory = memory_.get();
  o.backup_store = store_;
  o.keep_clean_copies = options_.keep_clean_copies;
  o.budgets = budgets_.get();
  BoShrinkerOptions so;
  so.name = "uttm-bo-" + options.name;
  so.owns_tt = options_.shrinker_owns_tt;
  o.wrap_funcs = [&](DeviceFuncs* driver) {
    if (file_backed.share > 0) {
      entry->file_backed = std::make_unique<ShmemTtFuncs>(driver, file_backed);
      driver = entry->file_backed.get();
    }
    entry->shrinker = std::make_unique<BoShrinker>(driver, so);
    return entry->shrinker->funcs();
  };
  UTTM_ASSIGN_OR_RETURN(entry->gpu, SimGpu::Create(o));
  UTTM_ASSIGN_OR_RETURN(DeviceEntry * e, Register(std::move(entry)));
  return e->gpu.get();
}

Status Runtime::RemoveDevice(Device* device) {
  std::unique_ptr<DeviceEntry> entry;
  {
    MutexLock lock(&mu_);
    auto it = std::find_if(devices_.begin(), devices_.end(),
                           [&](const auto& e) { return e->get() == device; });
    if (it == devices_.end()) {
      return Status(Errc::kNotFound, "Runtime::RemoveDevice: not a device of this runtime");
    }
    if ((*it)->gpu != nullptr) (*it)->gpu->Drain();
    device->FlushDelayedDeletes();
    if (device->bo_count() != 0) {
      return Status(Errc::kBusy, "device '" + device->name() + "' has " +
                                     std::to_string(device->bo_count()) + " live buffer objects");
    }
    entry = std::move(*it);
    devices_.erase(it);
  }
  (void)reclaimer_.Unregister(entry->shrinker.get());
  if (entry->file_backed != nullptr) (void)reclaimer_.Unregister(entry->file_backed->shrinker());
  return Status::Ok();  // `entry` goes: the device first, then its shrinkers
}

Result<GemDevice*> Runtime::AddGemDevice(const GemDeviceOptions& options) {
  GemDeviceOptions o = options;
  if (o.stats == nullptr) o.stats = stats_;
  UTTM_ASSIGN_OR_RETURN(std::unique_ptr<GemDevice> dev, GemDevice::Create(o));
  UTTM_RETURN_IF_ERROR(reclaimer_.Register(&dev->shrinker()));
  MutexLock lock(&mu_);
  gem_devices_.push_back(std::move(dev));
  return gem_devices_.back().get();
}

Status Runtime::RemoveGemDevice(GemDevice* device) {
  std::unique_ptr<GemDevice> dev;
  {
    MutexLock lock(&mu_);
    auto it = std::find_if(gem_devices_.begin(), gem_devices_.end(),
                           [&](const auto& d) { return d.get() == device; });
    if (it == gem_devices_.end()) {
      return Status(Errc::kNotFound, "Runtime::RemoveGemDevice: not a GEM device of this runtime");
    }
    if (device->object_count() != 0) {
      return Status(Errc::kBusy, "GEM device '" + device->name() + "' has " +
                                     std::to_string(device->object_count()) + " live objects");
    }
    dev = std::move(*it);
    gem_devices_.erase(it);
  }
  (void)reclaimer_.Unregister(&dev->shrinker());
  return Status::Ok();
}

std::vector<GemDevice*> Runtime::gem_devices() const {
  MutexLock lock(&mu_);
  std::vector<GemDevice*> out;
  for (const auto& d : gem_devices_) out.push_back(d.get());
  return out;
}

Status Runtime::Prefetch(BoRef bo) {
  if (!bo) return Status(Errc::kInvalid, "Runtime::Prefetch: null buffer object");
  if (prefetcher_ == nullptr) {
    return Status(Errc::kInvalid,
                  "Runtime::Prefetch: the runtime has no prefetcher "
                  "(RuntimeOptions::prefetch_threads is 0)");
  }
  {
    MutexLock lock(&mu_);
    if (FindEntry(&bo->device()) == nullptr) {
      return Status(Errc::kInvalid,
                    "Runtime::Prefetch: the object belongs to a device of another runtime");
    }
  }
  return prefetcher_->Prefetch(std::move(bo));
}

Status Runtime::Close() {
  if (reclaim_thread_ != nullptr) reclaim_thread_->Stop();
  // Hints hold references to objects: they go before the devices.
  if (prefetcher_ != nullptr) prefetcher_->Stop();
  std::vector<Device*> all = devices();
  std::string busy;
  std::vector<GemDevice*> gems = gem_devices();
  for (auto it = gems.rbegin(); it != gems.rend(); ++it) {
    Status s = RemoveGemDevice(*it);
    if (s.code() == Errc::kBusy) busy += (busy.empty() ? "" : "; ") + std::string(s.message());
  }
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    Status s = RemoveDevice(*it);
    if (s.code() == Errc::kBusy) busy += (busy.empty() ? "" : "; ") + std::string(s.message());
  }
  // Only the last call counts: devices refused earlier may have been removed since.
  leaked_ = !busy.empty();
  if (!leaked_) return Status::Ok();
  return Status(Errc::kBusy, busy);
}

std::vector<Device*> Runtime::devices() const {
  MutexLock lock(&mu_);
  std::vector<Device*> out;
  for (const auto& e : devices_) out.push_back(e->get());
  return out;
}

RuntimeSnapshot Runtime::Snapshot() const {
  RuntimeSnapshot s;
  s.name = options_.name;
  {
    MutexLock lock(&mu_);
    for (const auto& g : gem_devices_) {
      RuntimeSnapshot::GemDevice gd;
      gd.name = g->name();
      gd.can_evict = g->can_evict();
      gd.objects = g->object_count();
      gd.backing = g->backing_description();
      const GemDevice::LruPages pages = g->lru_pages();
      gd.purgeable_pages = pages.dontneed;
      gd.evictable_pages = pages.willneed;
      gd.pinned_pages = pages.pinned;
      gd.evicted_pages = pages.evicted;
      s.gem_devices.push_back(std::move(gd));
    }
    for (const auto& e : devices_) {
      Device* d = e->get();
      RuntimeSnapshot::Device dev;
      dev.name = d->name();
      dev.buffer_objects = d->bo_count();
      dev.shrinkable_pages = e->shrinker->shrinkable_pages();
      dev.purgeable_pages = e->shrinker->purgeable_pages();
      MutexLock lru(d->lru().lock());
      for (MemType t = 0; t < kNumMemTypes; ++t) {
        ResourceManager* m = d->manager(t);
        if (m == nullptr) continue;
        RuntimeSnapshot::Manager man;
        man.type = MemTypeName(t);
        man.usage_bytes = m->usage();
        man.size_bytes = m->size() * kPageSize;
        for (unsigned p = 0; p < kNumPriorities; ++p)
          man.lru_lengths[p] = CountResources(m->lru(p));
        dev.managers.push_back(man);
      }
      dev.unevictable = CountResources(d->lru().unevictable());
      s.devices.push_back(std::move(dev));
    }
  }
  for (BudgetGroup* g : budgets_->Groups()) {
    for (int r = 0; r < budgets_->num_regions(); ++r) {
      const BudgetCounters c = g->Read(r);
      const bool any = c.current != 0 || c.peak != 0 || c.min != 0 || c.low != 0 ||
                       c.high != kBudgetUnlimited || c.max != kBudgetUnlimited || c.max_hits != 0 ||
                       c.evictions_caused != 0 || c.evictions_suffered != 0;
      if (any) s.budgets.push_back({g->path(), budgets_->RegionName(r), c});
    }
  }
  s.pages_allocated = memory_->pages_allocated().value();
  s.pages_limit = memory_->pages_limit().value();
  PagePool& pool = memory_->pool();
  s.pooled_pages = pool.pooled_pages();
  s.page_pool_size = pool.page_pool_size().value();
  for (Caching c : {Caching::kCached, Caching::kWriteCombined, Caching::kUncached}) {
    RuntimeSnapshot::PoolType type;
    type.caching = CachingName(c);
    for (unsigned o = 0; o < kNumPageOrders; ++o) {
      type.chunks_by_order[o] = pool.chunk_count(c, PageOrder(o));
    }
    s.pool_types.push_back(type);
  }
  s.store = store_->Describe();
  s.store_bytes_used = store_->BytesUsed();
  s.store_bytes_available = store_->BytesAvailable();
  auto gauge = [this](Stat st) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(stats_->Current(st), 0));
  };
  s.compressed = RuntimeSnapshot::Compressed{.pages = gauge(Stat::kZstorePages),
                                             .payload_bytes = gauge(Stat::kZstorePayloadBytes),
                                             .slab_bytes = gauge(Stat::kZstoreSlabBytes),
                                             .same_filled = stats_->Get(Stat::kZstoreSameFilled),
                                             .compressed = stats_->Get(Stat::kZstoreCompressed),
                                             .raw = stats_->Get(Stat::kZstoreRaw),
                                             .compacted = stats_->Get(Stat::kZstoreCompacted),
                                             .external_pages = memory_->external_pages().value()};
  for (const ShrinkerSnapshot& r : reclaimer_.Snapshot()) {
    s.shrinkers.push_back({r.name, r.seeks, r.batch, r.last_count, r.count_calls, r.scan_calls,
                           r.scanned, r.freed, r.stops, r.deferred});
  }
  if (reclaim_thread_ != nullptr) {
    s.reclaim_thread = true;
    s.reclaim_episodes = reclaim_thread_->episodes();
    s.reclaim_sources = reclaim_thread_->DescribeSources();
  }
  s.stats_json = stats_->ToJson();
  s.stats_text = stats_->ToText();
  return s;
}

const Runtime::DeviceEntry* Runtime::FindEntry(const Device* device) const {
  for (const auto& e : devices_) {
    if (e->get() == device) return e.get();
  }
  return nullptr;
}

BoShrinker* Runtime::shrinker(const Device* device) const {
  MutexLock lock(&mu_);
  const DeviceEntry* e = FindEntry(device);
  return e != nullptr ? e->shrinker.get() : nullptr;
}

std::uint64_t Runtime::FileBackedResidentBytes() const {
  MutexLock lock(&mu_);
  std::uint64_t pages = 0;
  for (const auto& e : devices_) {
    if (e->file_backed != nullptr && e->file_backed->shrinker() != nullptr) {
      pages += e->file_backed->shrinker()->resident_pages();
    }
  }
  for (const auto& g : gem_devices_) pages += g->mapped_pages();
  return pages * kPageSize;
}

ShmemTtFuncs* Runtime::file_backed(const Device* device) const {
  MutexLock lock(&mu_);
  const DeviceEntry* e = FindEntry(device);
  return e != nullptr ? e->file_backed.get() : nullptr;
}

Result<std::uint64_t> Runtime::TtShrink() {
  UTTM_ASSIGN_OR_RETURN(std::uint64_t pages, uttm::TtShrink(*memory_));
  if (pages > 0) return pages;
  // The devices whose TT domain their shrinker owns are not the watermark path's: their
  // shrinkers back up one batch instead (the swap reason's "everything eligible").
  std::vector<BoShrinker*> owners;
  {
    MutexLock lock(&mu_);
    for (const auto& e : devices_) {
      if (e->shrinker != nullptr && e->get()->shrinker_owns_tt())
        owners.push_back(e->shrinker.get());
    }
  }
  for (BoShrinker* s : owners) {
    ShrinkControl sc;
    sc.nr_to_scan = kDefaultShrinkBatch;
    sc.reclaim = ReclaimContext{.may_fs = true, .may_io = true, .background = true};
    const std::uint64_t freed = s->Scan(sc);
    if (freed != kShrinkStop && freed > 0) return freed;
  }
  return std::uint64_t{0};
}

Status Runtime::CheckInvariants() {
  InvariantOptions o;
  {
    MutexLock lock(&mu_);
    for (const auto& e : devices_) o.shrinkers.push_back(e->shrinker.get());
  }
  // The runtime's own reclaim thread would hold objects' reservations now and then (the check
  // then answers kBusy): it pauses for the check.
  const bool pause = reclaim_thread_ != nullptr && reclaim_thread_->running();
  if (pause) reclaim_thread_->Stop();
  Status s = uttm::CheckInvariants(*memory_, o);
  if (pause) {
    Status restarted = reclaim_thread_->Start();
    if (!restarted.ok() && s.ok()) return restarted;
  }
  return s;
}

}  // namespace uttm
