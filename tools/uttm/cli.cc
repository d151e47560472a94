// Copyright (c) uttm developers.
#include "cli.h"

#include "uttm/fault_injection.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bench.h"
#include "engine.h"
#include "size.h"

namespace uttm::tool {
namespace {

// A usage error: message printed as "uttm: error: ..." and exit code 2.
struct UsageError {
  std::string message;
};

void PrintError(std::string_view message) {
  // Multi-line messages (workload problems) get the prefix on every line.
  std::size_t start = 0;
  while (start <= message.size()) {
    std::size_t end = message.find('\n', start);
    if (end == std::string_view::npos) end = message.size();
    std::fprintf(stderr, "uttm: error: %.*s\n", static_cast<int>(end - start),
                 message.data() + start);
    start = end + 1;
  }
}

struct RunFlags {
  std::string preset;
  std::string workload_file;
  std::string page_limit, vram, store, duration, moves;
  std::optional<std::int64_t> threads;
  std::optional<std::uint64_t> seed, ops;
  std::string report, trace, plot;
  bool quiet = false;
  bool dry_run = false;
  bool inspect = false;  // run only: print the inspect state at the end
};

void AddRunFlags(CLI::App* cmd, RunFlags* f) {
  cmd->add_option("--preset", f->preset, "Built-in workload (see `uttm presets`); default demo")
      ->type_name("NAME");
  cmd->add_option("--workload", f->workload_file, "Workload file (JSON, docs/workload-format.md)")
      ->type_name("FILE");
  cmd->add_option("--page-limit", f->page_limit, "Page limit, e.g. 256MiB")->type_name("SIZE");
  cmd->add_option("--vram", f->vram, "VRAM per device, e.g. 64MiB")->type_name("SIZE");
  cmd->add_option("--moves", f->moves, "How devices move buffers: engine (default) or memcpy")
      ->type_name("HOW");
  cmd->add_option("--store", f->store,
                  "Backup store: memfd, file, file:DIR, uring, uring:DIR (O_DIRECT through "
                  "io_uring), or compressed RAM: lz4[,cap=SIZE,...] or zstd[,level=N,...]; "
                  "redis:HOST:PORT or redis:unix:PATH (a Redis-protocol server; password from "
                  "password_file=PATH or UTTM_REDIS_PASSWORD); "
                  "tier:UPPER+LOWER (UPPER writes its oldest entries back to LOWER when full); "
                  "',encrypt' after any")
      ->type_name("SPEC");
  cmd->add_option("--threads", f->threads, "Threads of every phase (1..256)");
  cmd->add_option("--seed", f->seed, "Seed of the op generator and content");
  cmd->add_option("--ops", f->ops, "Total ops, split over the phases");
  cmd->add_option("--duration", f->duration, "Total duration (seconds, or 30s, 2m)")
      ->type_name("DURATION");
  cmd->add_option("--report", f->report, "Write the JSON report to FILE")->type_name("FILE");
  cmd->add_option("--trace", f->trace, "Write a Chrome/Perfetto trace to FILE")->type_name("FILE");
  cmd->add_option("--plot", f->plot, "Write an SVG chart of memory over time to FILE")
      ->type_name("FILE");
  cmd->add_flag("--quiet,-q", f->quiet, "No progress output");
  cmd->add_flag("--dry-run", f->dry_run, "Validate and print the resolved plan; run nothing");
}

std::uint64_t SizeFlag(const std::string& flag, const std::string& text) {
  auto r = ParseSize(text);
  if (!r.ok()) throw UsageError{fmt::format("{}: {}", flag, r.status().message())};
  return *r;
}

void CheckOutputPath(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    throw UsageError{fmt::format("{}: directory '{}' does not exist", flag, parent.string())};
  }
  if (std::filesystem::is_directory(path, ec)) {
    throw UsageError{fmt::format("{}: '{}' is a directory, expected a file name", flag, path)};
  }
}

// Loads the workload named by the flags and applies the overrides. Throws UsageError.
Workload ResolveWorkload(const RunFlags& f) {
  if (!f.preset.empty() && !f.workload_file.empty()) {
    throw UsageError{"--preset and --workload are mutually exclusive"};
  }
  if (f.ops && !f.duration.empty()) {
    throw UsageError{"--ops and --duration are mutually exclusive"};
  }
  Overrides o;
  if (!f.page_limit.empty()) o.page_limit = SizeFlag("--page-limit", f.page_limit);
  if (!f.vram.empty()) o.vram = SizeFlag("--vram", f.vram);
  if (!f.moves.empty()) {
    auto m = ParseMoves(f.moves);
    if (!m.ok()) throw UsageError{fmt::format("--moves: {}", m.status().message())};
    o.moves = *m;
  }
  if (!f.store.empty()) {
    auto s = ParseStoreSpec(f.store);
    if (!s.ok()) throw UsageError{fmt::format("--store: {}", s.status().message())};
    o.store = *s;
  }
  if (f.threads) {
    if (*f.threads < 1 || *f.threads > 256) {
      throw UsageError{fmt::format("--threads: must be between 1 and 256 (got {})", *f.threads)};
    }
    o.threads = static_cast<std::uint32_t>(*f.threads);
  }
  if (f.seed) o.seed = *f.seed;
  if (f.ops) {
    if (*f.ops == 0) throw UsageError{"--ops: must be > 0"};
    o.ops = *f.ops;
  }
  if (!f.duration.empty()) {
    auto d = ParseDuration(f.duration);
    if (!d.ok()) throw UsageError{fmt::format("--duration: {}", d.status().message())};
    if (!(*d > 0)) throw UsageError{fmt::format("--duration: must be > 0 (got '{}')", f.duration)};
    o.duration_s = *d;
  }
  CheckOutputPath("--report", f.report);
  CheckOutputPath("--trace", f.trace);
  CheckOutputPath("--plot", f.plot);

  Result<Workload> w = !f.workload_file.empty() ? LoadWorkloadFile(f.workload_file)
                                                : LoadPreset(f.preset.empty() ? "demo" : f.preset);
  if (!w.ok()) throw UsageError{std::string(w.status().message())};
  Status s = ApplyOverrides(&*w, o);
  if (!s.ok()) throw UsageError{std::string(s.message())};
  const StoreSpec& store = w->limits.store;
  if ((store.kind == StoreSpec::Kind::kFile || store.kind == StoreSpec::Kind::kUring) &&
      !store.dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(store.dir, ec)) {
      StoreSpec plain = store;
      plain.encrypt = false;
      throw UsageError{fmt::format("store {}: not a directory", FormatStoreSpec(plain))};
    }
  }
  return std::move(w).value();
}

