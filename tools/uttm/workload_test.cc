// Copyright (c) uttm developers.
#include "workload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace uttm::tool {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

Json Valid() {
  return Json::parse(R"({
    "name": "t",
    "devices": {"count": 2, "vram": "16MiB"},
    "limits": {"page_limit": "32MiB"},
    "classes": [
      {"name": "a", "count": 4, "size": "64KiB"},
      {"name": "b", "count": 2, "size": {"dist": "uniform", "min": "64KiB", "max": "1MiB"},
       "placement": ["tt", "system"], "priority": 2, "purgeable": 0.5, "fill": "zero"}
    ],
    "access": {"pattern": "zipf", "exponent": 1.2},
    "phases": [{"name": "p", "ops": 100, "mix": {"read": 1, "write": 1}, "threads": 2}]
  })");
}

// The error message of parsing `j` (fails the test if it parses).
std::string ErrorOf(const Json& j) {
  auto r = ParseWorkload(j.dump());
  EXPECT_FALSE(r.ok()) << j.dump();
  if (r.ok()) return "";
  EXPECT_EQ(r.code(), Errc::kInvalid);
  return std::string(r.status().message());
}

TEST(WorkloadTest, ParsesValidDocument) {
  auto r = ParseWorkload(Valid().dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Workload& w = *r;
  EXPECT_EQ(w.devices.count, 2u);
  EXPECT_EQ(w.devices.vram, 16u << 20);
  EXPECT_EQ(w.limits.page_limit, 32u << 20);
  EXPECT_EQ(w.limits.store.kind, StoreSpec::Kind::kMemfd);
  ASSERT_EQ(w.classes.size(), 2u);
  EXPECT_EQ(w.classes[0].size.kind, SizeDist::Kind::kFixed);
  EXPECT_EQ(w.classes[0].size.min, 65536u);
  EXPECT_EQ(w.classes[1].size.kind, SizeDist::Kind::kUniform);
  EXPECT_EQ(w.classes[1].size.max, 1u << 20);
  EXPECT_EQ(w.classes[1].placement, (std::vector<Domain>{Domain::kTt, Domain::kSystem}));
  EXPECT_EQ(w.classes[1].priority, 2);
  EXPECT_DOUBLE_EQ(w.classes[1].purgeable, 0.5);
  EXPECT_EQ(w.classes[1].fill, Fill::kZero);
  EXPECT_EQ(w.access.kind, AccessPattern::Kind::kZipf);
  EXPECT_DOUBLE_EQ(w.access.exponent, 1.2);
  EXPECT_EQ(w.phases[0].ops, 100u);
  EXPECT_EQ(w.Lanes(), 2u);
  EXPECT_EQ(w.InitialBuffers(), 6u);
}

TEST(WorkloadTest, UnknownKeySuggestsClosest) {
  Json j = Valid();
  j["classes"][1]["purgable"] = 0.1;
  EXPECT_EQ(ErrorOf(j), "classes[1].purgable: unknown key (did you mean 'purgeable'?)");
  j = Valid();
  j["clases"] = Json::array();
  EXPECT_EQ(ErrorOf(j), "clases: unknown key (did you mean 'classes'?)");
}

TEST(WorkloadTest, UnknownKeyWithoutCloseMatchListsKnownKeys) {
  Json j = Valid();
  j["devices"]["xyzzyplugh"] = 1;
  EXPECT_EQ(ErrorOf(j),
            "devices.xyzzyplugh: unknown key (known keys: count, vram, moves, file_backed, "
            "gem_shmem)");
}

TEST(WorkloadTest, WrongType) {
  Json j = Valid();
  j["devices"]["count"] = "two";
  EXPECT_EQ(ErrorOf(j), "devices.count: expected a non-negative integer, got string");
  j = Valid();
  j["classes"] = Json::object();
  EXPECT_EQ(ErrorOf(j), "classes: expected an array of buffer classes, got object");
  j = Valid();
  j["phases"][0]["mix"]["read"] = "lots";
  EXPECT_EQ(ErrorOf(j), "phases[0].mix.read: expected a number, got string");
  j = Valid();
  j["devices"]["count"] = 1.5;
  EXPECT_EQ(ErrorOf(j), "devices.count: expected a non-negative integer, got 1.5");
}

TEST(WorkloadTest, FileBackedShareAndBudgetAreValidated) {
  Json j = Valid();
  j["devices"]["file_backed"] = 1.5;
  EXPECT_EQ(ErrorOf(j), "devices.file_backed: must be between 0 and 1 (got 1.5)");
  j = Valid();
  j["devices"]["file_backed"] = "half";
  EXPECT_EQ(ErrorOf(j), "devices.file_backed: expected a number, got string");
  j["devices"].erase("file_backed");
  j["devices"]["gem_shmem"] = -0.25;
  EXPECT_EQ(ErrorOf(j), "devices.gem_shmem: must be between 0 and 1 (got -0.25)");
  j = Valid();
  j["limits"]["file_backed"] = 1000;
  EXPECT_EQ(ErrorOf(j), "limits.file_backed: must be a multiple of 4096 (got 1000)");
  j = Valid();
  j["devices"]["file_backed"] = 0.25;
  j["limits"]["file_backed"] = "16MiB";
  auto w = ParseWorkload(j.dump());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->devices.file_backed, 0.25);
  EXPECT_EQ(w->limits.file_backed, 16u << 20);
}

