// NodeInfo bookkeeping: totals are kept up to date on every add and remove so that a filter or
// score reads them in constant time instead of summing the node's pods.
#include "node_info.h"

#include <algorithm>

namespace orch::sched {

void NodeInfo::AddPod(PodPtr pod) {
  Account(*pod, +1);
  pods_.push_back(std::move(pod));
}

bool NodeInfo::RemovePod(const std::string& cache_key) {
  for (size_t i = 0; i < pods_.size(); ++i) {
    if (pods_[i]->CacheKey() != cache_key) continue;
    Account(*pods_[i], -1);
    pods_[i] = std::move(pods_.back());
    pods_.pop_back();
    return true;
  }
  return false;
}

const PodPtr* NodeInfo::FindPod(const std::string& cache_key) const {
  for (const PodPtr& pod : pods_) {
    if (pod->CacheKey() == cache_key) return &pod;
  }
  return nullptr;
}

int NodeInfo::OwnerCount(const std::string& owner_uid) const {
  auto it = owner_counts_.find(owner_uid);
  return it == owner_counts_.end() ? 0 : it->second;
}

void NodeInfo::Account(const PodView& pod, int sign) {
  if (sign > 0) {
    requested_.Add(pod.requests);
    for (const HostPort& hp : pod.host_ports) used_ports_.push_back(hp);
  } else {
    requested_.Sub(pod.requests);
    for (const HostPort& hp : pod.host_ports) {
      auto it = std::find_if(used_ports_.begin(), used_ports_.end(), [&](const HostPort& u) {
        return u.port == hp.port && u.protocol == hp.protocol && u.host_ip == hp.host_ip;
      });
      if (it != used_ports_.end()) used_ports_.erase(it);
    }
  }
  non_zero_milli_cpu_ += sign * pod.non_zero_milli_cpu;
  non_zero_memory_ += sign * pod.non_zero_memory;
  if (pod.HasAffinityTerms()) pods_with_affinity_ += sign;
  if (!pod.required_anti_affinity.empty()) pods_with_required_anti_affinity_ += sign;
  if (!pod.owner_uid.empty()) {
    int& count = owner_counts_[pod.owner_uid];
    count += sign;
    if (count <= 0) owner_counts_.erase(pod.owner_uid);
  }
}

const Labels* ClusterState::NamespaceLabelsOf(const std::string& ns) const {
  if (!namespaces) return nullptr;
  auto it = namespaces->find(ns);
  return it == namespaces->end() ? nullptr : &it->second;
}

}  // namespace orch::sched
