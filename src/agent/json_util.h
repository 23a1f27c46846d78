// Small readers of optional JSON fields, for the pod and node objects the agent works from:
// absent or mistyped fields read as the given default, never as an exception.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "orch/json_path.h"

namespace orch::agent {

using json = nlohmann::json;

// The value at `path` (object keys), or a null JSON when any step is missing
// (include/orch/json_path.h).
inline const json& At(const json& object, std::initializer_list<std::string_view> path) {
  return json_path::Field(object, path);
}

inline std::string Str(const json& object, std::initializer_list<std::string_view> path,
                       std::string_view fallback = {}) {
  return json_path::String(object, path, fallback);
}

inline int64_t Int(const json& object, std::initializer_list<std::string_view> path,
                   int64_t fallback = 0) {
  const json& v = At(object, path);
  return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

inline bool Bool(const json& object, std::initializer_list<std::string_view> path,
                 bool fallback = false) {
  const json& v = At(object, path);
  return v.is_boolean() ? v.get<bool>() : fallback;
}

// An array at `path`, or an empty one.
inline const json& Array(const json& object, std::initializer_list<std::string_view> path) {
  static const json kEmpty = json::array();
  const json& v = At(object, path);
  return v.is_array() ? v : kEmpty;
}

}  // namespace orch::agent
