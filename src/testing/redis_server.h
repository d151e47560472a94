// Copyright (c) uttm developers.
//
// redis_server.h (tests and benchmarks only): a real redis-server of the test's own, on a unix
// socket in a private directory and on a loopback TCP port, with persistence off, that the test
// can kill, pause, resume and restart (empty, as a server without persistence comes back). The
// binary is $UTTM_REDIS_SERVER or redis-server from /usr/bin, /usr/sbin or /usr/local/bin
// (scripts/install-deps.sh installs Debian's). The server dies with the thread that started it.
#ifndef UTTM_SRC_TESTING_REDIS_SERVER_H_
#define UTTM_SRC_TESTING_REDIS_SERVER_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace uttm::testing {

class RedisServer {
 public:
  // Starts a server with `extra` arguments added (e.g. {"--maxmemory", "8mb"}). ok() is false,
  // and why() says why, when no binary is found or it does not start answering within 10 s.
  explicit RedisServer(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
    binary_ = FindBinary();
    if (binary_.empty()) {
      why_ = "redis-server not found (set UTTM_REDIS_SERVER, or run scripts/install-deps.sh)";
      return;
    }
    char tmpl[] = "/tmp/uttm-redis-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      why_ = std::string("mkdtemp: ") + std::strerror(errno);
      return;
    }
    dir_ = tmpl;
    socket_ = dir_ + "/redis.sock";
    for (int attempt = 0; attempt < 3 && !ok_; ++attempt) {
      port_ = FreePort();
      ok_ = Start();
    }
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer() {
    Kill();
    if (!dir_.empty()) {
      std::string cmd = "rm -rf '" + dir_ + "'";
      (void)std::system(cmd.c_str());
    }
  }

  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }
  int port() const { return port_; }
  const std::string& socket_path() const { return socket_; }
  std::string unix_address() const { return "unix:" + socket_; }
  std::string tcp_address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }

  // SIGKILL and reap; the socket file is removed, so a client sees the server gone.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    ::unlink(socket_.c_str());
  }
  // Kills and starts it again, empty (no persistence), on the same socket and port.
  bool Restart() {
    Kill();
    ok_ = Start();
    return ok_;
  }
  void Pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void Resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

  // Sends one inline command ("CONFIG SET maxmemory 0") and returns the first line of the
  // answer ("" when the server does not answer).
  std::string Command(const std::string& line) const {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "";
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_.c_str());
    std::string answer;
    timeval tv{.tv_sec = 2, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const std::string msg = line + "\r\n";
      if (::write(fd, msg.data(), msg.size()) == static_cast<ssize_t>(msg.size())) {
        char buf[512];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) answer.assign(buf, static_cast<std::size_t>(n));
      }
    }
    ::close(fd);
    if (std::size_t eol = answer.find("\r\n"); eol != std::string::npos) answer.resize(eol);
    return answer;
  }

 private:
  static std::string FindBinary() {
    if (const char* env = std::getenv("UTTM_REDIS_SERVER"); env != nullptr && *env != '\0') {
      return ::access(env, X_OK) == 0 ? env : "";
    }
    for (const char* p :
         {"/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"}) {
      if (::access(p, X_OK) == 0) return p;
    }
    return "";
  }

  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    if (fd >= 0) ::close(fd);
    return port;
  }

  bool Start() {
    std::vector<std::string> args = {binary_,
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--unixsocket",
                                     socket_,
                                     "--unixsocketperm",
                                     "700",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_,
                                     "--daemonize",
                                     "no",
                                     "--logfile",
                                     dir_ + "/log"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string devnull = "/dev/null";
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
      why_ = std::string("fork: ") + std::strerror(errno);
      return false;
    }
    if (pid_ == 0) {
      // Only async-signal-safe calls until exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      int null = ::open(devnull.c_str(), O_RDWR);
      if (null >= 0) {
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        why_ = "redis-server exited at start: " + LogTail();
        return false;
      }
      const std::string pong = Command("PING");
      if (!pong.empty() && (pong[0] == '+' || pong[0] == '-')) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    why_ = "redis-server did not answer within 10 s: " + LogTail();
    Kill();
    return false;
  }

  std::string LogTail() const {
    std::ifstream in(dir_ + "/log");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    return text.size() > 400 ? text.substr(text.size() - 400) : text;
  }

  std::vector<std::string> extra_;
  std::string binary_;
  std::string dir_;
  std::string socket_;
  std::string why_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool ok_ = false;
};

}  // namespace uttm::testing

#endif  // UTTM_SRC_TESTING_REDIS_SERVER_H_
