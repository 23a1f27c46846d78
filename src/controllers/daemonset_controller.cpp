// The DaemonSet controller: one pod of the current template on every node the template fits
// (selector, affinity, taints), rolling updates or OnDelete, ControllerRevision history and the
// status `kubectl rollout status ds` reads. Follows upstream's pkg/controller/daemon semantics.
#include "daemonset_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <set>

#include "controller_history.h"
#include "deployment_util.h"
#include "orch/log.h"
#include "orch/node_placement.h"

namespace orch {
namespace ctrl::daemon {

namespace {

std::optional<int64_t> ParseInt(const std::string& text) {
  int64_t out = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return out;
}

std::optional<TimePoint> CreationTime(const json& object) {
  return ParseTime(StringField(object, {"metadata", "creationTimestamp"}));
}

// Oldest first; among equals, the further along (Running before Pending) first, then by name.
void SortOldestFirst(std::vector<ObjectPtr>& pods) {
  auto phase_rank = [](const json& p) {
    std::string phase = PodPhase(p);
    return phase == "Running" ? 0 : phase == "Pending" || phase.empty() ? 1 : 2;
  };
  std::stable_sort(pods.begin(), pods.end(), [&](const ObjectPtr& a, const ObjectPtr& b) {
    auto ca = CreationTime(*a), cb = CreationTime(*b);
    if (ca != cb) return ca.has_value() && (!cb.has_value() || *ca < *cb);
    int ra = phase_rank(*a), rb = phase_rank(*b);
    if (ra != rb) return ra < rb;
    return NameOf(*a) < NameOf(*b);
  });
}

bool IsTerminal(const json& pod) {
  std::string phase = PodPhase(pod);
  return phase == "Succeeded" || phase == "Failed";
}

int64_t MinReadySeconds(const json& ds) {
  return IntField(ds, {"spec", "minReadySeconds"});
}

bool IsRollingUpdate(const json& ds) {
  return StringField(ds, {"spec", "updateStrategy", "type"}, "RollingUpdate") == "RollingUpdate";
}

// The new and the old pod on a node (upstream's findUpdatedPodsOnNode); false when there are
// several of either, which the manage step sorts out first.
bool FindUpdatedPodsOnNode(const std::vector<ObjectPtr>& pods, const std::string& hash,
                           int64_t generation, ObjectPtr* new_pod, ObjectPtr* old_pod) {
  for (const ObjectPtr& p : pods) {
    if (IsBeingDeleted(*p)) continue;
    ObjectPtr& slot = IsPodUpdated(*p, hash, generation) ? *new_pod : *old_pod;
    if (slot) return false;
    slot = p;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Nodes.

bool MatchesNodeSelectorTerms(const json& node_selector, const json& node) {
  auto selector = placement::NodeSelector::FromJson(node_selector);
  return selector && selector->Matches(placement::Labels::FromJson(LabelsOf(node)), NameOf(node));
}

void AddDaemonTolerations(json& pod_spec) {
  struct Default {
    const char* key;
    const char* effect;
  };
  std::vector<Default> defaults = {
      {"node.kubernetes.io/not-ready", "NoExecute"},
      {"node.kubernetes.io/unreachable", "NoExecute"},
      {"node.kubernetes.io/disk-pressure", "NoSchedule"},
      {"node.kubernetes.io/memory-pressure", "NoSchedule"},
      {"node.kubernetes.io/pid-pressure", "NoSchedule"},
      {"node.kubernetes.io/unschedulable", "NoSchedule"},
  };
  if (BoolField(pod_spec, {"hostNetwork"})) {
    defaults.push_back({"node.kubernetes.io/network-unavailable", "NoSchedule"});
  }
  json& tolerations = pod_spec["tolerations"];
  if (!tolerations.is_array()) tolerations = json::array();
  for (const Default& d : defaults) {
    json wanted = {{"key", d.key}, {"operator", "Exists"}, {"effect", d.effect}};
    bool present = std::any_of(tolerations.begin(), tolerations.end(), [&](const json& t) {
      return StringField(t, {"key"}) == d.key && StringField(t, {"operator"}) == "Exists" &&
             StringField(t, {"effect"}) == d.effect && Field(t, {"tolerationSeconds"}).is_null();
    });
    if (!present) tolerations.push_back(std::move(wanted));
  }
}

void SetNodeNameAffinity(json& pod_spec, const std::string& node) {
  const json field = {
      {"key", "metadata.name"}, {"operator", "In"}, {"values", json::array({node})}};
  json& affinity = pod_spec["affinity"];
  if (!affinity.is_object()) affinity = json::object();
  json& node_affinity = affinity["nodeAffinity"];
  if (!node_affinity.is_object()) node_affinity = json::object();
  json& required = node_affinity["requiredDuringSchedulingIgnoredDuringExecution"];
  if (!required.is_object()) required = json::object();
  json& terms = required["nodeSelectorTerms"];
  if (!terms.is_array() || terms.empty()) {
    terms = json::array({{{"matchFields", json::array({field})}}});
    return;
  }
  for (json& term : terms) term["matchFields"] = json::array({field});
}

std::string TargetNodeName(const json& pod) {
  std::string node = StringField(pod, {"spec", "nodeName"});
  if (!node.empty()) return node;
  const json& terms =
      Field(pod, {"spec", "affinity", "nodeAffinity",
                  "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"});
  if (!terms.is_array()) return "";
  for (const json& term : terms) {
    const json& fields = Field(term, {"matchFields"});
    if (!fields.is_array()) continue;
    for (const json& r : fields) {
      const json& values = Field(r, {"values"});
      if (StringField(r, {"key"}) == "metadata.name" && StringField(r, {"operator"}) == "In" &&
          values.is_array() && values.size() == 1 && values[0].is_string()) {
        return values[0].get<std::string>();
      }
    }
  }
  return "";
}

NodeVerdict NodeShouldRunDaemonPod(const json& node, const json& ds) {
  const json& spec = Field(ds, {"spec", "template", "spec"});
  const std::string node_name = NameOf(node);
  const std::string wanted_node = StringField(spec, {"nodeName"});
  if (!wanted_node.empty() && wanted_node != node_name) return {};
  const placement::Labels node_labels = placement::Labels::FromJson(LabelsOf(node));
  if (!placement::NodeConstraints::FromPodSpec(spec).Matches(node_labels, node_name)) return {};

  json tolerations_holder = {{"tolerations", Field(spec, {"tolerations"})},
                             {"hostNetwork", BoolField(spec, {"hostNetwork"})}};
  AddDaemonTolerations(tolerations_holder);
  const std::vector<placement::Toleration> tolerations =
      placement::TolerationsFromJson(tolerations_holder["tolerations"]);
  bool fits_no_schedule = true, fits_no_execute = true;
  for (const placement::Taint& taint : placement::TaintsFromJson(Field(node, {"spec", "taints"}))) {
    if (taint.effect != "NoSchedule" && taint.effect != "NoExecute") continue;
    if (placement::ToleratesAll(tolerations, taint)) continue;
    (taint.effect == "NoExecute" ? fits_no_execute : fits_no_schedule) = false;
  }
  if (!fits_no_execute) return {};
  if (!fits_no_schedule) return {false, true};
  return {true, true};
}

// ---------------------------------------------------------------------------------------------
// Pods.

int64_t TemplateGeneration(const json& ds) {
  auto annotated =
      ParseInt(StringField(ds, {"metadata", "annotations", kTemplateGenerationAnnotation}));
  return annotated ? *annotated : IntField(ds, {"metadata", "generation"});
}

json NewDaemonPod(const json& ds, const json& controller_ref, const std::string& node,
                  const std::string& hash) {
  json pod = PodFromTemplate(Field(ds, {"spec", "template"}), ds, controller_ref);
  json& labels = pod["metadata"]["labels"];
  if (!labels.is_object()) labels = json::object();
  labels[kPodTemplateGenerationLabel] = std::to_string(TemplateGeneration(ds));
  if (!hash.empty()) labels[history::kControllerRevisionHashLabel] = hash;
  AddDaemonTolerations(pod["spec"]);
  SetNodeNameAffinity(pod["spec"], node);
  return pod;
}

bool IsPodUpdated(const json& pod, const std::string& hash, int64_t template_generation) {
  if (!hash.empty() &&
      StringField(pod, {"metadata", "labels", history::kControllerRevisionHashLabel}) == hash) {
    return true;
  }
  return StringField(pod, {"metadata", "labels", kPodTemplateGenerationLabel}) ==
         std::to_string(template_generation);
}

NodePods GroupByNode(const std::vector<ObjectPtr>& pods) {
  NodePods out;
  for (const ObjectPtr& p : pods) {
    if (IsBeingDeleted(*p) && IsTerminal(*p)) continue;
    out[TargetNodeName(*p)].push_back(p);
  }
  return out;
}

std::pair<int64_t, int64_t> SurgeAndUnavailable(const json& ds, int64_t desired) {
  if (!IsRollingUpdate(ds)) return {0, 0};
  const json& rolling = Field(ds, {"spec", "updateStrategy", "rollingUpdate"});
  json surge = Field(rolling, {"maxSurge"});
  json unavailable = Field(rolling, {"maxUnavailable"});
  if (unavailable.is_null()) unavailable = 1;
  auto s = deploy::ScaledValue(surge, desired, true);
  auto u = deploy::ScaledValue(unavailable, desired, true);
  int64_t max_surge = s.ok() ? *s : 0;
  int64_t max_unavailable = u.ok() ? *u : 1;
  // Validation forbids both zero, but percentages of few nodes can round to it.
  if (max_surge == 0 && max_unavailable == 0) max_unavailable = 1;
  return {max_surge, max_unavailable};
}

NodePlan PlanNodes(const json& ds, const std::vector<ObjectPtr>& nodes, const NodePods& node_pods,
                   const std::string& hash, TimePoint now,
                   const std::function<bool(const std::string& node)>& in_backoff) {
  NodePlan plan;
  const int64_t min_ready = MinReadySeconds(ds);
  const int64_t generation = TemplateGeneration(ds);
  const bool surge = IsRollingUpdate(ds) && SurgeAndUnavailable(ds, 1).first > 0;
  static const std::vector<ObjectPtr> kNone;
  std::set<std::string> known_nodes;
  for (const ObjectPtr& node_ptr : nodes) {
    const json& node = *node_ptr;
    const std::string name = NameOf(node);
    known_nodes.insert(name);
    auto it = node_pods.find(name);
    const std::vector<ObjectPtr>& pods = it == node_pods.end() ? kNone : it->second;
    const NodeVerdict verdict = NodeShouldRunDaemonPod(node, ds);
    if (verdict.should_run && pods.empty()) {
      plan.nodes_needing_pods.push_back(name);
      continue;
    }
    if (!verdict.should_continue_running) {
      for (const ObjectPtr& p : pods) {
        if (!IsBeingDeleted(*p)) plan.pods_to_delete.push_back(p);
      }
      continue;
    }
    std::vector<ObjectPtr> running;
    for (const ObjectPtr& p : pods) {
      if (IsBeingDeleted(*p)) continue;
      const std::string phase = PodPhase(*p);
      if (phase == "Failed") {
        if (in_backoff(name)) {
          plan.nodes_in_backoff.push_back(name);
          continue;
        }
        plan.pods_to_delete.push_back(p);
        plan.failed_pods.emplace_back(p, name);
      } else if (phase == "Succeeded") {
        plan.pods_to_delete.push_back(p);  // a daemon is meant to keep running
      } else {
        running.push_back(p);
      }
    }
    SortOldestFirst(running);
    if (!surge) {
      for (size_t i = 1; i < running.size(); ++i) plan.pods_to_delete.push_back(running[i]);
      continue;
    }
    // With surge, an old and a new pod may share the node while the new one becomes available.
    ObjectPtr oldest_new, oldest_old;
    for (const ObjectPtr& p : running) {
      ObjectPtr& slot = IsPodUpdated(*p, hash, generation) ? oldest_new : oldest_old;
      if (!slot) {
        slot = p;
      } else {
        plan.pods_to_delete.push_back(p);
      }
    }
    if (oldest_new && oldest_old &&
        (!IsPodReady(*oldest_old) || IsPodAvailable(*oldest_new, min_ready, now))) {
      plan.pods_to_delete.push_back(oldest_old);
    }
  }
  // Pods for nodes that no longer exist (or that name no node at all).
  for (const auto& [node, pods] : node_pods) {
    if (known_nodes.count(node) > 0) continue;
    for (const ObjectPtr& p : pods) {
      if (!IsBeingDeleted(*p)) plan.pods_to_delete.push_back(p);
    }
  }
  return plan;
}

RollingPlan PlanRollingUpdate(const json& ds, const std::vector<ObjectPtr>& nodes,
                              const NodePods& node_pods, const std::string& hash, TimePoint now) {
  RollingPlan plan;
  if (!IsRollingUpdate(ds)) return plan;
  const int64_t min_ready = MinReadySeconds(ds);
  const int64_t generation = TemplateGeneration(ds);
  // Nodes that should run a pod and have none count as unavailable.
  NodePods all_nodes = node_pods;
  int64_t desired = 0;
  for (const ObjectPtr& node : nodes) {
    if (!NodeShouldRunDaemonPod(*node, ds).should_run) continue;
    ++desired;
    all_nodes.try_emplace(NameOf(*node));
  }
  const auto [max_surge, max_unavailable] = SurgeAndUnavailable(ds, desired);
  auto available = [&](const ObjectPtr& p) { return IsPodAvailable(*p, min_ready, now); };

  std::vector<ObjectPtr> allowed, candidates;
  std::vector<std::string> allowed_nodes, candidate_nodes;
  int64_t unavailable = 0, surged = 0;
  for (const auto& [node, pods] : all_nodes) {
    ObjectPtr new_pod, old_pod;
    const bool clear = FindUpdatedPodsOnNode(pods, hash, generation, &new_pod, &old_pod);
    if (max_surge == 0) {
      if (!clear || (!old_pod && !new_pod) || (old_pod && new_pod)) {
        ++unavailable;  // the manage step is still sorting this node out
      } else if (new_pod) {
        if (!available(new_pod)) ++unavailable;
      } else if (!available(old_pod)) {
        allowed.push_back(old_pod);  // unavailable anyway: replace it at once
      } else if (unavailable < max_unavailable) {
        candidates.push_back(old_pod);
      }
      continue;
    }
    if (!clear || !old_pod) continue;  // nothing to surge past here
    if (!new_pod) {
      if (!available(old_pod)) {
        allowed_nodes.push_back(node);
      } else if (surged < max_surge) {
        candidate_nodes.push_back(node);
      }
    } else if (!available(new_pod)) {
      ++surged;  // waiting for the new pod beside the old one
    } else {
      plan.pods_to_delete.push_back(old_pod);
    }
  }
  if (max_surge == 0) {
    int64_t remaining = std::clamp<int64_t>(max_unavailable - unavailable, 0,
                                            static_cast<int64_t>(candidates.size()));
    plan.pods_to_delete = std::move(allowed);
    plan.pods_to_delete.insert(plan.pods_to_delete.end(), candidates.begin(),
                               candidates.begin() + remaining);
    return plan;
  }
  int64_t remaining =
      std::clamp<int64_t>(max_surge - surged, 0, static_cast<int64_t>(candidate_nodes.size()));
  plan.nodes_needing_pods = std::move(allowed_nodes);
  plan.nodes_needing_pods.insert(plan.nodes_needing_pods.end(), candidate_nodes.begin(),
                                 candidate_nodes.begin() + remaining);
  return plan;
}

json CalculateStatus(const json& ds, const std::vector<ObjectPtr>& nodes, const NodePods& node_pods,
                     const std::string& hash, TimePoint now) {
  const int64_t min_ready = MinReadySeconds(ds);
  const int64_t generation = TemplateGeneration(ds);
  int64_t desired = 0, current = 0, misscheduled = 0, ready = 0, available = 0, updated = 0;
  for (const ObjectPtr& node : nodes) {
    auto it = node_pods.find(NameOf(*node));
    const bool scheduled = it != node_pods.end() && !it->second.empty();
    if (!NodeShouldRunDaemonPod(*node, ds).should_run) {
      if (scheduled) ++misscheduled;
      continue;
    }
    ++desired;
    if (!scheduled) continue;
    ++current;
    std::vector<ObjectPtr> pods = it->second;
    SortOldestFirst(pods);
    const json& pod = *pods.front();
    if (IsPodReady(pod)) {
      ++ready;
      if (IsPodAvailable(pod, min_ready, now)) ++available;
    }
    if (IsPodUpdated(pod, hash, generation)) ++updated;
  }
  json status = {{"currentNumberScheduled", current},
                 {"numberMisscheduled", misscheduled},
                 {"desiredNumberScheduled", desired},
                 {"numberReady", ready},
                 {"observedGeneration", IntField(ds, {"metadata", "generation"})},
                 {"updatedNumberScheduled", updated},
                 {"numberAvailable", available},
                 {"numberUnavailable", desired - available}};
  for (const char* kept : {"collisionCount", "conditions"}) {
    const json& v = Field(ds, {"status", kept});
    if (!v.is_null()) status[kept] = v;
  }
  return status;
}

}  // namespace ctrl::daemon

namespace {

using ctrl::Field;
using ctrl::IntField;
using ctrl::json;
using ctrl::StringField;
namespace daemon = ctrl::daemon;
namespace history = ctrl::history;

constexpr char kComponent[] = "daemonset";
constexpr char kApiVersion[] = "apps/v1";
constexpr char kKind[] = "DaemonSet";

// The back-off between deletions of failed daemon pods on one node (upstream's
// failedPodsBackoff, keyed by DaemonSet uid and node). Thread-safe.
class FailedPodBackoff {
 public:
  FailedPodBackoff(ctrl::NowFunc now, std::chrono::milliseconds initial,
                   std::chrono::milliseconds max)
      : now_(std::move(now)), initial_(initial), max_(max) {}

  // How long a failed pod must still wait, 0 when it may be deleted now.
  std::chrono::milliseconds Remaining(const std::string& key) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return {};
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now_() - it->second.at);
    return elapsed < it->second.delay ? it->second.delay - elapsed : std::chrono::milliseconds(0);
  }
  // A failed pod is deleted now: the next one waits longer.
  void Next(const std::string& key) {
    std::lock_guard lock(mu_);
    const auto now = now_();
    // Entries idle for long are forgotten, so the map stays bounded by the failing nodes.
    std::erase_if(entries_, [&](const auto& e) { return now - e.second.at > 2 * max_; });
    auto [it, fresh] = entries_.try_emplace(key, Entry{initial_, now});
    if (!fresh) {
      it->second.delay = std::min(it->second.delay * 2, max_);
      it->second.at = now;
    }
  }

 private:
  struct Entry {
    std::chrono::milliseconds delay;
    ctrl::TimePoint at;
  };
  ctrl::NowFunc now_;
  const std::chrono::milliseconds initial_, max_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
};

class DaemonSetController : public Component {
 public:
  DaemonSetController(ControllerContext& context, DaemonSetControllerOptions options)
      : context_(context),
        options_(std::move(options)),
        pods_(context.informers.For(resources::kPods)),
        nodes_(context.informers.For(resources::kNodes)),
        owners_(context.informers.For(resources::kDaemonSets)),
        revisions_(context.informers.For(resources::kControllerRevisions)),
        creations_(options_.now),
        deletions_(options_.now),
        backoff_(options_.now, options_.failed_pod_backoff_initial,
                 options_.failed_pod_backoff_max),
        loop_(
            "daemonset", context.informers, context.workers, options_.resync_period,
            [this] { return ctrl::InformerKeys(owners_); },
            [this](const std::string& key) { return Sync(key); }) {
    ctrl::AddControllerIndex(pods_);
    ctrl::AddControllerIndex(owners_);
    ctrl::AddControllerIndex(revisions_);
  }

