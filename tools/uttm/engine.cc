// Copyright (c) uttm developers.
#include "engine.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "content.h"
#include "generator.h"
#include "plot.h"
#include "progress.h"
#include "scratch_buffer.h"
#include "size.h"
#include "trace.h"
#include "uttm/backup_store.h"
#include "uttm/backup_store_factory.h"
#include "uttm/bo_shrinker.h"
#include "uttm/bo_swapout.h"
#include "uttm/buffer_object.h"
#include "uttm/compressed_store.h"
#include "uttm/dmem_cgroup.h"
#include "uttm/encrypted_store.h"
#include "uttm/file_store.h"
#include "uttm/gem_device.h"
#include "uttm/gem_shmem_object.h"
#include "uttm/memory_context.h"
#include "uttm/mutex.h"
#include "uttm/pressure_headroom.h"
#include "uttm/pressure_source.h"
#include "uttm/reclaim_thread.h"
#include "uttm/reclaimer.h"
#include "uttm/redis_store.h"
#include "uttm/resource_manager.h"
#include "uttm/runtime.h"
#include "uttm/sim_gpu.h"
#include "uttm/stats.h"
#include "uttm/tiered_store.h"
#include "uttm/uring_store.h"

namespace uttm::tool {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// Sanitizer builds map shadow memory and keep freed memory in quarantine: their RSS says
// nothing about the memory manager, so the RSS bound is not checked there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif
#else
constexpr bool kSanitizerBuild = false;
#endif

// Trace thread ids: 0 the sampler, 1.. the workers, kOtherTid anything else (reclaim, engine).
constexpr std::uint32_t kOtherTid = 999;
thread_local std::uint32_t t_tid = kOtherTid;

std::atomic<bool> g_sigusr1{false};
extern "C" void OnSigusr1(int) { g_sigusr1.store(true, std::memory_order_relaxed); }

std::uint64_t ReadStatusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t klen = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, klen, key) == 0 && line.size() > klen && line[klen] == ':') {
      return std::strtoull(line.c_str() + klen + 1, nullptr, 10) * 1024;
    }
  }
  return 0;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Forwards to the real store and times every backup and restore call (the store bandwidth of
// the report) and puts each one in the trace.
class TimedStore final : public BackupStore {
 public:
  TimedStore(std::unique_ptr<BackupStore> inner, TraceWriter* trace)
      : inner_(std::move(inner)), trace_(trace) {}

  Result<std::size_t> BackupPages(const std::byte* src, std::size_t count, const BackupFlags& f,
                                  BackupHandle* handles) override {
    const double ts = trace_->NowUs();
    const auto t0 = Clock::now();
    Result<std::size_t> r = inner_->BackupPages(src, count, f, handles);
    NoteBackup(ts, t0, r);
    return r;
  }
  Result<std::size_t> BackupPageList(const std::byte* const* pages, std::size_t count,
                                     const BackupFlags& f, BackupHandle* handles) override {
    const double ts = trace_->NowUs();
    const auto t0 = Clock::now();
    Result<std::size_t> r = inner_->BackupPageList(pages, count, f, handles);
    NoteBackup(ts, t0, r);
    return r;
  }
  Status CopyPages(const BackupHandle* h, std::size_t count, std::byte* dst,
                   const OperationContext& ctx, std::size_t* copied) override {
    const double ts = trace_->NowUs();
    const auto t0 = Clock::now();
    std::size_t n = 0;
    Status s = inner_->CopyPages(h, count, dst, ctx, &n);
    if (copied != nullptr) *copied = n;
    NoteRestore(ts, t0, s.ok() ? count : n);
    return s;
  }
  Status CopyPageList(const BackupHandle* h, std::size_t count, std::byte* const* dst,
                      const OperationContext& ctx, std::size_t* copied) override {
    const double ts = trace_->NowUs();
    const auto t0 = Clock::now();
    std::size_t n = 0;
    Status s = inner_->CopyPageList(h, count, dst, ctx, &n);
    if (copied != nullptr) *copied = n;
    NoteRestore(ts, t0, s.ok() ? count : n);
    return s;
  }
  void Drop(const BackupHandle* h, std::size_t count) override { inner_->Drop(h, count); }
  std::uint64_t BytesAvailable() const override { return inner_->BytesAvailable(); }
  std::uint64_t BytesUsed() const override { return inner_->BytesUsed(); }
  Status Flush() override { return inner_->Flush(); }
  std::string Describe() const override { return inner_->Describe(); }

  std::uint64_t backup_bytes() const { return backup_bytes_.load(); }
  std::uint64_t restore_bytes() const { return restore_bytes_.load(); }
  double backup_seconds() const { return static_cast<double>(backup_ns_.load()) * 1e-9; }
  double restore_seconds() const { return static_cast<double>(restore_ns_.load()) * 1e-9; }

 private:
  void NoteBackup(double ts, Clock::time_point t0, const Result<std::size_t>& r) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0);
    if (!r.ok()) return;
    const std::uint64_t bytes = *r * kPageSize;
    backup_ns_ += static_cast<std::uint64_t>(ns.count());
    backup_bytes_ += bytes;
    trace_->Complete(kEvBackup, "store", t_tid, ts, static_cast<double>(ns.count()) / 1e3,
                     {{"pages", static_cast<double>(*r)}, {"bytes", static_cast<double>(bytes)}});
  }
  void NoteRestore(double ts, Clock::time_point t0, std::size_t pages) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0);
    if (pages == 0) return;
    const std::uint64_t bytes = pages * kPageSize;
    restore_ns_ += static_cast<std::uint64_t>(ns.count());
    restore_bytes_ += bytes;
    trace_->Complete(
        kEvRestore, "store", t_tid, ts, static_cast<double>(ns.count()) / 1e3,
        {{"pages", static_cast<double>(pages)}, {"bytes", static_cast<double>(bytes)}});
  }

  std::unique_ptr<BackupStore> inner_;
  TraceWriter* trace_;
  std::atomic<std::uint64_t> backup_ns_{0}, backup_bytes_{0}, restore_ns_{0}, restore_bytes_{0};
};

// One buffer of a lane: the object (a buffer object, or a GEM shmem object for the
// devices.gem_shmem share) and its expected content.
struct Buf {
  BoRef bo;
  GemRef gem;
  std::unique_ptr<BufferContent> content;
  std::uint32_t cls = 0;
  bool dontneed = false;
  // A WILLNEED found the content purged. The object's advice stays kPurged (sticky), so later
  // WILLNEEDs keep answering "not retained" although the buffer was never purged again.
  bool lost = false;
};

struct Lane {
  std::unique_ptr<LaneGenerator> gen;
  std::unordered_map<std::uint64_t, Buf> bufs;
};

// The report lists the first errors of every kind (so end-of-run verification errors are never
// crowded out by a flood of run-time ones) and counts all of them per kind.
constexpr std::size_t kMaxListedErrorsPerKind = 10;
constexpr auto kSamplePeriod = std::chrono::milliseconds(50);

class Engine {
 public:
  Engine(const Workload& w, const EngineOptions& o) : w_(w), o_(o), trace_(1 << 20) {}

