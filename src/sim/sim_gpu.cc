// Copyright (c) uttm developers.
#include "uttm/sim_gpu.h"

#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "base/check.h"
#include "uttm/range_manager.h"
#include "uttm/tt_manager.h"

namespace uttm {
namespace {

Place TtPlace(std::uint32_t flags = 0) {
  Place p;
  p.mem_type = kMemTt;
  p.flags = flags;
  return p;
}

}  // namespace

SimGpu::SimGpu(const SimGpuOptions& options)
    : options_(options), fence_context_(Fence::AllocateContext()) {}

Result<std::unique_ptr<SimGpu>> SimGpu::Create(const SimGpuOptions& options) {
  if (!options.vram_size.is_page_aligned() || options.vram_size.value() == 0) {
    return Status(Errc::kInvalid, "VRAM size must be a non-zero multiple of 4 KiB");
  }
  std::unique_ptr<SimGpu> gpu(new SimGpu(options));
  void* arena = mmap(nullptr, options.vram_size.value(), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (arena == MAP_FAILED) return Status(Errc::kNoMemory, "cannot map the VRAM arena");
  gpu->vram_base_ = static_cast<std::byte*>(arena);
  DeviceOptions dev_opts;
  dev_opts.name = options.name;
  dev_opts.memory = options.memory;
  dev_opts.backup_store = options.backup_store;
  dev_opts.keep_clean_copies = options.keep_clean_copies;
  dev_opts.budgets = options.budgets;
  DeviceFuncs* funcs = gpu.get();
  if (options.wrap_funcs) funcs = options.wrap_funcs(gpu.get());
  if (funcs == nullptr) return Status(Errc::kInvalid, "SimGpuOptions::wrap_funcs returned null");
  UTTM_ASSIGN_OR_RETURN(gpu->device_, Device::Create(funcs, dev_opts));
  UTTM_RETURN_IF_ERROR(
      gpu->device_->SetManager(std::make_unique<TtManager>(kMemTt, options.tt_budget)));
  UTTM_RETURN_IF_ERROR(gpu->device_->SetManager(
      std::make_unique<RangeManager>(kMemVram, options.vram_size.pages_rounded_up())));
  gpu->engine_ = std::thread([g = gpu.get()] { g->EngineLoop(); });
  return gpu;
}

SimGpu::~SimGpu() {
  Drain();
  device_.reset();
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  if (engine_.joinable()) engine_.join();
  if (vram_base_ != nullptr) munmap(vram_base_, options_.vram_size.value());
}

// ---------------------------------------------------------------------------------------------
// Engine

FenceRef SimGpu::Queue(std::function<void()> run) {
  MutexLock lock(&mu_);
  if (!active_) {
    active_ = true;
    ++stats_.wakeups;
  }
  ++pm_refs_;  // released when the item has executed
  FenceRef fence = Fence::Create(fence_context_, ++seqno_);
  queue_.push_back(Work{std::move(run), fence});
  cv_.SignalAll();
  return fence;
}

void SimGpu::EngineLoop() {
  MutexLock lock(&mu_);
  for (;;) {
    while (queue_.empty() && !stopping_) cv_.Wait(&mu_);
    if (queue_.empty()) return;
    Work work = std::move(queue_.front());
    queue_.pop_front();
    running_ = true;
    mu_.Unlock();
    work.run();
    Status signalled = work.fence->Signal();
    UTTM_CHECK(signalled.ok(), "engine fence signalled twice");
    mu_.Lock();
    running_ = false;
    --pm_refs_;
    cv_.SignalAll();
  }
}

void SimGpu::Drain() {
  MutexLock lock(&mu_);
  while (!queue_.empty() || running_) cv_.Wait(&mu_);
}

SimGpuStats SimGpu::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

Result<FenceRef> SimGpu::SubmitJob(BufferObject& bo, std::chrono::microseconds duration,
                                   ResvUsage usage) {
  if (&bo.device() != device_.get()) {
    return Status(Errc::kInvalid, "buffer object belongs to another device");
  }
  Reservation* resv = bo.resv();
  if (!resv->IsLocked()) return Status(Errc::kInvalid, "SubmitJob needs the object reserved");
  resv->AssertHeld();
  UTTM_RETURN_IF_ERROR(resv->ReserveFences(1));
  {
    MutexLock lock(&mu_);
    ++stats_.jobs;
  }
  FenceRef fence = Queue([duration] { std::this_thread::sleep_for(duration); });
  UTTM_RETURN_IF_ERROR(resv->AddFence(fence, usage));
  return fence;
}

// ---------------------------------------------------------------------------------------------
// Power management

bool SimGpu::IsActive() const {
  MutexLock lock(&mu_);
  return active_;
}

Status SimGpu::Suspend() {
  MutexLock lock(&mu_);
  if (pm_refs_ > 0 || !queue_.empty() || running_) {
    return Status(Errc::kBusy, "the device is in use");
  }
  active_ = false;
  return Status();
}

void SimGpu::Resume() {
  MutexLock lock(&mu_);
  if (!active_) ++stats_.wakeups;
  active_ = true;
}

bool SimGpu::GetIfActive() {
  MutexLock lock(&mu_);
  if (!active_) return false;
  ++pm_refs_;
  return true;
}

void SimGpu::GetSync() {
  MutexLock lock(&mu_);
  if (!active_) ++stats_.wakeups;
  active_ = true;
  ++pm_refs_;
}

void SimGpu::Put() {
  MutexLock lock(&mu_);
  UTTM_CHECK(pm_refs_ > 0, "runtime PM reference underflow");
  --pm_refs_;
}

// ---------------------------------------------------------------------------------------------
// Driver callbacks

void SimGpu::EvictFlags(const BufferObject& bo, Placement* placement) {
  const Resource* res = bo.resource();
  if (res != nullptr && res->mem_type() == kMemVram) {
    Place sys;
    sys.mem_type = kMemSystem;
    sys.flags = kPlaceFallback;
    *placement = Placement{TtPlace(), sys};
    return;
  }
  Place sys;
  sys.mem_type = kMemSystem;
  *placement = Placement{sys};
}

std::byte* SimGpu::AccessMemory(const Resource& res) {
  if (res.mem_type() != kMemVram || res.manager() != device_->manager(kMemVram)) return nullptr;
  return vram_base_ + res.start() * kPageSize;
}

Status SimGpu::Move(BufferObject& bo, bool evict, OperationContext& ctx,
                    std::unique_ptr<Resource>& new_res, Place* hop) {
  bo.resv()->AssertHeld();  // the core calls Move with the reservation held
  const Resource* old = bo.resource();
  MemType to = new_res->mem_type();
  MemType from = old == nullptr ? kMemSystem : old->mem_type();
  // Between the page-vector domains (and within one, as when a SYSTEM object is evicted to
  // SYSTEM) the pages stay where they are: nothing to copy.
  const bool tt_domains =
      (from == kMemSystem || from == kMemTt) && (to == kMemSystem || to == kMemTt);
  if (options_.memcpy_moves && !tt_domains) {
    // The CPU copies (a fresh VRAM resource gets the page vector's contents, or zeros).
    {
      MutexLock lock(&mu_);
      ++stats_.memcpy_moves;
    }
    return bo.MoveMemcpy(ctx, std::move(new_res));
  }
  if (old == nullptr && to == kMemVram) {
    // Fresh VRAM holds whatever was there before: clear it on the engine.
    std::byte* dst = AccessMemory(*new_res);
    std::size_t bytes = new_res->num_pages().in_bytes().value();
    {
      MutexLock lock(&mu_);
      ++stats_.clears;
    }
    FenceRef fence = Queue([dst, bytes] { std::memset(dst, 0, bytes); });
    std::unique_ptr<Resource> res = std::move(new_res);
    return bo.MoveAccelCleanup(std::move(fence), evict, options_.pipeline_moves, std::move(res));
  }
  if (old == nullptr || tt_domains) {
    bo.MoveNull(std::move(new_res));
    return Status();
  }
  if ((from == kMemVram && to == kMemSystem) || (from == kMemSystem && to == kMemVram)) {
    *hop = TtPlace(kPlaceTemporary);
    return Status(Errc::kMultihop, "the engine only reaches TT");
  }
  return CopyMove(bo, evict, ctx, new_res);
}

Status SimGpu::CopyMove(BufferObject& bo, bool evict, OperationContext& ctx,
                        std::unique_ptr<Resource>& new_res) {
  const Resource* old = bo.resource();
  const std::size_t pages = bo.num_pages().value();
  std::vector<std::byte*> tt_pages(pages);
  std::byte* vram = nullptr;
  bool to_vram = new_res->mem_type() == kMemVram;
  if (to_vram && old->mem_type() == kMemVram) {
    // Within VRAM (a contiguous or top-down placement): one engine copy between the two ranges,
    // which never overlap (both are allocated while the copy is queued).
    std::byte* src = AccessMemory(*old);
    std::byte* dst = AccessMemory(*new_res);
    {
      MutexLock lock(&mu_);
      ++stats_.copies;
      stats_.bytes_copied += pages * kPageSize;
    }
    FenceRef fence = Queue([src, dst, bytes = pages * kPageSize] { std::memcpy(dst, src, bytes); });
    return FinishCopy(bo, evict, ctx, std::move(fence), new_res);
  }
  if (to_vram && old->mem_type() == kMemTt) {
    // The source pages must be present (they may have been backed up by reclaim).
    UTTM_RETURN_IF_ERROR(bo.Populate(ctx));
    vram = AccessMemory(*new_res);
  } else if (!to_vram && old->mem_type() == kMemVram && new_res->mem_type() == kMemTt) {
    vram = AccessMemory(*old);
  } else {
    return Status(Errc::kInvalid, "the simulated GPU cannot copy between these memory types");
  }
  PageVector* tt = bo.tt();
  if (tt == nullptr || !tt->is_populated()) {
    return Status(Errc::kFault, "page vector not populated for an engine copy");
  }
  for (std::size_t i = 0; i < pages; ++i) tt_pages[i] = tt->PageAddress(i);
  // No CPU wait here: the engine runs items in submission order, so the copy executes after any
  // job still using the object, and after an earlier pipelined eviction out of this VRAM range.
  {
    MutexLock lock(&mu_);
    ++stats_.copies;
    stats_.bytes_copied += pages * kPageSize;
  }
  FenceRef fence = Queue([tt_pages = std::move(tt_pages), vram, to_vram] {
    for (std::size_t i = 0; i < tt_pages.size(); ++i) {
      if (to_vram) {
        std::memcpy(vram + i * kPageSize, tt_pages[i], kPageSize);
      } else {
        std::memcpy(tt_pages[i], vram + i * kPageSize, kPageSize);
      }
    }
  });
  return FinishCopy(bo, evict, ctx, std::move(fence), new_res);
}

Status SimGpu::FinishCopy(BufferObject& bo, bool evict, OperationContext& ctx, FenceRef fence,
                          std::unique_ptr<Resource>& new_res) {
  if (!options_.pipeline_moves) {
    // On an interrupted wait the caller keeps the new resource (and frees it).
    UTTM_RETURN_IF_ERROR(fence->Wait(ctx));
  }
  return bo.MoveAccelCleanup(std::move(fence), evict, options_.pipeline_moves, std::move(new_res));
}

}  // namespace uttm
