// Strategies of the built-in kinds: the cross-field defaults and checks upstream's per-kind
// registries apply, written once here.
#include "strategies.h"

#include <fmt/format.h>

#include <set>

#include "crd.h"
#include "priority.h"
#include "orch/base64.h"
#include "orch/cron.h"

namespace orch::api {
namespace {

const json& Field(const json& obj, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(p);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

FieldError FieldDuplicate(std::string field, const json& value) {
  std::string shown = value.is_string() ? GoQuote(value.get<std::string>()) : GoFormat(value);
  return {"FieldValueDuplicate", std::move(field), "Duplicate value: " + shown};
}

// imagePullPolicy defaults to Always for `:latest` or untagged images, else IfNotPresent.
std::string DefaultPullPolicy(const std::string& image) {
  if (image.find('@') != std::string::npos) return "IfNotPresent";
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  if (!tagged || image.substr(colon + 1) == "latest") return "Always";
  return "IfNotPresent";
}

void DefaultContainers(json& spec, const char* list) {
  auto it = spec.find(list);
  if (it == spec.end() || !it->is_array()) return;
  for (json& c : *it) {
    if (!c.is_object()) continue;
    if (!c.contains("imagePullPolicy") && c.contains("image") && c["image"].is_string()) {
      c["imagePullPolicy"] = DefaultPullPolicy(c["image"].get<std::string>());
    }
  }
}

void DefaultPodSpec(json& spec) {
  if (!spec.is_object()) return;
  DefaultContainers(spec, "initContainers");
  DefaultContainers(spec, "containers");
  DefaultContainers(spec, "ephemeralContainers");
}

void ValidateContainers(const json& spec, const std::string& path, FieldErrors& errors) {
  const json& containers = Field(spec, {"containers"});
  if (!containers.is_array() || containers.empty()) {
    errors.push_back(FieldRequired(path + ".containers"));
    return;
  }
  std::set<std::string> names;
  for (const char* list : {"initContainers", "containers"}) {
    const json& items = Field(spec, {list});
    if (!items.is_array()) continue;
    for (size_t i = 0; i < items.size(); ++i) {
      std::string at = fmt::format("{}.{}[{}]", path, list, i);
      const json& name = Field(items[i], {"name"});
      if (!name.is_string() || name.get<std::string>().empty()) {
        errors.push_back(FieldRequired(at + ".name"));
      } else if (!names.insert(name.get<std::string>()).second) {
        errors.push_back(FieldDuplicate(at + ".name", name));
      }
      const json& image = Field(items[i], {"image"});
      if (!image.is_string() || image.get<std::string>().empty()) {
        errors.push_back(FieldRequired(at + ".image"));
      }
      const json& ports = Field(items[i], {"ports"});
      if (ports.is_array()) {
        for (size_t p = 0; p < ports.size(); ++p) {
          const json& port = Field(ports[p], {"containerPort"});
          if (!port.is_number_integer() || port.get<int64_t>() < 1 || port.get<int64_t>() > 65535) {
            errors.push_back(FieldInvalid(fmt::format("{}.ports[{}].containerPort", at, p), port,
                                          "must be between 1 and 65535, inclusive"));
          }
        }
      }
    }
  }
  const json& restart = Field(spec, {"restartPolicy"});
  if (restart.is_string()) {
    std::string r = restart.get<std::string>();
    if (r != "Always" && r != "OnFailure" && r != "Never") {
      errors.push_back(
          FieldNotSupported(path + ".restartPolicy", restart, {"Always", "Never", "OnFailure"}));
    }
  }
}

class PodStrategy : public Strategy {
 public:
  void PrepareForCreate(json& obj) const override {
    obj["status"] = {{"phase", "Pending"}, {"qosClass", QosClass(obj)}};
  }
  void Default(json& obj) const override {
    if (obj.contains("spec")) DefaultPodSpec(obj["spec"]);
  }
  void Validate(const json& obj, FieldErrors& errors) const override {
    ValidateContainers(Field(obj, {"spec"}), "spec", errors);
  }

 private:
  // Guaranteed when every container has equal cpu and memory requests and limits, BestEffort
  // when none has any, Burstable otherwise.
  static std::string QosClass(const json& pod) {
    bool any = false, guaranteed = true;
    const json& containers = Field(pod, {"spec", "containers"});
    if (!containers.is_array()) return "BestEffort";
    for (const json& c : containers) {
      const json& limits = Field(c, {"resources", "limits"});
      const json& requests = Field(c, {"resources", "requests"});
      if ((limits.is_object() && !limits.empty()) || (requests.is_object() && !requests.empty())) {
        any = true;
      }
      for (const char* r : {"cpu", "memory"}) {
        const json& limit = Field(limits, {r});
        const json& request = Field(requests, {r});
        if (limit.is_null() || (!request.is_null() && request != limit)) guaranteed = false;
      }
    }
    if (!any) return "BestEffort";
    return guaranteed ? "Guaranteed" : "Burstable";
  }
};

// The rolling-update parameters upstream fills in when the strategy is RollingUpdate (they
// depend on the strategy type, so the schema cannot say them).
void DefaultRollingUpdate(json& obj) {
  std::string kind = obj.value("kind", "");
  const char* field = kind == "Deployment" ? "strategy" : "updateStrategy";
  if (kind != "Deployment" && kind != "DaemonSet" && kind != "StatefulSet") return;
  if (!obj.contains("spec") || !obj["spec"].is_object()) return;
  json& strategy = obj["spec"][field];
  if (!strategy.is_object()) strategy = json::object();
  if (!strategy.contains("type")) strategy["type"] = "RollingUpdate";
  if (strategy["type"] != "RollingUpdate") return;
  json& rolling = strategy["rollingUpdate"];
  if (!rolling.is_object()) rolling = json::object();
  if (kind == "Deployment") {
    if (!rolling.contains("maxSurge")) rolling["maxSurge"] = "25%";
    if (!rolling.contains("maxUnavailable")) rolling["maxUnavailable"] = "25%";
  } else if (kind == "DaemonSet") {
    if (!rolling.contains("maxSurge")) rolling["maxSurge"] = 0;
    if (!rolling.contains("maxUnavailable")) rolling["maxUnavailable"] = 1;
  } else if (!rolling.contains("partition")) {
    rolling["partition"] = 0;
  }
}

class PodTemplateOwnerStrategy : public Strategy {
 public:
  void Default(json& obj) const override {
    json* spec = TemplateSpec(obj);
    if (spec != nullptr) DefaultPodSpec(*spec);
    DefaultRollingUpdate(obj);
  }
  void Validate(const json& obj, FieldErrors& errors) const override {
    const json& selector = Field(obj, {"spec", "selector"});
    if (selector.is_null()) errors.push_back(FieldRequired("spec.selector"));
    const json& spec = Field(obj, {"spec", "template", "spec"});
    ValidateContainers(spec, "spec.template.spec", errors);
  }
  void ValidateUpdate(const json& obj, const json& old, FieldErrors& errors) const override {
    const json& selector = Field(obj, {"spec", "selector"});
    if (selector != Field(old, {"spec", "selector"})) {
      errors.push_back(FieldInvalid("spec.selector", selector, "field is immutable"));
    }
  }

 private:
  static json* TemplateSpec(json& obj) {
    auto spec = obj.find("spec");
    if (spec == obj.end() || !spec->is_object()) return nullptr;
    auto tmpl = spec->find("template");
    if (tmpl == spec->end() || !tmpl->is_object()) return nullptr;
    auto pod_spec = tmpl->find("spec");
    if (pod_spec == tmpl->end()) return nullptr;
    return &*pod_spec;
  }
};

// Jobs: upstream's defaults (SetDefaults_Job) and, unless spec.manualSelector, a selector of the
// job's own uid with the matching pod template labels (generateSelector).
void DefaultJobSpec(json& spec) {
  if (!spec.is_object()) return;
  if (!spec.contains("parallelism") && !spec.contains("completions")) spec["completions"] = 1;
  if (!spec.contains("parallelism")) spec["parallelism"] = 1;
  if (!spec.contains("backoffLimit")) spec["backoffLimit"] = 6;
  if (!spec.contains("completionMode")) spec["completionMode"] = "NonIndexed";
  if (!spec.contains("suspend")) spec["suspend"] = false;
  if (!spec.contains("podReplacementPolicy")) {
    spec["podReplacementPolicy"] =
        spec.contains("podFailurePolicy") ? "Failed" : "TerminatingOrFailed";
  }
}

class JobStrategy : public PodTemplateOwnerStrategy {
 public:
  void PrepareForCreate(json& obj) const override {
    json& spec = obj["spec"];
    if (!spec.is_object() || Field(spec, {"manualSelector"}) == json(true)) return;
    const std::string uid = obj["metadata"].value("uid", "");
    const std::string name = obj["metadata"].value("name", "");
    json& labels = spec["template"]["metadata"]["labels"];
    if (!labels.is_object()) labels = json::object();
    for (const char* key : {"batch.kubernetes.io/controller-uid", "controller-uid"}) {
      labels[key] = uid;
    }
    for (const char* key : {"batch.kubernetes.io/job-name", "job-name"}) labels[key] = name;
    if (!spec.contains("selector")) {
      spec["selector"] = {{"matchLabels", {{"batch.kubernetes.io/controller-uid", uid}}}};
    }
  }
  void Default(json& obj) const override {
    PodTemplateOwnerStrategy::Default(obj);
    if (obj.contains("spec")) DefaultJobSpec(obj["spec"]);
  }
  void Validate(const json& obj, FieldErrors& errors) const override {
    const json& spec = Field(obj, {"spec", "template", "spec"});
    ValidateContainers(spec, "spec.template.spec", errors);
  }
  void ValidateUpdate(const json&, const json&, FieldErrors&) const override {}
};

// CronJobs: upstream's defaults (SetDefaults_CronJob), and the Job defaults in jobTemplate.
class CronJobStrategy : public Strategy {
 public:
  void Default(json& obj) const override {
    json& spec = obj["spec"];
    if (!spec.is_object()) return;
    if (!spec.contains("concurrencyPolicy")) spec["concurrencyPolicy"] = "Allow";
    if (!spec.contains("suspend")) spec["suspend"] = false;
    if (!spec.contains("successfulJobsHistoryLimit")) spec["successfulJobsHistoryLimit"] = 3;
    if (!spec.contains("failedJobsHistoryLimit")) spec["failedJobsHistoryLimit"] = 1;
    auto tmpl = spec.find("jobTemplate");
    if (tmpl != spec.end() && tmpl->is_object() && tmpl->contains("spec")) {
      DefaultJobSpec((*tmpl)["spec"]);
    }
  }

  // A schedule or time zone the controller cannot use is refused here, as upstream does, rather
  // than stored and only warned about.
  void Validate(const json& obj, FieldErrors& errors) const override {
    const json& schedule = Field(obj, {"spec", "schedule"});
    if (schedule.is_string()) {
      const std::string& text = schedule.get_ref<const std::string&>();
      if (text.find("TZ=") != std::string::npos) {
        errors.push_back(FieldInvalid("spec.schedule", schedule,
                                      "cannot use TZ or CRON_TZ in schedule, use timeZone field "
                                      "instead"));
      } else if (auto parsed = cron::Schedule::Parse(text); !parsed.ok()) {
        errors.push_back(FieldInvalid("spec.schedule", schedule, parsed.status().message()));
      }
    }
    const json& zone = Field(obj, {"spec", "timeZone"});
    if (zone.is_string() && !cron::TimeZone::Load(zone.get<std::string>()).ok()) {
      errors.push_back(FieldInvalid("spec.timeZone", zone,
                                    fmt::format("unknown time zone {}", zone.get<std::string>())));
    }
  }
};

class ServiceStrategy : public Strategy {
 public:
  void Default(json& obj) const override {
    auto spec = obj.find("spec");
    if (spec == obj.end() || !spec->is_object()) return;
    auto ports = spec->find("ports");
    if (ports == spec->end() || !ports->is_array()) return;
    for (json& p : *ports) {
      if (p.is_object() && !p.contains("targetPort") && p.contains("port")) {
        p["targetPort"] = p["port"];
      }
    }
  }
  void Validate(const json& obj, FieldErrors& errors) const override {
    const json& type = Field(obj, {"spec", "type"});
    bool external_name = type.is_string() && type.get<std::string>() == "ExternalName";
    const json& ports = Field(obj, {"spec", "ports"});
    const json& cluster_ip = Field(obj, {"spec", "clusterIP"});
    bool headless = cluster_ip.is_string() && cluster_ip.get<std::string>() == "None";
    if (!external_name && !headless && (!ports.is_array() || ports.empty())) {
      errors.push_back(FieldRequired("spec.ports"));
    }
    if (!ports.is_array()) return;
    for (size_t i = 0; i < ports.size(); ++i) {
      const json& port = Field(ports[i], {"port"});
      if (!port.is_number_integer() || port.get<int64_t>() < 1 || port.get<int64_t>() > 65535) {
        errors.push_back(FieldInvalid(fmt::format("spec.ports[{}].port", i), port,
                                      "must be between 1 and 65535, inclusive"));
      }
      if (ports.size() > 1 && !Field(ports[i], {"name"}).is_string()) {
        errors.push_back(FieldRequired(fmt::format("spec.ports[{}].name", i)));
      }
    }
  }
};

class NamespaceStrategy : public Strategy {
 public:
  void PrepareForCreate(json& obj) const override {
    obj["status"] = {{"phase", "Active"}};
    obj["spec"]["finalizers"] = json::array({"kubernetes"});
  }
};

class CustomResourceDefinitionStrategy : public Strategy {
 public:
  void Validate(const json& obj, FieldErrors& errors) const override {
    ValidateCustomResourceDefinition(obj, errors);
  }
};

// Secrets and ConfigMaps: their content is frozen once `immutable` is true.
class ImmutableDataStrategy : public Strategy {
 public:
  void ValidateUpdate(const json& obj, const json& old, FieldErrors& errors) const override {
    if (Field(old, {"immutable"}) != json(true)) return;
    constexpr const char* kDetail = "field is immutable when `immutable` is set";
    if (Field(obj, {"immutable"}) != json(true))
      errors.push_back(FieldForbidden("immutable", kDetail));
    for (const char* field : {"data", "binaryData", "stringData"}) {
      if (Field(obj, {field}) != Field(old, {field}))
        errors.push_back(FieldForbidden(field, kDetail));
    }
  }
};

// Secrets: stringData is write-only; its values replace data's under the same keys.
class SecretStrategy : public ImmutableDataStrategy {
 public:
  void Default(json& obj) const override {
    auto it = obj.find("stringData");
    if (it == obj.end()) return;
    if (it->is_object()) {
      for (const auto& [key, value] : it->items()) {
        if (value.is_string()) obj["data"][key] = Base64Encode(value.get_ref<const std::string&>());
      }
    }
    obj.erase("stringData");
  }
};

class NodeStrategy : public Strategy {
 public:
  bool ResetStatusOnCreate() const override { return false; }
};

}  // namespace

const Strategy* StrategyFor(const std::string& group, const std::string& kind) {
  static const Strategy kGeneric;
  static const PodStrategy kPod;
  static const PodTemplateOwnerStrategy kTemplateOwner;
  static const JobStrategy kJob;
  static const CronJobStrategy kCronJob;
  static const ServiceStrategy kService;
  static const NamespaceStrategy kNamespace;
  static const NodeStrategy kNode;
  static const SecretStrategy kSecret;
  static const ImmutableDataStrategy kConfigMap;
  static const CustomResourceDefinitionStrategy kCrd;
  static const PriorityClassStrategy kPriorityClass;
  if (group.empty()) {
    if (kind == "Pod") return &kPod;
    if (kind == "Service") return &kService;
    if (kind == "Namespace") return &kNamespace;
    if (kind == "Node") return &kNode;
    if (kind == "Secret") return &kSecret;
    if (kind == "ConfigMap") return &kConfigMap;
  }
  if (group == "apps" && kind != "ControllerRevision") return &kTemplateOwner;
  if (group == "batch" && kind == "Job") return &kJob;
  if (group == "batch" && kind == "CronJob") return &kCronJob;
  if (group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition") return &kCrd;
  if (group == "scheduling.k8s.io" && kind == "PriorityClass") return &kPriorityClass;
  return &kGeneric;
}

}  // namespace orch::api
