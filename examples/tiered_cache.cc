// Copyright (c) uttm developers.
//
// A CPU-only tiered cache that holds four times its memory budget and survives it.
//
// 128 entries of 1 MiB go into a runtime with a 32 MiB page limit. Half are precious (they must
// come back exactly), half are discardable (marked "don't need": uttm may drop them instead of
// backing them up). The runtime's reclaim backs precious entries up to a private file in $TMPDIR
// and restores them on the next read; discardable ones are purged first. At the end every precious
// entry is read back and checked byte for byte, and each discardable one either comes back intact
// or is reported as purged (never as wrong data).
//
// Build against the installed package: see examples/CMakeLists.txt (find_package) or
//   g++ -std=c++20 tiered_cache.cc $(pkg-config --cflags --libs uttm)
#include <uttm/buffer_object.h>
#include <uttm/runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

// The driver of a device without device memory: everything lives in SYSTEM pages, so eviction
// has nowhere to move to (the shrinker backs pages up instead) and a move changes nothing.
class CpuDriver final : public uttm::DeviceFuncs {
 public:
  void EvictFlags(const uttm::BufferObject&, uttm::Placement* placement) override {
    *placement = uttm::Placement{uttm::Place{.mem_type = uttm::kMemSystem}};
  }
  uttm::Status Move(uttm::BufferObject& bo, bool, uttm::OperationContext&,
                    std::unique_ptr<uttm::Resource>& new_res, uttm::Place*) override {
    bo.resv()->AssertHeld();  // Move runs under the object's reservation
    bo.MoveNull(std::move(new_res));
    return uttm::Status::Ok();
  }
};

// Contents that differ per entry, page and byte, so a misplaced page is caught.
std::byte ByteOf(std::uint64_t entry, std::uint64_t offset) {
  std::uint64_t z = entry * 0x9E3779B97F4A7C15ull + offset / 8;
  z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
  return std::byte(static_cast<unsigned char>(z >> (8 * (offset % 8))));
}

}  // namespace

int main() {
  constexpr std::uint64_t kEntry = 1 << 20;
  constexpr int kEntries = 128;
  CpuDriver driver;  // declared first: it must outlive the runtime's device
  uttm::RuntimeOptions options;
  options.page_limit = uttm::Bytes(32 << 20);  // a quarter of what the cache holds
  auto rt = uttm::Runtime::Open(options);
  if (!rt.ok()) {
    std::fprintf(stderr, "open: %s\n", rt.status().ToString().c_str());
    return 1;
  }
  auto dev = (*rt)->AddDevice(&driver, {.name = "cache"});
  if (!dev.ok()) {
    std::fprintf(stderr, "device: %s\n", dev.status().ToString().c_str());
    return 1;
  }

  const uttm::Placement system{uttm::Place{.mem_type = uttm::kMemSystem}};
  std::vector<uttm::BoRef> entries;
  std::vector<std::byte> buf(kEntry);
  uttm::OperationContext ctx;
  for (int i = 0; i < kEntries; ++i) {
    auto bo = uttm::BufferObject::Create(*dev, {.size = uttm::Bytes(kEntry)}, system, ctx);
    if (!bo.ok()) {
      std::fprintf(stderr, "create %d: %s\n", i, bo.status().ToString().c_str());
      return 1;
    }
    for (std::uint64_t o = 0; o < kEntry; ++o) buf[o] = ByteOf(i, o);
    if (auto s = (*bo)->Write(0, buf, ctx); !s.ok()) {
      std::fprintf(stderr, "write %d: %s\n", i, s.ToString().c_str());
      return 1;
    }
    if (i % 2 == 1) (void)(*bo)->Madvise(uttm::Madvice::kDontNeed, ctx);  // discardable
    entries.push_back(*bo);
  }

  int precious_ok = 0, kept = 0, purged = 0;
  for (int i = 0; i < kEntries; ++i) {
    uttm::BufferObject& bo = *entries[i];
    if (i % 2 == 1) {
      auto retained = bo.Madvise(uttm::Madvice::kWillNeed, ctx);
      if (!retained.ok() || !*retained) {
        ++purged;  // dropped by contract: its contents read back as zeros
        continue;
      }
    }
    if (auto s = bo.Read(0, buf, ctx); !s.ok()) {
      std::fprintf(stderr, "read %d: %s\n", i, s.ToString().c_str());
      return 1;
    }
    for (std::uint64_t o = 0; o < kEntry; ++o) {
      if (buf[o] != ByteOf(i, o)) {
        std::fprintf(stderr, "entry %d: wrong byte at %llu\n", i,
                     static_cast<unsigned long long>(o));
        return 1;
      }
    }
    (i % 2 == 0 ? precious_ok : kept)++;
  }
  std::printf(
      "tiered_cache ok: %d of %d precious entries exact, %d discardable kept, %d purged; "
      "%llu pages backed up, %llu restored, %llu purged under a %d MiB limit\n",
      precious_ok, kEntries / 2, kept, purged,
      static_cast<unsigned long long>((*rt)->stats().Get(uttm::Stat::kPagesBackedUp)),
      static_cast<unsigned long long>((*rt)->stats().Get(uttm::Stat::kPagesRestored)),
      static_cast<unsigned long long>((*rt)->stats().Get(uttm::Stat::kPagesPurged)), 32);
  entries.clear();
  return precious_ok == kEntries / 2 && purged + kept == kEntries / 2 ? 0 : 1;
}
