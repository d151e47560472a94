// Copyright (c) uttm developers.
//
// Host memory: the page provider takes its regions from a pluggable source and tells hooks about
// every region; NUMA-bound memory really lands on its node; bad nodes are clear errors.
#include "uttm/host_memory.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "uttm/page_provider.h"

namespace uttm {
namespace {

constexpr std::size_t kRegion = std::size_t{2} << 20;

struct RegionLog {
  std::map<std::byte*, std::size_t> created;
  std::map<std::byte*, std::size_t> released;
  HostMemoryHooks Hooks() {
    HostMemoryHooks h;
    h.region_created = [this](std::byte* base, std::size_t bytes) {
      created[base] = bytes;
      return Status();
    };
    h.region_released = [this](std::byte* base, std::size_t bytes) { released[base] = bytes; };
    return h;
  }
  bool Inside(const PageChunk& c) const {
    for (const auto& [base, bytes] : created) {
      if (c.addr >= base && c.addr + c.bytes() <= base + bytes) return true;
    }
    return false;
  }
};

TEST(HostMemoryTest, HooksSeeEveryRegionMappedAndUnmapped) {
  RegionLog log;
  std::vector<PageChunk> chunks;
  {
    PageProvider provider({.region_size = Bytes(kRegion), .hooks = log.Hooks()});
    for (int i = 0; i < 3; ++i) {  // one 2 MiB chunk fills a region: three regions
      Result<PageChunk> c = provider.Allocate(PageOrder(kMaxPageOrder));
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      std::memset(c->addr, 0x40 + i, c->bytes());
      chunks.push_back(*c);
    }
    Result<PageChunk> small = provider.Allocate(PageOrder(0));  // a fourth region
    ASSERT_TRUE(small.ok());
    chunks.push_back(*small);
    EXPECT_EQ(provider.regions(), 4u);
    ASSERT_EQ(log.created.size(), 4u);
    for (const PageChunk& c : chunks) EXPECT_TRUE(log.Inside(c)) << "a chunk outside every region";
    EXPECT_TRUE(log.released.empty());
    provider.Free(chunks);
  }
  EXPECT_EQ(log.released, log.created);
}

TEST(HostMemoryTest, ARefusingHookFailsTheAllocationAndLeavesNoRegion) {
  Stats stats;
  bool refuse = true;
  int released = 0;
  HostMemoryHooks hooks;
  hooks.region_created = [&](std::byte*, std::size_t) {
    return refuse ? Status(Errc::kIo, "cannot register the region for DMA") : Status();
  };
  hooks.region_released = [&](std::byte*, std::size_t) { ++released; };
  {
    PageProvider provider({.region_size = Bytes(kRegion), .hooks = hooks, .stats = &stats});
    Result<PageChunk> c = provider.Allocate(PageOrder(0));
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.code(), Errc::kNoMemory);
    EXPECT_NE(c.status().ToString().find("cannot register the region for DMA"), std::string::npos)
        << c.status().ToString();
    EXPECT_EQ(provider.regions(), 0u);
    EXPECT_EQ(stats.Get(Stat::kProviderAllocFailures), 1u);
    refuse = false;
    c = provider.Allocate(PageOrder(0));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(provider.regions(), 1u);
    provider.Free(*c);
  }
  EXPECT_EQ(released, 1);  // the refused region was unmapped without a release hook
}

// A source that counts what the provider asks of it and passes it on to anonymous memory.
class CountingHostMemory : public HostMemory {
 public:
  std::string name() const override { return "counting"; }
  Result<std::byte*> MapRegion(std::size_t bytes) override {
    ++maps;
    if (fail_maps) return Status(Errc::kNoMemory, "the backend is out of host memory");
    return inner_->MapRegion(bytes);
  }
  void UnmapRegion(std::byte* base, std::size_t bytes) override {
    ++unmaps;
    inner_->UnmapRegion(base, bytes);
  }
  void Discard(std::byte* addr, std::size_t bytes) override {
    discarded += bytes;
    inner_->Discard(addr, bytes);
  }
  int maps = 0;
  int unmaps = 0;
  std::size_t discarded = 0;
  bool fail_maps = false;

 private:
  std::shared_ptr<HostMemory> inner_ = MakeAnonymousHostMemory(false);
};

TEST(HostMemoryTest, APluggedSourceServesEveryRegionAndGetsFreedPagesBack) {
  auto source = std::make_shared<CountingHostMemory>();
  {
    PageProvider provider({.region_size = Bytes(kRegion), .host_memory = source});
    EXPECT_EQ(provider.host_memory().name(), "counting");
    Result<PageChunk> a = provider.Allocate(PageOrder(4));
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    std::memset(a->addr, 0x5c, a->bytes());
    std::byte* addr = a->addr;
    provider.Free(*a);
    EXPECT_EQ(source->discarded, a->bytes());
    // The same block comes back (lowest first) and reads as zeros: Discard really dropped it.
    Result<PageChunk> b = provider.Allocate(PageOrder(4));
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(b->addr, addr);
    for (std::size_t i = 0; i < b->bytes(); i += 256) ASSERT_EQ(b->addr[i], std::byte{0}) << i;
    provider.Free(*b);
    EXPECT_EQ(source->maps, 1);
  }
  EXPECT_EQ(source->unmaps, 1);

  source->fail_maps = true;
  PageProvider provider({.region_size = Bytes(kRegion), .host_memory = source});
  Result<PageChunk> c = provider.Allocate(PageOrder(0));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.code(), Errc::kNoMemory);
  EXPECT_NE(c.status().ToString().find("host memory 'counting'"), std::string::npos)
      << c.status().ToString();
}

TEST(HostMemoryTest, NumaMemoryLandsOnItsNode) {
  Result<std::shared_ptr<HostMemory>> numa = MakeNumaHostMemory(0);
  if (!numa.ok()) GTEST_SKIP() << "this kernel cannot bind memory: " << numa.status().ToString();
  EXPECT_EQ((*numa)->name(), "numa:0");
  PageProvider provider({.region_size = Bytes(kRegion), .host_memory = *numa});
  Result<PageChunk> c = provider.Allocate(PageOrder(2));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::memset(c->addr, 0x11, c->bytes());
  for (std::size_t page = 0; page < c->pages(); ++page) {
    int node = -1;
    // get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR): the node holding the page at the address.
    ASSERT_EQ(syscall(SYS_get_mempolicy, &node, nullptr, 0, c->addr + page * kPageSize, 3), 0)
        << std::strerror(errno);
    EXPECT_EQ(node, 0) << "page " << page;
  }
  int mode = -1;
  unsigned long mask[16] = {};
  ASSERT_EQ(syscall(SYS_get_mempolicy, &mode, mask, sizeof mask * 8, c->addr, 2), 0)  // F_ADDR
      << std::strerror(errno);
  EXPECT_EQ(mode, 2) << "MPOL_BIND expected";
  EXPECT_EQ(mask[0] & 1, 1u);
  provider.Free(*c);
}

TEST(HostMemoryTest, BadNumaNodesAreClearErrors) {
  for (int node : {-1, 4096, 1000}) {
    Result<std::shared_ptr<HostMemory>> numa = MakeNumaHostMemory(node);
    ASSERT_FALSE(numa.ok()) << node;
    EXPECT_EQ(numa.code(), Errc::kInvalid);
    EXPECT_NE(numa.status().ToString().find("NUMA node " + std::to_string(node)), std::string::npos)
        << numa.status().ToString();
  }
}

}  // namespace
}  // namespace uttm
