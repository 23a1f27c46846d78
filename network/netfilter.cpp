// The real Netfilter of the service proxy (include/orch/service_proxy.h): iptables-restore and
// iptables-save run as child processes (input through a memfd, output through a pipe), sysctls
// written under /proc/sys.
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "orch/node_network.h"
#include "orch/service_proxy.h"

extern char** environ;

namespace orch {
namespace {

// An fd closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string FindTool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string path = dir + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return name;
}

struct Output {
  int exit_code = -1;
  std::string text;  // stdout and stderr together
};

// Runs argv with `input` on stdin; waits for it and returns what it printed.
Result<Output> Run(const std::vector<std::string>& argv, const std::string& input) {
  Fd in(::memfd_create("orch-iptables", MFD_CLOEXEC));
  if (in.get() < 0) return Unavailable(fmt::format("memfd_create: {}", strerror(errno)));
  for (size_t done = 0; done < input.size();) {
    ssize_t n = ::write(in.get(), input.data() + done, input.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable(fmt::format("write: {}", strerror(errno)));
    done += static_cast<size_t>(n);
  }
  ::lseek(in.get(), 0, SEEK_SET);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    return Unavailable(fmt::format("pipe: {}", strerror(errno)));
  Fd read_end(pipe_fds[0]);
  Fd write_end(pipe_fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  // Nothing else of orch's (listening sockets, the datastore) leaks into the child.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);  // the role blocks SIGTERM in every thread
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  write_end.reset();
  if (rc != 0) return Unavailable(fmt::format("cannot run {}: {}", argv[0], strerror(rc)));

  Output out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.text.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class SystemNetfilter : public Netfilter {
 public:
  SystemNetfilter() : restore_(FindTool("iptables-restore")), save_(FindTool("iptables-save")) {}

  Status Restore(const std::string& rules) override {
    // -w: wait for the xtables lock another tool (a CNI plugin) may hold.
    auto out = Run({restore_, "--noflush", "-w", "5"}, rules);
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) {
      return Unavailable(
          fmt::format("iptables-restore (exit {}): {}", out->exit_code, Trimmed(out->text)));
    }
    return Status::Ok();
  }

  Result<std::string> Save(const std::string& table) override {
    auto out = Run({save_, "-t", table}, "");
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) {
      return Unavailable(
          fmt::format("iptables-save (exit {}): {}", out->exit_code, Trimmed(out->text)));
    }
    return std::move(out->text);
  }

  Status SetSysctl(const std::string& key, const std::string& value) override {
    std::string path = "/proc/sys/" + key;
    std::ofstream file(path);
    file << value << "\n";
    file.flush();
    if (!file) return Unavailable(fmt::format("cannot write {}", path));
    return Status::Ok();
  }

 private:
  const std::string restore_;
  const std::string save_;
};

// orch's routes carry this protocol number (unassigned in iproute2's rt_protos).
constexpr char kRouteProto[] = "199";

class SystemRouteTable : public RouteTable {
 public:
  SystemRouteTable() : ip_(FindTool("ip")) {}

  Result<std::vector<PodRoute>> List() override {
    auto out = Run({ip_, "-4", "route", "show", "proto", kRouteProto}, "");
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) {
      return Unavailable(fmt::format("ip route show: {}", Trimmed(out->text)));
    }
    // "10.42.1.0/24 via 192.168.5.2 dev eth0 "
    std::vector<PodRoute> routes;
    std::istringstream lines(out->text);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream words(line);
      PodRoute route;
      std::string word;
      words >> route.cidr;
      while (words >> word) {
        if (word == "via") words >> route.via;
      }
      if (!route.cidr.empty() && !route.via.empty()) routes.push_back(std::move(route));
    }
    return routes;
  }

  Status Replace(const PodRoute& route) override {
    return Ip({"route", "replace", route.cidr, "via", route.via, "proto", kRouteProto});
  }

  Status Delete(const PodRoute& route) override {
    return Ip({"route", "del", route.cidr, "via", route.via, "proto", kRouteProto});
  }

 private:
  Status Ip(std::vector<std::string> args) {
    args.insert(args.begin(), ip_);
    auto out = Run(args, "");
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) {
      std::string command;
      for (size_t i = 1; i < args.size(); ++i) command += " " + args[i];
      return Unavailable(fmt::format("ip{}: {}", command, Trimmed(out->text)));
    }
    return Status::Ok();
  }

  const std::string ip_;
};

}  // namespace

std::unique_ptr<RouteTable> NewSystemRouteTable() {
  return std::make_unique<SystemRouteTable>();
}

std::unique_ptr<Netfilter> NewSystemNetfilter() {
  return std::make_unique<SystemNetfilter>();
}

}  // namespace orch
