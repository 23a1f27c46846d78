// Reading optional fields of API objects (JSON) by a path of object keys: a missing step, or a
// step through something that is not an object, reads as absent, never as an exception.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace orch::json_path {

// The value at `path` ({"metadata", "name"}) in `object`, or nullptr when a step is missing or
// passes through a non-object. The pointer points into `object`. Lookups take string_view keys,
// so no key is copied.
inline const nlohmann::json* Find(const nlohmann::json& object,
                                  std::initializer_list<std::string_view> path) {
  const nlohmann::json* at = &object;
  for (std::string_view key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

// The value at `path`, or a null JSON (a shared constant) when Find returns nullptr.
inline const nlohmann::json& Field(const nlohmann::json& object,
                                   std::initializer_list<std::string_view> path) {
  static const nlohmann::json kNull;
  const nlohmann::json* value = Find(object, path);
  return value ? *value : kNull;
}

// One key: Field(object, "spec") is Field(object, {"spec"}).
inline const nlohmann::json& Field(const nlohmann::json& object, std::string_view key) {
  return Field(object, {key});
}

// The string at `path`, or `fallback` when it is absent or not a string.
inline std::string String(const nlohmann::json& object,
                          std::initializer_list<std::string_view> path,
                          std::string_view fallback = {}) {
  const nlohmann::json* value = Find(object, path);
  return value && value->is_string() ? value->get_ref<const std::string&>() : std::string(fallback);
}

inline std::string String(const nlohmann::json& object, std::string_view key,
                          std::string_view fallback = {}) {
  return String(object, {key}, fallback);
}

}  // namespace orch::json_path
