// The node agent component (include/orch/agent.h): containerd, the CRI client, the node's
// registration and heartbeats, the pod network config, and the pods, wired in start order.
#include "orch/agent.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "agent_paths.h"
#include "cni_config.h"
#include "housekeeping.h"
#include "image_puller.h"
#include "kubelet_args.h"
#include "machine.h"
#include "node_status.h"
#include "object_source.h"
#include "orch/cluster_dns.h"
#include "orch/events.h"
#include "orch/files.h"
#include "orch/informer.h"
#include "orch/ingress.h"
#include "orch/log.h"
#include "orch/node_network.h"
#include "orch/runtime.h"
#include "orch/service_proxy.h"
#include "pod_manager.h"
#include "pod_worker.h"
#include "sandbox_config.h"
#include "stream_server.h"
#include "volumes.h"

namespace orch {
namespace {

using agent::AgentPaths;

constexpr std::string_view kLog = "agent";
// How long Start waits for the API to accept the Node (a joining agent's server may be
// restarting).
constexpr std::chrono::seconds kRegisterPatience(60);
constexpr int kPodWorkers = 4;

// The node's resolver config for pods with dnsPolicy Default; systemd-resolved's stub
// (127.0.0.53) is useless inside a pod, its upstream list is used instead.
cri::DnsConfig HostDns() {
  auto text = ReadFileToString("/etc/resolv.conf");
  cri::DnsConfig dns = agent::ParseResolvConf(text.ok() ? *text : "");
  if (dns.servers.size() == 1 && dns.servers.front() == "127.0.0.53") {
    auto resolved = ReadFileToString("/run/systemd/resolve/resolv.conf");
    if (resolved.ok()) dns = agent::ParseResolvConf(*resolved);
  }
  return dns;
}

class NodeAgent final : public Component {
 public:
  NodeAgent(const AgentConfig& config, ApiClient& client, NodeAgentOptions options)
      : config_(config), client_(client), options_(std::move(options)), paths_(config.data_dir) {}
  ~NodeAgent() override { Stop(); }

  std::string_view Name() const override { return "agent"; }

  Status Start() override {
    Status s = StartAll();
    if (!s.ok()) Stop();
    return s;
  }

  void Stop() override {
    if (streams_) streams_->Stop();
    streams_.reset();
    housekeeping_.reset();
    if (pods_) pods_->Stop();
    if (reporter_) reporter_->Stop();
    if (proxy_) proxy_->Stop();
    if (ingress_) ingress_->Stop();
    if (dns_) dns_->Stop();
    if (node_network_) node_network_->Stop();
    if (informers_) informers_->Stop();
    if (events_) events_->Stop();
    {
      std::lock_guard lock(pods_mu_);
      pods_.reset();
    }
    worker_context_.reset();
    pod_cgroups_.reset();
    images_.reset();
    volumes_.reset();
    tokens_.reset();
    objects_.reset();
    reporter_.reset();
    network_.reset();
    proxy_.reset();
    ingress_.reset();
    dns_.reset();
    node_network_.reset();
    routes_.reset();
    overlay_.reset();
    netfilter_.reset();
    informers_.reset();
    events_.reset();
    runtime_.reset();
    if (containerd_) containerd_->Stop();
    containerd_.reset();
  }

