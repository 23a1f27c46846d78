// The service proxy component (include/orch/service_proxy.h): informer changes wake one sync
// thread, which at most once per min_sync_period rewrites the chains that changed, retrying
// failures with a full write.
#include "orch/service_proxy.h"

#include <fmt/format.h>

#include "orch/log.h"
#include "sync_loop.h"

namespace orch {
namespace {

constexpr std::string_view kLog = "proxy";
// How often the jumps from the built-in chains are checked again (someone may flush them) when
// the proxy syncs anyway; a sync is never started just for this.
constexpr std::chrono::seconds kJumpCheckPeriod(60);
// How often every chain is written again, changed or not (someone may have edited one); each
// sync in between writes only the chains whose rules changed. A full write of 1 000 Services
// with 10 endpoints each takes tens of seconds with iptables-nft.
constexpr std::chrono::hours kFullWritePeriod(1);
constexpr std::chrono::seconds kMaxRetryDelay(30);
// A sync slower than this is logged at info level (every sync is at debug level).
constexpr std::chrono::seconds kSlowSync(1);

const ResourceRef kServicesRef{"", "v1", "services"};
const ResourceRef kSlicesRef{"discovery.k8s.io", "v1", "endpointslices"};

std::string ResourceVersionOf(const ObjectPtr& object) {
  auto metadata = object->find("metadata");
  if (metadata == object->end()) return "";
  return metadata->value("resourceVersion", "");
}

// The node's InternalIPs and ExternalIPs: where orch's load balancer finds it in a Service's
// status.
std::vector<std::string> NodeIps(const ObjectPtr& node) {
  std::vector<std::string> out;
  if (!node) return out;
  auto status = node->find("status");
  if (status == node->end() || !status->is_object()) return out;
  auto addresses = status->find("addresses");
  if (addresses == status->end() || !addresses->is_array()) return out;
  for (const auto& a : *addresses) {
    if (!a.is_object()) continue;
    std::string type = a.value("type", "");
    if (type == "InternalIP" || type == "ExternalIP") out.push_back(a.value("address", ""));
  }
  return out;
}

class ServiceProxyImpl : public ServiceProxy {
 public:
  ServiceProxyImpl(ServiceProxyOptions options, InformerFactory& informers, Netfilter& netfilter)
      : options_(std::move(options)),
        informers_(informers),
        netfilter_(netfilter),
        services_(informers.For(kServicesRef)),
        slices_(informers.For(kSlicesRef)),
        node_(options_.node_name.empty() ? nullptr
                                         : &informers.For(resources::kNodes, "", "",
                                                          "metadata.name=" + options_.node_name)) {}
  ~ServiceProxyImpl() override { Stop(); }

  std::string_view Name() const override { return "proxy"; }

  Status Start() override {
    // NodePorts on 127.0.0.1 need the kernel to route loopback-addressed packets elsewhere.
    if (Status s = netfilter_.SetSysctl("net/ipv4/conf/all/route_localnet", "1"); !s.ok()) {
      log::Warn(kLog, "NodePorts will not answer on 127.0.0.1: {}", s.message());
    }
    auto changed = [this](const ObjectPtr&) { RequestSync(); };
    auto updated = [this](const ObjectPtr& old_object, const ObjectPtr& object) {
      if (ResourceVersionOf(old_object) != ResourceVersionOf(object)) RequestSync();
    };
    services_.AddHandler({changed, updated, changed});
    slices_.AddHandler({changed, updated, changed});
    if (node_ != nullptr) {
      // Heartbeats update the node often; only its addresses matter here.
      auto node_changed = [this](const ObjectPtr& old_node, const ObjectPtr& node) {
        if (NodeIps(old_node) != NodeIps(node)) RequestSync();
      };
      node_->AddHandler({changed, node_changed, changed});
    }
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }
  void RequestSync() override { loop_.Request(); }

