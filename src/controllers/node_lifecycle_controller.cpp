// The node lifecycle controller (node_lifecycle_controller.h). Keys are node names; a sync
// judges the node's health from its Lease and Ready heartbeat, writes Unknown conditions when the
// kubelet went silent, reconciles the node's taints, and runs the taint manager over its pods.
// Nothing polls: a sync asks to be run again when the grace period or a toleration would end.
#include "node_lifecycle_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "orch/log.h"

namespace orch {
namespace ctrl::nodelifecycle {
namespace {

// The conditions the kubelet owns, which go Unknown when it stops posting them.
constexpr const char* kKubeletConditions[] = {"Ready", "MemoryPressure", "DiskPressure",
                                              "PIDPressure"};

std::string ConditionStatus(const json& node, std::string_view type) {
  const json* c = FindCondition(Field(node, {"status"}), type);
  return c == nullptr ? "" : StringField(*c, {"status"});
}

// The (key, effect) pairs this controller owns, and which of them `node` should carry.
const std::set<std::pair<std::string, std::string>>& ManagedTaints() {
  static const std::set<std::pair<std::string, std::string>> kManaged = {
      {kTaintNotReady, "NoSchedule"},       {kTaintNotReady, "NoExecute"},
      {kTaintUnreachable, "NoSchedule"},    {kTaintUnreachable, "NoExecute"},
      {kTaintMemoryPressure, "NoSchedule"}, {kTaintDiskPressure, "NoSchedule"},
      {kTaintPidPressure, "NoSchedule"},    {kTaintNetworkUnavailable, "NoSchedule"},
      {kTaintUnschedulable, "NoSchedule"},
  };
  return kManaged;
}

std::vector<std::pair<std::string, std::string>> WantedTaints(const json& node) {
  std::vector<std::pair<std::string, std::string>> wanted;
  const std::string ready = ConditionStatus(node, "Ready");
  if (ready == "False") {
    wanted.emplace_back(kTaintNotReady, "NoSchedule");
    wanted.emplace_back(kTaintNotReady, "NoExecute");
  } else if (ready == "Unknown") {
    wanted.emplace_back(kTaintUnreachable, "NoSchedule");
    wanted.emplace_back(kTaintUnreachable, "NoExecute");
  }
  if (ConditionStatus(node, "MemoryPressure") == "True") {
    wanted.emplace_back(kTaintMemoryPressure, "NoSchedule");
  }
  if (ConditionStatus(node, "DiskPressure") == "True") {
    wanted.emplace_back(kTaintDiskPressure, "NoSchedule");
  }
  if (ConditionStatus(node, "PIDPressure") == "True") {
    wanted.emplace_back(kTaintPidPressure, "NoSchedule");
  }
  if (ConditionStatus(node, "NetworkUnavailable") == "True") {
    wanted.emplace_back(kTaintNetworkUnavailable, "NoSchedule");
  }
  if (BoolField(node, {"spec", "unschedulable"})) {
    wanted.emplace_back(kTaintUnschedulable, "NoSchedule");
  }
  return wanted;
}

}  // namespace

void ObserveHeartbeat(NodeHealth& health, const json& node, const json* lease, TimePoint now,
                      bool first) {
  std::string heartbeat;
  if (const json* ready = FindCondition(Field(node, {"status"}), "Ready")) {
    heartbeat = StringField(*ready, {"lastHeartbeatTime"});
  }
  std::string renew = lease == nullptr ? "" : StringField(*lease, {"spec", "renewTime"});
  if (first || heartbeat != health.heartbeat || renew != health.lease_renew) health.probe = now;
  health.heartbeat = std::move(heartbeat);
  health.lease_renew = std::move(renew);
}

std::optional<json> MarkStatusUnknown(const json& status, TimePoint now) {
  json next = status.is_object() ? status : json::object();
  if (!next["conditions"].is_array()) next["conditions"] = json::array();
  json& conditions = next["conditions"];
  bool changed = false;
  const std::string now_text = FormatTime(now);
  for (const char* type : kKubeletConditions) {
    auto it = std::find_if(conditions.begin(), conditions.end(),
                           [&](const json& c) { return StringField(c, {"type"}) == type; });
    if (it == conditions.end()) {
      conditions.push_back({{"type", type},
                            {"status", "Unknown"},
                            {"reason", "NodeStatusNeverUpdated"},
                            {"message", "Kubelet never posted node status."},
                            {"lastHeartbeatTime", now_text},
                            {"lastTransitionTime", now_text}});
      changed = true;
      continue;
    }
    if (StringField(*it, {"status"}) == "Unknown") continue;
    (*it)["status"] = "Unknown";
    (*it)["reason"] = "NodeStatusUnknown";
    (*it)["message"] = "Kubelet stopped posting node status.";
    (*it)["lastTransitionTime"] = now_text;
    changed = true;
  }
  if (!changed) return std::nullopt;
  return next;
}

std::string ReadyStatus(const json& node) {
  return ConditionStatus(node, "Ready");
}

json DesiredTaints(const json& node, TimePoint now) {
  const auto wanted = WantedTaints(node);
  auto is_wanted = [&](const std::string& key, const std::string& effect) {
    return std::find(wanted.begin(), wanted.end(), std::make_pair(key, effect)) != wanted.end();
  };
  json taints = json::array();
  std::set<std::pair<std::string, std::string>> present;
  const json& current = Field(node, {"spec", "taints"});
  if (current.is_array()) {
    for (const json& t : current) {
      std::pair<std::string, std::string> id{StringField(t, {"key"}), StringField(t, {"effect"})};
      if (ManagedTaints().count(id) != 0 && !is_wanted(id.first, id.second)) continue;
      if (!present.insert(id).second) continue;  // a duplicate would be refused by validation
      taints.push_back(t);
    }
  }
  for (const auto& [key, effect] : wanted) {
    if (present.count({key, effect}) != 0) continue;
    json taint = {{"key", key}, {"effect", effect}};
    if (effect == "NoExecute") taint["timeAdded"] = FormatTime(now);
    taints.push_back(std::move(taint));
  }
  return taints;
}

bool HasNoExecuteTaint(const json& taints) {
  if (!taints.is_array()) return false;
  return std::any_of(taints.begin(), taints.end(),
                     [](const json& t) { return StringField(t, {"effect"}) == "NoExecute"; });
}

std::optional<TimePoint> EvictionTime(const json& pod, const json& taints,
                                      TimePoint fallback_start) {
  if (!HasNoExecuteTaint(taints)) return std::nullopt;
  const json& tolerations = Field(pod, {"spec", "tolerations"});
  std::optional<TimePoint> start;
  std::optional<int64_t> min_seconds;
  for (const json& taint : taints) {
    if (StringField(taint, {"effect"}) != "NoExecute") continue;
    if (auto added = ParseTime(StringField(taint, {"timeAdded"}))) {
      if (!start || *added > *start) start = *added;
    }
    // Upstream takes the first toleration that matches each taint.
    const json* used = nullptr;
    if (tolerations.is_array()) {
      for (const json& t : tolerations) {
        if (Tolerates(t, taint)) {
          used = &t;
          break;
        }
      }
    }
    if (used == nullptr) return TimePoint::min();  // not tolerated: evicted at once
    const json& seconds = Field(*used, {"tolerationSeconds"});
    if (seconds.is_number_integer()) {
      int64_t s = std::max<int64_t>(0, seconds.get<int64_t>());
      if (!min_seconds || s < *min_seconds) min_seconds = s;
    }
  }
  if (!min_seconds) return std::nullopt;  // tolerated for ever
  return start.value_or(fallback_start) + std::chrono::seconds(*min_seconds);
}

}  // namespace ctrl::nodelifecycle

namespace {

using ctrl::Field;
using ctrl::json;
using ctrl::StringField;
using ctrl::TimePoint;
namespace nl = ctrl::nodelifecycle;

constexpr char kComponent[] = "nodelifecycle";
constexpr char kNodeNameIndex[] = "spec.nodeName";

class NodeLifecycleController : public Component {
 public:
  NodeLifecycleController(ControllerContext& context, NodeLifecycleControllerOptions options)
      : context_(context),
        options_(std::move(options)),
        nodes_(context.informers.For(resources::kNodes)),
        leases_(context.informers.For(resources::kLeases, nl::kLeaseNamespace)),
        pods_(context.informers.For(resources::kPods)),
        loop_(
            kComponent, context.informers, context.workers, options_.resync_period,
            [this] { return ctrl::InformerKeys(nodes_); },
            [this](const std::string& key) { return Sync(key); }) {
    pods_.AddIndex(kNodeNameIndex, [](const json& pod) -> std::vector<std::string> {
      std::string node = StringField(pod, {"spec", "nodeName"});
      if (node.empty()) return {};
      return {node};
    });
  }

