// The pvc-protection and pv-protection controllers: every claim carries the
// kubernetes.io/pvc-protection finalizer and every volume kubernetes.io/pv-protection, so a
// claim a pod still uses, or a volume still bound, outlives its deletion until it is free.
#include "storage_protection_controller.h"

#include <fmt/format.h>

#include <algorithm>

#include "controller_util.h"
#include "orch/log.h"

namespace orch {
namespace {

using ctrl::Field;
using ctrl::json;
using ctrl::StringField;

constexpr char kPvcFinalizer[] = "kubernetes.io/pvc-protection";
constexpr char kPvFinalizer[] = "kubernetes.io/pv-protection";

bool HasFinalizer(const json& object, const std::string& finalizer) {
  const json& list = Field(object, {"metadata", "finalizers"});
  return list.is_array() && std::find(list.begin(), list.end(), finalizer) != list.end();
}

// Adds or removes `finalizer` with a merge patch carrying the resourceVersion it was computed
// from: a concurrent change makes it fail with a conflict and the key is retried.
Status SetFinalizer(ApiClient& client, const ResourceRef& ref, const json& object,
                    const std::string& finalizer, bool present) {
  json list = json::array();
  for (const json& f : Field(object, {"metadata", "finalizers"})) {
    if (f != finalizer) list.push_back(f);
  }
  if (present) list.push_back(finalizer);
  json patch = {{"metadata",
                 {{"finalizers", std::move(list)},
                  {"resourceVersion", StringField(object, {"metadata", "resourceVersion"})}}}};
  auto patched = client.Patch(ref, ctrl::NamespaceOf(object), ctrl::NameOf(object),
                              PatchType::kMerge, patch.dump());
  if (!patched.ok() && patched.status().code() != StatusCode::kNotFound) return patched.status();
  return Status::Ok();
}

// Whether a pod that is not finished mounts the claim (upstream's podUsesPVC).
bool PodUsesClaim(const json& pod, const std::string& claim) {
  std::string phase = StringField(pod, {"status", "phase"});
  if (phase == "Succeeded" || phase == "Failed") return false;
  for (const json& volume : Field(pod, {"spec", "volumes"})) {
    if (StringField(volume, {"persistentVolumeClaim", "claimName"}) == claim) return true;
    // A generic ephemeral volume's claim is named <pod>-<volume>.
    if (Field(volume, {"ephemeral"}).is_object() &&
        ctrl::NameOf(pod) + "-" + StringField(volume, {"name"}) == claim) {
      return true;
    }
  }
  return false;
}

class PvcProtectionController : public Component {
 public:
  explicit PvcProtectionController(ControllerContext& context)
      : client_(context.client),
        claims_(context.informers.For(resources::kPersistentVolumeClaims)),
        pods_(context.informers.For(resources::kPods)),
        loop_(
            "pvc-protection", context.informers, context.workers, std::chrono::minutes(5),
            [this] { return Keys(); }, [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return "pvc-protection"; }

  Status Start() override {
    auto claim_changed = [this](const ObjectPtr& claim) {
      loop_.Add(ctrl::NamespaceOf(*claim) + "/" + ctrl::NameOf(*claim));
    };
    claims_.AddHandler({claim_changed,
                        [claim_changed](const ObjectPtr&, const ObjectPtr& c) { claim_changed(c); },
                        nullptr});
    // A pod that finishes or goes may free the claims it used.
    auto pod_changed = [this](const ObjectPtr& pod) {
      for (const json& volume : Field(*pod, {"spec", "volumes"})) {
        std::string claim = StringField(volume, {"persistentVolumeClaim", "claimName"});
        if (claim.empty() && Field(volume, {"ephemeral"}).is_object()) {
          claim = ctrl::NameOf(*pod) + "-" + StringField(volume, {"name"});
        }
        if (!claim.empty()) loop_.Add(ctrl::NamespaceOf(*pod) + "/" + claim);
      }
    };
    pods_.AddHandler({nullptr,
                      [pod_changed](const ObjectPtr&, const ObjectPtr& p) { pod_changed(p); },
                      pod_changed});
    loop_.Start();
    return Status::Ok();
  }
  void Stop() override { loop_.Stop(); }

 private:
  std::vector<std::string> Keys() {
    std::vector<std::string> keys;
    for (const ObjectPtr& c : claims_.List()) {
      keys.push_back(ctrl::NamespaceOf(*c) + "/" + ctrl::NameOf(*c));
    }
    return keys;
  }

  Status Sync(const std::string& key) {
    size_t slash = key.find('/');
    if (slash == std::string::npos) return Status::Ok();
    const std::string ns = key.substr(0, slash);
    const std::string name = key.substr(slash + 1);
    ObjectPtr claim = claims_.Get(ns, name);
    if (!claim) return Status::Ok();
    bool has = HasFinalizer(*claim, kPvcFinalizer);
    if (!ctrl::IsBeingDeleted(*claim)) {
      if (has) return Status::Ok();
      return SetFinalizer(client_, resources::kPersistentVolumeClaims, *claim, kPvcFinalizer, true);
    }
    if (!has) return Status::Ok();
    for (const ObjectPtr& pod : pods_.List(ns)) {
      if (PodUsesClaim(*pod, name)) return Status::Ok();  // the pod's change queues it again
    }
    // The cache may lag behind a pod created a moment ago: only the API may say none is left.
    auto live = client_.List(resources::kPods, ns, ListOptions{});
    if (!live.ok()) return live.status();
    for (const json& pod : live->items) {
      if (PodUsesClaim(pod, name)) {
        loop_.AddAfter(key, std::chrono::seconds(5));
        return Status::Ok();
      }
    }
    log::Info("pvc-protection", "claim {}/{} is no longer used: removing {}", ns, name,
              kPvcFinalizer);
    return SetFinalizer(client_, resources::kPersistentVolumeClaims, *claim, kPvcFinalizer, false);
  }

  ApiClient& client_;
  Informer& claims_;
  Informer& pods_;
  ctrl::ControllerLoop loop_;  // last: its workers use everything above
};

class PvProtectionController : public Component {
 public:
  explicit PvProtectionController(ControllerContext& context)
      : client_(context.client),
        volumes_(context.informers.For(resources::kPersistentVolumes)),
        loop_(
            "pv-protection", context.informers, context.workers, std::chrono::minutes(5),
            [this] { return Keys(); }, [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return "pv-protection"; }

  Status Start() override {
    auto changed = [this](const ObjectPtr& volume) { loop_.Add(ctrl::NameOf(*volume)); };
    volumes_.AddHandler(
        {changed, [changed](const ObjectPtr&, const ObjectPtr& v) { changed(v); }, nullptr});
    loop_.Start();
    return Status::Ok();
  }
  void Stop() override { loop_.Stop(); }

 private:
  std::vector<std::string> Keys() {
    std::vector<std::string> keys;
    for (const ObjectPtr& v : volumes_.List()) keys.push_back(ctrl::NameOf(*v));
    return keys;
  }

  Status Sync(const std::string& name) {
    ObjectPtr volume = volumes_.Get("", name);
    if (!volume) return Status::Ok();
    bool has = HasFinalizer(*volume, kPvFinalizer);
    if (!ctrl::IsBeingDeleted(*volume)) {
      if (has) return Status::Ok();
      return SetFinalizer(client_, resources::kPersistentVolumes, *volume, kPvFinalizer, true);
    }
    // Upstream's rule: a volume is in use while it is Bound.
    if (!has || StringField(*volume, {"status", "phase"}) == "Bound") return Status::Ok();
    return SetFinalizer(client_, resources::kPersistentVolumes, *volume, kPvFinalizer, false);
  }

  ApiClient& client_;
  Informer& volumes_;
  ctrl::ControllerLoop loop_;
};

}  // namespace

std::unique_ptr<Component> NewPvcProtectionController(ControllerContext& context) {
  return std::make_unique<PvcProtectionController>(context);
}

std::unique_ptr<Component> NewPvProtectionController(ControllerContext& context) {
  return std::make_unique<PvProtectionController>(context);
}

}  // namespace orch
