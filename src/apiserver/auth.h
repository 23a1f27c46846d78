// Who is calling (authentication) and whether they may (authorization). Client certificates
// signed by the cluster CA, static bearer tokens and service-account tokens authenticate;
// authorization is a seam that allows every authenticated user today and takes RBAC later.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http.h"

namespace orch::api {

struct UserInfo {
  std::string name;
  std::vector<std::string> groups;
  std::string uid = {};
  std::map<std::string, std::vector<std::string>> extra = {};
};

// A source of users for bearer tokens that are not a fixed list (service-account JWTs).
class TokenAuthenticator {
 public:
  virtual ~TokenAuthenticator() = default;
  // The user of `token`, or nullopt when this authenticator does not accept it. Thread-safe.
  virtual std::optional<UserInfo> AuthenticateToken(const std::string& token) const = 0;
};

// What a request wants to do, in RBAC's terms.
struct RequestAttributes {
  std::string verb;  // get list watch create update patch delete deletecollection
  std::string group, version, resource, subresource, ns, name;
  std::string path;  // for non-resource requests (/healthz, /version, ...)
  bool resource_request = false;
};

class Authenticator {
 public:
  // Static bearer tokens (the node join token, ...) mapped to users.
  void AddToken(const std::string& token, UserInfo user);
  // Asked, in order, about bearer tokens that are not static ones; must outlive this object.
  void AddTokenAuthenticator(const TokenAuthenticator* authenticator);
  // The user behind `request`, or nullopt when it carries no credentials we accept.
  std::optional<UserInfo> Authenticate(const Request& request) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, UserInfo> tokens_;                       // guarded by mu_
  std::vector<const TokenAuthenticator*> token_authenticators_;  // guarded by mu_
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  // An empty string allows; otherwise the reason for a 403.
  virtual std::string Authorize(const UserInfo& user,
                                const RequestAttributes& attributes) const = 0;
};

// Every authenticated user may do everything (the cluster admin model of a fresh k3s).
class AllowAllAuthorizer : public Authorizer {
 public:
  std::string Authorize(const UserInfo&, const RequestAttributes&) const override { return ""; }
};

}  // namespace orch::api
