// Copyright (c) uttm developers.
//
// The libFuzzer entry point of the object-ops fuzzer (object_ops.h). Built by the `fuzz` preset
// (clang 14, ASan + UBSan + -fsanitize=fuzzer); `make fuzz` runs it.
#include <cstdio>
#include <cstdlib>

#include "object_ops.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  uttm::Status s = uttm::fuzz::RunObjectOps(data, size);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::abort();
  }
  return 0;
}
