// Joining a cluster, apart from a server: the join token's forms, the CA pin, when stored node
// credentials are reused, how the server's refusals read, back-off, and a join that is stopped.
#include "join.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <stop_token>
#include <thread>

#include "orch/files.h"
#include "orch/pki.h"

using orch::NodeCredentials;
using orch::Status;
using orch::StatusCode;
using orch::agent::CheckCaBundle;
using orch::agent::CheckCredentials;
using orch::agent::JoinBackoff;
using orch::agent::JoinRefusal;
using orch::agent::ParseJoinToken;

namespace {

const std::string kHash(64, 'a');

// A CA and a node certificate signed by it, as the server's join endpoint issues them.
struct Fixture {
  orch::pki::Credential ca;
  NodeCredentials node;

  explicit Fixture(const std::string& node_name, int valid_days = 365,
                   std::vector<std::string> organizations = {"system:nodes"}) {
    ca = *orch::pki::CreateCA("test-ca");
    auto csr = orch::pki::CreateSigningRequest("whatever");
    REQUIRE(csr.ok());
    orch::pki::CertificateRequest subject;
    subject.common_name = "system:node:" + node_name;
    subject.organizations = std::move(organizations);
    subject.client = true;
    subject.valid_days = valid_days;
    auto cert = orch::pki::SignRequest(ca, csr->cert_pem, subject);
    REQUIRE(cert.ok());
    node.ca_pem = ca.cert_pem;
    node.cert_pem = *cert;
    node.key_pem = csr->key_pem;
  }
};

orch::agent::JoinToken TokenFor(const std::string& ca_pem) {
  return *ParseJoinToken("K10" + orch::pki::Sha256Hex(ca_pem) + "::server:s3cret");
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/join_test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("a full token gives the CA hash, user and secret") {
  auto token = ParseJoinToken("K10" + kHash + "::server:s3cret");
  REQUIRE(token.ok());
  CHECK(token->ca_hash == kHash);
  CHECK(token->user == "server");
  CHECK(token->secret == "s3cret");
  CHECK(token->text == "K10" + kHash + "::server:s3cret");
}

TEST_CASE("the CA hash of a token is compared in lower case") {
  std::string upper(64, 'A');
  auto token = ParseJoinToken("K10" + upper + "::server:x");
  REQUIRE(token.ok());
  CHECK(token->ca_hash == kHash);
}

TEST_CASE("a bare secret pins no CA") {
  auto token = ParseJoinToken("0123456789abcdef");
  REQUIRE(token.ok());
  CHECK(token->ca_hash.empty());
  CHECK(token->secret == "0123456789abcdef");
  CHECK(CheckCaBundle(*token, "any CA at all").ok());
}

TEST_CASE("malformed tokens are refused with a reason that does not echo the secret") {
  for (const std::string& bad :
       {std::string(""), std::string("has space"), std::string("user:secret"),
        "K10" + kHash + "::server:", "K10" + kHash + ":server:x", std::string("K10abc::server:x"),
        "K10" + std::string(64, 'g') + "::server:x", "K10" + kHash + "::server",
        "K10" + kHash + ":::x"}) {
    auto token = ParseJoinToken(bad);
    INFO(bad);
    REQUIRE(!token.ok());
    CHECK(token.status().code() == StatusCode::kInvalidArgument);
    if (!bad.empty() && bad.size() > 20) {
      CHECK(token.status().message().find(bad) == std::string::npos);
    }
  }
}

TEST_CASE("the CA bundle must hash to the token's pin") {
  const std::string bundle = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  CHECK(CheckCaBundle(TokenFor(bundle), bundle).ok());
  Status s = CheckCaBundle(TokenFor(bundle), bundle + "\n");
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == "the server's CA does not match the token's hash");
}

TEST_CASE("stored credentials are reused when complete, matching and long valid") {
  Fixture f("node-1");
  CHECK(CheckCredentials(f.node, "node-1", TokenFor(f.ca.cert_pem), 30).ok());
  // A bare secret trusts the stored CA.
  CHECK(CheckCredentials(f.node, "node-1", *ParseJoinToken("secret"), 30).ok());
}

TEST_CASE("stored credentials are not reused when they cannot be") {
  Fixture f("node-1");
  auto token = TokenFor(f.ca.cert_pem);

  SECTION("missing files") {
    NodeCredentials none;
    CHECK(CheckCredentials(none, "node-1", token, 30).code() == StatusCode::kNotFound);
    NodeCredentials no_key = f.node;
    no_key.key_pem.clear();
    CHECK(CheckCredentials(no_key, "node-1", token, 30).code() == StatusCode::kNotFound);
  }
  SECTION("another node name") {
    Status s = CheckCredentials(f.node, "node-2", token, 30);
    CHECK(!s.ok());
    CHECK(s.message().find("system:node:node-1") != std::string::npos);
  }
  SECTION("not in group system:nodes") {
    Fixture other("node-1", 365, {"system:masters"});
    CHECK(!CheckCredentials(other.node, "node-1", TokenFor(other.ca.cert_pem), 30).ok());
  }
  SECTION("a key of another certificate") {
    Fixture other("node-1");
    NodeCredentials mixed = f.node;
    mixed.key_pem = other.node.key_pem;
    Status s = CheckCredentials(mixed, "node-1", token, 30);
    CHECK(s.message().find("key") != std::string::npos);
  }
  SECTION("signed by another CA") {
    Fixture other("node-1");
    NodeCredentials mixed = f.node;
    mixed.cert_pem = other.node.cert_pem;
    mixed.key_pem = other.node.key_pem;
    Status s = CheckCredentials(mixed, "node-1", token, 30);
    CHECK(s.message().find("not valid under the stored CA") != std::string::npos);
  }
  SECTION("a token that pins another CA") {
    Fixture other("node-1");
    Status s = CheckCredentials(f.node, "node-1", TokenFor(other.ca.cert_pem), 30);
    CHECK(s.message().find("hash") != std::string::npos);
  }
  SECTION("expiring within the renewal window") {
    Fixture soon("node-1", 20);
    auto soon_token = TokenFor(soon.ca.cert_pem);
    Status s = CheckCredentials(soon.node, "node-1", soon_token, 30);
    CHECK(s.message().find("expires in") != std::string::npos);
    CHECK(CheckCredentials(soon.node, "node-1", soon_token, 10).ok());
  }
}

TEST_CASE("the server's refusals read as one line") {
  const std::string status401 =
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"a node join needs the cluster's join token as bearer token","reason":"Unauthorized","code":401})";
  Status s = JoinRefusal(401, status401);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().rfind("the server refused the token (HTTP 401: a node join needs", 0) == 0);
  CHECK(s.message().find('\n') == std::string::npos);
  CHECK(JoinRefusal(403, "{}").message() == "the server refused the token (HTTP 403)");
  CHECK(JoinRefusal(400, R"({"message":"invalid node name"})").message() ==
        "the server refused the join (HTTP 400: invalid node name)");
  CHECK(JoinRefusal(404, "404 page not found").code() == StatusCode::kInvalidArgument);
  // Retry on what may pass.
  CHECK(JoinRefusal(503, "").code() == StatusCode::kUnavailable);
  CHECK(JoinRefusal(429, "").code() == StatusCode::kUnavailable);
}

