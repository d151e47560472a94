// Copyright (c) uttm developers.
#include "object_ops.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "testing/content.h"
#include "testing/test_device.h"
#include "uttm/bo_shrinker.h"
#include "uttm/bo_swapout.h"
#include "uttm/buffer_object.h"
#include "uttm/fault_injection.h"
#include "uttm/file_store.h"
#include "uttm/invariants.h"
#include "uttm/mapping.h"
#include "uttm/memfd_store.h"
#include "uttm/memory_context.h"
#include "uttm/reclaimer.h"
#include "uttm/sim_gpu.h"
#include "uttm/stats.h"

namespace uttm::fuzz {
namespace {

using testing::PlaceOf;

constexpr std::size_t kSlots = 8;
constexpr std::uint64_t kMaxObjectPages = 24;
constexpr std::size_t kTraceLines = 48;

// Reads the input a byte at a time; past the end every byte is 0.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  // A value in [0, n).
  std::uint32_t Below(std::uint32_t n) {
    const std::uint32_t v = (std::uint32_t{Byte()} << 8) | Byte();
    return v % n;
  }
  bool Bit() { return (Byte() & 1) != 0; }
  bool done() const { return pos_ >= size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// The content of object `uid` written at `version` (testing/content.h: every word differs between
// objects, pages, offsets and versions).
void FillContent(std::uint64_t uid, std::uint32_t version, std::uint64_t offset, std::byte* out,
                 std::size_t len) {
  testing::FillContent({.object = uid, .version = version}, offset, std::span(out, len));
}

struct Object {
  BoRef bo;
  int device = 0;
  std::uint64_t uid = 0;
  std::uint32_t version = 0;
  std::vector<std::byte> shadow;
  bool dontneed = false;
  bool purged = false;
  int pins = 0;
  // While pinned: where it lives, and whether its pages were present when pinned.
  const Resource* pinned_resource = nullptr;
  bool pinned_populated = false;
};

enum class Op : std::uint8_t {
  kCreate,
  kValidate,
  kWrite,
  kRead,
  kMadvise,
  kPin,
  kUnpin,
  kEvict,
  kShrink,
  kReclaim,
  kSwapout,
  kFault,
  kDisarm,
  kRelease,
  kLimit,
  kBusy,
  kFlush,
  kConcurrent,
  kMap,
  kCount
};

const char* OpName(Op op) {
  static constexpr std::array<const char*, static_cast<std::size_t>(Op::kCount)> kNames = {
      "create", "validate", "write",   "read",       "madvise", "pin",    "unpin",
      "evict",  "shrink",   "reclaim", "swapout",    "fault",   "disarm", "release",
      "limit",  "busy",     "flush",   "concurrent", "map"};
  return kNames[static_cast<std::size_t>(op)];
}

class World {
 public:
  World(Reader& in, const ObjectOpsOptions& options) : in_(in), options_(options) {}
  ~World() { TearDown(); }

  Status Run();

 private:
  Status SetUp();
  void TearDown();
  Status Step(Op op);
  Status AfterStep();
  Status Violation(const std::string& what) const;
  void Trace(std::string line);

  Device* device(int i) const { return i == 0 ? test_->get() : sim_->device(); }
  int num_devices() const { return sim_ ? 2 : 1; }
  BoShrinker* shrinker(int i) const { return i == 0 ? test_shrinker_.get() : sim_shrinker_.get(); }
  Placement PlacementFor(int dev, std::uint32_t choice) const;
  OperationContext MakeContext();
  bool faults_armed() const { return faults_armed_; }
  // Learns purges (madvice kPurged) and checks pinned objects; `strict` checks everything.
  Status Observe(Object& obj);
  Status DoCreate();
  Status DoValidate(Object& obj);
  Status DoWrite(Object& obj);
  Status DoRead(Object& obj);
  Status DoMadvise(Object& obj);
  Status DoPin(Object& obj);
  Status DoMap(Object& obj);
  Status DoUnpin(Object& obj);
  Status DoConcurrent();
  Status VerifyAll();
  Status CheckEmpty();

  Reader& in_;
  const ObjectOpsOptions options_;
  Stats stats_;
  std::unique_ptr<MemoryContext> memory_;
  std::unique_ptr<BackupStore> store_;
  std::unique_ptr<Reclaimer> reclaimer_;
  std::unique_ptr<BoShrinker> test_shrinker_;
  std::unique_ptr<testing::TestDevice> test_;
  std::unique_ptr<BoShrinker> sim_shrinker_;
  std::unique_ptr<SimGpu> sim_;
  std::array<Object, kSlots> objects_;
  std::uint64_t next_uid_ = 0;
  bool faults_armed_ = false;
  bool concurrent_ = false;
  bool registered_ = false;
  std::size_t step_ = 0;
  std::deque<std::string> trace_;
};

Status World::SetUp() {
  const std::uint8_t config = in_.Byte();
  static constexpr std::array<std::uint64_t, 4> kLimits = {256, 512, 1024, 4096};
  MemoryContextOptions mo;
  mo.stats = &stats_;
  mo.pages_limit = PageCount(kLimits[config & 3]);
  mo.page_pool_size = PageCount((config & 0x40) != 0 ? 0 : 64);
  memory_ = std::make_unique<MemoryContext>(mo);
  const bool tiny_store = (config & 8) != 0;
  if ((config & 4) != 0) {
    FileStoreOptions fo;
    fo.stats = &stats_;
    fo.capacity_bytes = tiny_store ? 64 * kPageSize : 0;
    UTTM_ASSIGN_OR_RETURN(store_, NewFileStore(fo));
  } else {
    MemfdStoreOptions mso;
    mso.stats = &stats_;
    mso.allow_without_swap = true;
    mso.capacity_bytes = tiny_store ? 64 * kPageSize : 0;
    UTTM_ASSIGN_OR_RETURN(store_, NewMemfdStore(mso));
  }
  reclaimer_ = std::make_unique<Reclaimer>(&stats_);
  test_ =
      std::make_unique<testing::TestDevice>(PageCount(64), Bytes(std::uint64_t{64} << 20),
                                            memory_.get(), store_.get(), [&](DeviceFuncs* driver) {
                                              test_shrinker_ = std::make_unique<BoShrinker>(driver);
                                              return test_shrinker_->funcs();
                                            });
  test_->AddArena(testing::kMemMock2, PageCount(64));
  UTTM_RETURN_IF_ERROR(test_shrinker_->Attach(test_->get()));
  if ((config & 0x10) != 0) {
    SimGpuOptions so;
    so.name = "fuzz-gpu";
    so.vram_size = Bytes(64 * kPageSize);
    so.tt_budget = Bytes(std::uint64_t{64} << 20);
    so.memory = memory_.get();
    so.backup_store = store_.get();
    so.pipeline_moves = (config & 0x20) == 0;
    so.wrap_funcs = [&](DeviceFuncs* driver) {
      sim_shrinker_ = std::make_unique<BoShrinker>(driver);
      return sim_shrinker_->funcs();
    };
    UTTM_ASSIGN_OR_RETURN(sim_, SimGpu::Create(so));
    UTTM_RETURN_IF_ERROR(sim_shrinker_->Attach(sim_->device()));
    UTTM_RETURN_IF_ERROR(reclaimer_->Register(sim_shrinker_.get()));
  }
  UTTM_RETURN_IF_ERROR(
      RegisterDeviceReclaim(reclaimer_.get(), test_shrinker_.get(), memory_.get()));
  registered_ = true;
  InstallWatermarkSwapout(*memory_);
  Trace("config " + std::to_string(config) + ": limit " + std::to_string(kLimits[config & 3]) +
        " pages, " + store_->Describe() + (tiny_store ? " (64 pages)" : "") +
        (sim_ ? ((config & 0x20) != 0 ? ", sim gpu (synchronous moves)" : ", sim gpu") : ""));
  return Status::Ok();
}

void World::TearDown() {
  FaultInjection::DisarmAll();
  for (Object& obj : objects_) obj = Object();
  if (sim_) sim_->Drain();
  if (test_) (*test_)->FlushDelayedDeletes();
  if (sim_) sim_->device()->FlushDelayedDeletes();
  if (registered_) UnregisterDeviceReclaim(reclaimer_.get(), test_shrinker_.get(), memory_.get());
  if (sim_shrinker_ && reclaimer_) (void)reclaimer_->Unregister(sim_shrinker_.get());
  registered_ = false;
  if (memory_) memory_->set_over_limit(nullptr);
  sim_.reset();
  sim_shrinker_.reset();
  test_.reset();
  test_shrinker_.reset();
  reclaimer_.reset();
  store_.reset();
  memory_.reset();
}

void World::Trace(std::string line) {
  if (options_.verbose) std::fprintf(stderr, "fuzz: %s\n", line.c_str());
  trace_.push_back(std::move(line));
  if (trace_.size() > kTraceLines) trace_.pop_front();
}

Status World::Violation(const std::string& what) const {
  std::string msg = "object-ops fuzz: " + what + "\n  after these steps (oldest first):";
  for (const std::string& line : trace_) msg += "\n    " + line;
  if (options_.verbose) std::fprintf(stderr, "fuzz: VIOLATION: %s\n", what.c_str());
  return Status(Errc::kCorrupt, msg);
}

Placement World::PlacementFor(int dev, std::uint32_t choice) const {
  const MemType second = dev == 0 ? testing::kMemMock2 : kMemVram;
  switch (choice % 9) {
    case 0:
      return Placement{PlaceOf(kMemSystem)};
    case 1:
      return Placement{PlaceOf(kMemTt)};
    case 2:
      return Placement{PlaceOf(kMemVram)};
    case 3:
      return Placement{PlaceOf(kMemVram), PlaceOf(kMemTt)};
    case 4:
      return Placement{PlaceOf(kMemVram, kPlaceDesired), PlaceOf(kMemSystem, kPlaceFallback)};
    case 5:
      return Placement();
    case 6:
      return Placement{PlaceOf(second)};
    case 7:
      return Placement{PlaceOf(kMemTt), PlaceOf(kMemSystem)};
    default:
      return Placement{PlaceOf(kMemVram, kPlaceContiguous | kPlaceTopDown), PlaceOf(kMemSystem)};
  }
}

OperationContext World::MakeContext() {
  OperationContext ctx;
  ctx.interruptible = in_.Bit();
  return ctx;
}

// An error an operation may end with: what the injected faults and the memory limits can cause.
bool ExpectedFailure(const Status& s, bool faults) {
  switch (s.code()) {
    case Errc::kNoMemory:
    case Errc::kNoSpace:
    case Errc::kBusy:
      return true;
    case Errc::kIo:
    case Errc::kInterrupted:
      return faults;
    default:
      return false;
  }
}

Status World::Observe(Object& obj) {
  if (!obj.bo) return Status::Ok();
  BufferObject& bo = *obj.bo;
  if (!bo.TryReserve()) return Status::Ok();  // busy with another thread: next time
  bo.resv()->AssertHeld();
  const Madvice advice = bo.madvice();
  const Resource* res = bo.resource();
  const bool populated = bo.tt() != nullptr && bo.tt()->is_populated();
  bo.resv()->Unlock();
  if (advice == Madvice::kPurged && !obj.purged) {
    if (!obj.dontneed)
      return Violation("object " + std::to_string(obj.uid) + " was purged while will-need");
    obj.purged = true;
    obj.dontneed = false;
    std::fill(obj.shadow.begin(), obj.shadow.end(), std::byte{0});
  }
  if (obj.pins > 0) {
    // Pinned without memory (created with no placement): CPU access gives it a SYSTEM resource.
    if (obj.pinned_resource == nullptr && res != nullptr && res->mem_type() == kMemSystem) {
      obj.pinned_resource = res;
    }
    if (res != obj.pinned_resource) {
      return Violation("pinned object " + std::to_string(obj.uid) + " changed its resource");
    }
    if (obj.pinned_populated && !populated) {
      return Violation("pinned object " + std::to_string(obj.uid) + " lost its pages");
    }
  }
  return Status::Ok();
}

Status World::AfterStep() {
  for (Object& obj : objects_) UTTM_RETURN_IF_ERROR(Observe(obj));
  InvariantOptions io;
  io.shrinkers = {test_shrinker_.get(), sim_shrinker_.get()};
  Status s = CheckInvariants(*memory_, io);
  if (s.code() == Errc::kBusy) {
    // The engine or the delayed-delete worker holds an object: let them finish, then look.
    if (sim_) sim_->Drain();
    s = CheckInvariants(*memory_, io);
  }
  if (s.code() == Errc::kBusy) return Status::Ok();
  if (!s.ok()) return Violation(std::string(s.message()));
  return Status::Ok();
}

Status World::DoCreate() {
  const std::size_t slot = in_.Below(kSlots);
  const int dev = static_cast<int>(in_.Below(num_devices()));
  const std::uint64_t pages = 1 + in_.Below(kMaxObjectPages);
  const std::uint64_t tail = in_.Bit() ? in_.Below(kPageSize) : 0;
  const std::uint32_t placement = in_.Byte();
  const unsigned priority = in_.Below(kNumPriorities);
  const bool kernel = in_.Below(4) == 0;
  OperationContext ctx = MakeContext();
  Object& obj = objects_[slot];
  if (obj.bo) {
    Trace("create slot " + std::to_string(slot) + ": occupied, skipped");
    return Status::Ok();
  }
  BoOptions opts;
  opts.size = Bytes(pages * kPageSize - tail);
  opts.priority = priority;
  opts.type = kernel ? BoType::kKernel : BoType::kDevice;
  Result<BoRef> bo = BufferObject::Create(device(dev), opts, PlacementFor(dev, placement), ctx);
  Trace("create slot " + std::to_string(slot) + " dev " + std::to_string(dev) + " size " +
        std::to_string(opts.size.value()) + " placement " + std::to_string(placement % 9) +
        " prio " + std::to_string(priority) + ": " + bo.status().ToString());
  if (!bo.ok()) {
    if (ExpectedFailure(bo.status(), faults_armed())) return Status::Ok();
    return Violation("create failed: " + bo.status().ToString());
  }
  obj = Object();
  obj.bo = std::move(bo).value();
  obj.device = dev;
  obj.uid = ++next_uid_;
  obj.shadow.assign(opts.size.value(), std::byte{0});
  // Device memory that is not cleared on allocation (the test device's arenas, as TTM's mock
  // manager) holds whatever was there: give the object known content first.
  bool in_device_memory = false;
  {
    // Under the reservation: a concurrent shrinker may be moving the object right now.
    OperationContext lctx;
    if (obj.bo->Reserve(lctx).ok()) {
      obj.bo->resv()->AssertHeld();
      const Resource* res = obj.bo->resource();
      in_device_memory = res != nullptr && !res->manager()->use_tt();
      obj.bo->Unreserve();
    }
  }
  if (in_device_memory && dev == 0) {
    obj.version = 1;
    FillContent(obj.uid, obj.version, 0, obj.shadow.data(), obj.shadow.size());
    OperationContext wctx;
    Status w = obj.bo->Write(0, obj.shadow, wctx);
    Trace("  initial write: " + w.ToString());
    if (!w.ok()) {
      if (!ExpectedFailure(w, faults_armed()))
        return Violation("initial write failed: " + w.ToString());
      obj = Object();  // content unknown: drop it
    }
  }
  return Status::Ok();
}

Status World::DoValidate(Object& obj) {
  const std::uint32_t choice = in_.Byte();
  OperationContext ctx = MakeContext();
  const Placement placement = PlacementFor(obj.device, choice);
  Status s = obj.bo->Reserve(ctx);
  if (s.ok()) {
    obj.bo->resv()->AssertHeld();
    s = obj.bo->Validate(placement, ctx);
    obj.bo->Unreserve();
  }
  Trace("validate " + std::to_string(obj.uid) + " placement " + std::to_string(choice % 9) + ": " +
        s.ToString());
  if (s.ok()) {
    if (placement.empty()) {
      // Gutting drops the contents (ttm_bo_pipeline_gutting).
      if (obj.pins > 0) return Violation("a pinned object was gutted");
      std::fill(obj.shadow.begin(), obj.shadow.end(), std::byte{0});
    }
    return Status::Ok();
  }
  if (s.code() == Errc::kInvalid && obj.pins > 0) return Status::Ok();  // pinned: cannot move
  if (ExpectedFailure(s, faults_armed())) return Status::Ok();
  return Violation("validate failed: " + s.ToString());
}

// A byte range of the object: small, a few pages, or all of it.
std::pair<std::uint64_t, std::uint64_t> PickRange(Reader& in, std::uint64_t size) {
  const std::uint32_t mode = in.Below(4);
  const std::uint64_t off = in.Below(static_cast<std::uint32_t>(size));
  std::uint64_t len = 0;
  if (mode == 0) {
    len = 1 + in.Below(64);
  } else if (mode == 1) {
    len = 1 + in.Below(3 * kPageSize);
  } else {
    return {0, size};
  }
  return {off, std::min(len, size - off)};
}

Status World::DoWrite(Object& obj) {
  auto [off, len] = PickRange(in_, obj.shadow.size());
  OperationContext ctx = MakeContext();
  std::vector<std::byte> data(len);
  const std::uint32_t version = obj.version + 1;
  FillContent(obj.uid, version, off, data.data(), len);
  Status s = obj.bo->Write(off, data, ctx);
  Trace("write " + std::to_string(obj.uid) + " [" + std::to_string(off) + ", +" +
        std::to_string(len) + ") v" + std::to_string(version) + ": " + s.ToString());
  if (s.ok()) {
    obj.version = version;
    std::memcpy(obj.shadow.data() + off, data.data(), len);
    return Status::Ok();
  }
  if (!faults_armed() && !concurrent_)
    return Violation("write failed with no fault armed: " + s.ToString());
  if (ExpectedFailure(s, faults_armed())) return Status::Ok();
  return Violation("write failed: " + s.ToString());
}

Status World::DoRead(Object& obj) {
  auto [off, len] = PickRange(in_, obj.shadow.size());
  OperationContext ctx = MakeContext();
  std::vector<std::byte> data(len);
  Status s = obj.bo->Read(off, data, ctx);
  Trace("read " + std::to_string(obj.uid) + " [" + std::to_string(off) + ", +" +
        std::to_string(len) + "): " + s.ToString());
  if (!s.ok()) {
    if (!faults_armed() && !concurrent_)
      return Violation("read failed with no fault armed: " + s.ToString());
    if (ExpectedFailure(s, faults_armed())) return Status::Ok();
    return Violation("read failed: " + s.ToString());
  }
  if (std::memcmp(data.data(), obj.shadow.data() + off, len) == 0) return Status::Ok();
  // A purge that happened during this very read (another thread's shrinker) reads as zeros.
  UTTM_RETURN_IF_ERROR(Observe(obj));
  if (std::memcmp(data.data(), obj.shadow.data() + off, len) == 0) return Status::Ok();
  for (std::uint64_t i = 0; i < len; ++i) {
    if (data[i] != obj.shadow[off + i]) {
      return Violation("object " + std::to_string(obj.uid) + " byte " + std::to_string(off + i) +
                       " (page " + std::to_string((off + i) / kPageSize) + ") reads " +
                       std::to_string(static_cast<int>(data[i])) + ", expected " +
                       std::to_string(static_cast<int>(obj.shadow[off + i])) +
                       (obj.purged ? " (purged object)" : ""));
    }
  }
  return Status::Ok();
}

// Maps the object (read, write or discard), checks every byte through the mapping against the
// model, writes a new version of a range through it (all of it after a discard, as the flag
// promises), and unmaps. A don't-need object answers kBusy and a purged one kInvalid.
Status World::DoMap(Object& obj) {
  const unsigned kind = in_.Below(3);
  const unsigned flags = kind == 0   ? kMapRead
                         : kind == 1 ? (kMapRead | kMapWrite)
                                     : (kMapWrite | kMapDiscard);
  OperationContext ctx = MakeContext();
  Result<Mapping> map = Mapping::Create(obj.bo, flags, ctx);
  Trace("map " + std::to_string(obj.uid) + " flags " + std::to_string(flags) + ": " +
        map.status().ToString());
  if (!map.ok()) {
    UTTM_RETURN_IF_ERROR(Observe(obj));
    if (obj.purged && map.status().code() == Errc::kInvalid) return Status::Ok();
    if (obj.dontneed && map.status().code() == Errc::kBusy) return Status::Ok();
    if (ExpectedFailure(map.status(), faults_armed())) return Status::Ok();
    return Violation("map failed: " + map.status().ToString());
  }
  if (obj.purged || obj.dontneed) {
    UTTM_RETURN_IF_ERROR(Observe(obj));
    if (obj.purged || obj.dontneed) return Violation("a purged or don't-need object was mapped");
  }
  if (map->size() != obj.shadow.size()) return Violation("mapping of the wrong size");
  if ((flags & kMapDiscard) == 0) {
    for (std::uint64_t i = 0; i < map->size(); ++i) {
      if (map->data()[i] != obj.shadow[i]) {
        return Violation("object " + std::to_string(obj.uid) + " byte " + std::to_string(i) +
                         " (page " + std::to_string(i / kPageSize) + ") maps as " +
                         std::to_string(static_cast<int>(map->data()[i])) + ", expected " +
                         std::to_string(static_cast<int>(obj.shadow[i])));
      }
    }
  }
  if ((flags & kMapWrite) != 0) {
    auto [off, len] = (flags & kMapDiscard) != 0
                          ? std::pair<std::uint64_t, std::uint64_t>{0, obj.shadow.size()}
                          : PickRange(in_, obj.shadow.size());
    obj.version += 1;
    FillContent(obj.uid, obj.version, off, map->data() + off, len);
    std::memcpy(obj.shadow.data() + off, map->data() + off, len);
  }
  map->reset();
  return Status::Ok();
}

Status World::DoMadvise(Object& obj) {
  const Madvice advice = in_.Bit() ? Madvice::kDontNeed : Madvice::kWillNeed;
  OperationContext ctx = MakeContext();
  Result<bool> r = obj.bo->Madvise(advice, ctx);
  Trace("madvise " + std::to_string(obj.uid) +
        (advice == Madvice::kDontNeed ? " dontneed: " : " willneed: ") +
        (r.ok() ? (*r ? "retained" : "purged") : r.status().ToString()));
  if (!r.ok()) {
    if (ExpectedFailure(r.status(), faults_armed())) return Status::Ok();
    return Violation("madvise failed: " + r.status().ToString());
  }
  if (!*r) {
    UTTM_RETURN_IF_ERROR(Observe(obj));
    if (!obj.purged) return Violation("madvise answered purged for an object that is not");
    return Status::Ok();
  }
  if (obj.purged) return Violation("madvise answered retained for a purged object");
  obj.dontneed = advice == Madvice::kDontNeed;
  return Status::Ok();
}

Status World::DoPin(Object& obj) {
  OperationContext ctx = MakeContext();
  Status s = obj.bo->Reserve(ctx);
  Trace("pin " + std::to_string(obj.uid) + ": " + s.ToString());
  if (!s.ok()) {
    if (ExpectedFailure(s, faults_armed())) return Status::Ok();
    return Violation("reserve for pin failed: " + s.ToString());
  }
  obj.bo->resv()->AssertHeld();
  obj.bo->Pin();
  if (obj.pins++ == 0) {
    obj.pinned_resource = obj.bo->resource();
    obj.pinned_populated = obj.bo->tt() != nullptr && obj.bo->tt()->is_populated();
  }
  obj.bo->Unreserve();
  return Status::Ok();
}

Status World::DoUnpin(Object& obj) {
  if (obj.pins == 0) {
    Trace("unpin " + std::to_string(obj.uid) + ": not pinned, skipped");
    return Status::Ok();
  }
  OperationContext ctx = MakeContext();
  Status s = obj.bo->Reserve(ctx);
  Trace("unpin " + std::to_string(obj.uid) + ": " + s.ToString());
  if (!s.ok()) {
    if (ExpectedFailure(s, faults_armed())) return Status::Ok();
    return Violation("reserve for unpin failed: " + s.ToString());
  }
  obj.bo->resv()->AssertHeld();
  obj.bo->Unpin();
  --obj.pins;
  obj.bo->Unreserve();
  return Status::Ok();
}

Status World::DoConcurrent() {
  const std::uint32_t steps = 1 + in_.Below(6);
  Trace("concurrent: " + std::to_string(steps) + " steps beside a reclaiming thread");
  std::atomic<bool> stop{false};
  std::thread reclaim([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      for (int d = 0; d < num_devices(); ++d) {
        ShrinkControl sc;
        sc.nr_to_scan = 64;
        sc.reclaim.background = true;
        shrinker(d)->Scan(sc);
      }
      reclaimer_->ReclaimPages(32,
                               ReclaimContext{.may_fs = true, .may_io = true, .background = false});
      std::this_thread::yield();
    }
  });
  concurrent_ = true;
  Status result;
  for (std::uint32_t i = 0; i < steps && result.ok() && !in_.done(); ++i) {
    const Op op = static_cast<Op>(in_.Below(static_cast<std::uint32_t>(Op::kConcurrent)));
    result = Step(op);
  }
  stop.store(true);
  reclaim.join();
  concurrent_ = false;
  return result;
}

Status World::Step(Op op) {
  ++step_;
  auto pick = [&]() -> Object* {
    Object& obj = objects_[in_.Below(kSlots)];
    if (!obj.bo) return nullptr;
    // Beside a reclaiming thread a don't-need object may be purged at any moment: leave it be,
    // so the model never has to guess whether a write landed before or after the purge.
    if (concurrent_ && obj.dontneed) return nullptr;
    return &obj;
  };
  switch (op) {
    case Op::kCreate:
      return DoCreate();
    case Op::kValidate:
    case Op::kWrite:
    case Op::kRead:
    case Op::kMadvise:
    case Op::kPin:
    case Op::kUnpin:
    case Op::kMap:
    case Op::kBusy: {
      Object* obj = pick();
      if (obj == nullptr) {
        Trace(std::string(OpName(op)) + ": no object, skipped");
        return Status::Ok();
      }
      if (op == Op::kValidate) return DoValidate(*obj);
      if (op == Op::kWrite) return DoWrite(*obj);
      if (op == Op::kRead) return DoRead(*obj);
      if (op == Op::kMadvise) return DoMadvise(*obj);
      if (op == Op::kPin) return DoPin(*obj);
      if (op == Op::kUnpin) return DoUnpin(*obj);
      if (op == Op::kMap) return DoMap(*obj);
      const auto duration = std::chrono::microseconds(100 + 400 * in_.Below(4));
      if (obj->device != 1) {
        Trace("busy: not a sim gpu object, skipped");
        return Status::Ok();
      }
      OperationContext ctx;
      Status s = obj->bo->Reserve(ctx);
      if (s.ok()) {
        obj->bo->resv()->AssertHeld();
        s = sim_->SubmitJob(*obj->bo, duration).status();
        obj->bo->Unreserve();
      }
      Trace("busy " + std::to_string(obj->uid) + " for " + std::to_string(duration.count()) +
            " us: " + s.ToString());
      if (!s.ok() && !ExpectedFailure(s, faults_armed()))
        return Violation("busy failed: " + s.ToString());
      return Status::Ok();
    }
    case Op::kEvict: {
      const int dev = static_cast<int>(in_.Below(num_devices()));
      const MemType type = static_cast<MemType>(in_.Below(kMemPriv + 3));
      OperationContext ctx = MakeContext();
      ResourceManager* man = device(dev)->manager(type);
      if (man == nullptr) {
        Trace("evict: no manager, skipped");
        return Status::Ok();
      }
      Status s = BufferObject::EvictFirst(*device(dev), man, ctx);
      Trace("evict first of dev " + std::to_string(dev) + " type " + std::to_string(type) + ": " +
            s.ToString());
      if (s.ok() || s.code() == Errc::kNotFound || ExpectedFailure(s, faults_armed()))
        return Status::Ok();
      return Violation("evict failed: " + s.ToString());
    }
    case Op::kShrink: {
      const int dev = static_cast<int>(in_.Below(num_devices()));
      ShrinkControl sc;
      sc.nr_to_scan = 1 + 8 * in_.Below(32);
      const std::uint8_t flags = in_.Byte();
      sc.reclaim = ReclaimContext{
          .may_fs = (flags & 1) == 0, .may_io = (flags & 2) == 0, .background = (flags & 4) != 0};
      const std::uint64_t count = shrinker(dev)->Count(sc);
      const std::uint64_t freed = shrinker(dev)->Scan(sc);
      Trace("shrink dev " + std::to_string(dev) + " nr " + std::to_string(sc.nr_to_scan) +
            " flags " + std::to_string(flags & 7) + ": count " + std::to_string(count) +
            ", freed " + std::to_string(freed) + ", scanned " + std::to_string(sc.nr_scanned));
      return Status::Ok();
    }
    case Op::kReclaim: {
      const std::uint64_t target = 1 + in_.Below(256);
      const bool background = in_.Bit();
      const std::uint64_t freed = reclaimer_->ReclaimPages(
          target, ReclaimContext{.may_fs = true, .may_io = true, .background = background});
      Trace("reclaim " + std::to_string(target) + (background ? " (background)" : "") + ": freed " +
            std::to_string(freed));
      return Status::Ok();
    }
    case Op::kSwapout: {
      const std::uint32_t kind = in_.Below(3);
      const int dev = static_cast<int>(in_.Below(num_devices()));
      OperationContext ctx;
      Result<std::uint64_t> r = kind == 0   ? DeviceSwapout(*device(dev), ctx)
                                : kind == 1 ? GlobalSwapout(ctx, *memory_)
                                            : SwapoutAll(*device(dev), ctx);
      Trace(std::string(kind == 0   ? "device swapout"
                        : kind == 1 ? "global swapout"
                                    : "swapout all") +
            " dev " + std::to_string(dev) + ": " +
            (r.ok() ? std::to_string(*r) + " pages" : r.status().ToString()));
      if (r.ok() || ExpectedFailure(r.status(), faults_armed())) return Status::Ok();
      return Violation("swapout failed: " + r.status().ToString());
    }
    case Op::kFault: {
      const auto point = static_cast<FaultPoint>(in_.Below(kNumFaultPoints));
      FaultSpec spec;
      spec.after = in_.Below(6);
      spec.interval = 1 + in_.Below(3);
      spec.times = 1 + in_.Below(4);
      Status s = FaultInjection::Arm(point, spec);
      faults_armed_ = true;
      Trace(std::string("fault ") + FaultInjection::Name(point) + " after " +
            std::to_string(spec.after) + " interval " + std::to_string(spec.interval) + " times " +
            std::to_string(spec.times) + ": " + s.ToString());
      return Status::Ok();
    }
    case Op::kDisarm:
      FaultInjection::DisarmAll();
      faults_armed_ = false;
      Trace("disarm all faults");
      return Status::Ok();
    case Op::kRelease: {
      Object& obj = objects_[in_.Below(kSlots)];
      if (!obj.bo || (concurrent_ && obj.dontneed)) return Status::Ok();
      Trace("release " + std::to_string(obj.uid));
      obj = Object();
      return Status::Ok();
    }
    case Op::kLimit: {
      static constexpr std::array<std::uint64_t, 4> kLimits = {256, 384, 1024, 4096};
      const std::uint64_t limit = kLimits[in_.Below(4)];
      memory_->set_pages_limit(PageCount(limit));
      Trace("pages limit " + std::to_string(limit));
      return Status::Ok();
    }
    case Op::kFlush:
      if (sim_) sim_->Drain();
      if (!concurrent_) {
        for (int d = 0; d < num_devices(); ++d) device(d)->FlushDelayedDeletes();
      }
      Trace("flush");
      return Status::Ok();
    case Op::kConcurrent:
      return DoConcurrent();
    case Op::kCount:
      break;
  }
  return Status::Ok();
}

Status World::VerifyAll() {
  FaultInjection::DisarmAll();
  faults_armed_ = false;
  if (sim_) sim_->Drain();
  for (Object& obj : objects_) {
    if (!obj.bo) continue;
    UTTM_RETURN_IF_ERROR(Observe(obj));
    std::vector<std::byte> data(obj.shadow.size());
    OperationContext ctx;
    Status s = obj.bo->Read(0, data, ctx);
    Trace("final read " + std::to_string(obj.uid) + ": " + s.ToString());
    if (!s.ok()) return Violation("final read failed: " + s.ToString());
    if (data != obj.shadow) {
      for (std::size_t i = 0; i < data.size(); ++i) {
        if (data[i] != obj.shadow[i]) {
          return Violation("final read of object " + std::to_string(obj.uid) + ": byte " +
                           std::to_string(i) + " (page " + std::to_string(i / kPageSize) +
                           ") reads " + std::to_string(static_cast<int>(data[i])) + ", expected " +
                           std::to_string(static_cast<int>(obj.shadow[i])));
        }
      }
    }
  }
  return AfterStep();
}

Status World::CheckEmpty() {
  for (Object& obj : objects_) obj = Object();
  if (sim_) sim_->Drain();
  for (int d = 0; d < num_devices(); ++d) device(d)->FlushDelayedDeletes();
  UTTM_RETURN_IF_ERROR(AfterStep());
  if (memory_->pages_allocated().value() != 0) {
    return Violation(std::to_string(memory_->pages_allocated().value()) +
                     " pages still charged after every object was released");
  }
  if (store_->BytesUsed() != 0) {
    return Violation(std::to_string(store_->BytesUsed()) +
                     " store bytes still used after every object was released");
  }
  for (int d = 0; d < num_devices(); ++d) {
    if (shrinker(d)->shrinkable_pages() != 0 || shrinker(d)->purgeable_pages() != 0) {
      return Violation("shrinker counts left after every object was released");
    }
  }
  const std::uint64_t held = memory_->provider().pages_in_use() - memory_->pool().pooled_pages();
  if (held != 0)
    return Violation(std::to_string(held) + " pages held outside the pools after release");
  return Status::Ok();
}

Status World::Run() {
  Status s = SetUp();
  if (!s.ok()) return Status(s.code(), "object-ops fuzz: set-up failed: " + s.ToString());
  for (std::size_t i = 0; i < options_.max_ops && !in_.done(); ++i) {
    const Op op = static_cast<Op>(in_.Below(static_cast<std::uint32_t>(Op::kCount)));
    UTTM_RETURN_IF_ERROR(Step(op));
    UTTM_RETURN_IF_ERROR(AfterStep());
  }
  UTTM_RETURN_IF_ERROR(VerifyAll());
  return CheckEmpty();
}

}  // namespace

Status RunObjectOps(const std::uint8_t* data, std::size_t size, const ObjectOpsOptions& options) {
  Reader in(data, size);
  World world(in, options);
  return world.Run();
}

}  // namespace uttm::fuzz
