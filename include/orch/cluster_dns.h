// Cluster DNS served by the node agent (orch's CoreDNS): names of Services and their endpoints
// under the cluster domain, answered from the Service and EndpointSlice informers; other names
// are forwarded to the node's resolvers through a small cache. UDP and TCP on one Asio thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "orch/component.h"
#include "orch/informer.h"

namespace orch {

struct ClusterDnsOptions {
  std::string listen_address;  // an address of this node, e.g. the node IP
  uint16_t port = 53;          // 0: any free port (tests)
  std::string cluster_domain = "cluster.local";
  // Resolvers for names outside the cluster ("IP" or "IP:PORT"); empty: none, such names get
  // SERVFAIL at once. NodeResolvers() gives the node's.
  std::vector<std::string> upstreams;
  std::chrono::milliseconds upstream_timeout{1500};  // per upstream and attempt
  size_t cache_entries = 1024;                       // forwarded answers kept
  std::chrono::seconds max_cache_ttl{30};
};

class ClusterDns : public Component {
 public:
  // The UDP and TCP port actually listened on (useful with port 0). Valid after Start.
  virtual uint16_t port() const = 0;
};

// Start registers handlers on the Service and EndpointSlice informers of `informers` (before or
// after the factory starts) and binds UDP and TCP on listen_address:port; it fails when either
// bind fails. Until both informers have synced, cluster names get SERVFAIL (never a false
// NXDOMAIN). Stop closes the sockets and ends the thread; idempotent. `informers` must outlive
// the component.
std::unique_ptr<ClusterDns> NewClusterDns(ClusterDnsOptions options, InformerFactory& informers);

// The node's resolvers as a pod with dnsPolicy Default would get them, minus loopback stubs:
// the nameservers of `resolv_conf` outside 127.0.0.0/8 and ::1; if none are left, those of
// `systemd_resolv_conf` (systemd-resolved's /run/systemd/resolve/resolv.conf, which lists the
// real upstreams behind its 127.0.0.53 stub), likewise filtered. Pure.
std::vector<std::string> NodeResolvers(std::string_view resolv_conf,
                                       std::string_view systemd_resolv_conf);

}  // namespace orch
