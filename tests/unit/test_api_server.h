// A real API server for unit tests: a fresh CA and serving certificate, a SQLite store in a
// temporary dir and HTTPS on a free loopback port; stopped, and the dir removed, at scope exit.
#pragma once

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "orch/apiserver.h"
#include "orch/files.h"
#include "orch/pki.h"
#include "orch/store.h"

namespace orch::testing {

struct TestApiServer {
  std::filesystem::path dir;
  std::string ca_pem;  // the CA that signed the serving certificate, for HTTPS clients
  std::unique_ptr<Store> store;
  std::unique_ptr<ApiServer> server;

  // `dir_prefix` names the temp dir ("orch-inproc-"); `configure` may change the options (for
  // example service-account settings) after the defaults are set and before the server starts.
  explicit TestApiServer(
      const std::string& dir_prefix,
      const std::function<void(ApiServerOptions&, const std::filesystem::path& dir)>& configure =
          {}) {
    dir =
        std::filesystem::temp_directory_path() / fmt::format("{}{}", dir_prefix, pki::RandomHex(6));
    std::filesystem::create_directories(dir);
    auto ca = pki::CreateCA("test-ca");
    REQUIRE(ca.ok());
    ca_pem = ca->cert_pem;
    pki::CertificateRequest req;
    req.common_name = "apiserver";
    req.ip_addresses = {"127.0.0.1"};
    req.server = true;
    auto serving = pki::IssueCertificate(*ca, req);
    REQUIRE(serving.ok());
    REQUIRE(WriteFileAtomic((dir / "ca.crt").string(), ca->cert_pem, 0600).ok());
    REQUIRE(WriteFileAtomic((dir / "tls.crt").string(), serving->cert_pem, 0600).ok());
    REQUIRE(WriteFileAtomic((dir / "tls.key").string(), serving->key_pem, 0600).ok());
    StoreOptions so;
    so.endpoint = "sqlite://" + (dir / "state.db").string();
    auto opened = OpenStore(so);
    REQUIRE(opened.ok());
    store = std::move(*opened);
    ApiServerOptions options;
    options.bind_address = "127.0.0.1";
    options.port = 0;
    options.advertise_address = "127.0.0.1";
    options.cert_file = (dir / "tls.crt").string();
    options.key_file = (dir / "tls.key").string();
    options.client_ca_file = (dir / "ca.crt").string();
    options.encryption_key_file = (dir / "cred" / "key").string();
    if (configure) configure(options, dir);
    auto started = ApiServer::Start(options, *store);
    REQUIRE(started.ok());
    server = std::move(*started);
  }
  ~TestApiServer() {
    if (server) server->Stop();
    server.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  TestApiServer(const TestApiServer&) = delete;
  TestApiServer& operator=(const TestApiServer&) = delete;
};

}  // namespace orch::testing
