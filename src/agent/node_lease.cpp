// Node Lease renewal (node_lease.h).
#include "node_lease.h"

#include <chrono>

#include "orch/timestamps.h"

namespace orch::agent {

Status NodeLease::Renew(const std::string& node_uid) {
  const std::string now = NowMicroTime();
  auto fill = [&](json& lease) {
    lease["spec"]["holderIdentity"] = node_name_;
    lease["spec"]["leaseDurationSeconds"] = kNodeLeaseDurationSeconds;
    lease["spec"]["renewTime"] = now;
    if (!node_uid.empty()) {
      lease["metadata"]["ownerReferences"] = json::array(
          {{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node_name_}, {"uid", node_uid}}});
    }
  };
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (lease_.is_null()) {
      auto got = client_.Get(resources::kLeases, kNodeLeaseNamespace, node_name_);
      if (got.ok()) {
        lease_ = std::move(*got);
      } else if (got.status().code() == StatusCode::kNotFound) {
        json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                      {"kind", "Lease"},
                      {"metadata", {{"name", node_name_}, {"namespace", kNodeLeaseNamespace}}}};
        fill(lease);
        auto created = client_.Create(resources::kLeases, kNodeLeaseNamespace, lease);
        if (created.ok()) {
          lease_ = std::move(*created);
          return Status::Ok();
        }
        if (created.status().code() != StatusCode::kAlreadyExists) return created.status();
        continue;
      } else {
        return got.status();
      }
    }
    json lease = lease_;
    fill(lease);
    auto updated = client_.Update(resources::kLeases, kNodeLeaseNamespace, lease);
    if (updated.ok()) {
      lease_ = std::move(*updated);
      return Status::Ok();
    }
    lease_ = nullptr;  // stale or gone: read it again
    if (updated.status().code() != StatusCode::kConflict &&
        updated.status().code() != StatusCode::kNotFound) {
      return updated.status();
    }
  }
  return Conflict("the node lease kept changing");
}

}  // namespace orch::agent
