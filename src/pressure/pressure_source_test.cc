// Copyright (c) uttm developers.
//
// Pressure sources on the real machine: /proc/meminfo, cgroup discovery, PSI triggers.

#include "uttm/pressure_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "pressure/file_util.h"
#include "uttm/psi_trigger.h"

namespace uttm {
namespace {

TEST(MemInfoTest, ParsesTheRealProcMeminfo) {
  Result<MemInfo> m = ReadMemInfo();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_GT(m->mem_total, 64u << 20);
  EXPECT_GT(m->mem_available, 0u);
  EXPECT_LE(m->mem_available, m->mem_total);
  EXPECT_LE(m->mem_free, m->mem_total);
  EXPECT_LE(m->swap_free, m->swap_total);
  // Cross-check against sysconf: MemTotal is the physical page count (within a few %).
  const double phys = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  EXPECT_NEAR(static_cast<double>(m->mem_total), phys, phys * 0.05);
}

TEST(MemInfoTest, ParsesSyntheticTextAndNamesMissingFields) {
  Result<MemInfo> m = ParseMemInfo(
      "MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    300 kB\n"
      "SwapTotal:        50 kB\nSwapFree:         40 kB\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->mem_total, 1000u * 1024);
  EXPECT_EQ(m->mem_available, 300u * 1024);
  EXPECT_EQ(m->swap_free, 40u * 1024);
  Result<MemInfo> bad = ParseMemInfo("MemTotal: 10 kB\nMemFree: 5 kB\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), Errc::kInvalid);
  EXPECT_NE(bad.status().message().find("MemAvailable"), std::string_view::npos);
  EXPECT_EQ(ReadMemInfo("/nonexistent/meminfo").code(), Errc::kIo);
}

TEST(SystemMemorySourceTest, SampleMatchesMeminfo) {
  SystemMemorySource s(/*psi=*/false);
  Result<MemorySample> sample = s.Sample();
  ASSERT_TRUE(sample.ok());
  EXPECT_TRUE(sample->has_limit);
  EXPECT_LT(sample->usage_bytes, sample->limit_bytes);
  Result<MemInfo> m = ReadMemInfo();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(sample->limit_bytes, m->mem_total);
}

TEST(BudgetSourceTest, ReportsCallbackAgainstBudget) {
  std::atomic<std::uint64_t> used{100};
  BudgetSource s(
      "budget", [&] { return used.load(); }, 1000);
  Result<MemorySample> a = s.Sample();
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->usage_bytes, 100u);
  EXPECT_EQ(a->limit_bytes, 1000u);
  used = 900;
  s.set_budget(2000);
  EXPECT_EQ(s.Sample()->usage_bytes, 900u);
  EXPECT_EQ(s.Sample()->limit_bytes, 2000u);
  EXPECT_NE(s.Describe().find("budget"), std::string::npos);
}

TEST(CgroupTest, DetectsOurMemoryCgroupV1) {
  Result<CgroupLocation> loc = FindMemoryCgroupV1();
  if (!loc.ok()) GTEST_SKIP() << "no cgroup v1 memory controller: " << loc.status().ToString();
  EXPECT_EQ(loc->version, 1);
  EXPECT_EQ(access((loc->dir() + "/memory.usage_in_bytes").c_str(), R_OK), 0) << loc->dir();
  Result<std::unique_ptr<CgroupV1Source>> src = CgroupV1Source::Detect();
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  Result<MemorySample> s = (*src)->Sample();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GT(s->usage_bytes, 0u);
  std::printf("cgroup v1: %s\n", (*src)->Describe().c_str());
  if (getuid() == 0) {
    EXPECT_TRUE((*src)->events_armed()) << (*src)->Describe();
  }
}

// Our own v2 cgroup, sampled: only where the machine has a v2 memory controller.
TEST(CgroupTest, CgroupV2SourceSamplesOurGroup) {
  Result<std::unique_ptr<CgroupV2Source>> v2 = CgroupV2Source::Detect();
  if (!v2.ok()) GTEST_SKIP() << "no usable cgroup v2 memory controller: " << v2.status().ToString();
  Result<MemorySample> s = (*v2)->Sample();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GT(s->usage_bytes, 0u);
  std::printf("cgroup v2: %s\n", (*v2)->Describe().c_str());
}

// Where v2 has no memory controller (a hybrid hierarchy, as on this machine) the reason is given,
// and detection falls back to the other sources with meminfo last.
TEST(CgroupTest, AnUnusableCgroupV2IsExplained) {
  Result<std::unique_ptr<CgroupV2Source>> v2 = CgroupV2Source::Detect();
  if (v2.ok()) GTEST_SKIP() << "this machine has a usable cgroup v2 memory controller";
  EXPECT_TRUE(v2.code() == Errc::kNotSupported || v2.code() == Errc::kNotFound)
      << v2.status().ToString();
  EXPECT_NE(v2.status().message().find("memory"), std::string_view::npos) << v2.status().ToString();
  std::vector<std::string> notes;
  auto sources = DetectPressureSources(&notes);
  ASSERT_FALSE(sources.empty());
  EXPECT_STREQ(sources.back()->name(), "meminfo");
  for (const auto& n : notes) std::printf("  %s\n", n.c_str());
}

// The v2 arithmetic on files in the kernel's format (any machine): usage is memory.current less
// inactive_file, the limit the smaller of memory.high and memory.max ("max" = none).
TEST(CgroupTest, CgroupV2SampleIsTheWorkingSetAgainstTheLowerLimit) {
  char tmpl[] = "/tmp/uttm-cgroup-v2-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto put = [&](const char* name, const char* text) {
    std::ofstream out(dir + "/" + name, std::ios::trunc);
    out << text;
    ASSERT_TRUE(out.good()) << name;
  };
  put("memory.current", "10485760\n");
  put("memory.stat", "anon 6291456\nfile 4194304\nactive_file 1048576\ninactive_file 3145728\n");
  put("memory.high", "max\n");
  put("memory.max", "16777216\n");
  put("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
  CgroupLocation loc{.version = 2, .mount = dir, .relative = "/"};
  Result<std::unique_ptr<CgroupV2Source>> src = CgroupV2Source::Open(loc);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  Result<MemorySample> s = (*src)->Sample();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->usage_bytes, 10485760u - 3145728u);
  EXPECT_TRUE(s->has_limit);
  EXPECT_EQ(s->limit_bytes, 16777216u);
  put("memory.high", "12582912\n");
  s = (*src)->Sample();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->limit_bytes, 12582912u);
  src->reset();
  for (const char* f :
       {"memory.current", "memory.stat", "memory.high", "memory.max", "memory.events"}) {
    unlink((dir + "/" + f).c_str());
  }
  rmdir(dir.c_str());
}

// Whether this process has CAP_SYS_RESOURCE (bit 24 of CapEff): the kernel then accepts PSI
// windows below 2 s from it.
bool HasCapSysResource() {
  Result<std::string> status = internal::ReadFileToString("/proc/self/status");
  if (!status.ok()) return false;
  const std::size_t at = status->find("CapEff:");
  if (at == std::string::npos) return false;
  const unsigned long long caps = std::strtoull(status->c_str() + at + 7, nullptr, 16);
  return (caps >> 24) & 1;
}

// Where the PSI file is writable the default trigger is armed (and an idle machine does not fire
// it); where it is not, the fallback is recorded with its reason.
TEST(PsiTriggerTest, TheDefaultTriggerIsArmedWherePsiIsWritable) {
  PsiTriggerOptions o;  // some 150000 2000000
  Result<PsiTrigger> t = PsiTrigger::Open(PsiTrigger::DefaultPaths(), o);
  ASSERT_TRUE(t.ok());
  if (access("/proc/pressure/memory", W_OK) == 0) {
    ASSERT_TRUE(t->armed()) << t->fallback_reason();
    EXPECT_EQ(t->trigger(), "some 150000 2000000");
    EXPECT_GE(t->fd(), 0);
    EXPECT_FALSE(t->Consume()) << "an idle machine should not be stalling on memory";
    std::printf("PSI armed on %s\n", t->path().c_str());
  } else {
    EXPECT_FALSE(t->armed());
    EXPECT_FALSE(t->fallback_reason().empty());
    std::printf("PSI fallback: %s\n", t->fallback_reason().c_str());
  }
}

TEST(PsiTriggerTest, OneSecondWindowIsRoundedUpWithReasonWhenUnprivileged) {
  if (access("/proc/pressure/memory", W_OK) != 0) GTEST_SKIP() << "no writable PSI file";
  PsiTriggerOptions o;
  o.window_us = 1000000;
  Result<PsiTrigger> t = PsiTrigger::Open({"/proc/pressure/memory"}, o);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t->armed()) << t->fallback_reason();
  if (HasCapSysResource()) {
    EXPECT_EQ(t->trigger(), "some 150000 1000000");  // privileged: 1 s accepted
  } else {
    EXPECT_EQ(t->trigger(), "some 150000 2000000");
    EXPECT_NE(t->fallback_reason().find("2 s"), std::string::npos) << t->fallback_reason();
  }
}

