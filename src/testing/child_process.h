// Copyright (c) uttm developers.
//
// child_process.h (tests only): running a test body in a forked child (its stderr captured), and
// a real seccomp refusal of one system call there, as container runtimes' default profiles refuse
// io_uring or userfaultfd. The child has only the forking thread: the body makes what it needs.
#ifndef UTTM_SRC_TESTING_CHILD_PROCESS_H_
#define UTTM_SRC_TESTING_CHILD_PROCESS_H_

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>

namespace uttm::testing {

// Installs a seccomp filter that makes system call `nr` fail with EPERM. False when the kernel
// refuses the filter.
inline bool RefuseWithSeccomp(int nr) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{.len = static_cast<unsigned short>(sizeof filter / sizeof filter[0]),
                  .filter = filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// What a child said: its exit code (-1 when it ended by a signal) and its stderr.
struct ChildResult {
  int code = -1;
  std::string err;
};

// Runs `body` in a child process and returns its exit code and what it wrote to stderr. A child
// that hangs ends after 30 s (SIGALRM), never as a stuck test.
inline ChildResult RunInChild(const std::function<int()>& body) {
  ChildResult out;
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return out;
  const pid_t child = ::fork();
  if (child < 0) return out;
  if (child == 0) {
    ::alarm(30);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::close(pipe_fds[0]);
    ::_exit(body());
  }
  ::close(pipe_fds[1]);
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) {
    out.err.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  if (::waitpid(child, &status, 0) == child && WIFEXITED(status)) out.code = WEXITSTATUS(status);
  return out;
}

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_CHILD_PROCESS_H_
