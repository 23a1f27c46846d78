// Child processes of the runtime module: spawn errors, commands with output and timeouts, and
// the supervisor's restart and stop (with real, tiny /bin/sh children).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "process.h"

using Catch::Contains;
using orch::cri::ProcessSupervisor;
using orch::cri::RunCommand;
using orch::cri::Spawn;
using namespace std::chrono_literals;

namespace {

// Waits (up to 20 s, generous for loaded machines) until `done` holds.
bool Eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/orch-process-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

bool Alive(pid_t pid) {
  return ::kill(pid, 0) == 0;
}

}  // namespace

TEST_CASE("Spawn reports a command that cannot be executed") {
  auto pid = Spawn({"/nonexistent/binary"}, {});
  REQUIRE_FALSE(pid.ok());
  CHECK_THAT(pid.status().message(), Contains("cannot run /nonexistent/binary"));
  CHECK_THAT(pid.status().message(), Contains("No such file"));
}

TEST_CASE("RunCommand collects output and the exit code") {
  auto r = RunCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, 20s);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 3);
  CHECK_THAT(r->output, Contains("out\n"));
  CHECK_THAT(r->output, Contains("err\n"));

  auto killed = RunCommand({"/bin/sh", "-c", "kill -KILL $$"}, 20s);
  REQUIRE(killed.ok());
  CHECK(killed->exit_code == 128 + SIGKILL);
}

TEST_CASE("RunCommand keeps only the tail of a large output") {
  auto r = RunCommand(
      {"/bin/sh", "-c",
       "i=0; while [ $i -lt 3000 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done"},
      20s);
  REQUIRE(r.ok());
  CHECK(r->output.size() <= 64 * 1024);
  CHECK_THAT(r->output, Contains("line-2999-"));
  CHECK_THAT(r->output, !Contains("line-0-"));
}

TEST_CASE("RunCommand feeds stdin from a file descriptor") {
  TempDir dir;
  std::string input = dir.path + "/in";
  std::ofstream(input) << "from the file\n";
  int fd = ::open(input.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  auto r = RunCommand({"/bin/cat"}, 20s, fd);
  ::close(fd);
  REQUIRE(r.ok());
  CHECK(r->output == "from the file\n");
}

TEST_CASE("RunCommand kills a command that runs past its timeout") {
  auto r = RunCommand({"/bin/sleep", "30"}, 200ms);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == orch::StatusCode::kUnavailable);
  CHECK_THAT(r.status().message(), Contains("did not finish"));
}

TEST_CASE("The supervisor restarts a child that dies, and stops it for good") {
  TempDir dir;
  ProcessSupervisor::Options o;
  o.name = "test-child";
  o.argv = {"/bin/sleep", "1000"};
  o.log_file = dir.path + "/child.log";
  o.backoff_min = 10ms;
  o.backoff_max = 100ms;
  ProcessSupervisor supervisor(o);
  REQUIRE(supervisor.Start().ok());
  pid_t first = supervisor.pid();
  REQUIRE(first > 0);
  CHECK(supervisor.starts() == 1);

  ::kill(first, SIGKILL);
  REQUIRE(Eventually([&] { return supervisor.starts() == 2 && supervisor.pid() > 0; }));
  pid_t second = supervisor.pid();
  CHECK(second != first);
  CHECK(Alive(second));

  supervisor.Stop(5s);
  CHECK(supervisor.pid() == -1);
  CHECK_FALSE(Alive(second));  // reaped, not a zombie
  CHECK(supervisor.starts() == 2);
}

TEST_CASE("The supervisor keeps restarting a child that exits at once") {
  TempDir dir;
  ProcessSupervisor::Options o;
  o.name = "test-crasher";
  o.argv = {"/bin/sh", "-c", "echo run >> " + dir.path + "/runs; exit 1"};
  o.log_file = dir.path + "/child.log";
  o.backoff_min = 5ms;
  o.backoff_max = 20ms;
  ProcessSupervisor supervisor(o);
  REQUIRE(supervisor.Start().ok());
  REQUIRE(Eventually([&] { return supervisor.starts() >= 4; }));
  supervisor.Stop(5s);
  int starts = supervisor.starts();
  std::this_thread::sleep_for(50ms);
  CHECK(supervisor.starts() == starts);  // no restart after Stop
}

TEST_CASE("The supervisor kills a child that ignores SIGTERM after the grace") {
  TempDir dir;
  ProcessSupervisor::Options o;
  o.name = "test-stubborn";
  // An ignored signal stays ignored across exec.
  o.argv = {"/bin/sh", "-c", "trap '' TERM; echo ready; exec /bin/sleep 1000"};
  o.log_file = dir.path + "/child.log";
  ProcessSupervisor supervisor(o);
  REQUIRE(supervisor.Start().ok());
  pid_t pid = supervisor.pid();
  REQUIRE(Eventually([&] {
    std::ifstream log(o.log_file);
    std::string line;
    return std::getline(log, line) && line == "ready";
  }));
  supervisor.Stop(200ms);
  CHECK_FALSE(Alive(pid));
}

TEST_CASE("The supervisor fails to start a binary that does not exist") {
  TempDir dir;
  ProcessSupervisor::Options o;
  o.name = "test-missing";
  o.argv = {"/nonexistent/containerd"};
  o.log_file = dir.path + "/child.log";
  ProcessSupervisor supervisor(o);
  orch::Status s = supervisor.Start();
  CHECK_FALSE(s.ok());
  CHECK(supervisor.pid() == -1);
}
