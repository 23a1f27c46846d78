// A throwaway single-member etcd (/usr/bin/etcd) on free loopback ports and a temporary data
// dir, for the etcd store's e2e test and the benchmarks; it dies with the process that made it.
#pragma once

#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "orch/status.h"

namespace orch::testing {

class EtcdProcess {
 public:
  // Starts etcd and waits until its client port accepts connections (it may still be electing
  // itself leader: OpenEtcdStore waits for that). Call Start and Restart from a thread that lives
  // as long as etcd should: the kernel kills etcd when the thread that forked it ends.
  //
  // `tls`, if set, serves clients over https with these PEM files and requires a client
  // certificate signed by tls->ca_file.
  struct Tls {
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
  };
  static Result<std::unique_ptr<EtcdProcess>> Start(const std::string& binary = "/usr/bin/etcd",
                                                    std::optional<Tls> tls = std::nullopt) {
    char dir_template[] = "/tmp/orch-etcd-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) return Unavailable("mkdtemp failed");
    auto etcd = std::unique_ptr<EtcdProcess>(new EtcdProcess(binary, dir_template));
    int client = FreeLoopbackPort();
    int peer = FreeLoopbackPort();
    if (client <= 0 || peer <= 0 || client == peer) return Unavailable("no free loopback port");
    etcd->client_port_ = client;
    etcd->tls_ = std::move(tls);
    etcd->peer_port_ = peer;
    Status s = etcd->Launch();
    if (!s.ok()) return s;
    return etcd;
  }

  ~EtcdProcess() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  std::string endpoint() const {
    return fmt::format("{}://127.0.0.1:{}", tls_ ? "https" : "http", client_port_);
  }
  int client_port() const { return client_port_; }
  // The etcd process, for benchmarks that read its memory and CPU time; -1 while stopped.
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }

  // Stops etcd and keeps its data for Restart: SIGTERM, then SIGKILL if it is not gone within
  // `grace` (etcd's graceful stop can wait long on open watch streams). A zero grace is a crash.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(3)) {
    StopChild(pid_, grace);
    pid_ = -1;
  }

  // Kills etcd as a crash would and starts it again on the same ports and data.
  Status Restart() {
    Stop(std::chrono::milliseconds(0));
    return Launch();
  }

 private:
  EtcdProcess(std::string binary, std::string dir)
      : binary_(std::move(binary)), dir_(std::move(dir)) {}

  static bool Accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    return ok;
  }

  Status Launch() {
    std::string client = endpoint();
    std::string peer = fmt::format("http://127.0.0.1:{}", peer_port_);
    // Default durability (fsync on every commit): benchmarks compare against etcd as deployed.
    std::vector<std::string> args = {binary_,
                                     "--name=orch-test",
                                     "--data-dir=" + dir_ + "/data",
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=orch-test=" + peer,
                                     "--initial-cluster-state=new",
                                     "--logger=zap",
                                     "--log-outputs=stderr"};
    if (tls_) {
      args.push_back("--cert-file=" + tls_->cert_file);
      args.push_back("--key-file=" + tls_->key_file);
      args.push_back("--trusted-ca-file=" + tls_->ca_file);
      args.push_back("--client-cert-auth");
    }
    std::string log_path = dir_ + "/etcd.log";
    auto pid = SpawnChild(std::move(args), log_path);
    if (!pid.ok()) return pid.status();
    pid_ = *pid;
    for (int i = 0; i < 200; ++i) {
      if (ChildExited(pid_)) {
        pid_ = -1;
        return Unavailable("etcd exited at start; see " + log_path);
      }
      if (Accepts(client_port_)) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Unavailable("etcd did not listen within 10 s; see " + log_path);
  }

  std::string binary_;
  std::string dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  std::optional<Tls> tls_;
  pid_t pid_ = -1;
};

}  // namespace orch::testing
