// Signing of node client certificates for joining agents (node_join.h). The subject comes from
// the node name, never from the CSR: the CSR only carries the agent's public key.
#include "node_join.h"

#include <openssl/crypto.h>

#include <nlohmann/json.hpp>

#include "errors.h"
#include "orch/log.h"
#include "orch/names.h"

namespace orch::api {

bool NodeCertificateSigner::HasJoinToken(const Request& request) const {
  std::string header = request.headers.Get("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0) {
    return false;
  }
  std::string_view token = std::string_view(header).substr(kBearer.size());
  bool match = false;
  for (const std::string& known : join_tokens_) {
    // Constant time per candidate: a token must not leak through timing.
    if (known.size() == token.size() &&
        CRYPTO_memcmp(known.data(), token.data(), token.size()) == 0) {
      match = true;
    }
  }
  return match;
}

Response NodeCertificateSigner::Refusal(const Request& request, bool authenticated,
                                        const std::string& forbidden) const {
  if (authenticated) {
    return ApiError::Forbidden(forbidden).ToResponse();
  }
  if (request.headers.Get("authorization").empty()) {
    return ApiError::Unauthorized("a node join needs the cluster's join token as bearer token")
        .ToResponse();
  }
  return ApiError::Unauthorized("the bearer token is not the cluster's join token").ToResponse();
}

Response NodeCertificateSigner::ServeSettings(const Request& request, bool authenticated) const {
  if (settings_json_.empty()) {
    return ApiError{404, "NotFound", "the server could not find the requested resource", json()}
        .ToResponse();
  }
  if (request.method != "GET") {
    return ApiError::MethodNotAllowed(request.method + " is not supported on " + request.path)
        .ToResponse();
  }
  if (!HasJoinToken(request)) {
    return Refusal(request, authenticated,
                   "the cluster's settings are only given to holders of the join token");
  }
  Response response;
  response.body = settings_json_;
  return response;
}

Response NodeCertificateSigner::Serve(const Request& request, bool authenticated) const {
  if (request.path == kNodeConfigPath) return ServeSettings(request, authenticated);
  if (request.path != kNodeCertificatePath) {
    return ApiError{404, "NotFound", "the server could not find the requested resource", json()}
        .ToResponse();
  }
  if (request.method != "POST") {
    return ApiError::MethodNotAllowed(request.method + " is not supported on " + request.path)
        .ToResponse();
  }
  if (!HasJoinToken(request)) {
    return Refusal(request, authenticated,
                   "node certificates are only issued to holders of the join token");
  }
  json body = json::parse(request.body, nullptr, false);
  if (!body.is_object() || !body.contains("nodeName") || !body["nodeName"].is_string() ||
      !body.contains("csr") || !body["csr"].is_string()) {
    return ApiError::BadRequest(
               "the body must be a JSON object with the strings \"nodeName\" and \"csr\"")
        .ToResponse();
  }
  const std::string node_name = body["nodeName"];
  // Node names are DNS subdomains; the name also becomes the certificate's user name.
  if (Status s = ValidateDnsSubdomain(node_name); !s.ok()) {
    return ApiError::BadRequest("invalid node name \"" + node_name + "\": " + s.message())
        .ToResponse();
  }
  pki::CertificateRequest subject;
  subject.common_name = "system:node:" + node_name;
  subject.organizations = {"system:nodes"};
  subject.client = true;
  subject.valid_days = kNodeCertificateDays;
  auto cert = pki::SignRequest(ca_, body["csr"].get<std::string>(), subject);
  if (!cert.ok()) {
    if (cert.status().code() == StatusCode::kInvalidArgument) {
      return ApiError::BadRequest("invalid certificate signing request: " + cert.status().message())
          .ToResponse();
    }
    return ApiError::Internal("signing the node certificate: " + cert.status().message())
        .ToResponse();
  }
  log::Info("apiserver", "issued a client certificate for node {} (from {})", node_name,
            request.remote_address);
  Response response;
  response.body = json{{"certificate", *cert}, {"caBundle", ca_bundle_pem_}}.dump();
  return response;
}

}  // namespace orch::api
