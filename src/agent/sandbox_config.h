// A pod's CRI sandbox as the kubelet describes it: identity, hostname, DNS (by dnsPolicy and
// dnsConfig), hostPort mappings, labels, namespaces and pod-level security; plus the managed
// /etc/hosts. Pure functions of the pod and the node's settings.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "json_util.h"
#include "orch/runtime.h"
#include "pod_cgroups.h"

namespace orch::agent {

struct SandboxContext {
  std::string node_name;
  std::string cluster_dns;  // "" = no cluster DNS: ClusterFirst falls back to the node's
  std::string cluster_domain = "cluster.local";
  cri::DnsConfig host_dns;  // the node's resolv.conf
  std::string log_root;     // the folder holding every pod's log folder
  // Pod-level cgroups (pod_cgroups.h) as the sandbox's cgroup_parent; off = the runtime's
  // default parent.
  bool pod_cgroups = false;
  CgroupDriver cgroup_driver = CgroupDriver::kCgroupfs;
};

// nameserver / search / options lines of a resolv.conf (comments and unknown lines ignored).
cri::DnsConfig ParseResolvConf(std::string_view text);

// The resolver configuration of the pod, by dnsPolicy (ClusterFirst, ClusterFirstWithHostNet,
// Default, None) merged with spec.dnsConfig as upstream merges them.
cri::DnsConfig PodDnsConfig(const json& pod, const SandboxContext& ctx);

// The pod's host name (spec.hostname or the pod name, at most 63 characters) and, with
// spec.subdomain, its domain "<subdomain>.<ns>.svc.<cluster domain>".
std::pair<std::string, std::string> PodHostnameAndDomain(const json& pod,
                                                         const std::string& cluster_domain);

bool IsHostNetwork(const json& pod);

// The namespaces a pod's sandbox and containers share (hostNetwork/hostPID/hostIPC,
// shareProcessNamespace).
cri::NamespaceOptions PodNamespaces(const json& pod);

cri::PodSandboxConfig BuildSandboxConfig(const json& pod, const SandboxContext& ctx,
                                         uint32_t attempt);

// The kubelet-managed /etc/hosts of a pod on the pod network: localhost entries, the pod's own
// name on its IPs, and spec.hostAliases.
std::string HostsFileContent(const json& pod, const std::vector<std::string>& pod_ips,
                             const std::string& cluster_domain);

}  // namespace orch::agent
