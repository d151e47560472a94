// Copyright (c) uttm developers.
//
// cli_test_util.h (tests only): runs the built `uttm` binary and captures what it printed.
#ifndef UTTM_TOOLS_UTTM_CLI_TEST_UTIL_H_
#define UTTM_TOOLS_UTTM_CLI_TEST_UTIL_H_

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace uttm::tool::testing {

// How a run of the binary ended: exit code (128 + signal number when killed by a signal, -1 when
// it could not be started) and stdout and stderr together.
struct Outcome {
  int code = -1;
  std::string output;
};

// Runs `uttm <args>` through the shell, with `env` ("NAME=value ...") put in front.
inline Outcome RunUttm(const std::string& args, const std::string& env = "") {
  const std::string cmd = env + " " + std::string(UTTM_CLI_BINARY) + " " + args + " 2>&1";
  Outcome o;
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) o.output.append(buf, n);
  const int status = pclose(p);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return o;
}

}  // namespace uttm::tool::testing

#endif  // UTTM_TOOLS_UTTM_CLI_TEST_UTIL_H_
