// Copyright (c) uttm developers.
//
// The cgroup proof of the driver shrinker: a forked child in its own cgroup v1 memory group
// (limit kLimit, 256 MiB in CI; the 1 GiB / 3 GiB run is the same test with
// UTTM_SHRINK_CGROUP_LIMIT_MIB=1024) creates 3x the limit of buffer objects with known content
// (TestDevice, an O_DIRECT FileStore in $TMPDIR so the page cache does not count against the
// group, the driver shrinker and the pool shrinker driven by a ReclaimThread whose watermarks
// come from the CgroupV1Source), uses them in random order and verifies every byte: it must
// finish without an OOM kill. The same run with reclaim off is OOM-killed. A third run has no
// reclaim thread and no throttling by the test at all: the memory context's headroom check
// (PressureHeadroom over the cgroup) reclaims directly in the allocation path, and that alone
// keeps the child alive.
// Skipped, with the reason printed, when not root or without a v1 memory controller. The test
// creates and removes its own cgroup and touches no other.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "pressure/test_cgroup.h"
#include "testing/test_device.h"
#include "tt/test_util.h"
#include "uttm/bo_shrinker.h"
#include "uttm/buffer_object.h"
#include "uttm/file_store.h"
#include "uttm/pressure_headroom.h"
#include "uttm/pressure_source.h"
#include "uttm/reclaim_thread.h"
#include "uttm/reclaimer.h"

