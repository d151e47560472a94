// Copyright (c) uttm developers.
//
// A device with VRAM and TT: texture streaming on the simulated GPU.
//
// 48 textures of 2 MiB (96 MiB) on a device with 16 MiB of VRAM and a 32 MiB page limit. Each
// texture prefers VRAM and may live in TT; a quarter are mip levels the application can
// regenerate, marked "don't need". A frame loop validates textures into VRAM in a skewed order
// (recent ones more often), which evicts others to TT, and the shrinker backs TT pages up to the
// store. The CPU reads each texture back and checks it; purged ones are regenerated.
//
// Build against the installed package: see examples/CMakeLists.txt (find_package) or
//   g++ -std=c++20 sim_gpu_textures.cc $(pkg-config --cflags --libs uttm)
#include <uttm/buffer_object.h>
#include <uttm/reservation_guard.h>
#include <uttm/runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

constexpr std::uint64_t kTexture = 2 << 20;
constexpr int kTextures = 48;

std::byte TexelByte(int texture, std::uint32_t version, std::uint64_t offset) {
  std::uint64_t z = (std::uint64_t(texture) << 32 | version) * 0x9E3779B97F4A7C15ull + offset / 8;
  z = (z ^ (z >> 29)) * 0xBF58476D1CE4E5B9ull;
  return std::byte(static_cast<unsigned char>(z >> (8 * (offset % 8))));
}

uttm::Status Upload(uttm::BufferObject& bo, int texture, std::uint32_t version,
                    std::vector<std::byte>& buf, uttm::OperationContext& ctx) {
  for (std::uint64_t o = 0; o < kTexture; ++o) buf[o] = TexelByte(texture, version, o);
  return bo.Write(0, buf, ctx);
}

}  // namespace

int main() {
  uttm::RuntimeOptions options;
  options.page_limit = uttm::Bytes(32 << 20);
  auto rt = uttm::Runtime::Open(options);
  if (!rt.ok()) {
    std::fprintf(stderr, "open: %s\n", rt.status().ToString().c_str());
    return 1;
  }
  uttm::SimGpuOptions gpu_options;
  gpu_options.name = "gpu0";
  gpu_options.vram_size = uttm::Bytes(16 << 20);
  auto gpu = (*rt)->AddSimGpu(gpu_options);
  if (!gpu.ok()) {
    std::fprintf(stderr, "gpu: %s\n", gpu.status().ToString().c_str());
    return 1;
  }
  uttm::Device* dev = (*gpu)->device();

  const uttm::Placement vram_or_tt{uttm::Place{.mem_type = uttm::kMemVram},
                                   uttm::Place{.mem_type = uttm::kMemTt}};
  std::vector<uttm::BoRef> textures;
  std::vector<std::uint32_t> version(kTextures, 1);
  std::vector<std::byte> buf(kTexture);
  uttm::OperationContext ctx;
  for (int t = 0; t < kTextures; ++t) {
    auto bo = uttm::BufferObject::Create(dev, {.size = uttm::Bytes(kTexture)}, vram_or_tt, ctx);
    if (!bo.ok() || !Upload(**bo, t, 1, buf, ctx).ok()) {
      std::fprintf(stderr, "texture %d could not be created\n", t);
      return 1;
    }
    if (t % 4 == 3) (void)(*bo)->Madvise(uttm::Madvice::kDontNeed, ctx);  // regenerable
    textures.push_back(*bo);
  }

  // Frames: each binds 6 textures into VRAM (texture t*t mod 48 is picked more often near 0).
  int regenerated = 0;
  std::uint64_t state = 7;
  for (int frame = 0; frame < 200; ++frame) {
    for (int k = 0; k < 6; ++k) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      const int t =
          static_cast<int>(((state >> 33) % kTextures) * ((state >> 40) % kTextures) / kTextures);
      uttm::BufferObject& bo = *textures[t];
      if (t % 4 == 3) {
        auto retained = bo.Madvise(uttm::Madvice::kWillNeed, ctx);
        if (retained.ok() && !*retained) {
          // Purged: a purged object stays purged (its contents read as zeros); make a new one.
          auto fresh =
              uttm::BufferObject::Create(dev, {.size = uttm::Bytes(kTexture)}, vram_or_tt, ctx);
          if (!fresh.ok() || !Upload(**fresh, t, ++version[t], buf, ctx).ok()) return 1;
          textures[t] = *fresh;
          ++regenerated;
        }
      }
      uttm::BufferObject& use = *textures[t];
      uttm::Status s;
      {
        auto reserved = uttm::ReservationGuard::Acquire(use, ctx);
        if (!reserved.ok()) return 1;
        use.resv()->AssertHeld();  // for clang's -Wthread-safety: the guard holds it
        s = use.Validate(uttm::Placement{uttm::Place{.mem_type = uttm::kMemVram}}, ctx);
      }
      if (!s.ok() && s.code() != uttm::Errc::kNoSpace && s.code() != uttm::Errc::kNoMemory &&
          s.code() != uttm::Errc::kBusy) {
        std::fprintf(stderr, "frame %d: validate texture %d: %s\n", frame, t, s.ToString().c_str());
        return 1;
      }
      if (t % 4 == 3) (void)use.Madvise(uttm::Madvice::kDontNeed, ctx);
    }
  }

  int exact = 0;
  for (int t = 0; t < kTextures; ++t) {
    uttm::BufferObject& bo = *textures[t];
    if (t % 4 == 3) {
      auto retained = bo.Madvise(uttm::Madvice::kWillNeed, ctx);
      if (!retained.ok() || !*retained) continue;  // purged at the end: nothing to check
    }
    if (!bo.Read(0, buf, ctx).ok()) return 1;
    for (std::uint64_t o = 0; o < kTexture; ++o) {
      if (buf[o] != TexelByte(t, version[t], o)) {
        std::fprintf(stderr, "texture %d: wrong byte at %llu\n", t,
                     static_cast<unsigned long long>(o));
        return 1;
      }
    }
    ++exact;
  }
  (*gpu)->Drain();
  const uttm::RuntimeSnapshot snap = (*rt)->Snapshot();
  std::printf(
      "sim_gpu_textures ok: %d textures exact, %d regenerated after a purge; %llu pages "
      "backed up, %llu evictions\n",
      exact, regenerated,
      static_cast<unsigned long long>((*rt)->stats().Get(uttm::Stat::kPagesBackedUp)),
      static_cast<unsigned long long>((*rt)->stats().Get(uttm::Stat::kEvictions)));
  std::printf("%s", uttm::SnapshotToText(snap).c_str());
  textures.clear();
  return exact >= kTextures * 3 / 4 ? 0 : 1;
}
