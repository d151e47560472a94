// Copyright (c) uttm developers.
//
// cli.h: the `uttm` command line (CLI11): subcommands run, bench, inspect, presets and
// workload validate|show, flag validation and exit codes.
//
// Exit codes: 0 success; 1 the run failed (verification failed, run error, or the engine is not
// built yet); 2 usage error (bad flag, bad value, bad workload file). Usage errors are reported
// before anything runs.
//
// Thread-safety: RunCli is called once, from main.
#ifndef UTTM_TOOLS_UTTM_CLI_H_
#define UTTM_TOOLS_UTTM_CLI_H_

#include <string>

#include "workload.h"

namespace uttm::tool {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRunFailed = 1;
inline constexpr int kExitUsage = 2;

// Runs the command line; returns the process exit code. Output goes to stdout, errors to stderr.
int RunCli(int argc, char** argv);

// The resolved plan of a workload, as `uttm run --dry-run` prints it.
std::string FormatPlan(const Workload& w);

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_CLI_H_
