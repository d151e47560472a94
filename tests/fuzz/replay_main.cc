// Copyright (c) uttm developers.
//
// Replays inputs of the object-ops fuzzer with a trace: `object_ops_replay FILE...` runs each
// file verbosely (every operation and its result on stderr) and exits 1 on the first failure.
// For a crash file written by `make fuzz`.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "object_ops.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot read\n", argv[i]);
      return 2;
    }
    std::vector<std::uint8_t> input(std::istreambuf_iterator<char>(in), {});
    uttm::fuzz::ObjectOpsOptions options;
    options.verbose = true;
    uttm::Status s = uttm::fuzz::RunObjectOps(input.data(), input.size(), options);
    std::fprintf(stderr, "%s: %s\n", argv[i], s.ToString().c_str());
    if (!s.ok()) return 1;
  }
  return 0;
}
