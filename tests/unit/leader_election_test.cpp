// Leader election on the fake API client: one leader among candidates, hand-over at Stop, and
// take-over of a Lease whose holder stopped renewing.
#include "orch/leader_election.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "fake_api_client.h"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

orch::LeaderElectionOptions Options(const std::string& identity) {
  orch::LeaderElectionOptions options;
  options.lease_name = "orch-controllers";
  options.identity = identity;
  options.lease_duration = 3s;
  options.renew_deadline = 2s;
  options.retry_period = 1s;
  return options;
}

// Polls `condition` for up to 15 s.
template <typename F>
bool Eventually(F condition) {
  for (int i = 0; i < 1500; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

json Lease(orch::testing::FakeApiClient& fake) {
  auto lease = fake.Get(orch::resources::kLeases, "kube-system", "orch-controllers");
  REQUIRE(lease.ok());
  return *lease;
}

}  // namespace

TEST_CASE("Exactly one of two candidates leads, and Stop hands the lease over") {
  orch::testing::FakeApiClient fake;
  std::atomic<int> started_a{0}, stopped_a{0}, started_b{0}, stopped_b{0};
  auto a = orch::LeaderElector::Start(
      fake, Options("a"), [&] { ++started_a; }, [&] { ++stopped_a; });
  auto b = orch::LeaderElector::Start(
      fake, Options("b"), [&] { ++started_b; }, [&] { ++stopped_b; });
  REQUIRE(Eventually([&] { return a->IsLeader() || b->IsLeader(); }));
  // Several renewal periods: never two leaders, never a change of leader.
  for (int i = 0; i < 30; ++i) {
    CHECK(a->IsLeader() != b->IsLeader());
    std::this_thread::sleep_for(100ms);
  }
  auto& leader = a->IsLeader() ? a : b;
  auto& other = a->IsLeader() ? b : a;
  const std::string other_name = a->IsLeader() ? "b" : "a";
  json lease = Lease(fake);
  CHECK(lease["spec"]["holderIdentity"] == (a->IsLeader() ? "a" : "b"));
  CHECK(lease["spec"]["leaseDurationSeconds"] == 3);
  CHECK(lease["spec"]["renewTime"].get<std::string>().size() == 27);  // MicroTime
  int64_t transitions = lease["spec"].value("leaseTransitions", int64_t{0});

  leader->Stop();
  CHECK_FALSE(leader->IsLeader());
  REQUIRE(Eventually([&] { return other->IsLeader(); }));
  lease = Lease(fake);
  CHECK(lease["spec"]["holderIdentity"] == other_name);
  CHECK(lease["spec"]["leaseTransitions"].get<int64_t>() == transitions + 1);
  other->Stop();
  CHECK(started_a + started_b == 2);
  CHECK(stopped_a == started_a);
  CHECK(stopped_b == started_b);
  CHECK(Lease(fake)["spec"]["holderIdentity"] == "");
}

TEST_CASE("A lease its holder stopped renewing is taken over once it expires") {
  orch::testing::FakeApiClient fake;
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", "orch-controllers"}, {"namespace", "kube-system"}}},
                {"spec",
                 {{"holderIdentity", "ghost"},
                  {"leaseDurationSeconds", 1},
                  {"renewTime", "2020-01-01T00:00:00.000000Z"}}}};
  REQUIRE(fake.Create(orch::resources::kLeases, "kube-system", lease).ok());
  std::atomic<bool> started{false};
  auto elector = orch::LeaderElector::Start(
      fake, Options("c"), [&] { started = true; }, nullptr);
  REQUIRE(Eventually([&] { return elector->IsLeader(); }));
  CHECK(started);
  CHECK(Lease(fake)["spec"]["holderIdentity"] == "c");
  elector->Stop();
}
