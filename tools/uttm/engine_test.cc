// Copyright (c) uttm developers.
//
// Runs the built `uttm` binary end to end: the demo preset with report, trace and plot, the other
// presets (shortened), a run with injected store faults, bench --quick, inspect, and SIGUSR1
// during a run. Checks exit codes and parses every output.
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>

#include "cli.h"
#include "cli_test_util.h"
#include "testing/redis_server.h"
#include "uttm/pressure_source.h"

extern char** environ;

namespace uttm::tool {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

using testing::Outcome;
using testing::RunUttm;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json ParseFile(const std::string& path) {
  Json j = Json::parse(Slurp(path), nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << path << " is not JSON";
  return j;
}

std::string Temp(const std::string& name) { return ::testing::TempDir() + "/" + name; }

void ExpectReportSane(const Json& r, std::uint64_t page_limit) {
  ASSERT_TRUE(r.is_object());
  for (const char* key : {"verified", "counters", "memory", "throughput", "latency_us", "errors"}) {
    EXPECT_TRUE(r.contains(key)) << key;
  }
  for (const char* key : {"pages_populated", "pages_backed_up", "pages_restored", "pages_purged",
                          "evictions", "swapouts", "shrinker_scans", "bytes_moved"}) {
    EXPECT_TRUE(r["counters"].contains(key)) << key;
    EXPECT_TRUE(r["counters"][key].is_number_unsigned()) << key;
  }
  for (const char* key : {"peak_rss_bytes", "page_limit_bytes", "rss_slack_bytes"}) {
    EXPECT_TRUE(r["memory"].contains(key)) << key;
  }
  for (const char* key : {"backup_bytes_per_s", "restore_bytes_per_s", "ops_per_s"}) {
    EXPECT_TRUE(r["throughput"].contains(key)) << key;
  }
  for (const char* key : {"restore_p50", "restore_p99", "restore_max", "restores"}) {
    EXPECT_TRUE(r["latency_us"].contains(key)) << key;
  }
  EXPECT_EQ(r["memory"]["page_limit_bytes"].get<std::uint64_t>(), page_limit);
  const auto peak = r["memory"]["peak_rss_bytes"].get<std::uint64_t>();
  EXPECT_GT(peak, 0u);
  if (r["memory"]["rss_checked"].get<bool>()) {
    EXPECT_LE(peak, page_limit + r["memory"]["rss_slack_bytes"].get<std::uint64_t>());
  }
  EXPECT_GT(r["counters"]["pages_populated"].get<std::uint64_t>(), 0u);
  EXPECT_GT(r["throughput"]["ops_per_s"].get<double>(), 0.0);
  EXPECT_LE(r["latency_us"]["restore_p50"].get<double>(),
            r["latency_us"]["restore_p99"].get<double>());
  EXPECT_GT(r["buffers"]["total"].get<std::uint64_t>(), 0u);
}

TEST(EngineTest, DemoVerifiesAndWritesReportTraceAndPlot) {
  const std::string report = Temp("demo-report.json"), trace = Temp("demo-trace.json"),
                    plot = Temp("demo-plot.svg");
  Outcome o = RunUttm("run --preset demo --quiet --report " + report + " --trace " + trace +
                      " --plot " + plot);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  EXPECT_THAT(o.output, HasSubstr("verified:   yes"));

  Json r = ParseFile(report);
  ExpectReportSane(r, 96u << 20);
  EXPECT_TRUE(r["verified"].get<bool>());
  EXPECT_TRUE(r["errors"].empty()) << r["errors"].dump();
  // ~3x the page limit: pages must have gone to the store and come back, purgeable ones dropped.
  EXPECT_GT(r["counters"]["pages_backed_up"].get<std::uint64_t>(), 0u);
  EXPECT_GT(r["counters"]["pages_restored"].get<std::uint64_t>(), 0u);
  EXPECT_GT(r["counters"]["pages_purged"].get<std::uint64_t>(), 0u);
  EXPECT_GT(r["counters"]["evictions"].get<std::uint64_t>(), 0u);
  EXPECT_GT(r["counters"]["bytes_moved"].get<std::uint64_t>(), 0u);
  EXPECT_GT(r["throughput"]["backup_bytes_per_s"].get<double>(), 0.0);
  EXPECT_GT(r["throughput"]["restore_bytes_per_s"].get<double>(), 0.0);
  EXPECT_GT(r["latency_us"]["restores"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(r["buffers"]["verified"].get<std::uint64_t>(),
            r["buffers"]["total"].get<std::uint64_t>());
  EXPECT_EQ(r["domains"].size(), 4u);  // vram0, vram1, tt, system

  Json t = ParseFile(trace);
  ASSERT_TRUE(t.contains("traceEvents"));
  double last = -1;
  std::set<std::string> names;
  for (const Json& e : t["traceEvents"]) {
    if (e["ph"] == "M") continue;
    const double ts = e["ts"].get<double>();
    EXPECT_GE(ts, last);
    last = ts;
    names.insert(e["name"].get<std::string>());
  }
  for (const char* name : {"phase", "verify", "backup", "restore", "evict", "purge", "domain_usage",
                           "rss", "pool_size"}) {
    EXPECT_TRUE(names.count(name)) << name;
  }

  EXPECT_THAT(Slurp(plot), HasSubstr("<svg"));
  EXPECT_EQ(std::system(("xmllint --noout " + plot + " 2>&1").c_str()), 0);
}

TEST(EngineTest, OtherPresetsRunShortAndVerify) {
  for (const char* preset : {"streaming", "purgeable-cache", "churn"}) {
    const std::string report = Temp(std::string(preset) + "-report.json");
    Outcome o =
        RunUttm(std::string("run --quiet --ops 300 --preset ") + preset + " --report " + report);
    EXPECT_EQ(o.code, kExitOk) << preset << "\n" << o.output;
    Json r = ParseFile(report);
    EXPECT_TRUE(r.value("verified", false)) << preset;
  }
}

TEST(EngineTest, CompressedAndEncryptedStoresRunAndAreReported) {
  // Under the page limit nothing needs the store: the run verifies, and the report and inspect
  // name the compressed store and its counters.
  const std::string report = Temp("lz4-report.json"), json = Temp("lz4-inspect.json");
  Outcome o =
      RunUttm("run --quiet --ops 300 --preset churn --store zstd,level=3 --report " + report);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  Json r = ParseFile(report);
  EXPECT_TRUE(r.value("verified", false));
  o = RunUttm("inspect --ops 100 --preset churn --store lz4,cap=64M --json " + json);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  EXPECT_THAT(o.output, HasSubstr("store: lz4: compressed RAM, cap 64 MiB"));
  Json j = ParseFile(json);
  EXPECT_TRUE(j["store"]["compressed"].contains("same_filled")) << j["store"].dump();
  // Encrypted at rest, on a compressed store and on a file store.
  o = RunUttm("run --quiet --ops 300 --preset churn --store lz4,encrypt --report " + report);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  EXPECT_THAT(ParseFile(report)["run"]["store"].get<std::string>(), HasSubstr("encrypted"));
  o = RunUttm("run --quiet --ops 2000 --preset demo --store file,encrypt --report " + report);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  r = ParseFile(report);
  EXPECT_TRUE(r.value("verified", false));
  EXPECT_GT(r["counters"]["pages_restored"].get<std::uint64_t>(), 0u) << "pages went through it";
  EXPECT_THAT(r["run"]["store"].get<std::string>(), HasSubstr("encrypted (AES-256-GCM)"));
  // A bad option is a usage error naming it.
  o = RunUttm("run --quiet --ops 10 --preset churn --store lz4,level=3");
  EXPECT_NE(o.code, kExitOk);
  EXPECT_THAT(o.output, HasSubstr("level=3"));
  // Over the page limit, data that does not compress cannot be relieved by a RAM store: the run
  // fails fast and says why.
  o = RunUttm("run --quiet --ops 300 --preset streaming --store lz4");
  EXPECT_EQ(o.code, kExitRunFailed) << o.output;
  EXPECT_THAT(o.output, HasSubstr("held by a compressed store"));
}

// Over the page limit a tier of compressed RAM over an io_uring file carries the run: the
// report counts what was written back to the file and read from each tier.
// A workload with clients: the protected one keeps its VRAM, the greedy one absorbs the
// evictions, every byte verifies, and the report shows the tree.
TEST(EngineTest, ClientsWithBudgetsAreProtectedAndReported) {
  const std::string workload = Temp("clients.json");
  std::ofstream(workload) << R"({
    "name": "clients",
    "devices": {"count": 1, "vram": "8MiB"},
    "limits": {"page_limit": "64MiB"},
    "clients": [{"name": "model", "vram": {"low": "4MiB"}}, {"name": "batch"}],
    "classes": [
      {"name": "weights", "client": "model", "count": 4, "size": "1MiB", "placement": ["vram", "system"]},
      {"name": "scratch", "client": "batch", "count": 16, "size": "1MiB", "placement": ["vram", "system"]}
    ],
    "phases": [{"name": "use", "ops": 300, "mix": {"read": 1, "write": 1}}]
  })";
  const std::string report = Temp("clients-report.json");
  Outcome o = RunUttm("run --quiet --workload " + workload + " --report " + report);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  Json r = ParseFile(report);
  EXPECT_TRUE(r.value("verified", false));
  std::map<std::string, Json> by_group;
  for (const Json& b : r["budgets"]) {
    if (b["region"] == "drm/sim-gpu0/vram") by_group[b["group"].get<std::string>()] = b;
  }
  ASSERT_TRUE(by_group.count("/model") && by_group.count("/batch")) << r["budgets"].dump();
  EXPECT_EQ(by_group["/model"]["low"], 4u << 20);
  EXPECT_EQ(by_group["/model"]["evictions_suffered"], 0u) << r["budgets"].dump();
  EXPECT_GT(by_group["/batch"]["evictions_suffered"].get<std::uint64_t>(), 0u);
  EXPECT_TRUE(by_group["/batch"]["max"].is_null());
}

// A phase lowers a client's max below its usage: the run reclaims it to the new max without
// losing a byte, a soft limit (high) makes another client the first victim, the dmem limits of a
// cgroup directory become a client's defaults, and the report, the trace (budget events, usage
// per client) and the plot (a line per client and domain) show it.
TEST(EngineTest, PhasesChangeClientLimitsAndTheTraceAndPlotShowEachClient) {
  const std::string cg = Temp("cgroup");
  std::filesystem::create_directories(cg);
  std::ofstream(cg + "/dmem.low") << "drm/sim-gpu0/vram 2097152\n";
  std::ofstream(cg + "/dmem.max") << "drm/sim-gpu0/vram max\ndrm/0000:03:00.0/vram0 1G\n";
  const std::string workload = Temp("limits.json");
  std::ofstream(workload) << R"({
    "name": "limits",
    "devices": {"count": 1, "vram": "8MiB"},
    "limits": {"page_limit": "64MiB"},
    "clients": [{"name": "model", "cgroup": ")" +
                                 cg + R"("},
                {"name": "soft", "vram": {"high": "1MiB"}}, {"name": "batch"}],
    "classes": [
      {"name": "weights", "client": "model", "count": 6, "size": "1MiB", "placement": ["vram", "system"]},
      {"name": "cache", "client": "soft", "count": 4, "size": "1MiB", "placement": ["vram", "system"]},
      {"name": "scratch", "client": "batch", "count": 8, "size": "1MiB", "placement": ["vram", "system"]}
    ],
    "phases": [{"name": "use", "ops": 200, "mix": {"read": 1, "write": 1}},
               {"name": "shrink", "ops": 200, "mix": {"read": 1, "write": 1},
                "clients": [{"name": "model", "vram": {"low": "0", "max": "1MiB"}}]}]
  })";
  const std::string report = Temp("limits-report.json");
  const std::string trace = Temp("limits-trace.json");
  const std::string plot = Temp("limits.svg");
  Outcome o = RunUttm("run --quiet --workload " + workload + " --report " + report + " --trace " +
                      trace + " --plot " + plot);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  // The cgroup named a region no device here has: said, not fatal.
  EXPECT_THAT(o.output, HasSubstr("names regions no device here has: drm/0000:03:00.0/vram0"));
  Json r = ParseFile(report);
  EXPECT_TRUE(r.value("verified", false));
  std::map<std::string, Json> by_group;
  for (const Json& b : r["budgets"]) {
    if (b["region"] == "drm/sim-gpu0/vram") by_group[b["group"].get<std::string>()] = b;
  }
  ASSERT_TRUE(by_group.count("/model")) << r["budgets"].dump();
  const Json& model = by_group["/model"];
  EXPECT_EQ(model["max"], 1u << 20);
  EXPECT_LE(model["current"].get<std::uint64_t>(), 1u << 20);
  EXPECT_GE(model["reclaim_runs"].get<std::uint64_t>(), 1u);
  EXPECT_GE(model["reclaimed_bytes"].get<std::uint64_t>(), 1u << 20);
  EXPECT_EQ(by_group["/soft"]["high"], 1u << 20);