EngineOptions EngineFlags(const RunFlags& f) {
  EngineOptions o;
  o.report_path = f.report;
  o.trace_path = f.trace;
  o.plot_path = f.plot;
  o.quiet = f.quiet;
  return o;
}

int CmdRun(const RunFlags& f) {
  Workload w = ResolveWorkload(f);
  if (f.dry_run) {
    std::fputs(FormatPlan(w).c_str(), stdout);
    return kExitOk;
  }
  EngineOptions o = EngineFlags(f);
  o.inspect_at_end = f.inspect;
  Result<RunOutcome> r = RunWorkload(w, o);
  if (!r.ok()) {
    PrintError(fmt::format("run: {}", r.status().ToString()));
    return kExitRunFailed;
  }
  if (f.inspect) std::fputs(InspectToText(r->inspect).c_str(), stdout);
  std::fputs(ReportToText(r->report).c_str(), stdout);
  if (!f.report.empty()) std::printf("report: %s\n", f.report.c_str());
  if (!f.trace.empty())
    std::printf("trace:  %s (open in https://ui.perfetto.dev)\n", f.trace.c_str());
  if (!f.plot.empty()) std::printf("plot:   %s\n", f.plot.c_str());
  return r->report.verified && r->report.errors.empty() ? kExitOk : kExitRunFailed;
}

// `inspect`: runs the workload (a short one: 600 ops unless --ops/--duration say otherwise) and
// dumps the state at its end.
int CmdInspect(RunFlags f, const std::string& json_path) {
  if (!f.ops && f.duration.empty()) f.ops = 600;
  Workload w = ResolveWorkload(f);
  if (f.dry_run) {
    std::fputs(FormatPlan(w).c_str(), stdout);
    return kExitOk;
  }
  EngineOptions o = EngineFlags(f);
  o.quiet = true;
  o.inspect_at_end = true;
  Result<RunOutcome> r = RunWorkload(w, o);
  if (!r.ok()) {
    PrintError(fmt::format("inspect: {}", r.status().ToString()));
    return kExitRunFailed;
  }
  std::fputs(InspectToText(r->inspect).c_str(), stdout);
  if (!json_path.empty()) {
    Status s = WriteTextFile(json_path, r->inspect.dump(2) + "\n");
    if (!s.ok()) {
      PrintError(s.ToString());
      return kExitRunFailed;
    }
  }
  for (const std::string& e : r->report.errors) PrintError(e);
  return r->report.verified && r->report.errors.empty() ? kExitOk : kExitRunFailed;
}

