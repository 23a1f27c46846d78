// Small readers of optional JSON fields, for the pod and node objects the agent works from:
// absent or mistyped fields read as the given default, never as an exception.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

namespace orch::agent {

using json = nlohmann::json;

// The value at `path` (object keys), or a null JSON when any step is missing.
inline const json& At(const json& object, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* cur = &object;
  for (const char* key : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(key);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

inline std::string Str(const json& object, std::initializer_list<const char*> path,
                       const std::string& fallback = "") {
  const json& v = At(object, path);
  return v.is_string() ? v.get<std::string>() : fallback;
}

inline int64_t Int(const json& object, std::initializer_list<const char*> path,
                   int64_t fallback = 0) {
  const json& v = At(object, path);
  return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

inline bool Bool(const json& object, std::initializer_list<const char*> path,
                 bool fallback = false) {
  const json& v = At(object, path);
  return v.is_boolean() ? v.get<bool>() : fallback;
}

// An array at `path`, or an empty one.
inline const json& Array(const json& object, std::initializer_list<const char*> path) {
  static const json kEmpty = json::array();
  const json& v = At(object, path);
  return v.is_array() ? v : kEmpty;
}

}  // namespace orch::agent
