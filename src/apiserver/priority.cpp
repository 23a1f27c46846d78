// PriorityClass validation and Priority admission (priority.h), with upstream's messages.
#include "priority.h"

#include <fmt/format.h>

namespace orch::api {
namespace {

constexpr char kSystemPrefix[] = "system-";
constexpr char kDefaultPreemptionPolicy[] = "PreemptLowerPriority";

bool IsSystemName(const std::string& name) {
  return name.rfind(kSystemPrefix, 0) == 0;
}

// The value a known system class must have, or nullopt for other names.
std::optional<int64_t> SystemClassValue(const std::string& name) {
  if (name == "system-node-critical") return kSystemNodeCritical;
  if (name == "system-cluster-critical") return kSystemClusterCritical;
  return std::nullopt;
}

int64_t ClassValue(const json& pc) {
  auto it = pc.find("value");
  return it != pc.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::string ClassPreemptionPolicy(const json& pc) {
  auto it = pc.find("preemptionPolicy");
  return it != pc.end() && it->is_string() ? it->get<std::string>() : kDefaultPreemptionPolicy;
}

bool IsGlobalDefault(const json& pc) {
  return pc.value("globalDefault", false) == true;
}

}  // namespace

std::vector<json> SystemPriorityClasses() {
  auto make = [](const char* name, int32_t value, const char* description) {
    return json{
        {"apiVersion", "scheduling.k8s.io/v1"}, {"kind", "PriorityClass"},
        {"metadata", {{"name", name}}},         {"value", value},
        {"description", description},           {"preemptionPolicy", kDefaultPreemptionPolicy}};
  };
  return {make("system-node-critical", kSystemNodeCritical,
               "Used for system critical pods that must not be moved from their current node."),
          make("system-cluster-critical", kSystemClusterCritical,
               "Used for system critical pods that must run in the cluster, but can be moved to "
               "another node if necessary.")};
}

void PriorityClassStrategy::Validate(const json& obj, FieldErrors& errors) const {
  std::string name = Name(obj);
  int64_t value = ClassValue(obj);
  if (IsSystemName(name)) {
    std::optional<int64_t> known = SystemClassValue(name);
    std::string why;
    if (!known) {
      why = fmt::format("{} is not a known system priority class", name);
    } else if (*known != value) {
      why = fmt::format("value of {} PriorityClass must be {}", name, *known);
    } else if (IsGlobalDefault(obj)) {
      why = fmt::format("globalDefault of {} PriorityClass must be false", name);
    }
    if (!why.empty()) {
      errors.push_back(FieldForbidden(
          "metadata.name",
          fmt::format("priority class names with '{}' prefix are reserved for system use only. "
                      "error: {}",
                      kSystemPrefix, why)));
    }
  } else if (value > kHighestUserPriority) {
    errors.push_back(FieldForbidden(
        "value", fmt::format("maximum allowed value of a user defined priority is {}",
                             kHighestUserPriority)));
  }
}

void PriorityClassStrategy::ValidateUpdate(const json& obj, const json& old,
                                           FieldErrors& errors) const {
  Validate(obj, errors);
  if (ClassValue(obj) != ClassValue(old)) {
    errors.push_back(FieldForbidden("value", "may not be changed in an update."));
  }
  if (ClassPreemptionPolicy(obj) != ClassPreemptionPolicy(old)) {
    errors.push_back(
        FieldInvalid("preemptionPolicy", ClassPreemptionPolicy(obj), "field is immutable"));
  }
}

std::optional<ApiError> PriorityAdmission::Admit(AdmissionRequest& request) {
  const ResourceType& type = *request.type;
  if (type.group.empty() && type.kind == "Pod" && request.subresource.empty() &&
      request.operation == AdmissionRequest::Operation::kCreate && request.object != nullptr) {
    return AdmitPod(request);
  }
  if (type.group == "scheduling.k8s.io" && type.kind == "PriorityClass") {
    return AdmitClass(request);
  }
  return std::nullopt;
}

ApiResult<std::vector<json>> PriorityAdmission::ListClasses() {
  RangeOptions options;
  options.prefix = classes_.StorePrefix();
  auto listed = store_.List(options);
  if (!listed.ok()) return ApiError::FromStatus(listed.status());
  std::vector<json> classes;
  for (const KeyValue& kv : listed->kvs) {
    json pc = json::parse(kv.value, nullptr, false);
    if (pc.is_object()) classes.push_back(std::move(pc));
  }
  return classes;
}

std::optional<ApiError> PriorityAdmission::AdmitPod(AdmissionRequest& request) {
  json& pod = *request.object;
  json& spec = pod["spec"];
  if (!spec.is_object()) return std::nullopt;  // validation answers for the missing spec
  std::string class_name = spec.value("priorityClassName", "");
  auto forbidden = [&](const std::string& why) {
    return ApiError::Forbidden(fmt::format("pods \"{}\" is forbidden: {}", Name(pod), why));
  };

  int64_t priority = 0;
  std::string policy = kDefaultPreemptionPolicy;
  if (class_name.empty()) {
    // The global default class, if any (the lowest value when several claim it, as upstream).
    auto classes = ListClasses();
    if (!classes.ok()) return classes.error();
    const json* chosen = nullptr;
    for (const json& pc : *classes) {
      if (IsGlobalDefault(pc) && (chosen == nullptr || ClassValue(pc) < ClassValue(*chosen))) {
        chosen = &pc;
      }
    }
    if (chosen != nullptr) {
      spec["priorityClassName"] = Name(*chosen);
      priority = ClassValue(*chosen);
      policy = ClassPreemptionPolicy(*chosen);
    }
  } else {
    auto kv = store_.Get(classes_.StoreKey("", class_name));
    if (!kv.ok()) {
      if (kv.status().code() == StatusCode::kNotFound) {
        return forbidden(fmt::format("no PriorityClass with name {} was found", class_name));
      }
      return ApiError::FromStatus(kv.status());
    }
    json pc = json::parse(kv->value, nullptr, false);
    priority = ClassValue(pc);
    policy = ClassPreemptionPolicy(pc);
  }

  if (auto given = spec.find("priority"); given != spec.end() && !given->is_null()) {
    if (!given->is_number_integer() || given->get<int64_t>() != priority) {
      return forbidden(fmt::format(
          "the integer value of priority ({}) must not be provided in pod spec; priority "
          "admission controller computed {} from the given PriorityClass name",
          given->dump(), priority));
    }
  }
  if (auto given = spec.find("preemptionPolicy"); given != spec.end() && !given->is_null()) {
    if (!given->is_string() || given->get<std::string>() != policy) {
      return forbidden(fmt::format(
          "the string value of PreemptionPolicy ({}) must not be provided in pod spec; priority "
          "admission controller computed {} from the given PriorityClass name",
          given->is_string() ? given->get<std::string>() : given->dump(), policy));
    }
  }
  spec["priority"] = priority;
  spec["preemptionPolicy"] = policy;
  return std::nullopt;
}

std::optional<ApiError> PriorityAdmission::AdmitClass(AdmissionRequest& request) {
  using Operation = AdmissionRequest::Operation;
  if (request.operation == Operation::kDelete) {
    if (request.old != nullptr && SystemClassValue(Name(*request.old))) {
      return ApiError::Forbidden(
          fmt::format("priorityclasses.scheduling.k8s.io \"{}\" is forbidden: this is a system "
                      "priority class and cannot be deleted",
                      Name(*request.old)));
    }
    return std::nullopt;
  }
  if (request.object == nullptr || !IsGlobalDefault(*request.object)) return std::nullopt;
  auto classes = ListClasses();
  if (!classes.ok()) return classes.error();
  for (const json& pc : *classes) {
    if (IsGlobalDefault(pc) && Name(pc) != Name(*request.object)) {
      return ApiError::Forbidden(fmt::format(
          "priorityclasses.scheduling.k8s.io \"{}\" is forbidden: PriorityClass {} is already "
          "marked as default. Only one default can exist",
          Name(*request.object), Name(pc)));
    }
  }
  return std::nullopt;
}

}  // namespace orch::api
