// Kubernetes Status errors and field-error wording (upstream's apimachinery messages).
#include "errors.h"

#include <fmt/format.h>

namespace orch::api {
namespace {

ApiError Make(int code, const char* reason, std::string message) {
  ApiError e;
  e.code = code;
  e.reason = reason;
  e.message = std::move(message);
  return e;
}

// "deployments.apps" -> {"group":"apps","kind":"deployments"}
json DetailsFor(const std::string& what, const std::string& name) {
  json details = json::object();
  if (!name.empty()) details["name"] = name;
  auto dot = what.find('.');
  if (dot == std::string::npos) {
    if (!what.empty()) details["kind"] = what;
  } else {
    details["group"] = what.substr(dot + 1);
    details["kind"] = what.substr(0, dot);
  }
  return details;
}

}  // namespace

json ApiError::ToStatus() const {
  json status = {{"kind", "Status"},     {"apiVersion", "v1"},   {"metadata", json::object()},
                 {"status", "Failure"},  {"message", message},   {"reason", reason},
                 {"code", code}};
  if (!details.is_null() && !details.empty()) status["details"] = details;
  return status;
}

Response ApiError::ToResponse() const {
  Response r;
  r.status = code;
  r.body = ToStatus().dump();
  if (code == 429 && details.contains("retryAfterSeconds")) {
    r.headers.emplace_back("Retry-After", std::to_string(details["retryAfterSeconds"].get<int>()));
  }
  return r;
}

ApiError ApiError::NotFound(const std::string& what, const std::string& name) {
  ApiError e = Make(404, "NotFound", fmt::format("{} \"{}\" not found", what, name));
  e.details = DetailsFor(what, name);
  return e;
}

ApiError ApiError::AlreadyExists(const std::string& what, const std::string& name) {
  ApiError e = Make(409, "AlreadyExists", fmt::format("{} \"{}\" already exists", what, name));
  e.details = DetailsFor(what, name);
  return e;
}

ApiError ApiError::Conflict(const std::string& what, const std::string& name,
                            const std::string& why) {
  ApiError e = Make(409, "Conflict",
                    fmt::format("Operation cannot be fulfilled on {} \"{}\": {}", what, name, why));
  e.details = DetailsFor(what, name);
  return e;
}

ApiError ApiError::Invalid(const std::string& kind_group, const std::string& name,
                           const FieldErrors& errors) {
  std::string joined;
  json causes = json::array();
  for (const FieldError& fe : errors) {
    joined += (joined.empty() ? "" : ", ") + fe.ToString();
    causes.push_back(fe.ToCause());
  }
  if (errors.size() > 1) joined = "[" + joined + "]";
  ApiError e = Make(422, "Invalid", fmt::format("{} \"{}\" is invalid: {}", kind_group, name, joined));
  auto dot = kind_group.find('.');
  e.details = {{"name", name},
               {"kind", kind_group.substr(0, dot)},
               {"causes", causes}};
  if (dot != std::string::npos) e.details["group"] = kind_group.substr(dot + 1);
  return e;
}

ApiError ApiError::BadRequest(std::string message) {
  return Make(400, "BadRequest", std::move(message));
}
ApiError ApiError::Unauthorized(std::string message) {
  return Make(401, "Unauthorized", std::move(message));
}
ApiError ApiError::Forbidden(std::string message) {
  return Make(403, "Forbidden", std::move(message));
}
ApiError ApiError::MethodNotAllowed(std::string message) {
  return Make(405, "MethodNotAllowed", std::move(message));
}
ApiError ApiError::Gone(std::string message) { return Make(410, "Gone", std::move(message)); }
ApiError ApiError::Expired(std::string message) {
  return Make(410, "Expired", std::move(message));
}
ApiError ApiError::TooLarge(std::string message) {
  return Make(413, "RequestEntityTooLarge", std::move(message));
}
ApiError ApiError::UnsupportedMediaType(std::string message) {
  return Make(415, "UnsupportedMediaType", std::move(message));
}
ApiError ApiError::NotAcceptable(std::string message) {
  return Make(406, "NotAcceptable", std::move(message));
}
ApiError ApiError::TooManyRequests(std::string message, int retry_after_seconds) {
  ApiError e = Make(429, "TooManyRequests", std::move(message));
  e.details = {{"retryAfterSeconds", retry_after_seconds}};
  return e;
}
ApiError ApiError::Unavailable(std::string message) {
  return Make(503, "ServiceUnavailable", std::move(message));
}
ApiError ApiError::Internal(std::string message) {
  return Make(500, "InternalError", std::move(message));
}

ApiError ApiError::FromStatus(const Status& status, const std::string& what,
                              const std::string& name) {
  switch (status.code()) {
    case StatusCode::kNotFound: return NotFound(what, name);
    case StatusCode::kAlreadyExists: return AlreadyExists(what, name);
    case StatusCode::kConflict:
      return Conflict(what, name,
                      "the object has been modified; please apply your changes to the latest "
                      "version and try again");
    case StatusCode::kCompacted: return Expired(status.message());
    case StatusCode::kInvalidArgument: return BadRequest(status.message());
    case StatusCode::kTooLarge: return TooLarge(status.message());
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled: return Unavailable(status.message());
    default: return Internal(status.message());
  }
}

json SuccessStatus(const std::string& what, const std::string& name, const std::string& uid) {
  json details = DetailsFor(what, name);
  if (!uid.empty()) details["uid"] = uid;
  return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
          {"status", "Success"}, {"details", details}};
}

}  // namespace orch::api
