// The scheduler's picture of the cluster: nodes with the pods bound or assumed on them, pods
// nominated by preemption, namespace labels. Fed by informers, and by the scheduler itself, which
// assumes a pod on its node the moment it decides so the next decision already counts it.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cluster_view.h"
#include "node_info.h"

namespace orch::sched {

// Thread-safe: every public method takes the cache's mutex except the *Locked ones, which the
// caller runs while holding the lock returned by Lock() (one decision sees one consistent state).
class SchedulerCache {
 public:
  using Clock = std::chrono::steady_clock;

  // Assumed pods whose binding succeeded but which the informer never reported on their node are
  // dropped this long after the binding (the pod was deleted meanwhile, or its update was lost).
  explicit SchedulerCache(std::chrono::milliseconds assumed_ttl = std::chrono::seconds(30));
  SchedulerCache(const SchedulerCache&) = delete;
  SchedulerCache& operator=(const SchedulerCache&) = delete;

  // A node was added or updated; true when it is new or differs in what scheduling reads.
  bool UpsertNode(NodePtr node);
  void RemoveNode(const std::string& name);

  // A pod the informer reports bound to a node (spec.nodeName set). Replaces an assumed copy;
  // terminal pods (Succeeded, Failed) are removed, since they hold nothing on the node.
  void UpsertBoundPod(PodPtr pod);
  // A pending pod as the informer reports it: keeps its status.nominatedNodeName in the picture.
  void UpsertPendingPod(const PodPtr& pod);
  // The pod is gone (or left our hands); removes whatever the cache holds about it.
  void RemovePod(const std::string& cache_key);

  void SetNamespaceLabels(const std::string& ns, Labels labels);
  void RemoveNamespace(const std::string& ns);

  // The lock for the *Locked calls.
  std::unique_lock<std::mutex> Lock() { return std::unique_lock(mu_); }
  // The state one decision reads; valid while the lock is held.
  ClusterState StateLocked();
  // Places `pod` on `node` before the API knows it.
  void AssumeLocked(const PodPtr& pod, const std::string& node);
  // Records a preemptor's nomination at once (the status write follows).
  void NominateLocked(const PodPtr& pod, const std::string& node);
  bool IsAssumedLocked(const std::string& cache_key) const;

  // The binding of an assumed pod was written; starts its expiry clock.
  void FinishBinding(const std::string& cache_key, Clock::time_point now);
  // The binding failed: the pod leaves its node.
  void Forget(const std::string& cache_key);
  bool IsAssumed(const std::string& cache_key);
  // Drops assumed pods whose expiry passed; returns how many.
  size_t CleanupExpired(Clock::time_point now);

 private:
  struct PodState {
    PodPtr pod;  // as placed: node_name is the node it counts on
    bool assumed = false;
    bool binding_finished = false;
    Clock::time_point deadline{};
  };
  struct Nomination {
    std::string node;
    PodPtr pod;
    bool confirmed = false;  // the API shows it (else only this scheduler knows yet)
  };

  void RemovePodLocked(const std::string& cache_key);
  void AddToNode(const PodPtr& pod);
  void RemoveFromNode(const std::string& node, const std::string& cache_key);
  void SetNominationLocked(const std::string& cache_key, Nomination nomination);
  void ClearNominationLocked(const std::string& cache_key);

  const std::chrono::milliseconds assumed_ttl_;
  std::mutex mu_;
  std::map<std::string, NodeInfo> nodes_;                    // guarded by mu_; by node name
  std::vector<const NodeInfo*> node_list_;                   // guarded by mu_; nodes with a Node
  bool node_list_dirty_ = true;                              // guarded by mu_
  std::unordered_map<std::string, PodState> pods_;           // guarded by mu_; by cache key
  std::unordered_set<std::string> assumed_;                  // guarded by mu_
  std::unordered_map<std::string, Nomination> nominations_;  // guarded by mu_; by cache key
  NominatedPods nominated_;                                  // guarded by mu_; by node
  NamespaceLabels namespaces_;                               // guarded by mu_
};

}  // namespace orch::sched