// A number beyond double range is valid JSON syntax the parser refuses: an error, never a crash.
TEST(WorkloadTest, NumberBeyondDoubleRangeIsAnError) {
  for (const char* text :
       {R"({"seed": 1e400})", R"({"seed": -1e400})", R"({"classes": [{"count": 1e999}]})"}) {
    Result<Workload> w = ParseWorkload(text, "big.json");
    ASSERT_FALSE(w.ok()) << text;
    EXPECT_EQ(w.status().code(), Errc::kInvalid) << text;
    EXPECT_NE(w.status().message().find("big.json"), std::string_view::npos)
        << w.status().ToString();
  }
}

TEST(WorkloadTest, OutOfRange) {
  Json j = Valid();
  j["classes"][0]["priority"] = 7;
  EXPECT_EQ(ErrorOf(j), "classes[0].priority: must be between 0 and 3 (got 7)");
  j = Valid();
  j["classes"][1]["purgeable"] = 1.5;
  EXPECT_EQ(ErrorOf(j), "classes[1].purgeable: must be between 0 and 1 (got 1.5)");
  j = Valid();
  j["devices"]["count"] = 0;
  EXPECT_EQ(ErrorOf(j), "devices.count: must be between 1 and 16 (got 0)");
  j = Valid();
  j["classes"][0]["count"] = -1;
  EXPECT_EQ(ErrorOf(j), "classes[0].count: must be >= 0 (got -1)");
  j = Valid();
  j["phases"][0]["threads"] = 0;
  EXPECT_EQ(ErrorOf(j), "phases[0].threads: must be between 1 and 256 (got 0)");
  j = Valid();
  j["access"]["exponent"] = 0;
  EXPECT_EQ(ErrorOf(j), "access.exponent: must be > 0 and <= 5 (got 0)");
  j = Valid();
  j["limits"]["page_limit"] = 5000;
  EXPECT_EQ(ErrorOf(j),
            "limits.page_limit: must be a multiple of the 4096 byte page size (got 5000)");
}

TEST(WorkloadTest, SizeMaxBelowMin) {
  Json j = Valid();
  j["classes"][1]["size"] = {{"dist", "log-uniform"}, {"min", 65536}, {"max", "4KiB"}};
  EXPECT_EQ(ErrorOf(j), "classes[1].size.max: must be >= size.min (got 4096 < 65536)");
}

