// Copyright (c) uttm developers.
//
// Runs the object-ops fuzzer's harness as an ordinary test in every build (release, ASan+UBSan,
// TSan): every file of the seed corpus, then inputs from a fixed pseudo-random stream. The
// coverage-guided search itself is the libFuzzer target (object_ops_fuzzer.cc, `make fuzz`).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "object_ops.h"

namespace uttm::fuzz {
namespace {

std::vector<std::uint8_t> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

TEST(ObjectOpsFuzzTest, SeedCorpusRunsClean) {
  const std::filesystem::path dir = UTTM_FUZZ_CORPUS_DIR;
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::vector<std::uint8_t> input = ReadFile(entry.path());
    Status s = RunObjectOps(input.data(), input.size());
    EXPECT_TRUE(s.ok()) << entry.path().filename() << ": " << s.ToString();
    ++files;
  }
  EXPECT_GT(files, 0);
}

TEST(ObjectOpsFuzzTest, PseudoRandomInputsRunClean) {
  int iterations = 60;
  if (const char* env = std::getenv("UTTM_FUZZ_ITERATIONS")) iterations = std::atoi(env);
  const bool keep_going = std::getenv("UTTM_FUZZ_KEEP_GOING") != nullptr;
  std::mt19937_64 rng(20261203);
  for (int i = 0; i < iterations; ++i) {
    std::vector<std::uint8_t> input(64 + rng() % 512);
    for (std::uint8_t& b : input) b = static_cast<std::uint8_t>(rng());
    Status s = RunObjectOps(input.data(), input.size());
    if (keep_going) {
      // Survey mode: one line per failing input.
      std::string first(s.message().substr(0, s.message().find('\n')));
      if (!s.ok()) {
        std::printf("input %d: %s\n", i, first.c_str());
        if (const char* dir = std::getenv("UTTM_FUZZ_DUMP_DIR")) {
          std::ofstream out(std::string(dir) + "/input-" + std::to_string(i), std::ios::binary);
          out.write(reinterpret_cast<const char*>(input.data()),
                    static_cast<std::streamsize>(input.size()));
        }
      }
      continue;
    }
    ASSERT_TRUE(s.ok()) << "input " << i << ": " << s.ToString();
  }
}

}  // namespace
}  // namespace uttm::fuzz
