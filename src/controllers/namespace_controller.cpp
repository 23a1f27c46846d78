// The namespace controller (namespace_controller.h): for a namespace being deleted, deletes the
// objects of every namespaced collection (custom resources included), reports progress in the
// namespace's conditions as upstream words them, and finalizes the namespace once it is empty.
#include "namespace_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "orch/log.h"

namespace orch {
namespace ctrl {

const std::vector<ResourceRef>& BuiltinNamespacedResources() {
  // Workloads first, so that their controllers stop replacing pods while the pods go.
  static const std::vector<ResourceRef> kResources = {
      resources::kCronJobs,
      resources::kJobs,
      resources::kDeployments,
      resources::kDaemonSets,
      resources::kStatefulSets,
      resources::kReplicaSets,
      resources::kReplicationControllers,
      resources::kControllerRevisions,
      resources::kPods,
      {"", "v1", "podtemplates"},
      resources::kServices,
      resources::kEndpoints,
      resources::kEndpointSlices,
      resources::kConfigMaps,
      resources::kSecrets,
      resources::kServiceAccounts,
      resources::kPersistentVolumeClaims,
      {"", "v1", "resourcequotas"},
      {"", "v1", "limitranges"},
      {"autoscaling", "v2", "horizontalpodautoscalers"},
      resources::kLeases,
      resources::kIngresses,
      {"networking.k8s.io", "v1", "networkpolicies"},
      resources::kPodDisruptionBudgets,
      {"rbac.authorization.k8s.io", "v1", "rolebindings"},
      {"rbac.authorization.k8s.io", "v1", "roles"},
      resources::kEvents,
      {"events.k8s.io", "v1", "events"},
  };
  return kResources;
}

}  // namespace ctrl

namespace {

using namespace ctrl;  // NOLINT(google-build-using-namespace): the helpers of this folder

const ResourceRef kCrds{"apiextensions.k8s.io", "v1", "customresourcedefinitions", false};

// What one pass over a namespace's content found.
struct ContentReport {
  std::map<std::string, int> remaining;   // "pods." / "deployments.apps" -> count
  std::map<std::string, int> finalizers;  // finalizer -> objects carrying it
  std::vector<std::string> errors;        // failed lists and deletes
  std::chrono::seconds wait{0};           // the longest pod grace period pending
  bool discovery_failed = false;
};

std::string Qualified(const ResourceRef& ref) {
  return ref.resource + "." + ref.group;
}

std::string JoinCounts(const std::map<std::string, int>& counts) {
  std::string out;
  for (const auto& [what, n] : counts) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} has {} resource instances", what, n);
  }
  return out;
}

std::string JoinFinalizers(const std::map<std::string, int>& counts) {
  std::string out;
  for (const auto& [what, n] : counts) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} in {} resource instances", what, n);
  }
  return out;
}

json Condition(const std::string& type, bool status, const std::string& reason,
               const std::string& message) {
  return {{"type", type},
          {"status", status ? "True" : "False"},
          {"reason", reason},
          {"message", message}};
}