TEST(WorkloadTest, MissingRequired) {
  Json j = Valid();
  j["limits"].erase("page_limit");
  EXPECT_EQ(ErrorOf(j), "limits.page_limit: missing required key");
  j = Valid();
  j.erase("phases");
  EXPECT_EQ(ErrorOf(j), "phases: missing required key");
  j = Valid();
  j["classes"][0]["size"] = {{"dist", "uniform"}, {"min", 4096}};
  EXPECT_EQ(ErrorOf(j), "classes[0].size.max: missing required key");
  j = Valid();
  j["phases"][0].erase("ops");
  EXPECT_EQ(ErrorOf(j), "phases[0]: missing 'ops' or 'duration' (one is required)");
}

TEST(WorkloadTest, BadEnumValueAndBadSize) {
  Json j = Valid();
  j["access"] = {{"pattern", "zipff"}};
  EXPECT_EQ(ErrorOf(j),
            "access.pattern: unknown value 'zipff' (expected one of: uniform, zipf, sequential; "
            "did you mean 'zipf'?)");
  j = Valid();
  j["classes"][1]["placement"] = {"vram", "gtt"};
  EXPECT_THAT(ErrorOf(j), HasSubstr("classes[1].placement[1]: unknown value 'gtt'"));
  j = Valid();
  j["classes"][0]["size"] = "12XB";
  EXPECT_THAT(ErrorOf(j), HasSubstr("classes[0].size: invalid size '12XB': unknown unit 'XB'"));
  j = Valid();
  j["limits"]["store"] = "tape";
  EXPECT_EQ(ErrorOf(j),
            "limits.store: unknown store 'tape' (expected 'memfd', 'file', 'file:DIR', 'uring', "
            "'uring:DIR', 'lz4[,OPTIONS]', 'zstd[,OPTIONS]', 'redis:ADDRESS[,OPTIONS]' or "
            "'tier:UPPER+LOWER', each optionally followed by ',encrypt')");
}

// Clients (per-client budgets): parsed with their limits per domain, given to classes, shown
// back as they were read, and checked.
TEST(WorkloadTest, ClientsAndTheirLimits) {
  Json j = Valid();
  j["clients"] = Json::parse(R"([
    {"name": "team", "vram": {"low": "8MiB", "max": "12MiB"}},
    {"name": "model", "parent": "team", "vram": {"min": "2MiB"}, "tt": {"high": "4MiB"}}
  ])");
  j["classes"][0]["client"] = "model";
  auto r = ParseWorkload(j.dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->clients.size(), 2u);
  EXPECT_EQ(r->clients[1].parent, "team");
  EXPECT_EQ(*r->clients[0].limits[0].low, 8u << 20);
  EXPECT_EQ(*r->clients[0].limits[0].max, 12u << 20);
  EXPECT_FALSE(r->clients[0].limits[0].min.has_value());
  EXPECT_EQ(*r->clients[1].limits[1].high, 4u << 20);
  EXPECT_EQ(r->classes[0].client, "model");
  auto again = ParseWorkload(WorkloadToJson(*r));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *r);

  j["clients"][1]["parent"] = "nobody";
  EXPECT_EQ(ErrorOf(j), "clients[1].parent: 'nobody' is not a client declared before this one");
  j["clients"][1]["parent"] = "team";
  j["clients"][1]["name"] = "team";
  EXPECT_THAT(ErrorOf(j), HasSubstr("clients[1].name: duplicate client name 'team'"));
  j["clients"][1]["name"] = "model";
  j["classes"][0]["client"] = "modle";
  EXPECT_EQ(ErrorOf(j), "classes[0].client: unknown client 'modle' (declare it in clients)");
  j["classes"][0]["client"] = "model";
  j["clients"][0]["vram"]["lowe"] = "1MiB";
  EXPECT_EQ(ErrorOf(j), "clients[0].vram.lowe: unknown key (did you mean 'low'?)");
  j["clients"][0]["vram"].erase("lowe");
  j["clients"][0]["vram"]["max"] = "lots";
  EXPECT_THAT(ErrorOf(j), HasSubstr("clients[0].vram.max: "));
  j["clients"][0]["vram"]["max"] = "12MiB";

  // Defaults from a cgroup, and a phase's new limits (name and limits only, declared clients).
  j["clients"][0]["cgroup"] = "self";
  j["phases"][0]["clients"] = Json::parse(R"([{"name": "model", "vram": {"max": "1MiB"}}])");
  r = ParseWorkload(j.dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->clients[0].cgroup, "self");
  ASSERT_EQ(r->phases[0].clients.size(), 1u);
  EXPECT_EQ(*r->phases[0].clients[0].limits[0].max, 1u << 20);
  again = ParseWorkload(WorkloadToJson(*r));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *r);
  j["clients"][0]["cgroup"] = "";
  EXPECT_THAT(ErrorOf(j), HasSubstr("clients[0].cgroup: must be \"self\" or a cgroup directory"));
  j["clients"][0]["cgroup"] = "self";
  j["phases"][0]["clients"][0]["name"] = "nobody";
  EXPECT_EQ(ErrorOf(j),
            "phases[0].clients[0].name: unknown client 'nobody' (declare it in clients)");
  j["phases"][0]["clients"][0]["name"] = "model";
  j["phases"][0]["clients"][0]["parent"] = "team";
  EXPECT_THAT(ErrorOf(j), HasSubstr("phases[0].clients[0].parent: unknown key"));
}

