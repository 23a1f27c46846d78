// The pods/log, pods/exec, pods/attach and pods/portforward subresources: checks what upstream's
// API server checks (pod bound, container named and known, container started for logs), then
// hands the request to the node's agent through its link and copies bytes both ways.
#pragma once

#include <memory>
#include <string>

#include "http.h"
#include "node_links.h"
#include "resources.h"
#include "rest.h"

namespace orch::api {

class PodStreams {
 public:
  PodStreams(Rest& rest, NodeLinks& links) : rest_(rest), links_(links) {}

  // `subresource` is log, exec, attach or portforward; `pods` the pods resource type.
  void Serve(const Request& request, const ResourceType& pods, const std::string& ns,
             const std::string& name, const std::string& subresource,
             std::shared_ptr<ResponseWriter> writer);

 private:
  Rest& rest_;
  NodeLinks& links_;
};

// The request line and headers sent to the agent for `request`, re-targeted at `target` (a
// kubelet-style path). Credentials are not passed on. Exposed for tests.
std::string AgentRequestHead(const Request& request, const std::string& target,
                             const std::string& node);

}  // namespace orch::api
