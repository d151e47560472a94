// Copyright (c) uttm developers.
//
// The memory cgroup proof for GEM shmem objects: a forked child in its own cgroup v1 memory group
// (256 MiB; UTTM_SHRINK_CGROUP_LIMIT_MIB to change it) creates three times the limit of 16 MiB
// objects backed by files in $TMPDIR, each holding its pages (mlocked, as the kernel pins the
// pages of a GEM object that has them) with content that depends on object and word, uses them
// in random order and verifies every byte. The GEM shrinker, driven by a reclaim thread over the
// cgroup's usage, evicts objects:
//   * lazily (lazy_release): pages unmapped and left in the page cache, so the kernel's own
//     reclaim must write them back and drop them under the group's limit;
//   * with write-back: written and dropped by the shrinker itself.
// Both must finish with no OOM kill. The control run without the shrinker is OOM-killed.
// The same proof runs for buffer objects whose page vectors live in files (i915's shmem tt) with
// their own shrinker. Skipped, with the reason printed, when not root, without a v1 memory
// controller, under a sanitizer, or when $TMPDIR is a tmpfs (its pages could not leave memory
// without swap).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>
#include <vector>

#include "pressure/test_cgroup.h"
#include "testing/proc_status.h"
#include "testing/test_device.h"
#include "tt/test_util.h"
#include "uttm/buffer_object.h"
#include "uttm/gem_device.h"
#include "uttm/gem_shmem_object.h"
#include "uttm/pressure_source.h"
#include "uttm/reclaim_thread.h"
#include "uttm/reclaimer.h"
#include "uttm/shmem_tt_funcs.h"