  std::string_view Name() const override { return kComponent; }

  Status Start() override {
    nodes_.AddHandler({
        [this](const ObjectPtr& n) { loop_.Add(ctrl::NameOf(*n)); },
        [this](const ObjectPtr&, const ObjectPtr& n) { loop_.Add(ctrl::NameOf(*n)); },
        [this](const ObjectPtr& n) { loop_.Add(ctrl::NameOf(*n)); },
    });
    leases_.AddHandler({
        [this](const ObjectPtr& l) { loop_.Add(ctrl::NameOf(*l)); },
        [this](const ObjectPtr&, const ObjectPtr& l) { loop_.Add(ctrl::NameOf(*l)); },
        nullptr,
    });
    // A pod that lands on (or changes on) a node with NoExecute taints is the taint manager's.
    auto on_pod = [this](const ObjectPtr& p) {
      std::string node = StringField(*p, {"spec", "nodeName"});
      if (node.empty() || ctrl::IsBeingDeleted(*p)) return;
      ObjectPtr n = nodes_.Get("", node);
      if (n && nl::HasNoExecuteTaint(Field(*n, {"spec", "taints"}))) loop_.Add(node);
    };
    pods_.AddHandler(
        {on_pod, [on_pod](const ObjectPtr&, const ObjectPtr& p) { on_pod(p); }, nullptr});
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  struct NodeState {
    nl::NodeHealth health;
    std::optional<TimePoint> no_execute_since;  // when NoExecute taints were first seen
    // Pods deleted here whose deletion the cache may not show yet: evicted once, not per sync.
    std::set<std::string> evicted_uids;
  };

  Status Sync(const std::string& name) {
    ObjectPtr cached = nodes_.Get("", name);
    if (!cached) {
      std::lock_guard lock(mu_);
      states_.erase(name);
      return Status::Ok();
    }
    const TimePoint now = options_.now();
    ObjectPtr lease = leases_.Get(nl::kLeaseNamespace, name);
    json node = *cached;
    const bool never_ready = nl::ReadyStatus(node).empty();
    TimePoint probe;
    {
      std::lock_guard lock(mu_);
      auto [it, inserted] = states_.try_emplace(name);
      nl::ObserveHeartbeat(it->second.health, node, lease.get(), now, inserted);
      probe = it->second.health.probe;
    }
    const auto grace = never_ready ? options_.startup_grace_period : options_.grace_period;
    const TimePoint deadline = probe + grace;
    if (now >= deadline) {
      if (Status s = MarkUnknown(node, now); !s.ok()) return s;
    } else {
      loop_.AddAfter(name, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                               std::chrono::milliseconds(50));
    }
    if (Status s = ReconcileTaints(node, now); !s.ok()) return s;
    Status pods_status = Status::Ok();
    if (nl::ReadyStatus(node) == "Unknown") pods_status = MarkPodsNotReady(node, now);
    Status evict_status = EvictPods(node, now);
    return pods_status.ok() ? evict_status : pods_status;
  }

  // Writes Unknown conditions; `node` becomes the stored version.
  Status MarkUnknown(json& node, TimePoint now) {
    auto status = nl::MarkStatusUnknown(Field(node, {"status"}), now);
    if (!status) return Status::Ok();
    const std::string was = nl::ReadyStatus(node);
    json next = node;
    next["status"] = std::move(*status);
    auto written = context_.client.Update(resources::kNodes, "", next, "status");
    if (!written.ok()) {
      if (written.status().code() == StatusCode::kNotFound) return Status::Ok();
      return written.status();  // a conflict: retried with the newer node
    }
    node = std::move(*written);
    log::Info(kComponent, "node {}: kubelet stopped posting node status, conditions Unknown",
              ctrl::NameOf(node));
    if (was == "True") {
      context_.events.Record(
          ctrl::EventRef(node, "v1", "Node"), "Normal", "NodeNotReady",
          fmt::format("Node {} status is now: NodeNotReady", ctrl::NameOf(node)));
    }
    return Status::Ok();
  }

  Status ReconcileTaints(json& node, TimePoint now) {
    json desired = nl::DesiredTaints(node, now);
    const json& current = Field(node, {"spec", "taints"});
    if (ctrl::DropEmpty(desired) == ctrl::DropEmpty(current)) return Status::Ok();
    json next = node;
    if (desired.empty()) {
      next["spec"].erase("taints");
    } else {
      next["spec"]["taints"] = std::move(desired);
    }
    auto written = context_.client.Update(resources::kNodes, "", next);
    if (!written.ok()) {
      if (written.status().code() == StatusCode::kNotFound) return Status::Ok();
      return written.status();
    }
    node = std::move(*written);
    return Status::Ok();
  }

  std::vector<ObjectPtr> PodsOn(const std::string& node) const {
    std::vector<ObjectPtr> pods;
    for (ObjectPtr& p : pods_.ByIndex(kNodeNameIndex, node)) {
      if (!ctrl::IsBeingDeleted(*p)) pods.push_back(std::move(p));
    }
    return pods;
  }

  // Pods of an unreachable node can no longer be trusted to serve: Ready False (upstream's
  // MarkPodsNotReady), so Services stop sending them traffic.
  Status MarkPodsNotReady(const json& node, TimePoint now) {
    Status first_error;
    for (const ObjectPtr& p : PodsOn(ctrl::NameOf(node))) {
      const json* ready = ctrl::FindCondition(Field(*p, {"status"}), "Ready");
      if (ready == nullptr || StringField(*ready, {"status"}) == "False") continue;
      if (ctrl::PodPhase(*p) == "Succeeded" || ctrl::PodPhase(*p) == "Failed") continue;
      json pod = *p;
      for (json& c : pod["status"]["conditions"]) {
        if (StringField(c, {"type"}) != "Ready") continue;
        c["status"] = "False";
        c["lastTransitionTime"] = FormatTime(now);
      }
      auto written =
          context_.client.Update(resources::kPods, ctrl::NamespaceOf(pod), pod, "status");
      if (!written.ok()) {
        if (written.status().code() != StatusCode::kNotFound && first_error.ok()) {
          first_error = written.status();
        }
        continue;
      }
      context_.events.Record(ctrl::EventRef(pod, "v1", "Pod"), "Warning", "NodeNotReady",
                             "Node is not ready");
    }
    return first_error;
  }

  // The taint manager: pods that do not tolerate the node's NoExecute taints are deleted now,
  // those that tolerate them for a while when that while ends.
  Status EvictPods(const json& node, TimePoint now) {
    const std::string name = ctrl::NameOf(node);
    const json& taints = Field(node, {"spec", "taints"});
    TimePoint since;
    {
      std::lock_guard lock(mu_);
      NodeState& state = states_[name];
      if (!nl::HasNoExecuteTaint(taints)) {
        state.no_execute_since.reset();
        return Status::Ok();
      }
      if (!state.no_execute_since) state.no_execute_since = now;
      since = *state.no_execute_since;
    }
    Status first_error;
    std::optional<TimePoint> next_check;
    std::vector<ObjectPtr> pods = PodsOn(name);
    std::set<std::string> evicted;
    {
      // Forget the evicted pods that are gone, so the set stays as small as the node's pods.
      std::lock_guard lock(mu_);
      for (const ObjectPtr& p : pods) {
        if (states_[name].evicted_uids.count(ctrl::UidOf(*p))) evicted.insert(ctrl::UidOf(*p));
      }
    }
    for (const ObjectPtr& p : pods) {
      if (ctrl::IsBeingDeleted(*p) || evicted.count(ctrl::UidOf(*p))) continue;
      auto when = nl::EvictionTime(*p, taints, since);
      if (!when) continue;
      if (*when > now) {
        if (!next_check || *when < *next_check) next_check = *when;
        continue;
      }
      Status s = DeletePod(*p);
      if (s.ok()) evicted.insert(ctrl::UidOf(*p));
      if (!s.ok() && first_error.ok()) first_error = s;
    }
    {
      std::lock_guard lock(mu_);
      states_[name].evicted_uids = std::move(evicted);
    }
    if (next_check) {
      loop_.AddAfter(name,
                     std::chrono::duration_cast<std::chrono::milliseconds>(*next_check - now) +
                         std::chrono::milliseconds(50));
    }
    return first_error;
  }

  Status DeletePod(const json& pod) {
    const std::string ns = ctrl::NamespaceOf(pod);
    const std::string name = ctrl::NameOf(pod);
    context_.events.Record(ctrl::EventRef(pod, "v1", "Pod"), "Normal", "TaintManagerEviction",
                           fmt::format("Marking for deletion Pod {}/{}", ns, name));
    // As upstream: say why before the pod goes (best effort; the deletion is what matters).
    json status_pod = pod;
    json& conditions = status_pod["status"]["conditions"];
    if (!conditions.is_array()) conditions = json::array();
    if (ctrl::FindCondition(status_pod["status"], "DisruptionTarget") == nullptr) {
      conditions.push_back({{"type", "DisruptionTarget"},
                            {"status", "True"},
                            {"reason", "DeletionByTaintManager"},
                            {"message", "Taint manager: deleting due to NoExecute taint"},
                            {"lastTransitionTime", FormatTime(options_.now())}});
      (void)context_.client.Update(resources::kPods, ns, status_pod, "status");
    }
    DeleteOptions options;
    options.precondition_uid = ctrl::UidOf(pod);
    auto deleted = context_.client.Delete(resources::kPods, ns, name, options);
    if (deleted.ok() || deleted.status().code() == StatusCode::kNotFound) {
      log::Info(kComponent, "evicted pod {}/{} from node {} (NoExecute taint)", ns, name,
                StringField(pod, {"spec", "nodeName"}));
      return Status::Ok();
    }
    return deleted.status();
  }

  ControllerContext& context_;
  const NodeLifecycleControllerOptions options_;
  Informer& nodes_;
  Informer& leases_;
  Informer& pods_;
  std::mutex mu_;
  std::map<std::string, NodeState> states_;  // guarded by mu_; by node name
  ctrl::ControllerLoop loop_;                // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewNodeLifecycleController(ControllerContext& context,
                                                      NodeLifecycleControllerOptions options) {
  return std::make_unique<NodeLifecycleController>(context, std::move(options));
}

std::unique_ptr<Component> NewNodeLifecycleController(ControllerContext& context) {
  NodeLifecycleControllerOptions options;
  options.grace_period = context.node_monitor_grace_period;
  options.startup_grace_period = context.node_monitor_grace_period * 3 / 2;
  return NewNodeLifecycleController(context, std::move(options));
}

}  // namespace orch