int CmdPresets() {
  for (const PresetInfo& p : Presets()) {
    std::printf("%-16s %.*s\n", std::string(p.name).c_str(), static_cast<int>(p.summary.size()),
                p.summary.data());
  }
  return kExitOk;
}

int CmdValidate(const std::vector<std::string>& files) {
  int rc = kExitOk;
  for (const std::string& file : files) {
    auto w = LoadWorkloadFile(file);
    if (!w.ok()) {
      PrintError(w.status().message());
      rc = kExitUsage;
      continue;
    }
    std::printf("%s: ok (workload '%s': %zu classes, %llu buffers, %zu phases)\n", file.c_str(),
                w->name.c_str(), w->classes.size(),
                static_cast<unsigned long long>(w->InitialBuffers()), w->phases.size());
  }
  return rc;
}

int CmdShow(const std::string& name) {
  auto w = LoadPreset(name);
  if (!w.ok()) throw UsageError{std::string(w.status().message())};
  std::printf("%s\n", WorkloadToJson(*w).c_str());
  return kExitOk;
}

std::string MixText(const OpMix& m) {
  double sum = m.Sum();
  std::string out;
  auto add = [&](const char* name, double v) {
    if (v <= 0) return;
    if (!out.empty()) out += " ";
    out += fmt::format("{} {:.0f}%", name, 100 * v / sum);
  };
  add("read", m.read);
  add("write", m.write);
  add("create", m.create);
  add("free", m.free);
  add("madvise", m.madvise);
  return out;
}

std::string AccessText(const AccessPattern& a) {
  std::string s(AccessKindName(a.kind));
  if (a.kind == AccessPattern::Kind::kZipf) s += fmt::format(" (exponent {:g})", a.exponent);
  s += a.span_pages ? fmt::format(", {} pages per access", a.span_pages) : ", whole buffers";
  return s;
}

}  // namespace

std::string FormatPlan(const Workload& w) {
  std::string out;
  out += fmt::format("workload:   {}\n", w.name);
  if (!w.description.empty()) out += fmt::format("            {}\n", w.description);
  out += fmt::format("seed:       {}\n", w.seed);
  out += fmt::format("devices:    {} x {} VRAM, moves by {}\n", w.devices.count,
                     FormatSize(w.devices.vram),
                     w.devices.moves == Moves::kMemcpy ? "CPU copy (memcpy)" : "copy engine");
  out += fmt::format("ops:        {}\n", w.interruptible
                                             ? "interruptible (an op stopped by EINTR restarts)"
                                             : "not interruptible");
  out += fmt::format("page limit: {}\n", FormatSize(w.limits.page_limit));
  out += fmt::format("store:      {}\n", FormatStoreSpec(w.limits.store));
  double expected = w.ExpectedInitialBytes();
  out += fmt::format("buffers:    {} initially, ~{} expected ({:.2f}x the page limit)\n",
                     w.InitialBuffers(), FormatSize(static_cast<std::uint64_t>(expected)),
                     expected / static_cast<double>(w.limits.page_limit));
  for (const BufferClass& c : w.classes) {
    std::string size = c.size.kind == SizeDist::Kind::kFixed
                           ? FormatSize(c.size.min)
                           : fmt::format("{} {}..{}", SizeDistName(c.size.kind),
                                         FormatSize(c.size.min), FormatSize(c.size.max));
    std::string placement;
    for (Domain d : c.placement) {
      if (!placement.empty()) placement += ">";
      placement += DomainName(d);
    }
    out += fmt::format(
        "  class {:<12} {:>6} x {:<28} placement {:<16} priority {} purgeable {:.0f}% fill {}\n",
        c.name, c.count, size, placement, c.priority, c.purgeable * 100, FillName(c.fill));
  }
  out += fmt::format("access:     {}\n", AccessText(w.access));
  out += fmt::format("lanes:      {}\n", w.Lanes());
  for (std::size_t i = 0; i < w.phases.size(); ++i) {
    const Phase& p = w.phases[i];
    std::string amount =
        p.ops > 0 ? fmt::format("{} ops", p.ops) : fmt::format("{:g} s", p.duration_s);
    out += fmt::format("  phase {:<12} {:<12} threads {:<3} mix {}{}\n", p.name, amount, p.threads,
                       MixText(p.mix), p.access ? ", access " + AccessText(*p.access) : "");
  }
  return out;
}