  Status Setup();
  Status SetUpClients();
  Status ApplyCgroupLimits(const Client& c, BudgetGroup* g);
  Status SetClientLimits(const Client& c, BudgetGroup* g, bool reclaim);
  // Buffers in files: file-backed page vectors or GEM shmem objects.
  bool HasFileBacked() const { return w_.devices.file_backed > 0 || w_.devices.gem_shmem > 0; }
  // Resident bytes the file-backed buffers may hold: limits.file_backed, else the page limit.
  std::uint64_t FileBackedBudget() const {
    return w_.limits.file_backed != 0 ? w_.limits.file_backed : w_.limits.page_limit;
  }
  // Where file-backed buffers keep their files: beside the store's file, else in $TMPDIR.
  std::string FileBackedDirectory() const {
    if (w_.limits.store.kind == StoreSpec::Kind::kFile && !w_.limits.store.dir.empty()) {
      return w_.limits.store.dir;
    }
    const char* tmp = std::getenv("TMPDIR");
    return tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp";
  }
  void Run();
  void Teardown();
  Report BuildReport();
  Json InspectState();
  Status WriteOutputs(const Report& report);

 private:
  // Ops (called by the thread driving the lane).
  void DoOp(Lane& lane, const Op& op, ScratchBuffer& scratch);
  void Create(Lane& lane, const Op& op, ScratchBuffer& scratch);
  void Access(Buf& b, const Op& op, bool write, ScratchBuffer& scratch);
  void Madvise(Buf& b, const Op& op, bool dontneed);
  void ValidatePreferred(Buf& b);
  // The GEM shmem share (devices.gem_shmem): whether buffer `id` is a GEM object, and its ops.
  // A GEM buffer holds a use reference on its pages from creation (as a buffer bound to a
  // device does), so its shrinker may evict it; each access maps it (a pin) and copies.
  bool IsGem(std::uint64_t id) const {
    const double s = w_.devices.gem_shmem;
    return s > 0 &&
           std::floor(static_cast<double>(id + 1) * s) > std::floor(static_cast<double>(id) * s);
  }
  Status NewGemObject(Buf& b, std::uint64_t size, const std::byte* initial);
  // Runs `fn(data)` with the object mapped (swapped in first when evicted), under its lock.
  template <typename Fn>
  Status WithGemMapped(Buf& b, std::uint64_t* swapped_in, Fn fn);
  Status GemRead(Buf& b, std::uint64_t off, std::span<std::byte> out, std::uint64_t* swapped_in);
  Status GemWrite(Buf& b, std::uint64_t off, std::span<const std::byte> in);
  Result<bool> GemMadvise(Buf& b, bool dontneed);
  Status ReadAll(Buf& b, std::span<std::byte> out, std::uint64_t* restored);
  void WarnIfTheStoreCannotRelieveTheCgroup();
  static bool Placeable(const Status& s);
  // The context of one op: interruptible when the workload says so (the default).
  OperationContext OpContext() const {
    OperationContext ctx;
    ctx.interruptible = w_.interruptible;
    return ctx;
  }
  // Calls `call` (returning a Status or a Result) again while it reports kInterrupted, as the
  // kernel restarts a system call after -ERESTARTSYS: an interrupted op changed nothing it
  // cannot redo. At most kMaxRestarts times in a row; then the EINTR is the op's error.
  template <typename Call>
  auto Restarting(Call call) -> decltype(call());
  void VerifyLane(Lane& lane, ScratchBuffer& scratch);
  SimGpu& GpuOf(std::uint64_t buffer) { return *gpus_[buffer % gpus_.size()]; }
  Placement PlacementOf(const BufferClass& c) const;

  // Runs `fn(lane)` for every lane with `threads` threads (thread t: lanes t, t+T, ...).
  template <typename Fn>
  void ForLanes(std::uint32_t threads, Fn fn);
  void RunPhase(std::size_t p);

  // Records an error of `kind` (a short word: write, read, verify, ...).
  void AddError(std::string_view kind, std::string e);
  void SamplerLoop();
  void Sample(bool final_sample);
  // Per client: usage by Domain over all devices, and its event counts summed over regions.
  struct ClientEvents {
    std::uint64_t max_hits = 0, suffered = 0, caused = 0, breaches = 0, reclaimed_bytes = 0;
  };
  struct ClientSample {
    std::array<std::uint64_t, 3> usage{};
    ClientEvents events;
  };
  std::vector<ClientSample> SampleClients();
  void TraceClientEvents(const std::vector<ClientSample>& clients, double ts, double dur)
      UTTM_REQUIRES(sample_mu_);
  ProgressSnapshot Snapshot();

  const Workload& w_;
  const EngineOptions o_;
  TraceWriter trace_;

  // Declaration order is destruction order reversed: objects before devices before the
  // shrinkers (the devices' funcs) before the store and the memory context.
  Stats stats_;
  std::unique_ptr<TimedStore> owned_store_;  // a memfd or file store; else the runtime owns it
  TimedStore* store_ = nullptr;
  std::unique_ptr<Runtime> runtime_;
  std::vector<SimGpu*> gpus_;  // the runtime's
  // The workload's clients (workload.h), groups of the runtime's budget tree, by name.
  std::map<std::string, BudgetGroup*, std::less<>> clients_;
  std::vector<Lane> lanes_;

  LatencyHistogram restore_latency_;
  std::atomic<std::uint64_t> ops_done_{0};
  std::atomic<std::uint64_t> placement_fallbacks_{0};
  std::atomic<std::uint64_t> restarts_{0};
  std::uint64_t file_backed_buffers_ = 0;  // counted at Teardown
  GemDevice* gem_ = nullptr;               // the runtime's, with devices.gem_shmem
  Stats gem_stats_;                        // its counters, apart from the file-backed vectors'
  std::atomic<std::uint64_t> gem_buffers_{0};
  std::uint64_t total_ops_ = 0;
  double run_seconds_ = 0;
  Clock::time_point start_;

  Mutex err_mu_;
  struct ErrorKind {
    std::string name;
    std::uint64_t count = 0;
    std::vector<std::string> first;
  };
  std::vector<ErrorKind> errors_ UTTM_GUARDED_BY(err_mu_);  // in order of first occurrence

  // Progress/phase info for the sampler.
  std::atomic<int> phase_index_{-1};
  std::atomic<double> phase_fraction_{0};
  std::unique_ptr<Progress> progress_;

  // Sampler state.
  std::atomic<bool> stop_sampler_{false};
  std::thread sampler_;
  Mutex sample_mu_;
  std::unique_ptr<PlotRecorder> plot_ UTTM_GUARDED_BY(sample_mu_);
  std::vector<DomainUsage> domains_ UTTM_GUARDED_BY(sample_mu_);
  std::uint64_t peak_rss_sampled_ UTTM_GUARDED_BY(sample_mu_) = 0;
  double last_sample_us_ UTTM_GUARDED_BY(sample_mu_) = 0;
  std::array<std::uint64_t, 5> last_counts_ UTTM_GUARDED_BY(sample_mu_){};
  std::vector<ClientEvents> last_client_events_ UTTM_GUARDED_BY(sample_mu_);

  // Verification results.
  std::atomic<std::uint64_t> buf_total_{0}, buf_verified_{0}, buf_not_retained_{0},
      buf_mismatched_{0}, buf_unreadable_{0};
};

MemType MemTypeOf(Domain d) {
  return d == Domain::kVram ? kMemVram : d == Domain::kTt ? kMemTt : kMemSystem;
}

Placement Engine::PlacementOf(const BufferClass& c) const {
  Placement p;
  for (Domain d : c.placement) {
    Place pl;
    pl.mem_type = MemTypeOf(d);
    p.places.push_back(pl);
  }
  return p;
}