  std::string_view Name() const override { return "daemonset"; }

  Status Start() override {
    owners_.AddHandler({
        [this](const ObjectPtr& o) { loop_.Add(ObjectKey(*o)); },
        [this](const ObjectPtr& old_o, const ObjectPtr& o) {
          if (ctrl::UidOf(*old_o) != ctrl::UidOf(*o)) ForgetExpectations(ObjectKey(*old_o));
          loop_.Add(ObjectKey(*o));
        },
        [this](const ObjectPtr& o) {
          ForgetExpectations(ObjectKey(*o));
          loop_.Add(ObjectKey(*o));
        },
    });
    pods_.AddHandler(
        ctrl::OwnedPodHandlers({owners_, kKind, loop_, creations_, deletions_, nullptr, nullptr}));
    nodes_.AddHandler({
        [this](const ObjectPtr&) { EnqueueAll(); },
        [this](const ObjectPtr& old_n, const ObjectPtr& n) {
          // Only labels, taints and the name decide where daemons run; heartbeats do not.
          if (ctrl::LabelsOf(*old_n) != ctrl::LabelsOf(*n) ||
              Field(*old_n, {"spec", "taints"}) != Field(*n, {"spec", "taints"})) {
            EnqueueAll();
          }
        },
        [this](const ObjectPtr&) { EnqueueAll(); },
    });
    auto enqueue_owner = [this](const ObjectPtr& r) {
      if (ObjectPtr owner = ctrl::ControllerOfKind(owners_, *r, kKind)) {
        loop_.Add(ObjectKey(*owner));
      }
    };
    revisions_.AddHandler(
        {enqueue_owner, [enqueue_owner](const ObjectPtr&, const ObjectPtr& r) { enqueue_owner(r); },
         enqueue_owner});
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  void EnqueueAll() {
    for (const std::string& key : ctrl::InformerKeys(owners_)) loop_.Add(key);
  }

  void ForgetExpectations(const std::string& key) {
    creations_.Delete(key);
    deletions_.Delete(key);
  }

  void Event(const json& ds, const char* type, const char* reason, const std::string& message) {
    context_.events.Record(ctrl::EventRef(ds, kApiVersion, kKind), type, reason, message);
  }

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr owner = owners_.Get(ns, name);
    if (!owner) {
      ForgetExpectations(key);
      return Status::Ok();
    }
    const json& ds = *owner;
    // The garbage collector removes the pods and revisions of a DaemonSet being deleted.
    if (ctrl::IsBeingDeleted(ds)) return Status::Ok();
    auto selector = LabelSelector::FromJson(Field(ds, {"spec", "selector"}));
    if (!selector.ok()) {
      log::Warn(kComponent, "{}: invalid selector: {}", key, selector.status().message());
      return Status::Ok();
    }
    if (selector->Empty()) {
      Event(ds, "Warning", daemon::kSelectingAll,
            "This daemon set is selecting all pods. A non-empty selector is required.");
      return Status::Ok();
    }

    // The current revision first: its hash labels the pods made in this sync.
    const history::Owner history_owner{ds, kApiVersion, kKind};
    Status claim_error;
    history::RevisionList revisions =
        history::ClaimRevisions(context_.client, revisions_, history_owner, resources::kDaemonSets,
                                *selector, &claim_error);
    if (!claim_error.ok()) return claim_error;
    int64_t collision_count = IntField(ds, {"status", "collisionCount"});
    auto current = history::EnsureCurrentRevision(
        context_.client, history_owner, Field(ds, {"spec", "template", "metadata", "labels"}),
        RevisionAnnotations(ds), history::TemplateRevisionData(ds), revisions, &collision_count);
    if (!current.ok()) return current.status();
    const std::string hash = history::RevisionHash(*current->revision);

    std::vector<ObjectPtr> claimed =
        ctrl::RefManager(context_.client, resources::kPods, ds, kApiVersion, kKind, *selector,
                         ctrl::RecheckOwner(context_.client, resources::kDaemonSets, ds))
            .Claim(ctrl::OwnedAndOrphans(pods_, ds), &claim_error);
    if (!claim_error.ok()) return claim_error;
    const daemon::NodePods node_pods = daemon::GroupByNode(claimed);
    const std::vector<ObjectPtr> nodes = nodes_.List();
    const auto now = options_.now();

    Status manage_error;
    if (creations_.Satisfied(key) && deletions_.Satisfied(key)) {
      manage_error = Manage(ds, key, nodes, node_pods, hash, now);
      Status truncated = TruncateHistory(ds, current->revisions, *current->revision, claimed);
      if (manage_error.ok()) manage_error = truncated;
    }

    json status = daemon::CalculateStatus(ds, nodes, node_pods, hash, now);
    if (collision_count != 0) status["collisionCount"] = collision_count;
    if (Status s = UpdateStatus(ds, status); !s.ok()) return s;
    const int64_t min_ready = IntField(ds, {"spec", "minReadySeconds"});
    if (min_ready > 0 && status.value("numberReady", 0) > status.value("numberAvailable", 0)) {
      loop_.AddAfter(key, std::chrono::seconds(min_ready));
    }
    return manage_error;
  }

