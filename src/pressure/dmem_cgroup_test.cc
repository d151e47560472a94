// Copyright (c) uttm developers.
//
// Default budgets from dmem cgroup files: files written in the kernel's format (as
// kernel/cgroup/dmem.c prints them: "<region> <bytes>" or "<region> max"), a process's cgroup v2
// directory found (FindCgroupV2) from /proc-style files (a plain mount, a container's subtree
// mount, v1 only),
// malformed lines named by file and line, and the limits applied to a tree's regions.
#include "uttm/dmem_cgroup.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "uttm/pressure_source.h"

namespace uttm {
namespace {

constexpr std::uint64_t kM = 1ull << 20;

class DmemCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/uttm-dmem-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(dir_ + "/" + name).parent_path());
    std::ofstream(dir_ + "/" + name) << text;
  }
  std::string dir_;
};

TEST_F(DmemCgroupTest, ReadsEachFileIntoOneEntryPerRegion) {
  Write("dmem.min", "drm/0000:03:00.0/vram0 0\ndrm/sim0/vram 8388608\n");
  Write("dmem.low", "drm/0000:03:00.0/vram0 268435456\ndrm/sim0/vram 16M\n");
  Write("dmem.max", "drm/0000:03:00.0/vram0 max\ndrm/sim0/vram 64m\n");
  Result<std::vector<DmemRegionLimits>> r = ReadDmemLimits(dir_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  const DmemRegionLimits& pci = (*r)[0];
  EXPECT_EQ(pci.region, "drm/0000:03:00.0/vram0");
  EXPECT_EQ(pci.min, 0u);
  EXPECT_EQ(pci.low, 256 * kM);
  EXPECT_EQ(pci.max, kBudgetUnlimited);
  EXPECT_FALSE(pci.high.has_value());  // no dmem.high file
  const DmemRegionLimits& sim = (*r)[1];
  EXPECT_EQ(sim.region, "drm/sim0/vram");
  EXPECT_EQ(sim.min, 8 * kM);
  EXPECT_EQ(sim.low, 16 * kM);
  EXPECT_EQ(sim.max, 64 * kM);
}

TEST_F(DmemCgroupTest, ADirectoryWithoutDmemFilesSaysWhy) {
  Write("memory.max", "max\n");
  Result<std::vector<DmemRegionLimits>> r = ReadDmemLimits(dir_);
  EXPECT_EQ(r.code(), Errc::kNotFound);
  EXPECT_NE(r.status().message().find("dmem controller is not enabled"), std::string::npos)
      << r.status().ToString();
}

TEST_F(DmemCgroupTest, AMalformedLineIsNamedByFileAndLine) {
  for (const char* bad :
       {"drm/sim0/vram\n", "drm/sim0/vram lots\n", "drm/sim0/vram 12Q\n",
        "drm/sim0/vram 99999999999999999999\n", "drm/sim0/vram 17179869184E\n", " 5\n"}) {
    Write("dmem.max", std::string("drm/sim0/tt 4096\n") + bad);
    Result<std::vector<DmemRegionLimits>> r = ReadDmemLimits(dir_);
    EXPECT_EQ(r.code(), Errc::kInvalid) << bad;
    EXPECT_NE(r.status().message().find("dmem.max line 2"), std::string::npos)
        << r.status().ToString();
  }
}

TEST_F(DmemCgroupTest, FindsTheProcessCgroupUnderTheCgroup2Mount) {
  Write("proc/cgroup", "4:memory:/a\n0::/user.slice/app.scope\n");
  Write("proc/mountinfo",
        "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
        "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n");
  Result<CgroupLocation> d = FindCgroupV2(dir_ + "/proc");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->dir(), "/sys/fs/cgroup/unified/user.slice/app.scope");

  // A container sees its own subtree mounted: the mount's root is cut from the path.
  Write("proc/cgroup", "0::/kubepods/pod1/c2\n");
  Write("proc/mountinfo", "50 40 0:37 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  d = FindCgroupV2(dir_ + "/proc");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->dir(), "/sys/fs/cgroup/c2");

  // The root group itself.
  Write("proc/cgroup", "0::/\n");
  Write("proc/mountinfo", "40 30 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  d = FindCgroupV2(dir_ + "/proc");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->dir(), "/sys/fs/cgroup");
}

TEST_F(DmemCgroupTest, AV1OnlySystemHasNoCgroupDir) {
  Write("proc/cgroup", "4:memory:/a\n1:cpu:/\n");
  Write("proc/mountinfo", "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
  Result<CgroupLocation> d = FindCgroupV2(dir_ + "/proc");
  EXPECT_EQ(d.code(), Errc::kNotFound);
  EXPECT_NE(d.status().message().find("no cgroup v2 entry (0::)"), std::string::npos)
      << d.status().ToString();
  Write("proc/cgroup", "0::/x\n");
  d = FindCgroupV2(dir_ + "/proc");
  EXPECT_EQ(d.code(), Errc::kNotFound);
  EXPECT_NE(d.status().message().find("cgroup2 is not mounted"), std::string::npos)
      << d.status().ToString();
}

TEST_F(DmemCgroupTest, TheRealProcessCgroupIsFoundOrTheReasonGiven) {
  // This process's own files: the directory found must exist, and reading its dmem files either
  // gives limits or says the controller is not there; nothing else.
  Result<CgroupLocation> d = FindCgroupV2();
  if (!d.ok()) {
    ASSERT_EQ(d.code(), Errc::kNotFound) << d.status().ToString();
    GTEST_SKIP() << "no cgroup v2 here: " << d.status().message();
  }
  EXPECT_TRUE(std::filesystem::is_directory(d->dir())) << d->dir();
  Result<std::vector<DmemRegionLimits>> r = ReadDmemLimits(d->dir());
  if (!r.ok()) {
    EXPECT_EQ(r.code(), Errc::kNotFound) << r.status().ToString();
    EXPECT_FALSE(std::filesystem::exists(d->dir() + "/dmem.max"));
  }
}

TEST_F(DmemCgroupTest, LimitsApplyToTheTreesRegionsAndUnknownOnesAreListed) {
  BudgetTree tree;
  Result<int> vram = tree.AddRegion("drm/sim0/vram");
  Result<int> tt = tree.AddRegion("drm/sim0/tt");
  ASSERT_TRUE(vram.ok() && tt.ok());
  Result<BudgetGroup*> g = tree.AddGroup(nullptr, "process");
  ASSERT_TRUE(g.ok());
  Write("dmem.low", "drm/sim0/vram 16777216\n");
  Write("dmem.high", "drm/sim0/vram 48M\n");
  Write("dmem.max", "drm/sim0/vram 64M\ndrm/sim0/tt max\ndrm/0000:03:00.0/vram0 1G\n");
  Result<std::vector<DmemRegionLimits>> limits = ReadDmemLimits(dir_);
  ASSERT_TRUE(limits.ok()) << limits.status().ToString();
  Result<std::vector<std::string>> unknown = ApplyDmemLimits(tree, *g, *limits);
  ASSERT_TRUE(unknown.ok()) << unknown.status().ToString();
  EXPECT_EQ(*unknown, std::vector<std::string>{"drm/0000:03:00.0/vram0"});
  const BudgetCounters c = (*g)->Read(*vram);
  EXPECT_EQ(c.min, 0u);
  EXPECT_EQ(c.low, 16 * kM);
  EXPECT_EQ(c.high, 48 * kM);
  EXPECT_EQ(c.max, 64 * kM);
  EXPECT_TRUE(tree.HasHighLimits(*vram));
  EXPECT_FALSE(tree.HasHighLimits(*tt));
  EXPECT_TRUE(tree.HasHighLimits());  // in some region
  EXPECT_EQ((*g)->Read(*tt).max, kBudgetUnlimited);
  // The max is enforced: 64 MiB fits, one page more does not.
  EXPECT_TRUE(tree.TryCharge(*g, *vram, 64 * kM).ok());
  EXPECT_EQ(tree.TryCharge(*g, *vram, 4096).code(), Errc::kNoSpace);
  tree.Uncharge(*g, *vram, 64 * kM);
  // The root takes no limits, as dmem's root.
  EXPECT_EQ(ApplyDmemLimits(tree, tree.root(), *limits).code(), Errc::kInvalid);
}

}  // namespace
}  // namespace uttm
