// The node's service proxy (orch's kube-proxy, iptables mode): turns Services and EndpointSlices
// into NAT rules so ClusterIPs, NodePorts, externalIPs and load balancer ports reach their
// endpoints. All rules live in orch's own chains (ORCH-*), written in one `iptables-restore
// --noflush` per sync.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "orch/component.h"
#include "orch/informer.h"
#include "orch/status.h"

namespace orch {

// The kernel side of the proxy, so the rule logic can be tested without root.
class Netfilter {
 public:
  virtual ~Netfilter() = default;

  // Feeds `rules` (iptables-restore format, one or more tables) to `iptables-restore --noflush`:
  // the whole text applies or none of it. Fails with iptables-restore's message.
  virtual Status Restore(const std::string& rules) = 0;
  // `iptables-save -t TABLE`: the table's chains and rules as text.
  virtual Result<std::string> Save(const std::string& table) = 0;
  // One chain's rules as "-A CHAIN ..." lines, as Save shows them (`iptables -t TABLE -S CHAIN`):
  // far cheaper than Save when the table is large. The default filters Save's output.
  virtual Result<std::string> SaveChain(const std::string& table, const std::string& chain);
  // Writes a value under /proc/sys (e.g. "net/ipv4/conf/all/route_localnet").
  virtual Status SetSysctl(const std::string& key, const std::string& value) = 0;
};

// iptables-restore/iptables-save from PATH (or /usr/sbin) and /proc/sys. Thread-safe.
std::unique_ptr<Netfilter> NewSystemNetfilter();

// ---------------------------------------------------------------------------------------------
// Rule generation, a pure function of the API objects (exposed for tests and benchmarks).

struct ProxyRulesInput {
  std::vector<ObjectPtr> services;  // v1 Services
  std::vector<ObjectPtr> slices;    // discovery.k8s.io/v1 EndpointSlices
  std::string node_name;            // endpoints on it are local (externalTrafficPolicy Local)
  // The node's pod CIDR: traffic from it is from local pods; traffic to a ClusterIP from
  // elsewhere (the node itself, 127.0.0.1) is masqueraded. Empty: unknown, no such rule.
  std::string local_pod_cidr;
  // This node's addresses (its Node's InternalIPs and ExternalIPs). orch's load balancer lists
  // the serving nodes in a Service's status.loadBalancer.ingress; a node among them (or any node
  // while this is empty) answers at the Service's port on all of its addresses, 127.0.0.1 too.
  std::vector<std::string> node_ips;
  // orch's chains that exist now, per table: chains not wanted any more are deleted.
  std::set<std::string> existing_nat_chains;
  std::set<std::string> existing_filter_chains;
  // Whether the jumps from the built-in chains to orch's were checked this time: then those not
  // in `existing_jumps` (keys from ParseSavedRules) are inserted.
  bool insert_jumps = false;
  std::set<std::string> existing_jumps;
  // What the previous successful restore left in place: a hash of each of orch's chains' rules,
  // by "table/chain" (ProxyRules::chain_hashes). A chain whose rules hash the same is left out
  // of the text (iptables-restore --noflush leaves chains it is not told about alone), so one
  // Service's change rewrites only its own chains; with nftables a restore costs about a
  // millisecond per rule it writes. Empty: every chain is written.
  std::map<std::string, uint64_t> written_chains;
};

struct ProxyRules {
  std::string text;                  // for iptables-restore --noflush: a *filter and a *nat table
  std::set<std::string> nat_chains;  // orch's chains after the restore
  std::set<std::string> filter_chains;
  size_t service_ports = 0;  // Service ports programmed
  size_t endpoints = 0;      // endpoint chains programmed
  // Every chain of orch's after the restore, by "table/chain": the next sync's written_chains.
  std::map<std::string, uint64_t> chain_hashes;
  size_t chains_written = 0;  // chains flushed and written by `text` ("" when nothing changed)
};

ProxyRules BuildProxyRules(const ProxyRulesInput& input);

// What iptables-save shows of orch in one table: its chains, and which of the jumps to them
// from the built-in chains are in place (opaque keys for ProxyRulesInput::existing_jumps).
struct ExistingRules {
  std::set<std::string> chains;
  std::set<std::string> jumps;
};
ExistingRules ParseSavedRules(const std::string& save_output, const std::string& table);

// The built-in chains that hold the jumps to orch's, as {table, chain}: what a check of the
// jumps reads (Netfilter::SaveChain) before ParseSavedRules.
std::vector<std::pair<std::string, std::string>> JumpSourceChains();

// The iptables-restore text that removes everything of orch's from the two tables, given what
// iptables-save shows of them ("" when nothing is there).
std::string CleanupRules(const std::string& nat_save, const std::string& filter_save);

// ---------------------------------------------------------------------------------------------
// The component.

struct ServiceProxyOptions {
  std::string node_name;
  // The node's pod CIDR as it is now ("" until the node has one); read at every sync.
  std::function<std::string()> local_pod_cidr;
  // A change triggers a sync at most this often (changes in between are coalesced).
  std::chrono::milliseconds min_sync_period{1000};
};

class ServiceProxy : public Component {
 public:
  // Asks for a sync soon: something the rules depend on outside the API changed (the node's pod
  // CIDR). Thread-safe; coalesced like the informers' changes.
  virtual void RequestSync() = 0;
};

// Start registers handlers on the Service and EndpointSlice informers of `informers` and on the
// informer of the Node `node_name` (metadata.name field selector, as the agent's own: for the
// node's addresses) (call it before the factory starts, or the handlers get the current state
// at once) and starts the sync
// thread, which waits for the informers' first sync, then writes the rules after every change.
// A failed sync is retried with back-off. Stop ends the thread and leaves the rules in place (a
// restarted agent takes them over; established connections keep their conntrack entries).
// `informers` and `netfilter` must outlive the proxy.
std::unique_ptr<ServiceProxy> NewServiceProxy(ServiceProxyOptions options,
                                              InformerFactory& informers, Netfilter& netfilter);

// Removes every chain and jump of orch's service proxy (`orch agent --cleanup`).
Status CleanupServiceProxy(Netfilter& netfilter);

}  // namespace orch