  // What a new revision carries from its DaemonSet: the annotations (`kubectl rollout history`
  // shows kubernetes.io/change-cause) without kubectl's copy of the whole last applied object.
  static json RevisionAnnotations(const json& ds) {
    json annotations = Field(ds, {"metadata", "annotations"});
    if (!annotations.is_object()) return nullptr;
    annotations.erase("kubectl.kubernetes.io/last-applied-configuration");
    return annotations;
  }

  // The manage step, then (once nothing else needed doing) one rolling-update step: both act on
  // the same cache, so the second waits for the first's writes to be observed.
  Status Manage(const json& ds, const std::string& key, const std::vector<ObjectPtr>& nodes,
                const daemon::NodePods& node_pods, const std::string& hash, ctrl::TimePoint now) {
    const std::string uid = ctrl::UidOf(ds);
    auto backoff_key = [&uid](const std::string& node) { return uid + "/" + node; };
    daemon::NodePlan plan = daemon::PlanNodes(
        ds, nodes, node_pods, hash, now,
        [&](const std::string& node) { return backoff_.Remaining(backoff_key(node)).count() > 0; });
    for (const std::string& node : plan.nodes_in_backoff) {
      loop_.AddAfter(key, backoff_.Remaining(backoff_key(node)) + std::chrono::milliseconds(10));
    }
    for (const auto& [pod, node] : plan.failed_pods) {
      backoff_.Next(backoff_key(node));
      Event(ds, "Warning", daemon::kFailedDaemonPod,
            fmt::format("Found failed daemon pod {}/{} on node {}, will try to kill it",
                        ctrl::NamespaceOf(*pod), ctrl::NameOf(*pod), node));
    }
    if (!plan.nodes_needing_pods.empty() || !plan.pods_to_delete.empty()) {
      return SyncNodes(ds, key, plan.pods_to_delete, plan.nodes_needing_pods, hash);
    }
    daemon::RollingPlan rolling = daemon::PlanRollingUpdate(ds, nodes, node_pods, hash, now);
    if (rolling.nodes_needing_pods.empty() && rolling.pods_to_delete.empty()) return Status::Ok();
    return SyncNodes(ds, key, rolling.pods_to_delete, rolling.nodes_needing_pods, hash);
  }

