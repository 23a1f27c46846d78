// Admission plugins through a real API server on a temporary SQLite store: DefaultIngressClass
// (new Ingresses without a class get the default IngressClass, as upstream's plugin does).
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "orch/apiserver.h"
#include "test_api_server.h"

namespace orch {
namespace {

using nlohmann::json;

const ResourceRef kIngresses{"networking.k8s.io", "v1", "ingresses"};
const ResourceRef kClasses{"networking.k8s.io", "v1", "ingressclasses"};

// A server on a fresh data dir (the shared fixture), with an admin client, torn down at scope
// exit.
struct TestServer {
  testing::TestApiServer api{"orch-admission-"};
  std::unique_ptr<ApiClient> client = api.server->NewClient("admin", {"system:masters"}, "test");

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
