// Copyright (c) uttm developers.
//
// The front door: a runtime opened in a few lines holds several times its page limit of buffer
// objects on a simulated GPU and gives every byte back; its options are validated; devices with
// live objects are refused, not aborted; two runtimes in one process do not touch each other's
// objects; fault injection is armed from the environment only when asked; the snapshot names
// what the runtime holds.
#include "uttm/runtime.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <vector>

#include "testing/content.h"
#include "uttm/buffer_object.h"
#include "uttm/fault_injection.h"
#include "uttm/gem_device.h"
#include "uttm/range_manager.h"
#include "uttm/shmem_tt_funcs.h"

namespace uttm {
namespace {

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

Placement In(MemType type) {
  Place p;
  p.mem_type = type;
  return Placement{p};
}

RuntimeOptions Small(std::uint64_t page_limit) {
  RuntimeOptions o;
  o.page_limit = Bytes(page_limit);
  o.detect_pressure = false;  // the page budget alone: the test must not depend on the machine
  return o;
}

// A simulated GPU "gpu0" with 8 MiB of VRAM.
SimGpuOptions Gpu0() {
  SimGpuOptions g;
  g.name = "gpu0";
  g.vram_size = Bytes(8 * kMiB);
  return g;
}

BoRef MakeWithContent(Device* dev, std::uint64_t id, std::uint64_t size, MemType type,
                      BudgetGroup* client = nullptr) {
  OperationContext ctx;
  BoOptions o;
  o.size = Bytes(size);
  o.client = client;
  Result<BoRef> bo = BufferObject::Create(dev, o, In(type), ctx);
  EXPECT_TRUE(bo.ok()) << bo.status().ToString();
  if (!bo.ok()) return BoRef();
  Status s = (*bo)->Write(0, testing::Content({id, 1}, 0, size), ctx);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return *bo;
}

void ExpectContent(BufferObject& bo, std::uint64_t id) {
  std::vector<std::byte> got(bo.size().value());
  OperationContext ctx;
  Status s = bo.Read(0, got, ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(testing::FindMismatch({id, 1}, 0, got).has_value()) << "object " << id;
}

TEST(RuntimeTest, OpensInAFewLinesAndHoldsFourTimesItsLimit) {
  Result<std::unique_ptr<Runtime>> rt = Runtime::Open(Small(16 * kMiB));
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  Result<SimGpu*> gpu = (*rt)->AddSimGpu(Gpu0());
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  Device* dev = (*gpu)->device();

  std::vector<BoRef> bos;
  for (std::uint64_t i = 0; i < 16; ++i) {  // 64 MiB of TT and VRAM objects over 16 MiB
    bos.push_back(MakeWithContent(dev, i, 4 * kMiB, i % 4 == 0 ? kMemVram : kMemTt));
    ASSERT_TRUE(bos.back());
    EXPECT_LE((*rt)->memory().pages_allocated().in_bytes().value(), 16 * kMiB);
  }
  for (std::uint64_t i = 0; i < bos.size(); ++i) ExpectContent(*bos[i], i);
  EXPECT_GT((*rt)->stats().Get(Stat::kPagesBackedUp) + (*rt)->stats().Get(Stat::kPagesSwappedOut),
            0u);
  (*gpu)->Drain();
  Status inv = (*rt)->CheckInvariants();
  EXPECT_TRUE(inv.ok()) << inv.ToString();

  RuntimeSnapshot snap = (*rt)->Snapshot();
  ASSERT_EQ(snap.devices.size(), 1u);
  EXPECT_EQ(snap.devices[0].name, "gpu0");
  EXPECT_EQ(snap.devices[0].buffer_objects, 16u);
  const std::string json = SnapshotToJson(snap);
  for (const char* key : {"\"schema\": \"uttm.inspect\"", "\"devices\"", "\"pool\"", "\"store\"",
                          "\"shrinkers\"", "\"bo_shrinkers\"", "\"reclaim_thread\"", "\"stats\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " missing in " << json;
  }
  const std::string text = SnapshotToText(snap);
  for (const char* line : {"device gpu0: 16 buffer objects", "manager vram", "manager tt",
                           "pool:", "store:", "shrinkers:", "uttm-pool", "uttm-bo-gpu0"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << " missing in\n" << text;
  }

  bos.clear();
  EXPECT_TRUE((*rt)->Close().ok());
  EXPECT_TRUE((*rt)->devices().empty());
}

// The runtime owns the budget tree: its devices' memory types are regions, objects of a client
// are charged to it, a protected client keeps its VRAM while an unprotected one is evicted, and
// inspect shows the tree.
TEST(RuntimeTest, ClientsAreChargedProtectedAndInspected) {
  Result<std::unique_ptr<Runtime>> rt = Runtime::Open(Small(64 * kMiB));
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  Result<SimGpu*> gpu = (*rt)->AddSimGpu(Gpu0());
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  Device* dev = (*gpu)->device();
  BudgetTree& tree = (*rt)->budgets();
  Result<int> vram = tree.FindRegion("drm/gpu0/vram");
  ASSERT_TRUE(vram.ok()) << vram.status().ToString();
  BudgetGroup* model = *tree.AddGroup(nullptr, "model");
  BudgetGroup* batch = *tree.AddGroup(nullptr, "batch");
  ASSERT_TRUE(tree.SetLimit(model, *vram, BudgetLimit::kLow, 4 * kMiB).ok());
  std::vector<BoRef> bos;
  for (std::uint64_t i = 0; i < 4; ++i) {
    bos.push_back(MakeWithContent(dev, i, kMiB, kMemVram, model));
    ASSERT_TRUE(bos.back());
  }
  for (std::uint64_t i = 4; i < 16; ++i) {  // 12 MiB more into the 4 MiB left
    bos.push_back(MakeWithContent(dev, i, kMiB, kMemVram, batch));
    ASSERT_TRUE(bos.back());
  }
  (*gpu)->Drain();
  EXPECT_EQ(model->current(*vram), 4 * kMiB);
  EXPECT_EQ(model->Read(*vram).evictions_suffered, 0u);
  EXPECT_GT(batch->Read(*vram).evictions_suffered, 0u);
  for (std::uint64_t i = 0; i < bos.size(); ++i) ExpectContent(*bos[i], i);

  RuntimeSnapshot snap = (*rt)->Snapshot();
  const std::string json = SnapshotToJson(snap);
  for (const char* key : {"\"budgets\": [", "\"group\": \"/model\"",
                          "\"region\": \"drm/gpu0/vram\"", "\"low\": 4194304", "\"max\": null"}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " missing in " << json;
  }
  const std::string text = SnapshotToText(snap);
  EXPECT_NE(text.find("  /model drm/gpu0/vram: 4.0 MiB"), std::string::npos) << text;
  bos.clear();
  EXPECT_TRUE((*rt)->Close().ok());
}

TEST(RuntimeTest, HostMemoryHooksSeeEveryRegionTheBuffersUse) {
  std::map<std::byte*, std::size_t> created, released;
  RuntimeOptions o = Small(16 * kMiB);
  o.host_memory_hooks.region_created = [&](std::byte* base, std::size_t bytes) {
    created[base] = bytes;
    return Status();
  };
  o.host_memory_hooks.region_released = [&](std::byte* base, std::size_t bytes) {
    released[base] = bytes;
  };
  {
    Result<std::unique_ptr<Runtime>> rt = Runtime::Open(o);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    Result<SimGpu*> gpu = (*rt)->AddSimGpu({.name = "gpu0"});
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    BoRef bo = MakeWithContent((*gpu)->device(), 7, 4 * kMiB, kMemTt);
    ASSERT_TRUE(bo);
    ASSERT_TRUE(bo->tt() != nullptr && bo->tt()->is_populated());
    ASSERT_FALSE(created.empty());
    // Every page of the object lies in a region the hook saw.
    bo->tt()->ForEachRun([&](std::size_t, std::byte* addr, std::size_t pages) {
      auto it = created.upper_bound(addr);
      ASSERT_NE(it, created.begin());
      --it;
      EXPECT_LE(addr + pages * kPageSize, it->first + it->second);
    });
    ExpectContent(*bo, 7);
    EXPECT_TRUE(released.empty());
    bo.reset();
  }
  EXPECT_EQ(released, created);
}

TEST(RuntimeTest, GemDevicesAreReclaimedInspectedAndClosedWithTheRuntime) {
  Result<std::unique_ptr<Runtime>> rt = Runtime::Open(Small(16 * kMiB));
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  GemDeviceOptions go;
  go.name = "gem0";
  go.backing.directory = ::testing::TempDir();
  Result<GemDevice*> gem = (*rt)->AddGemDevice(go);
  ASSERT_TRUE(gem.ok()) << gem.status().ToString();
  go.backing.directory = "/nonexistent";
  EXPECT_EQ((*rt)->AddGemDevice(go).code(), Errc::kInvalid);
  std::vector<GemRef> objs;
  for (std::uint64_t i = 0; i < 4; ++i) {
    Result<GemRef> o = (*gem)->CreateObject(Bytes(kMiB));
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    ASSERT_TRUE((*o)->resv()->TryLock());
    (*o)->resv()->AssertHeld();
    Result<std::byte*> p = (*o)->Vmap();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    testing::FillContent({40 + i, 1}, 0, std::span(*p, kMiB));
    ASSERT_TRUE((*o)->GetPages().ok());
    ASSERT_TRUE((*o)->Vunmap().ok());
    if (i % 2 == 0) (*o)->Madvise(1);
    (*o)->resv()->Unlock();
    objs.push_back(*o);
  }
  RuntimeSnapshot snap = (*rt)->Snapshot();
  ASSERT_EQ(snap.gem_devices.size(), 1u);
  EXPECT_EQ(snap.gem_devices[0].objects, 4u);
  EXPECT_EQ(snap.gem_devices[0].purgeable_pages, 2 * kMiB / kPageSize);
  EXPECT_EQ(snap.gem_devices[0].evictable_pages, 2 * kMiB / kPageSize);
  EXPECT_NE(SnapshotToText(snap).find("gem device gem0"), std::string::npos);
  EXPECT_NE(SnapshotToJson(snap).find("\"gem_devices\""), std::string::npos);
  // The runtime's reclaimer reaches the GEM shrinker: don't-need objects go first.
  ShrinkResult r = (*rt)->reclaimer().Shrink({}, kDefPriority, 2 * kMiB / kPageSize);
  EXPECT_GE(r.freed, 2 * kMiB / kPageSize);
  EXPECT_EQ(objs[0]->state(), GemPageState::kPurged);
  EXPECT_EQ(objs[2]->state(), GemPageState::kPurged);
  // A device with live objects keeps the runtime from closing it, with a clear error.
  Status busy = (*rt)->Close();
  EXPECT_EQ(busy.code(), Errc::kBusy);
  EXPECT_NE(busy.ToString().find("gem0"), std::string::npos) << busy.ToString();
  for (std::uint64_t i : {1u, 3u}) {  // the evictable ones kept every byte
    ASSERT_TRUE(objs[i]->resv()->TryLock());
    objs[i]->resv()->AssertHeld();
    Result<std::byte*> p = objs[i]->Vmap();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_FALSE(testing::FindMismatch({40 + i, 1}, 0, std::span(*p, kMiB)).has_value());
    ASSERT_TRUE(objs[i]->Vunmap().ok());
    objs[i]->resv()->Unlock();
  }
  objs.clear();
  EXPECT_TRUE((*rt)->Close().ok());
  EXPECT_TRUE((*rt)->gem_devices().empty());
}

TEST(RuntimeTest, AFileBackedShareOfASimGpusObjectsIsReclaimedByItsOwnShrinker) {
  Result<std::unique_ptr<Runtime>> rt = Runtime::Open(Small(64 * kMiB));
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  ShmemTtFuncsOptions fb;
  fb.share = 0.5;
  fb.backing.directory = ::testing::TempDir();
  SimGpuOptions g;
  g.name = "gpu0";
  EXPECT_EQ((*rt)->AddSimGpu(g, {.share = 1.5}).code(), Errc::kInvalid);
  Result<SimGpu*> gpu = (*rt)->AddSimGpu(g, fb);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  Device* dev = (*gpu)->device();
  std::vector<BoRef> bos;
  for (std::uint64_t i = 0; i < 8; ++i) {
    bos.push_back(MakeWithContent(dev, 60 + i, kMiB, kMemSystem));
    ASSERT_TRUE(bos.back());
  }
  ShmemTtFuncs* funcs = (*rt)->file_backed(dev);
  ASSERT_NE(funcs, nullptr);
  EXPECT_EQ(funcs->file_backed_objects(), 4u) << "half of the objects, spread evenly";
  std::uint64_t file_backed = 0;
  for (const BoRef& bo : bos) file_backed += bo->tt()->is_shmem() ? 1 : 0;
  EXPECT_EQ(file_backed, 4u);
  EXPECT_EQ((*rt)->memory().pages_allocated().in_bytes().value(), 4 * kMiB)
      << "only the pool-backed half is charged";
  EXPECT_EQ(funcs->shrinker()->resident_pages(), 4 * kMiB / kPageSize);
  bool listed = false;
  for (const auto& sh : (*rt)->Snapshot().shrinkers) listed |= sh.name == "uttm-shmem-tt-gpu0";
  EXPECT_TRUE(listed);
  // The runtime's reclaimer reaches the file-backed shrinker. (The target leaves room for the
  // pool's shrinker, which counts again the pages a backup left it to recycle.)
  ShrinkResult r =
      (*rt)->reclaimer().Shrink({.background = true}, kDefPriority, 16 * kMiB / kPageSize);
  EXPECT_GT(r.freed, 0u);
  EXPECT_LT(funcs->shrinker()->resident_pages(), 4 * kMiB / kPageSize);
  for (std::uint64_t i = 0; i < bos.size(); ++i) ExpectContent(*bos[i], 60 + i);
  bos.clear();
  EXPECT_TRUE((*rt)->Close().ok());
}

TEST(RuntimeTest, BadOptionsAreClearErrors) {
  RuntimeOptions o = Small(5000);
  Result<std::unique_ptr<Runtime>> rt = Runtime::Open(o);
  ASSERT_FALSE(rt.ok());
  EXPECT_EQ(rt.status().code(), Errc::kInvalid);
  EXPECT_NE(rt.status().message().find("page_limit"), std::string_view::npos);

  o = Small(16 * kMiB);
  o.store_spec = "tape:/dev/st0";
  rt = Runtime::Open(o);
  ASSERT_FALSE(rt.ok());
  EXPECT_EQ(rt.status().code(), Errc::kInvalid);
  EXPECT_NE(rt.status().message().find("tape:/dev/st0"), std::string_view::npos)
      << rt.status().ToString();

  rt = Runtime::Open(Small(16 * kMiB));
  ASSERT_TRUE(rt.ok());
  EXPECT_EQ((*rt)->AddDevice(nullptr).status().code(), Errc::kInvalid);
  SimGpuOptions g;
  g.memory = &(*rt)->memory();
  EXPECT_EQ((*rt)->AddSimGpu(g).status().code(), Errc::kInvalid);
}

TEST(RuntimeTest, ADeviceWithLiveObjectsIsRefusedNotAborted) {
  Result<std::unique_ptr<Runtime>> rt = Runtime::Open(Small(16 * kMiB));
  ASSERT_TRUE(rt.ok());
  Result<SimGpu*> gpu = (*rt)->AddSimGpu({});
  ASSERT_TRUE(gpu.ok());
  Device* dev = (*gpu)->device();
  BoRef bo = MakeWithContent(dev, 7, kMiB, kMemTt);
  Status s = (*rt)->RemoveDevice(dev);
  EXPECT_EQ(s.code(), Errc::kBusy) << s.ToString();
  EXPECT_NE(s.message().find("1 live buffer objects"), std::string_view::npos) << s.ToString();
  ExpectContent(*bo, 7);  // untouched
  s = (*rt)->Close();
  EXPECT_EQ(s.code(), Errc::kBusy);
  bo.reset();
  EXPECT_TRUE((*rt)->RemoveDevice(dev).ok());
  EXPECT_EQ((*rt)->RemoveDevice(dev).code(), Errc::kNotFound);
}

// Destroying a runtime under live objects: a message and a deferred release, the objects still
// work. In a child, which ends with _exit: what is deliberately kept must not count as a leak.
TEST(RuntimeTest, DestroyingARuntimeUnderLiveObjectsKeepsThemWorking) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto rt = Runtime::Open(Small(16 * kMiB));
    if (!rt.ok()) _exit(2);
    auto gpu = (*rt)->AddSimGpu({});
    if (!gpu.ok()) _exit(3);
    OperationContext ctx;
    auto bo = BufferObject::Create((*gpu)->device(), {.size = Bytes(kMiB)}, In(kMemTt), ctx);
    if (!bo.ok() || !(*bo)->Write(0, testing::Content({9, 1}, 0, kMiB), ctx).ok()) _exit(4);
    rt->reset();  // must not abort
    std::vector<std::byte> got(kMiB);
    if (!(*bo)->Read(0, got, ctx).ok()) _exit(5);
    if (testing::FindMismatch({9, 1}, 0, got).has_value()) _exit(6);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died: status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Two runtimes in one process: filling one over its limit backs up only its own objects.
// RuntimeOptions::shrinker_owns_tt: a TT budget far below what the objects need is no cap, the
// page limit holds through the shrinker, the watermark swapout takes nothing, TtShrink backs up
// through the shrinker, and every byte comes back.
TEST(RuntimeTest, WithTheShrinkerOwningTtTheTtBudgetIsNoCap) {
  RuntimeOptions ro = Small(8 * kMiB);
  ro.shrinker_owns_tt = true;
  auto rt = Runtime::Open(ro);
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  SimGpuOptions so;
  so.tt_budget = Bytes(4 * kMiB);
  auto gpu = (*rt)->AddSimGpu(so);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  std::vector<BoRef> bos;
  for (std::uint64_t i = 0; i < 12; ++i) {
    bos.push_back(MakeWithContent((*gpu)->device(), 300 + i, kMiB, kMemTt));
    ASSERT_TRUE(bos.back()) << i;
    EXPECT_LE((*rt)->memory().pages_allocated().in_bytes().value(), 8 * kMiB);
  }
  EXPECT_EQ((*rt)->stats().Get(Stat::kSwapouts), 0u) << "the watermark path took nothing";
  EXPECT_GT((*rt)->stats().Get(Stat::kPagesBackedUp), 0u) << "the shrinker made the room";
  Result<std::uint64_t> r = (*rt)->TtShrink();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(*r, 0u) << "tt_shrink backs up through the shrinker";
  for (std::uint64_t i = 0; i < bos.size(); ++i) ExpectContent(*bos[i], 300 + i);
  bos.clear();
  (*gpu)->Drain();
}

TEST(RuntimeTest, TwoRuntimesDoNotTouchEachOthersObjects) {
  auto a = Runtime::Open(Small(8 * kMiB));
  auto b = Runtime::Open(Small(8 * kMiB));
  ASSERT_TRUE(a.ok() && b.ok());
  auto ga = (*a)->AddSimGpu({});
  auto gb = (*b)->AddSimGpu({});
  ASSERT_TRUE(ga.ok() && gb.ok());
  std::vector<BoRef> in_b;
  for (std::uint64_t i = 0; i < 3; ++i) {
    in_b.push_back(MakeWithContent((*gb)->device(), 100 + i, 2 * kMiB, kMemTt));
  }
  std::vector<BoRef> in_a;
  for (std::uint64_t i = 0; i < 12; ++i) {
    in_a.push_back(MakeWithContent((*ga)->device(), i, 2 * kMiB, kMemTt));
  }
  EXPECT_GT((*a)->store().BytesUsed(), 0u);
  EXPECT_EQ((*b)->store().BytesUsed(), 0u);
  EXPECT_EQ((*b)->memory().pages_allocated().in_bytes().value(), 6 * kMiB);
  for (std::uint64_t i = 0; i < in_b.size(); ++i) ExpectContent(*in_b[i], 100 + i);
  for (std::uint64_t i = 0; i < in_a.size(); ++i) ExpectContent(*in_a[i], i);
  // tt_shrink of one runtime swaps only its own objects, until it has none left to swap.
  const std::uint64_t b_pages = (*b)->memory().pages_allocated().value();
  std::uint64_t swapped = 0;
  for (int round = 0; round < 64; ++round) {
    Result<std::uint64_t> r = (*a)->TtShrink();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (*r == 0) break;
    swapped += *r;
  }
  EXPECT_GT(swapped, 0u);
  EXPECT_EQ((*b)->memory().pages_allocated().value(), b_pages);
  EXPECT_EQ((*b)->store().BytesUsed(), 0u);
  Result<std::uint64_t> r = (*b)->TtShrink();
  ASSERT_TRUE(r.ok());
  EXPECT_GT(*r, 0u);  // b's own objects were still there to swap
  for (std::uint64_t i = 0; i < in_b.size(); ++i) ExpectContent(*in_b[i], 100 + i);
  for (std::uint64_t i = 0; i < in_a.size(); ++i) ExpectContent(*in_a[i], i);
}

TEST(RuntimeTest, FaultsComeFromTheEnvironmentOnlyWhenAsked) {
  ASSERT_EQ(setenv("UTTM_FAULTS", "page.alloc", 1), 0);
  {
    auto rt = Runtime::Open(Small(16 * kMiB));
    ASSERT_TRUE(rt.ok());
    auto gpu = (*rt)->AddSimGpu({});
    ASSERT_TRUE(gpu.ok());
    BoRef bo = MakeWithContent((*gpu)->device(), 1, kMiB, kMemTt);  // populates: no fault
    EXPECT_TRUE(bo);
  }
  {
    RuntimeOptions o = Small(16 * kMiB);
    o.faults_from_environment = true;
    auto rt = Runtime::Open(o);
    ASSERT_TRUE(rt.ok());
    auto gpu = (*rt)->AddSimGpu({});
    ASSERT_TRUE(gpu.ok());
    OperationContext ctx;
    // Placing it in TT populates its pages: every page allocation fails.
    auto bo = BufferObject::Create((*gpu)->device(), {.size = Bytes(kMiB)}, In(kMemTt), ctx);
    FaultInjection::DisarmAll();
    EXPECT_EQ(bo.status().code(), Errc::kNoMemory) << bo.status().ToString();
  }
  ASSERT_EQ(setenv("UTTM_FAULTS", "store.wrte", 1), 0);
  RuntimeOptions o = Small(16 * kMiB);
  o.faults_from_environment = true;
  auto rt = Runtime::Open(o);
  EXPECT_EQ(rt.status().code(), Errc::kInvalid);
  EXPECT_NE(rt.status().message().find("UTTM_FAULTS"), std::string_view::npos);
  unsetenv("UTTM_FAULTS");
}

TEST(RuntimeTest, DefaultsComeFromTheMachineAndAreNamed) {
  RuntimeOptions o;
  o.reclaim_thread = false;
  auto rt = Runtime::Open(o);
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  ASSERT_FALSE((*rt)->notes().empty());
  const std::string& first = (*rt)->notes().front();
  EXPECT_TRUE(first.find("cgroup") != std::string::npos ||
              first.find("MemAvailable") != std::string::npos)
      << first;
  EXPECT_GT((*rt)->memory().pages_limit().value(), 0u);
  EXPECT_EQ((*rt)->reclaim_thread(), nullptr);
}

}  // namespace
}  // namespace uttm
