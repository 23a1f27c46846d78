// The converters of conversion.h: HorizontalPodAutoscaler autoscaling/v1 <-> v2 and
// events.k8s.io/v1 Event <-> core/v1 Event, field by field as upstream's conversions map them.
#include "conversion.h"

#include <utility>

namespace orch::api {
namespace {

// v2 fields autoscaling/v1 has no place for ride in these annotations (upstream's names; the
// values here are the v2 forms as JSON).
constexpr char kMetricsAnnotation[] = "autoscaling.alpha.kubernetes.io/metrics";
constexpr char kCurrentMetricsAnnotation[] = "autoscaling.alpha.kubernetes.io/current-metrics";
constexpr char kConditionsAnnotation[] = "autoscaling.alpha.kubernetes.io/conditions";
constexpr char kBehaviorAnnotation[] = "autoscaling.alpha.kubernetes.io/behavior";

// Moves obj[from] to obj[to] when present.
void Rename(json& obj, const char* from, const char* to) {
  auto it = obj.find(from);
  if (it == obj.end()) return;
  json value = std::move(*it);
  obj.erase(from);
  obj[to] = std::move(value);
}

void Annotate(json& obj, const char* key, const json& value) {
  obj["metadata"]["annotations"][key] = value.dump();
}

// Removes annotation `key` and answers its JSON value (null when absent or not JSON).
json TakeAnnotation(json& obj, const char* key) {
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return nullptr;
  auto annotations = meta->find("annotations");
  if (annotations == meta->end() || !annotations->is_object()) return nullptr;
  auto it = annotations->find(key);
  if (it == annotations->end()) return nullptr;
  json value = it->is_string() ? json::parse(it->get<std::string>(), nullptr, false) : json();
  annotations->erase(key);
  if (annotations->empty()) meta->erase("annotations");
  return value.is_discarded() ? json() : value;
}

bool IsCpuUtilization(const json& metric, const char* target_field) {
  if (metric.value("type", "") != "Resource") return false;
  const json& resource = metric.value("resource", json::object());
  if (!resource.is_object() || resource.value("name", "") != "cpu") return false;
  const json& target = resource.value(target_field, json::object());
  return target.is_object() && target.contains("averageUtilization") &&
         (std::string(target_field) == "current" || target.value("type", "") == "Utilization");
}

class HpaV1Converter : public VersionConverter {
 public:
  const char* StoreGroup() const override { return "autoscaling"; }

  json FromStorage(json hpa) const override {
    hpa["apiVersion"] = "autoscaling/v1";
    if (auto spec = hpa.find("spec"); spec != hpa.end() && spec->is_object()) {
      json others = json::array();
      for (const json& metric : spec->value("metrics", json::array())) {
        if (!spec->contains("targetCPUUtilizationPercentage") &&
            IsCpuUtilization(metric, "target")) {
          (*spec)["targetCPUUtilizationPercentage"] =
              metric["resource"]["target"]["averageUtilization"];
        } else {
          others.push_back(metric);
        }
      }
      if (!others.empty()) Annotate(hpa, kMetricsAnnotation, others);
      if (spec->contains("behavior")) Annotate(hpa, kBehaviorAnnotation, (*spec)["behavior"]);
      spec->erase("metrics");
      spec->erase("behavior");
    }
    if (auto status = hpa.find("status"); status != hpa.end() && status->is_object()) {
      json others = json::array();
      for (const json& metric : status->value("currentMetrics", json::array())) {
        if (!status->contains("currentCPUUtilizationPercentage") &&
            IsCpuUtilization(metric, "current")) {
          (*status)["currentCPUUtilizationPercentage"] =
              metric["resource"]["current"]["averageUtilization"];
        } else {
          others.push_back(metric);
        }
      }
      json conditions = status->value("conditions", json());
      status->erase("currentMetrics");
      status->erase("conditions");
      if (!others.empty()) Annotate(hpa, kCurrentMetricsAnnotation, others);
      if (conditions.is_array() && !conditions.empty()) {
        Annotate(hpa, kConditionsAnnotation, conditions);
      }
    }
    return hpa;
  }

  json ToStorage(json hpa) const override {
    hpa["apiVersion"] = "autoscaling/v2";
    json metrics = json::array();
    json spec = hpa.value("spec", json::object());
    if (spec.is_object() && spec.contains("targetCPUUtilizationPercentage")) {
      metrics.push_back({{"type", "Resource"},
                         {"resource",
                          {{"name", "cpu"},
                           {"target",
                            {{"type", "Utilization"},
                             {"averageUtilization", spec["targetCPUUtilizationPercentage"]}}}}}});
    }
    json others = TakeAnnotation(hpa, kMetricsAnnotation);
    json behavior = TakeAnnotation(hpa, kBehaviorAnnotation);
    json current_others = TakeAnnotation(hpa, kCurrentMetricsAnnotation);
    json conditions = TakeAnnotation(hpa, kConditionsAnnotation);
    if (auto s = hpa.find("spec"); s != hpa.end() && s->is_object()) {
      s->erase("targetCPUUtilizationPercentage");
      if (others.is_array()) {
        for (json& metric : others) metrics.push_back(std::move(metric));
      }
      if (!metrics.empty()) (*s)["metrics"] = std::move(metrics);
      if (behavior.is_object()) (*s)["behavior"] = std::move(behavior);
    }
    if (auto status = hpa.find("status"); status != hpa.end() && status->is_object()) {
      json current = json::array();
      if (status->contains("currentCPUUtilizationPercentage")) {
        current.push_back(
            {{"type", "Resource"},
             {"resource",
              {{"name", "cpu"},
               {"current",
                {{"averageUtilization", (*status)["currentCPUUtilizationPercentage"]}}}}}});
        status->erase("currentCPUUtilizationPercentage");
      }
      if (current_others.is_array()) {
        for (json& metric : current_others) current.push_back(std::move(metric));
      }
      if (!current.empty()) (*status)["currentMetrics"] = std::move(current);
      if (conditions.is_array()) (*status)["conditions"] = std::move(conditions);
    }
    return hpa;
  }
};

// events.k8s.io/v1 field -> core/v1 field; the others (metadata, eventTime, series,
// reportingInstance, action, reason, related, type) have one name in both.
constexpr std::pair<const char*, const char*> kEventFields[] = {
    {"regarding", "involvedObject"},
    {"note", "message"},
    {"reportingController", "reportingComponent"},
    {"deprecatedSource", "source"},
    {"deprecatedFirstTimestamp", "firstTimestamp"},
    {"deprecatedLastTimestamp", "lastTimestamp"},
    {"deprecatedCount", "count"},
};

class EventsV1Converter : public VersionConverter {
 public:
  const char* StoreGroup() const override { return "core"; }

  json FromStorage(json event) const override {
    event["apiVersion"] = "events.k8s.io/v1";
    for (const auto& [served, stored] : kEventFields) Rename(event, stored, served);
    return event;
  }

  json ToStorage(json event) const override {
    event["apiVersion"] = "v1";
    for (const auto& [served, stored] : kEventFields) Rename(event, served, stored);
    return event;
  }
};

}  // namespace

const VersionConverter* ConverterFor(const std::string& group, const std::string& version,
                                     const std::string& kind) {
  static const HpaV1Converter kHpaV1;
  static const EventsV1Converter kEventsV1;
  if (group == "autoscaling" && version == "v1" && kind == "HorizontalPodAutoscaler") {
    return &kHpaV1;
  }
  if (group == "events.k8s.io" && version == "v1" && kind == "Event") return &kEventsV1;
  return nullptr;
}

}  // namespace orch::api