TEST(WorkloadTest, CrossFieldRules) {
  Json j = Valid();
  j["phases"][0]["duration"] = "10s";
  EXPECT_EQ(ErrorOf(j), "phases[0]: give either 'ops' or 'duration', not both");
  j = Valid();
  j["access"] = {{"pattern", "uniform"}, {"exponent", 1.0}};
  EXPECT_EQ(ErrorOf(j), "access.exponent: only valid with pattern 'zipf'");
  j = Valid();
  j["phases"][0]["mix"] = {{"read", 0}};
  EXPECT_EQ(ErrorOf(j), "phases[0].mix: at least one weight must be > 0");
  j = Valid();
  j["classes"][1]["name"] = "a";
  EXPECT_EQ(ErrorOf(j), "classes[1].name: duplicate class name 'a'");
  j = Valid();
  j["classes"][1]["placement"] = {"tt", "tt"};
  EXPECT_EQ(ErrorOf(j), "classes[1].placement[1]: duplicate domain 'tt'");
  // A long list of one domain is one error (it used to be one per pair: megabytes of errors).
  j = Valid();
  j["classes"][1]["placement"] = Json(std::vector<std::string>(2000, "tt"));
  EXPECT_EQ(ErrorOf(j), "classes[1].placement[1]: duplicate domain 'tt' (listed 2000 times)");
  j = Valid();
  j["classes"][1]["placement"] = {"tt", "vram", "tt", "vram", "vram"};
  std::string two = ErrorOf(j);
  EXPECT_NE(two.find("classes[1].placement[2]: duplicate domain 'tt'"), std::string::npos) << two;
  EXPECT_NE(two.find("classes[1].placement[3]: duplicate domain 'vram' (listed 3 times)"),
            std::string::npos)
      << two;
  EXPECT_EQ(std::count(two.begin(), two.end(), '\n'), 1) << two;  // two errors, two lines
  j = Valid();
  j["classes"][0]["count"] = 0;
  j["classes"][1]["count"] = 0;
  EXPECT_EQ(ErrorOf(j),
            "classes: no buffer is ever created (every count is 0 and no phase creates)");
}

TEST(WorkloadTest, ReportsEveryStructuralProblemAtOnce) {
  Json j = Valid();
  j["devices"]["count"] = "x";
  j["classes"][0]["sizee"] = 1;
  j["phases"][0]["mix"]["reed"] = 1;
  std::string msg = ErrorOf(j);
  EXPECT_THAT(msg, HasSubstr("devices.count: expected a non-negative integer, got string"));
  EXPECT_THAT(msg, HasSubstr("classes[0].sizee: unknown key (did you mean 'size'?)"));
  EXPECT_THAT(msg, HasSubstr("phases[0].mix.reed: unknown key (did you mean 'read'?)"));
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 2);
}

