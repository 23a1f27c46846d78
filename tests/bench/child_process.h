// The child processes of the benchmarks and store tests (etcd, `orch server`): a free loopback
// port for them, fork/exec with the output in a log file, and a stop that always reaps.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "orch/status.h"

namespace orch::testing {

// A loopback TCP port the kernel just handed out and took back: free unless someone races for it
// (fixed ports would clash with other benches and e2e tests running on the same machine).
inline int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// Runs args[0] with args, stdout and stderr appended to log_path, stdin from /dev/null, and
// returns its pid. The kernel kills the child when the thread that forked it ends, so that no
// child outlives a test or bench that crashed or was interrupted: call it from a thread that lives
// as long as the child should. Unavailable when the log cannot be opened or fork fails; a binary
// that cannot be run shows as a child exiting with 127.
inline Result<pid_t> SpawnChild(std::vector<std::string> args, const std::string& log_path) {
  // Everything the child needs is made before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Unavailable("cannot open " + log_path);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return Unavailable("fork failed");
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have ended between fork and prctl: then nobody would kill this child.
    if (getppid() != parent) _exit(1);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  return pid;
}

// Whether the child pid has exited; reaps it if so.
inline bool ChildExited(pid_t pid) {
  return waitpid(pid, nullptr, WNOHANG) == pid;
}

// SIGTERM, then SIGKILL if the child is still there after `grace` (a zero grace is SIGKILL at
// once, as a crash); returns once it is reaped.
inline void StopChild(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return;
  kill(pid, grace.count() > 0 ? SIGTERM : SIGKILL);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ChildExited(pid)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace orch::testing
