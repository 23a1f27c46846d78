// ClusterIP and NodePort allocation for Services, and the node ports of orch's load balancer, as
// an admission plugin. Each allocated address or port is one datastore key (/registry/ranges/...),
// created with create-if-absent, so two API servers on one datastore never hand out the same value.
#pragma once

#include <mutex>
#include <random>

#include "orch/net.h"
#include "rest.h"

namespace orch::api {

class ServiceAllocator : public AdmissionPlugin {
 public:
  static constexpr int kNodePortMin = 30000;
  static constexpr int kNodePortMax = 32767;

  ServiceAllocator(Store& store, Cidr service_cidr);

  std::optional<ApiError> Admit(AdmissionRequest& request) override;
  void Committed(const AdmissionRequest& request) override;
  void Aborted(const AdmissionRequest& request) override;

  // Makes the books match `services` (every Service in the datastore): releases what no Service
  // holds any more (after crashes, or deletions that bypassed admission) and records what a
  // Service holds without a key (written before the key existed, e.g. by an older orch).
  void Repair(const std::vector<json>& services);

  static std::string IpKey(const std::string& ip);
  static std::string PortKey(int port);
  // orch's load balancer answers on every node at a LoadBalancer Service's `port`, so each
  // port/protocol belongs to one Service ("TCP", 80 -> .../serviceloadbalancerports/TCP/80).
  static std::string LoadBalancerPortKey(const std::string& protocol, int port);
  // Whether orch's load balancer serves `service` (type LoadBalancer, no loadBalancerClass): the
  // rule of the servicelb controller, which this must match.
  static bool UsesNodeLoadBalancer(const json& service);
  // The load balancer ports of `service` in the NodePort range: they are held as node ports as
  // well, so no NodePort lands on them and they land on no NodePort.
  static std::vector<int> LoadBalancerNodePorts(const json& service);

 private:
  // Allocations made by one admission, undone if its write fails.
  struct Pending {
    std::vector<std::string> keys;
  };
  std::optional<ApiError> AllocateIp(json& spec, const std::string& owner, const std::string& name,
                                     std::vector<std::string>& taken);
  std::optional<ApiError> AllocateNodePorts(json& spec, const json* old_spec,
                                            const std::string& owner, const std::string& name,
                                            std::vector<std::string>& taken);
  // Creates `key` for `owner` (adding it to `taken`), or, in a dry run, only looks: "" when the
  // key is free or now ours, else its holder.
  Result<std::string> Claim(const std::string& key, const std::string& owner, bool dry_run,
                            std::vector<std::string>& taken);
  std::optional<ApiError> ReserveLoadBalancerPorts(const json& service, const json* old,
                                                   bool dry_run, std::vector<std::string>& taken);
  void Release(const std::vector<std::string>& keys);
  static std::vector<std::string> KeysOf(const json& service);

  Store& store_;
  Cidr cidr_;
  std::mutex mu_;
  std::mt19937_64 random_;                            // guarded by mu_
  std::map<const json*, std::vector<std::string>> pending_;  // by admitted object; guarded by mu_
};

}  // namespace orch::api
