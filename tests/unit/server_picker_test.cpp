// Tests of the agent load balancer's server choice (src/agent/server_picker.cpp): failover order,
// stickiness, learning from Endpoints, the stored list and join URLs.
#include "server_picker.h"

#include <catch2/catch.hpp>

namespace orch::agent {
namespace {

using json = nlohmann::json;
using List = std::vector<std::string>;

TEST_CASE("the join server alone is current and the last resort") {
  ServerPicker p("10.0.0.1:6443");
  CHECK(p.current() == "10.0.0.1:6443");
  CHECK(p.DialOrder() == List{"10.0.0.1:6443"});
  // Failing with nobody to take over keeps it current: the connections may still work.
  CHECK_FALSE(p.ReportFailed("10.0.0.1:6443"));
  CHECK(p.current() == "10.0.0.1:6443");
  CHECK(p.DialOrder() == List{"10.0.0.1:6443"});
}

TEST_CASE("learned servers come first, the join server is kept at the end") {
  ServerPicker p("10.0.0.1:6443");
  CHECK(p.SetServers({"10.0.0.2:6443", "10.0.0.3:6443", "10.0.0.2:6443", ""}));
  CHECK(p.servers() == List{"10.0.0.2:6443", "10.0.0.3:6443", "10.0.0.1:6443"});
  // The current server (the join server) stays while it is listed and healthy.
  CHECK(p.current() == "10.0.0.1:6443");
  CHECK(p.DialOrder() == List{"10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443"});
  // The same list again is no change; an empty list says nothing and changes nothing.
  CHECK_FALSE(p.SetServers({"10.0.0.2:6443", "10.0.0.3:6443"}));
  CHECK_FALSE(p.SetServers({}));
  CHECK(p.servers().size() == 3);
  // A join server that the cluster lists is not repeated.
  CHECK(p.SetServers({"10.0.0.1:6443", "10.0.0.2:6443"}));
  CHECK(p.servers() == List{"10.0.0.1:6443", "10.0.0.2:6443"});
}

TEST_CASE("a failed current server hands over to the next healthy one, which stays current") {
  ServerPicker p("a:1");
  p.SetServers({"a:1", "b:1", "c:1"});
  REQUIRE(p.current() == "a:1");
  CHECK(p.ReportFailed("a:1"));
  CHECK(p.current() == "b:1");
  CHECK_FALSE(p.healthy("a:1"));
  // Healthy ones first from the current on, the failed one last (it may be back).
  CHECK(p.DialOrder() == List{"b:1", "c:1", "a:1"});
  // A failure of a server that is not current moves nothing.
  CHECK_FALSE(p.ReportFailed("c:1"));
  CHECK(p.current() == "b:1");
  CHECK(p.DialOrder() == List{"b:1", "c:1", "a:1"});
  // The first server recovers: it is used again only when b fails (no flapping back).
  p.ReportHealthy("a:1");
  CHECK(p.current() == "b:1");
  CHECK(p.DialOrder() == List{"b:1", "a:1", "c:1"});
  CHECK(p.ReportFailed("b:1"));
  CHECK(p.current() == "a:1");
}

TEST_CASE("when every server failed the current one stays and all are still tried") {
  ServerPicker p("a:1");
  p.SetServers({"a:1", "b:1"});
  CHECK(p.ReportFailed("a:1"));
  CHECK(p.current() == "b:1");
  CHECK_FALSE(p.ReportFailed("b:1"));
  CHECK(p.current() == "b:1");
  CHECK(p.DialOrder() == List{"b:1", "a:1"});
  // A connection that got through makes its server healthy and, the current one being down,
  // current.
  p.ReportConnected("a:1");
  CHECK(p.current() == "a:1");
  CHECK(p.healthy("a:1"));
  CHECK(p.DialOrder() == List{"a:1", "b:1"});
  // A connection to another server while the current one is healthy does not move it.
  p.ReportHealthy("b:1");
  p.ReportConnected("b:1");
  CHECK(p.current() == "a:1");
}

TEST_CASE("a current server that leaves the list is replaced by a listed healthy one") {
  ServerPicker p("a:1");
  p.SetServers({"b:1", "c:1"});
  CHECK(p.ReportFailed("a:1"));
  REQUIRE(p.current() == "b:1");
  p.ReportFailed("c:1");
  CHECK(p.SetServers({"c:1", "d:1"}));
  CHECK(p.current() == "d:1");  // c is listed but unhealthy
  CHECK(p.servers() == List{"c:1", "d:1", "a:1"});
  CHECK_FALSE(p.healthy("c:1"));  // health survives the new list
  CHECK_FALSE(p.healthy("a:1"));
}

TEST_CASE("servers of the kubernetes Endpoints") {
  json ep = json::parse(R"({
    "subsets": [
      {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
       "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
      {"addresses": [{"ip": "fd00::3"}], "ports": [{"port": 7443}]},
      {"addresses": [{"ip": "10.0.0.4"}],
       "ports": [{"name": "metrics", "port": 9000}, {"name": "https", "port": 6444}]},
      {"addresses": [{"ip": "10.0.0.5"}],
       "ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]},
      {"notReadyAddresses": [{"ip": "10.0.0.6"}], "ports": [{"port": 6443}]}
    ]})");
  CHECK(ServersOfEndpoints(ep) ==
        List{"10.0.0.1:6443", "10.0.0.2:6443", "[fd00::3]:7443", "10.0.0.4:6444"});
  CHECK(ServersOfEndpoints(json::object()).empty());
  CHECK(ServersOfEndpoints(json::parse(R"({"subsets": null})")).empty());
}

TEST_CASE("the stored list and join URLs") {
  List servers{"10.0.0.1:6443", "[fd00::1]:6443"};
  CHECK(ParseServerList(FormatServerList(servers)) == servers);
  CHECK(ParseServerList("not json").empty());
  CHECK(ParseServerList(R"({"servers": [1, "", "x:1"]})") == List{"x:1"});
  CHECK(*ServerOfUrl("https://10.0.0.1:6443") == "10.0.0.1:6443");
  CHECK(*ServerOfUrl("https://[fd00::1]:6443/") == "[fd00::1]:6443");
  CHECK(*ServerOfUrl("https://server.example:7443") == "server.example:7443");
  CHECK_FALSE(ServerOfUrl("http://10.0.0.1:6443").ok());
}

}  // namespace
}  // namespace orch::agent
