// Copyright (c) uttm developers.
//
// file_util.h (internal): small helpers to read and write kernel control files.
#ifndef UTTM_SRC_PRESSURE_FILE_UTIL_H_
#define UTTM_SRC_PRESSURE_FILE_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "uttm/status.h"

namespace uttm::internal {

// The whole file (kernel files report size 0, so it reads until EOF). Errors: kIo / kNotFound.
Result<std::string> ReadFileToString(const std::string& path);
// A file holding one unsigned decimal number, or "max" (returned as UINT64_MAX).
Result<std::uint64_t> ReadU64File(const std::string& path);
// Writes `data` in a single write(2) (control files need one write per command).
Status WriteFileOnce(const std::string& path, std::string_view data);
// Value of "key value" in a line-oriented file body (memory.events style); false if missing.
bool FindKeyValue(std::string_view text, std::string_view key, std::uint64_t* value);

}  // namespace uttm::internal

#endif  // UTTM_SRC_PRESSURE_FILE_UTIL_H_
