// The requests the API server sends an agent over a node link stream (include/orch/node_link.h):
// kubelet-style paths (/containerLogs, /exec, /attach, /portForward) with the client's query.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orch/node_link.h"
#include "orch/url_query.h"

namespace orch::agent {

struct StreamRequest {
  link::Head head;
  std::string method;
  std::string kind;  // containerLogs, exec, attach, portForward
  std::string ns, pod, uid, container;
  UrlQuery query;
};

// Parses the head of a request the server sent; nullopt when it is not one of the four kinds
// with the path segments each needs.
std::optional<StreamRequest> ParseStreamRequest(std::string_view head_text);

}  // namespace orch::agent