void Engine::WarnIfTheStoreCannotRelieveTheCgroup() {
  if (w_.limits.store.kind != StoreSpec::Kind::kMemfd) return;
  struct sysinfo si {};
  if (sysinfo(&si) != 0 || si.totalswap != 0) return;
  // DetectCgroup finds a cgroup only when it has a limit.
  Result<std::unique_ptr<PressureHeadroom>> cgroup = PressureHeadroom::DetectCgroup();
  if (!cgroup.ok()) return;
  Result<MemorySample> sample = (*cgroup)->source().Sample();
  if (!sample.ok()) return;
  // The memfd's pages are shmem charged to this cgroup and, without swap, never leave it:
  // backing up moves memory within the cgroup, it cannot relieve the limit.
  std::fprintf(stderr,
               "uttm: warning: the memfd store cannot relieve the memory cgroup limit of %s "
               "(this machine has no swap: backed-up pages stay in the cgroup); use --store "
               "file to back up to disk\n",
               FormatSize(sample->limit_bytes).c_str());
}

Status Engine::Setup() {
  std::string spec;
  Result<std::unique_ptr<BackupStore>> store = Status(Errc::kInvalid, "no store");
  const bool compressed = w_.limits.store.kind == StoreSpec::Kind::kCompressed;
  if (compressed) {
    // The runtime makes it, so that its memory counts against the runtime's page limit.
    RegisterCompressedStoreKinds();
    RegisterUringStoreKind();
    RegisterTieredStoreKind();
    RegisterRedisStoreKind();
    RegisterEncryptedStoreOption();
  } else if (w_.limits.store.kind == StoreSpec::Kind::kMemfd) {
    spec = "memfd,allow_without_swap";
    store = CreateBackupStore(spec, &stats_);
  } else {
    // The directory goes to the file store as it is: a spec string would split it at a comma.
    spec = FormatStoreSpec(w_.limits.store);
    if (w_.limits.store.kind == StoreSpec::Kind::kUring) {
      UringStoreOptions uo;
      uo.directory = w_.limits.store.dir;
      uo.stats = &stats_;
      store = NewUringStore(uo);
    } else {
      FileStoreOptions fo;
      fo.directory = w_.limits.store.dir;
      fo.stats = &stats_;
      store = NewFileStore(fo);
    }
  }
  if (!compressed) {
    if (store.ok() && w_.limits.store.encrypt) {
      store = NewEncryptedStore(std::move(store).value(), {&stats_});
    }
    if (!store.ok()) {
      return Status(store.status().code(),
                    fmt::format("backup store '{}': {}", spec, store.status().message()));
    }
    owned_store_ = std::make_unique<TimedStore>(std::move(store).value(), &trace_);
    store_ = owned_store_.get();
    WarnIfTheStoreCannotRelieveTheCgroup();
  }

  // Everything else is the library's wiring: memory, reclaim, watermark swapout, headroom,
  // pressure sources and the reclaim thread.
  RuntimeOptions ro;
  ro.name = w_.name;
  ro.page_limit = Bytes(w_.limits.page_limit);
  if (compressed) {
    ro.store_spec = w_.limits.store.spec + (w_.limits.store.encrypt ? ",encrypt" : "");
    ro.wrap_store = [this](std::unique_ptr<BackupStore> s) {
      auto timed = std::make_unique<TimedStore>(std::move(s), &trace_);
      store_ = timed.get();
      return std::unique_ptr<BackupStore>(std::move(timed));
    };
  } else {
    ro.store = store_;
  }
  ro.stats = &stats_;
  if (HasFileBacked()) ro.file_backed_budget = Bytes(FileBackedBudget());
  Result<std::unique_ptr<Runtime>> runtime = Runtime::Open(ro);
  if (!runtime.ok()) {
    if (compressed) store_ = nullptr;  // the runtime made it, and it is gone with the runtime
    return runtime.status();
  }
  runtime_ = std::move(runtime).value();
  for (std::uint32_t i = 0; i < w_.devices.count; ++i) {
    SimGpuOptions so;
    so.name = fmt::format("sim-gpu{}", i);
    so.vram_size = Bytes(w_.devices.vram);
    so.memcpy_moves = w_.devices.moves == Moves::kMemcpy;
    ShmemTtFuncsOptions fb;
    fb.share = w_.devices.file_backed;
    fb.backing.directory = FileBackedDirectory();
    Result<SimGpu*> gpu = runtime_->AddSimGpu(so, fb);
    if (!gpu.ok())
      return Status(gpu.status().code(), fmt::format("device {}: {}", i, gpu.status().message()));
    gpus_.push_back(*gpu);
  }
  UTTM_RETURN_IF_ERROR(SetUpClients());
  if (w_.devices.gem_shmem > 0) {
    GemDeviceOptions go;
    go.name = "gem0";
    go.backing.directory = FileBackedDirectory();
    go.stats = &gem_stats_;
    Result<GemDevice*> gem = runtime_->AddGemDevice(go);
    if (!gem.ok()) {
      return Status(gem.status().code(), fmt::format("GEM device: {}", gem.status().message()));
    }
    gem_ = *gem;
  }

  const std::uint32_t lanes = w_.Lanes();
  lanes_.resize(lanes);
  for (std::uint32_t l = 0; l < lanes; ++l) lanes_[l].gen = std::make_unique<LaneGenerator>(w_, l);

  std::vector<std::string> names;
  {
    MutexLock lock(&sample_mu_);
    for (std::uint32_t i = 0; i < w_.devices.count; ++i) {
      names.push_back(fmt::format("vram{}", i));
      domains_.push_back({names.back(), w_.devices.vram, 0, 0});
    }
    domains_.push_back({"tt", w_.limits.page_limit * w_.devices.count, 0, 0});
    domains_.push_back({"system", 0, 0, 0});
    names.push_back("tt");
    names.push_back("system");
    names.push_back("pages held");
    names.push_back("RSS");
    // Per-client usage per domain (over all devices), shown for the domains a client used.
    const std::size_t always = names.size();
    for (const Client& c : w_.clients) {
      for (Domain d : {Domain::kVram, Domain::kTt, Domain::kSystem}) {
        names.push_back(fmt::format("{} {}", c.name, DomainName(d)));
      }
    }
    plot_ = std::make_unique<PlotRecorder>(names, always);
  }
  return Status::Ok();
}

void Engine::AddError(std::string_view kind, std::string e) {
  MutexLock lock(&err_mu_);
  auto it = std::find_if(errors_.begin(), errors_.end(),
                         [&](const ErrorKind& k) { return k.name == kind; });
  if (it == errors_.end()) it = errors_.insert(errors_.end(), ErrorKind{std::string(kind), 0, {}});
  ++it->count;
  if (it->first.size() < kMaxListedErrorsPerKind) it->first.push_back(std::move(e));
}

namespace {
constexpr int kMaxRestarts = 1000;
const Status& StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.status();
}
}  // namespace

template <typename Call>
auto Engine::Restarting(Call call) -> decltype(call()) {
  for (int i = 0;; ++i) {
    auto r = call();
    if (StatusOf(r).code() != Errc::kInterrupted || i == kMaxRestarts) return r;
    restarts_.fetch_add(1, std::memory_order_relaxed);
  }
}

bool Engine::Placeable(const Status& s) {
  return s.code() == Errc::kNoMemory || s.code() == Errc::kNoSpace || s.code() == Errc::kBusy;
}

