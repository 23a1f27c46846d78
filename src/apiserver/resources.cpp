// The built-in resource table (names, scope, short names, categories and subresources as
// upstream's discovery lists them) and the ResourceSet indexes.
#include "resources.h"

#include "strategies.h"

namespace orch::api {
namespace {

const std::vector<std::string> kStandardVerbs = {"create", "delete", "deletecollection", "get",
                                                 "list",   "patch",  "update",           "watch"};
const std::vector<std::string> kStatusVerbs = {"get", "patch", "update"};

struct Row {
  const char* group;
  const char* version;
  const char* kind;
  const char* plural;
  bool namespaced;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  std::vector<Subresource> subresources;
  std::vector<std::string> verbs;  // empty = standard
};

Subresource Status() { return {"status", "", "", "", kStatusVerbs}; }
Subresource Scale() { return {"scale", "autoscaling", "v1", "Scale", kStatusVerbs}; }

std::vector<Row> BuiltinRows() {
  const std::vector<std::string> all = {"all"};
  return {
      // core/v1
      {"", "v1", "Namespace", "namespaces", false, {"ns"}, {}, {Status(), {"finalize", "", "", "", {"update"}}}, {"create", "delete", "get", "list", "patch", "update", "watch"}},
      {"", "v1", "Node", "nodes", false, {"no"}, {}, {Status(), {"proxy", "", "", "NodeProxyOptions", {"create", "delete", "get", "patch", "update"}}}, {}},
      {"", "v1", "Pod", "pods", true, {"po"}, all,
       {{"attach", "", "", "PodAttachOptions", {"create", "get"}},
        {"binding", "", "", "Binding", {"create"}},
        {"ephemeralcontainers", "", "", "", kStatusVerbs},
        {"eviction", "policy", "v1", "Eviction", {"create"}},
        {"exec", "", "", "PodExecOptions", {"create", "get"}},
        {"log", "", "", "", {"get"}},
        {"portforward", "", "", "PodPortForwardOptions", {"create", "get"}},
        {"proxy", "", "", "PodProxyOptions", {"create", "delete", "get", "patch", "update"}},
        Status()},
       {}},
      {"", "v1", "Binding", "bindings", true, {}, {}, {}, {"create"}},
      {"", "v1", "PodTemplate", "podtemplates", true, {}, {}, {}, {}},
      {"", "v1", "Service", "services", true, {"svc"}, all, {{"proxy", "", "", "ServiceProxyOptions", {"create", "delete", "get", "patch", "update"}}, Status()}, {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}},
      {"", "v1", "Endpoints", "endpoints", true, {"ep"}, {}, {}, {}},
      {"", "v1", "ConfigMap", "configmaps", true, {"cm"}, {}, {}, {}},
      {"", "v1", "Secret", "secrets", true, {}, {}, {}, {}},
      {"", "v1", "ServiceAccount", "serviceaccounts", true, {"sa"}, {}, {{"token", "authentication.k8s.io", "v1", "TokenRequest", {"create"}}}, {}},
      {"", "v1", "Event", "events", true, {"ev"}, {}, {}, {}},
      {"", "v1", "PersistentVolume", "persistentvolumes", false, {"pv"}, {}, {Status()}, {}},
      {"", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, {"pvc"}, {}, {Status()}, {}},
      {"", "v1", "ReplicationController", "replicationcontrollers", true, {"rc"}, all, {Scale(), Status()}, {}},
      {"", "v1", "ResourceQuota", "resourcequotas", true, {"quota"}, {}, {Status()}, {}},
      {"", "v1", "LimitRange", "limitranges", true, {"limits"}, {}, {}, {}},
      // apps/v1
      {"apps", "v1", "ControllerRevision", "controllerrevisions", true, {}, {}, {}, {}},
      {"apps", "v1", "DaemonSet", "daemonsets", true, {"ds"}, all, {Status()}, {}},
      {"apps", "v1", "Deployment", "deployments", true, {"deploy"}, all, {Scale(), Status()}, {}},
      {"apps", "v1", "ReplicaSet", "replicasets", true, {"rs"}, all, {Scale(), Status()}, {}},
      {"apps", "v1", "StatefulSet", "statefulsets", true, {"sts"}, all, {Scale(), Status()}, {}},
      // autoscaling
      {"autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, {"hpa"}, all, {Status()}, {}},
      {"autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, {"hpa"}, all, {Status()}, {}},
      // batch/v1
      {"batch", "v1", "CronJob", "cronjobs", true, {"cj"}, all, {Status()}, {}},
      {"batch", "v1", "Job", "jobs", true, {}, all, {Status()}, {}},
      // others
      {"coordination.k8s.io", "v1", "Lease", "leases", true, {}, {}, {}, {}},
      {"discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, {}, {}, {}, {}},
      {"events.k8s.io", "v1", "Event", "events", true, {"ev"}, {}, {}, {}},
      {"networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, {}, {}, {}, {}},
      {"networking.k8s.io", "v1", "Ingress", "ingresses", true, {"ing"}, {}, {Status()}, {}},
      {"networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, {"netpol"}, {}, {}, {}},
      {"policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, {"pdb"}, {}, {Status()}, {}},
      {"scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, {"pc"}, {}, {}, {}},
      {"rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, {}, {}, {}, {}},
      {"rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, {}, {}, {}, {}},
      {"rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, {}, {}, {}, {}},
      {"rbac.authorization.k8s.io", "v1", "Role", "roles", true, {}, {}, {}, {}},
      {"storage.k8s.io", "v1", "StorageClass", "storageclasses", false, {"sc"}, {}, {}, {}},
      {"apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, {"crd", "crds"}, {"api-extensions"}, {Status()}, {}},
  };
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string ResourceType::StorePrefix() const {
  std::string store_group = converter != nullptr ? converter->StoreGroup()
                            : group.empty()      ? "core"
                                                 : group;
  return "/registry/" + store_group + "/" + plural + "/";
}

std::string ResourceType::StoreKey(const std::string& ns, const std::string& name) const {
  return namespaced ? StorePrefix() + ns + "/" + name : StorePrefix() + name;
}

const Subresource* ResourceType::FindSubresource(const std::string& name) const {
  for (const Subresource& s : subresources) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const std::vector<std::string>& ResourceType::Verbs() const {
  return verbs.empty() ? kStandardVerbs : verbs;
}

void ResourceSet::Add(std::shared_ptr<const ResourceType> type) {
  by_path_[type->group + "/" + type->version + "/" + type->plural] = type.get();
  all_.push_back(std::move(type));
}

const ResourceType* ResourceSet::Find(const std::string& group, const std::string& version,
                                      const std::string& plural) const {
  auto it = by_path_.find(group + "/" + version + "/" + plural);
  return it == by_path_.end() ? nullptr : it->second;
}

const ResourceType* ResourceSet::FindKind(const std::string& group, const std::string& version,
                                          const std::string& kind) const {
  for (const auto& t : all_) {
    if (t->group == group && t->version == version && t->kind == kind) return t.get();
  }
  return nullptr;
}

const ResourceType* ResourceSet::FindByStore(const std::string& store_group,
                                             const std::string& plural) const {
  std::string group = store_group == "core" ? "" : store_group;
  for (const auto& t : all_) {
    if (t->group == group && t->plural == plural && t->converter == nullptr) return t.get();
  }
  return nullptr;
}

std::vector<std::pair<std::string, std::vector<std::string>>> ResourceSet::Groups() const {
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (const auto& t : all_) {
    if (t->group.empty()) continue;
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const auto& g) { return g.first == t->group; });
    if (it == groups.end()) {
      groups.push_back({t->group, {t->version}});
    } else if (std::find(it->second.begin(), it->second.end(), t->version) == it->second.end()) {
      it->second.push_back(t->version);
    }
  }
  return groups;
}

std::shared_ptr<ResourceSet> BuiltinResources(const SchemaSet* schemas) {
  auto set = std::make_shared<ResourceSet>();
  for (Row& row : BuiltinRows()) {
    auto type = std::make_shared<ResourceType>();
    type->group = row.group;
    type->version = row.version;
    type->kind = row.kind;
    type->plural = row.plural;
    type->singular = Lower(row.kind);
    type->namespaced = row.namespaced;
    type->short_names = std::move(row.short_names);
    type->categories = std::move(row.categories);
    type->subresources = std::move(row.subresources);
    type->verbs = std::move(row.verbs);
    type->schema = schemas ? schemas->FindKind(type->group, type->version, type->kind) : nullptr;
    type->strategy = StrategyFor(type->group, type->kind);
    type->field_rules = BuiltinFieldRules(type->group, type->plural);
    type->secret = type->group.empty() && type->kind == "Secret";
    type->converter = ConverterFor(type->group, type->version, type->kind);
    set->Add(std::move(type));
  }
  return set;
}

}  // namespace orch::api
