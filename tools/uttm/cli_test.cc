// Copyright (c) uttm developers.
//
// Runs the built `uttm` binary with good and bad command lines and workload files, and checks
// the exit code and the message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli.h"
#include "cli_test_util.h"
#include "workload.h"

namespace uttm::tool {
namespace {

using ::testing::HasSubstr;

using testing::Outcome;
using testing::RunUttm;

std::string WriteTemp(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

void ExpectUsageError(const std::string& args, const std::string& message) {
  Outcome o = RunUttm(args);
  EXPECT_EQ(o.code, kExitUsage) << args << "\n" << o.output;
  EXPECT_THAT(o.output, HasSubstr(message)) << args;
}

TEST(CliTest, BadFlags) {
  ExpectUsageError("run --page-limit 12XB", "uttm: error: --page-limit: invalid size '12XB'");
  ExpectUsageError("run --vram lots", "--vram: invalid size 'lots'");
  ExpectUsageError("run --preset nope",
                   "unknown preset 'nope' (valid: demo, streaming, purgeable-cache, churn)");
  ExpectUsageError("run --ops 10 --duration 5", "--ops and --duration are mutually exclusive");
  ExpectUsageError("run --store nfs:/x",
                   "--store: unknown store 'nfs:/x' (expected 'memfd', 'file', 'file:DIR', "
                   "'uring', 'uring:DIR', 'lz4[,OPTIONS]', 'zstd[,OPTIONS]', "
                   "'redis:ADDRESS[,OPTIONS]' or 'tier:UPPER+LOWER', each optionally followed by "
                   "',encrypt')");
  ExpectUsageError("run --store file:/nonexistent-uttm-dir",
                   "store file:/nonexistent-uttm-dir: "
                   "not a directory");
  ExpectUsageError("run --store uring:/nonexistent-uttm-dir,encrypt",
                   "store uring:/nonexistent-uttm-dir: not a directory");
  ExpectUsageError("run --threads 0", "--threads: must be between 1 and 256 (got 0)");
  ExpectUsageError("run --threads many", "--threads");
  ExpectUsageError("run --duration soon", "--duration: invalid duration 'soon'");
  ExpectUsageError("run --ops 0", "--ops: must be > 0");
  ExpectUsageError("run --moves dma",
                   "--moves: unknown value 'dma' (expected one of: engine, memcpy)");
  ExpectUsageError("run --page-limit 5000", "limits.page_limit: must be a multiple of the 4096");
  ExpectUsageError("run --preset demo --workload x.json",
                   "--preset and --workload are mutually exclusive");
  ExpectUsageError("run --report /nonexistent-uttm-dir/r.json",
                   "--report: directory '/nonexistent-uttm-dir' does not exist");
  ExpectUsageError("run --frobnicate", "--frobnicate");
  ExpectUsageError("bench --rounds 0", "--rounds: must be between 1 and 100 (got 0)");
  ExpectUsageError("bench --rounds lots", "--rounds");
  ExpectUsageError("", "A subcommand is required");
  ExpectUsageError("explode",
                   "unknown command 'explode' (valid: run, bench, inspect, presets, workload)");
}

// A mistyped UTTM_FAULTS is a usage error for every command that runs the library, never a
// warning followed by a run without the faults asked for.
TEST(CliTest, BadFaultSpecIsAUsageError) {
  for (const char* args : {"run --ops 10", "inspect", "bench --quick --rounds 1"}) {
    Outcome o = RunUttm(args, "UTTM_FAULTS='store.wrte:after=1'");
    EXPECT_EQ(o.code, kExitUsage) << args << "\n" << o.output;
    EXPECT_THAT(o.output, HasSubstr("uttm: error: ")) << args;
    EXPECT_THAT(o.output, HasSubstr("store.wrte")) << args;
  }
  Outcome bad_value = RunUttm("run --ops 10", "UTTM_FAULTS='store.write:times=x'");
  EXPECT_EQ(bad_value.code, kExitUsage) << bad_value.output;
  EXPECT_THAT(bad_value.output, HasSubstr("times"));
}

// A store directory with a comma in its name is one directory, for the check and for the store.
TEST(CliTest, StoreDirectoryWithACommaIsOneDirectory) {
  const std::string dir = ::testing::TempDir() + "/uttm,store dir";
  std::filesystem::create_directories(dir);
  Outcome o = RunUttm("run --preset demo --quiet --ops 200 --store 'file:" + dir + "'");
  EXPECT_EQ(o.code, kExitOk) << o.output;
  EXPECT_THAT(o.output, HasSubstr("verified:   yes")) << o.output;
  std::filesystem::remove_all(dir);
}

TEST(CliTest, BadWorkloadFiles) {
  struct Case {
    const char* name;
    const char* text;
    const char* message;
  } cases[] = {
      {"syntax.json", "{\"name\": ", "JSON syntax error"},
      {"unknown_key.json",
       R"({"devices": {"count": 1, "vram": "8MiB"}, "limits": {"page_limit": "8MiB"},
           "classes": [{"name": "a", "count": 1, "size": "4KiB", "prio": 1}],
           "phases": [{"name": "p", "ops": 1, "mix": {"read": 1}}]})",
       "classes[0].prio: unknown key (did you mean 'priority'?)"},
      {"wrong_type.json",
       R"({"devices": {"count": 1, "vram": "8MiB"}, "limits": {"page_limit": "8MiB"},
           "classes": [{"name": "a", "count": "one", "size": "4KiB"}],
           "phases": [{"name": "p", "ops": 1, "mix": {"read": 1}}]})",
       "classes[0].count: expected a non-negative integer, got string"},
      {"range.json",
       R"({"devices": {"count": 1, "vram": "8MiB"}, "limits": {"page_limit": "8MiB"},
           "classes": [{"name": "a", "count": 1, "size": "4KiB", "purgeable": 2}],
           "phases": [{"name": "p", "ops": 1, "mix": {"read": 1}}]})",
       "classes[0].purgeable: must be between 0 and 1 (got 2)"},
      {"moves.json",
       R"({"devices": {"count": 1, "vram": "8MiB", "moves": "cpu"}, "limits": {"page_limit": "8MiB"},
           "classes": [{"name": "a", "count": 1, "size": "4KiB"}],
           "phases": [{"name": "p", "ops": 1, "mix": {"read": 1}}]})",
       "devices.moves: unknown value 'cpu' (expected one of: engine, memcpy)"},
      {"interruptible.json",
       R"({"interruptible": "yes", "devices": {"count": 1, "vram": "8MiB"},
           "limits": {"page_limit": "8MiB"}, "classes": [{"name": "a", "count": 1, "size": "4KiB"}],
           "phases": [{"name": "p", "ops": 1, "mix": {"read": 1}}]})",
       "interruptible: expected true or false, got string"},
      {"missing.json",
       R"({"devices": {"count": 1, "vram": "8MiB"}, "limits": {},
           "classes": [{"name": "a", "count": 1, "size": "4KiB"}],
           "phases": [{"name": "p", "ops": 1, "mix": {"read": 1}}]})",
       "limits.page_limit: missing required key"},
  };
  for (const Case& c : cases) {
    std::string path = WriteTemp(c.name, c.text);
    ExpectUsageError("run --dry-run --workload " + path, path + ": ");
    ExpectUsageError("run --dry-run --workload " + path, c.message);
    ExpectUsageError("workload validate " + path, c.message);
    std::filesystem::remove(path);
  }
  ExpectUsageError("run --workload /nonexistent/w.json", "/nonexistent/w.json: cannot open");
}

