// The CRD controller (crd.h): CustomResourceDefinition objects in, served resource types,
// status conditions and cleanup out. One thread works a queue of CRD names fed by the watch.
#include "crd.h"

#include <fmt/format.h>

#include "orch/json_path.h"
#include "orch/log.h"
#include "schema_loader.h"
#include "strategies.h"

namespace orch::api {
namespace {

using json_path::Field;

constexpr char kCleanupFinalizer[] = "customresourcecleanup.apiextensions.k8s.io";
constexpr char kResync[] = "";  // queue token: relist everything

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

json Condition(const std::string& type, const std::string& status, const std::string& reason,
               const std::string& message, const json& previous) {
  // Keep the transition time while the status stays the same.
  std::string since = NowTime();
  if (previous.is_array()) {
    for (const json& c : previous) {
      if (c.value("type", "") == type && c.value("status", "") == status) {
        since = c.value("lastTransitionTime", since);
      }
    }
  }
  return {{"type", type},
          {"status", status},
          {"reason", reason},
          {"message", message},
          {"lastTransitionTime", since}};
}

}  // namespace

void ValidateCustomResourceDefinition(const json& crd, FieldErrors& errors) {
  std::string group = json_path::String(crd, {"spec", "group"});
  std::string plural = json_path::String(crd, {"spec", "names", "plural"});
  std::string kind = json_path::String(crd, {"spec", "names", "kind"});
  if (group.empty()) errors.push_back(FieldRequired("spec.group"));
  if (plural.empty()) errors.push_back(FieldRequired("spec.names.plural"));
  if (kind.empty()) errors.push_back(FieldRequired("spec.names.kind"));
  std::string name = Name(crd);
  if (!group.empty() && !plural.empty() && name != plural + "." + group) {
    errors.push_back(
        FieldInvalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group"));
  }
  const json& scope = Field(crd, {"spec", "scope"});
  if (!scope.is_string() || (scope != "Namespaced" && scope != "Cluster")) {
    errors.push_back(FieldNotSupported("spec.scope", scope, {"Cluster", "Namespaced"}));
  }
  const json& versions = Field(crd, {"spec", "versions"});
  if (!versions.is_array() || versions.empty()) {
    errors.push_back(FieldInvalid("spec.versions", versions,
                                  "must have exactly one version marked as storage version"));
    return;
  }
  int storage = 0;
  for (size_t i = 0; i < versions.size(); ++i) {
    const json& v = versions[i];
    std::string path = fmt::format("spec.versions[{}]", i);
    if (!v.is_object() || !v.contains("name") || !v["name"].is_string()) {
      errors.push_back(FieldRequired(path + ".name"));
      continue;
    }
    if (v.value("storage", false)) ++storage;
    const json& schema = Field(v, {"schema", "openAPIV3Schema"});
    if (schema.is_null()) {
      errors.push_back(FieldRequired(path + ".schema.openAPIV3Schema", "schemas are required"));
      continue;
    }
    for (FieldError& e : ValidateStructuralSchema(schema, path + ".schema.openAPIV3Schema")) {
      errors.push_back(std::move(e));
    }
  }
  if (storage != 1) {
    errors.push_back(FieldInvalid("spec.versions", versions.size(),
                                  "must have exactly one version marked as storage version"));
  }
}

CrdController::CrdController(ResourceRegistry& registry,
                             std::shared_ptr<const ResourceSet> builtins, const SchemaSet* schemas,
                             Rest& rest)
    : registry_(registry),
      builtins_(std::move(builtins)),
      schemas_(schemas),
      rest_(rest),
      crds_(builtins_->Find("apiextensions.k8s.io", "v1", "customresourcedefinitions")) {}

CrdController::~CrdController() {
  Stop();
}

Status CrdController::Start(WatchCache& cache) {
  auto listed = rest_.List(*crds_, "", {});
  if (!listed.ok()) return Unavailable("list CRDs: " + listed.error().message);
  for (const json& crd : listed->items) Sync(Name(crd));
  auto subscription = cache.Subscribe(
      *crds_, {}, listed->revision,
      [this](const WatchEvent& e) {
        std::lock_guard lock(mu_);
        std::string name = e.object ? Name(*e.object) : kResync;
        if (queued_.insert(name).second) queue_.push_back(name);
        wake_.notify_one();
        return true;
      },
      [this] {
        std::lock_guard lock(mu_);
        if (queued_.insert(kResync).second) queue_.push_back(kResync);
        wake_.notify_one();
      });
  if (!subscription.ok()) return Unavailable("watch CRDs: " + subscription.error().message);
  subscription_ = *subscription;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void CrdController::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    wake_.notify_all();
  }
  if (subscription_) subscription_->Cancel();
  if (thread_.joinable()) thread_.join();
}

void CrdController::Run() {
  for (;;) {
    std::string name;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      name = queue_.front();
      queue_.pop_front();
      queued_.erase(name);
    }
    if (name == kResync) {
      // The watch ended (cache reset): every CRD is synced again. The subscription is not
      // renewed here; the cache only resets when the datastore lost history, and a restart of
      // the server is the honest recovery then.
      auto listed = rest_.List(*crds_, "", {});
      if (listed.ok()) {
        std::set<std::string> present;
        for (const json& crd : listed->items) present.insert(Name(crd));
        for (const auto& [served, types] : served_) present.insert(served);
        for (const std::string& n : present) Sync(n);
      }
      continue;
    }
    Sync(name);
  }
}

