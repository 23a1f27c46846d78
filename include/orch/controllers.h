// The controller manager of `orch server`: one control loop per kind (ReplicaSet, Deployment,
// Job, ...), each a Component with its own work queue, meeting the others only in the API.
// With several servers, only the holder of the controllers' Lease runs them (src/server).
#pragma once

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "orch/api_client.h"
#include "orch/component.h"
#include "orch/events.h"
#include "orch/informer.h"

namespace orch {

// What every controller is built from. The references outlive the controllers.
struct ControllerContext {
  ApiClient& client;
  InformerFactory& informers;
  EventRecorder& events;
  std::string cluster_cidr = "10.42.0.0/16";  // node pod CIDRs are carved from it
  int node_cidr_mask = 24;
  int workers = 2;  // worker threads per controller
  // How long a node's kubelet may stay silent before the node is unreachable
  // (--node-monitor-grace-period).
  std::chrono::milliseconds node_monitor_grace_period = std::chrono::seconds(40);
  // orch's --data-dir: the local-path provisioner's volumes live in <data_dir>/storage.
  std::string data_dir = "/var/lib/orch";
};

// A controller's Start registers its informer handlers and starts its workers, which wait for
// the informers to sync before the first reconcile (a partial cache would make a ReplicaSet
// create pods it already has). Stop shuts its queue down and joins its workers.
using ControllerFactory = std::unique_ptr<Component> (*)(ControllerContext& context);

struct ControllerEntry {
  const char* name;  // as in kube-controller-manager's --controllers: "replicaset", "deployment"
  ControllerFactory make;
};

// Every controller orch has, in start order.
const std::vector<ControllerEntry>& AllControllers();

// The controllers of AllControllers() whose names are not in `disabled`.
std::vector<std::unique_ptr<Component>> NewControllers(ControllerContext& context,
                                                       const std::set<std::string>& disabled = {});

}  // namespace orch
