// Kubernetes API errors: the Status object every failed request answers with, and the field
// errors of validation, worded as upstream words them (kubectl prints them verbatim).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "http.h"
#include "schema.h"  // FieldError and its builders
#include "orch/status.h"

namespace orch::api {

using json = nlohmann::json;

using FieldErrors = std::vector<FieldError>;

// A failed request: HTTP code, Status reason and message, optional details.
struct ApiError {
  int code = 500;
  std::string reason = "InternalError";
  std::string message;
  json details;  // {"name","group","kind","causes":[...]} or null

  json ToStatus() const;
  Response ToResponse() const;

  // `what` names the resource as upstream does in messages: "pods", "deployments.apps".
  static ApiError NotFound(const std::string& what, const std::string& name);
  static ApiError AlreadyExists(const std::string& what, const std::string& name);
  static ApiError Conflict(const std::string& what, const std::string& name,
                           const std::string& why);
  // `kind_group` like "Deployment.apps" (or "Pod" for core).
  static ApiError Invalid(const std::string& kind_group, const std::string& name,
                          const FieldErrors& errors);
  static ApiError BadRequest(std::string message);
  static ApiError Unauthorized(std::string message = "Unauthorized");
  static ApiError Forbidden(std::string message);
  static ApiError MethodNotAllowed(std::string message);
  static ApiError Gone(std::string message);
  static ApiError Expired(std::string message);
  static ApiError TooLarge(std::string message);
  static ApiError UnsupportedMediaType(std::string message);
  static ApiError NotAcceptable(std::string message);
  static ApiError TooManyRequests(std::string message, int retry_after_seconds);
  static ApiError Unavailable(std::string message);
  static ApiError Internal(std::string message);

  // A datastore/module error on resource `what`/`name`, mapped to the API's code.
  static ApiError FromStatus(const Status& status, const std::string& what = "",
                             const std::string& name = "");
};

// The Status object of a successful delete (for deletes answering with Status).
json SuccessStatus(const std::string& what, const std::string& name, const std::string& uid);

}  // namespace orch::api
