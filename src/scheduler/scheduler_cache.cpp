// The scheduler cache: node totals updated incrementally on every pod change, assumed pods
// reconciled with what the informer later reports, nominations kept per node.
#include "scheduler_cache.h"

#include <algorithm>

namespace orch::sched {

SchedulerCache::SchedulerCache(std::chrono::milliseconds assumed_ttl) : assumed_ttl_(assumed_ttl) {}

bool SchedulerCache::UpsertNode(NodePtr node) {
  std::lock_guard lock(mu_);
  NodeInfo& info = nodes_[node->name];
  bool changed = !info.node() || !info.node()->SameForScheduling(*node);
  if (!info.node()) node_list_dirty_ = true;
  info.SetNode(std::move(node));
  return changed;
}

void SchedulerCache::RemoveNode(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return;
  // Pods may still name the node until they are deleted: keep them counted, without the node.
  it->second.SetNode(nullptr);
  if (it->second.pods().empty()) nodes_.erase(it);
  node_list_dirty_ = true;
}

void SchedulerCache::AddToNode(const PodPtr& pod) {
  nodes_[pod->node_name].AddPod(pod);
}

void SchedulerCache::RemoveFromNode(const std::string& node, const std::string& cache_key) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  it->second.RemovePod(cache_key);
  if (!it->second.node() && it->second.pods().empty()) nodes_.erase(it);
}

void SchedulerCache::RemovePodLocked(const std::string& cache_key) {
  auto it = pods_.find(cache_key);
  if (it != pods_.end()) {
    RemoveFromNode(it->second.pod->node_name, cache_key);
    pods_.erase(it);
  }
  assumed_.erase(cache_key);
  ClearNominationLocked(cache_key);
}

void SchedulerCache::UpsertBoundPod(PodPtr pod) {
  std::lock_guard lock(mu_);
  const std::string key = pod->CacheKey();
  if (pod->IsTerminal()) {
    RemovePodLocked(key);
    return;
  }
  auto it = pods_.find(key);
  if (it != pods_.end()) RemoveFromNode(it->second.pod->node_name, key);
  assumed_.erase(key);
  ClearNominationLocked(key);
  AddToNode(pod);
  pods_[key] = PodState{std::move(pod), false, false, {}};
}

void SchedulerCache::UpsertPendingPod(const PodPtr& pod) {
  std::lock_guard lock(mu_);
  const std::string key = pod->CacheKey();
  auto it = nominations_.find(key);
  if (!pod->nominated_node_name.empty()) {
    SetNominationLocked(key, {pod->nominated_node_name, pod, true});
  } else if (it != nominations_.end() && it->second.confirmed) {
    ClearNominationLocked(key);  // the API cleared it
  } else if (it != nominations_.end()) {
    // Ours and not written yet: keep the node, refresh the view.
    SetNominationLocked(key, {it->second.node, pod, false});
  }
}

void SchedulerCache::RemovePod(const std::string& cache_key) {
  std::lock_guard lock(mu_);
  RemovePodLocked(cache_key);
}

void SchedulerCache::SetNamespaceLabels(const std::string& ns, Labels labels) {
  std::lock_guard lock(mu_);
  namespaces_[ns] = std::move(labels);
}

void SchedulerCache::RemoveNamespace(const std::string& ns) {
  std::lock_guard lock(mu_);
  namespaces_.erase(ns);
}

ClusterState SchedulerCache::StateLocked() {
  if (node_list_dirty_) {
    node_list_.clear();
    for (const auto& [name, info] : nodes_) {
      if (info.node()) node_list_.push_back(&info);
    }
    node_list_dirty_ = false;
  }
  ClusterState state;
  state.nodes = node_list_;
  state.namespaces = &namespaces_;
  state.nominated = &nominated_;
  return state;
}

void SchedulerCache::AssumeLocked(const PodPtr& pod, const std::string& node) {
  const std::string key = pod->CacheKey();
  auto placed = std::make_shared<PodView>(*pod);
  placed->node_name = node;
  auto it = pods_.find(key);
  if (it != pods_.end()) RemoveFromNode(it->second.pod->node_name, key);
  ClearNominationLocked(key);
  PodPtr shared = std::move(placed);
  AddToNode(shared);
  pods_[key] = PodState{std::move(shared), true, false, {}};
  assumed_.insert(key);
}

void SchedulerCache::NominateLocked(const PodPtr& pod, const std::string& node) {
  SetNominationLocked(pod->CacheKey(), {node, pod, false});
}

bool SchedulerCache::IsAssumedLocked(const std::string& cache_key) const {
  return assumed_.count(cache_key) > 0;
}

bool SchedulerCache::IsAssumed(const std::string& cache_key) {
  std::lock_guard lock(mu_);
  return IsAssumedLocked(cache_key);
}

void SchedulerCache::FinishBinding(const std::string& cache_key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (!assumed_.count(cache_key)) return;
  PodState& state = pods_.at(cache_key);
  state.binding_finished = true;
  state.deadline = now + assumed_ttl_;
}

void SchedulerCache::Forget(const std::string& cache_key) {
  std::lock_guard lock(mu_);
  if (!assumed_.count(cache_key)) return;
  RemovePodLocked(cache_key);
}

size_t SchedulerCache::CleanupExpired(Clock::time_point now) {
  std::lock_guard lock(mu_);
  std::vector<std::string> expired;
  for (const std::string& key : assumed_) {
    const PodState& state = pods_.at(key);
    if (state.binding_finished && state.deadline <= now) expired.push_back(key);
  }
  for (const std::string& key : expired) RemovePodLocked(key);
  return expired.size();
}

void SchedulerCache::SetNominationLocked(const std::string& cache_key, Nomination nomination) {
  ClearNominationLocked(cache_key);
  nominated_[nomination.node].push_back(nomination.pod);
  nominations_[cache_key] = std::move(nomination);
}

void SchedulerCache::ClearNominationLocked(const std::string& cache_key) {
  auto it = nominations_.find(cache_key);
  if (it == nominations_.end()) return;
  auto node_it = nominated_.find(it->second.node);
  if (node_it != nominated_.end()) {
    auto& pods = node_it->second;
    pods.erase(std::remove_if(pods.begin(), pods.end(),
                              [&](const PodPtr& p) { return p->CacheKey() == cache_key; }),
               pods.end());
    if (pods.empty()) nominated_.erase(node_it);
  }
  nominations_.erase(it);
}

}  // namespace orch::sched