void Engine::ValidatePreferred(Buf& b) {
  bool reserved = true;
  const Placement all = PlacementOf(w_.classes[b.cls]);
  Status s = Restarting([&] {
    OperationContext ctx = OpContext();
    Status r = b.bo->Reserve(ctx);
    if (!r.ok()) {
      reserved = false;
      return r;
    }
    reserved = true;
    b.bo->resv()->AssertHeld();
    // The preferred domain alone first (evicting others if needed), as drivers try their
    // preferred domains before the allowed ones; then the whole placement list.
    r = b.bo->Validate(Placement{all.places.front()}, ctx);
    if (!r.ok() && Placeable(r) && all.places.size() > 1) r = b.bo->Validate(all, ctx);
    b.bo->Unreserve();
    return r;
  });
  if (!reserved) {
    AddError("reserve", fmt::format("buffer reserve: {}", s.ToString()));
    return;
  }
  // No room in any domain of the placement right now (everything busy or pinned): the access
  // works wherever the buffer is.
  if (!s.ok() && Placeable(s)) {
    placement_fallbacks_.fetch_add(1, std::memory_order_relaxed);
  } else if (!s.ok()) {
    AddError("validate", fmt::format("validate: {}", s.ToString()));
  }
}

// The workload's clients as groups of the runtime's budget tree, their limits set in each domain
// of every device.
Status Engine::SetUpClients() {
  BudgetTree& tree = runtime_->budgets();
  for (const Client& c : w_.clients) {
    BudgetGroup* parent = c.parent.empty() ? nullptr : clients_.at(c.parent);
    UTTM_ASSIGN_OR_RETURN(BudgetGroup * g, tree.AddGroup(parent, c.name));
    clients_[c.name] = g;
    if (!c.cgroup.empty()) UTTM_RETURN_IF_ERROR(ApplyCgroupLimits(c, g));
    UTTM_RETURN_IF_ERROR(SetClientLimits(c, g, false));
  }
  return Status();
}

// Defaults from a dmem cgroup's files. "self" on a machine without dmem files (cgroup v1, or the
// controller not enabled) is worth a warning, not a failure: the same workload runs anywhere.
Status Engine::ApplyCgroupLimits(const Client& c, BudgetGroup* g) {
  const bool self = c.cgroup == "self";
  auto warn = [&](const Status& why) {
    std::fprintf(stderr,
                 "uttm: warning: client %s: no dmem limits from this process's cgroup: %s\n",
                 c.name.c_str(), std::string(why.message()).c_str());
  };
  std::string dir = c.cgroup;
  if (self) {
    Result<CgroupLocation> own = FindCgroupV2();
    if (!own.ok()) {
      warn(own.status());
      return Status();
    }
    dir = own->dir();
  }
  Result<std::vector<DmemRegionLimits>> limits = ReadDmemLimits(dir);
  if (!limits.ok()) {
    if (self && limits.code() == Errc::kNotFound) {
      warn(limits.status());
      return Status();
    }
    return Status(limits.code(), fmt::format("client {}: cgroup {}: {}", c.name, c.cgroup,
                                             limits.status().message()));
  }
  UTTM_ASSIGN_OR_RETURN(std::vector<std::string> unknown,
                        ApplyDmemLimits(runtime_->budgets(), g, *limits));
  if (!unknown.empty()) {
    std::fprintf(stderr, "uttm: warning: client %s: %s names regions no device here has: %s\n",
                 c.name.c_str(), dir.c_str(), fmt::format("{}", fmt::join(unknown, ", ")).c_str());
  }
  return Status();
}

// Sets `c`'s limits on every device; with `reclaim`, a max now below the group's usage reclaims
// it down (each reclaim's progress is in the group's counters).
Status Engine::SetClientLimits(const Client& c, BudgetGroup* g, bool reclaim) {
  BudgetTree& tree = runtime_->budgets();
  for (Domain d : {Domain::kVram, Domain::kTt, Domain::kSystem}) {
    const ClientLimits& l = c.limits[static_cast<std::size_t>(d)];
    const MemType type = MemTypeOf(d);
    for (SimGpu* gpu : gpus_) {
      const int region = gpu->device()->budget_region(type);
      if (region < 0) continue;
      for (auto [which, value] :
           {std::pair{BudgetLimit::kMin, l.min}, std::pair{BudgetLimit::kLow, l.low},
            std::pair{BudgetLimit::kHigh, l.high}, std::pair{BudgetLimit::kMax, l.max}}) {
        if (value) UTTM_RETURN_IF_ERROR(tree.SetLimit(g, region, which, *value));
      }
      if (reclaim && l.max && g->current(region) > *l.max) {
        OperationContext ctx = OpContext();
        Status s =
            Restarting([&] { return BufferObject::ReclaimBudget(*gpu->device(), g, type, ctx); });
        if (!s.ok()) {
          AddError("reclaim",
                   fmt::format("client {}: lowering {} max to {}: {}", c.name,
                               tree.RegionName(region), FormatSize(*l.max), s.ToString()));
        }
      }
    }
  }
  return Status();
}

void Engine::Create(Lane& lane, const Op& op, ScratchBuffer& scratch) {
  const BufferClass& c = w_.classes[op.class_index];
  BoOptions bo;
  bo.size = Bytes(op.size);
  if (!c.client.empty()) bo.client = clients_.find(c.client)->second;
  bo.priority = static_cast<unsigned>(c.priority);
  if (IsGem(op.buffer)) {
    Buf b;
    b.cls = op.class_index;
    b.content = std::make_unique<BufferContent>(w_.seed, op.buffer, op.size / kPageSize, c.fill);
    const std::byte* initial = nullptr;
    if (c.fill != Fill::kZero) {
      scratch.resize(op.size);
      b.content->FillInitial(scratch.data());
      initial = scratch.data();
    }
    Status s = NewGemObject(b, op.size, initial);
    if (!s.ok()) {
      AddError("create", fmt::format("create GEM buffer {} ({}): {}", op.buffer,
                                     FormatSize(op.size), s.ToString()));
      return;
    }
    gem_buffers_.fetch_add(1, std::memory_order_relaxed);
    lane.bufs.emplace(op.buffer, std::move(b));
    return;
  }
  Device* dev = GpuOf(op.buffer).device();
  const Placement all = PlacementOf(c);
  auto create = [&](const Placement& placement) {
    return Restarting([&] {
      OperationContext ctx = OpContext();
      return BufferObject::Create(dev, bo, placement, ctx);
    });
  };
  Result<BoRef> r = create(Placement{all.places.front()});
  if (!r.ok() && Placeable(r.status()) && all.places.size() > 1) r = create(all);
  if (!r.ok() && Placeable(r.status())) {
    placement_fallbacks_.fetch_add(1, std::memory_order_relaxed);
    r = create(Placement{Place{}});
  }
  if (!r.ok()) {
    AddError("create", fmt::format("create buffer {} ({}): {}", op.buffer, FormatSize(op.size),
                                   r.status().ToString()));
    return;
  }
  Buf b;
  b.bo = std::move(r).value();
  b.cls = op.class_index;
  b.content = std::make_unique<BufferContent>(w_.seed, op.buffer, op.size / kPageSize, c.fill);
  if (c.fill != Fill::kZero) {
    scratch.resize(op.size);
    b.content->FillInitial(scratch.data());
    Status s = Restarting([&] {
      OperationContext wctx = OpContext();
      return b.bo->Write(0, std::span<const std::byte>(scratch.data(), op.size), wctx);
    });
    if (!s.ok()) {
      AddError("write", fmt::format("initial write of buffer {}: {}", op.buffer, s.ToString()));
      return;
    }
  }
  lane.bufs.emplace(op.buffer, std::move(b));
}

