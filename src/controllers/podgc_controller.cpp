// The pod garbage collector (podgc_controller.h): one periodic pass over the pod and node caches,
// as upstream's podgc, deleting what no kubelet will ever clean up.
#include "podgc_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "orch/log.h"

namespace orch {
namespace ctrl::podgc {

namespace {

bool IsTerminated(const json& pod) {
  const std::string phase = PodPhase(pod);
  return phase == "Succeeded" || phase == "Failed";
}

}  // namespace

std::vector<ObjectPtr> TerminatedPodsToDelete(const std::vector<ObjectPtr>& pods,
                                              int64_t threshold) {
  if (threshold <= 0) return {};
  std::vector<ObjectPtr> terminated;
  for (const ObjectPtr& p : pods) {
    if (IsTerminated(*p)) terminated.push_back(p);
  }
  const int64_t excess = static_cast<int64_t>(terminated.size()) - threshold;
  if (excess <= 0) return {};
  // RFC 3339 times in UTC compare as strings; names break ties so the choice is stable.
  std::sort(terminated.begin(), terminated.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
    const std::string ta = StringField(*a, {"metadata", "creationTimestamp"});
    const std::string tb = StringField(*b, {"metadata", "creationTimestamp"});
    if (ta != tb) return ta < tb;
    return ObjectKey(*a) < ObjectKey(*b);
  });
  std::vector<ObjectPtr> out;
  for (int64_t i = 0; i < excess; ++i) {
    if (!IsBeingDeleted(*terminated[i])) out.push_back(terminated[i]);
  }
  return out;
}

bool ShouldForceDeleteTerminating(const json& pod, const json& node, TimePoint now) {
  if (!IsBeingDeleted(pod)) return false;
  std::string ready;
  for (const json& c : Field(node, {"status", "conditions"})) {
    if (StringField(c, {"type"}) == "Ready") ready = StringField(c, {"status"});
  }
  if (ready == "True") return false;
  for (const json& t : Field(node, {"spec", "taints"})) {
    if (StringField(t, {"key"}) == kOutOfServiceTaint &&
        StringField(t, {"effect"}) == "NoExecute") {
      return true;
    }
  }
  auto deadline = ParseTime(StringField(pod, {"metadata", "deletionTimestamp"}));
  return deadline && now >= *deadline;
}

json MarkFailedPatch(const json& pod, const std::string& message, TimePoint now) {
  if (IsTerminated(pod)) return json();
  if (message.empty()) return {{"status", {{"phase", "Failed"}}}};
  json conditions = json::array();
  for (const json& c : Field(pod, {"status", "conditions"})) {
    if (StringField(c, {"type"}) != "DisruptionTarget") conditions.push_back(c);
  }
  conditions.push_back({{"type", "DisruptionTarget"},
                        {"status", "True"},
                        {"reason", "DeletionByPodGC"},
                        {"message", message},
                        {"lastTransitionTime", FormatTime(now)}});
  return {{"status", {{"phase", "Failed"}, {"conditions", std::move(conditions)}}}};
}

}  // namespace ctrl::podgc

namespace {

using namespace ctrl;         // NOLINT(google-build-using-namespace): the helpers of this folder
using namespace ctrl::podgc;  // NOLINT(google-build-using-namespace)

constexpr char kGcKey[] = "podgc";

class PodGcController : public Component {
 public:
  PodGcController(ControllerContext& context, PodGcControllerOptions options)
      : context_(context),
        options_(std::move(options)),
        pods_(context.informers.For(resources::kPods)),
        nodes_(context.informers.For(resources::kNodes)),
        // One key, visited every period: the collector is a periodic pass, as upstream's.
        loop_(
            "podgc", context.informers, 1, options_.period,
            [] { return std::vector<std::string>{kGcKey}; },
            [this](const std::string&) { return Collect(); }) {}

  std::string_view Name() const override { return "podgc"; }

