// Copyright (c) uttm developers.
#include "uttm/fault_injection.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <thread>
#include <vector>

namespace uttm {
namespace {

class FaultInjectionTest : public ::testing::Test {
 protected:
  void TearDown() override { FaultInjection::DisarmAll(); }
};

std::vector<bool> Pattern(FaultPoint p, int n) {
  std::vector<bool> out;
  for (int i = 0; i < n; ++i) out.push_back(ShouldFail(p));
  return out;
}

TEST_F(FaultInjectionTest, DisarmedNeverFails) {
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(ShouldFail(FaultPoint::kStoreWrite));
  EXPECT_EQ(internal::g_armed_fault_mask.load(), 0u);
}

TEST_F(FaultInjectionTest, EveryCallByDefault) {
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreRead, FaultSpec{}).ok());
  EXPECT_EQ(Pattern(FaultPoint::kStoreRead, 3), (std::vector<bool>{true, true, true}));
  // Other points are unaffected.
  EXPECT_FALSE(ShouldFail(FaultPoint::kStoreWrite));
  EXPECT_EQ(FaultInjection::Calls(FaultPoint::kStoreRead), 3u);
  EXPECT_EQ(FaultInjection::Failures(FaultPoint::kStoreRead), 3u);
}

TEST_F(FaultInjectionTest, AfterSkipsFirstCalls) {
  // "A store write fails after k pages": the first k calls succeed, the next one fails once.
  FaultSpec spec;
  spec.after = 4;
  spec.times = 1;
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreWrite, spec).ok());
  EXPECT_EQ(Pattern(FaultPoint::kStoreWrite, 7),
            (std::vector<bool>{false, false, false, false, true, false, false}));
}

TEST_F(FaultInjectionTest, IntervalFailsEveryNth) {
  FaultSpec spec;
  spec.interval = 3;
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kPageAlloc, spec).ok());
  EXPECT_EQ(Pattern(FaultPoint::kPageAlloc, 9),
            (std::vector<bool>{false, false, true, false, false, true, false, false, true}));
}

TEST_F(FaultInjectionTest, TimesLimitsFailuresAndDisarms) {
  FaultSpec spec;
  spec.times = 2;
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kWaitInterrupt, spec).ok());
  EXPECT_EQ(Pattern(FaultPoint::kWaitInterrupt, 4), (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(internal::g_armed_fault_mask.load(), 0u);
}

TEST_F(FaultInjectionTest, TimesZeroArmsNothing) {
  FaultSpec spec;
  spec.times = 0;
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kWaitInterrupt, spec).ok());
  EXPECT_FALSE(ShouldFail(FaultPoint::kWaitInterrupt));
}

TEST_F(FaultInjectionTest, ProbabilityIsRoughlyHonouredAndRepeatable) {
  FaultSpec spec;
  spec.probability = 25;
  spec.seed = 42;
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreCorrupt, spec).ok());
  std::vector<bool> first = Pattern(FaultPoint::kStoreCorrupt, 4000);
  int fails = 0;
  for (bool f : first) fails += f;
  EXPECT_GT(fails, 800);
  EXPECT_LT(fails, 1200);
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreCorrupt, spec).ok());
  EXPECT_EQ(Pattern(FaultPoint::kStoreCorrupt, 4000), first);
  spec.probability = 0;
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreCorrupt, spec).ok());
  for (bool f : Pattern(FaultPoint::kStoreCorrupt, 100)) EXPECT_FALSE(f);
}

TEST_F(FaultInjectionTest, InvalidSpecsAreRejected) {
  FaultSpec bad;
  bad.interval = 0;
  EXPECT_EQ(FaultInjection::Arm(FaultPoint::kStoreWrite, bad).code(), Errc::kInvalid);
  bad = FaultSpec{};
  bad.probability = 150;
  EXPECT_EQ(FaultInjection::Arm(FaultPoint::kStoreWrite, bad).code(), Errc::kInvalid);
  bad = FaultSpec{};
  bad.times = -5;
  EXPECT_EQ(FaultInjection::Arm(FaultPoint::kStoreWrite, bad).code(), Errc::kInvalid);
  EXPECT_FALSE(ShouldFail(FaultPoint::kStoreWrite));
}

