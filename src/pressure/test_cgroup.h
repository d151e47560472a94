// Copyright (c) uttm developers.
//
// test_cgroup.h (internal, tests only): a cgroup v1 memory group of the test's own, created below
// the current memory cgroup with a unique name and a limit, and removed on destruction after
// killing and reaping anything still inside (only children the test forked can be there).
#ifndef UTTM_SRC_PRESSURE_TEST_CGROUP_H_
#define UTTM_SRC_PRESSURE_TEST_CGROUP_H_

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "pressure/file_util.h"
#include "uttm/pressure_source.h"
#include "uttm/reclaim_thread.h"
#include "uttm/status.h"

namespace uttm::testing {

// A memory cgroup of our own; removed (after killing anything left in it) on destruction.
// The limit of the cgroup proofs: 256 MiB, or UTTM_SHRINK_CGROUP_LIMIT_MIB (the 1 GiB /
// 3 GiB run is the same test with 1024).
inline std::uint64_t ProofLimitBytes() {
  const char* env = std::getenv("UTTM_SHRINK_CGROUP_LIMIT_MIB");
  const std::uint64_t mib = env != nullptr ? std::strtoull(env, nullptr, 10) : 0;
  return (mib != 0 ? mib : 256) << 20;
}

// Word `i` of object `obj` in the proofs' content (a splitmix of both: a misplaced word is seen).
inline std::uint64_t ProofWord(std::uint32_t obj, std::uint64_t i) {
  std::uint64_t z = (std::uint64_t{obj} << 40) + i + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Sends `report` (its `stage` set) to the parent through `fd` and exits: status 0 for stage 0,
// else 10 + stage (90 when the report cannot be written).
template <typename Report>
[[noreturn]] void FinishChild(int fd, Report& report, int stage) {
  report.stage = stage;
  if (write(fd, &report, sizeof(report)) != sizeof(report)) _exit(90);
  _exit(stage == 0 ? 0 : 10 + stage);
}

// The reclaim throttle of the proofs' children (the kernel's, played by the test): when `wait`,
// gives reclaim up to 200 ms to bring the group's usage plus `next` bytes below 70 % of `limit`.
// Records the peak usage seen in `*peak`.
inline void ThrottleChild(CgroupV1Source& monitor, std::uint64_t limit, std::uint64_t next,
                          bool wait, std::uint64_t* peak) {
  for (int i = 0; i < 200; ++i) {
    Result<MemorySample> now = monitor.Sample();
    if (!now.ok()) return;
    *peak = std::max(*peak, now->usage_bytes);
    if (!wait || now->usage_bytes + next < limit / 10 * 7) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The reclaim thread of the proofs' children: a 2 ms period, reclaim from 60 % of the limit down
// to 40 %.
inline ReclaimThreadOptions ProofReclaimOptions() {
  ReclaimThreadOptions o;
  o.period = std::chrono::milliseconds(2);
  o.high_watermark = 0.6;
  o.low_watermark = 0.4;
  return o;
}

// The cgroup v1 source of the calling process, which must be the proof's group `expected_dir`
// (kNotFound otherwise): what a child checks first.
inline Result<std::unique_ptr<CgroupV1Source>> DetectProofGroup(const std::string& expected_dir) {
  Result<std::unique_ptr<CgroupV1Source>> src = CgroupV1Source::Detect();
  if (!src.ok()) return src.status();
  if ((*src)->dir() != expected_dir) {
    return Status(Errc::kNotFound, "the child is in " + (*src)->dir() + ", not " + expected_dir);
  }
  return src;
}

class TestCgroup {
 public:
  static Result<std::unique_ptr<TestCgroup>> Create(std::uint64_t limit) {
    UTTM_ASSIGN_OR_RETURN(CgroupLocation parent, FindMemoryCgroupV1());
    static std::atomic<int> seq{0};
    auto cg = std::unique_ptr<TestCgroup>(new TestCgroup());
    cg->loc_ = parent;
    cg->loc_.relative = (parent.relative == "/" ? "" : parent.relative) + "/uttm-reclaim-test-" +
                        std::to_string(getpid()) + "-" + std::to_string(seq.fetch_add(1));
    cg->dir_ = cg->loc_.dir();
    if (mkdir(cg->dir_.c_str(), 0755) != 0) {
      return Status(ErrcFromErrno(errno), "mkdir " + cg->dir_ + ": " + std::strerror(errno));
    }
    cg->created_ = true;
    UTTM_RETURN_IF_ERROR(
        internal::WriteFileOnce(cg->dir_ + "/memory.limit_in_bytes", std::to_string(limit)));
    return cg;
  }

  ~TestCgroup() {
    if (!created_) return;
    // Anything still inside is a child we forked: kill and reap it, then remove the group.
    Result<std::string> procs = internal::ReadFileToString(dir_ + "/cgroup.procs");
    if (procs.ok()) {
      std::size_t pos = 0;
      while (pos < procs->size()) {
        const pid_t pid = static_cast<pid_t>(std::strtol(procs->c_str() + pos, nullptr, 10));
        if (pid > 0) {
          kill(pid, SIGKILL);
          waitpid(pid, nullptr, 0);
        }
        pos = procs->find('\n', pos);
        if (pos == std::string::npos) break;
        ++pos;
      }
    }
    for (int i = 0; i < 100 && rmdir(dir_.c_str()) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  const CgroupLocation& location() const { return loc_; }
  const std::string& dir() const { return dir_; }
  Status AddPid(pid_t pid) {
    return internal::WriteFileOnce(dir_ + "/cgroup.procs", std::to_string(pid));
  }
  std::uint64_t Value(const char* file) const {
    Result<std::uint64_t> v = internal::ReadU64File(dir_ + "/" + file);
    return v.ok() ? *v : 0;
  }
  std::uint64_t OomKills() const {
    Result<std::string> text = internal::ReadFileToString(dir_ + "/memory.oom_control");
    std::uint64_t n = 0;
    if (text.ok()) internal::FindKeyValue(*text, "oom_kill", &n);
    return n;
  }

 private:
  TestCgroup() = default;
  CgroupLocation loc_;
  std::string dir_;
  bool created_ = false;
};

// A TestCgroup with `limit`, or null with the reason in *why (not root, no v1 controller).
inline std::unique_ptr<TestCgroup> MakeTestCgroupOrSkip(std::uint64_t limit, std::string* why) {
  if (geteuid() != 0) {
    *why = "needs root to create a memory cgroup";
    return nullptr;
  }
  Result<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create(limit);
  if (!cg.ok()) {
    *why = "no usable cgroup v1 memory controller: " + cg.status().ToString();
    return nullptr;
  }
  return std::move(*cg);
}

// The outcome of RunInCgroup: the child's wait status and the report it wrote to its pipe.
template <typename Report>
struct CgroupChildRun {
  int status = 0;
  bool have_report = false;
  Report report{};
  // Set when the harness itself failed (pipe, fork, moving the child, timeout).
  std::string problem;
};

// Forks a child, moves it into `cg` before letting it start, and runs `child(report_fd)` there;
// `child` must end the process (it writes one Report to report_fd first). Waits at most
// `timeout`, then kills the child.
template <typename Report, typename Child>
CgroupChildRun<Report> RunInCgroup(TestCgroup* cg, std::chrono::seconds timeout, Child child) {
  CgroupChildRun<Report> out;
  int go[2], rep[2];
  if (pipe(go) != 0 || pipe(rep) != 0) {
    out.problem = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    close(go[1]);
    close(rep[0]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(91);
    child(rep[1]);
    _exit(92);  // `child` must not return
  }
  close(go[0]);
  close(rep[1]);
  if (pid < 0) {
    out.problem = std::string("fork: ") + std::strerror(errno);
    close(go[1]);
    close(rep[0]);
    return out;
  }
  Status moved = cg->AddPid(pid);
  if (!moved.ok()) out.problem = "moving the child into the cgroup: " + moved.ToString();
  if (write(go[1], "g", 1) != 1) out.problem = "cannot start the child";
  close(go[1]);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (waitpid(pid, &out.status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      out.problem = "child did not finish in " + std::to_string(timeout.count()) + " s";
      kill(pid, SIGKILL);
      waitpid(pid, &out.status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  out.have_report = read(rep[0], &out.report, sizeof(out.report)) == sizeof(out.report);
  close(rep[0]);
  return out;
}

}  // namespace uttm::testing

#endif  // UTTM_SRC_PRESSURE_TEST_CGROUP_H_