  Status Start() override {
    loop_.Start();
    loop_.Add(kGcKey);
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  Status Collect() {
    const TimePoint now = options_.now();
    const std::vector<ObjectPtr> pods = pods_.List();
    Status first_error;
    auto keep = [&](const Status& s) {
      if (!s.ok() && first_error.ok()) first_error = s;
    };

    // Terminated pods beyond the threshold, oldest first.
    for (const ObjectPtr& p : TerminatedPodsToDelete(pods, options_.terminated_threshold)) {
      log::Info("podgc", "deleting terminated pod {} (over the threshold of {})", ObjectKey(*p),
                options_.terminated_threshold);
      keep(DeletePod(*p));
    }

    std::map<std::string, ObjectPtr> nodes;
    for (const ObjectPtr& n : nodes_.List()) nodes[NameOf(*n)] = n;
    // Quarantine: forget nodes seen again, date the newly missing ones.
    std::set<std::string> missing_now;
    for (const ObjectPtr& p : pods) {
      const std::string node = StringField(*p, {"spec", "nodeName"});
      if (!node.empty() && nodes.count(node) == 0) missing_now.insert(node);
    }
    for (auto it = missing_since_.begin(); it != missing_since_.end();) {
      it = missing_now.count(it->first) ? std::next(it) : missing_since_.erase(it);
    }
    for (const std::string& node : missing_now) missing_since_.emplace(node, now);

    std::map<std::string, bool> node_gone;  // confirmed with the API, once per pass
    for (const ObjectPtr& p : pods) {
      const json& pod = *p;
      const std::string node_name = StringField(pod, {"spec", "nodeName"});
      if (node_name.empty()) {
        // Unscheduled and terminating: no kubelet will ever finish the deletion.
        if (IsBeingDeleted(pod)) keep(ForceDelete(pod, "", now));
        continue;
      }
      auto node = nodes.find(node_name);
      if (node == nodes.end()) {
        if (now - missing_since_[node_name] < options_.quarantine) continue;
        auto gone = node_gone.find(node_name);
        if (gone == node_gone.end()) {
          auto fresh = context_.client.Get(resources::kNodes, "", node_name);
          const bool is_gone = !fresh.ok() && fresh.status().code() == StatusCode::kNotFound;
          gone = node_gone.emplace(node_name, is_gone).first;
        }
        if (!gone->second) continue;
        log::Info("podgc", "deleting pod {} bound to the deleted node {}", ObjectKey(pod),
                  node_name);
        keep(ForceDelete(pod, "PodGC: node no longer exists", now));
        continue;
      }
      if (ShouldForceDeleteTerminating(pod, *node->second, now)) {
        log::Info("podgc", "force-deleting terminating pod {} on the not-ready node {}",
                  ObjectKey(pod), node_name);
        keep(ForceDelete(pod, "", now));
      }
    }
    return first_error;
  }

  // Marks the pod Failed (with a DisruptionTarget condition saying `message`, if any) unless it
  // finished, then deletes it at once.
  Status ForceDelete(const json& pod, const std::string& message, TimePoint now) {
    json patch = MarkFailedPatch(pod, message, now);
    if (!patch.is_null()) {
      auto marked = context_.client.Patch(resources::kPods, NamespaceOf(pod), NameOf(pod),
                                          PatchType::kMerge, patch.dump(), "status");
      if (!marked.ok() && marked.status().code() != StatusCode::kNotFound) {
        return marked.status();
      }
    }
    return DeletePod(pod);
  }

  // Deletes without a grace period: no kubelet is left to honour one (or the pod is finished).
  Status DeletePod(const json& pod) {
    DeleteOptions options;
    options.grace_period_seconds = 0;
    options.precondition_uid = UidOf(pod);
    auto result = context_.client.Delete(resources::kPods, NamespaceOf(pod), NameOf(pod), options);
    if (result.ok() || result.status().code() == StatusCode::kNotFound ||
        result.status().code() == StatusCode::kConflict) {
      return Status::Ok();
    }
    return result.status();
  }

  ControllerContext& context_;
  const PodGcControllerOptions options_;
  Informer& pods_;
  Informer& nodes_;
  // Nodes pods are bound to that the cache does not hold, since when. Only the loop's single
  // worker touches it (one key, never processed twice at once).
  std::map<std::string, TimePoint> missing_since_;
  ControllerLoop loop_;  // last: its worker uses everything above
};

}  // namespace

std::unique_ptr<Component> NewPodGcController(ControllerContext& context) {
  return NewPodGcController(context, {});
}

std::unique_ptr<Component> NewPodGcController(ControllerContext& context,
                                              PodGcControllerOptions options) {
  return std::make_unique<PodGcController>(context, std::move(options));
}

}  // namespace orch
