// DNS names, label keys/values, and the --node-label / --node-taint syntax.
#include "orch/names.h"

#include <catch2/catch.hpp>
#include <string>

TEST_CASE("DNS-1123 subdomains") {
  for (const char* good : {"node1", "a", "node-1.example.com", "10-0-0-1", "x.y.z"}) {
    INFO(good);
    CHECK(orch::ValidateDnsSubdomain(good).ok());
  }
  for (const char* bad : {"", "Node1", "-a", "a-", "a..b", ".a", "a.", "a_b", "a b"}) {
    INFO(bad);
    CHECK_FALSE(orch::ValidateDnsSubdomain(bad).ok());
  }
  CHECK(orch::ValidateDnsSubdomain(std::string(63, 'a')).ok());
  CHECK_FALSE(orch::ValidateDnsSubdomain(std::string(64, 'a')).ok());
  std::string long_name = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                          std::string(63, 'c') + "." + std::string(62, 'd');  // 254
  CHECK_FALSE(orch::ValidateDnsSubdomain(long_name).ok());
  CHECK(orch::ValidateDnsHostName("*.example.com").ok());
  CHECK_FALSE(orch::ValidateDnsHostName("a.*.com").ok());
}

TEST_CASE("Labels") {
  auto label = orch::ParseLabel("node-role.kubernetes.io/worker=true");
  REQUIRE(label.ok());
  CHECK(label->key == "node-role.kubernetes.io/worker");
  CHECK(label->value == "true");

  auto empty_value = orch::ParseLabel("disk=");
  REQUIRE(empty_value.ok());
  CHECK(empty_value->value.empty());

  for (const char* bad :
       {"novalue", "=v", "a b=c", "k=v v", "-k=v", "k=-v", "Bad_Prefix/k=v", "a/b/c=d", "/k=v"}) {
    INFO(bad);
    CHECK_FALSE(orch::ParseLabel(bad).ok());
  }
  CHECK_FALSE(orch::ParseLabel("k=" + std::string(64, 'v')).ok());
  CHECK(orch::ValidateLabelKey("Under_Score.ok").ok());
  // The reasons are the API server's (orch/labels.h), so the CLI says what kubectl would.
  CHECK(orch::ValidateLabelKey("a b").message().starts_with(
      "label key 'a b' is invalid: name part must consist of alphanumeric characters"));
  CHECK(orch::ValidateLabelValue(std::string(64, 'v')).message() ==
        "label value '" + std::string(64, 'v') +
            "' is invalid: must be no more than 63 characters");
  CHECK(orch::ValidateDnsSubdomain("Node1").message().starts_with(
      "'Node1' is not a valid DNS-1123 name: a lowercase RFC 1123 subdomain"));
}

TEST_CASE("Taints") {
  auto t = orch::ParseTaint("dedicated=gpu:NoSchedule");
  REQUIRE(t.ok());
  CHECK(t->key == "dedicated");
  CHECK(t->value == "gpu");
  CHECK(t->effect == "NoSchedule");

  auto no_value = orch::ParseTaint("node-role.kubernetes.io/master:NoExecute");
  REQUIRE(no_value.ok());
  CHECK(no_value->key == "node-role.kubernetes.io/master");
  CHECK(no_value->value.empty());
  CHECK(no_value->effect == "NoExecute");

  for (const char* bad : {"dedicated=gpu", "dedicated=gpu:Sometimes", ":NoSchedule",
                          "bad key=v:NoSchedule", "k=bad value:NoSchedule", "k=v:noschedule"}) {
    INFO(bad);
    CHECK_FALSE(orch::ParseTaint(bad).ok());
  }
}
