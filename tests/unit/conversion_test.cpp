// Version conversions of built-in kinds (src/apiserver/conversion.h): autoscaling/v1 <-> v2
// HorizontalPodAutoscalers and events.k8s.io/v1 <-> core/v1 Events, with lossless round trips.
#include "conversion.h"

#include <catch2/catch.hpp>

using orch::api::ConverterFor;
using orch::api::json;

TEST_CASE("Only served versions that are not stored have converters") {
  CHECK(ConverterFor("autoscaling", "v2", "HorizontalPodAutoscaler") == nullptr);
  CHECK(ConverterFor("", "v1", "Event") == nullptr);
  CHECK(ConverterFor("apps", "v1", "Deployment") == nullptr);
  REQUIRE(ConverterFor("autoscaling", "v1", "HorizontalPodAutoscaler") != nullptr);
  CHECK(std::string(ConverterFor("events.k8s.io", "v1", "Event")->StoreGroup()) == "core");
}

TEST_CASE("An autoscaling/v1 CPU target is a v2 Resource metric") {
  const auto* hpa = ConverterFor("autoscaling", "v1", "HorizontalPodAutoscaler");
  json v1 = {{"apiVersion", "autoscaling/v1"},
             {"kind", "HorizontalPodAutoscaler"},
             {"metadata", {{"name", "web"}}},
             {"spec",
              {{"scaleTargetRef", {{"kind", "Deployment"}, {"name", "web"}}},
               {"maxReplicas", 3},
               {"targetCPUUtilizationPercentage", 50}}},
             {"status", {{"currentReplicas", 2}, {"currentCPUUtilizationPercentage", 40}}}};
  json v2 = hpa->ToStorage(v1);
  CHECK(v2["apiVersion"] == "autoscaling/v2");
  CHECK_FALSE(v2["spec"].contains("targetCPUUtilizationPercentage"));
  CHECK(v2["spec"]["metrics"] ==
        json::parse(R"([{"type":"Resource","resource":{"name":"cpu","target":
                      {"type":"Utilization","averageUtilization":50}}}])"));
  CHECK(v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 40);
  CHECK_FALSE(v2["metadata"].contains("annotations"));
  CHECK(hpa->FromStorage(v2) == v1);
}

TEST_CASE("v2 fields without a v1 place survive a v1 round trip in annotations") {
  const auto* hpa = ConverterFor("autoscaling", "v1", "HorizontalPodAutoscaler");
  json v2 = json::parse(R"({
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "annotations": {"team": "a"}},
    "spec": {"maxReplicas": 4,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 60}}},
                         {"type": "Pods", "pods": {"metric": {"name": "qps"},
                            "target": {"type": "AverageValue", "averageValue": "10"}}}],
             "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}},
    "status": {"desiredReplicas": 2,
               "conditions": [{"type": "AbleToScale", "status": "True"}]}})");
  json v1 = hpa->FromStorage(v2);
  CHECK(v1["spec"]["targetCPUUtilizationPercentage"] == 60);
  CHECK_FALSE(v1["spec"].contains("metrics"));
  CHECK_FALSE(v1["spec"].contains("behavior"));
  CHECK_FALSE(v1["status"].contains("conditions"));
  const json& annotations = v1["metadata"]["annotations"];
  CHECK(annotations["team"] == "a");
  CHECK(annotations.contains("autoscaling.alpha.kubernetes.io/metrics"));
  CHECK(annotations.contains("autoscaling.alpha.kubernetes.io/behavior"));
  CHECK(annotations.contains("autoscaling.alpha.kubernetes.io/conditions"));
  CHECK(hpa->ToStorage(v1) == v2);
}

TEST_CASE("events.k8s.io/v1 Events are core/v1 Events with other field names") {
  const auto* events = ConverterFor("events.k8s.io", "v1", "Event");
  json served = json::parse(R"({
    "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
    "eventTime": "2024-05-01T10:00:00.000000Z", "reportingController": "ctl",
    "reportingInstance": "ctl-1", "action": "Act", "reason": "Did", "type": "Normal",
    "note": "done", "regarding": {"kind": "Pod", "name": "web"},
    "deprecatedCount": 2, "deprecatedSource": {"component": "ctl"}})");
  json stored = events->ToStorage(served);
  CHECK(stored["apiVersion"] == "v1");
  CHECK(stored["message"] == "done");
  CHECK(stored["involvedObject"]["name"] == "web");
  CHECK(stored["reportingComponent"] == "ctl");
  CHECK(stored["reportingInstance"] == "ctl-1");
  CHECK(stored["count"] == 2);
  CHECK(stored["source"]["component"] == "ctl");
  CHECK_FALSE(stored.contains("note"));
  CHECK(events->FromStorage(stored) == served);
}
