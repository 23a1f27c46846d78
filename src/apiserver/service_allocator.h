// ClusterIP and NodePort allocation for Services, as an admission plugin. Each allocated
// address or port is one datastore key (/registry/ranges/...), created with create-if-absent,
// so two API servers on one datastore never hand out the same value.
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

  // Releases allocations whose Service no longer exists (after crashes, or deletions that
  // bypassed admission). `services` lists every Service's "ns/name".
  void Repair(const std::vector<std::string>& services);

  static std::string IpKey(const std::string& ip);
  static std::string PortKey(int port);

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
  void Release(const std::vector<std::string>& keys);
  static std::vector<std::string> KeysOf(const json& service);

  Store& store_;
  Cidr cidr_;
  std::mutex mu_;
  std::mt19937_64 random_;                            // guarded by mu_
  std::map<const json*, std::vector<std::string>> pending_;  // by admitted object; guarded by mu_
};

}  // namespace orch::api
