// The node agent (orch's kubelet): registers its Node, keeps it healthy, and runs the pods bound
// to it in containerd through CRI. Embedded in `orch server` (in-process API client) and the whole
// of `orch agent --join` (HTTPS client with the node's certificate).
#pragma once

#include <memory>
#include <string>

#include "orch/api_client.h"
#include "orch/component.h"
#include "orch/config.h"

namespace orch {

struct NodeAgentOptions {
  // The server role's embedded agent labels its node as a control-plane node.
  bool control_plane = false;
  // Where the agent's API client reaches the API server, for pods' KUBERNETES_SERVICE_* and the
  // `kubernetes` Service endpoints the agent does not own; informational.
  std::string server_url;
  // The Linux bridge of the node's pod network (CNI bridge plugin). Tests that run several
  // nodes, or next to a real cluster, give each its own.
  std::string cni_bridge = "orch0";
  // The node link (include/orch/node_link.h) that serves logs, exec, attach and port-forward:
  // the API server's URL, the cluster CA (PEM) and the node's client certificate and key.
  // Empty link_url: no link (those requests get 503 from the API server).
  std::string link_url;
  std::string link_ca_pem;
  std::string link_cert_pem;
  std::string link_key_pem;
  // The agent is the process's main job (`orch agent`): it gives free heap back to the kernel
  // every few seconds and, once started, drops the start-up pages of code from its mappings
  // (src/agent/process_memory.h). Off in `orch server`, whose memory is the server's to manage.
  bool manage_process_memory = false;
};

// For `orch agent`, first thing in main's role code, before any thread starts: at most two
// malloc arenas in the process (glibc's default, 8 per core, keeps free memory in each).
void TuneAgentProcessMemory();

// Start: starts (or connects to, with --container-runtime-endpoint) containerd, imports the pause
// image and <data-dir>/agent/images, registers the Node, then runs pods; returns once the Node is
// registered, or with the reason it cannot be. Stop: stops the pod workers and heartbeats but
// leaves pods' containers running (a restarted agent adopts them), then stops containerd.
// `client` must outlive the agent.
std::unique_ptr<Component> NewNodeAgent(const AgentConfig& config, ApiClient& client,
                                        NodeAgentOptions options = {});

}  // namespace orch
