// Namespace lifecycle admission, with upstream's messages, and the default tolerations of pods
// for failed nodes.
#include "admission.h"

#include <fmt/format.h>

namespace orch::api {

std::optional<ApiError> NamespaceLifecycle::Admit(AdmissionRequest& request) {
  const ResourceType& type = *request.type;
  if (type.group.empty() && type.kind == "Namespace") {
    if (request.operation == AdmissionRequest::Operation::kDelete && request.old != nullptr) {
      std::string name = Name(*request.old);
      if (name == "default" || name == "kube-system" || name == "kube-public") {
        return ApiError::Forbidden(
            fmt::format("namespaces \"{}\" is forbidden: this namespace may not be deleted", name));
      }
    }
    return std::nullopt;
  }
  if (!type.namespaced || request.operation != AdmissionRequest::Operation::kCreate) {
    return std::nullopt;
  }
  std::string ns = Namespace(*request.object);
  auto kv = store_.Get(namespaces_.StoreKey("", ns));
  if (!kv.ok()) {
    if (kv.status().code() == StatusCode::kNotFound) return ApiError::NotFound("namespaces", ns);
    return ApiError::FromStatus(kv.status());
  }
  json namespace_obj = json::parse(kv->value, nullptr, false);
  if (namespace_obj.is_object() && IsDeleting(namespace_obj)) {
    ApiError e = ApiError::Forbidden(fmt::format(
        "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is "
        "being terminated",
        type.QualifiedPlural(), Name(*request.object), ns));
    e.details = {{"name", Name(*request.object)},
                 {"kind", type.plural},
                 {"causes",
                  {{{"reason", "NamespaceTerminating"},
                    {"message", fmt::format("namespace {} is being terminated", ns)},
                    {"field", "metadata.namespace"}}}}};
    return e;
  }
  return std::nullopt;
}

std::optional<ApiError> DefaultTolerationSeconds::Admit(AdmissionRequest& request) {
  const ResourceType& type = *request.type;
  if (!type.group.empty() || type.kind != "Pod" || !request.subresource.empty() ||
      request.operation != AdmissionRequest::Operation::kCreate || request.object == nullptr) {
    return std::nullopt;
  }
  json& pod = *request.object;
  if (!pod.contains("spec") || !pod["spec"].is_object()) return std::nullopt;
  json& spec = pod["spec"];
  if (!spec.contains("tolerations") || !spec["tolerations"].is_array()) {
    spec["tolerations"] = json::array();
  }
  json& tolerations = spec["tolerations"];
  // A toleration with an empty key or effect covers the taint too.
  auto covered = [&](const std::string& key) {
    for (const json& t : tolerations) {
      if (!t.is_object()) continue;
      const json& key_field = t.value("key", json());
      const json& effect_field = t.value("effect", json());
      std::string k = key_field.is_string() ? key_field.get<std::string>() : "";
      std::string effect = effect_field.is_string() ? effect_field.get<std::string>() : "";
      if ((k == key || k.empty()) && (effect == "NoExecute" || effect.empty())) return true;
    }
    return false;
  };
  for (const char* key : {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}) {
    if (covered(key)) continue;
    tolerations.push_back({{"key", key},
                           {"operator", "Exists"},
                           {"effect", "NoExecute"},
                           {"tolerationSeconds", 300}});
  }
  return std::nullopt;
}

}  // namespace orch::api