 private:
  Status Sync() {
    auto started = std::chrono::steady_clock::now();
    ProxyRulesInput input;
    input.services = services_.List();
    input.slices = slices_.List();
    input.node_name = options_.node_name;
    if (node_ != nullptr) input.node_ips = NodeIps(node_->Get("", options_.node_name));
    if (options_.local_pod_cidr) input.local_pod_cidr = options_.local_pod_cidr();
    input.existing_nat_chains = nat_chains_;
    input.existing_filter_chains = filter_chains_;
    // First sync, or after a failure: what is in the tables, read whole (slow with big tables).
    const bool read_tables = read_tables_;
    if (read_tables) {
      for (const char* table : {"nat", "filter"}) {
        auto saved = netfilter_.Save(table);
        if (!saved.ok()) return saved.status();
        ExistingRules existing = ParseSavedRules(*saved, table);
        auto& chains = std::string_view(table) == "nat" ? input.existing_nat_chains
                                                        : input.existing_filter_chains;
        chains.insert(existing.chains.begin(), existing.chains.end());
        input.existing_jumps.insert(existing.jumps.begin(), existing.jumps.end());
      }
      input.insert_jumps = true;
    } else if (started - last_jump_check_ > kJumpCheckPeriod) {
      // Now and then: only the built-in chains holding the jumps.
      for (const auto& [table, chain] : JumpSourceChains()) {
        auto saved = netfilter_.SaveChain(table, chain);
        if (!saved.ok()) return saved.status();
        ExistingRules existing = ParseSavedRules(*saved, table);
        input.existing_jumps.insert(existing.jumps.begin(), existing.jumps.end());
      }
      input.insert_jumps = true;
    }
    if (read_tables || started - last_full_write_ > kFullWritePeriod) {
      written_chains_.clear();
      last_full_write_ = started;
    }
    // Moved: if this sync fails, the next one writes every chain.
    input.written_chains = std::move(written_chains_);
    written_chains_.clear();
    ProxyRules rules = BuildProxyRules(input);
    auto built = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    if (!rules.text.empty()) {
      if (Status s = netfilter_.Restore(rules.text); !s.ok()) return s;
    }
    if (input.insert_jumps) {
      read_tables_ = false;
      last_jump_check_ = started;
    }
    nat_chains_ = std::move(rules.nat_chains);
    filter_chains_ = std::move(rules.filter_chains);
    written_chains_ = std::move(rules.chain_hashes);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    log::Debug(kLog,
               "synced {} service ports, {} endpoints in {} ms ({} chains written, {} ms to read "
               "the tables and build the rules)",
               rules.service_ports, rules.endpoints, took.count(), rules.chains_written,
               built.count());
    if (!logged_first_ || took > kSlowSync) {
      logged_first_ = true;
      log::Info(kLog, "rules written: {} service ports, {} endpoints ({} ms, {} chains written)",
                rules.service_ports, rules.endpoints, took.count(), rules.chains_written);
    }
    return Status::Ok();
  }

  const ServiceProxyOptions options_;
  InformerFactory& informers_;
  Netfilter& netfilter_;
  Informer& services_;
  Informer& slices_;
  Informer* node_;  // null without a node name

  // Belongs to the sync thread.
  std::set<std::string> nat_chains_;
  std::set<std::string> filter_chains_;
  std::map<std::string, uint64_t> written_chains_;  // ProxyRules::chain_hashes of the last restore
  bool read_tables_ = true;
  bool logged_first_ = false;
  std::chrono::steady_clock::time_point last_jump_check_{};
  std::chrono::steady_clock::time_point last_full_write_{};

  // Last: its thread uses the members above and is stopped before they go.
  SyncLoop loop_{
      {.log_name = std::string(kLog),
       .min_period = options_.min_sync_period,
       .retry_floor = std::chrono::milliseconds(500),
       .retry_max = kMaxRetryDelay,
       .ready = [this](std::chrono::milliseconds wait) { return informers_.WaitForSync(wait); }},
      [this] { return Sync(); },
      [this] { read_tables_ = true; }};  // someone may have removed our chains
};

}  // namespace

std::unique_ptr<ServiceProxy> NewServiceProxy(ServiceProxyOptions options,
                                              InformerFactory& informers, Netfilter& netfilter) {
  return std::make_unique<ServiceProxyImpl>(std::move(options), informers, netfilter);
}

Status CleanupServiceProxy(Netfilter& netfilter) {
  auto nat = netfilter.Save("nat");
  if (!nat.ok()) return nat.status();
  auto filter = netfilter.Save("filter");
  if (!filter.ok()) return filter.status();
  std::string rules = CleanupRules(*nat, *filter);
  if (rules.empty()) return Status::Ok();
  return netfilter.Restore(rules);
}

}  // namespace orch
