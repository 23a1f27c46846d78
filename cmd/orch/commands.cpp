// What each parsed command does: the roles are handed their config; version, kubectl,
// check-config and datastore snapshots are small enough to live here.
#include <fmt/format.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli.h"
#include "orch/host.h"
#include "orch/log.h"
#include "orch/node_network.h"
#include "orch/roles.h"
#include "orch/service_proxy.h"
#include "orch/store.h"
#include "orch/version.h"

namespace orch {
namespace {

int RunVersion() {
  fmt::print("orch version {} ({})\nkubernetes {}\n", kVersion, kGitCommit, kKubernetesVersion);
  return 0;
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

int RunKubectl(const Invocation& inv) {
  auto host = NewSystemHost();
  std::string kubectl = host->FindExecutable("kubectl");
  if (kubectl.empty()) {
    PrintError(
        Unavailable("kubectl is not installed (not found in PATH): install kubectl, then "
                    "retry"));
    return 1;
  }
  // A kubectl that is a link to orch itself would exec us forever.
  if (RealPath(kubectl) == RealPath("/proc/self/exe")) {
    PrintError(Unavailable(kubectl + " is orch itself: install the real kubectl"));
    return 1;
  }
  // Like k3s: the admin kubeconfig only when the user has no kubeconfig of their own.
  const char* home = std::getenv("HOME");
  bool has_own = std::getenv("KUBECONFIG") != nullptr ||
                 (home && host->PathExists(std::string(home) + "/.kube/config"));
  if (!has_own) ::setenv("KUBECONFIG", inv.server.write_kubeconfig.c_str(), 1);

  std::vector<char*> argv;
  std::string name = "kubectl";
  argv.push_back(name.data());
  std::vector<std::string> args = inv.kubectl_args;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  ::execv(kubectl.c_str(), argv.data());
  PrintError(Unavailable(fmt::format("cannot run {}: {}", kubectl, std::strerror(errno))));
  return 1;
}

int RunCheckConfig() {
  auto host = NewSystemHost();
  int failed = 0, warned = 0, passed = 0;
  for (const HostCheck& check : CheckHost(*host)) {
    const char* label = "PASS";
    if (check.outcome == HostCheck::Outcome::kWarn) {
      label = "WARN";
      ++warned;
    } else if (check.outcome == HostCheck::Outcome::kFail) {
      label = "FAIL";
      ++failed;
    } else {
      ++passed;
    }
    fmt::print("{}  {:<18} {}\n", label, check.name, check.detail);
  }
  fmt::print("check-config: {} passed, {} warnings, {} failed\n", passed, warned, failed);
  return failed == 0 ? 0 : 1;
}

int RunSnapshot(const Invocation& inv) {
  bool save = inv.command == Command::kSnapshotSave;
  Status s = save ? SaveSnapshot(inv.store, inv.snapshot_file)
                  : RestoreSnapshot(inv.store, inv.snapshot_file);
  if (!s.ok()) {
    PrintError(s);
    return 1;
  }
  if (save) {
    fmt::print("saved a snapshot of the datastore in {} to {}\n", inv.store.data_dir,
               inv.snapshot_file);
  } else {
    fmt::print("restored the datastore in {} from {}\n", inv.store.data_dir, inv.snapshot_file);
  }
  return 0;
}

// `orch agent --cleanup` / `orch server --cleanup`: what kube-proxy --cleanup does.
int RunCleanup() {
  auto netfilter = NewSystemNetfilter();
  if (Status s = CleanupServiceProxy(*netfilter); !s.ok()) {
    PrintError(s);
    return 1;
  }
  if (Status s = CleanupPodRoutes(*NewSystemRouteTable(), NewSystemOverlay().get()); !s.ok()) {
    PrintError(s);
    return 1;
  }
  fmt::print(
      "removed the service proxy's and the node network's iptables rules, pod routes and VXLAN "
      "device\n");
  return 0;
}

log::Level LevelFor(bool debug) {
  return debug ? log::Level::kDebug : log::Level::kInfo;
}

}  // namespace

void PrintError(const Status& status) {
  std::string line = fmt::format("orch: error: {}\n", status.message());
  std::fwrite(line.data(), 1, line.size(), stderr);
}

int RunCommand(Invocation& inv) {
  switch (inv.command) {
    case Command::kHelp:
      std::fwrite(inv.help_text.data(), 1, inv.help_text.size(), stdout);
      return 0;
    case Command::kVersion:
      return RunVersion();
    case Command::kKubectl:
      return RunKubectl(inv);
    case Command::kCheckConfig:
      return RunCheckConfig();
    case Command::kSnapshotSave:
    case Command::kSnapshotRestore:
      return RunSnapshot(inv);
    case Command::kDatastoreMigrate:
      return RunDatastoreMigrate(inv.migrate);
    case Command::kServer:
    case Command::kAgent:
      break;
  }

  if (inv.cleanup) return RunCleanup();
  bool is_server = inv.command == Command::kServer;
  log::SetLevel(LevelFor(is_server ? inv.server.debug : inv.agent.debug));
  auto host = NewSystemHost();
  if (Status s = ResolveHostDefaults(inv, *host); !s.ok()) {
    PrintError(s);
    return 1;
  }
  if (inv.print_config) {
    std::string text = is_server ? FormatConfig(inv.server) : FormatConfig(inv.agent);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  if (!inv.config_file.empty()) log::Info("main", "read config file {}", inv.config_file);
  return is_server ? RunServer(inv.server) : RunAgent(inv.agent);
}

}  // namespace orch
