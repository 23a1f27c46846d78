// Registration and heartbeats of the node: creates (or updates) the Node at start, then every
// 10 s renews its Lease and writes its status when something changed (at least every 5 min).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "machine.h"
#include "node_lease.h"
#include "node_object.h"
#include "orch/api_client.h"
#include "orch/runtime.h"

namespace orch::agent {

class NodeStatusReporter {
 public:
  // `heartbeat` is how often the Lease is renewed (10 s; tests pass less).
  NodeStatusReporter(ApiClient& client, cri::Runtime& runtime, Machine& machine, NodeIdentity id,
                     std::string data_dir, std::function<bool()> network_ready,
                     std::chrono::milliseconds heartbeat = std::chrono::seconds(10))
      : client_(client),
        runtime_(runtime),
        machine_(machine),
        id_(std::move(id)),
        data_dir_(std::move(data_dir)),
        network_ready_(std::move(network_ready)),
        heartbeat_(heartbeat),
        lease_(client, id_.name) {}
  ~NodeStatusReporter() { Stop(); }
  NodeStatusReporter(const NodeStatusReporter&) = delete;
  NodeStatusReporter& operator=(const NodeStatusReporter&) = delete;

  // Creates the Node, or updates an existing one with the agent's labels and taints, and writes
  // its first status. Retries for up to `patience` while the API is unavailable.
  Status Register(std::chrono::seconds patience);
  // Starts the heartbeat thread.
  void Start();
  // Asks for a status check soon (the pod network became ready, ...). Thread-safe.
  void Poke();
  void Stop();

  const MachineInfo& machine_info() const { return info_; }
  // Allocatable amounts, for resourceFieldRef defaults.
  int64_t allocatable_memory() const;
  int64_t allocatable_ephemeral() const;

 private:
  NodeFacts GatherFacts();
  Status UpdateStatus(bool force);
  void Loop();

  ApiClient& client_;
  cri::Runtime& runtime_;
  Machine& machine_;
  const NodeIdentity id_;
  const std::string data_dir_;
  std::function<bool()> network_ready_;
  const std::chrono::milliseconds heartbeat_;
  NodeLease lease_;
  MachineInfo info_;             // read at Register
  FilesystemStats nodefs_;       // read at Register
  std::string runtime_version_;  // read at Register

  // Owned by the heartbeat thread after Start.
  std::string node_uid_;
  json last_status_;
  std::chrono::steady_clock::time_point last_write_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  bool poked_ = false;     // guarded by mu_
  std::thread thread_;
};

}  // namespace orch::agent
