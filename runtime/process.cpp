// Child processes for the runtime module: fork/exec with a close-on-exec error pipe, bounded
// output capture with poll, and a supervising thread that blocks in waitpid (no polling).
#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "orch/log.h"

namespace orch::cri {
namespace {

constexpr size_t kMaxOutput = 64 * 1024;

int ExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

pid_t WaitPid(pid_t pid, int* wait_status, int flags) {
  pid_t r;
  do {
    r = ::waitpid(pid, wait_status, flags);
  } while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

Result<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty()) return InvalidArgument("spawn: empty command");
  // Everything the child needs is prepared before fork: afterwards only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return Unavailable(fmt::format("open /dev/null: {}", strerror(errno)));
  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) {
    ::close(null_fd);
    return Unavailable(fmt::format("pipe: {}", strerror(errno)));
  }
  int in = options.stdin_fd >= 0 ? options.stdin_fd : null_fd;
  int out = options.stdout_fd >= 0 ? options.stdout_fd : null_fd;
  int err = options.stderr_fd >= 0 ? options.stderr_fd : out;
  pid_t parent = ::getpid();
  // For kernels without close_range (before 5.9); sysconf is not async-signal-safe.
  int max_fd = static_cast<int>(std::min<long>(::sysconf(_SC_OPEN_MAX), 65536));

  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(null_fd);
    ::close(error_pipe[0]);
    ::close(error_pipe[1]);
    return Unavailable(fmt::format("fork: {}", strerror(e)));
  }
  if (pid == 0) {
    if (options.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    // dup2 clears close-on-exec on the targets; the sources may be any fds.
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    // Nothing else of orch's may leak into the child: containerd hands what it inherited on to
    // its shims, which outlive orch and would keep its listening socket and files open.
    // (The error pipe stays: it reports a failed exec and closes itself on a good one.)
    const int keep = error_pipe[1];
    if (keep > 3 && ::close_range(3, static_cast<unsigned>(keep - 1), 0) != 0) {
      for (int fd = 3; fd < keep; ++fd) ::close(fd);
    }
    if (::close_range(static_cast<unsigned>(keep + 1), ~0U, 0) != 0) {
      for (int fd = keep + 1; fd < max_fd; ++fd) ::close(fd);
    }
    ::execv(args[0], args.data());
    int e = errno;
    ssize_t ignored = ::write(error_pipe[1], &e, sizeof(e));
    (void)ignored;
    ::_exit(127);
  }
  ::close(null_fd);
  ::close(error_pipe[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(error_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(error_pipe[0]);
  if (n == sizeof(child_errno)) {
    WaitPid(pid, nullptr, 0);
    return Unavailable(fmt::format("cannot run {}: {}", argv[0], strerror(child_errno)));
  }
  return pid;  // EOF: exec succeeded and closed the pipe
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout, int stdin_fd) {
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return Unavailable(fmt::format("pipe: {}", strerror(errno)));
  }
  SpawnOptions options;
  options.stdin_fd = stdin_fd;
  options.stdout_fd = out_pipe[1];
  auto pid = Spawn(argv, options);
  ::close(out_pipe[1]);
  if (!pid.ok()) {
    ::close(out_pipe[0]);
    return pid.status();
  }
  CommandResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{out_pipe[0], POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r == 0) {
      timed_out = true;
      break;
    }
    ssize_t n = ::read(out_pipe[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the command (and whatever inherited the pipe) is done
    result.output.append(buf, static_cast<size_t>(n));
    if (result.output.size() > 2 * kMaxOutput) {
      result.output.erase(0, result.output.size() - kMaxOutput);
    }
  }
  ::close(out_pipe[0]);
  if (result.output.size() > kMaxOutput) {
    result.output.erase(0, result.output.size() - kMaxOutput);
  }
  if (timed_out) ::kill(*pid, SIGKILL);
  int wait_status = 0;
  WaitPid(*pid, &wait_status, 0);
  if (timed_out) {
    return Unavailable(fmt::format("{} did not finish within {} ms", argv[0], timeout.count()));
  }
  result.exit_code = ExitCode(wait_status);
  return result;
}

ProcessSupervisor::ProcessSupervisor(Options options) : options_(std::move(options)) {}

ProcessSupervisor::~ProcessSupervisor() {
  Stop(std::chrono::seconds(5));
}

Result<pid_t> ProcessSupervisor::Launch() {
  int log_fd = ::open(options_.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) {
    return Unavailable(fmt::format("cannot open {}: {}", options_.log_file, strerror(errno)));
  }
  SpawnOptions spawn;
  spawn.stdout_fd = log_fd;
  auto pid = Spawn(options_.argv, spawn);
  ::close(log_fd);
  return pid;
}

Status ProcessSupervisor::Start() {
  // The first child is spawned on the supervising thread too: PR_SET_PDEATHSIG follows the
  // thread that forked, so the child must come from the thread that outlives it.
  std::mutex started_mu;
  std::condition_variable started_cv;
  bool done = false;
  Status first_status;
  thread_ = std::thread([&, this] {
    bool ok;
    {
      std::lock_guard lock(mu_);
      auto pid = Launch();
      if (pid.ok()) {
        pid_ = *pid;
        ++starts_;
      }
      ok = pid.ok();
      std::lock_guard started_lock(started_mu);
      first_status = pid.status();
      done = true;
    }
    started_cv.notify_one();
    if (ok) Loop();
  });
  std::unique_lock lock(started_mu);
  started_cv.wait(lock, [&] { return done; });
  Status status = first_status;
  lock.unlock();
  if (!status.ok()) thread_.join();
  return status;
}

// Children are launched with mu_ held, so Stop either sees the new pid or the thread sees
// stopping_ before launching: no child escapes a stop.
void ProcessSupervisor::Loop() {
  auto backoff = options_.backoff_min;
  for (;;) {
    pid_t pid = this->pid();
    log::Info(options_.name, "started, pid {}", pid);
    auto started_at = std::chrono::steady_clock::now();
    int wait_status = 0;
    WaitPid(pid, &wait_status, 0);
    std::unique_lock lock(mu_);
    pid_ = -1;
    cv_.notify_all();
    if (stopping_) return;
    if (std::chrono::steady_clock::now() - started_at > options_.backoff_max) {
      backoff = options_.backoff_min;
    }
    log::Warn(options_.name, "exited with code {}; restarting in {} ms (log: {})",
              ExitCode(wait_status), backoff.count(), options_.log_file);
    for (;;) {
      if (cv_.wait_for(lock, backoff, [this] { return stopping_; })) return;
      backoff = std::min(backoff * 2, options_.backoff_max);
      Result<pid_t> next = Launch();
      if (next.ok()) {
        pid_ = *next;
        ++starts_;
        break;
      }
      log::Error(options_.name, "restart failed: {}", next.status().message());
    }
  }
}

void ProcessSupervisor::Stop(std::chrono::milliseconds grace) {
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
    cv_.notify_all();
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      if (!cv_.wait_for(lock, grace, [this] { return pid_ < 0; })) {
        log::Warn(options_.name, "still running {} ms after SIGTERM; killing it", grace.count());
        ::kill(pid_, SIGKILL);
      }
    }
  }
  if (thread_.joinable()) thread_.join();
}

pid_t ProcessSupervisor::pid() const {
  std::lock_guard lock(mu_);
  return pid_;
}

int ProcessSupervisor::starts() const {
  std::lock_guard lock(mu_);
  return starts_;
}

}  // namespace orch::cri