void CrdController::Publish() {
  auto next = std::make_shared<ResourceSet>();
  for (const auto& t : builtins_->all()) next->Add(t);
  for (const auto& [name, types] : served_) {
    for (const auto& t : types) next->Add(t);
  }
  registry_.Replace(std::move(next));
}

void CrdController::Sync(const std::string& name) {
  auto got = rest_.Get(*crds_, "", name);
  if (!got.ok()) {
    if (served_.erase(name) > 0) {
      Publish();
      log::Info("crd", "stopped serving {}", name);
    }
    return;
  }
  json crd = std::move(*got);
  WriteOptions write;
  write.field_manager = "orch-crd-controller";
  const json& finalizers = Field(crd, {"metadata", "finalizers"});
  bool has_finalizer = finalizers.is_array() && std::find(finalizers.begin(), finalizers.end(),
                                                          kCleanupFinalizer) != finalizers.end();

  if (IsDeleting(crd)) {
    // Remove every custom resource, then let the CRD go.
    auto it = served_.find(name);
    if (it != served_.end() && !it->second.empty()) {
      DeleteOptions del;
      auto deleted = rest_.DeleteCollection(*it->second.front(), "", {}, del);
      if (!deleted.ok()) {
        log::Warn("crd", "deleting the objects of {}: {}", name, deleted.error().message);
        return;
      }
    }
    served_.erase(name);
    Publish();
    if (has_finalizer) {
      json next = crd;
      json kept = json::array();
      for (const json& f : finalizers) {
        if (f != kCleanupFinalizer) kept.push_back(f);
      }
      next["metadata"]["finalizers"] = kept;
      auto updated = rest_.Update(*crds_, "", name, next, "", write);
      if (!updated.ok() && updated.error().code != 404) {
        log::Warn("crd", "finalizing {}: {}", name, updated.error().message);
      }
    }
    return;
  }
  if (!has_finalizer) {
    json next = crd;
    if (!next["metadata"].contains("finalizers") || !next["metadata"]["finalizers"].is_array()) {
      next["metadata"]["finalizers"] = json::array();
    }
    next["metadata"]["finalizers"].push_back(kCleanupFinalizer);
    auto updated = rest_.Update(*crds_, "", name, next, "", write);
    if (updated.ok()) crd = std::move(updated->object);
  }

  const json& spec = crd["spec"];
  std::string group = spec.value("group", "");
  json names = spec.value("names", json::object());
  std::string kind = names.value("kind", "");
  std::string plural = names.value("plural", "");
  if (!names.contains("singular")) names["singular"] = Lower(kind);
  if (!names.contains("listKind")) names["listKind"] = kind + "List";

  // Names must not collide with another served resource of the group.
  std::string conflict;
  auto current = registry_.Current();
  for (const auto& t : current->all()) {
    if (t->group != group) continue;
    bool ours = false;
    auto mine = served_.find(name);
    if (mine != served_.end()) {
      for (const auto& m : mine->second) ours |= m.get() == t.get();
    }
    if (!ours && (t->plural == plural || t->kind == kind)) {
      conflict = fmt::format("\"{}\" is already in use", t->plural == plural ? plural : kind);
    }
  }

  std::vector<std::shared_ptr<const ResourceType>> types;
  std::string storage_version;
  if (conflict.empty()) {
    for (const json& v : spec.value("versions", json::array())) {
      if (v.value("storage", false)) storage_version = v.value("name", "");
      if (!v.value("served", true)) continue;
      auto t = std::make_shared<ResourceType>();
      t->group = group;
      t->version = v.value("name", "");
      t->kind = kind;
      t->plural = plural;
      t->singular = names["singular"].get<std::string>();
      t->namespaced = spec.value("scope", "Namespaced") == "Namespaced";
      t->short_names = names.value("shortNames", std::vector<std::string>{});
      t->categories = names.value("categories", std::vector<std::string>{});
      const json& subs = Field(v, {"subresources"});
      if (subs.is_object() && subs.contains("status")) {
        t->subresources.push_back({"status", "", "", "", {"get", "patch", "update"}});
      }
      if (subs.is_object() && subs.contains("scale")) {
        t->subresources.push_back(
            {"scale", "autoscaling", "v1", "Scale", {"get", "patch", "update"}});
      }
      auto set = std::make_shared<SchemaSet>();
      const json& schema = Field(v, {"schema", "openAPIV3Schema"});
      if (!schema.is_null()) {
        auto root = AddCustomResourceSchema(*set, schema, group, t->version, kind, schemas_);
        if (!root.ok()) {
          log::Warn("crd", "{} version {}: {}", name, t->version, root.status().message());
          continue;
        }
        t->schema = *root;
      }
      t->owner = set;
      t->strategy = StrategyFor(group, kind);
      t->crd = true;
      t->crd_version = v;
      std::vector<std::string> selectable;
      for (const json& f : v.value("selectableFields", json::array())) {
        selectable.push_back(f.value("jsonPath", ""));
      }
      t->field_rules = CustomResourceFieldRules(t->namespaced, selectable);
      types.push_back(std::move(t));
    }
  }
  served_[name] = std::move(types);
  Publish();

  // Status: the names are accepted and the resource is served.
  json status = crd.value("status", json::object());
  json previous = status.value("conditions", json::array());
  json conditions = json::array();
  if (conflict.empty()) {
    conditions.push_back(
        Condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", previous));
    conditions.push_back(Condition("Established", "True", "InitialNamesAccepted",
                                   "the initial names have been accepted", previous));
  } else {
    conditions.push_back(Condition("NamesAccepted", "False", "NameConflict", conflict, previous));
    conditions.push_back(
        Condition("Established", "False", "NotAccepted", "not all names are accepted", previous));
  }
  json stored = status.value("storedVersions", json::array());
  if (!storage_version.empty() &&
      std::find(stored.begin(), stored.end(), storage_version) == stored.end()) {
    stored.push_back(storage_version);
  }
  json next_status = {{"conditions", conditions},
                      {"acceptedNames", conflict.empty() ? names : json::object()},
                      {"storedVersions", stored}};
  if (next_status != status) {
    json next = crd;
    next["status"] = next_status;
    auto updated = rest_.Update(*crds_, "", name, next, "status", write);
    if (!updated.ok() && updated.error().code != 404) {
      log::Warn("crd", "status of {}: {}", name, updated.error().message);
    }
  }
  if (conflict.empty()) log::Debug("crd", "serving {}", name);
}

}  // namespace orch::api