  Json t = ParseFile(trace);
  std::set<std::string> names;
  bool usage_series = false;
  for (const Json& e : t["traceEvents"]) {
    names.insert(e.value("name", ""));
    if (e.value("name", "") == "client_usage") {
      usage_series = e["args"].contains("model vram") && e["args"].contains("batch system");
    }
  }
  EXPECT_TRUE(names.count("budget_eviction")) << t.dump().substr(0, 2000);
  EXPECT_TRUE(names.count("budget_reclaim"));
  EXPECT_TRUE(usage_series);
  std::ifstream svg(plot);
  const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr(">model vram<"));
  EXPECT_THAT(text, HasSubstr(">batch vram<"));
  EXPECT_THAT(text, HasSubstr(">model tt<"));           // evicted from VRAM to TT
  EXPECT_THAT(text, Not(HasSubstr(">model system<")));  // never used: left out
}

TEST(EngineTest, ATieredStoreSpillsToItsLowerTierAndVerifies) {
  const std::string report = Temp("tier-report.json");
  Outcome o = RunUttm(
      "run --quiet --ops 2000 --preset demo --store tier:lz4,cap=16M+uring --report " + report);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  Json r = ParseFile(report);
  EXPECT_TRUE(r.value("verified", false));
  EXPECT_THAT(r["run"]["store"].get<std::string>(), HasSubstr("over uring:"));
  const Json& c = r["store_counters"];
  EXPECT_GT(c.value("tier.writeback_pages", 0u), 0u) << c.dump();
  EXPECT_GT(c.value("tier.lower_reads", 0u), 0u) << c.dump();
  EXPECT_GT(c.value("tier.upper_reads", 0u), 0u) << c.dump();
  EXPECT_GT(c.value("store.uring_requests", 0u), 0u) << c.dump();
}