TEST_F(FaultInjectionTest, ConfigureFromString) {
  ASSERT_TRUE(
      FaultInjection::Configure("store.write:after=1,times=1; page.alloc : interval=2").ok());
  EXPECT_EQ(Pattern(FaultPoint::kStoreWrite, 3), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(Pattern(FaultPoint::kPageAlloc, 4), (std::vector<bool>{false, true, false, true}));
  ASSERT_TRUE(FaultInjection::Configure("restore.interrupt").ok());
  EXPECT_TRUE(ShouldFail(FaultPoint::kRestoreInterrupt));
}

TEST_F(FaultInjectionTest, ConfigureErrorsNameTheProblem) {
  Status s = FaultInjection::Configure("store.wrte:times=1");
  EXPECT_EQ(s.code(), Errc::kInvalid);
  EXPECT_NE(s.message().find("unknown fault point 'store.wrte'"), std::string_view::npos);
  EXPECT_NE(s.message().find("store.write"), std::string_view::npos);  // lists known points

  s = FaultInjection::Configure("store.write:often=3");
  EXPECT_NE(s.message().find("unknown key 'often'"), std::string_view::npos);
  EXPECT_NE(s.message().find("fault point 'store.write'"), std::string_view::npos);

  s = FaultInjection::Configure("store.write:times=abc");
  EXPECT_NE(s.message().find("bad value 'abc' for 'times'"), std::string_view::npos);

  s = FaultInjection::Configure("store.write:times");
  EXPECT_NE(s.message().find("not key=value"), std::string_view::npos);

  // A bad entry arms nothing, even the good entries before it.
  s = FaultInjection::Configure("store.read;store.write:interval=0");
  EXPECT_EQ(s.code(), Errc::kInvalid);
  EXPECT_FALSE(ShouldFail(FaultPoint::kStoreRead));
}

TEST_F(FaultInjectionTest, ConfigureFromEnvironment) {
  ASSERT_EQ(setenv("UTTM_TEST_FAULTS", "store.nospace:times=1", 1), 0);
  ASSERT_TRUE(FaultInjection::ConfigureFromEnvironment("UTTM_TEST_FAULTS").ok());
  EXPECT_TRUE(ShouldFail(FaultPoint::kStoreNoSpace));
  EXPECT_FALSE(ShouldFail(FaultPoint::kStoreNoSpace));
  ASSERT_EQ(setenv("UTTM_TEST_FAULTS", "nope", 1), 0);
  Status s = FaultInjection::ConfigureFromEnvironment("UTTM_TEST_FAULTS");
  EXPECT_EQ(s.code(), Errc::kInvalid);
  EXPECT_NE(s.message().find("UTTM_TEST_FAULTS"), std::string_view::npos);
  unsetenv("UTTM_TEST_FAULTS");
  EXPECT_TRUE(FaultInjection::ConfigureFromEnvironment("UTTM_TEST_FAULTS").ok());
}

TEST_F(FaultInjectionTest, NamesRoundTrip) {
  for (unsigned i = 0; i < kNumFaultPoints; ++i) {
    FaultPoint p = static_cast<FaultPoint>(i);
    auto back = FaultInjection::FromName(FaultInjection::Name(p));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, p);
    EXPECT_STRNE(FaultInjection::Description(p), "");
  }
  EXPECT_FALSE(FaultInjection::FromName("no.such.point").has_value());
}

TEST_F(FaultInjectionTest, ScopedFaultDisarmsOnExit) {
  {
    ScopedFault f(FaultPoint::kMoveCopy, FaultSpec{});
    EXPECT_TRUE(ShouldFail(FaultPoint::kMoveCopy));
  }
  EXPECT_FALSE(ShouldFail(FaultPoint::kMoveCopy));
}

TEST_F(FaultInjectionTest, ExactFailureCountAcrossThreads) {
  FaultSpec spec;
  spec.times = 100;
  ASSERT_TRUE(FaultInjection::Arm(FaultPoint::kStoreWrite, spec).ok());
  std::atomic<int> fails{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) fails += ShouldFail(FaultPoint::kStoreWrite);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fails.load(), 100);
}

}  // namespace
}  // namespace uttm
