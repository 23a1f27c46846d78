// A throwaway `orch server --disable-agent` for the benchmarks (api_bench, scheduler_bench): own
// temporary data dir, a free loopback port, admin kubeconfig read back as HTTPS client options.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../e2e/kubeconfig_credentials.h"
#include "child_process.h"
#include "orch/api_client.h"
#include "orch/status.h"

namespace orch::testing {

struct OrchServerOptions {
  std::string binary;               // the orch executable
  std::string name = "orch-bench";  // prefix of the temporary dir under /tmp
  // To restart a server on the same state: its dir (kept at the end; the log is appended to) and
  // port. By default a new temporary dir, removed at the end, and a free port.
  std::filesystem::path dir;
  int port = 0;
  std::vector<std::string> extra_args;  // appended, e.g. {"--datastore-endpoint", URL}
  std::string user_agent = "orch-bench";
  std::chrono::seconds timeout = std::chrono::seconds(60);  // until the kubeconfig is complete
};

class OrchServerProcess {
 public:
  // Starts `orch server --disable-agent` with its data dir, kubeconfig and log (server.log) in a
  // new temporary dir (or options.dir), and returns once the kubeconfig is complete. The API may
  // not answer yet: callers wait for what they need (a namespace, a ServiceAccount). Unavailable,
  // with the server's log, when it does not get that far. Like EtcdProcess, the server is killed
  // when the thread that started it ends, so start it from a thread that lives as long as it
  // should.
  static Result<std::unique_ptr<OrchServerProcess>> Start(const OrchServerOptions& options) {
    std::unique_ptr<OrchServerProcess> server;
    if (options.dir.empty()) {
      char tmpl[64];
      std::snprintf(tmpl, sizeof(tmpl), "/tmp/%s.XXXXXX", options.name.c_str());
      if (mkdtemp(tmpl) == nullptr) return Unavailable("mkdtemp failed");
      server.reset(new OrchServerProcess(tmpl, /*owns_dir=*/true));
    } else {
      server.reset(new OrchServerProcess(options.dir, /*owns_dir=*/false));
    }
    const int port = options.port > 0 ? options.port : FreeLoopbackPort();
    if (port <= 0) return Unavailable("no free loopback port");
    server->port_ = port;
    const std::string data = (server->dir_ / "data").string();
    const std::string kubeconfig = (server->dir_ / "kubeconfig").string();
    // A restart must wait for the new server's kubeconfig, not read the old one.
    std::error_code ec;
    std::filesystem::remove(kubeconfig, ec);
    const std::string log = server->LogPath();
    std::vector<std::string> args = {options.binary,
                                     "server",
                                     "--disable-agent",
                                     "--data-dir",
                                     data,
                                     "--https-listen-port",
                                     std::to_string(port),
                                     "--bind-address",
                                     "127.0.0.1",
                                     "--write-kubeconfig",
                                     kubeconfig};
    args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
    auto pid = SpawnChild(std::move(args), log);
    if (!pid.ok()) return pid.status();
    const pid_t child = *pid;
    server->pid_ = child;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      // The server writes the kubeconfig once its certificates exist; a half-written file reads
      // back with an empty server_url.
      server->client_options_ = KubeconfigCredentials(kubeconfig);
      if (!server->client_options_.server_url.empty()) {
        server->client_options_.user_agent = options.user_agent;
        return server;
      }
      if (ChildExited(child)) {
        server->pid_ = -1;
        return Unavailable("orch server exited at start:\n" + server->Log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Unavailable("orch server did not write its kubeconfig:\n" + server->Log());
  }

  // SIGTERM (the server stops its components in order), SIGKILL after 10 s; removes the dir
  // unless it was given in the options.
  ~OrchServerProcess() {
    StopChild(pid_, std::chrono::seconds(10));
    if (owns_dir_) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  OrchServerProcess(const OrchServerProcess&) = delete;
  OrchServerProcess& operator=(const OrchServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::filesystem::path& dir() const { return dir_; }
  int port() const { return port_; }
  // The admin's credentials and the server's URL, with the user agent asked for.
  const HttpsClientOptions& client_options() const { return client_options_; }

  // A new HTTPS client (its own connections) as the admin.
  Result<std::unique_ptr<ApiClient>> NewClient() const {
    return NewHttpsApiClient(client_options_);
  }

  // What the server has printed so far, for error messages.
  std::string Log() const {
    std::ifstream in(LogPath());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  OrchServerProcess(std::filesystem::path dir, bool owns_dir)
      : dir_(std::move(dir)), owns_dir_(owns_dir) {}

  std::string LogPath() const { return (dir_ / "server.log").string(); }

  std::filesystem::path dir_;
  bool owns_dir_ = true;
  int port_ = 0;
  pid_t pid_ = -1;
  HttpsClientOptions client_options_;
};

}  // namespace orch::testing