Status Engine::NewGemObject(Buf& b, std::uint64_t size, const std::byte* initial) {
  UTTM_ASSIGN_OR_RETURN(GemRef obj, gem_->CreateObject(Bytes(size)));
  if (!obj->resv()->TryLock()) return Status(Errc::kBusy, "a new GEM object is locked");
  obj->resv()->AssertHeld();
  Status s = obj->GetPages();  // the use reference the buffer holds while it lives
  if (s.ok() && initial != nullptr) {
    Result<std::byte*> p = obj->Vmap();
    s = p.status();
    if (p.ok()) {
      std::memcpy(*p, initial, size);
      s = obj->Vunmap();
    }
  }
  obj->resv()->Unlock();
  if (s.ok()) b.gem = std::move(obj);
  return s;
}

template <typename Fn>
Status Engine::WithGemMapped(Buf& b, std::uint64_t* swapped_in, Fn fn) {
  GemShmemObject& o = *b.gem;
  return Restarting([&]() -> Status {
    OperationContext ctx = OpContext();
    UTTM_RETURN_IF_ERROR(o.resv()->Lock(nullptr, ctx));
    o.resv()->AssertHeld();
    const bool evicted = o.evicted();
    Result<std::byte*> p = o.Vmap();  // swaps an evicted object in; kInvalid once purged
    Status s = p.status();
    if (p.ok()) {
      if (evicted && swapped_in != nullptr) *swapped_in += o.num_pages().value();
      fn(*p);
      s = o.Vunmap();
    }
    o.resv()->Unlock();
    return s;
  });
}

Status Engine::GemRead(Buf& b, std::uint64_t off, std::span<std::byte> out,
                       std::uint64_t* swapped_in) {
  return WithGemMapped(b, swapped_in,
                       [&](const std::byte* p) { std::memcpy(out.data(), p + off, out.size()); });
}

Status Engine::GemWrite(Buf& b, std::uint64_t off, std::span<const std::byte> in) {
  return WithGemMapped(b, nullptr,
                       [&](std::byte* p) { std::memcpy(p + off, in.data(), in.size()); });
}

