// Copyright (c) uttm developers.
#include "progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace uttm::tool {
namespace {

using ::testing::HasSubstr;

ProgressSnapshot Snap(double fraction) {
  ProgressSnapshot s;
  s.phase = "steady";
  s.fraction = fraction;
  s.elapsed_s = 2;
  s.ops_done = 1000;
  s.bytes_moved = 200u << 20;
  s.domains = {{"vram0", 32u << 20, 0, 16u << 20}, {"system", 0, 0, 5u << 20}};
  return s;
}

// Runs `fn` with a Progress writing into a memory stream and returns what it wrote.
template <typename Fn>
std::string Capture(Progress::Mode mode, Fn fn) {
  char* buf = nullptr;
  std::size_t len = 0;
  std::FILE* f = open_memstream(&buf, &len);
  {
    Progress p(f, mode, std::chrono::milliseconds(0), std::chrono::milliseconds(0));
    fn(p);
  }
  std::fclose(f);
  std::string out(buf, len);
  std::free(buf);
  return out;
}

TEST(ProgressTest, FormatLine) {
  std::string line = Progress::FormatLine(Snap(0.5), true);
  EXPECT_THAT(line, HasSubstr("[############............]"));
  EXPECT_THAT(line, HasSubstr(" 50%"));
  EXPECT_THAT(line, HasSubstr("500 ops/s, 100 MiB/s"));
  EXPECT_THAT(line, HasSubstr("vram0 16 MiB/32 MiB"));
  EXPECT_THAT(line, HasSubstr("system 5 MiB"));
  EXPECT_THAT(Progress::FormatLine(Snap(0.5), false), ::testing::Not(HasSubstr("[")));
}

TEST(ProgressTest, TtyRewritesOneLine) {
  std::string out = Capture(Progress::Mode::kTty, [](Progress& p) {
    p.Update(Snap(0.1));
    p.Update(Snap(0.2));
    p.Finish(Snap(1));
  });
  EXPECT_EQ(std::count(out.begin(), out.end(), '\r'), 3);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  EXPECT_THAT(out, HasSubstr("\x1b[K"));
}

TEST(ProgressTest, PlainPrintsLines) {
  std::string out = Capture(Progress::Mode::kPlain, [](Progress& p) {
    p.Update(Snap(0.1));
    p.Finish(Snap(1));
  });
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_THAT(out, HasSubstr("100%"));
}

TEST(ProgressTest, RateLimitedAndQuiet) {
  char* buf = nullptr;
  std::size_t len = 0;
  std::FILE* f = open_memstream(&buf, &len);
  {
    Progress p(f, Progress::Mode::kPlain, std::chrono::hours(1), std::chrono::hours(1));
    for (int i = 0; i < 100; ++i) p.Update(Snap(i / 100.0));
  }
  std::fclose(f);
  EXPECT_EQ(std::count(buf, buf + len, '\n'), 1);  // only the first update within the hour
  std::free(buf);
  EXPECT_EQ(Capture(Progress::Mode::kQuiet, [](Progress& p) { p.Finish(Snap(1)); }), "");
}

}  // namespace
}  // namespace uttm::tool
