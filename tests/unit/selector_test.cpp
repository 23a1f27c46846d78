// Field selectors: parsing, unescaping, each kind's field labels, matching and every error,
// compared with the strings the API server produces for the same input.
#include "selector.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>

using orch::api::FieldSelector;
using orch::api::json;

namespace {

FieldSelector ParseFields(const std::string& text, const std::string& group,
                          const std::string& resource) {
  orch::Result<FieldSelector> s =
      FieldSelector::Parse(text, orch::api::BuiltinFieldRules(group, resource));
  INFO(text << ": " << s.status().ToString());
  REQUIRE(s.ok());
  return *s;
}

std::string FieldError(const std::string& text, const std::string& group = "",
                       const std::string& resource = "pods") {
  orch::Result<FieldSelector> s =
      FieldSelector::Parse(text, orch::api::BuiltinFieldRules(group, resource));
  INFO(text);
  REQUIRE_FALSE(s.ok());
  REQUIRE(s.status().code() == orch::StatusCode::kInvalidArgument);
  return s.status().message();
}

}  // namespace

TEST_CASE("Field selectors parse, unescape and match pods") {
  json pod = {{"metadata", {{"name", "web-1"}, {"namespace", "default"}}},
              {"spec", {{"nodeName", "node-a"}, {"restartPolicy", "Always"}}},
              {"status", {{"phase", "Running"}, {"podIPs", {{{"ip", "10.42.0.5"}}}}}}};
  auto matches = [&](const std::string& sel) { return ParseFields(sel, "", "pods").Matches(pod); };
  CHECK(matches(""));
  CHECK(matches("metadata.name=web-1"));
  CHECK(matches("metadata.name==web-1,metadata.namespace!=kube-system"));
  CHECK_FALSE(matches("metadata.namespace=kube-system"));
  CHECK(matches("spec.nodeName=node-a,status.phase!=Succeeded,status.phase!=Failed"));
  CHECK(matches("spec.host=node-a"));  // legacy alias of spec.nodeName
  CHECK(matches("spec.hostNetwork=false"));
  CHECK(matches("spec.restartPolicy=Always"));
  CHECK(matches("spec.schedulerName="));
  CHECK(matches("status.podIP=10.42.0.5"));
  CHECK_FALSE(matches("status.podIPs=10.42.0.5"));  // accepted, never set upstream
  CHECK(matches("status.nominatedNodeName="));

  FieldSelector s = ParseFields("metadata.name=a\\,b\\=c\\\\d", "", "pods");
  CHECK(s.requirements()[0].value == "a,b=c\\d");
  CHECK(s.RequiresExactMatch("metadata.name") == std::optional<std::string>("a,b=c\\d"));
  CHECK(orch::api::EscapeFieldValue("a,b=c\\d") == "a\\,b\\=c\\\\d");
}

TEST_CASE("Field selector errors use upstream's words") {
  CHECK(FieldError("foo=bar") == "field label not supported: foo");
  CHECK(FieldError("metadata.name") ==
        "invalid selector: 'metadata.name'; can't understand 'metadata.name'");
  CHECK(FieldError("metadata.name=a\\b") == "invalid field selector: invalid escape sequence: \\b");
  CHECK(FieldError("metadata.name=a\\") == "invalid field selector: invalid escape sequence: \\");
  CHECK(FieldError("metadata.name=a=b") ==
        "invalid field selector: unescaped character in value: 61");
  // Terms are checked in sorted order.
  CHECK(FieldError("zzz=1,aaa=2") == "field label not supported: aaa");
  CHECK(FieldError("status.replicas=1", "apps", "deployments") ==
        "\"status.replicas\" is not a known field selector: only \"metadata.name\", "
        "\"metadata.namespace\"");
  CHECK(FieldError("status.phase=x", "batch", "jobs") ==
        "field label \"status.phase\" not supported for batchv1.Job");
  CHECK(FieldError("metadata.namespace=x", "", "nodes") ==
        "field label not supported: metadata.namespace");
}

TEST_CASE("Field selectors know every built-in kind's fields") {
  json node = {{"metadata", {{"name", "n1"}}}, {"spec", {{"unschedulable", true}}}};
  CHECK(ParseFields("spec.unschedulable=true", "", "nodes").Matches(node));
  CHECK(ParseFields("spec.unschedulable=false", "", "nodes")
            .Matches({{"metadata", {{"name", "x"}}}}));

  json event = {{"metadata", {{"name", "e"}, {"namespace", "default"}}},
                {"involvedObject",
                 {{"kind", "Pod"}, {"name", "web"}, {"namespace", "default"}, {"uid", "u1"}}},
                {"reason", "Pulled"},
                {"type", "Normal"},
                {"reportingComponent", "kubelet"}};
  CHECK(ParseFields("involvedObject.kind=Pod,involvedObject.name=web,involvedObject.namespace="
                    "default,involvedObject.uid=u1",
                    "", "events")
            .Matches(event));
  CHECK(ParseFields("reason=Pulled,type=Normal,source=kubelet,reportingComponent=kubelet", "",
                    "events")
            .Matches(event));

  // events.k8s.io/v1 names the fields of the stored core/v1 Event its own way.
  json stored_event = {{"metadata", {{"name", "e"}}},
                       {"involvedObject", {{"kind", "Pod"}, {"name", "web"}}},
                       {"reportingComponent", "kubelet"}};
  CHECK(ParseFields("regarding.kind=Pod,reportingController=kubelet", "events.k8s.io", "events")
            .Matches(stored_event));
  CHECK_FALSE(ParseFields("regarding.name=db", "events.k8s.io", "events").Matches(stored_event));

  CHECK(ParseFields("type=kubernetes.io/tls", "", "secrets")
            .Matches({{"type", "kubernetes.io/tls"}}));
  CHECK(ParseFields("status.phase=Active", "", "namespaces")
            .Matches({{"status", {{"phase", "Active"}}}}));
  CHECK(ParseFields("status.replicas=0", "", "replicationcontrollers").Matches(json::object()));
  CHECK(ParseFields("status.successful=1", "batch", "jobs")
            .Matches({{"status", {{"succeeded", 1}}}}));
  CHECK(ParseFields("spec.type=NodePort,spec.clusterIP=10.43.0.9", "", "services")
            .Matches({{"spec", {{"type", "NodePort"}, {"clusterIP", "10.43.0.9"}}}}));
  CHECK(ParseFields("metadata.namespace=a", "apps", "deployments")
            .Matches({{"metadata", {{"namespace", "a"}}}}));

  auto crd = orch::api::CustomResourceFieldRules(false, {".spec.color", ".spec.size"});
  orch::Result<FieldSelector> c = FieldSelector::Parse("spec.color=red,spec.size=3", crd);
  REQUIRE(c.ok());
  CHECK(c->Matches({{"spec", {{"color", "red"}, {"size", 3}}}}));
  orch::Result<FieldSelector> bad = FieldSelector::Parse("metadata.namespace=x", crd);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "field label not supported: metadata.namespace");
}