 private:
  Status StartAll() {
    std::vector<std::string> ignored;
    auto kubelet = agent::ParseKubeletArgs(config_.kubelet_args, &ignored);
    if (!kubelet.ok()) return kubelet.status();
    for (const auto& arg : ignored) log::Warn(kLog, "--kubelet-arg {}: not used by orch", arg);
    for (const auto& [dir, mode] : {std::pair{paths_.agent_dir, 0700},
                                    {paths_.pods_dir, 0750},
                                    {paths_.logs_dir, 0755},
                                    {paths_.cni_conf_dir, 0755}}) {
      if (Status s = MakeDirectories(dir, static_cast<mode_t>(mode)); !s.ok()) return s;
    }
    std::string endpoint = config_.container_runtime_endpoint;
    if (endpoint.empty()) {
      cri::ContainerdOptions options;
      options.data_dir = config_.data_dir;
      options.cni_conf_dir = paths_.cni_conf_dir;
      options.debug = config_.debug;
      containerd_ = cri::NewContainerd(options);
      if (Status s = containerd_->Start(); !s.ok()) {
        containerd_.reset();
        return s;
      }
      endpoint = containerd_->endpoint();
    } else {
      log::Info(kLog, "using the container runtime at {} (images are not imported into it)",
                endpoint);
    }
    cri::CriClientOptions cri_options;
    cri_options.endpoint = endpoint;
    auto runtime = cri::NewCriClient(cri_options);
    if (!runtime.ok()) return runtime.status();
    runtime_ = std::move(*runtime);
    if (auto version = runtime_->GetVersion(); !version.ok()) {
      return Unavailable(
          fmt::format("container runtime at {}: {}", endpoint, version.status().message()));
    }

    machine_ = agent::NewSystemMachine();
    events_ = EventRecorder::Create(client_, "kubelet", config_.node_name);
    // Nothing on the node reads managedFields (an update without them keeps the stored ones):
    // each pod, node, Service and EndpointSlice is kept without them, as upstream's components
    // do with their informers' transform.
    InformerFactoryOptions informer_options;
    informer_options.drop_managed_fields = true;
    informers_ = InformerFactory::Create(client_, informer_options);

    // Pods get the node interface's MTU, less the overlay's headers with vxlan.
    int pod_mtu = 0;
    if (auto mtu = PodMtu(config_.flannel_backend, config_.node_ip); mtu.ok()) {
      pod_mtu = *mtu;
    } else {
      log::Warn(kLog, "pods get the default MTU: {}", mtu.status().message());
    }
    network_ = std::make_unique<agent::PodNetwork>(
        paths_, config_.node_name, options_.cni_bridge, [this] { OnNetworkReady(); }, pod_mtu);
    network_->Watch(
        informers_->For(resources::kNodes, "", "", "metadata.name=" + config_.node_name));
    if (!config_.disable_kube_proxy) {
      // The service proxy (network/): its informers start with the agent's below.
      netfilter_ = NewSystemNetfilter();
      ServiceProxyOptions proxy_options;
      proxy_options.node_name = config_.node_name;
      proxy_options.local_pod_cidr = [this] { return network_->pod_cidr(); };
      proxy_ = NewServiceProxy(std::move(proxy_options), *informers_, *netfilter_);
      if (Status s = proxy_->Start(); !s.ok()) {
        proxy_.reset();
        return s;
      }
    }

    if (Status s = StartNodeNetwork(); !s.ok()) return s;
    // Ingress on ports 80 and 443 (ingress/); it listens only while orch's IngressClass exists.
    ingress_ = NewIngressProxy({}, *informers_);
    if (Status s = ingress_->Start(); !s.ok()) {
      log::Warn(kLog, "no ingress proxy on this node: {}", s.message());
      ingress_.reset();
    }

    agent::NodeIdentity id;
    id.name = config_.node_name;
    id.ip = config_.node_ip;
    id.control_plane = options_.control_plane;
    id.labels = config_.node_labels;
    id.taints = config_.node_taints;
    reporter_ = std::make_unique<agent::NodeStatusReporter>(
        client_, *runtime_, *machine_, id, config_.data_dir, [this] {
          if (network_->ready()) return true;
          network_->ReportWaiting();  // every 10 s here, logged once a minute
          return false;
        });
    if (Status s = reporter_->Register(kRegisterPatience); !s.ok()) return s;

    objects_ = std::make_unique<agent::InformerObjectSource>(
        *informers_, client_,
        [this](const std::string& kind, const std::string& ns, const std::string& name) {
          std::lock_guard lock(pods_mu_);
          if (pods_) pods_->EnqueueUsers(kind, ns, name);
        });
    tokens_ = std::make_unique<agent::TokenManager>(client_);
    volumes_ = std::make_unique<agent::VolumeManager>(paths_, *objects_, true, tokens_.get());
    images_ = std::make_unique<agent::ImagePuller>(*runtime_, *events_, *objects_);

    const agent::MachineInfo& machine = reporter_->machine_info();
    agent::SandboxContext sandbox;
    sandbox.node_name = config_.node_name;
    sandbox.cluster_dns = config_.cluster_dns;
    sandbox.cluster_domain = config_.cluster_domain;
    sandbox.host_dns = HostDns();
    sandbox.log_root = paths_.logs_dir;
    sandbox.pod_cgroups = kubelet->cgroups_per_qos;
    sandbox.cgroup_driver = kubelet->cgroup_driver == "systemd" ? agent::CgroupDriver::kSystemd
                                                                : agent::CgroupDriver::kCgroupfs;
    // With systemd the runtime makes the slices itself; cgroupfs pods get theirs from the agent.
    if (sandbox.pod_cgroups && sandbox.cgroup_driver == agent::CgroupDriver::kCgroupfs) {
      pod_cgroups_ = std::make_unique<agent::PodCgroups>();
    }
    worker_context_ = std::make_unique<agent::PodWorkerContext>(agent::PodWorkerContext{
        config_.node_name, config_.node_ip, paths_, std::move(sandbox), *runtime_, client_,
        *events_, *objects_, *volumes_, *images_, machine.cpu_cores * 1000,
        reporter_->allocatable_memory(), reporter_->allocatable_ephemeral(),
        [this] { return NetworkReady(); }, nullptr, nullptr, pod_cgroups_.get()});
    Informer& pods =
        informers_->For(resources::kPods, "", "", "spec.nodeName=" + config_.node_name);
    {
      std::lock_guard lock(pods_mu_);
      pods_ = std::make_unique<agent::PodManager>(*worker_context_, pods, *objects_, kPodWorkers);
    }
    informers_->Start();
    reporter_->Start();
    pods_->Start();
    housekeeping_ = std::make_unique<agent::Housekeeping>(
        *runtime_, *kubelet,
        [this](const std::string& message) {
          events_->Record(
              {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", config_.node_name}}}},
              "Warning", "FreeDiskSpaceFailed", message);
        },
        options_.manage_process_memory);
    housekeeping_->Start();
    if (!options_.link_url.empty()) {
      auto streams = agent::StreamServer::Start(
          {options_.link_url, options_.link_ca_pem, options_.link_cert_pem, options_.link_key_pem,
           config_.node_name},
          *runtime_);
      if (!streams.ok()) return streams.status();
      streams_ = std::move(*streams);
    }
    log::Info(kLog, "node {} running pods (runtime {}, data {})", config_.node_name, endpoint,
              paths_.agent_dir);
    return Status::Ok();
  }

  // Cluster DNS on the node IP, host-gw routes, egress masquerade and the redirect of the
  // cluster DNS address to this node's listener (network/). A DNS port already taken is logged,
  // not fatal: the node still runs pods.
  Status StartNodeNetwork() {
    if (!netfilter_) netfilter_ = NewSystemNetfilter();
    routes_ = NewSystemRouteTable();
    overlay_ = NewSystemOverlay();
    bool dns = false;
    // With the server's --disable dns the address is left to a DNS of the user's own.
    if (!config_.cluster_dns.empty() && !config_.disable_dns) {
      ClusterDnsOptions dns_options;
      dns_options.listen_address = config_.node_ip;
      dns_options.cluster_domain = config_.cluster_domain;
      auto resolv = ReadFileToString("/etc/resolv.conf");
      auto resolved = ReadFileToString("/run/systemd/resolve/resolv.conf");
      dns_options.upstreams =
          NodeResolvers(resolv.ok() ? *resolv : "", resolved.ok() ? *resolved : "");
      dns_ = NewClusterDns(std::move(dns_options), *informers_);
      if (Status s = dns_->Start(); !s.ok()) {
        log::Warn(kLog, "no cluster DNS on this node: {}", s.message());
        dns_.reset();
      } else {
        dns = true;
      }
    }
    NodeNetworkOptions options;
    options.node_name = config_.node_name;
    options.node_ip = config_.node_ip;
    options.backend = config_.flannel_backend;
    options.annotate = [this](const std::map<std::string, std::string>& annotations) {
      nlohmann::json patch = {{"metadata", {{"annotations", annotations}}}};
      return client_
          .Patch(resources::kNodes, "", config_.node_name, PatchType::kMerge, patch.dump())
          .status();
    };
    options.local_pod_cidr = [this] { return network_->pod_cidr(); };
    if (dns) {
      options.cluster_dns = config_.cluster_dns;
      options.dns_address = config_.node_ip;
      options.dns_port = dns_->port();
    }
    node_network_ =
        NewNodeNetwork(std::move(options), *informers_, *netfilter_, *routes_, overlay_.get());
    return node_network_->Start();
  }

  // The CNI config is written: containerd loads it within moments; pods waiting for the network
  // are queued again, and the node reports Ready.
  void OnNetworkReady() {
    cri_network_ready_ = false;
    if (reporter_) reporter_->Poke();
    if (proxy_) proxy_->RequestSync();  // rules that name the pod CIDR
    if (node_network_) node_network_->RequestSync();
    std::lock_guard lock(pods_mu_);
    if (pods_) pods_->EnqueueAll();
  }

  // The pod network is usable when the agent wrote the config and containerd loaded it.
  bool NetworkReady() {
    if (!network_ || !network_->ready()) return false;
    if (cri_network_ready_) return true;
    for (int i = 0; i < 20; ++i) {
      auto status = runtime_->GetRuntimeStatus();
      if (status.ok() && status->network_ready) {
        cri_network_ready_ = true;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  const AgentConfig& config_;
  ApiClient& client_;
  const NodeAgentOptions options_;
  const AgentPaths paths_;

  std::unique_ptr<cri::Containerd> containerd_;
  std::unique_ptr<cri::Runtime> runtime_;
  std::unique_ptr<agent::Machine> machine_;
  std::unique_ptr<EventRecorder> events_;
  std::unique_ptr<InformerFactory> informers_;
  std::unique_ptr<agent::PodNetwork> network_;
  std::unique_ptr<Netfilter> netfilter_;
  std::unique_ptr<ServiceProxy> proxy_;  // null with --disable-kube-proxy
  std::unique_ptr<IngressProxy> ingress_;
  std::unique_ptr<RouteTable> routes_;
  std::unique_ptr<Overlay> overlay_;  // the vxlan backend's device (removed with other backends)
  std::unique_ptr<ClusterDns> dns_;   // null when the DNS port could not be bound
  std::unique_ptr<NodeNetwork> node_network_;
  std::unique_ptr<agent::NodeStatusReporter> reporter_;
  std::unique_ptr<agent::InformerObjectSource> objects_;
  std::unique_ptr<agent::TokenManager> tokens_;  // before volumes_: they use it
  std::unique_ptr<agent::VolumeManager> volumes_;
  std::unique_ptr<agent::ImagePuller> images_;
  std::unique_ptr<agent::PodWorkerContext> worker_context_;
  std::atomic<bool> cri_network_ready_{false};
  std::mutex pods_mu_;  // guards pods_ against informer callbacks during start and stop
  std::unique_ptr<agent::PodManager> pods_;
  std::unique_ptr<agent::StreamServer> streams_;  // logs, exec, port-forward over the node link
  std::unique_ptr<agent::Housekeeping> housekeeping_;  // log rotation, image GC
  std::unique_ptr<agent::PodCgroups> pod_cgroups_;     // null: no pod cgroups made by the agent
};

}  // namespace

std::unique_ptr<Component> NewNodeAgent(const AgentConfig& config, ApiClient& client,
                                        NodeAgentOptions options) {
  return std::make_unique<NodeAgent>(config, client, std::move(options));
}

}  // namespace orch
