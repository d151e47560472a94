// Copyright (c) uttm developers.
#include "report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

namespace uttm::tool {
namespace {

using Json = nlohmann::json;

Report Sample() {
  Report r;
  r.verified = true;
  r.counters.pages_populated = 1000;
  r.counters.pages_backed_up = 400;
  r.counters.pages_restored = 300;
  r.counters.pages_purged = 50;
  r.counters.evictions = 12;
  r.counters.swapouts = 3;
  r.counters.shrinker_scans = 7;
  r.counters.bytes_moved = 700 * 4096;
  r.memory.peak_rss_bytes = 90u << 20;
  r.memory.page_limit_bytes = 96u << 20;
  r.throughput.backup_bytes_per_s = 1.5e9;
  r.throughput.restore_bytes_per_s = 2.5e9;
  r.errors = {"buffer 7: mismatch at byte 12"};
  r.workload = "demo";
  r.domains = {{"vram0", 32u << 20, 30u << 20, 10u << 20}, {"system", 0, 50u << 20, 1u << 20}};
  LatencyHistogram h;
  for (int i = 1; i <= 100; ++i) h.Record(static_cast<std::uint64_t>(i) * 1000);
  r.SetRestoreLatency(h);
  return r;
}

TEST(ReportTest, JsonHasEveryRequiredKey) {
  Json j = Json::parse(ReportToJson(Sample()));
  ASSERT_TRUE(j["verified"].is_boolean());
  EXPECT_TRUE(j["verified"].get<bool>());
  for (const char* k : {"pages_populated", "pages_backed_up", "pages_restored", "pages_purged",
                        "evictions", "swapouts", "shrinker_scans", "bytes_moved"}) {
    ASSERT_TRUE(j["counters"].contains(k)) << k;
    EXPECT_TRUE(j["counters"][k].is_number_unsigned()) << k;
  }
  EXPECT_EQ(j["counters"]["pages_backed_up"], 400);
  EXPECT_EQ(j["memory"]["peak_rss_bytes"], 90u << 20);
  EXPECT_EQ(j["memory"]["page_limit_bytes"], 96u << 20);
  EXPECT_DOUBLE_EQ(j["throughput"]["backup_bytes_per_s"].get<double>(), 1.5e9);
  EXPECT_DOUBLE_EQ(j["throughput"]["restore_bytes_per_s"].get<double>(), 2.5e9);
  ASSERT_TRUE(j["latency_us"]["restore_p50"].is_number());
  ASSERT_TRUE(j["latency_us"]["restore_p99"].is_number());
  EXPECT_LE(j["latency_us"]["restore_p50"].get<double>(),
            j["latency_us"]["restore_p99"].get<double>());
  ASSERT_TRUE(j["errors"].is_array());
  EXPECT_EQ(j["errors"][0], "buffer 7: mismatch at byte 12");
  EXPECT_EQ(j["domains"][0]["name"], "vram0");
}

TEST(ReportTest, WritesFileAndReportsIoErrors) {
  std::string path = ::testing::TempDir() + "/report_test.json";
  ASSERT_TRUE(WriteReportJson(Sample(), path).ok());
  std::ifstream in(path);
  Json j = Json::parse(in);
  EXPECT_EQ(j["workload"], "demo");
  std::filesystem::remove(path);
  Status s = WriteReportJson(Sample(), "/nonexistent-dir/r.json");
  EXPECT_EQ(s.code(), Errc::kIo);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("/nonexistent-dir/r.json"));
}

TEST(ReportTest, TextSummary) {
  std::string t = ReportToText(Sample());
  EXPECT_THAT(t, ::testing::HasSubstr("verified:   yes"));
  EXPECT_THAT(t, ::testing::HasSubstr("400 backed up"));
  EXPECT_THAT(t, ::testing::HasSubstr("peak RSS 90 MiB (page limit 96 MiB"));
  EXPECT_THAT(t, ::testing::HasSubstr("buffer 7: mismatch at byte 12"));
  Report bad = Sample();
  bad.verified = false;
  EXPECT_THAT(ReportToText(bad), ::testing::HasSubstr("verified:   NO"));
  // Buffers that could not be read were not compared, and the line says so.
  Report unread = Sample();
  unread.buffers = {
      .total = 10, .verified = 6, .not_retained = 2, .mismatched = 1, .unreadable = 3};
  EXPECT_THAT(ReportToText(unread),
              ::testing::HasSubstr("7 of 10 buffers compared byte for byte: 6 matched, 1 "
                                   "mismatched; 3 unreadable; 2 not retained (purged)"));
}

TEST(LatencyHistogramTest, Percentiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.PercentileUs(50), 0);
  for (int i = 1; i <= 1000; ++i) h.Record(static_cast<std::uint64_t>(i) * 1000);  // 1..1000 us
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_NEAR(h.PercentileUs(50), 500, 500 * 0.07);
  EXPECT_NEAR(h.PercentileUs(99), 990, 990 * 0.07);
  EXPECT_DOUBLE_EQ(h.PercentileUs(100), 1000);
  EXPECT_DOUBLE_EQ(h.MaxUs(), 1000);
  LatencyHistogram small;
  small.Record(3);
  EXPECT_DOUBLE_EQ(small.PercentileUs(50), 0.003);
}

TEST(LatencyHistogramTest, ConcurrentRecords) {
  LatencyHistogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 10000; ++i) h.Record(static_cast<std::uint64_t>(1000 + t));
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(h.count(), 40000u);
  EXPECT_NEAR(h.PercentileUs(50), 1.0, 0.07);
}

}  // namespace
}  // namespace uttm::tool