Result<bool> Engine::GemMadvise(Buf& b, bool dontneed) {
  GemShmemObject& o = *b.gem;
  bool retained = true;
  Status s = Restarting([&]() -> Status {
    OperationContext ctx = OpContext();
    UTTM_RETURN_IF_ERROR(o.resv()->Lock(nullptr, ctx));
    o.resv()->AssertHeld();
    retained = o.Madvise(dontneed ? 1 : 0);  // false once purged (sticky)
    o.resv()->Unlock();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  // A purged GEM object is dead (no pages can come back): the buffer gets a new one, as a
  // driver's user space allocates again. It reads zeros, as a purged buffer object does.
  if (!retained && !dontneed) UTTM_RETURN_IF_ERROR(NewGemObject(b, o.size().value(), nullptr));
  return retained;
}

Status Engine::ReadAll(Buf& b, std::span<std::byte> out, std::uint64_t* restored) {
  if (b.gem) return GemRead(b, 0, out, restored);
  return Restarting([&] {
    OperationContext ctx = OpContext();
    Status r = b.bo->Read(0, out, ctx);
    *restored += ctx.pages_restored;
    return r;
  });
}

void Engine::Access(Buf& b, const Op& op, bool write, ScratchBuffer& scratch) {
  if (!b.gem) ValidatePreferred(b);
  const std::uint64_t off = op.first_page * kPageSize;
  const std::uint64_t len = op.num_pages * kPageSize;
  if (write) {
    scratch.resize(op.size);
    // The new content is recorded only once the write succeeded: a failed write leaves the old
    // content in place (BufferObject::Write changes nothing on error), and the end-of-run check
    // expects exactly that, so "write failed" and "content lost" stay apart.
    const std::uint32_t gen = b.content->Stage(scratch.data(), op.first_page, op.num_pages);
    const std::span<const std::byte> in(scratch.data() + off, len);
    Status s = b.gem ? GemWrite(b, off, in) : Restarting([&] {
      OperationContext ctx = OpContext();
      return b.bo->Write(off, in, ctx);
    });
    if (!s.ok()) {
      AddError("write", fmt::format("write buffer {} failed, old content kept: {}", op.buffer,
                                    s.ToString()));
      return;
    }
    b.content->Commit(op.first_page, op.num_pages, gen);
    return;
  }
  scratch.resize(len);
  const auto t0 = Clock::now();
  std::uint64_t restored = 0;
  const std::span<std::byte> out(scratch.data(), len);
  Status s = b.gem ? GemRead(b, off, out, &restored) : Restarting([&] {
    OperationContext ctx = OpContext();
    Status r = b.bo->Read(off, out, ctx);
    restored += ctx.pages_restored;
    return r;
  });
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  if (!s.ok()) {
    AddError("read", fmt::format("read buffer {}: {}", op.buffer, s.ToString()));
    return;
  }
  if (restored > 0) restore_latency_.Record(static_cast<std::uint64_t>(ns));
  if (auto m = b.content->VerifyRange(scratch.data(), op.first_page, op.num_pages)) {
    AddError("mismatch",
             fmt::format("buffer {}: mismatch at byte {} (expected 0x{:02x}, got 0x{:02x})",
                         op.buffer, m->offset, m->expected, m->actual));
  }
}

void Engine::Madvise(Buf& b, const Op& op, bool dontneed) {
  Result<bool> r = b.gem ? GemMadvise(b, dontneed) : Restarting([&] {
    OperationContext ctx = OpContext();
    return b.bo->Madvise(dontneed ? Madvice::kDontNeed : Madvice::kWillNeed, ctx);
  });
  if (!r.ok()) {
    AddError("madvise", fmt::format("madvise buffer {}: {}", op.buffer, r.status().ToString()));
    return;
  }
  b.dontneed = dontneed;
  // A GEM buffer that answers "purged" was purged again: its object is new since the last loss.
  if (!dontneed && !*r && (!b.lost || b.gem)) {
    b.lost = true;
    b.content->ResetToZero();
  }
}

void Engine::DoOp(Lane& lane, const Op& op, ScratchBuffer& scratch) {
  if (op.kind == OpKind::kCreate) {
    Create(lane, op, scratch);
  } else {
    auto it = lane.bufs.find(op.buffer);
    if (it == lane.bufs.end()) {
      // Its create failed (already listed as an error): nothing to do.
    } else if (op.kind == OpKind::kRead || op.kind == OpKind::kWrite) {
      Access(it->second, op, op.kind == OpKind::kWrite, scratch);
    } else if (op.kind == OpKind::kMadviseDontNeed || op.kind == OpKind::kMadviseWillNeed) {
      Madvise(it->second, op, op.kind == OpKind::kMadviseDontNeed);
    } else {
      lane.bufs.erase(it);
    }
  }
  ops_done_.fetch_add(1, std::memory_order_relaxed);
}

template <typename Fn>
void Engine::ForLanes(std::uint32_t threads, Fn fn) {
  threads = std::max<std::uint32_t>(1, std::min<std::uint32_t>(threads, lanes_.size()));
  std::vector<std::thread> workers;
  for (std::uint32_t t = 0; t < threads; ++t) {
    workers.emplace_back([this, t, threads, &fn] {
      t_tid = t + 1;
      ScratchBuffer scratch;
      std::vector<Lane*> mine;
      for (std::size_t l = t; l < lanes_.size(); l += threads) mine.push_back(&lanes_[l]);
      fn(mine, scratch);
    });
  }
  for (std::thread& th : workers) th.join();
}

void Engine::RunPhase(std::size_t p) {
  const Phase& ph = w_.phases[p];
  const double ts = trace_.NowUs();
  for (const Client& c : ph.clients) {
    Status s = SetClientLimits(c, clients_.at(c.name), true);
    if (!s.ok())
      AddError("limits", fmt::format("phase {}: client {}: {}", ph.name, c.name, s.ToString()));
  }
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(ph.duration_s));
  std::uint64_t phase_ops = 0;
  if (ph.ops > 0) {
    for (Lane& l : lanes_) phase_ops += l.gen->PhaseOps(p);
  }
  const std::uint64_t ops_before = ops_done_.load();
  std::atomic<bool> stop{false};
  std::thread progress([&] {
    while (!stop.load()) {
      double f = ph.ops > 0 ? static_cast<double>(ops_done_.load() - ops_before) /
                                  static_cast<double>(std::max<std::uint64_t>(1, phase_ops))
                            : Seconds(Clock::now() - start) / ph.duration_s;
      phase_fraction_.store(std::min(1.0, f));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  ForLanes(ph.threads, [&](std::vector<Lane*>& mine, ScratchBuffer& scratch) {
    if (ph.ops > 0) {
      std::vector<std::uint64_t> left;
      for (Lane* l : mine) left.push_back(l->gen->PhaseOps(p));
      bool any = true;
      while (any) {
        any = false;
        for (std::size_t i = 0; i < mine.size(); ++i) {
          if (left[i] == 0) continue;
          --left[i];
          any = true;
          DoOp(*mine[i], mine[i]->gen->Next(p), scratch);
        }
      }
    } else {
      while (Clock::now() < deadline) {
        for (Lane* l : mine) DoOp(*l, l->gen->Next(p), scratch);
      }
    }
  });
  stop.store(true);
  progress.join();
  trace_.Complete(kEvPhase, "run", 0, ts, trace_.NowUs() - ts,
                  {{"ops", static_cast<double>(ops_done_.load() - ops_before)}});
}

void Engine::VerifyLane(Lane& lane, ScratchBuffer& scratch) {
  for (auto& [id, b] : lane.bufs) {
    buf_total_.fetch_add(1);
    if (b.dontneed) {
      Op op;
      op.buffer = id;
      Madvise(b, op, /*dontneed=*/false);
    }
    if (b.lost) buf_not_retained_.fetch_add(1);
    const std::uint64_t size = b.gem ? b.gem->size().value() : b.bo->size().value();
    scratch.resize(size);
    std::uint64_t restored = 0;
    Status s = ReadAll(b, std::span<std::byte>(scratch.data(), size), &restored);
    if (!s.ok()) {
      // Not read (no memory to bring it back, a store read error): nothing was compared, so it
      // is not a mismatch; the error says why.
      buf_unreadable_.fetch_add(1);
      AddError("verify", fmt::format("verify: read buffer {}: {}", id, s.ToString()));
      continue;
    }
    if (auto m = b.content->Verify(scratch.data())) {
      buf_mismatched_.fetch_add(1);
      AddError("verify",
               fmt::format("verify: buffer {} ({}): mismatch at byte {} (expected 0x{:02x}, got "
                           "0x{:02x})",
                           id, b.lost ? "purged, expected zeros" : "retained", m->offset,
                           m->expected, m->actual));
    } else {
      buf_verified_.fetch_add(1);
    }
  }
}

ProgressSnapshot Engine::Snapshot() {
  ProgressSnapshot s;
  const int p = phase_index_.load();
  const double n = static_cast<double>(w_.phases.size());
  if (p < 0) {
    s.phase = "create";
  } else if (p >= static_cast<int>(w_.phases.size())) {
    s.phase = "verify";
  } else {
    s.phase = w_.phases[static_cast<std::size_t>(p)].name;
  }
  s.fraction = p < 0 ? 0 : std::min(1.0, (p + phase_fraction_.load()) / n);
  s.elapsed_s = Seconds(Clock::now() - start_);
  s.ops_done = ops_done_.load();
  s.bytes_moved = stats_.Get(Stat::kBytesMoved) + store_->backup_bytes() + store_->restore_bytes();
  MutexLock lock(&sample_mu_);
  s.domains = domains_;
  return s;
}

void Engine::Sample(bool final_sample) {
  const double now_us = trace_.NowUs();
  std::vector<std::uint64_t> usage;
  std::uint64_t tt = 0, sys = 0;
  for (auto& g : gpus_) {
    usage.push_back(g->device()->manager(kMemVram)->usage());
    tt += g->device()->manager(kMemTt)->usage();
    sys += g->device()->manager(kMemSystem)->usage();
  }
  usage.push_back(tt);
  usage.push_back(sys);
  const std::uint64_t held = runtime_->memory().pages_allocated().value() * kPageSize;
  const std::uint64_t rss = ReadRssBytes();
  const std::uint64_t pool = runtime_->memory().pool().pooled_pages() * kPageSize;

  const std::vector<ClientSample> clients = SampleClients();

  TraceWriter::Args series;
  std::vector<double> values;
  {
    MutexLock lock(&sample_mu_);
    for (std::size_t i = 0; i < usage.size(); ++i) {
      domains_[i].final_bytes = usage[i];
      domains_[i].peak_bytes = std::max(domains_[i].peak_bytes, usage[i]);
      series.emplace_back(domains_[i].name, static_cast<double>(usage[i]));
      values.push_back(static_cast<double>(usage[i]));
    }
    values.push_back(static_cast<double>(held));
    values.push_back(static_cast<double>(rss));
    for (const ClientSample& c : clients) {
      for (std::uint64_t u : c.usage) values.push_back(static_cast<double>(u));
    }
    plot_->Sample(now_us / 1e6, values);
    peak_rss_sampled_ = std::max(peak_rss_sampled_, rss);

    // Counter deltas since the last sample become events spanning the interval.
    const std::array<std::uint64_t, 5> counts = {
        stats_.Get(Stat::kEvictions), stats_.Get(Stat::kPagesPurged), stats_.Get(Stat::kSwapouts),
        stats_.Get(Stat::kShrinkerScans), stats_.Get(Stat::kShrinkerPagesFreed)};
    const double ts = last_sample_us_;
    const double dur = std::max(1.0, now_us - ts);
    std::array<double, 5> d{};
    for (std::size_t i = 0; i < d.size(); ++i) {
      d[i] = static_cast<double>(counts[i] - last_counts_[i]);
    }
    auto delta = [&d](int i) { return d[static_cast<std::size_t>(i)]; };
    if (counts[0] != last_counts_[0]) {
      trace_.Complete(kEvEvict, "reclaim", kOtherTid, ts, dur, {{"objects", delta(0)}});
    }
    if (counts[1] != last_counts_[1]) {
      trace_.Complete(kEvPurge, "reclaim", kOtherTid, ts, dur, {{"pages", delta(1)}});
    }
    if (counts[2] != last_counts_[2]) {
      trace_.Complete(kEvSwapout, "reclaim", kOtherTid, ts, dur, {{"objects", delta(2)}});
    }
    if (counts[3] != last_counts_[3]) {
      trace_.Complete(kEvShrinkerScan, "reclaim", kOtherTid, ts, dur,
                      {{"scans", delta(3)}, {"freed", delta(4)}});
    }
    TraceClientEvents(clients, ts, dur);
    last_counts_ = counts;
    last_sample_us_ = now_us;
  }
  if (!clients.empty()) {
    TraceWriter::Args usage_series;
    for (std::size_t i = 0; i < clients.size(); ++i) {
      for (Domain d : {Domain::kVram, Domain::kTt, Domain::kSystem}) {
        usage_series.emplace_back(
            fmt::format("{} {}", w_.clients[i].name, DomainName(d)),
            static_cast<double>(clients[i].usage[static_cast<std::size_t>(d)]));
      }
    }
    trace_.Counter(kCtrClientUsage, now_us, std::move(usage_series));
  }
  trace_.Counter(kCtrDomainUsage, now_us, std::move(series));
  trace_.Counter(kCtrPoolSize, now_us, {{"bytes", static_cast<double>(pool)}});
  trace_.Counter(kCtrRss, now_us, {{"bytes", static_cast<double>(rss)}});
  trace_.Counter("pages_held", now_us, {{"bytes", static_cast<double>(held)}});
  if (progress_ && !final_sample) progress_->Update(Snapshot());
  if (g_sigusr1.exchange(false)) {
    std::string text = InspectToText(InspectState());
    std::fprintf(stderr, "%s", text.c_str());
  }
}

std::vector<Engine::ClientSample> Engine::SampleClients() {
  std::vector<ClientSample> out;
  for (const Client& c : w_.clients) {
    const BudgetGroup* g = clients_.at(c.name);
    ClientSample cs;
    for (Domain d : {Domain::kVram, Domain::kTt, Domain::kSystem}) {
      const MemType type = MemTypeOf(d);
      for (SimGpu* gpu : gpus_) {
        const int region = gpu->device()->budget_region(type);
        if (region < 0) continue;
        const BudgetCounters k = g->Read(region);
        cs.usage[static_cast<std::size_t>(d)] += k.current;
        cs.events.max_hits += k.max_hits;
        cs.events.suffered += k.evictions_suffered;
        cs.events.caused += k.evictions_caused;
        cs.events.breaches += k.protection_breaches;
        cs.events.reclaimed_bytes += k.reclaimed_bytes;
      }
    }
    out.push_back(cs);
  }
  return out;
}

// Budget events since the last sample, one trace event per kind spanning the interval, with one
// arg per client that had any.
void Engine::TraceClientEvents(const std::vector<ClientSample>& clients, double ts, double dur) {
  last_client_events_.resize(clients.size());
  TraceWriter::Args max_hits, evictions, breaches, reclaimed;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const ClientEvents& now = clients[i].events;
    const ClientEvents& was = last_client_events_[i];
    const std::string& name = w_.clients[i].name;
    auto add = [](TraceWriter::Args& args, std::string arg, std::uint64_t a, std::uint64_t b) {
      if (a > b) args.emplace_back(std::move(arg), static_cast<double>(a - b));
    };
    add(max_hits, name, now.max_hits, was.max_hits);
    add(evictions, name + " suffered", now.suffered, was.suffered);
    add(evictions, name + " caused", now.caused, was.caused);
    add(breaches, name, now.breaches, was.breaches);
    add(reclaimed, name + " bytes", now.reclaimed_bytes, was.reclaimed_bytes);
    last_client_events_[i] = now;
  }
  for (auto& [event, args] :
       {std::pair{kEvBudgetMaxHit, &max_hits}, std::pair{kEvBudgetEviction, &evictions},
        std::pair{kEvProtectionBreach, &breaches}, std::pair{kEvBudgetReclaim, &reclaimed}}) {
    if (!args->empty()) trace_.Complete(event, "budgets", kOtherTid, ts, dur, std::move(*args));
  }
}

void Engine::SamplerLoop() {
  t_tid = 0;
  while (!stop_sampler_.load()) {
    Sample(false);
    std::this_thread::sleep_for(kSamplePeriod);
  }
}

void Engine::Run() {
  progress_ =
      std::make_unique<Progress>(o_.progress_out, Progress::DetectMode(o_.progress_out, o_.quiet));
  trace_.ThreadName(0, "sampler");
  trace_.ThreadName(kOtherTid, "reclaim/other");
  for (std::uint32_t t = 0; t < w_.Lanes(); ++t)
    trace_.ThreadName(t + 1, fmt::format("worker{}", t));
  start_ = Clock::now();
  sampler_ = std::thread([this] { SamplerLoop(); });

  // The initial population, with as many threads as the first phase.
  const double ts = trace_.NowUs();
  ForLanes(w_.phases.front().threads, [&](std::vector<Lane*>& mine, ScratchBuffer& scratch) {
    for (Lane* l : mine) {
      for (const Op& op : l->gen->InitialOps()) DoOp(*l, op, scratch);
    }
  });
  trace_.Complete(kEvPhase, "run", 0, ts, trace_.NowUs() - ts, {{"initial", 1}});
  const auto ops_start = Clock::now();
  for (std::size_t p = 0; p < w_.phases.size(); ++p) {
    phase_index_.store(static_cast<int>(p));
    phase_fraction_.store(0);
    RunPhase(p);
  }
  run_seconds_ = Seconds(Clock::now() - ops_start);
  total_ops_ = ops_done_.load();
  phase_index_.store(static_cast<int>(w_.phases.size()));

  const double vts = trace_.NowUs();
  ForLanes(w_.Lanes(), [&](std::vector<Lane*>& mine, ScratchBuffer& scratch) {
    for (Lane* l : mine) VerifyLane(*l, scratch);
  });
  trace_.Complete(kEvVerify, "run", 0, vts, trace_.NowUs() - vts,
                  {{"buffers", static_cast<double>(buf_total_.load())}});
  stop_sampler_.store(true);
  sampler_.join();
  Sample(true);
  progress_->Finish(Snapshot());
}

void Engine::Teardown() {
  if (sampler_.joinable()) {
    stop_sampler_.store(true);
    sampler_.join();
  }
  if (runtime_ != nullptr && runtime_->reclaim_thread() != nullptr) {
    runtime_->reclaim_thread()->Stop();
  }
  lanes_.clear();
  for (SimGpu* g : gpus_) {
    g->Drain();
    g->device()->FlushDelayedDeletes();
  }
  for (SimGpu* g : gpus_) {  // counted before the devices go
    if (ShmemTtFuncs* fb = runtime_->file_backed(g->device())) {
      file_backed_buffers_ += fb->file_backed_objects();
    }
  }
  gpus_.clear();
  if (runtime_ != nullptr) {
    Status s = runtime_->Close();
    if (!s.ok()) AddError("teardown", s.ToString());
  }
}

Report Engine::BuildReport() {
  Report r;
  r.workload = w_.name;
  r.seed = w_.seed;
  r.store = store_ ? store_->Describe() : FormatStoreSpec(w_.limits.store);
  for (const Phase& p : w_.phases) r.threads = std::max(r.threads, p.threads);
  r.duration_s = run_seconds_;
  r.ops = total_ops_;
  r.counters.pages_populated = stats_.Get(Stat::kPagesPopulated);
  r.counters.pages_backed_up =
      stats_.Get(Stat::kPagesBackedUp) + stats_.Get(Stat::kPagesSwappedOut);
  r.counters.pages_restored = stats_.Get(Stat::kPagesRestored) + stats_.Get(Stat::kPagesSwappedIn);
  r.counters.pages_purged = stats_.Get(Stat::kPagesPurged);
  r.counters.evictions = stats_.Get(Stat::kEvictions);
  r.counters.swapouts = stats_.Get(Stat::kSwapouts);
  r.counters.shrinker_scans = stats_.Get(Stat::kShrinkerScans);
  r.counters.bytes_moved = stats_.Get(Stat::kBytesMoved);
  r.counters.store_write_errors = stats_.Get(Stat::kStoreWriteErrors);
  for (unsigned i = 0; i < kNumStats; ++i) {
    const auto stat = static_cast<Stat>(i);
    const std::string_view name = Stats::Name(stat);
    if (Stats::IsGauge(stat) || stats_.Get(stat) == 0) continue;
    if (name.starts_with("store.") || name.starts_with("zstore.") || name.starts_with("tier.") ||
        name.starts_with("remote.")) {
      r.store_counters.emplace_back(std::string(name), stats_.Get(stat));
    }
  }
  r.counters.store_read_errors = stats_.Get(Stat::kStoreReadErrors);
  if (!w_.clients.empty()) r.budgets = runtime_->Snapshot().budgets;
  r.counters.restarts = restarts_.load();
  r.counters.file_backed_pages_released = stats_.Get(Stat::kGemPagesEvicted);
  r.counters.file_backed_pages_purged = stats_.Get(Stat::kGemPagesPurged);
  r.counters.file_backed_buffers = file_backed_buffers_;
  r.counters.gem_buffers = gem_buffers_.load();
  r.counters.gem_pages_evicted = gem_stats_.Get(Stat::kGemPagesEvicted);
  r.counters.gem_pages_swapped_in = gem_stats_.Get(Stat::kGemPagesSwappedIn);
  r.counters.gem_pages_purged = gem_stats_.Get(Stat::kGemPagesPurged);
  r.counters.placement_fallbacks = placement_fallbacks_.load();
  r.memory.page_limit_bytes = w_.limits.page_limit;
  r.memory.file_backed_budget_bytes = HasFileBacked() ? FileBackedBudget() : 0;
  // Above the limit: the VRAM arenas (touched pages are resident), the tool's scratch buffers
  // (a whole buffer per thread), the heap, the binary and libraries.
  std::uint64_t max_size = 0;
  for (const BufferClass& c : w_.classes) max_size = std::max(max_size, c.size.max);
  r.memory.rss_slack_bytes = w_.devices.count * w_.devices.vram +
                             2 * max_size * std::max<std::uint32_t>(1, r.threads) + (48u << 20);
  // The file-backed budget is kept by the reclaim thread, not at each populate: between two of
  // its samples every lane may map a few more buffers.
  if (HasFileBacked()) {
    r.memory.rss_slack_bytes += 4 * max_size * std::max<std::uint32_t>(1, r.threads);
  }
  {
    MutexLock lock(&sample_mu_);
    r.memory.peak_rss_bytes = std::max(ReadPeakRssBytes(), peak_rss_sampled_);
    r.domains = domains_;
  }
  if (store_) {
    const double bs = store_->backup_seconds(), rs = store_->restore_seconds();
    r.throughput.backup_bytes_per_s = bs > 0 ? static_cast<double>(store_->backup_bytes()) / bs : 0;
    r.throughput.restore_bytes_per_s =
        rs > 0 ? static_cast<double>(store_->restore_bytes()) / rs : 0;
  }
  r.throughput.ops_per_s = run_seconds_ > 0 ? static_cast<double>(total_ops_) / run_seconds_ : 0;
  r.SetRestoreLatency(restore_latency_);
  r.buffers.total = buf_total_.load();
  r.buffers.verified = buf_verified_.load();
  r.buffers.not_retained = buf_not_retained_.load();
  r.buffers.mismatched = buf_mismatched_.load();
  r.buffers.unreadable = buf_unreadable_.load();
  r.memory.rss_checked = !kSanitizerBuild;
  if (r.memory.rss_checked && r.memory.peak_rss_bytes > r.memory.page_limit_bytes +
                                                            r.memory.file_backed_budget_bytes +
                                                            r.memory.rss_slack_bytes) {
    AddError("rss",
             fmt::format("peak RSS {} exceeds the page limit {} + file-backed budget {} + slack {}",
                         FormatSize(r.memory.peak_rss_bytes), FormatSize(r.memory.page_limit_bytes),
                         FormatSize(r.memory.file_backed_budget_bytes),
                         FormatSize(r.memory.rss_slack_bytes)));
  }
  {
    MutexLock lock(&err_mu_);
    for (const ErrorKind& k : errors_) {
      r.error_counts.emplace_back(k.name, k.count);
      r.errors.insert(r.errors.end(), k.first.begin(), k.first.end());
      if (k.count > k.first.size()) {
        r.errors.push_back(
            fmt::format("... and {} more {} errors", k.count - k.first.size(), k.name));
      }
    }
  }
  r.verified =
      r.errors.empty() && r.buffers.mismatched == 0 && r.buffers.verified == r.buffers.total;
  return r;
}

Json Engine::InspectState() {
  // The library's snapshot, plus what only the simulated devices know: their engines' work.
  const RuntimeSnapshot snap = runtime_->Snapshot();
  Json j = Json::parse(SnapshotToJson(snap));
  Json& devs = j["devices"];
  for (std::size_t i = 0; i < gpus_.size() && i < devs.size(); ++i) {
    const SimGpuStats gs = gpus_[i]->stats();
    devs[i]["engine"] = {{"copies", gs.copies},   {"bytes_copied", gs.bytes_copied},
                         {"clears", gs.clears},   {"jobs", gs.jobs},
                         {"wakeups", gs.wakeups}, {"memcpy_moves", gs.memcpy_moves}};
  }
  j["text"] = SnapshotToText(snap);
  return j;
}

Status Engine::WriteOutputs(const Report& report) {
  if (!o_.report_path.empty()) UTTM_RETURN_IF_ERROR(WriteReportJson(report, o_.report_path));
  if (!o_.trace_path.empty()) UTTM_RETURN_IF_ERROR(trace_.WriteFile(o_.trace_path));
  if (!o_.plot_path.empty()) {
    MutexLock lock(&sample_mu_);
    UTTM_RETURN_IF_ERROR(
        WriteSvg(plot_->Data(fmt::format("uttm run: {} ({} devices, page limit {})", w_.name,
                                         w_.devices.count, FormatSize(w_.limits.page_limit)),
                             static_cast<double>(w_.limits.page_limit)),
                 o_.plot_path));
  }
  return Status::Ok();
}

}  // namespace

std::uint64_t ReadRssBytes() { return ReadStatusKb("VmRSS"); }
std::uint64_t ReadPeakRssBytes() { return ReadStatusKb("VmHWM"); }

bool ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

Result<RunOutcome> RunWorkload(const Workload& w, const EngineOptions& options) {
  struct sigaction old_action {};
  if (options.handle_sigusr1) {
    struct sigaction sa {};
    sa.sa_handler = OnSigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, &old_action);
  }
  ResetPeakRss();
  RunOutcome out;
  Status status;
  {
    Engine engine(w, options);
    status = engine.Setup();
    if (status.ok()) {
      engine.Run();
      if (options.inspect_at_end) out.inspect = engine.InspectState();
    }
    engine.Teardown();
    if (status.ok()) {
      out.report = engine.BuildReport();
      status = engine.WriteOutputs(out.report);
    }
  }
  if (options.handle_sigusr1) sigaction(SIGUSR1, &old_action, nullptr);
  if (!status.ok()) return status;
  return out;
}

std::string InspectToText(const Json& j) {
  // The library's text, then the simulated devices' engines.
  std::string out = j.value("text", std::string());
  for (const Json& d : j.at("devices")) {
    if (!d.contains("engine")) continue;
    const Json& e = d.at("engine");
    out += fmt::format("engine of {}: {} copies ({}), {} clears, {} jobs, {} CPU-copied moves\n",
                       d.at("name").get<std::string>(), e.at("copies").get<std::uint64_t>(),
                       FormatSize(e.at("bytes_copied").get<std::uint64_t>()),
                       e.at("clears").get<std::uint64_t>(), e.at("jobs").get<std::uint64_t>(),
                       e.at("memcpy_moves").get<std::uint64_t>());
  }
  return out;
}

}  // namespace uttm::tool
