// Builders of Node and Pod JSON and of small clusters for the scheduler's unit tests
// (scheduler_filters_test, scheduler_scores_test, scheduler_queue_test).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cluster_view.h"
#include "node_info.h"

namespace orch::sched::testing {

using nlohmann::json;

// A Ready node with the given allocatable cpu, memory and pod count.
inline json MakeNode(const std::string& name, const std::string& cpu = "4",
                     const std::string& memory = "8Gi", int pods = 110) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
          {"spec", json::object()},
          {"status",
           {{"allocatable", {{"cpu", cpu}, {"memory", memory}, {"pods", std::to_string(pods)}}},
            {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
}

// A pending pod with one container requesting cpu and memory (empty: no request).
inline json MakePod(const std::string& name, const std::string& cpu = "",
                    const std::string& memory = "", const std::string& ns = "default") {
  json requests = json::object();
  if (!cpu.empty()) requests["cpu"] = cpu;
  if (!memory.empty()) requests["memory"] = memory;
  json container = {{"name", "c"}, {"image", "busybox"}};
  if (!requests.empty()) container["resources"] = {{"requests", requests}};
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"uid", "uid-" + ns + "-" + name}}},
          {"spec", {{"containers", json::array({container})}}},
          {"status", {{"phase", "Pending"}}}};
}

inline json& LabelsOf(json& object) {
  return object["metadata"]["labels"];
}

// Nodes and the pods bound to them, as the scheduler cache would hold them.
class Cluster {
 public:
  void AddNode(const json& node) {
    NodePtr view = ParseNode(node);
    nodes_[view->name].SetNode(view);
  }
  // Binds `pod` to `node` and accounts it there.
  PodPtr AddPod(json pod, const std::string& node) {
    pod["spec"]["nodeName"] = node;
    PodPtr view = ParsePod(pod);
    nodes_[node].AddPod(view);
    return view;
  }
  NodeInfo& Node(const std::string& name) { return nodes_.at(name); }

  ClusterState State() const {
    ClusterState state;
    for (const auto& [name, info] : nodes_) {
      if (info.node()) state.nodes.push_back(&info);
    }
    state.namespaces = &namespaces;
    state.nominated = &nominated;
    return state;
  }

  NamespaceLabels namespaces;
  NominatedPods nominated;

 private:
  std::map<std::string, NodeInfo> nodes_;
};

}  // namespace orch::sched::testing
