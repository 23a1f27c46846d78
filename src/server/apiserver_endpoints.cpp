// Keeps default/kubernetes listing every live API server (apiserver_endpoints.h): a TTL lease per
// server in the datastore, a watch on the leases, and a compare-and-swap update of the Endpoints.
#include "apiserver_endpoints.h"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "orch/log.h"

namespace orch {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr std::string_view kLog = "apiserver-endpoints";

}  // namespace

Status KubernetesEndpointsComponent::Start() {
  std::string ip =
      !config_.advertise_address.empty() ? config_.advertise_address : config_.agent.node_ip;
  if (ip.empty()) ip = "127.0.0.1";
  self_ = {ip, api_.server().port()};
  key_ = fmt::format("{}{}:{}", kApiServerLeasePrefix, self_.first, self_.second);
  client_ = api_.server().NewClient("system:apiserver", {"system:masters"}, "kube-apiserver");
  if (Status s = Renew(); !s.ok()) return s;
  if (Status s = Reconcile(); !s.ok()) return s;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void KubernetesEndpointsComponent::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
    if (watcher_) watcher_->Cancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!client_) return;
  // Leaving at once beats waiting for the TTL: clients stop being sent to a stopped server.
  auto deleted = datastore_.store().Delete(key_);
  if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound) {
    log::Warn(kLog, "deleting the lease {}: {}", key_, deleted.status().ToString());
  }
  if (Status s = Reconcile(); !s.ok()) log::Warn(kLog, "{}", s.ToString());
  client_.reset();
}

Status KubernetesEndpointsComponent::Renew() {
  Store& store = datastore_.store();
  json value = {{"ip", self_.first}, {"port", self_.second}};
  auto updated = store.Update(key_, value.dump(), 0, kApiServerLeaseTtl);
  if (updated.ok()) return Status::Ok();
  if (updated.status().code() != StatusCode::kNotFound) return updated.status();
  auto created = store.Create(key_, value.dump(), kApiServerLeaseTtl);
  if (created.ok() || created.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
  return created.status();
}

Result<std::set<KubernetesEndpointsComponent::Address>>
KubernetesEndpointsComponent::LiveAddresses() {
  RangeOptions range;
  range.prefix = kApiServerLeasePrefix;
  auto listed = datastore_.store().List(range);
  if (!listed.ok()) return listed.status();
  std::set<Address> out;
  for (const KeyValue& kv : listed->kvs) {
    auto doc = json::parse(kv.value, nullptr, false);
    if (!doc.is_object() || !doc["ip"].is_string() || !doc["port"].is_number_integer()) continue;
    out.emplace(doc["ip"].get<std::string>(), doc["port"].get<int>());
  }
  return out;
}

Status KubernetesEndpointsComponent::Reconcile() {
  auto live = LiveAddresses();
  if (!live.ok()) return live.status();
  // One subset per port, addresses sorted: the same leases give the same object on every server,
  // so servers that reconcile at once agree instead of overwriting each other.
  std::map<int, std::vector<std::string>> by_port;
  for (const auto& [ip, port] : *live) by_port[port].push_back(ip);
  json subsets = json::array();
  for (const auto& [port, ips] : by_port) {
    json addresses = json::array();
    for (const auto& ip : ips) addresses.push_back({{"ip", ip}});
    subsets.push_back({{"addresses", addresses},
                       {"ports", {{{"name", "https"}, {"port", port}, {"protocol", "TCP"}}}}});
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto current = client_->Get(resources::kEndpoints, "default", "kubernetes");
    if (!current.ok() && current.status().code() != StatusCode::kNotFound) {
      return current.status();
    }
    if (!current.ok()) {
      json ep = {{"apiVersion", "v1"},
                 {"kind", "Endpoints"},
                 {"metadata", {{"name", "kubernetes"}, {"namespace", "default"}}},
                 {"subsets", subsets}};
      auto made = client_->Create(resources::kEndpoints, "default", ep);
      if (made.ok()) return Status::Ok();
      if (made.status().code() != StatusCode::kAlreadyExists) return made.status();
      continue;
    }
    json existing = current->value("subsets", json::array());
    if (existing == subsets) return Status::Ok();
    json ep = std::move(*current);
    ep["subsets"] = subsets;
    auto updated = client_->Update(resources::kEndpoints, "default", ep);
    if (updated.ok()) {
      log::Info(kLog, "default/kubernetes now lists {} API server(s)", live->size());
      return Status::Ok();
    }
    if (updated.status().code() != StatusCode::kConflict) return updated.status();
  }
  return Unavailable("updating default/kubernetes: too many conflicts");
}

void KubernetesEndpointsComponent::Run() {
  auto next_renew = Clock::now() + kApiServerLeaseRenew;
  bool dirty = false;
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (stop_) return;
      if (!watcher_) {
        lock.unlock();
        auto watcher = datastore_.store().Watch(kApiServerLeasePrefix, 0);
        lock.lock();
        if (stop_) return;
        if (watcher.ok()) {
          watcher_ = std::move(*watcher);
          dirty = true;  // changes while there was no watch are seen by the next reconcile
        } else {
          log::Debug(kLog, "watching the leases: {}", watcher.status().ToString());
          cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
          continue;
        }
      }
    }
    auto now = Clock::now();
    if (now >= next_renew) {
      if (Status s = Renew(); !s.ok()) log::Warn(kLog, "renewing {}: {}", key_, s.ToString());
      next_renew = now + kApiServerLeaseRenew;
      dirty = true;  // also repairs an Endpoints object someone else rewrote
    }
    if (dirty) {
      Status s = Reconcile();
      if (!s.ok()) log::Warn(kLog, "{}", s.ToString());
      dirty = !s.ok();
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_renew - Clock::now());
    auto batch = watcher_->Next(std::max(wait, std::chrono::milliseconds(1)));
    if (!batch.ok()) {
      if (batch.status().code() == StatusCode::kCancelled) {
        std::lock_guard lock(mu_);
        if (stop_) return;
      }
      std::lock_guard lock(mu_);
      watcher_.reset();
      continue;
    }
    if (!batch->empty()) dirty = true;
  }
}

}  // namespace orch
