// Copyright (c) uttm developers.
//
// bo_content.h (tests only): fills a buffer object with a known pattern and checks it byte by
// byte, so content survives every move, eviction, backup and restore exactly.
#ifndef UTTM_SRC_TESTING_BO_CONTENT_H_
#define UTTM_SRC_TESTING_BO_CONTENT_H_

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "uttm/buffer_object.h"

namespace uttm::testing {

// Byte i of the pattern for `seed` (the multiplier is odd, so every byte value appears).
inline std::byte PatternByte(std::uint8_t seed, std::size_t i) { return std::byte(seed + i * 13); }

// Writes the pattern for `seed` over the whole object (the object must not be reserved).
inline void Fill(BufferObject& bo, std::uint8_t seed) {
  std::vector<std::byte> data(bo.size().value());
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = PatternByte(seed, i);
  OperationContext ctx;
  ASSERT_TRUE(bo.Write(0, data, ctx).ok());
}

// Reads the whole object back and checks every byte against the pattern for `seed`.
inline void ExpectContent(BufferObject& bo, std::uint8_t seed) {
  std::vector<std::byte> data(bo.size().value());
  OperationContext ctx;
  ASSERT_TRUE(bo.Read(0, data, ctx).ok());
  for (std::size_t i = 0; i < data.size(); ++i) {
    ASSERT_EQ(data[i], PatternByte(seed, i)) << "byte " << i;
  }
}

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_BO_CONTENT_H_
