// Where the node agent keeps its files under <data-dir>/agent: CNI config and IPAM state, pod
// folders (volumes, hosts files, termination messages) and the containers' log files.
#pragma once

#include <string>

namespace orch::agent {

struct AgentPaths {
  std::string agent_dir;      // <data>/agent
  std::string cni_conf_dir;   // <data>/agent/etc/cni/net.d (containerd's CNI conf_dir)
  std::string cni_conf_file;  // cni_conf_dir/10-orch.conflist
  std::string ipam_dir;       // <data>/agent/cni/networks: host-local's leases, not /var/lib/cni
  std::string pods_dir;       // <data>/agent/pods: one folder per pod uid
  std::string logs_dir;       // <data>/agent/pod-logs: one folder per pod, as /var/log/pods

  explicit AgentPaths(const std::string& data_dir)
      : agent_dir(data_dir + "/agent"),
        cni_conf_dir(agent_dir + "/etc/cni/net.d"),
        cni_conf_file(cni_conf_dir + "/10-orch.conflist"),
        ipam_dir(agent_dir + "/cni/networks"),
        pods_dir(agent_dir + "/pods"),
        logs_dir(agent_dir + "/pod-logs") {}

  std::string PodDir(const std::string& uid) const { return pods_dir + "/" + uid; }
  // <ns>_<name>_<uid>, the kubelet's naming, so log tools that parse it keep working.
  std::string PodLogDir(const std::string& ns, const std::string& name,
                        const std::string& uid) const {
    return logs_dir + "/" + ns + "_" + name + "_" + uid;
  }
};

}  // namespace orch::agent
