// Kubernetes Events from orch's components ("Scheduled", "FailedScheduling", "SuccessfulCreate",
// "Pulled", ...), the way `kubectl describe` and `kubectl get events` show them.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "orch/api_client.h"

namespace orch {

// Thread-safe and never blocks the caller: events are written by a background thread, repeats of
// the same (object, type, reason, message) within 10 minutes bump `count` and `lastTimestamp` of
// one Event instead of creating new ones, and a bounded queue drops the excess when the API is
// slow or down (events are best-effort, as upstream).
class EventRecorder {
 public:
  virtual ~EventRecorder() = default;

  // `type` is "Normal" or "Warning"; `involved` is the object the event is about (its kind,
  // apiVersion, namespace, name, uid and resourceVersion are referenced).
  virtual void Record(const nlohmann::json& involved, const std::string& type,
                      const std::string& reason, const std::string& message) = 0;
  // Writes what is queued (best effort, bounded wait) and stops the thread.
  virtual void Stop() = 0;

  // `component` becomes source.component / reportingComponent ("default-scheduler", "orch-agent");
  // `host` source.host (the node name for agents, "" otherwise).
  static std::unique_ptr<EventRecorder> Create(ApiClient& client, std::string component,
                                               std::string host = "");
};

}  // namespace orch