class NamespaceController : public Component {
 public:
  NamespaceController(ControllerContext& context, NamespaceControllerOptions options)
      : client_(context.client),
        options_(std::move(options)),
        namespaces_(context.informers.For(resources::kNamespaces)),
        loop_(
            "namespace", context.informers, context.workers, std::chrono::minutes(5),
            [this] { return InformerKeys(namespaces_); },
            [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return "namespace"; }

  Status Start() override {
    namespaces_.AddHandler({
        [this](const ObjectPtr& ns) { Enqueue(*ns); },
        [this](const ObjectPtr&, const ObjectPtr& ns) { Enqueue(*ns); },
        nullptr,
    });
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  void Enqueue(const json& ns) {
    if (IsBeingDeleted(ns)) loop_.Add(ObjectKey(ns));
  }

  static bool HasOurFinalizer(const json& ns) {
    const json& finalizers = Field(ns, {"spec", "finalizers"});
    return finalizers.is_array() &&
           std::find(finalizers.begin(), finalizers.end(), kNamespaceFinalizer) != finalizers.end();
  }

  Status Sync(const std::string& key) {
    ObjectPtr cached = namespaces_.Get("", key);
    if (!cached || !IsBeingDeleted(*cached)) return Status::Ok();
    // The cache may be behind: act on what the API has now.
    auto ns = client_.Get(resources::kNamespaces, "", key);
    if (!ns.ok()) {
      return ns.status().code() == StatusCode::kNotFound ? Status::Ok() : ns.status();
    }
    if (!IsBeingDeleted(*ns) || !HasOurFinalizer(*ns)) return Status::Ok();

    ContentReport report = DeleteContent(key);
    UpdateConditions(*ns, report);
    if (!report.errors.empty()) {
      return Unavailable(fmt::format("namespace {}: {}", key, report.errors.front()));
    }
    if (!report.remaining.empty()) {
      auto delay = std::max<std::chrono::milliseconds>(options_.recheck, report.wait);
      loop_.AddAfter(key, delay);
      return Status::Ok();
    }
    return Finalize(key);
  }

  std::vector<ResourceRef> Collections(ContentReport& report) {
    std::vector<ResourceRef> refs = BuiltinNamespacedResources();
    auto crds = client_.List(kCrds, "");
    if (!crds.ok()) {
      if (crds.status().code() != StatusCode::kNotFound) report.discovery_failed = true;
      return refs;
    }
    for (const json& crd : crds->items) {
      if (StringField(crd, {"spec", "scope"}) != "Namespaced") continue;
      for (const json& version : Field(crd, {"spec", "versions"})) {
        if (!BoolField(version, {"served"})) continue;
        refs.push_back({StringField(crd, {"spec", "group"}), StringField(version, {"name"}),
                        StringField(crd, {"spec", "names", "plural"})});
        break;  // one served version reaches every object of the resource
      }
    }
    return refs;
  }

  ContentReport DeleteContent(const std::string& ns) {
    ContentReport report;
    for (const ResourceRef& ref : Collections(report)) {
      auto list = client_.List(ref, ns);
      if (!list.ok()) {
        // A collection this API does not serve has nothing to delete.
        if (list.status().code() != StatusCode::kNotFound) {
          report.errors.push_back(list.status().message());
        }
        continue;
      }
      int remaining = 0;
      for (const json& item : list->items) {
        json left = item;
        if (!IsBeingDeleted(item)) {
          DeleteOptions options;
          options.propagation_policy = "Background";
          options.precondition_uid = UidOf(item);
          auto deleted = client_.Delete(ref, ns, NameOf(item), options);
          if (!deleted.ok()) {
            if (deleted.status().code() == StatusCode::kNotFound) continue;
            report.errors.push_back(deleted.status().message());
            ++remaining;
            continue;
          }
          if (deleted->is_null()) continue;  // gone at once
          left = std::move(*deleted);
        }
        ++remaining;
        for (const json& f : Field(left, {"metadata", "finalizers"})) {
          if (f.is_string()) ++report.finalizers[f.get<std::string>()];
        }
        auto grace =
            std::chrono::seconds(IntField(left, {"metadata", "deletionGracePeriodSeconds"}));
        report.wait = std::max(report.wait, grace);
      }
      if (remaining > 0) report.remaining[Qualified(ref)] = remaining;
    }
    return report;
  }

  // The conditions upstream's namespace controller reports while it deletes content.
  void UpdateConditions(const json& ns, const ContentReport& report) {
    std::vector<json> wanted = {
        report.discovery_failed
            ? Condition("NamespaceDeletionDiscoveryFailure", true, "DiscoveryFailed",
                        "Discovery failed for some groups: apiextensions.k8s.io/v1")
            : Condition("NamespaceDeletionDiscoveryFailure", false, "ResourcesDiscovered",
                        "All resources successfully discovered"),
        Condition("NamespaceDeletionGroupVersionParsingFailure", false, "ParsedGroupVersions",
                  "All legacy kube types successfully parsed"),
        report.errors.empty()
            ? Condition("NamespaceDeletionContentFailure", false, "ContentDeleted",
                        "All content successfully deleted, may be waiting on finalization")
            : Condition("NamespaceDeletionContentFailure", true, "ContentDeletionFailed",
                        "Failed to delete all resource types, " +
                            std::to_string(report.errors.size()) +
                            " remaining: " + report.errors.front()),
        report.remaining.empty()
            ? Condition("NamespaceContentRemaining", false, "ContentRemoved",
                        "All content successfully removed")
            : Condition("NamespaceContentRemaining", true, "SomeResourcesRemain",
                        "Some resources are remaining: " + JoinCounts(report.remaining)),
        report.finalizers.empty()
            ? Condition("NamespaceFinalizersRemaining", false, "ContentHasNoFinalizers",
                        "All content-preserving finalizers finished")
            : Condition("NamespaceFinalizersRemaining", true, "SomeFinalizersRemain",
                        "Some content in the namespace has finalizers remaining: " +
                            JoinFinalizers(report.finalizers)),
    };
    json conditions = json::array();
    bool changed = false;
    const json& status = Field(ns, {"status"});
    const std::string now = FormatTime(options_.now());
    for (json& c : wanted) {
      const json* current = FindCondition(status, StringField(c, {"type"}));
      if (current != nullptr && StringField(*current, {"status"}) == StringField(c, {"status"}) &&
          StringField(*current, {"reason"}) == StringField(c, {"reason"}) &&
          StringField(*current, {"message"}) == StringField(c, {"message"})) {
        conditions.push_back(*current);
        continue;
      }
      c["lastTransitionTime"] =
          current != nullptr && StringField(*current, {"status"}) == StringField(c, {"status"})
              ? StringField(*current, {"lastTransitionTime"})
              : now;
      conditions.push_back(std::move(c));
      changed = true;
    }
    if (!changed) return;
    json patch = {{"status", {{"conditions", std::move(conditions)}}}};
    auto patched = client_.Patch(resources::kNamespaces, "", NameOf(ns), PatchType::kMerge,
                                 patch.dump(), "status");
    if (!patched.ok() && patched.status().code() != StatusCode::kNotFound) {
      log::Warn("namespace", "namespace {}: writing conditions: {}", NameOf(ns),
                patched.status().message());
    }
  }

  // Removes `kubernetes` from spec.finalizers through namespaces/NAME/finalize; the API deletes
  // the namespace when no finalizer is left.
  Status Finalize(const std::string& name) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto ns = client_.Get(resources::kNamespaces, "", name);
      if (!ns.ok()) {
        return ns.status().code() == StatusCode::kNotFound ? Status::Ok() : ns.status();
      }
      if (!HasOurFinalizer(*ns)) return Status::Ok();
      json next = *ns;
      json kept = json::array();
      for (const json& f : Field(*ns, {"spec", "finalizers"})) {
        if (f != kNamespaceFinalizer) kept.push_back(f);
      }
      next["spec"]["finalizers"] = std::move(kept);
      auto written = client_.Update(resources::kNamespaces, "", next, "finalize");
      if (written.ok() || written.status().code() == StatusCode::kNotFound) {
        log::Info("namespace", "namespace {} is empty and finalized", name);
        return Status::Ok();
      }
      if (written.status().code() != StatusCode::kConflict) return written.status();
    }
    return Conflict("namespace " + name + " kept changing while being finalized");
  }

  ApiClient& client_;
  const NamespaceControllerOptions options_;
  Informer& namespaces_;
  ControllerLoop loop_;
};

}  // namespace

std::unique_ptr<Component> NewNamespaceController(ControllerContext& context) {
  return NewNamespaceController(context, NamespaceControllerOptions{});
}

std::unique_ptr<Component> NewNamespaceController(ControllerContext& context,
                                                  NamespaceControllerOptions options) {
  return std::make_unique<NamespaceController>(context, std::move(options));
}

}  // namespace orch
