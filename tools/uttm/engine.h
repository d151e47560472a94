// Copyright (c) uttm developers.
//
// engine.h: the `uttm run` engine: runs a resolved workload against simulated devices with a real
// backup store and reclaim, and fills the Report.
//
// Set-up (one place, Engine::Setup): an own Stats, one MemoryContext (pages_limit = the workload's
// page limit), one backup store from the store spec (memfd, or a private file in DIR), wrapped in
// a forwarder that times every store call; N SimGpu devices (VRAM from the workload), each created
// through a BoShrinker accounting decorator. Reclaim: every driver shrinker plus the pool
// shrinker registered with one Reclaimer that is also the context's direct-reclaim hook; the
// watermark swapout (GlobalSwapout) on the context's over-limit path; a ReclaimThread with a
// BudgetSource (pages held vs the page limit) and the cgroup source when one is found.
//
// Ops: each lane's LaneGenerator stream, thread t of a phase driving lanes t, t+T, ... Create:
// BufferObject::Create into the class placement (preferred order, then SYSTEM as a last resort),
// then the initial content written. Read/write: the buffer is validated into its class placement
// (so VRAM/TT/SYSTEM traffic and evictions happen), then read (touched pages verified) or written
// (BufferContent updated). madvise: BufferObject::Madvise; a WILLNEED that reports the content
// not retained resets the expected content to zeros. End of run: every buffer is read whole and
// checked byte for byte (buffers still DONTNEED are taken back first).
//
// A sampler thread (every 50 ms) records per-domain usage, RSS and pool size for the trace and
// the plot, turns counter deltas into trace events (evict, purge, swapout, shrinker_scan),
// updates the progress line and, after SIGUSR1, prints the inspect state to stderr.
//
// Errors: an op that fails or a mismatch is listed in Report::errors (the first 50 in full,
// then counted); the run still finishes. Setup failures are returned as a Status.
//
// Thread-safety: RunWorkload may be called from one thread at a time (it installs a SIGUSR1
// handler while it runs).
#ifndef UTTM_TOOLS_UTTM_ENGINE_H_
#define UTTM_TOOLS_UTTM_ENGINE_H_

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "report.h"
#include "uttm/status.h"
#include "workload.h"

namespace uttm::tool {

struct EngineOptions {
  std::string report_path;  // empty: no file
  std::string trace_path;
  std::string plot_path;
  bool quiet = false;
  // Capture the inspect state at the end of the run (RunOutcome::inspect).
  bool inspect_at_end = false;
  // Print the state to stderr when SIGUSR1 arrives during the run.
  bool handle_sigusr1 = true;
  std::FILE* progress_out = stdout;
};

struct RunOutcome {
  Report report;
  nlohmann::json inspect;  // null unless EngineOptions::inspect_at_end
};

// Runs `w` (valid, overrides applied). Errors: setup failures (store, devices, reclaim thread),
// kIo when an output file cannot be written. Everything that goes wrong during the run is in
// report.errors.
Result<RunOutcome> RunWorkload(const Workload& w, const EngineOptions& options);

// The text form of an inspect state (device, managers, LRUs, pool, store, shrinkers).
std::string InspectToText(const nlohmann::json& state);

// Peak and current resident set of this process from /proc/self/status (VmHWM, VmRSS), bytes.
std::uint64_t ReadRssBytes();
std::uint64_t ReadPeakRssBytes();
// Resets the kernel's VmHWM to the current RSS (writes "5" to /proc/self/clear_refs); false when
// the kernel refuses.
bool ResetPeakRss();

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_ENGINE_H_
