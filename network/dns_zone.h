// The cluster's DNS names, built from Services and EndpointSlices (the Kubernetes DNS
// specification: A, SRV and PTR records under the cluster domain), and how a query is answered
// from them. Immutable once built, so the DNS thread answers without locks.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dns_message.h"
#include "orch/informer.h"

namespace orch::dns {

inline constexpr uint32_t kClusterTtl = 5;  // seconds, as CoreDNS's kubernetes plugin

class Zone {
 public:
  // `services` are v1 Services, `slices` discovery.k8s.io/v1 EndpointSlices; `domain` is the
  // cluster domain ("cluster.local").
  static std::shared_ptr<const Zone> Build(const std::vector<ObjectPtr>& services,
                                           const std::vector<ObjectPtr>& slices,
                                           const std::string& domain);

  // The answer to a question about `name` (lowercase, no final dot) of `type`, or nullopt when
  // the name is not the cluster's and must be forwarded (reverse names of addresses the cluster
  // does not know are forwarded too).
  std::optional<Answer> Lookup(const std::string& name, uint16_t type) const;

  size_t names() const { return nodes_.size(); }

 private:
  struct Srv {
    uint16_t port;
    uint16_t weight;
    std::string target;
  };
  struct Node {
    std::vector<uint32_t> a;
    std::vector<Srv> srv;
    std::string cname;  // ExternalName Services
  };

  Answer Negative(uint8_t rcode) const;
  std::optional<Answer> LookupCluster(const std::string& name, uint16_t type) const;
  std::optional<Answer> LookupReverse(const std::string& name, uint16_t type) const;

  std::string domain_;
  std::unordered_map<std::string, Node> nodes_;
  std::unordered_map<uint32_t, std::string> ptr_;
  std::unordered_set<std::string> namespaces_;  // those with Services
};

}  // namespace orch::dns
