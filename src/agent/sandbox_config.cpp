// Pod sandbox configuration (sandbox_config.h).
#include "sandbox_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "runtime_labels.h"

namespace orch::agent {
namespace {

constexpr size_t kMaxNameservers = 3;
constexpr size_t kMaxSearches = 32;

void AppendUnique(std::vector<std::string>& to, const std::string& value) {
  if (!value.empty() && std::find(to.begin(), to.end(), value) == to.end()) to.push_back(value);
}

// Options by name ("ndots:5" is named "ndots"); later ones replace earlier ones.
std::vector<std::string> MergeOptions(const std::vector<std::string>& base,
                                      const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  std::map<std::string, size_t> index;
  for (const auto* list : {&base, &extra}) {
    for (const auto& option : *list) {
      std::string name = option.substr(0, option.find(':'));
      auto [it, inserted] = index.try_emplace(name, out.size());
      if (inserted) {
        out.push_back(option);
      } else {
        out[it->second] = option;
      }
    }
  }
  return out;
}

cri::Protocol ProtocolOf(const std::string& p) {
  if (p == "UDP") return cri::Protocol::kUdp;
  if (p == "SCTP") return cri::Protocol::kSctp;
  return cri::Protocol::kTcp;
}

}  // namespace

cri::DnsConfig ParseResolvConf(std::string_view text) {
  cri::DnsConfig out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    if (auto hash = line.find_first_of("#;"); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string keyword, word;
    if (!(words >> keyword)) continue;
    if (keyword == "nameserver") {
      if (words >> word) out.servers.push_back(word);
    } else if (keyword == "search" || keyword == "domain") {
      // The last search/domain line wins, as in the resolver.
      out.searches.clear();
      while (words >> word) out.searches.push_back(word);
    } else if (keyword == "options") {
      while (words >> word) out.options.push_back(word);
    }
  }
  return out;
}

bool IsHostNetwork(const json& pod) {
  return Bool(pod, {"spec", "hostNetwork"});
}

cri::DnsConfig PodDnsConfig(const json& pod, const SandboxContext& ctx) {
  std::string policy = Str(pod, {"spec", "dnsPolicy"}, "ClusterFirst");
  bool cluster =
      policy == "ClusterFirstWithHostNet" || (policy == "ClusterFirst" && !IsHostNetwork(pod));
  if (cluster && ctx.cluster_dns.empty()) cluster = false;  // no cluster DNS: the node's
  cri::DnsConfig dns;
  if (policy == "None") {
    // Only what dnsConfig says.
  } else if (cluster) {
    std::string ns = Str(pod, {"metadata", "namespace"}, "default");
    const std::string& domain = ctx.cluster_domain;
    dns.servers = {ctx.cluster_dns};
    dns.searches = {ns + ".svc." + domain, "svc." + domain, domain};
    for (const auto& s : ctx.host_dns.searches) AppendUnique(dns.searches, s);
    dns.options = {"ndots:5"};
  } else {
    dns = ctx.host_dns;
  }
  const json& extra = At(pod, {"spec", "dnsConfig"});
  if (extra.is_object()) {
    for (const json& s : Array(extra, {"nameservers"})) {
      if (s.is_string()) AppendUnique(dns.servers, s.get<std::string>());
    }
    for (const json& s : Array(extra, {"searches"})) {
      if (s.is_string()) AppendUnique(dns.searches, s.get<std::string>());
    }
    std::vector<std::string> options;
    for (const json& o : Array(extra, {"options"})) {
      std::string name = Str(o, {"name"});
      if (name.empty()) continue;
      const json& value = At(o, {"value"});
      options.push_back(value.is_string() ? name + ":" + value.get<std::string>() : name);
    }
    dns.options = MergeOptions(dns.options, options);
  }
  if (dns.servers.size() > kMaxNameservers) dns.servers.resize(kMaxNameservers);
  if (dns.searches.size() > kMaxSearches) dns.searches.resize(kMaxSearches);
  return dns;
}

std::pair<std::string, std::string> PodHostnameAndDomain(const json& pod,
                                                         const std::string& cluster_domain) {
  std::string hostname = Str(pod, {"spec", "hostname"});
  if (hostname.empty()) hostname = Str(pod, {"metadata", "name"});
  if (hostname.size() > 63) {
    hostname.resize(63);
    while (!hostname.empty() && (hostname.back() == '-' || hostname.back() == '.')) {
      hostname.pop_back();
    }
  }
  std::string domain;
  std::string subdomain = Str(pod, {"spec", "subdomain"});
  if (!subdomain.empty()) {
    domain =
        fmt::format("{}.{}.svc.{}", subdomain, Str(pod, {"metadata", "namespace"}), cluster_domain);
  }
  return {hostname, domain};
}

cri::NamespaceOptions PodNamespaces(const json& pod) {
  cri::NamespaceOptions ns;
  if (IsHostNetwork(pod)) ns.network = cri::NamespaceMode::kNode;
  if (Bool(pod, {"spec", "hostPID"})) {
    ns.pid = cri::NamespaceMode::kNode;
  } else if (Bool(pod, {"spec", "shareProcessNamespace"})) {
    ns.pid = cri::NamespaceMode::kPod;
  }
  if (Bool(pod, {"spec", "hostIPC"})) ns.ipc = cri::NamespaceMode::kNode;
  return ns;
}

cri::PodSandboxConfig BuildSandboxConfig(const json& pod, const SandboxContext& ctx,
                                         uint32_t attempt) {
  cri::PodSandboxConfig c;
  c.name = Str(pod, {"metadata", "name"});
  c.uid = Str(pod, {"metadata", "uid"});
  c.namespace_ = Str(pod, {"metadata", "namespace"});
  c.attempt = attempt;
  c.hostname =
      // A host-network pod shares the node's UTS namespace: it keeps the node's name (the runtime
      // refuses to set one there).
      IsHostNetwork(pod) ? "" : PodHostnameAndDomain(pod, ctx.cluster_domain).first;
  c.log_directory = fmt::format("{}/{}_{}_{}", ctx.log_root, c.namespace_, c.name, c.uid);
  c.dns = PodDnsConfig(pod, ctx);
  if (!IsHostNetwork(pod)) {
    for (const char* list : {"initContainers", "containers"}) {
      for (const json& container : Array(pod, {"spec", list})) {
        for (const json& port : Array(container, {"ports"})) {
          int64_t host_port = Int(port, {"hostPort"});
          if (host_port <= 0) continue;
          cri::PortMapping m;
          m.protocol = ProtocolOf(Str(port, {"protocol"}, "TCP"));
          m.container_port = static_cast<int32_t>(Int(port, {"containerPort"}));
          m.host_port = static_cast<int32_t>(host_port);
          m.host_ip = Str(port, {"hostIP"});
          c.port_mappings.push_back(m);
        }
      }
    }
  }
  const json& labels = At(pod, {"metadata", "labels"});
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) {
      if (v.is_string()) c.labels[k] = v.get<std::string>();
    }
  }
  c.labels[kPodNameLabel] = c.name;
  c.labels[kPodNamespaceLabel] = c.namespace_;
  c.labels[kPodUidLabel] = c.uid;
  c.labels[kNodeLabel] = ctx.node_name;
  const json& annotations = At(pod, {"metadata", "annotations"});
  if (annotations.is_object()) {
    for (const auto& [k, v] : annotations.items()) {
      if (v.is_string()) c.annotations[k] = v.get<std::string>();
    }
  }
  c.security.namespaces = PodNamespaces(pod);
  const json& psc = At(pod, {"spec", "securityContext"});
  if (const json& u = At(psc, {"runAsUser"}); u.is_number_integer()) {
    c.security.run_as_user = u.get<int64_t>();
  }
  if (const json& g = At(psc, {"runAsGroup"}); g.is_number_integer()) {
    c.security.run_as_group = g.get<int64_t>();
  }
  for (const json& g : Array(psc, {"supplementalGroups"})) {
    if (g.is_number_integer()) c.security.supplemental_groups.push_back(g.get<int64_t>());
  }
  if (const json& fs = At(psc, {"fsGroup"}); fs.is_number_integer()) {
    c.security.supplemental_groups.push_back(fs.get<int64_t>());
  }
  for (const char* list : {"initContainers", "containers"}) {
    for (const json& container : Array(pod, {"spec", list})) {
      if (Bool(container, {"securityContext", "privileged"})) c.security.privileged = true;
    }
  }
  for (const json& s : Array(psc, {"sysctls"})) {
    std::string name = Str(s, {"name"});
    if (!name.empty()) c.sysctls[name] = Str(s, {"value"});
  }
  if (ctx.pod_cgroups) c.cgroup_parent = PodCgroupParent(pod, ctx.cgroup_driver);
  return c;
}

std::string HostsFileContent(const json& pod, const std::vector<std::string>& pod_ips,
                             const std::string& cluster_domain) {
  auto [hostname, domain] = PodHostnameAndDomain(pod, cluster_domain);
  std::string out =
      "# Kubernetes-managed hosts file.\n"
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\n"
      "fe00::0\tip6-mcastprefix\n"
      "fe00::1\tip6-allnodes\n"
      "fe00::2\tip6-allrouters\n";
  for (const auto& ip : pod_ips) {
    if (domain.empty()) {
      out += fmt::format("{}\t{}\n", ip, hostname);
    } else {
      out += fmt::format("{}\t{}.{}\t{}\n", ip, hostname, domain, hostname);
    }
  }
  const json& aliases = Array(pod, {"spec", "hostAliases"});
  if (!aliases.empty()) {
    out += "\n# Entries added by HostAliases.\n";
    for (const json& alias : aliases) {
      std::string line = Str(alias, {"ip"});
      for (const json& name : Array(alias, {"hostnames"})) {
        if (!name.is_string()) continue;
        line += '\t';
        line += name.get<std::string>();
      }
      out += line + "\n";
    }
  }
  return out;
}

}  // namespace orch::agent
