// The requests the API server sends an agent over a node link stream (include/orch/node_link.h):
// kubelet-style paths (/containerLogs, /exec, /attach, /portForward) with the client's query.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orch/node_link.h"

namespace orch::agent {

// Query parameters, decoded; a name may repeat (exec's `command`).
class QueryParams {
 public:
  static QueryParams Parse(std::string_view raw);
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
  // Go's strconv.ParseBool truths, as upstream reads boolean parameters.
  bool IsTrue(const std::string& name) const;

 private:
  std::multimap<std::string, std::string> values_;
};

struct StreamRequest {
  link::Head head;
  std::string method;
  std::string kind;  // containerLogs, exec, attach, portForward
  std::string ns, pod, uid, container;
  QueryParams query;
};

// Parses the head of a request the server sent; nullopt when it is not one of the four kinds
// with the path segments each needs.
std::optional<StreamRequest> ParseStreamRequest(std::string_view head_text);

}  // namespace orch::agent
