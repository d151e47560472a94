// Copyright (c) uttm developers.
//
// workload.h: what `uttm run` executes, and its strict JSON loader.
//
// A workload has devices (count, VRAM per device), limits (page limit, backup store), buffer
// classes (count, size distribution, placement, priority, purgeable share, initial fill), a
// default access pattern and one or more phases (ops or duration, op mix, threads, optional
// access override). The JSON schema is documented in docs/workload-format.md.
//
// Loading is strict: an unknown key (with the closest known key suggested), a wrong type, a value
// out of range or a missing required field is an error naming the JSON path of the field, e.g.
//   classes[1].size.max: must be >= size.min (got 4096 < 65536)
// Every problem of the document is reported (one per line), and nothing is returned half-valid.
// The built-in presets (demo, streaming, purgeable-cache, churn) are JSON documents that go
// through the same loader.
//
// Thread-safety: plain values; the loader functions are pure.
#ifndef UTTM_TOOLS_UTTM_WORKLOAD_H_
#define UTTM_TOOLS_UTTM_WORKLOAD_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "uttm/status.h"

namespace uttm::tool {

// A memory domain a buffer may be placed in, in the order of the placement list.
enum class Domain { kVram, kTt, kSystem };
std::string_view DomainName(Domain d);  // "vram", "tt", "system"

// How the simulated devices move buffers to and from VRAM: on their copy engine (pipelined,
// through TT), or with the CPU (BufferObject::MoveMemcpy, as a driver without a copy engine).
enum class Moves { kEngine, kMemcpy };

// Where backed-up pages go: an anonymous memfd, a private file in a directory (written with
// pwritev, or O_DIRECT through io_uring), or compressed RAM.
struct StoreSpec {
  enum class Kind { kMemfd, kFile, kUring, kCompressed };
  Kind kind = Kind::kMemfd;
  std::string dir;  // kFile and kUring: the directory the store file is created in
  // kCompressed only: the store spec as CreateBackupStore takes it ("lz4,cap=512M", "zstd", or
  // a tier over compressed RAM, "tier:lz4,cap=256M+file:/var/tmp"): the runtime makes it.
  std::string spec;
  // Encrypted at rest (",encrypt" after any of them; encrypted_store.h).
  bool encrypt = false;
  friend bool operator==(const StoreSpec&, const StoreSpec&) = default;
};
// Parses "memfd", "file", "file:DIR", "uring", "uring:DIR" (uring_store.h), "tier:UPPER+LOWER"
// (tiered_store.h), or a compressed RAM
// store "lz4[,OPTIONS]" / "zstd[,OPTIONS]" (compressed_store.h; checked by making one), each
// optionally followed by
// ",encrypt". Errors: kInvalid naming the
// accepted forms, or what is wrong with the compressed store's options.
Result<StoreSpec> ParseStoreSpec(std::string_view text);
std::string FormatStoreSpec(const StoreSpec& spec);
// "engine" / "memcpy", and back. Errors: kInvalid naming the accepted values.
const char* MovesName(Moves m);
Result<Moves> ParseMoves(std::string_view s);

// Buffer size distribution. Sizes are rounded up to whole 4 KiB pages when sampled.
struct SizeDist {
  enum class Kind { kFixed, kUniform, kLogUniform };
  Kind kind = Kind::kFixed;
  std::uint64_t min = 0;  // kFixed: the size; otherwise the inclusive bounds
  std::uint64_t max = 0;
  // Expected size of one sample in bytes (before page rounding).
  double Mean() const;
  friend bool operator==(const SizeDist&, const SizeDist&) = default;
};
std::string_view SizeDistName(SizeDist::Kind k);  // "fixed", "uniform", "log-uniform"

// A buffer's content when it is made: the verification pattern, zeros, or a pattern that
// compresses about eightfold (each page's first 512 bytes, unique to the buffer, page and
// generation, repeated), for stores that compress.
enum class Fill { kPattern, kZero, kCompressible };
const char* FillName(Fill f);  // "pattern", "zero", "compressible"

// A client of per-client budgets (budget.h): its buffers are charged to it, and its limits
// (bytes; unset: none) apply in each domain on every device.
struct ClientLimits {
  std::optional<std::uint64_t> min, low, high, max;
  friend bool operator==(const ClientLimits&, const ClientLimits&) = default;
};
struct Client {
  std::string name;
  std::string parent;                    // "" = a top-level client
  std::array<ClientLimits, 3> limits{};  // by Domain: vram, tt, system
  // Default limits from a dmem cgroup's files (dmem_cgroup.h): "self" for the process's own
  // cgroup, or a cgroup directory; the limits above override them. "" = none.
  std::string cgroup;
  friend bool operator==(const Client&, const Client&) = default;
};

struct BufferClass {
  std::string name;
  std::uint32_t count = 0;  // buffers of this class created before the first phase
  SizeDist size;
  std::vector<Domain> placement = {Domain::kVram, Domain::kTt, Domain::kSystem};
  int priority = 0;        // 0..3, higher is evicted later
  double purgeable = 0.0;  // 0..1, share of this class's buffers that get madvise(DONTNEED)
  Fill fill = Fill::kPattern;
  std::string client;  // the client its buffers are charged to ("" = none: the budget root)
  friend bool operator==(const BufferClass&, const BufferClass&) = default;
};

struct AccessPattern {
  enum class Kind { kUniform, kZipf, kSequential };
  Kind kind = Kind::kZipf;
  double exponent = 1.0;         // kZipf only: > 0, <= 5
  std::uint64_t span_pages = 0;  // pages touched per access; 0 = the whole buffer
  friend bool operator==(const AccessPattern&, const AccessPattern&) = default;
};
std::string_view AccessKindName(AccessPattern::Kind k);  // "uniform", "zipf", "sequential"

// Relative weights of the op kinds of a phase (normalised by the generator; sum > 0).
struct OpMix {
  double read = 0, write = 0, create = 0, free = 0, madvise = 0;
  double Sum() const { return read + write + create + free + madvise; }
  friend bool operator==(const OpMix&, const OpMix&) = default;
};

struct Phase {
  std::string name;
  std::uint64_t ops = 0;  // op-bound phase: total ops over all threads (exactly one of ops and
  double duration_s = 0;  // duration-bound phase: wall seconds              duration is > 0)
  OpMix mix;
  std::uint32_t threads = 1;            // 1..256
  std::optional<AccessPattern> access;  // overrides Workload::access for this phase
  // New limits for declared clients, set when the phase starts (name and limits only); a max
  // lowered below a client's usage reclaims it down to the max (BufferObject::ReclaimBudget).
  std::vector<Client> clients;
  friend bool operator==(const Phase&, const Phase&) = default;
};

struct Devices {
  std::uint32_t count = 1;  // 1..16 simulated devices, each with its own VRAM domain
  std::uint64_t vram = 0;   // bytes of VRAM per device (> 0, page multiple)
  Moves moves = Moves::kEngine;
  // The share (0..1) of buffers whose page vectors live in files (i915's shmem tt; gem.md),
  // released to their files by their own shrinker instead of backed up to the store.
  double file_backed = 0;
  // The share (0..1) of buffers made as GEM shmem objects (drm_gem_shmem; gem.md) on one GEM
  // device of the runtime instead of buffer objects: their pages live in files, their shrinker
  // evicts them to the files and purges don't-need ones.
  double gem_shmem = 0;
  friend bool operator==(const Devices&, const Devices&) = default;
};

struct Limits {
  std::uint64_t page_limit = 0;  // bytes of system pages the manager may hold (> 0, page multiple)
  // Bytes the file-backed buffers may hold resident (0: the page limit); page multiple.
  std::uint64_t file_backed = 0;
  StoreSpec store;
  friend bool operator==(const Limits&, const Limits&) = default;
};

struct Workload {
  std::string name;
  std::string description;
  std::uint64_t seed = 1;
  // Ops run with an interruptible operation context, as a driver's ioctls do; an op interrupted
  // (EINTR) is restarted, as the kernel restarts a system call after -ERESTARTSYS.
  bool interruptible = true;
  Devices devices;
  Limits limits;
  std::vector<Client> clients;  // parents before children
  std::vector<BufferClass> classes;
  AccessPattern access;
  std::vector<Phase> phases;

