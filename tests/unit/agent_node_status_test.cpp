// The node status reporter (src/agent/node_status.h) against the fake API: registration, and
// the rewrite after a silent spell, when the node lifecycle controller may have marked the node
// Unknown while the agent could not reach the API.
#include <catch2/catch.hpp>
#include <thread>

#include "agent_fakes.h"
#include "fake_api_client.h"
#include "fake_runtime.h"
#include "node_status.h"

namespace {

using json = nlohmann::json;
namespace resources = orch::resources;

std::string ReadyOf(orch::ApiClient& api, const std::string& node) {
  auto got = api.Get(resources::kNodes, "", node);
  if (!got.ok()) return "";
  for (const json& c : (*got)["status"].value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") return c.value("status", "");
  }
  return "";
}

bool WaitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace

TEST_CASE(
    "after a silent spell the agent writes its unchanged status, so the node is Ready again") {
  orch::testing::FakeApiClient api;
  REQUIRE(api.Create(resources::kNamespaces, "",
                     {{"apiVersion", "v1"},
                      {"kind", "Namespace"},
                      {"metadata", {{"name", "kube-node-lease"}}}})
              .ok());
  orch::testing::CutOffApiClient link(api);
  orch::testing::FakeRuntime runtime;
  orch::testing::FakeMachine machine;
  const auto heartbeat = std::chrono::milliseconds(100);
  orch::agent::NodeIdentity identity;
  identity.name = "n1";
  identity.ip = "10.0.0.5";
  orch::agent::NodeStatusReporter reporter(
      link, runtime, machine, identity, "/tmp", [] { return true; }, heartbeat);
  REQUIRE(reporter.Register(std::chrono::seconds(5)).ok());
  CHECK(ReadyOf(api, "n1") == "True");
  reporter.Start();
  REQUIRE(WaitFor([&] { return api.Get(resources::kLeases, "kube-node-lease", "n1").ok(); }));

  // The agent loses the API; meanwhile the lifecycle controller marks the node Unknown.
  link.SetReachable(false);
  auto node = api.Get(resources::kNodes, "", "n1");
  REQUIRE(node.ok());
  for (json& c : (*node)["status"]["conditions"]) {
    if (c["type"] == "Ready") {
      c["status"] = "Unknown";
      c["reason"] = "NodeStatusUnknown";
    }
  }
  REQUIRE(api.Update(resources::kNodes, "", *node, "status").ok());
  // Silent for well over two heartbeats.
  std::this_thread::sleep_for(5 * heartbeat);
  CHECK(ReadyOf(api, "n1") == "Unknown");

  // Back: nothing changed on the node since the agent's last write, yet the status is written
  // at once (not after the 5-minute report).
  link.SetReachable(true);
  CHECK(WaitFor([&] { return ReadyOf(api, "n1") == "True"; }));
  reporter.Stop();
}
