// Leader election through a coordination.k8s.io/v1 Lease, as kube-controller-manager does: with
// several servers, only the holder of the Lease runs the scheduler and controllers.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "orch/api_client.h"

namespace orch {

struct LeaderElectionOptions {
  std::string lease_namespace = "kube-system";
  std::string lease_name;  // e.g. "orch-controllers"
  std::string identity;    // unique per process, e.g. "<hostname>_<random>"
  std::chrono::seconds lease_duration{15};  // others take over this long after the last renewal
  std::chrono::seconds renew_deadline{10};  // the leader gives up if it cannot renew for this long
  std::chrono::seconds retry_period{2};
};

// Runs on its own thread. `on_started` runs (on that thread) when this process becomes leader;
// `on_stopped` when it loses the Lease or at Stop while leading. Leadership can be gained again
// after being lost. Stop releases a held Lease (so a successor need not wait) and joins.
class LeaderElector {
 public:
  virtual ~LeaderElector() = default;
  virtual bool IsLeader() const = 0;
  virtual void Stop() = 0;

  static std::unique_ptr<LeaderElector> Start(ApiClient& client, LeaderElectionOptions options,
                                              std::function<void()> on_started,
                                              std::function<void()> on_stopped);
};

}  // namespace orch