  // Expected bytes of the initial population (sum over classes of count * mean size).
  double ExpectedInitialBytes() const;
  // Total buffers created before the first phase.
  std::uint64_t InitialBuffers() const;
  // Op lanes: the most threads of any phase. Each lane owns a disjoint set of buffers and is
  // driven by exactly one thread at a time (see generator.h).
  std::uint32_t Lanes() const;
  // The access pattern in force in phase `i`.
  const AccessPattern& AccessOf(std::size_t phase) const;
  friend bool operator==(const Workload&, const Workload&) = default;
};

// Parses and validates a workload from JSON text. `origin` prefixes nothing; it is only used in
// the message of a syntax error ("FILE: JSON syntax error at line 3, column 7: ...").
// Errors: kInvalid, message = one "path: problem" line per problem found.
Result<Workload> ParseWorkload(std::string_view json_text, std::string_view origin = "workload");

// Reads FILE and parses it. Errors: kNotFound / kIo if the file cannot be read ("FILE: ..."),
// otherwise as ParseWorkload (every line prefixed with "FILE: ").
Result<Workload> LoadWorkloadFile(const std::string& path);

// The JSON form of a workload, accepted back by ParseWorkload (round-trips to an equal Workload).
std::string WorkloadToJson(const Workload& w);

// Built-in presets.
struct PresetInfo {
  std::string_view name;
  std::string_view summary;
};
const std::vector<PresetInfo>& Presets();
// The preset's JSON source text; kNotFound listing the valid names when unknown.
Result<std::string_view> PresetJson(std::string_view name);
// Loads a preset through ParseWorkload.
Result<Workload> LoadPreset(std::string_view name);

// Command-line overrides applied on top of a loaded workload, then re-validated.
struct Overrides {
  std::optional<std::uint64_t> page_limit;
  std::optional<std::uint64_t> vram;
  std::optional<Moves> moves;
  std::optional<StoreSpec> store;
  std::optional<std::uint32_t> threads;  // every phase runs this many threads
  std::optional<std::uint64_t> seed;
  std::optional<std::uint64_t> ops;  // total ops, split over the phases by their weight
  std::optional<double> duration_s;  // total seconds, split over the phases likewise
};
// Applies `o` to `w`. --ops turns every phase op-bound and --duration every phase
// duration-bound; each phase's share follows its current ops (or duration) share, equal shares
// when the phases mix kinds. Errors: kInvalid (e.g. both ops and duration, threads 0, a value
// out of range); `w` is unchanged on error.
Status ApplyOverrides(Workload* w, const Overrides& o);

// Checks the semantic rules that ParseWorkload enforces (ranges, cross-field rules) on a
// Workload built in code. Errors: kInvalid, one "path: problem" line per problem.
Status ValidateWorkload(const Workload& w);

// Levenshtein distance, for "did you mean" suggestions.
std::size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_WORKLOAD_H_
