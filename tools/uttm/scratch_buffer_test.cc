// Copyright (c) uttm developers.
#include "scratch_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include "engine.h"

namespace uttm::tool {
namespace {

TEST(ScratchBufferTest, GrowingKeepsTheBytesAlreadyThere) {
  ScratchBuffer b;
  EXPECT_EQ(b.size(), 0u);
  b.resize(100);
  std::memset(b.data(), 0x5a, 100);
  for (std::size_t n : {std::size_t{4096}, std::size_t{1} << 20, std::size_t{3} << 20}) {
    b.resize(n);
    EXPECT_EQ(b.size(), n);
    for (std::size_t i = 0; i < 100; ++i) ASSERT_EQ(b.data()[i], std::byte{0x5a}) << n;
    std::memset(b.data() + 100, 0x11, n - 100);  // the whole size is writable
  }
  b.resize(10);  // shrinking keeps the start
  EXPECT_EQ(b.size(), 10u);
  EXPECT_EQ(b.data()[9], std::byte{0x5a});
  b.resize(64u << 20);  // and growing past the mapping again keeps those 10 bytes
  EXPECT_EQ(b.data()[0], std::byte{0x5a});
  EXPECT_EQ(b.data()[9], std::byte{0x5a});
  b.resize(0);
  EXPECT_EQ(b.size(), 0u);
}

TEST(ScratchBufferDeathTest, AnImpossibleSizeIsReportedNotWrapped) {
  ScratchBuffer b;
  b.resize(4096);
  EXPECT_DEATH(b.resize(SIZE_MAX - 10), "cannot map .* bytes of scratch memory");
}

// The point of the class: its memory leaves the process with it, where a vector's would stay in
// the worker thread's malloc arena.
TEST(ScratchBufferTest, DestroyingItReturnsTheMemory) {
  constexpr std::size_t kBytes = std::size_t{64} << 20;
  auto b = std::make_unique<ScratchBuffer>();
  b->resize(kBytes);
  std::memset(b->data(), 1, kBytes);
  const std::uint64_t held = ReadRssBytes();
  b.reset();
  const std::uint64_t after = ReadRssBytes();
  ASSERT_GE(held, after);
  EXPECT_GE(held - after, kBytes * 9 / 10) << "held " << held << " after " << after;
}

}  // namespace
}  // namespace uttm::tool