int RunCli(int argc, char** argv) {
  CLI::App app{"uttm: buffer objects, eviction, backup and reclaim in user space"};
  app.name("uttm");
  app.require_subcommand(1);
  app.footer("Exit codes: 0 ok, 1 run failed (verification or run error), 2 usage error.");

  RunFlags run_flags;
  CLI::App* run = app.add_subcommand("run", "Run a workload against simulated devices");
  AddRunFlags(run, &run_flags);
  run->add_flag("--inspect", run_flags.inspect,
                "Print the device/pool/store/shrinker state at the end");

  std::string bench_json;
  bool bench_quick = false;
  CLI::App* bench = app.add_subcommand("bench", "Standard scenarios as ratios vs in-run baselines");
  bench->add_option("--json", bench_json, "Write the results as JSON to FILE");
  bench->add_flag("--quick", bench_quick, "Shorter scenarios");
  std::optional<std::int64_t> bench_rounds;
  bench->add_option("--rounds", bench_rounds, "Rounds per scenario, 1..100 (default 5, --quick 3)");

  RunFlags inspect_flags;
  std::string inspect_json;
  CLI::App* inspect =
      app.add_subcommand("inspect", "Dump device/manager/LRU/pool/store/shrinker state");
  AddRunFlags(inspect, &inspect_flags);
  inspect->add_option("--json", inspect_json, "Write the state as JSON to FILE");

  CLI::App* presets = app.add_subcommand("presets", "List the built-in workloads");

  CLI::App* workload = app.add_subcommand("workload", "Workload files");
  workload->require_subcommand(1);
  std::vector<std::string> validate_files;
  CLI::App* validate = workload->add_subcommand("validate", "Check workload files");
  validate->add_option("files", validate_files, "Workload files (JSON)")->required();
  std::string show_name;
  CLI::App* show = workload->add_subcommand("show", "Print a preset as a workload file");
  show->add_option("preset", show_name, "Preset name")->required();

  // CLI11 reports an unknown command only as "A subcommand is required": say what was wrong.
  if (argc > 1 && argv[1][0] != '-') {
    std::string_view first = argv[1];
    bool known = false;
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->get_name() == first;
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      PrintError(fmt::format("unknown command '{}' (valid: {})", first, names));
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    PrintError(e.what());
    std::fprintf(stderr, "Run 'uttm --help' (or 'uttm <command> --help') for usage.\n");
    return kExitUsage;
  }

  try {
    if (run->parsed() || inspect->parsed() || bench->parsed()) {
      // The library reports a bad UTTM_FAULTS and ignores it (it cannot fail its host); the tool
      // must not run without the faults it was asked for: a usage error naming what was wrong.
      Status faults = FaultInjection::ConfigureFromEnvironment();
      if (!faults.ok()) throw UsageError{faults.ToString()};
    }
    if (run->parsed()) return CmdRun(run_flags);
    if (presets->parsed()) return CmdPresets();
    if (validate->parsed()) return CmdValidate(validate_files);
    if (show->parsed()) return CmdShow(show_name);
    if (bench->parsed()) {
      CheckOutputPath("--json", bench_json);
      if (bench_rounds && (*bench_rounds < 1 || *bench_rounds > 100)) {
        throw UsageError{
            fmt::format("--rounds: must be between 1 and 100 (got {})", *bench_rounds)};
      }
      return RunBench(bench_quick, bench_rounds ? static_cast<int>(*bench_rounds) : 0, bench_json);
    }
    if (inspect->parsed()) {
      CheckOutputPath("--json", inspect_json);
      return CmdInspect(inspect_flags, inspect_json);
    }
  } catch (const UsageError& e) {
    PrintError(e.message);
    return kExitUsage;
  }
  return kExitUsage;
}

}  // namespace uttm::tool
