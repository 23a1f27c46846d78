// Errors as values: every call across a module boundary returns a Status or a Result<T>.
// Exceptions may be used inside a module but never cross its boundary.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace orch {

// The kinds of failure callers branch on. Kept small on purpose: the API server maps them to
// Kubernetes Status reasons and HTTP codes, the CLI to one-line messages.
enum class StatusCode {
  kOk = 0,
  kNotFound,         // the key or object does not exist
  kAlreadyExists,    // create of something that exists
  kConflict,         // compare-and-swap lost: the stored version is not the expected one
  kCompacted,        // the asked-for revision is older than the oldest one kept
  kInvalidArgument,  // the caller's input is malformed; retrying will not help
  kUnavailable,      // a dependency (disk, datastore, network) is down; retrying may help
  kCancelled,        // the operation was stopped by its owner (shutdown, watch cancelled)
  kTooLarge,         // the input or the result exceeds a limit
  kInternal,         // a bug or an unexpected state
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: key /x" - for logs and CLI messages.
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
inline Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
inline Status Conflict(std::string msg) { return {StatusCode::kConflict, std::move(msg)}; }
inline Status Compacted(std::string msg) { return {StatusCode::kCompacted, std::move(msg)}; }
inline Status InvalidArgument(std::string msg) {
  return {StatusCode::kInvalidArgument, std::move(msg)};
}
inline Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
inline Status Cancelled(std::string msg) { return {StatusCode::kCancelled, std::move(msg)}; }
inline Status TooLarge(std::string msg) { return {StatusCode::kTooLarge, std::move(msg)}; }
inline Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

// A value or the Status that explains why there is none. Constructing from an OK Status is a
// programmer error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  // The error; OK when there is a value.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace orch
