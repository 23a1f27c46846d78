// Namespace lifecycle admission, with upstream's messages.
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

}  // namespace orch::api