TEST(CliTest, DryRunPrintsThePlan) {
  Outcome o = RunUttm("run --dry-run --preset demo --threads 3 --ops 600 --seed 5");
  EXPECT_EQ(o.code, kExitOk) << o.output;
  EXPECT_THAT(o.output, HasSubstr("workload:   demo"));
  EXPECT_THAT(o.output, HasSubstr("seed:       5"));
  EXPECT_THAT(o.output, HasSubstr("devices:    2 x 32 MiB VRAM"));
  EXPECT_THAT(o.output, HasSubstr("threads 3"));
  EXPECT_THAT(o.output, HasSubstr("lanes:      3"));
  Outcome file =
      RunUttm(std::string("run --dry-run --workload ") + UTTM_EXAMPLES_DIR + "/game-frames.json");
  EXPECT_EQ(file.code, kExitOk) << file.output;
  EXPECT_THAT(file.output, HasSubstr("class shader-cache"));
}

TEST(CliTest, PresetsValidateAndShow) {
  Outcome list = RunUttm("presets");
  EXPECT_EQ(list.code, kExitOk);
  for (const PresetInfo& p : Presets()) EXPECT_THAT(list.output, HasSubstr(std::string(p.name)));
  Outcome show = RunUttm("workload show churn");
  EXPECT_EQ(show.code, kExitOk);
  // What `show` prints is a workload file that validates.
  std::string path = WriteTemp("churn.json", show.output);
  Outcome v = RunUttm("workload validate " + path);
  EXPECT_EQ(v.code, kExitOk) << v.output;
  EXPECT_THAT(v.output, HasSubstr(": ok (workload 'churn'"));
  // A file without a name is named after the file.
  std::string unnamed = WriteTemp("unnamed-workload.json", R"({"devices": {"vram": "8MiB"},
      "limits": {"page_limit": "8MiB"}, "classes": [{"name": "a", "count": 1, "size": 4096}],
      "phases": [{"name": "p", "ops": 1, "mix": {"read": 1}}]})");
  Outcome named = RunUttm("workload validate " + unnamed);
  EXPECT_EQ(named.code, kExitOk) << named.output;
  EXPECT_THAT(named.output, HasSubstr("(workload 'unnamed-workload'"));
  std::filesystem::remove(unnamed);
  std::filesystem::remove(path);
  ExpectUsageError("workload show nope", "unknown preset 'nope'");
  Outcome help = RunUttm("--help");
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.output, HasSubstr("Exit codes"));
}

}  // namespace
}  // namespace uttm::tool