namespace uttm {
namespace {

using testing::PlacementOf;
using testing::TestCgroup;
using testing::TestDevice;

constexpr std::uint64_t kBoBytes = 16ull << 20;

using testing::ProofLimitBytes;
using testing::ProofWord;

void Fill(std::vector<std::uint64_t>& buf, std::uint32_t bo) {
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = ProofWord(bo, i);
}

bool Check(const std::vector<std::uint64_t>& buf, std::uint32_t bo) {
  for (std::size_t i = 0; i < buf.size(); ++i) {
    if (buf[i] != ProofWord(bo, i)) return false;
  }
  return true;
}

struct ChildReport {
  int stage = 0;
  std::uint64_t objects = 0;
  std::uint64_t uses = 0;
  std::uint64_t bytes_verified = 0;
  std::uint64_t episodes = 0;
  std::uint64_t freed_pages = 0;
  std::uint64_t peak_usage = 0;
  std::uint64_t headroom_reclaims = 0;
};

// kThread: the reclaim thread, with the test throttling its allocations; kHeadroom: no thread, no
// throttling, the allocation path's headroom check; kOff: no reclaim.
enum class Mode { kThread, kHeadroom, kOff };

[[noreturn]] void ChildMain(Mode mode, const std::string& expected_dir, int report_fd) {
  ChildReport rep;
  auto finish = [&](int stage) { testing::FinishChild(report_fd, rep, stage); };
  const std::uint64_t limit = ProofLimitBytes();
  Result<std::unique_ptr<CgroupV1Source>> src = testing::DetectProofGroup(expected_dir);
  if (!src.ok()) finish(1);
  CgroupV1Source* monitor = src->get();

  Stats stats;
  MemoryContextOptions mo;
  mo.stats = &stats;
  MemoryContext memory(mo);
  std::unique_ptr<PressureHeadroom> headroom;
  if (mode == Mode::kHeadroom) {
    Result<std::unique_ptr<PressureHeadroom>> h = PressureHeadroom::DetectCgroup();
    if (!h.ok()) finish(13);
    headroom = std::move(h).value();
    memory.set_headroom(headroom.get());
  }
  FileStoreOptions fo;
  fo.o_direct = true;
  Result<std::unique_ptr<BackupStore>> store = NewFileStore(fo);
  if (!store.ok()) {
    fo.o_direct = false;  // a file system without O_DIRECT: the page cache is reclaimable too
    store = NewFileStore(fo);
  }
  if (!store.ok()) finish(2);
  std::unique_ptr<BoShrinker> shrinker;
  auto dev = std::make_unique<TestDevice>(PageCount(256), Bytes(16 * limit), &memory, store->get(),
                                          [&](DeviceFuncs* driver) {
                                            shrinker = std::make_unique<BoShrinker>(driver);
                                            return shrinker->funcs();
                                          });
  if (!shrinker->Attach(dev->get()).ok()) finish(3);
  Reclaimer reclaimer(&stats);
  ReclaimThread thread(&reclaimer, testing::ProofReclaimOptions());
  if (!thread.AddSource(std::move(*src)).ok()) finish(4);
  if (mode != Mode::kOff) {
    if (!RegisterDeviceReclaim(&reclaimer, shrinker.get(), &memory).ok()) finish(5);
  }
  if (mode == Mode::kThread && !thread.Start().ok()) finish(6);
  // Allocation throttling (the kernel's reclaim throttle): above 70 % of the limit, give the
  // reclaim thread up to 200 ms to catch up before allocating more.
  auto throttle = [&] {
    testing::ThrottleChild(*monitor, limit, kBoBytes, mode == Mode::kThread, &rep.peak_usage);
  };

  const std::uint32_t n = static_cast<std::uint32_t>(3 * limit / kBoBytes);
  std::vector<std::uint64_t> buf(kBoBytes / 8);
  std::vector<BoRef> bos;
  OperationContext ctx;
  for (std::uint32_t i = 0; i < n; ++i) {
    throttle();
    BoOptions opts;
    opts.size = Bytes(kBoBytes);
    Result<BoRef> bo = BufferObject::Create(dev->get(), opts, PlacementOf(kMemTt), ctx);
    if (!bo.ok()) finish(7);
    Fill(buf, i);
    if (!(*bo)->Write(0, std::as_bytes(std::span(buf)), ctx).ok()) finish(8);
    bos.push_back(*bo);
    ++rep.objects;
  }
  std::uint64_t rng = 42;
  for (std::uint32_t k = 0; k < n; ++k) {
    throttle();
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    const std::uint32_t i = static_cast<std::uint32_t>((rng >> 33) % n);
    if (!bos[i]->Read(0, std::as_writable_bytes(std::span(buf)), ctx).ok()) finish(9);
    if (!Check(buf, i)) finish(10);
    rep.bytes_verified += kBoBytes;
    ++rep.uses;
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    throttle();
    if (!bos[i]->Read(0, std::as_writable_bytes(std::span(buf)), ctx).ok()) finish(11);
    if (!Check(buf, i)) finish(12);
    rep.bytes_verified += kBoBytes;
  }
  thread.Stop();
  rep.episodes = thread.episodes();
  for (const ShrinkerSnapshot& s : reclaimer.Snapshot()) rep.freed_pages += s.freed;
  rep.headroom_reclaims = stats.Get(Stat::kHeadroomReclaims);
  bos.clear();
  if (mode != Mode::kOff) UnregisterDeviceReclaim(&reclaimer, shrinker.get(), &memory);
  memory.set_headroom(nullptr);
  dev.reset();
  finish(0);
  _exit(0);  // finish() never returns
}

using RunResult = testing::CgroupChildRun<ChildReport>;

RunResult RunChild(TestCgroup* cg, Mode mode) {
  RunResult r = testing::RunInCgroup<ChildReport>(cg, std::chrono::seconds(60),
                                                  [&](int fd) { ChildMain(mode, cg->dir(), fd); });
  EXPECT_TRUE(r.problem.empty()) << r.problem;
  return r;
}

// Runs `mode` in a fresh cgroup and checks what both surviving modes promise: every object made
// and every byte verified, no OOM kill. Returns why it cannot run here (empty when it ran).
std::string RunSurvivor(Mode mode, RunResult* out, std::unique_ptr<TestCgroup>* cg_out) {
  if (testing_util::UnderSanitizer()) {
    return "sanitizer runtimes keep freed memory (quarantine, shadow) that no shrinker can give "
           "back; this proof runs in the release build";
  }
  std::string why;
  const std::uint64_t limit = ProofLimitBytes();
  auto cg = testing::MakeTestCgroupOrSkip(limit, &why);
  if (cg == nullptr) return why;
  RunResult r = RunChild(cg.get(), mode);
  EXPECT_TRUE(r.have_report) << "status " << r.status << " oom_kill " << cg->OomKills();
  EXPECT_EQ(r.report.stage, 0);
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.status;
  EXPECT_EQ(r.report.objects, 3 * limit / kBoBytes);
  EXPECT_EQ(r.report.bytes_verified, (r.report.objects + r.report.uses) * kBoBytes);
  EXPECT_GT(r.report.freed_pages, 0u);
  EXPECT_EQ(cg->OomKills(), 0u);
  *out = r;
  *cg_out = std::move(cg);
  return "";
}

TEST(BoCgroupTest, DriverShrinkerKeepsChildAliveWithThreeTimesTheLimitOfObjects) {
  RunResult r;
  std::unique_ptr<TestCgroup> cg;
  if (std::string why = RunSurvivor(Mode::kThread, &r, &cg); !why.empty()) GTEST_SKIP() << why;
  const std::uint64_t limit = ProofLimitBytes();
  EXPECT_GT(r.report.episodes, 0u);
  std::printf(
      "limit %llu MiB: %llu objects, %llu random uses, %llu episodes, %llu pages freed, "
      "peak usage %llu MiB (max_usage %llu MiB)\n",
      static_cast<unsigned long long>(limit >> 20),
      static_cast<unsigned long long>(r.report.objects),
      static_cast<unsigned long long>(r.report.uses),
      static_cast<unsigned long long>(r.report.episodes),
      static_cast<unsigned long long>(r.report.freed_pages),
      static_cast<unsigned long long>(r.report.peak_usage >> 20),
      static_cast<unsigned long long>(cg->Value("memory.max_usage_in_bytes") >> 20));
}

TEST(BoCgroupTest, WithoutReclaimTheChildIsOomKilled) {
  std::string why;
  auto cg = testing::MakeTestCgroupOrSkip(ProofLimitBytes(), &why);
  if (cg == nullptr) GTEST_SKIP() << why;
  RunResult r = RunChild(cg.get(), Mode::kOff);
  const bool killed = WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL;
  EXPECT_TRUE(killed || cg->OomKills() > 0) << "status " << r.status;
  EXPECT_FALSE(r.have_report) << "the child must not have finished";
  EXPECT_GE(cg->OomKills(), 1u);
}

TEST(BoCgroupTest, TheAllocationPathsHeadroomCheckAloneKeepsTheChildAlive) {
  RunResult r;
  std::unique_ptr<TestCgroup> cg;
  if (std::string why = RunSurvivor(Mode::kHeadroom, &r, &cg); !why.empty()) GTEST_SKIP() << why;
  const std::uint64_t limit = ProofLimitBytes();
  EXPECT_EQ(r.report.episodes, 0u);  // no reclaim thread ran
  EXPECT_GT(r.report.headroom_reclaims, 0u);
  std::printf(
      "limit %llu MiB: %llu headroom reclaims, %llu pages freed, peak usage %llu MiB "
      "(max_usage %llu MiB)\n",
      static_cast<unsigned long long>(limit >> 20),
      static_cast<unsigned long long>(r.report.headroom_reclaims),
      static_cast<unsigned long long>(r.report.freed_pages),
      static_cast<unsigned long long>(r.report.peak_usage >> 20),
      static_cast<unsigned long long>(cg->Value("memory.max_usage_in_bytes") >> 20));
}

}  // namespace
}  // namespace uttm
