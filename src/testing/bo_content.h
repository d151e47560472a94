// Copyright (c) uttm developers.
//
// bo_content.h (tests only): fills a buffer object with content that tells pages apart
// (testing/content.h: every 8-byte word depends on object, version, page and offset) and checks
// it byte by byte, so content survives every move, eviction, backup and restore exactly, and a
// page that lands in the wrong place or in the wrong object is caught.
#ifndef UTTM_SRC_TESTING_BO_CONTENT_H_
#define UTTM_SRC_TESTING_BO_CONTENT_H_

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "testing/content.h"
#include "uttm/buffer_object.h"

namespace uttm::testing {

// Writes the content of (`object`, `version`) over the whole object (which must not be reserved).
inline void Fill(BufferObject& bo, std::uint64_t object, std::uint32_t version = 1) {
  std::vector<std::byte> data = Content({object, version}, 0, bo.size().value());
  OperationContext ctx;
  Status s = bo.Write(0, data, ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

// Reads the whole object back and checks every byte against the content of (`object`, `version`).
inline void ExpectContent(BufferObject& bo, std::uint64_t object, std::uint32_t version = 1) {
  std::vector<std::byte> data(bo.size().value());
  OperationContext ctx;
  Status s = bo.Read(0, data, ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::optional<std::size_t> bad = FindMismatch({object, version}, 0, data);
  ASSERT_FALSE(bad.has_value()) << "object " << object << " v" << version << ": byte " << *bad
                                << " (page " << *bad / kPageSize << ") differs";
}

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_BO_CONTENT_H_
