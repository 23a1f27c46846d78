// The ServiceAccount controller against the fake API: every namespace gets a `default`
// ServiceAccount, again when it is deleted, and none while the namespace terminates.
#include "serviceaccount_controller.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace resources = orch::resources;

json Namespace(const std::string& name) {
  return {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
}

}  // namespace

TEST_CASE("which namespaces want a default ServiceAccount") {
  CHECK(ctrl::NamespaceWantsServiceAccounts(Namespace("a")));
  json terminating = Namespace("a");
  terminating["status"]["phase"] = "Terminating";
  CHECK_FALSE(ctrl::NamespaceWantsServiceAccounts(terminating));
  json deleting = Namespace("a");
  deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  CHECK_FALSE(ctrl::NamespaceWantsServiceAccounts(deleting));
  json sa = ctrl::DefaultServiceAccount("team");
  CHECK(sa["metadata"]["name"] == "default");
  CHECK(sa["metadata"]["namespace"] == "team");
  CHECK(sa["kind"] == "ServiceAccount");
}

TEST_CASE("every namespace gets a default ServiceAccount, recreated when deleted") {
  ControllerFixture f;
  f.Add(orch::NewServiceAccountController(f.context));
  auto has_default = [&](const std::string& ns) {
    return f.api.Get(resources::kServiceAccounts, ns, "default").ok();
  };
  REQUIRE(WaitUntil([&] { return has_default("default"); }));
  REQUIRE(f.api.Create(resources::kNamespaces, "", Namespace("team")).ok());
  REQUIRE(WaitUntil([&] { return has_default("team"); }));
  REQUIRE(f.api.Delete(resources::kServiceAccounts, "team", "default").ok());
  REQUIRE(WaitUntil([&] { return has_default("team"); }));

  // A namespace being deleted gets none back.
  json ns = Namespace("gone");
  ns["spec"]["finalizers"] = {"kubernetes"};
  REQUIRE(f.api.Create(resources::kNamespaces, "", ns).ok());
  REQUIRE(WaitUntil([&] { return has_default("gone"); }));
  REQUIRE(f.api.Delete(resources::kNamespaces, "", "gone").ok());
  REQUIRE(f.api.Delete(resources::kServiceAccounts, "gone", "default").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(has_default("gone"));
}
