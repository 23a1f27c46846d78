// The scheduler and the controllers as one server component: it takes part in leader election
// (a Lease in kube-system) and runs them only while this server holds the Lease, so that with
// several servers no controller ever runs twice at once.
#pragma once

#include <memory>
#include <mutex>

#include "apiserver_component.h"
#include "orch/api_client.h"
#include "orch/component.h"
#include "orch/config.h"
#include "orch/controllers.h"
#include "orch/events.h"
#include "orch/informer.h"
#include "orch/leader_election.h"

namespace orch {

class ControlPlaneComponent : public Component {
 public:
  ControlPlaneComponent(const ServerConfig& config, ApiServerComponent& api)
      : config_(config), api_(api) {}
  ~ControlPlaneComponent() override;

  std::string_view Name() const override { return "control-plane"; }
  // Joins the election and returns; the scheduler and controllers start when the Lease is won.
  Status Start() override;
  // Stops them if running and releases the Lease, so another server takes over at once.
  void Stop() override;

 private:
  // On the elector's thread.
  void Lead();
  void Follow();

  const ServerConfig& config_;
  ApiServerComponent& api_;
  std::unique_ptr<ApiClient> election_client_;
  std::unique_ptr<LeaderElector> elector_;

  // What runs while leading; rebuilt on every term so nothing survives from the last one.
  struct Term {
    std::unique_ptr<ApiClient> client;
    std::unique_ptr<InformerFactory> informers;
    std::unique_ptr<EventRecorder> controller_events;
    std::unique_ptr<EventRecorder> scheduler_events;
    std::unique_ptr<ControllerContext> context;
    ComponentList components;
  };
  std::mutex mu_;
  std::unique_ptr<Term> term_;  // guarded by mu_
};

}  // namespace orch
