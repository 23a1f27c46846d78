// Unit tests of the HA bootstrap (src/server/bootstrap.h): sealing with the token, and the first
// and later servers of one datastore sharing the CAs and keys (SQLite stands in for etcd).
#include <catch2/catch.hpp>
#include <filesystem>

#include "bootstrap.h"
#include "orch/files.h"

namespace orch {
namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/orch-bootstrap-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

ServerConfig ConfigIn(const std::string& dir, const std::string& token) {
  ServerConfig config;
  config.data_dir = dir;
  config.token = token;
  return config;
}

TEST_CASE("bootstrap data opens only with the token that sealed it") {
  std::string sealed = SealBootstrap("s3cret", "the CA key");
  CHECK(sealed.starts_with("orch:bootstrap:v1:"));
  CHECK(sealed.find("the CA key") == std::string::npos);
  auto opened = OpenBootstrap("s3cret", sealed);
  REQUIRE(opened.ok());
  CHECK(*opened == "the CA key");
  CHECK(OpenBootstrap("other", sealed).status().code() == StatusCode::kInvalidArgument);
  CHECK(SealBootstrap("s3cret", "x") != SealBootstrap("s3cret", "x"));  // fresh salt and nonce
  CHECK(BootstrapKey("s3cret") == BootstrapKey("s3cret"));
  CHECK(BootstrapKey("s3cret") != BootstrapKey("other"));
  CHECK(BootstrapKey("s3cret").starts_with("/bootstrap/"));
}

TEST_CASE("later servers take the first server's files from the datastore") {
  TempDir tmp;
  StoreOptions options;
  options.data_dir = tmp.path + "/db";
  auto store = OpenStore(options);
  REQUIRE(store.ok());
  const std::string first = tmp.path + "/first", second = tmp.path + "/second";

  // The first server: no token given, so one is made; its CA and keys go to the datastore.
  auto boot = ClusterBootstrap::Prepare(ConfigIn(first, ""), **store);
  REQUIRE(boot.ok());
  CHECK(boot->first());
  std::string secret = boot->secret();
  CHECK(secret.size() == 32);
  CHECK(ReadFileToString(first + "/server/cred/encryption-key")->size() == 32);
  REQUIRE(MakeDirectories(first + "/server/tls", 0700).ok());
  REQUIRE(WriteFileAtomic(first + "/server/tls/server-ca.crt", "CA CERT", 0644).ok());
  REQUIRE(WriteFileAtomic(first + "/server/tls/server-ca.key", "CA KEY", 0600).ok());
  REQUIRE(WriteFileAtomic(first + "/server/tls/serving-kube-apiserver.crt", "MINE", 0644).ok());
  auto replaced = boot->Publish();
  REQUIRE(replaced.ok());
  CHECK_FALSE(*replaced);

  // A file made after the start (the service-account key) is shared too.
  REQUIRE(WriteFileAtomic(first + "/server/tls/service.key", "SA KEY", 0600).ok());
  REQUIRE(boot->ShareNewFiles().ok());

  SECTION("the same token gets the same files, but not the serving certificate") {
    auto later = ClusterBootstrap::Prepare(
        ConfigIn(second, "K10" + std::string(64, 'a') + "::server:" + secret), **store);
    REQUIRE(later.ok());
    CHECK_FALSE(later->first());
    CHECK(*ReadFileToString(second + "/server/tls/server-ca.key") == "CA KEY");
    CHECK(*ReadFileToString(second + "/server/tls/service.key") == "SA KEY");
    CHECK(*ReadFileToString(second + "/server/cred/encryption-key") ==
          *ReadFileToString(first + "/server/cred/encryption-key"));
    CHECK_FALSE(std::filesystem::exists(second + "/server/tls/serving-kube-apiserver.crt"));
    const auto owner_only =
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
    CHECK(std::filesystem::status(second + "/server/tls/server-ca.key").permissions() ==
          owner_only);
    auto again = later->Publish();
    REQUIRE(again.ok());
    CHECK_FALSE(*again);
  }
  SECTION("a wrong token is refused and writes nothing") {
    auto wrong = ClusterBootstrap::Prepare(ConfigIn(second, "not-the-secret"), **store);
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.status().message().find("wrong token") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(second + "/server/tls/server-ca.key"));
  }
  SECTION("no token at all is refused once the datastore holds a cluster") {
    auto none = ClusterBootstrap::Prepare(ConfigIn(second, ""), **store);
    REQUIRE_FALSE(none.ok());
    CHECK(none.status().message().find("--token") != std::string::npos);
  }
  SECTION("a data dir of another cluster is refused") {
    REQUIRE(MakeDirectories(second + "/server/tls", 0700).ok());
    REQUIRE(WriteFileAtomic(second + "/server/tls/server-ca.key", "OTHER KEY", 0600).ok());
    auto other = ClusterBootstrap::Prepare(ConfigIn(second, secret), **store);
    REQUIRE_FALSE(other.ok());
    CHECK(other.status().message().find("another cluster") != std::string::npos);
  }
}

TEST_CASE("--server with an empty datastore is refused") {
  TempDir tmp;
  StoreOptions options;
  options.data_dir = tmp.path + "/db";
  auto store = OpenStore(options);
  REQUIRE(store.ok());
  ServerConfig config = ConfigIn(tmp.path + "/s", "secret");
  config.server_url = "https://10.0.0.1:6443";
  auto boot = ClusterBootstrap::Prepare(config, **store);
  REQUIRE_FALSE(boot.ok());
  CHECK(boot.status().message().find("holds no cluster") != std::string::npos);
}

}  // namespace
}  // namespace orch