namespace uttm {
namespace {

using testing::TestCgroup;

constexpr std::uint64_t kObjectBytes = 16ull << 20;
constexpr long kTmpfsMagic = 0x01021994;

using testing::ProofLimitBytes;
using testing::ProofWord;

struct ChildReport {
  int stage = 0;
  std::uint64_t objects = 0;
  std::uint64_t uses = 0;
  std::uint64_t bytes_verified = 0;
  std::uint64_t episodes = 0;
  std::uint64_t pages_evicted = 0;
  std::uint64_t pages_swapped_in = 0;
  std::uint64_t peak_usage = 0;
  std::uint64_t locked_bytes = 0;  // VmLck after the objects were made
  char error[200] = {};            // what failed, when a stage did
};

ChildReport* g_report = nullptr;

void Note(const std::string& what) {
  if (g_report != nullptr)
    std::snprintf(g_report->error, sizeof g_report->error, "%s", what.c_str());
}

enum class Mode { kLazy, kWriteback, kOff };

// Maps `obj` (a pin: it is swapped in if it was evicted), runs fn over its words, unmaps.
template <typename Fn>
bool WithWords(const GemRef& obj, Fn fn) {
  // Blocking: the shrinker may hold the reservation for a moment (it only try-locks).
  if (Status s = obj->resv()->Lock(nullptr); !s.ok()) {
    Note("Lock: " + s.ToString());
    return false;
  }
  obj->resv()->AssertHeld();
  Result<std::byte*> p = obj->Vmap();
  if (!p.ok()) Note("Vmap: " + p.status().ToString());
  bool ok = p.ok() && fn(reinterpret_cast<std::uint64_t*>(*p));
  if (p.ok() && !ok) Note("the words were wrong, or GetPages failed");
  if (p.ok()) ok = obj->Vunmap().ok() && ok;
  obj->resv()->Unlock();
  return ok;
}

// The proofs' uses once the objects exist: `n` uses in a fixed pseudo-random order, then every
// object once more, each checked by `verify(i)`. Returns 0, or the stage that failed (8: a use,
// 9: the final check).
template <typename Throttle, typename Verify>
int UseAndVerify(std::uint32_t n, ChildReport& rep, Throttle throttle, Verify verify) {
  std::uint64_t rng = 42;
  for (std::uint32_t k = 0; k < n; ++k) {
    throttle();
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    if (!verify(static_cast<std::uint32_t>((rng >> 33) % n))) return 8;
    rep.bytes_verified += kObjectBytes;
    ++rep.uses;
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    throttle();
    if (!verify(i)) return 9;
    rep.bytes_verified += kObjectBytes;
  }
  return 0;
}

[[noreturn]] void ChildMain(Mode mode, const std::string& expected_dir, int report_fd) {
  ChildReport rep;
  g_report = &rep;
  auto finish = [&](int stage) { testing::FinishChild(report_fd, rep, stage); };
  const std::uint64_t limit = ProofLimitBytes();
  Result<std::unique_ptr<CgroupV1Source>> src = testing::DetectProofGroup(expected_dir);
  if (!src.ok()) finish(1);
  CgroupV1Source* monitor = src->get();
  Stats stats;
  GemDeviceOptions go;
  go.name = "cgroup";
  go.backing.directory = ::testing::TempDir();
  go.lazy_release = mode == Mode::kLazy;
  go.stats = &stats;
  Result<std::unique_ptr<GemDevice>> dev = GemDevice::Create(go);
  if (!dev.ok() || !(*dev)->can_evict()) finish(2);
  Reclaimer reclaimer(&stats);
  ReclaimThread thread(&reclaimer, testing::ProofReclaimOptions());
  if (!thread.AddSource(std::move(*src)).ok()) finish(3);
  if (mode != Mode::kOff && !reclaimer.Register(&(*dev)->shrinker()).ok()) finish(4);
  if (!thread.Start().ok()) finish(5);
  // The kernel's reclaim throttle, played by the test: above 70 % of the limit, give reclaim up
  // to 200 ms to catch up before taking more pages.
  auto throttle = [&] {
    testing::ThrottleChild(*monitor, limit, kObjectBytes, mode != Mode::kOff, &rep.peak_usage);
  };
  const std::uint32_t n = static_cast<std::uint32_t>(3 * limit / kObjectBytes);
  const std::size_t words = kObjectBytes / 8;
  std::vector<GemRef> objs;
  for (std::uint32_t i = 0; i < n; ++i) {
    throttle();
    Result<GemRef> obj = (*dev)->CreateObject(Bytes(kObjectBytes));
    if (!obj.ok()) finish(6);
    const bool filled = WithWords(*obj, [&](std::uint64_t* w) {
      for (std::size_t k = 0; k < words; ++k) w[k] = ProofWord(i, k);
      (*obj)->resv()->AssertHeld();
      return (*obj)->GetPages().ok();  // the object holds its pages from now on
    });
    if (!filled) finish(7);
    objs.push_back(*obj);
    ++rep.objects;
  }
  rep.locked_bytes = testing::ProcStatusBytes("VmLck");
  auto verify = [&](std::uint32_t i) {
    return WithWords(objs[i], [&](std::uint64_t* w) {
      for (std::size_t k = 0; k < words; ++k) {
        if (w[k] != ProofWord(i, k)) return false;
      }
      return true;
    });
  };
  if (int stage = UseAndVerify(n, rep, throttle, verify); stage != 0) finish(stage);
  thread.Stop();
  rep.episodes = thread.episodes();
  rep.pages_evicted = stats.Get(Stat::kGemPagesEvicted);
  rep.pages_swapped_in = stats.Get(Stat::kGemPagesSwappedIn);
  if (mode != Mode::kOff) (void)reclaimer.Unregister(&(*dev)->shrinker());
  objs.clear();
  dev->reset();
  finish(0);
  _exit(0);
}

// The same proof for buffer objects with file-backed page vectors (shmem_tt.h): every
// object file-backed through ShmemTtFuncs, their ShmemTtShrinker on the reclaim thread.
[[noreturn]] void VectorChildMain(Mode mode, const std::string& expected_dir, int report_fd) {
  ChildReport rep;
  g_report = &rep;
  auto finish = [&](int stage) { testing::FinishChild(report_fd, rep, stage); };
  const std::uint64_t limit = ProofLimitBytes();
  Result<std::unique_ptr<CgroupV1Source>> src = testing::DetectProofGroup(expected_dir);
  if (!src.ok()) finish(1);
  CgroupV1Source* monitor = src->get();
  Stats stats;
  MemoryContextOptions mo;
  mo.stats = &stats;
  MemoryContext memory(mo);
  ShmemTtFuncsOptions fo;
  fo.share = 1.0;
  fo.backing.directory = ::testing::TempDir();
  std::unique_ptr<ShmemTtFuncs> funcs;
  auto dev = std::make_unique<testing::TestDevice>(
      PageCount(256), Bytes(64 << 20), &memory, nullptr, [&](DeviceFuncs* driver) {
        funcs = std::make_unique<ShmemTtFuncs>(driver, fo);
        return funcs.get();
      });
  funcs->Bind(dev->get());
  Reclaimer reclaimer(&stats);
  ReclaimThread thread(&reclaimer, testing::ProofReclaimOptions());
  if (!thread.AddSource(std::move(*src)).ok()) finish(3);
  if (mode != Mode::kOff && !reclaimer.Register(funcs->shrinker()).ok()) finish(4);
  if (!thread.Start().ok()) finish(5);
  auto throttle = [&] {
    testing::ThrottleChild(*monitor, limit, kObjectBytes, mode != Mode::kOff, &rep.peak_usage);
  };
  const std::uint32_t n = static_cast<std::uint32_t>(3 * limit / kObjectBytes);
  std::vector<std::uint64_t> words(kObjectBytes / 8);
  std::vector<BoRef> bos;
  OperationContext ctx;
  for (std::uint32_t i = 0; i < n; ++i) {
    throttle();
    Result<BoRef> bo = BufferObject::Create(dev->get(), {.size = Bytes(kObjectBytes)},
                                            testing::PlacementOf(kMemSystem), ctx);
    if (!bo.ok()) finish(6);
    for (std::size_t k = 0; k < words.size(); ++k) words[k] = ProofWord(i, k);
    if (Status s = (*bo)->Write(0, std::as_bytes(std::span(words)), ctx); !s.ok()) {
      Note("Write: " + s.ToString());
      finish(7);
    }
    bos.push_back(*bo);
    ++rep.objects;
  }
  rep.locked_bytes = testing::ProcStatusBytes("VmLck");
  auto verify = [&](std::uint32_t i) {
    if (Status s = bos[i]->Read(0, std::as_writable_bytes(std::span(words)), ctx); !s.ok()) {
      Note("Read: " + s.ToString());
      return false;
    }
    for (std::size_t k = 0; k < words.size(); ++k) {
      if (words[k] != ProofWord(i, k)) {
        Note("the words were wrong");
        return false;
      }
    }
    return true;
  };
  if (int stage = UseAndVerify(n, rep, throttle, verify); stage != 0) finish(stage);
  thread.Stop();
  rep.episodes = thread.episodes();
  rep.pages_evicted = stats.Get(Stat::kGemPagesEvicted);
  if (mode != Mode::kOff) (void)reclaimer.Unregister(funcs->shrinker());
  bos.clear();
  dev->device->FlushDelayedDeletes();
  dev.reset();
  finish(0);
  _exit(0);
}

using RunResult = testing::CgroupChildRun<ChildReport>;

// Why this machine cannot run the proof (empty: it can).
std::string CannotRun() {
  if (testing_util::UnderSanitizer()) {
    return "sanitizer runtimes ignore mlock and keep freed memory; this proof runs in the "
           "release build";
  }
  struct statfs fs;
  if (statfs(::testing::TempDir().c_str(), &fs) == 0 && fs.f_type == kTmpfsMagic) {
    return "$TMPDIR is a tmpfs: without swap its pages cannot leave memory";
  }
  return "";
}

using Child = void (*)(Mode, const std::string&, int);

void RunSurvivor(Mode mode, Child child = ChildMain) {
  if (std::string why = CannotRun(); !why.empty()) GTEST_SKIP() << why;
  std::string why;
  const std::uint64_t limit = ProofLimitBytes();
  auto cg = testing::MakeTestCgroupOrSkip(limit, &why);
  if (cg == nullptr) GTEST_SKIP() << why;
  RunResult r = testing::RunInCgroup<ChildReport>(cg.get(), std::chrono::seconds(120),
                                                  [&](int fd) { child(mode, cg->dir(), fd); });
  EXPECT_TRUE(r.problem.empty()) << r.problem;
  ASSERT_TRUE(r.have_report) << "status " << r.status << " oom_kill " << cg->OomKills();
  EXPECT_EQ(r.report.stage, 0) << r.report.error;
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.status;
  EXPECT_EQ(r.report.objects, 3 * limit / kObjectBytes);
  EXPECT_EQ(r.report.bytes_verified, (r.report.objects + r.report.uses) * kObjectBytes);
  EXPECT_GT(r.report.pages_evicted, 0u);
  if (child == ChildMain) {
    EXPECT_GT(r.report.pages_swapped_in, 0u);
  }
  EXPECT_EQ(cg->OomKills(), 0u);
  std::cout << "limit " << (limit >> 20) << " MiB: " << r.report.objects << " objects, "
            << r.report.uses << " random uses, " << r.report.episodes << " episodes, "
            << r.report.pages_evicted << " pages evicted, " << r.report.pages_swapped_in
            << " swapped in, peak usage " << (r.report.peak_usage >> 20) << " MiB (max_usage "
            << (cg->Value("memory.max_usage_in_bytes") >> 20) << " MiB), "
            << (r.report.locked_bytes >> 20) << " MiB locked\n";
}

TEST(GemCgroupTest, LazyReleaseByTheKernelsOwnReclaimKeepsTheChildAlive) {
  RunSurvivor(Mode::kLazy);
}

TEST(GemCgroupTest, WriteBackEvictionKeepsTheChildAlive) { RunSurvivor(Mode::kWriteback); }

void ExpectOomKill(Child child) {
  if (std::string why = CannotRun(); !why.empty()) GTEST_SKIP() << why;
  std::string why;
  auto cg = testing::MakeTestCgroupOrSkip(ProofLimitBytes(), &why);
  if (cg == nullptr) GTEST_SKIP() << why;
  RunResult r = testing::RunInCgroup<ChildReport>(
      cg.get(), std::chrono::seconds(120), [&](int fd) { child(Mode::kOff, cg->dir(), fd); });
  const bool killed = WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL;
  EXPECT_TRUE(killed || cg->OomKills() > 0) << "status " << r.status;
  EXPECT_FALSE(r.have_report) << "the child must not have finished";
  EXPECT_GE(cg->OomKills(), 1u);
}

TEST(GemCgroupTest, WithoutTheShrinkerTheChildIsOomKilled) { ExpectOomKill(ChildMain); }

TEST(ShmemTtCgroupTest, FileBackedVectorsKeepTheChildAlive) {
  RunSurvivor(Mode::kWriteback, VectorChildMain);
}

TEST(ShmemTtCgroupTest, WithoutTheirShrinkerTheChildIsOomKilled) { ExpectOomKill(VectorChildMain); }

}  // namespace
}  // namespace uttm
