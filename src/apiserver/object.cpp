// Implementation of object.h: metadata helpers, uids, times, and body parsing (JSON, YAML,
// protobuf).
#include "object.h"

#include <openssl/rand.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <ctime>

#include "protobuf.h"

namespace orch::api {
namespace {

constexpr int kMaxDepth = 100;

struct TooDeep : std::exception {};

// YAML plain scalars take their JSON type from their text (YAML 1.2 core schema, plus the
// yes/no/on/off booleans Kubernetes' YAML reader (YAML 1.1) also accepts).
json PlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  bool digits = true, had_digit = false;
  size_t start = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  for (size_t i = start; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i])))
      digits = false;
    else
      had_digit = true;
  }
  if (digits && had_digit && s.size() - start < 19) return std::stoll(s);
  // Floats: digits with one '.', and/or an exponent.
  char* end = nullptr;
  if (had_digit && s.find_first_not_of("0123456789+-.eE") == std::string::npos) {
    double d = std::strtod(s.c_str(), &end);
    if (end != nullptr && *end == '\0') return d;
  }
  return s;
}

json YamlToJson(const YAML::Node& node, int depth) {
  if (depth > kMaxDepth) throw TooDeep();
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      if (node.Tag() == "?") return PlainScalar(node.Scalar());
      if (node.Tag() == "tag:yaml.org,2002:int") return PlainScalar(node.Scalar());
      return node.Scalar();
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : node) arr.push_back(YamlToJson(item, depth + 1));
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : node)
        obj[kv.first.as<std::string>()] = YamlToJson(kv.second, depth + 1);
      return obj;
    }
  }
  return nullptr;
}

}  // namespace

std::string MetaString(const json& obj, const char* field) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto f = m->find(field);
  if (f == m->end() || !f->is_string()) return "";
  return f->get<std::string>();
}

int64_t ResourceVersion(const json& obj) {
  std::string rv = MetaString(obj, "resourceVersion");
  if (rv.empty()) return 0;
  try {
    size_t used = 0;
    long long v = std::stoll(rv, &used);
    return used == rv.size() ? v : -1;
  } catch (...) {
    return -1;
  }
}

void SetResourceVersion(json& obj, int64_t revision) {
  obj["metadata"]["resourceVersion"] = std::to_string(revision);
}

bool IsDeleting(const json& obj) {
  auto m = obj.find("metadata");
  return m != obj.end() && m->is_object() && m->contains("deletionTimestamp");
}

std::string NewUid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof(b));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char out[37];
  std::snprintf(out, sizeof(out),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

std::string RandomSuffix() {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  unsigned char b[5];
  RAND_bytes(b, sizeof(b));
  std::string s;
  for (unsigned char c : b) s.push_back(kAlphabet[c % (sizeof(kAlphabet) - 1)]);
  return s;
}

bool IsYaml(const std::string& content_type) {
  return content_type.find("yaml") != std::string::npos &&
         content_type.find("apply-patch") == std::string::npos;
}

ApiResult<json> ParseBody(const std::string& body, const std::string& content_type,
                          const SchemaSet* schemas, const Schema* expected) {
  if (schemas != nullptr && content_type.find(kProtobufContentType) != std::string::npos) {
    auto decoded = DecodeProtobufObject(body, *schemas, expected);
    if (!decoded.ok()) return ApiError::BadRequest(decoded.status().message());
    return std::move(decoded).value();
  }
  if (content_type.find("protobuf") != std::string::npos ||
      content_type.find("cbor") != std::string::npos) {
    return ApiError::UnsupportedMediaType(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml");
  }
  if (IsYaml(content_type) || (content_type.find("apply-patch+yaml") != std::string::npos &&
                               body.find_first_not_of(" \t\r\n") != std::string::npos &&
                               body[body.find_first_not_of(" \t\r\n")] != '{')) {
    try {
      YAML::Node node = YAML::Load(body);
      return YamlToJson(node, 0);
    } catch (const TooDeep&) {
      return ApiError::BadRequest("the request body is nested too deeply");
    } catch (const std::exception& e) {
      return ApiError::BadRequest(std::string("error converting YAML to JSON: ") + e.what());
    }
  }
  try {
    json::parser_callback_t limit = [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) throw TooDeep();
      return true;
    };
    return json::parse(body, limit);
  } catch (const TooDeep&) {
    return ApiError::BadRequest("the request body is nested too deeply");
  } catch (const json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> the part
    // after the bracket.
    auto close = what.find("] ");
    if (close != std::string::npos) what = what.substr(close + 2);
    return ApiError::BadRequest("the request body is not valid JSON: " + what);
  }
}

}  // namespace orch::api