  Status SyncNodes(const json& ds, const std::string& key, const std::vector<ObjectPtr>& to_delete,
                   std::vector<std::string> to_create, const std::string& hash) {
    if (static_cast<int>(to_create.size()) > options_.burst_replicas) {
      to_create.resize(options_.burst_replicas);  // the rest on a later sync
    }
    std::vector<std::string> delete_keys;
    for (const ObjectPtr& p : to_delete) delete_keys.push_back(ObjectKey(*p));
    // Expected before the writes: the informer may report them before the calls return.
    creations_.ExpectCreations(key, static_cast<int>(to_create.size()));
    deletions_.ExpectDeletions(key, delete_keys);

    const json ref = ctrl::NewControllerRef(ds, kApiVersion, kKind);
    const std::string ns = ctrl::NamespaceOf(ds);
    Status create_error;
    const int count = static_cast<int>(to_create.size());
    int created = ctrl::SlowStartBatch(
        count, 1,
        [&](int i) -> Status {
          json pod = daemon::NewDaemonPod(ds, ref, to_create[i], hash);
          auto result = context_.client.Create(resources::kPods, ns, pod);
          if (!result.ok()) {
            Event(ds, "Warning", "FailedCreate",
                  fmt::format("Error creating: {}", result.status().message()));
            return result.status();
          }
          Event(ds, "Normal", "SuccessfulCreate",
                fmt::format("Created pod: {}", ctrl::NameOf(*result)));
          return Status::Ok();
        },
        &create_error);
    for (int i = created; i < count; ++i) creations_.CreationObserved(key);

    std::mutex mu;
    Status delete_error;
    ctrl::RunParallel(static_cast<int>(to_delete.size()), 16, [&](int i) {
      const json& pod = *to_delete[i];
      auto result =
          context_.client.Delete(resources::kPods, ctrl::NamespaceOf(pod), ctrl::NameOf(pod));
      if (result.ok()) {
        Event(ds, "Normal", "SuccessfulDelete", fmt::format("Deleted pod: {}", ctrl::NameOf(pod)));
        return;
      }
      deletions_.DeletionObserved(key, delete_keys[i]);
      if (result.status().code() == StatusCode::kNotFound) return;
      Event(ds, "Warning", "FailedDelete",
            fmt::format("Error deleting: {}", result.status().message()));
      std::lock_guard lock(mu);
      if (delete_error.ok()) delete_error = result.status();
    });
    if (!create_error.ok()) {
      log::Warn(kComponent, "{}: created {} of {} pods: {}", key, created, count,
                create_error.message());
      return create_error;
    }
    return delete_error;
  }

