// Child processes for the runtime module: spawning with exec errors reported, running a command
// to completion with a timeout, and supervising a long-lived child with restart back-off.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "orch/status.h"

namespace orch::cri {

struct SpawnOptions {
  int stdin_fd = -1;   // -1 = /dev/null
  int stdout_fd = -1;  // -1 = /dev/null
  int stderr_fd = -1;  // -1 = same as stdout
  // SIGKILL the child when the thread that spawned it ends (PR_SET_PDEATHSIG): a crashed orch
  // leaves no containerd behind. Spawn from a thread that lives as long as the child should.
  bool die_with_parent = true;
};

// fork + exec of argv[0] (an absolute path) in a new session, with the signal mask and SIGPIPE
// reset (orch blocks its stop signals and may ignore SIGPIPE; children must not inherit that).
// Returns the pid once exec has succeeded; kUnavailable with the errno text if it failed.
// The caller must waitpid the child.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& options);

struct CommandResult {
  int exit_code = 0;   // 128+N when killed by signal N
  std::string output;  // stdout and stderr interleaved; the last 64 KiB
};

// Runs argv to completion, collecting its output; `stdin_fd` (-1 = /dev/null) is its input.
// A command still running after `timeout` is killed and kUnavailable returned. A non-zero exit
// is not an error here: look at exit_code.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout, int stdin_fd = -1);

// Keeps one child process running: starts it, and when it dies restarts it after a back-off
// that doubles from `min` to `max` (reset once a child has lived longer than `max`). All methods
// are thread-safe; Start and Stop are called once each, from the same owner.
class ProcessSupervisor {
 public:
  struct Options {
    std::string name;  // for logs: "containerd"
    std::vector<std::string> argv;
    std::string log_file;  // stdout and stderr, appended
    std::chrono::milliseconds backoff_min{500};
    std::chrono::milliseconds backoff_max{std::chrono::seconds(30)};
  };

  explicit ProcessSupervisor(Options options);
  ~ProcessSupervisor();  // Stop with a short grace
  ProcessSupervisor(const ProcessSupervisor&) = delete;
  ProcessSupervisor& operator=(const ProcessSupervisor&) = delete;

  // Starts the supervising thread and the first child; fails if that child cannot be executed.
  Status Start();
  // SIGTERM to the child, SIGKILL after `grace`; no restarts afterwards. Blocks until the child
  // is reaped and the thread joined. Idempotent.
  void Stop(std::chrono::milliseconds grace);

  pid_t pid() const;   // -1 while no child runs
  int starts() const;  // children started so far

 private:
  void Loop();
  Result<pid_t> Launch();

  const Options options_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // signalled on stop requests and child exits
  pid_t pid_ = -1;              // guarded by mu_
  int starts_ = 0;              // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
};

}  // namespace orch::cri
