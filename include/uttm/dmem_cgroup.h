// Copyright (c) uttm developers.
//
// dmem_cgroup.h: default budgets from the kernel's dmem cgroup controller (kernel/cgroup/dmem.c,
// Documentation/admin-guide/cgroup-v2.rst "DMEM"). A process placed in a cgroup v2 group with
// the dmem controller enabled finds its limits in that group's files, one line per region:
//
//   dmem.min, dmem.low, dmem.max    "<region> <bytes>" or "<region> max"
//   dmem.high                       the same (proposed upstream, not merged; read if present)
//
// Region names are the kernel's, "drm/<device>/<region>" (for example drm/0000:03:00.0/vram0),
// the names a uttm device registers in its BudgetTree, so limits written for the kernel apply to
// the same regions here. uttm cannot charge the kernel's controller for memory it manages itself;
// it reads the files to give a group (usually the one standing for the whole process) the same
// limits. The kernel prints plain bytes; values with memparse suffixes (K, M, G, T, P, E, as
// written to the files) are accepted too.
//
// Part of the pressure layer, beside the other readers of the process's cgroup files.
//
// Thread-safety: the functions are reentrant; ApplyDmemLimits as BudgetTree::SetLimit.
#ifndef UTTM_DMEM_CGROUP_H_
#define UTTM_DMEM_CGROUP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "uttm/budget.h"
#include "uttm/export.h"
#include "uttm/status.h"

namespace uttm {

// One region's limits as a cgroup's dmem files give them (unset: the file has no line for it).
struct DmemRegionLimits {
  std::string region;
  std::optional<std::uint64_t> min, low, high, max;  // kBudgetUnlimited for "max"
};

// Reads dmem.min, dmem.low, dmem.high and dmem.max of `cgroup_dir` (this process's own:
// FindCgroupV2()->dir(), pressure_source.h), one entry per region in the
// order first seen. kNotFound when the directory has none of them (the dmem controller is not
// enabled for it, or the kernel lacks CONFIG_CGROUP_DMEM; the message says so); kInvalid naming
// the file and line for a malformed line; kIo for an unreadable file.
UTTM_EXPORT Result<std::vector<DmemRegionLimits>> ReadDmemLimits(const std::string& cgroup_dir);

// Sets `limits` on `group` for every region registered in `tree` (BudgetTree::SetLimit); the
// regions the tree does not have are returned by name (a device not opened by this process).
// Errors: SetLimit's (kInvalid for the root or a group of another tree).
UTTM_EXPORT Result<std::vector<std::string>> ApplyDmemLimits(
    BudgetTree& tree, BudgetGroup* group, const std::vector<DmemRegionLimits>& limits);

}  // namespace uttm

#endif  // UTTM_DMEM_CGROUP_H_