  // Old revisions beyond revisionHistoryLimit go, but never the current one or one a live pod
  // still runs.
  Status TruncateHistory(const json& ds, const history::RevisionList& revisions,
                         const json& current, const std::vector<ObjectPtr>& pods) {
    std::set<std::string> in_use = {ctrl::NameOf(current)};
    for (const ObjectPtr& p : pods) {
      std::string hash =
          StringField(*p, {"metadata", "labels", history::kControllerRevisionHashLabel});
      if (!hash.empty()) in_use.insert(std::move(hash));
    }
    return history::TruncateHistory(context_.client, revisions, in_use,
                                    history::RevisionHistoryLimit(ds));
  }

  Status UpdateStatus(const json& ds, const json& status) {
    if (ctrl::DropEmpty(Field(ds, {"status"})) == ctrl::DropEmpty(status)) return Status::Ok();
    json next = ds;
    next["status"] = status;
    auto written =
        context_.client.Update(resources::kDaemonSets, ctrl::NamespaceOf(ds), next, "status");
    if (written.ok()) return Status::Ok();
    // A newer version is on its way through the informer, whose event syncs again.
    StatusCode code = written.status().code();
    if (code == StatusCode::kConflict || code == StatusCode::kNotFound) return Status::Ok();
    return written.status();
  }

  ControllerContext& context_;
  const DaemonSetControllerOptions options_;
  Informer& pods_;
  Informer& nodes_;
  Informer& owners_;
  Informer& revisions_;
  // Two ledgers, since a sync may both create and delete and each Expect* replaces its entry.
  ctrl::Expectations creations_;
  ctrl::Expectations deletions_;
  FailedPodBackoff backoff_;
  ctrl::ControllerLoop loop_;  // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewDaemonSetController(ControllerContext& context,
                                                  DaemonSetControllerOptions options) {
  return std::make_unique<DaemonSetController>(context, std::move(options));
}

std::unique_ptr<Component> NewDaemonSetController(ControllerContext& context) {
  return NewDaemonSetController(context, {});
}

}  // namespace orch