// The demo workload with a Redis server of the test's own as the lowest tier, under compressed
// RAM: what the upper tier writes back goes to the server, comes back, and every buffer verifies.
TEST(EngineTest, ARemoteServerAsTheLowestTierCarriesTheDemoAndVerifies) {
  uttm::testing::RedisServer server;
  if (!server.ok()) GTEST_SKIP() << "no Redis server to test against: " << server.why();
  const std::string report = Temp("redis-report.json");
  Outcome o = RunUttm("run --quiet --ops 2000 --preset demo --store tier:lz4,cap=16M+redis:" +
                      server.unix_address() + " --report " + report);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  Json r = ParseFile(report);
  EXPECT_TRUE(r.value("verified", false));
  EXPECT_THAT(r["run"]["store"].get<std::string>(), HasSubstr("over redis (unix socket"));
  const Json& c = r["store_counters"];
  EXPECT_GT(c.value("tier.writeback_pages", 0u), 0u) << c.dump();
  EXPECT_GT(c.value("tier.lower_reads", 0u), 0u) << c.dump();
  EXPECT_GT(c.value("remote.requests", 0u), 0u) << c.dump();
  EXPECT_EQ(c.value("remote.lost_pages", 0u), 0u) << c.dump();
  // The runtime closed: its keys are gone from the server.
  EXPECT_EQ(server.Command("DBSIZE"), ":0");
}

