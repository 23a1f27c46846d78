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

namespace {

// The string at metadata.annotations[key] of `obj`, or nullopt.
std::optional<std::string> Annotation(const json& obj, const char* key) {
  auto metadata = obj.find("metadata");
  if (metadata == obj.end() || !metadata->is_object()) return std::nullopt;
  auto annotations = metadata->find("annotations");
  if (annotations == metadata->end() || !annotations->is_object()) return std::nullopt;
  auto value = annotations->find(key);
  if (value == annotations->end() || !value->is_string()) return std::nullopt;
  return value->get<std::string>();
}

}  // namespace

std::optional<ApiError> DefaultIngressClass::Admit(AdmissionRequest& request) {
  const ResourceType& type = *request.type;
  if (type.group != "networking.k8s.io" || type.kind != "Ingress" || !request.subresource.empty() ||
      request.operation != AdmissionRequest::Operation::kCreate || request.object == nullptr ||
      !request.object->is_object()) {
    return std::nullopt;
  }
  json& ingress = *request.object;
  // A class chosen either way, even "", is the user's.
  auto spec = ingress.find("spec");
  if (spec != ingress.end() && spec->is_object() && spec->contains("ingressClassName") &&
      !(*spec)["ingressClassName"].is_null()) {
    return std::nullopt;
  }
  if (Annotation(ingress, "kubernetes.io/ingress.class")) return std::nullopt;
  RangeOptions options;
  options.prefix = classes_.StorePrefix();
  auto listed = store_.List(options);
  if (!listed.ok()) return ApiError::FromStatus(listed.status());
  std::string chosen_name, chosen_created;
  for (const KeyValue& kv : listed->kvs) {
    json ingress_class = json::parse(kv.value, nullptr, false);
    if (!ingress_class.is_object() ||
        Annotation(ingress_class, "ingressclass.kubernetes.io/is-default-class") != "true") {
      continue;
    }
    std::string name = Name(ingress_class);
    std::string created = MetaString(ingress_class, "creationTimestamp");
    // RFC 3339 times of one format compare as text.
    if (chosen_name.empty() || created > chosen_created ||
        (created == chosen_created && name < chosen_name)) {
      chosen_name = name;
      chosen_created = created;
    }
  }
  if (chosen_name.empty()) return std::nullopt;
  if (spec == ingress.end() || !spec->is_object()) {
    ingress["spec"] = json::object();
    spec = ingress.find("spec");
  }
  (*spec)["ingressClassName"] = chosen_name;
  return std::nullopt;
}

}  // namespace orch::api