TEST_CASE("back-off doubles up to its maximum") {
  using std::chrono::milliseconds;
  CHECK(JoinBackoff(1, milliseconds(1000), milliseconds(30000)) == milliseconds(1000));
  CHECK(JoinBackoff(2, milliseconds(1000), milliseconds(30000)) == milliseconds(2000));
  CHECK(JoinBackoff(5, milliseconds(1000), milliseconds(30000)) == milliseconds(16000));
  CHECK(JoinBackoff(6, milliseconds(1000), milliseconds(30000)) == milliseconds(30000));
  CHECK(JoinBackoff(1000, milliseconds(1000), milliseconds(30000)) == milliseconds(30000));
}

TEST_CASE("JoinCluster uses valid stored credentials without asking the server") {
  TempDir dir;
  Fixture f("node-1");
  REQUIRE(orch::MakeDirectories(dir.path + "/agent", 0700).ok());
  REQUIRE(orch::WriteFileAtomic(dir.path + "/agent/server-ca.crt", f.node.ca_pem, 0600).ok());
  REQUIRE(orch::WriteFileAtomic(dir.path + "/agent/client-node.crt", f.node.cert_pem, 0600).ok());
  REQUIRE(orch::WriteFileAtomic(dir.path + "/agent/client-node.key", f.node.key_pem, 0600).ok());
  orch::AgentConfig config;
  config.data_dir = dir.path;
  config.node_name = "node-1";
  config.token = TokenFor(f.ca.cert_pem).text;
  config.server_url = "https://127.0.0.1:1";  // nothing listens: must not be needed
  auto joined = orch::JoinCluster(config, std::stop_token());
  REQUIRE(joined.ok());
  CHECK(joined->cert_pem == f.node.cert_pem);
  CHECK(joined->key_file == dir.path + "/agent/client-node.key");
}

TEST_CASE("JoinCluster refuses a bad token or URL at once") {
  TempDir dir;
  orch::AgentConfig config;
  config.data_dir = dir.path;
  config.node_name = "node-1";
  config.server_url = "https://127.0.0.1:1";
  config.token = "a:b";
  CHECK(orch::JoinCluster(config, std::stop_token()).status().code() ==
        StatusCode::kInvalidArgument);
  config.token = "secret";
  config.server_url = "https://127.0.0.1:1/some/path";
  CHECK(orch::JoinCluster(config, std::stop_token()).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("JoinCluster keeps waiting for an unreachable server until stopped") {
  TempDir dir;
  orch::AgentConfig config;
  config.data_dir = dir.path;
  config.node_name = "node-1";
  config.token = "secret";
  config.server_url = "https://127.0.0.1:1";  // connection refused
  orch::JoinOptions options;
  options.initial_backoff = std::chrono::milliseconds(10);
  options.max_backoff = std::chrono::milliseconds(50);
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop.request_stop();
  });
  auto joined = orch::JoinCluster(config, stop.get_token(), options);
  stopper.join();
  CHECK(joined.status().code() == StatusCode::kCancelled);
  CHECK(!std::filesystem::exists(dir.path + "/agent/client-node.crt"));
}

TEST_CASE("FetchClusterSettings refuses a bad token at once and waits for an unreachable server") {
  orch::AgentConfig config;
  config.token = "a:b";
  config.server_url = "https://127.0.0.1:1";
  CHECK(orch::FetchClusterSettings(config, "", std::stop_token()).status().code() ==
        StatusCode::kInvalidArgument);
  config.token = "secret";  // connection refused: retried with back-off until stopped
  orch::JoinOptions options;
  options.initial_backoff = std::chrono::milliseconds(10);
  options.max_backoff = std::chrono::milliseconds(50);
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop.request_stop();
  });
  auto settings = orch::FetchClusterSettings(config, "", stop.get_token(), options);
  stopper.join();
  CHECK(settings.status().code() == StatusCode::kCancelled);
}
