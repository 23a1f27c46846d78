// The scheduler component of `orch server`: binds every pending pod that names it
// (spec.schedulerName) to a node through pods/binding, the way kube-scheduler's default profile
// does.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "orch/api_client.h"
#include "orch/component.h"
#include "orch/events.h"
#include "orch/informer.h"

namespace orch {

struct SchedulerOptions {
  // Pods whose spec.schedulerName is this (or empty) are ours; others are left alone.
  std::string scheduler_name = "default-scheduler";
  // Threads that write bindings, pod status, preemption deletes to the API. Decisions are made on
  // one scheduling thread; only the writes run in parallel, and the datastore's group commit
  // turns concurrent writes into throughput, so there are more of them than cores.
  int api_workers = 16;
  // Back-off of a pod that failed to schedule: initial doubling up to max (upstream 1 s and 10 s).
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{10000};
  // A pod no cluster event made schedulable is retried after this long anyway (upstream 5 min).
  std::chrono::milliseconds max_unschedulable{std::chrono::minutes(5)};
  // Evict lower-priority pods to make room for a higher-priority one.
  bool enable_preemption = true;
  // Seed of the tie-break between equally scored nodes; 0 = random.
  uint64_t seed = 0;
};

// The scheduler. `client`, `informers` and `events` must outlive it. Start registers handlers on
// the pods, nodes and namespaces informers of `informers` (all namespaces, no selectors, so they
// are shared with other components) and starts its threads; it does not wait for the informers to
// sync (the scheduling thread does, before its first decision). Stop ends the threads, drops queued
// API writes and returns; handlers left registered on the informers do nothing after Stop.
std::unique_ptr<Component> NewScheduler(ApiClient& client, InformerFactory& informers,
                                        EventRecorder& events, SchedulerOptions options = {});

}  // namespace orch
