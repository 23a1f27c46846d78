// Small helpers on API objects held as JSON: metadata access, uids, timestamps, and the
// ApiResult type of the REST layer.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "errors.h"
#include "orch/timestamps.h"

namespace orch::api {

using json = nlohmann::json;
class SchemaSet;
struct Schema;

// A value or the API error that explains why there is none.
template <typename T>
class [[nodiscard]] ApiResult {
 public:
  ApiResult(T value) : v_(std::move(value)) {}         // NOLINT
  ApiResult(ApiError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& value() const& { return std::get<T>(v_); }
  T* operator->() { return &value(); }
  T& operator*() & { return value(); }
  const ApiError& error() const { return std::get<ApiError>(v_); }

 private:
  std::variant<T, ApiError> v_;
};

// metadata.<field> as a string, "" when absent or not a string.
std::string MetaString(const json& obj, const char* field);
inline std::string Name(const json& obj) {
  return MetaString(obj, "name");
}
inline std::string Namespace(const json& obj) {
  return MetaString(obj, "namespace");
}
inline std::string Uid(const json& obj) {
  return MetaString(obj, "uid");
}
int64_t ResourceVersion(const json& obj);  // 0 when absent or malformed
void SetResourceVersion(json& obj, int64_t revision);

// True when metadata.deletionTimestamp is set.
bool IsDeleting(const json& obj);

// A random RFC 4122 version 4 UUID.
std::string NewUid();

// Five random characters from upstream's generateName alphabet.
std::string RandomSuffix();

// Parses JSON or YAML (by content type; JSON also when the type is empty), and Kubernetes
// protobuf (application/vnd.kubernetes.protobuf) when `schemas` is given: decoded against the
// kind its envelope names, else `expected` (protobuf.h). Errors are BadRequest with the parser's
// message; protobuf without `schemas`, and CBOR, are UnsupportedMediaType. Depth is limited so
// hostile bodies cannot recurse without bound.
ApiResult<json> ParseBody(const std::string& body, const std::string& content_type,
                          const SchemaSet* schemas = nullptr, const Schema* expected = nullptr);

// True for application/yaml-ish content types.
bool IsYaml(const std::string& content_type);

}  // namespace orch::api