TEST(EngineTest, InjectedStoreFaultsAreSurvivedOrReported) {
  const std::string report = Temp("fault-report.json");
  Outcome o = RunUttm("run --preset demo --quiet --ops 2000 --report " + report,
                      "UTTM_FAULTS='store.write:after=50,times=3'");
  // A failed store write never loses a byte: inside a backup the pages stay in memory; inside the
  // watermark swapout of an allocation that allocation (a create or a write) fails with EIO and
  // says so. Every buffer that exists at the end matches exactly, whichever case happened.
  ASSERT_TRUE(o.code == kExitOk || o.code == kExitRunFailed) << o.code << "\n" << o.output;
  Json r = ParseFile(report);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["counters"]["store_write_errors"].get<std::uint64_t>(), 3u);
  EXPECT_EQ(r["buffers"]["mismatched"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(r["buffers"]["verified"], r["buffers"]["total"]);
  std::uint64_t failed_ops = 0;
  for (const auto& [kind, n] : r["error_counts"].items()) {
    EXPECT_TRUE(kind == "create" || kind == "write") << kind << ": " << r["errors"].dump();
    failed_ops += n.get<std::uint64_t>();
  }
  EXPECT_LE(failed_ops, 3u);  // at most one failed op per injected failure
  for (const auto& e : r["errors"]) EXPECT_THAT(e.get<std::string>(), HasSubstr("EIO")) << e;
  EXPECT_EQ(o.code == kExitOk, failed_ops == 0) << o.output;
  EXPECT_EQ(r["verified"].get<bool>(), failed_ops == 0);
}

// A store that never reads back makes many errors of one kind before the end-of-run check: the
// report still lists the check's errors (kept per kind, the first ten of each), says how many
// more of each kind there were, and counts every kind exactly.
TEST(EngineTest, ErrorsAreKeptPerKindSoTheFinalChecksAreNeverCrowdedOut) {
  const std::string report = Temp("error-kinds-report.json");
  Outcome o = RunUttm("run --preset demo --quiet --ops 1500 --report " + report,
                      "UTTM_FAULTS='store.read'");
  EXPECT_EQ(o.code, kExitRunFailed) << o.output;
  Json r = ParseFile(report);
  ASSERT_TRUE(r.is_object());
  std::map<std::string, std::uint64_t> counts;
  for (const auto& [kind, n] : r["error_counts"].items()) counts[kind] = n.get<std::uint64_t>();
  ASSERT_TRUE(counts.count("verify")) << r["error_counts"].dump();
  EXPECT_EQ(counts["verify"], r["buffers"]["unreadable"].get<std::uint64_t>());
  std::uint64_t most = 0;
  std::string busiest;
  for (const auto& [kind, n] : counts) {
    if (kind != "verify" && n > most) std::tie(busiest, most) = std::tie(kind, n);
  }
  ASSERT_GT(most, 50u) << "the run should fail far more than 50 reads: "
                       << r["error_counts"].dump();
  std::map<std::string, std::uint64_t> listed;
  bool said_more = false;
  const std::string more = fmt::format("... and {} more {} errors", most - 10, busiest);
  for (const auto& e : r["errors"]) {
    const std::string text = e.get<std::string>();
    said_more = said_more || text == more;
    if (text.rfind("verify:", 0) == 0) ++listed["verify"];
  }
  EXPECT_TRUE(said_more) << "expected \"" << more << "\" in " << r["errors"].dump();
  EXPECT_EQ(listed["verify"], std::min<std::uint64_t>(counts["verify"], 10))
      << "the end-of-run check's errors were crowded out: " << r["errors"].dump();
}

// Every EINTR fault point is reachable from `uttm run` (ops are interruptible by default), with
// both move kinds: an interrupted op is restarted and goes on from where it stopped, nothing is
// lost and no error is reported.
TEST(EngineTest, InterruptedOpsAreRestartedAndLoseNothing) {
  struct Case {
    const char* faults;
    const char* moves;
  };
  for (const Case& c : {Case{"store.interrupt:interval=300", "engine"},
                        Case{"restore.interrupt:interval=20", "memcpy"},
                        Case{"wait.interrupt:interval=20", "engine"}}) {
    const std::string report = Temp("interrupt-report.json");
    Outcome o = RunUttm(
        fmt::format("run --preset demo --quiet --ops 1500 --moves {} --report {}", c.moves, report),
        fmt::format("UTTM_FAULTS='{}'", c.faults));
    EXPECT_EQ(o.code, kExitOk) << c.faults << "\n" << o.output;
    Json r = ParseFile(report);
    ASSERT_TRUE(r.is_object()) << o.output;
    EXPECT_TRUE(r["verified"].get<bool>()) << c.faults << ": " << r["errors"].dump();
    EXPECT_TRUE(r["errors"].empty()) << c.faults << ": " << r["errors"].dump();
    EXPECT_GT(r["counters"]["restarts"].get<std::uint64_t>(), 0u) << c.faults;
  }
}

// Writes the demo workload, changed by `edit`, to `path`; false (with a test failure) if the
// tool cannot show it.
template <typename Edit>
bool WriteDemoVariant(const std::string& path, Edit edit) {
  Outcome shown = RunUttm("workload show demo");
  EXPECT_EQ(shown.code, kExitOk) << shown.output;
  if (shown.code != kExitOk) return false;
  Json w = Json::parse(shown.output);
  edit(w);
  std::ofstream out(path);
  out << w.dump();
  return out.good();
}

// Content that compresses (fill "compressible") over the page limit: a compressed RAM store
// carries the run where the incompressible pattern fails fast (above), and every byte verifies.
TEST(EngineTest, CompressibleContentOverThePageLimitFitsACompressedStore) {
  const std::string workload = Temp("compressible.json"), report = Temp("compressible-report.json");
  ASSERT_TRUE(WriteDemoVariant(workload, [](Json& w) {
    for (Json& c : w["classes"]) c["fill"] = "compressible";
    w["limits"]["store"] = "lz4";
  }));
  Outcome o =
      RunUttm(fmt::format("run --workload {} --quiet --ops 2000 --report {}", workload, report));
  ASSERT_EQ(o.code, kExitOk) << o.output;
  Json r = ParseFile(report);
  EXPECT_TRUE(r.value("verified", false)) << r["errors"].dump();
  EXPECT_GT(r["counters"]["pages_backed_up"].get<std::uint64_t>(), 0u);
  const Json& c = r["store_counters"];
  EXPECT_GT(c.value("zstore.compressed", 0u), 0u) << c.dump();
  EXPECT_EQ(c.value("zstore.raw", 0u), 0u) << c.dump();
}

// A file-backed share (devices.file_backed): half the buffers' page vectors live in files,
// released to them by their own shrinker under the file-backed budget; every buffer verifies and
// the report counts them.
TEST(EngineTest, FileBackedBuffersAreReleasedToTheirFilesAndVerify) {
  const std::string workload = Temp("file-backed.json"), report = Temp("file-backed-report.json");
  ASSERT_TRUE(WriteDemoVariant(workload, [](Json& w) {
    w["devices"]["file_backed"] = 0.5;
    w["limits"]["file_backed"] = 48 << 20;
  }));
  Outcome o =
      RunUttm(fmt::format("run --workload {} --quiet --ops 1500 --report {}", workload, report));
  EXPECT_EQ(o.code, kExitOk) << o.output;
  Json r = ParseFile(report);
  ASSERT_TRUE(r.is_object()) << o.output;
  EXPECT_TRUE(r["verified"].get<bool>()) << r["errors"].dump();
  EXPECT_TRUE(r["errors"].empty()) << r["errors"].dump();
  EXPECT_GT(r["counters"]["file_backed_buffers"].get<std::uint64_t>(), 0u);
  EXPECT_GT(r["counters"]["file_backed_pages_released"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(r["memory"]["file_backed_budget_bytes"].get<std::uint64_t>(), 48u << 20);
}

// A GEM shmem share (devices.gem_shmem): half the buffers are GEM shmem objects on the runtime's
// GEM device, evicted to their files by its shrinker under the file-backed budget and swapped
// back in on access; every buffer verifies, the report counts them, and inspect shows the GEM
// device's LRUs.
TEST(EngineTest, GemShmemBuffersAreEvictedSwappedInAndVerify) {
  const std::string workload = Temp("gem.json"), report = Temp("gem-report.json"),
                    inspect = Temp("gem-inspect.json");
  ASSERT_TRUE(WriteDemoVariant(workload, [](Json& w) {
    w["devices"]["gem_shmem"] = 0.5;
    w["limits"]["file_backed"] = 32 << 20;
  }));
  Outcome o = RunUttm(
      fmt::format("run --workload {} --quiet --ops 1500 --report {} --inspect", workload, report));
  EXPECT_EQ(o.code, kExitOk) << o.output;
  Json r = ParseFile(report);
  ASSERT_TRUE(r.is_object()) << o.output;
  EXPECT_TRUE(r["verified"].get<bool>()) << r["errors"].dump();
  EXPECT_TRUE(r["errors"].empty()) << r["errors"].dump();
  const Json& c = r["counters"];
  EXPECT_GT(c["gem_buffers"].get<std::uint64_t>(), 0u);
  EXPECT_GT(c["gem_pages_evicted"].get<std::uint64_t>(), 0u) << "the budget is 32 MiB";
  EXPECT_GT(c["gem_pages_swapped_in"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(c["file_backed_buffers"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(r["memory"]["file_backed_budget_bytes"].get<std::uint64_t>(), 32u << 20);
  EXPECT_THAT(o.output, HasSubstr("gem device gem0"));

  Outcome i = RunUttm(fmt::format("inspect --workload {} --ops 600 --json {}", workload, inspect));
  ASSERT_EQ(i.code, kExitOk) << i.output;
  Json j = ParseFile(inspect);
  ASSERT_TRUE(j.is_object()) << i.output;
  ASSERT_EQ(j["gem_devices"].size(), 1u);
  const Json& g = j["gem_devices"][0];
  EXPECT_EQ(g["name"], "gem0");
  EXPECT_GT(g["objects"].get<std::uint64_t>(), 0u);
  const Json& lru = g["lru_pages"];
  EXPECT_GT(lru["willneed"].get<std::uint64_t>() + lru["evicted"].get<std::uint64_t>() +
                lru["dontneed"].get<std::uint64_t>(),
            0u);
}

// With CPU copies (`--moves memcpy`) the move.copy fault point is reached: each failed copy fails
// its op with EIO, the buffer keeps its placement and content, and every buffer verifies.
TEST(EngineTest, FailedCpuCopiesKeepEveryBufferIntact) {
  const std::string report = Temp("memcpy-report.json");
  Outcome o = RunUttm("run --preset demo --quiet --ops 1500 --moves memcpy --report " + report,
                      "UTTM_FAULTS='move.copy:after=20,times=5'");
  EXPECT_EQ(o.code, kExitRunFailed) << o.output;
  Json r = ParseFile(report);
  ASSERT_TRUE(r.is_object()) << o.output;
  std::uint64_t failed_ops = 0;
  for (const auto& [kind, n] : r["error_counts"].items()) {
    EXPECT_TRUE(kind == "create" || kind == "validate") << kind << ": " << r["errors"].dump();
    failed_ops += n.get<std::uint64_t>();
  }
  EXPECT_EQ(failed_ops, 5u) << r["errors"].dump();
  for (const auto& e : r["errors"]) EXPECT_THAT(e.get<std::string>(), HasSubstr("EIO")) << e;
  EXPECT_EQ(r["buffers"]["mismatched"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(r["buffers"]["unreadable"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(r["buffers"]["verified"], r["buffers"]["total"]);
}

// A full store (ENOSPC on every write) ends reclaim promptly with an error that says so: the
// swapout walk and the shrinker stop at the first ENOSPC, the shrinker takes the store as full
// (it used to retry over every object, millions of scans), and nothing is lost.
TEST(EngineTest, AFullStoreEndsReclaimWithAClearError) {
  const std::string report = Temp("full-store.json");
  Outcome o =
      RunUttm("run --preset demo --quiet --report " + report, "UTTM_FAULTS='store.nospace'");
  EXPECT_EQ(o.code, kExitRunFailed) << o.output;
  Json r = ParseFile(report);
  ASSERT_TRUE(r.is_object()) << o.output;
  EXPECT_EQ(r["buffers"]["mismatched"].get<std::uint64_t>(), 0u) << r["errors"].dump();
  EXPECT_GT(r["counters"]["store_write_errors"].get<std::uint64_t>(), 0u);
  EXPECT_LT(r["counters"]["shrinker_scans"].get<std::uint64_t>(), 10000u);
  bool named = false;
  for (const auto& e : r["errors"]) {
    named = named || e.get<std::string>().find("backup store full") != std::string::npos;
  }
  EXPECT_TRUE(named) << r["errors"].dump();
}

// A workload that fits never fails for lack of memory: two threads over an 8 MiB limit (4 buffers
// of 2 MiB at a time) each see the other's charge and may find what they could swap out locked
// by the other or by the reclaim thread; one thread with a buffer exactly as large as the limit
// needs every other one out. Both used to fail with "page limit reached" in most runs.
TEST(EngineTest, AWorkloadThatFitsNeverFailsForLackOfMemory) {
  struct Case {
    const char* name;
    std::uint64_t count, size, threads;
  };
  for (const Case& c :
       {Case{"two-threads", 200, 2u << 20, 2}, Case{"limit-sized", 6, 8u << 20, 1}}) {
    const std::string workload = Temp(std::string(c.name) + ".json");
    std::ofstream(workload) << fmt::format(
        R"({{"name": "{}", "seed": 3, "devices": {{"count": 1, "vram": 8388608}},
            "limits": {{"page_limit": 8388608, "store": "file"}},
            "classes": [{{"name": "b", "count": {}, "size": {}, "placement": ["system"]}}],
            "phases": [{{"name": "p", "ops": 1500, "mix": {{"read": 1, "write": 1}},
                         "threads": {}}}]}})",
        c.name, c.count, c.size, c.threads);
    for (int run = 0; run < 2; ++run) {
      const std::string report = Temp(std::string(c.name) + "-report.json");
      Outcome o = RunUttm("run --quiet --workload " + workload + " --report " + report);
      EXPECT_EQ(o.code, kExitOk) << c.name << "\n" << o.output;
      Json r = ParseFile(report);
      EXPECT_TRUE(r["errors"].empty()) << c.name << ": " << r["errors"].dump();
    }
  }
}

// With a memfd store, no swap and a memory cgroup limit, backing up cannot relieve the cgroup: the
// tool says so at start-up. The run goes in a cgroup of the test's own (v1, root only).
TEST(EngineTest, MemfdStoreWithoutSwapUnderACgroupLimitIsWarnedAbout) {
  struct sysinfo si {};
  if (sysinfo(&si) != 0 || si.totalswap != 0) GTEST_SKIP() << "this machine has swap";
  if (getuid() != 0) GTEST_SKIP() << "creating a memory cgroup needs root";
  Result<CgroupLocation> parent = FindMemoryCgroupV1();
  if (!parent.ok())
    GTEST_SKIP() << "no cgroup v1 memory controller: " << parent.status().ToString();
  CgroupLocation loc = *parent;
  loc.relative = (parent->relative == "/" ? "" : parent->relative) + "/uttm-engine-test-" +
                 std::to_string(getpid());
  const std::string dir = loc.dir();
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir << ": " << std::strerror(errno);
  std::ofstream(dir + "/memory.limit_in_bytes") << (1ull << 30);
  Outcome memfd = RunUttm("run --preset demo --quiet --ops 100 --store memfd",
                          "echo $$ > " + dir + "/cgroup.procs && ");
  Outcome file = RunUttm("run --preset demo --quiet --ops 100 --store file",
                         "echo $$ > " + dir + "/cgroup.procs && ");
  rmdir(dir.c_str());
  EXPECT_EQ(memfd.code, kExitOk) << memfd.output;
  EXPECT_THAT(memfd.output, HasSubstr("the memfd store cannot relieve the memory cgroup limit of "
                                      "1 GiB"));
  EXPECT_EQ(file.code, kExitOk) << file.output;
  EXPECT_THAT(file.output, ::testing::Not(HasSubstr("cannot relieve")));
}

// Two rounds: every scenario, the demo's verified runs included, must also work a second time in
// the same process (the second demo run once failed its RSS check on the first run's dead scratch
// memory).
TEST(EngineTest, BenchQuickGivesRatios) {
  const std::string json = Temp("bench.json");
  Outcome o = RunUttm("bench --quick --rounds 2 --json " + json);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  EXPECT_THAT(o.output, HasSubstr("ratio"));
  EXPECT_THAT(o.output, HasSubstr("medians of 2 rounds"));
  Json j = ParseFile(json);
  ASSERT_TRUE(j.contains("scenarios"));
  EXPECT_EQ(j["schema"].get<std::string>(), "uttm.bench");
  EXPECT_EQ(j["version"].get<int>(), 2);
  EXPECT_EQ(j["rounds"].get<int>(), 2);
  EXPECT_TRUE(j["errors"].empty()) << j["errors"].dump();
  std::set<std::string> names;
  for (const Json& s : j["scenarios"]) {
    names.insert(s["name"].get<std::string>());
    EXPECT_GT(s["ratio"].get<double>(), 0.0) << s.dump();
    EXPECT_GT(s["baseline"].get<double>(), 0.0) << s.dump();
    EXPECT_EQ(s["rounds"].get<int>(), 2) << s.dump();
    EXPECT_LE(s["ratio_min"].get<double>(), s["ratio"].get<double>()) << s.dump();
    EXPECT_GE(s["ratio_max"].get<double>(), s["ratio"].get<double>()) << s.dump();
  }
  for (const char* n :
       {"backup (file)", "restore (file)", "backup (memfd)", "restore (memfd)", "purge",
        "evict to TT (per 64 KiB object)", "shrinker scan (file)", "demo end to end"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
}

TEST(EngineTest, InspectPrintsTextAndJson) {
  const std::string json = Temp("inspect.json");
  Outcome o = RunUttm("inspect --preset churn --ops 300 --json " + json);
  ASSERT_EQ(o.code, kExitOk) << o.output;
  for (const char* s : {"device sim-gpu0", "manager vram", "manager tt", "lru[prio 0..3]",
                        "pool:", "store:", "shrinkers:", "uttm-pool"}) {
    EXPECT_THAT(o.output, HasSubstr(s));
  }
  Json j = ParseFile(json);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["schema"], "uttm.inspect");
  ASSERT_EQ(j["devices"].size(), 1u);
  EXPECT_EQ(j["devices"][0]["managers"].size(), 3u);
  EXPECT_EQ(j["pool"]["types"].size(), 3u);
  EXPECT_TRUE(j["store"].contains("bytes_used"));
  EXPECT_GE(j["shrinkers"].size(), 2u);  // the driver shrinker and the pool shrinker

  Outcome run = RunUttm("run --preset churn --quiet --ops 200 --inspect");
  EXPECT_EQ(run.code, kExitOk) << run.output;
  EXPECT_THAT(run.output, HasSubstr("shrinkers:"));
}

TEST(EngineTest, Sigusr1PrintsStateDuringARun) {
  const std::string out = Temp("sigusr1.txt");
  std::string bin = UTTM_CLI_BINARY;
  std::vector<std::string> args = {bin, "run", "--preset", "churn", "--quiet", "--duration", "2s"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  kill(pid, SIGUSR1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << Slurp(out);
  EXPECT_EQ(WEXITSTATUS(status), kExitOk) << Slurp(out);
  const std::string text = Slurp(out);
  EXPECT_THAT(text, HasSubstr("shrinkers:"));
  EXPECT_THAT(text, HasSubstr("manager vram"));
}

}  // namespace
}  // namespace uttm::tool
