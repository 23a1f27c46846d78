// Admission plugins through a real API server on a temporary SQLite store: DefaultIngressClass
// (new Ingresses without a class get the default IngressClass, as upstream's plugin does).
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "orch/apiserver.h"
#include "orch/files.h"
#include "orch/pki.h"
#include "orch/store.h"

namespace orch {
namespace {

using nlohmann::json;

const ResourceRef kIngresses{"networking.k8s.io", "v1", "ingresses"};
const ResourceRef kClasses{"networking.k8s.io", "v1", "ingressclasses"};

// A server on a fresh data dir, torn down at scope exit.
struct TestServer {
  std::filesystem::path dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<ApiServer> server;
  std::unique_ptr<ApiClient> client;

  TestServer() {
    dir = std::filesystem::temp_directory_path() / ("orch-admission-" + pki::RandomHex(6));
    std::filesystem::create_directories(dir);
    auto ca = pki::CreateCA("test-ca");
    REQUIRE(ca.ok());
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
    auto started = ApiServer::Start(options, *store);
    REQUIRE(started.ok());
    server = std::move(*started);
    client = server->NewClient("admin", {"system:masters"}, "test");
  }
  ~TestServer() {
    client.reset();
    server->Stop();
    server.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }

  void AddClass(const std::string& name, const char* is_default) {
    json c = {{"apiVersion", "networking.k8s.io/v1"},
              {"kind", "IngressClass"},
              {"metadata", {{"name", name}}},
              {"spec", {{"controller", "example.com/" + name}}}};
    if (is_default != nullptr) {
      c["metadata"]["annotations"] = {{"ingressclass.kubernetes.io/is-default-class", is_default}};
    }
    REQUIRE(client->Create(kClasses, "", c).ok());
  }

  // The created Ingress's spec.ingressClassName, "<none>" when it has none.
  std::string Create(const std::string& name, const json& class_name = json(),
                     const json& annotations = json()) {
    json ingress = {
        {"apiVersion", "networking.k8s.io/v1"},
        {"kind", "Ingress"},
        {"metadata", {{"name", name}}},
        {"spec",
         {{"defaultBackend", {{"service", {{"name", "web"}, {"port", {{"number", 80}}}}}}}}}};
    if (!class_name.is_null()) ingress["spec"]["ingressClassName"] = class_name;
    if (!annotations.is_null()) ingress["metadata"]["annotations"] = annotations;
    auto created = client->Create(kIngresses, "default", ingress);
    REQUIRE(created.ok());
    return ClassOf(*created);
  }

  static std::string ClassOf(const json& ingress) {
    const json& spec = ingress["spec"];
    return spec.contains("ingressClassName") ? spec["ingressClassName"].get<std::string>()
                                             : "<none>";
  }
};

}  // namespace

TEST_CASE("a new Ingress without a class gets the default IngressClass, and only then") {
  TestServer s;
  // No default class: nothing to set.
  s.AddClass("plain", nullptr);
  s.AddClass("not-default", "false");
  CHECK(s.Create("before") == "<none>");

  s.AddClass("the-default", "true");
  CHECK(s.Create("defaulted") == "the-default");
  // A class the user chose, and the old annotation, are left alone.
  CHECK(s.Create("chosen", "plain") == "plain");
  CHECK(s.Create("annotated", json(), {{"kubernetes.io/ingress.class", "plain"}}) == "<none>");

  // Only on create: an update that drops the annotation does not get the default.
  auto annotated = s.client->Get(kIngresses, "default", "annotated");
  REQUIRE(annotated.ok());
  json changed = *annotated;
  changed["metadata"].erase("annotations");
  auto updated = s.client->Update(kIngresses, "default", changed);
  REQUIRE(updated.ok());
  CHECK(TestServer::ClassOf(*updated) == "<none>");
}

TEST_CASE("with several default IngressClasses the newest wins, then the first by name") {
  TestServer s;
  s.AddClass("b-default", "true");
  s.AddClass("a-default", "true");
  // Created in the same second (creationTimestamp has seconds) the first by name wins; if a
  // second passed in between, a-default is the newer one: a-default either way.
  CHECK(s.Create("tie") == "a-default");
  // A newer default class takes over.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  s.AddClass("newest", "true");
  CHECK(s.Create("later") == "newest");
}

}  // namespace orch
