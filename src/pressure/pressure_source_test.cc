// Copyright (c) uttm developers.
//
// Pressure sources on the real machine: /proc/meminfo, cgroup discovery, PSI triggers.

#include "uttm/pressure_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

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

TEST(CgroupTest, CgroupV2IsDetectedOrExplained) {
  Result<std::unique_ptr<CgroupV2Source>> v2 = CgroupV2Source::Detect();
  if (v2.ok()) {
    Result<MemorySample> s = (*v2)->Sample();
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_GT(s->usage_bytes, 0u);
    std::printf("cgroup v2: %s\n", (*v2)->Describe().c_str());
  } else {
    // On a hybrid hierarchy (this machine) v2 has no memory controller: the reason names it.
    EXPECT_TRUE(v2.code() == Errc::kNotSupported || v2.code() == Errc::kNotFound);
    EXPECT_FALSE(v2.status().message().empty());
    std::printf("cgroup v2 not usable: %s\n", v2.status().ToString().c_str());
  }
  std::vector<std::string> notes;
  auto sources = DetectPressureSources(&notes);
  ASSERT_FALSE(sources.empty());
  EXPECT_STREQ(sources.back()->name(), "meminfo");
  for (const auto& n : notes) std::printf("  %s\n", n.c_str());
}

TEST(PsiTriggerTest, TwoSecondWindowWithNulIsArmedOrFallbackRecorded) {
  PsiTriggerOptions o;  // some 150000 2000000
  Result<PsiTrigger> t = PsiTrigger::Open(PsiTrigger::DefaultPaths(), o);
  ASSERT_TRUE(t.ok());
  if (t->armed()) {
    EXPECT_EQ(t->trigger(), "some 150000 2000000");
    EXPECT_GE(t->fd(), 0);
    EXPECT_FALSE(t->Consume()) << "an idle machine should not be stalling on memory";
    std::printf("PSI armed on %s\n", t->path().c_str());
  } else {
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
  if (t->trigger() == "some 150000 1000000") {
    SUCCEED() << "privileged (CAP_SYS_RESOURCE): 1 s accepted";
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
