// Leader-elected scheduler and controllers (control_plane_component.h).
#include "control_plane_component.h"

#include <unistd.h>

#include "orch/ingress.h"
#include "orch/log.h"
#include "orch/pki.h"
#include "orch/scheduler.h"

namespace orch {
namespace {

constexpr std::string_view kComponent = "control-plane";

std::string Identity(const ServerConfig& config) {
  std::string host = config.agent.node_name;
  if (host.empty()) {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    host = buf;
  }
  // Unique per process, so a restarted server is a new candidate (as upstream's hostname_uuid).
  return host + "_" + pki::RandomHex(8);
}

}  // namespace

ControlPlaneComponent::~ControlPlaneComponent() {
  Stop();
}

Status ControlPlaneComponent::Start() {
  election_client_ = api_.server().NewClient("system:orch:leader-election", {"system:masters"},
                                             "orch-leader-election");
  LeaderElectionOptions options;
  options.lease_name = "orch-control-plane";
  options.identity = Identity(config_);
  // A dead leader's successor takes over at most lease_duration + one retry period after the
  // Lease's last change was seen, so within 15 s of the death (issue 7); the leader gives up
  // after renew_deadline, which leaves 3 s before anyone else may take the Lease.
  options.lease_duration = std::chrono::seconds(10);
  options.renew_deadline = std::chrono::seconds(7);
  options.retry_period = std::chrono::seconds(2);
  elector_ = LeaderElector::Start(
      *election_client_, options, [this] { Lead(); }, [this] { Follow(); });
  log::Info(kComponent, "waiting to lead as {}", options.identity);
  return Status::Ok();
}

void ControlPlaneComponent::Stop() {
  if (elector_) elector_->Stop();  // calls Follow when leading
  elector_.reset();
  election_client_.reset();
}

void ControlPlaneComponent::Lead() {
  auto term = std::make_unique<Term>();
  term->client = api_.server().NewClient("system:orch:controller-manager", {"system:masters"},
                                         "orch-controller-manager");
  term->informers = InformerFactory::Create(*term->client);
  term->controller_events = EventRecorder::Create(*term->client, "orch-controller-manager");
  term->scheduler_events = EventRecorder::Create(*term->client, "default-scheduler");
  term->context = std::make_unique<ControllerContext>(ControllerContext{
      *term->client, *term->informers, *term->controller_events, config_.cluster_cidr});
  term->context->node_monitor_grace_period =
      std::chrono::milliseconds(config_.node_monitor_grace_period_ms);
  term->context->data_dir = config_.data_dir;
  if (!config_.disable_scheduler) {
    term->components.Add(NewScheduler(*term->client, *term->informers, *term->scheduler_events));
  }
  if (!config_.disable_controller_manager) {
    // k3s users turn the load balancer off as a packaged component; here it is a controller.
    std::set<std::string> disabled;
    if (IsDisabled(config_, "servicelb")) disabled.insert("servicelb");
    if (IsDisabled(config_, "local-storage")) disabled.insert("localpath");
    for (auto& controller : NewControllers(*term->context, disabled)) {
      term->components.Add(std::move(controller));
    }
    // The IngressClass and Ingress status (ingress/); disabled it only removes the class.
    term->components.Add(NewIngressController(*term->context, !IsDisabled(config_, "ingress")));
  }
  term->informers->Start();
  if (Status s = term->components.StartAll(); !s.ok()) {
    log::Error(kComponent, "cannot start: {}", s.message());
  }
  log::Info(kComponent, "leading: {} components running", term->components.size());
  std::lock_guard lock(mu_);
  term_ = std::move(term);
}

void ControlPlaneComponent::Follow() {
  std::unique_ptr<Term> term;
  {
    std::lock_guard lock(mu_);
    term.swap(term_);
  }
  if (!term) return;
  log::Info(kComponent, "no longer leading; stopping the scheduler and controllers");
  term->components.StopAll();
  term->informers->Stop();
  term->scheduler_events->Stop();
  term->controller_events->Stop();
}

}  // namespace orch
