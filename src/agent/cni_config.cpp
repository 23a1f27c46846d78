// The CNI config of the pod network (cni_config.h).
#include "cni_config.h"

#include <nlohmann/json.hpp>

#include "json_util.h"
#include "orch/files.h"
#include "orch/log.h"

namespace orch::agent {
namespace {

constexpr std::string_view kLog = "agent";

}  // namespace

std::string CniConfigList(const CniOptions& o) {
  // containerd adds the loopback network of every sandbox by itself (go-cni's WithLoNetwork),
  // so the list needs no loopback plugin.
  json bridge = {
      {"type", "bridge"},
      {"bridge", o.bridge},
      {"isGateway", true},
      // Masquerading of traffic leaving the cluster is the network proxy's business, not CNI's.
      {"ipMasq", false},
      {"hairpinMode", true},
      {"ipam",
       {{"type", "host-local"},
        {"ranges", json::array({json::array({{{"subnet", o.pod_cidr}}})})},
        {"routes", json::array({{{"dst", "0.0.0.0/0"}}})},
        {"dataDir", o.ipam_dir}}}};
  if (o.mtu > 0) bridge["mtu"] = o.mtu;
  json portmap = {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}, {"snat", true}};
  json list = {{"cniVersion", "1.0.0"},
               {"name", o.network_name},
               {"plugins", json::array({bridge, portmap})}};
  return list.dump(2) + "\n";
}

void PodNetwork::Watch(Informer& node_informer) {
  node_informer.AddHandler({[this](const ObjectPtr& node) { OnNode(*node); },
                            [this](const ObjectPtr&, const ObjectPtr& node) { OnNode(*node); },
                            nullptr});
}

std::string PodNetwork::pod_cidr() const {
  std::lock_guard lock(mu_);
  return pod_cidr_;
}

void PodNetwork::ReportWaiting() {
  if (ready_) return;
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (!waiting_since_) waiting_since_ = now;
    // A CIDR that arrives within moments (the usual case) is not worth a line.
    if (now - *waiting_since_ < std::chrono::seconds(5)) return;
    if (reported_ && now - last_report_ < std::chrono::minutes(1)) return;
    reported_ = true;
    last_report_ = now;
  }
  log::Info(kLog,
            "pods on the pod network wait for node {} to get a pod CIDR (spec.podCIDR) from the "
            "server's node IPAM controller",
            node_name_);
}

void PodNetwork::OnNode(const json& node) {
  if (Str(node, {"metadata", "name"}) != node_name_) return;
  std::string cidr = Str(node, {"spec", "podCIDR"});
  if (cidr.empty()) return;
  {
    std::lock_guard lock(mu_);
    if (cidr == pod_cidr_) return;
    CniOptions options;
    options.bridge = bridge_;
    options.pod_cidr = cidr;
    options.ipam_dir = paths_.ipam_dir;
    options.mtu = mtu_;
    Status s = MakeDirectories(paths_.cni_conf_dir, 0755);
    if (s.ok()) s = MakeDirectories(paths_.ipam_dir, 0700);
    if (s.ok()) s = WriteFileAtomic(paths_.cni_conf_file, CniConfigList(options), 0644);
    if (!s.ok()) {
      log::Error(kLog, "cannot write the CNI config: {}", s.message());
      return;
    }
    pod_cidr_ = cidr;
  }
  log::Info(kLog, "pod network: bridge {} on {} ({})", bridge_, cidr, paths_.cni_conf_file);
  ready_ = true;
  if (on_ready_) on_ready_();
}

}  // namespace orch::agent