TEST(WorkloadTest, SyntaxErrorNamesOrigin) {
  auto r = ParseWorkload("{\"name\": ", "my.json");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("my.json: JSON syntax error"));
  auto top = ParseWorkload("[1, 2]");
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.status().message(), "(top level): expected an object, got array");
}

TEST(WorkloadTest, FileErrorsArePrefixedWithThePath) {
  auto missing = LoadWorkloadFile("/nonexistent/w.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.code(), Errc::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/w.json"));

  std::string path = ::testing::TempDir() + "/bad_workload.json";
  Json j = Valid();
  j["classes"][0]["priority"] = 9;
  j["seed"] = "x";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(j.dump().c_str(), f);
    std::fclose(f);
  }
  auto r = LoadWorkloadFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), path + ": seed: expected a non-negative integer, got string\n" +
                                      path +
                                      ": classes[0].priority: must be between 0 and 3 (got 9)");
  std::filesystem::remove(path);
}

TEST(WorkloadTest, PresetsLoadAndRoundTrip) {
  ASSERT_EQ(Presets().size(), 4u);
  for (const PresetInfo& p : Presets()) {
    auto w = LoadPreset(p.name);
    ASSERT_TRUE(w.ok()) << p.name << ": " << w.status().ToString();
    EXPECT_EQ(w->name, p.name);
    auto again = ParseWorkload(WorkloadToJson(*w));
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE(*again == *w) << p.name;
  }
  auto unknown = LoadPreset("nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            "unknown preset 'nope' (valid: demo, streaming, purgeable-cache, churn)");
}

TEST(WorkloadTest, DemoOversubscribesThreeTimesAcrossTwoDevices) {
  auto w = LoadPreset("demo");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->devices.count, 2u);
  double ratio = w->ExpectedInitialBytes() / static_cast<double>(w->limits.page_limit);
  EXPECT_GT(ratio, 2.5);
  EXPECT_LT(ratio, 3.5);
  bool purgeable = false;
  for (const BufferClass& c : w->classes) purgeable = purgeable || c.purgeable > 0;
  EXPECT_TRUE(purgeable);
  EXPECT_EQ(w->access.kind, AccessPattern::Kind::kZipf);
}

TEST(WorkloadTest, ExampleFilesValidate) {
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(UTTM_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".json") continue;
    ++seen;
    auto w = LoadWorkloadFile(entry.path().string());
    EXPECT_TRUE(w.ok()) << w.status().ToString();
  }
  EXPECT_GE(seen, 3);
}

TEST(WorkloadTest, OverridesSplitOpsAndDuration) {
  auto w = LoadPreset("demo");
  ASSERT_TRUE(w.ok());
  Overrides o;
  o.ops = 700;
  o.threads = 4;
  o.seed = 99;
  o.page_limit = 64u << 20;
  ASSERT_TRUE(ApplyOverrides(&*w, o).ok());
  // demo phases are 1500/4000/1500 ops: the total keeps those proportions.
  EXPECT_EQ(w->phases[0].ops, 150u);
  EXPECT_EQ(w->phases[1].ops, 400u);
  EXPECT_EQ(w->phases[2].ops, 150u);
  for (const Phase& p : w->phases) EXPECT_EQ(p.threads, 4u);
  EXPECT_EQ(w->seed, 99u);
  EXPECT_EQ(w->limits.page_limit, 64u << 20);

  // Op-bound phases given a total duration share it equally.
  Overrides d;
  d.duration_s = 12;
  ASSERT_TRUE(ApplyOverrides(&*w, d).ok());
  for (const Phase& p : w->phases) {
    EXPECT_DOUBLE_EQ(p.duration_s, 4);
    EXPECT_EQ(p.ops, 0u);
  }
}