TEST(PsiTriggerTest, RejectsBadOptionsAndRecordsMissingFiles) {
  PsiTriggerOptions bad;
  bad.stall_us = 3000000;  // > window
  EXPECT_EQ(PsiTrigger::Open({"/proc/pressure/memory"}, bad).code(), Errc::kInvalid);
  bad.stall_us = 0;
  EXPECT_EQ(PsiTrigger::Open({"/proc/pressure/memory"}, bad).code(), Errc::kInvalid);
  Result<PsiTrigger> none = PsiTrigger::Open({"/nonexistent/memory.pressure"}, {});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->armed());
  EXPECT_NE(none->fallback_reason().find("/nonexistent/memory.pressure"), std::string::npos);
  EXPECT_NE(none->fallback_reason().find("periodic"), std::string::npos);
}

TEST(FileUtilTest, ReadsNumbersAndMax) {
  char path[] = "/tmp/uttm-fileutil-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "max\n", 4), 4);
  close(fd);
  EXPECT_EQ(*internal::ReadU64File(path), UINT64_MAX);
  ASSERT_TRUE(internal::WriteFileOnce(path, "12345\n").ok());
  EXPECT_EQ(*internal::ReadU64File(path), 12345u);
  ASSERT_TRUE(internal::WriteFileOnce(path, "abc").ok());
  EXPECT_EQ(internal::ReadU64File(path).code(), Errc::kIo);
  unlink(path);
  std::uint64_t v = 0;
  EXPECT_TRUE(internal::FindKeyValue("low 1\nhigh 22\nmax 3\n", "high", &v));
  EXPECT_EQ(v, 22u);
  EXPECT_FALSE(internal::FindKeyValue("low 1\n", "oom", &v));
}

}  // namespace
}  // namespace uttm
