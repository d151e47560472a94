// Copyright (c) uttm developers.
//
// End-to-end reclaim under a real cgroup v1 memory limit. Each test creates its OWN child cgroup
// (unique name, below our current memory cgroup; removed at the end even on failure), moves a
// forked child into it with a 256 MiB limit, and lets the child allocate 3x the limit in 2 MiB
// chunks owned by a real shrinker:
//   - with a ReclaimThread sampling the cgroup the child finishes, never hitting the limit;
//   - with direct reclaim in the allocation path it finishes too;
//   - with reclaim off it is OOM-killed (SIGKILL, oom_kill counter), and the parent's
//     CgroupV1Source sees the pressure_level / OOM events.
// Skipped, with the reason printed, when not root or without a v1 memory controller.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "pressure/file_util.h"
#include "pressure/test_cgroup.h"
#include "shrink/test_shrinkers.h"
#include "uttm/pressure_source.h"
#include "uttm/reclaim_thread.h"
#include "uttm/reclaimer.h"

namespace uttm {
namespace {

using testing::ChunkShrinker;
using testing::TestCgroup;

constexpr std::uint64_t kLimit = 256ull << 20;

enum class Mode { kReclaimThread, kDirect, kOff };

struct ChildReport {
  int stage = 0;  // 0: finished; otherwise the step that failed
  std::uint64_t limit_seen = 0;
  std::uint64_t usage_seen = 0;
  std::uint64_t allocated = 0;
  std::uint64_t freed_pages = 0;
  std::uint64_t episodes = 0;
  std::uint64_t direct_calls = 0;
  std::uint64_t peak_usage = 0;
};

// Runs in the forked child, inside the test cgroup. Never returns.
[[noreturn]] void ChildMain(Mode mode, const std::string& expected_dir, int report_fd) {
  ChildReport rep;
  auto finish = [&](int stage) {
    rep.stage = stage;
    if (write(report_fd, &rep, sizeof(rep)) != sizeof(rep)) _exit(90);
    _exit(stage == 0 ? 0 : 10 + stage);
  };
  Result<std::unique_ptr<CgroupV1Source>> src = CgroupV1Source::Detect();
  if (!src.ok() || (*src)->dir() != expected_dir) finish(1);
  Result<MemorySample> s = (*src)->Sample();
  if (!s.ok()) finish(2);
  rep.limit_seen = s->limit_bytes;
  rep.usage_seen = s->usage_bytes;
  if (!s->has_limit || s->limit_bytes != kLimit) finish(3);
  CgroupV1Source* monitor = src->get();

  Reclaimer reclaimer;
  ChunkShrinker chunks("child-chunks");
  if (!reclaimer.Register(&chunks).ok()) finish(4);
  ReclaimThreadOptions o;
  o.period = std::chrono::milliseconds(2);
  o.high_watermark = 0.6;  // wide margin: see reclaim_thread_test.cc
  o.low_watermark = 0.4;
  ReclaimThread thread(&reclaimer, o);
  if (!thread.AddSource(std::move(*src)).ok()) finish(5);
  if (mode == Mode::kReclaimThread && !thread.Start().ok()) finish(6);

  for (std::uint64_t done = 0; done < 3 * kLimit; done += ChunkShrinker::kChunkBytes) {
    Result<MemorySample> now = monitor->Sample();
    if (now.ok()) {
      rep.peak_usage = std::max(rep.peak_usage, now->usage_bytes);
      // Direct reclaim: an allocation that would pass 90 % of the limit first frees down to
      // 80 % synchronously in this thread.
      if (mode == Mode::kDirect &&
          now->usage_bytes + ChunkShrinker::kChunkBytes > kLimit / 10 * 9) {
        const std::uint64_t need =
            (now->usage_bytes + ChunkShrinker::kChunkBytes - kLimit / 10 * 8) / kPageSize;
        reclaimer.ReclaimDirect(need);
        ++rep.direct_calls;
      }
    }
    if (!chunks.AddChunk()) finish(7);
    rep.allocated += ChunkShrinker::kChunkBytes;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  thread.Stop();
  rep.episodes = thread.episodes();
  rep.freed_pages = chunks.freed_total();
  (void)reclaimer.Unregister(&chunks);
  finish(0);
  _exit(0);  // finish() never returns
}

using RunResult = testing::CgroupChildRun<ChildReport>;

// Runs `mode` in a child inside `cg` (at most 30 s).
RunResult RunChild(TestCgroup* cg, Mode mode) {
  RunResult r = testing::RunInCgroup<ChildReport>(cg, std::chrono::seconds(30),
                                                  [&](int fd) { ChildMain(mode, cg->dir(), fd); });
  EXPECT_TRUE(r.problem.empty()) << r.problem;
  return r;
}

std::unique_ptr<TestCgroup> MakeCgroupOrSkip(std::string* why) {
  return testing::MakeTestCgroupOrSkip(kLimit, why);
}

// The cgroup source measures the working set: clean page cache written by a process of the group
// (a buffered backup file's, say) is charged to the group but is not pressure. A child in our
// group writes 96 MiB to a file and syncs it; the raw usage counts it, the sample does not.
TEST(CgroupReclaimTest, CleanFileCacheOfTheGroupIsNotCountedAsPressure) {
  std::string why;
  auto cg = MakeCgroupOrSkip(&why);
  if (cg == nullptr) GTEST_SKIP() << why;
  constexpr std::size_t kFile = 96u << 20;
  const std::string path = "uttm-cgroup-file-cache-" + std::to_string(getpid());
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // In the group before writing, so the page cache is charged to it.
    if (!cg->AddPid(getpid()).ok()) _exit(2);
    const int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) _exit(3);
    std::vector<char> chunk(1u << 20, 'x');
    for (std::size_t done = 0; done < kFile; done += chunk.size()) {
      if (write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) _exit(4);
    }
    if (fsync(fd) != 0) _exit(5);
    close(fd);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const std::uint64_t raw = cg->Value("memory.usage_in_bytes");
  Result<std::unique_ptr<CgroupV1Source>> src = CgroupV1Source::Open(cg->location());
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  Result<MemorySample> sample = (*src)->Sample();
  unlink(path.c_str());
  ASSERT_TRUE(sample.ok()) << sample.status().ToString();
  ASSERT_GE(raw, kFile / 2) << "the file's page cache was not charged to the group";
  EXPECT_LE(sample->usage_bytes + kFile / 2, raw)
      << "working set " << sample->usage_bytes << " of raw usage " << raw;
  std::printf("raw usage %.1f MiB, working set %.1f MiB\n", static_cast<double>(raw) / (1 << 20),
              static_cast<double>(sample->usage_bytes) / (1 << 20));
}

TEST(CgroupReclaimTest, ReclaimThreadKeepsChildUnderLimitWhileItAllocatesThreeTimesIt) {
  std::string why;
  auto cg = MakeCgroupOrSkip(&why);
  if (cg == nullptr) GTEST_SKIP() << why;
  RunResult r = RunChild(cg.get(), Mode::kReclaimThread);
  ASSERT_TRUE(r.have_report) << "child died without a report, status " << r.status;
  EXPECT_EQ(r.report.stage, 0);
  ASSERT_TRUE(WIFEXITED(r.status)) << "signal " << (WIFSIGNALED(r.status) ? WTERMSIG(r.status) : 0);
  EXPECT_EQ(WEXITSTATUS(r.status), 0);
  EXPECT_EQ(r.report.limit_seen, kLimit) << "the monitor inside the child sees the limit";
  EXPECT_GT(r.report.usage_seen, 0u);
  EXPECT_EQ(r.report.allocated, 3 * kLimit);
  EXPECT_GE(r.report.freed_pages * kPageSize, 2 * kLimit - (64ull << 20));
  EXPECT_GE(r.report.episodes, 1u);
  EXPECT_EQ(cg->OomKills(), 0u);
  EXPECT_LT(cg->Value("memory.max_usage_in_bytes"), kLimit) << "the limit was never reached";
  EXPECT_EQ(cg->Value("memory.failcnt"), 0u);
  std::printf("reclaim thread: peak usage %.1f MiB of %.0f MiB, %llu episodes, freed %.0f MiB\n",
              static_cast<double>(cg->Value("memory.max_usage_in_bytes")) / (1 << 20),
              static_cast<double>(kLimit) / (1 << 20),
              static_cast<unsigned long long>(r.report.episodes),
              static_cast<double>(r.report.freed_pages * kPageSize) / (1 << 20));
}

TEST(CgroupReclaimTest, DirectReclaimInTheAllocationPathKeepsChildUnderLimit) {
  std::string why;
  auto cg = MakeCgroupOrSkip(&why);
  if (cg == nullptr) GTEST_SKIP() << why;
  RunResult r = RunChild(cg.get(), Mode::kDirect);
  ASSERT_TRUE(r.have_report) << "child died without a report, status " << r.status;
  EXPECT_EQ(r.report.stage, 0);
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(r.report.allocated, 3 * kLimit);
  EXPECT_GT(r.report.direct_calls, 0u);
  EXPECT_EQ(r.report.episodes, 0u);
  EXPECT_EQ(cg->OomKills(), 0u);
  EXPECT_LT(cg->Value("memory.max_usage_in_bytes"), kLimit);
}

TEST(CgroupReclaimTest, WithoutReclaimTheChildIsOomKilledAndEventsFireAtTheLimit) {
  std::string why;
  auto cg = MakeCgroupOrSkip(&why);
  if (cg == nullptr) GTEST_SKIP() << why;
  // The parent watches the child's cgroup through its pressure_level and oom eventfds.
  Result<std::unique_ptr<CgroupV1Source>> watch = CgroupV1Source::Open(cg->location());
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  ASSERT_TRUE((*watch)->events_armed()) << (*watch)->Describe();
  RunResult r = RunChild(cg.get(), Mode::kOff);
  const bool killed = WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL;
  EXPECT_TRUE(killed || cg->OomKills() > 0) << "status " << r.status;
  EXPECT_FALSE(r.have_report) << "the child must not have finished";
  EXPECT_GE(cg->OomKills(), 1u);
  EXPECT_GE(cg->Value("memory.max_usage_in_bytes"), kLimit - (4ull << 20));
  std::vector<pollfd> fds;
  (*watch)->AppendPollFds(&fds);
  ASSERT_EQ(fds.size(), 4u);
  ASSERT_GT(poll(fds.data(), fds.size(), 1000), 0) << "no pressure event at all";
  PressureLevel level = (*watch)->ConsumeEvents(fds.data(), fds.size());
  EXPECT_GE(level, PressureLevel::kLow);
  std::printf("events at the limit: low %llu medium %llu critical %llu oom %llu\n",
              static_cast<unsigned long long>((*watch)->events_seen(PressureLevel::kLow)),
              static_cast<unsigned long long>((*watch)->events_seen(PressureLevel::kMedium)),
              static_cast<unsigned long long>((*watch)->events_seen(PressureLevel::kCritical)),
              static_cast<unsigned long long>((*watch)->oom_events()));
}

}  // namespace
}  // namespace uttm
