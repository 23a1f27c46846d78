// The API server's side of node join: who gets a node certificate, with what subject, and how
// bad requests are answered (Kubernetes Status objects with the right codes).
#include "node_join.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using nlohmann::json;
using orch::api::NodeCertificateSigner;
using orch::api::Request;
using orch::api::Response;

namespace {

const std::string kToken = "K10abc::server:s3cret";

struct Fixture {
  orch::pki::Credential ca = *orch::pki::CreateCA("test-ca");
  NodeCertificateSigner signer{ca, ca.cert_pem, {kToken, "s3cret"}};
  orch::pki::Credential csr = *orch::pki::CreateSigningRequest("system:admin");

  Response Post(const std::string& body, const std::string& token = kToken,
                bool authenticated = false, const std::string& method = "POST",
                const std::string& path = orch::api::kNodeCertificatePath) {
    Request request;
    request.method = method;
    request.path = path;
    request.target = path;
    request.body = body;
    if (!token.empty()) request.headers.Add("Authorization", "Bearer " + token);
    return signer.Serve(request, authenticated);
  }
  std::string Body(const std::string& node) {
    return json{{"nodeName", node}, {"csr", csr.cert_pem}}.dump();
  }
};

json StatusOf(const Response& response) {
  json status = json::parse(response.body);
  CHECK(status["kind"] == "Status");
  CHECK(status["code"] == response.status);
  return status;
}

}  // namespace

TEST_CASE("the join token buys a node certificate whose subject the server chooses") {
  Fixture f;
  for (const std::string& token : {kToken, std::string("s3cret")}) {
    Response response = f.Post(f.Body("node-1"), token);
    REQUIRE(response.status == 200);
    json answer = json::parse(response.body);
    CHECK(answer["caBundle"] == f.ca.cert_pem);
    std::string cert = answer["certificate"];
    // The CSR asked for system:admin; the certificate names the node.
    auto subject = orch::pki::ReadSubject(cert);
    REQUIRE(subject.ok());
    CHECK(subject->common_name == "system:node:node-1");
    CHECK(subject->organizations == std::vector<std::string>{"system:nodes"});
    auto days = orch::pki::DaysUntilExpiry(cert);
    REQUIRE(days.ok());
    CHECK(*days >= 364);
  }
}

TEST_CASE("callers without the join token are refused") {
  Fixture f;
  Response none = f.Post(f.Body("node-1"), "");
  CHECK(none.status == 401);
  CHECK(StatusOf(none)["reason"] == "Unauthorized");
  CHECK(f.Post(f.Body("node-1"), "wrong").status == 401);
  CHECK(f.Post(f.Body("node-1"), kToken + "x").status == 401);
  // An admin with a client certificate is still not a joining node.
  Response admin = f.Post(f.Body("node-1"), "", true);
  CHECK(admin.status == 403);
  CHECK(StatusOf(admin)["reason"] == "Forbidden");
}

TEST_CASE("bad bodies, CSRs and node names are 400") {
  Fixture f;
  for (const std::string& body :
       {std::string("not json"), std::string("{}"), std::string(R"({"nodeName":"n"})"),
        json{{"nodeName", 5}, {"csr", f.csr.cert_pem}}.dump(),
        json{{"nodeName", "n"}, {"csr", "-----BEGIN CERTIFICATE REQUEST-----\nxx\n"}}.dump(),
        // A certificate is not a request.
        json{{"nodeName", "n"}, {"csr", f.ca.cert_pem}}.dump(), f.Body("Node_1"), f.Body(""),
        f.Body("a/b"), f.Body(std::string(254, 'a'))}) {
    INFO(body);
    Response response = f.Post(body);
    CHECK(response.status == 400);
    CHECK(StatusOf(response)["reason"] == "BadRequest");
  }
}

TEST_CASE("only POST on the one path") {
  Fixture f;
  CHECK(f.Post("", kToken, false, "GET").status == 405);
  CHECK(f.Post(f.Body("n"), kToken, false, "POST", "/v1-orch/other").status == 404);
}

TEST_CASE("the cluster's settings go to holders of the join token, by GET only") {
  orch::pki::Credential ca = *orch::pki::CreateCA("test-ca");
  const std::string settings = R"({"clusterDNS":"10.43.0.53"})";
  NodeCertificateSigner signer{ca, ca.cert_pem, {kToken, "s3cret"}, settings};
  auto get = [&](const std::string& token, bool authenticated = false,
                 const std::string& method = "GET") {
    Request request;
    request.method = method;
    request.path = orch::api::kNodeConfigPath;
    request.target = request.path;
    if (!token.empty()) request.headers.Add("Authorization", "Bearer " + token);
    return signer.Serve(request, authenticated);
  };
  for (const std::string& token : {kToken, std::string("s3cret")}) {
    Response ok = get(token);
    CHECK(ok.status == 200);
    CHECK(ok.body == settings);
  }
  CHECK(get("").status == 401);
  CHECK(get("wrong").status == 401);
  CHECK(get("", true).status == 403);
  CHECK(get(kToken, false, "POST").status == 405);

  // A signer without settings (a server that hands none out) does not know the path.
  Fixture f;
  CHECK(f.Post("", kToken, false, "GET", orch::api::kNodeConfigPath).status == 404);
}
