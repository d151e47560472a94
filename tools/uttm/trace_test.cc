// Copyright (c) uttm developers.
#include "trace.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

namespace uttm::tool {
namespace {

using Json = nlohmann::json;

TEST(TraceTest, ParsesWithOrderedTimestampsAndExpectedNames) {
  TraceWriter t;
  t.ThreadName(1, "worker-1");
  // Appended out of order on purpose: the file is sorted.
  t.Complete(kEvRestore, "bo", 1, 300, 20, {{"pages", 16}});
  t.Complete(kEvEvict, "lru", 1, 100, 5);
  t.Complete(kEvBackup, "backup", 2, 110, 40, {{"pages", 8}, {"bytes", 32768}});
  t.Complete(kEvPurge, "bo", 2, 120, 1);
  t.Complete(kEvShrinkerScan, "shrink", 3, 50, 70, {{"freed", 4}});
  t.Counter(kCtrDomainUsage, 90, {{"vram0", 1 << 20}, {"system", 2 << 20}});
  t.Counter(kCtrRss, 95, {{"bytes", 50 << 20}});
  t.Counter(kCtrPoolSize, 96, {{"bytes", 4 << 20}});
  Json j = Json::parse(t.ToJson());
  EXPECT_EQ(j["displayTimeUnit"], "ms");
  const Json& ev = j["traceEvents"];
  ASSERT_EQ(ev.size(), 9u);
  double last = -1;
  std::set<std::string> names;
  for (const Json& e : ev) {
    double ts = e["ts"].get<double>();
    EXPECT_GE(ts, last);
    last = ts;
    names.insert(e["name"].get<std::string>());
    std::string ph = e["ph"];
    if (ph == "X") {
      EXPECT_TRUE(e["dur"].is_number());
    }
    if (ph == "C") {
      EXPECT_FALSE(e["args"].empty());
    }
    EXPECT_TRUE(e.contains("pid"));
    EXPECT_TRUE(e.contains("tid"));
  }
  for (std::string_view n : {kEvRestore, kEvEvict, kEvBackup, kEvPurge, kEvShrinkerScan,
                             kCtrDomainUsage, kCtrRss, kCtrPoolSize}) {
    EXPECT_TRUE(names.count(std::string(n))) << n;
  }
  EXPECT_EQ(ev[0]["ph"], "M");
  EXPECT_EQ(ev[0]["args"]["name"], "worker-1");
  EXPECT_EQ(ev[1]["name"], "shrinker_scan");
}

TEST(TraceTest, BoundedMemoryCountsDrops) {
  TraceWriter t(10);
  for (int i = 0; i < 25; ++i) t.Complete(kEvEvict, "lru", 0, i, 1);
  EXPECT_EQ(t.size(), 10u);
  EXPECT_EQ(t.dropped(), 15u);
  Json j = Json::parse(t.ToJson());
  EXPECT_EQ(j["otherData"]["dropped_events"], 15);
}

TEST(TraceTest, ConcurrentAppendsAndFile) {
  TraceWriter t;
  std::vector<std::thread> threads;
  for (std::uint32_t tid = 0; tid < 4; ++tid) {
    threads.emplace_back([&t, tid] {
      for (int i = 0; i < 1000; ++i) {
        double now = t.NowUs();
        t.Complete(kEvBackup, "backup", tid, now, 1);
        if (i % 100 == 0) t.Counter(kCtrRss, now, {{"bytes", 1.0 * i}});
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(t.size(), 4040u);
  std::string path = ::testing::TempDir() + "/trace_test.json";
  ASSERT_TRUE(t.WriteFile(path).ok());
  std::ifstream in(path);
  Json j = Json::parse(in);
  double last = -1;
  for (const Json& e : j["traceEvents"]) {
    EXPECT_GE(e["ts"].get<double>(), last);
    last = e["ts"].get<double>();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace uttm::tool
