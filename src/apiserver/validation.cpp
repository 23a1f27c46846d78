// ObjectMeta validation as upstream's ValidateObjectMeta does it, with the name rule of each
// kind (DNS subdomain for most, DNS label for namespaces, DNS-1035 label for services).
#include "validation.h"

#include <fmt/format.h>

#include <set>

#include "object.h"

namespace orch::api {
namespace {

constexpr size_t kMaxAnnotationBytes = 256 * 1024;

// Which syntax the kind's names follow.
std::vector<std::string> CheckName(const ResourceType& type, const std::string& name) {
  if (type.group.empty() && (type.kind == "Namespace")) return IsDns1123Label(name);
  if (type.group.empty() && type.kind == "Service") return IsDns1035Label(name);
  if (type.group == "rbac.authorization.k8s.io" || type.crd) {
    // Path segment names: anything but "." and ".." without '/' or '%'.
    std::vector<std::string> problems;
    if (name == "." || name == "..") problems.push_back(fmt::format("may not be '{}'", name));
    if (name.find('/') != std::string::npos) problems.push_back("may not contain '/'");
    if (name.find('%') != std::string::npos) problems.push_back("may not contain '%'");
    return problems;
  }
  return IsDns1123Subdomain(name);
}

}  // namespace

FieldError ToFieldError(const SelectorFieldError& e) {
  switch (e.type) {
    case SelectorFieldError::Type::kRequired: return FieldRequired(e.field, e.detail);
    case SelectorFieldError::Type::kForbidden: return FieldForbidden(e.field, e.detail);
    case SelectorFieldError::Type::kInvalid: break;
  }
  return FieldInvalid(e.field, e.value, e.detail);
}

void ValidateObjectMeta(const ResourceType& type, const json& obj, const json* old,
                        FieldErrors& errors) {
  static const json kEmpty = json::object();
  const json& meta = obj.contains("metadata") ? obj["metadata"] : kEmpty;
  std::string name = meta.value("name", "");
  std::string generate_name = meta.value("generateName", "");
  if (name.empty()) {
    errors.push_back(FieldRequired("metadata.name", "name or generateName is required"));
  } else {
    for (const std::string& problem : CheckName(type, name)) {
      errors.push_back(FieldInvalid("metadata.name", name, problem));
    }
  }
  if (type.namespaced && meta.value("namespace", "").empty()) {
    errors.push_back(FieldRequired("metadata.namespace"));
  }
  if (meta.contains("labels") && !meta["labels"].is_null()) {
    for (const auto& e : ValidateLabels(meta["labels"], "metadata.labels")) {
      errors.push_back(ToFieldError(e));
    }
  }
  if (meta.contains("annotations") && meta["annotations"].is_object()) {
    size_t total = 0;
    for (const auto& [key, value] : meta["annotations"].items()) {
      for (const std::string& problem : IsQualifiedName(key)) {
        errors.push_back(FieldInvalid("metadata.annotations", key, problem));
      }
      total += key.size() + (value.is_string() ? value.get<std::string>().size() : 0);
    }
    if (total > kMaxAnnotationBytes) {
      errors.push_back(FieldTooLong("metadata.annotations", kMaxAnnotationBytes));
    }
  }
  if (meta.contains("finalizers") && meta["finalizers"].is_array()) {
    std::set<std::string> before;
    if (old != nullptr && old->contains("metadata") && (*old)["metadata"].contains("finalizers")) {
      for (const json& f : (*old)["metadata"]["finalizers"]) {
        if (f.is_string()) before.insert(f.get<std::string>());
      }
    }
    json added = json::array();
    for (size_t i = 0; i < meta["finalizers"].size(); ++i) {
      const json& f = meta["finalizers"][i];
      if (!f.is_string()) continue;
      std::string finalizer = f.get<std::string>();
      for (const std::string& problem : IsQualifiedName(finalizer)) {
        errors.push_back(
            FieldInvalid(fmt::format("metadata.finalizers[{}]", i), finalizer, problem));
      }
      if (!before.count(finalizer)) added.push_back(finalizer);
    }
    if (old != nullptr && IsDeleting(*old) && !added.empty()) {
      errors.push_back(FieldForbidden(
          "metadata.finalizers",
          "no new finalizers can be added if the object is being deleted, found new finalizers " +
              added.dump()));
    }
  }
  if (meta.contains("ownerReferences") && meta["ownerReferences"].is_array()) {
    const json& refs = meta["ownerReferences"];
    int controllers = 0;
    for (size_t i = 0; i < refs.size(); ++i) {
      std::string path = fmt::format("metadata.ownerReferences[{}]", i);
      for (const char* field : {"apiVersion", "kind", "name", "uid"}) {
        if (!refs[i].is_object() || refs[i].value(field, "").empty()) {
          errors.push_back(FieldRequired(path + "." + field));
        }
      }
      if (refs[i].is_object() && refs[i].value("controller", false)) ++controllers;
    }
    if (controllers > 1) {
      errors.push_back(FieldInvalid("metadata.ownerReferences", refs,
                                    "Only one reference can have Controller set to true"));
    }
  }
}

}  // namespace orch::api