TEST(WorkloadTest, DurationOverrideKeepsDurationProportions) {
  auto w = LoadWorkloadFile(std::string(UTTM_EXAMPLES_DIR) + "/timed-sequential.json");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Overrides d;
  d.duration_s = 30;  // phases of 10 s and 5 s
  ASSERT_TRUE(ApplyOverrides(&*w, d).ok());
  EXPECT_DOUBLE_EQ(w->phases[0].duration_s, 20);
  EXPECT_DOUBLE_EQ(w->phases[1].duration_s, 10);
}

TEST(WorkloadTest, BadOverridesLeaveWorkloadUnchanged) {
  auto w = LoadPreset("churn");
  ASSERT_TRUE(w.ok());
  Workload before = *w;
  Overrides both;
  both.ops = 10;
  both.duration_s = 1;
  EXPECT_EQ(ApplyOverrides(&*w, both).message(), "--ops and --duration are mutually exclusive");
  Overrides bad_limit;
  bad_limit.page_limit = 1000;
  Status s = ApplyOverrides(&*w, bad_limit);
  EXPECT_EQ(s.message(),
            "after the command-line overrides: limits.page_limit: must be a multiple of the 4096 "
            "byte page size (got 1000)");
  Overrides threads;
  threads.threads = 0;
  EXPECT_EQ(ApplyOverrides(&*w, threads).message(), "--threads: must be between 1 and 256 (got 0)");
  EXPECT_TRUE(*w == before);
}

TEST(WorkloadTest, StoreSpec) {
  auto m = ParseStoreSpec("memfd");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, StoreSpec::Kind::kMemfd);
  auto f = ParseStoreSpec("file:/tmp/x");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->dir, "/tmp/x");
  EXPECT_EQ(FormatStoreSpec(*f), "file:/tmp/x");
  EXPECT_FALSE(ParseStoreSpec("file:").ok());
  auto u = ParseStoreSpec("uring:/tmp/y");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->kind, StoreSpec::Kind::kUring);
  EXPECT_EQ(u->dir, "/tmp/y");
  EXPECT_EQ(FormatStoreSpec(*u), "uring:/tmp/y");
  EXPECT_EQ(FormatStoreSpec(ParseStoreSpec("uring").value()), "uring");
  EXPECT_FALSE(ParseStoreSpec("uring:").ok());
  auto t = ParseStoreSpec("tier:lz4,cap=1M+file:/tmp");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->kind, StoreSpec::Kind::kCompressed);
  EXPECT_EQ(FormatStoreSpec(*t), "tier:lz4,cap=1M+file:/tmp");
  auto tbad = ParseStoreSpec("tier:lz4");
  ASSERT_FALSE(tbad.ok());
  EXPECT_NE(tbad.status().message().find("tier:UPPER+LOWER"), std::string::npos)
      << tbad.status().ToString();
  EXPECT_FALSE(ParseStoreSpec("zram").ok());
  auto z = ParseStoreSpec("zstd,level=3,cap=64M");
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->kind, StoreSpec::Kind::kCompressed);
  EXPECT_EQ(FormatStoreSpec(*z), "zstd,level=3,cap=64M");
  auto e = ParseStoreSpec("file:/tmp/x,encrypt");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->dir, "/tmp/x");
  EXPECT_TRUE(e->encrypt);
  EXPECT_EQ(FormatStoreSpec(*e), "file:/tmp/x,encrypt");
  auto ez = ParseStoreSpec("lz4,cap=8M,encrypt");
  ASSERT_TRUE(ez.ok()) << ez.status().ToString();
  EXPECT_TRUE(ez->encrypt);
  EXPECT_EQ(ez->spec, "lz4,cap=8M");
  EXPECT_FALSE(ParseStoreSpec(",encrypt").ok());
  auto bad = ParseStoreSpec("lz4,level=3");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("level=3"), std::string::npos) << bad.status().ToString();
}

TEST(WorkloadTest, EditDistance) {
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("same", "same"), 0u);
}

}  // namespace
}  // namespace uttm::tool
