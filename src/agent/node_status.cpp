// Node registration, status and lease heartbeats (node_status.h).
#include "node_status.h"

#include <fmt/format.h>

#include "orch/log.h"
#include "orch/timestamps.h"
#include "orch/version.h"

namespace orch::agent {
namespace {

constexpr std::string_view kLog = "agent";
// An unchanged status is still written this often, so its heartbeat times stay meaningful.
constexpr auto kStatusReport = std::chrono::minutes(5);

}  // namespace

int64_t NodeStatusReporter::allocatable_memory() const {
  int64_t m = info_.memory_bytes - static_cast<int64_t>(kMemoryAvailableThreshold);
  return m > 0 ? m : 0;
}

int64_t NodeStatusReporter::allocatable_ephemeral() const {
  return static_cast<int64_t>(nodefs_.capacity_bytes * (1.0 - kNodefsAvailableRatio));
}

NodeFacts NodeStatusReporter::GatherFacts() {
  NodeFacts f;
  f.id = id_;
  f.machine = info_;
  f.runtime_version = runtime_version_;
  f.kubelet_version = kKubernetesVersion;
  if (auto fs = machine_.Filesystem(data_dir_); fs.ok()) {
    f.nodefs = *fs;
  } else {
    f.nodefs = nodefs_;
  }
  if (auto m = machine_.Memory(); m.ok()) f.memory = *m;
  if (auto p = machine_.Pids(); p.ok()) f.pids = *p;
  auto rs = runtime_.GetRuntimeStatus();
  if (!rs.ok()) {
    f.runtime_message = "container runtime is down: " + rs.status().message();
  } else {
    f.runtime_ready = rs->runtime_ready;
    f.network_ready = rs->network_ready && network_ready_();
    for (const auto& c : rs->conditions) {
      if (c.status) continue;
      f.runtime_message = fmt::format("container runtime {}: {}=false reason:{} message:{}",
                                      c.type == "NetworkReady" ? "network not ready" : "not ready",
                                      c.type, c.reason, c.message);
      break;
    }
    if (f.runtime_message.empty() && !f.network_ready) {
      f.runtime_message =
          "container runtime network not ready: the node has no pod CIDR (spec.podCIDR) yet";
    }
  }
  if (auto images = runtime_.ListImages(); images.ok()) f.images = std::move(*images);
  return f;
}

Status NodeStatusReporter::Register(std::chrono::seconds patience) {
  info_ = machine_.Info();
  if (auto fs = machine_.Filesystem(data_dir_); fs.ok()) nodefs_ = *fs;
  auto version = runtime_.GetVersion();
  if (!version.ok()) return version.status();
  runtime_version_ = version->runtime_name + "://" + version->runtime_version;

  auto deadline = std::chrono::steady_clock::now() + patience;
  Status last;
  do {
    if (!last.ok()) std::this_thread::sleep_for(std::chrono::seconds(1));
    auto now = std::chrono::system_clock::now();
    NodeFacts facts = GatherFacts();
    auto object = NewNodeObject(id_, info_, NodeStatusJson(facts, json(), now));
    if (!object.ok()) return object.status();
    auto created = client_.Create(resources::kNodes, "", *object);
    if (created.ok()) {
      node_uid_ = Str(*created, {"metadata", "uid"});
      last_status_ = At(*created, {"status"});
      last_write_ = std::chrono::steady_clock::now();
      log::Info(kLog, "registered node {} ({})", id_.name, id_.ip);
      return Status::Ok();
    }
    last = created.status();
    if (last.code() == StatusCode::kAlreadyExists) {
      auto existing = client_.Get(resources::kNodes, "", id_.name);
      if (!existing.ok()) {
        last = existing.status();
        continue;
      }
      json node = std::move(*existing);
      auto changed = MergeRegistration(node, id_, info_);
      if (!changed.ok()) return changed.status();
      if (*changed) {
        auto updated = client_.Update(resources::kNodes, "", node);
        if (!updated.ok()) {
          last = updated.status();
          continue;
        }
        node = std::move(*updated);
      }
      node["status"] = NodeStatusJson(facts, At(node, {"status"}), now);
      auto written = client_.Update(resources::kNodes, "", node, "status");
      if (!written.ok()) {
        last = written.status();
        continue;
      }
      node_uid_ = Str(*written, {"metadata", "uid"});
      last_status_ = At(*written, {"status"});
      last_write_ = std::chrono::steady_clock::now();
      log::Info(kLog, "node {} ({}) was registered before: updated it", id_.name, id_.ip);
      return Status::Ok();
    }
    if (last.code() != StatusCode::kUnavailable && last.code() != StatusCode::kConflict) break;
  } while (std::chrono::steady_clock::now() < deadline);
  return Status(last.code(), fmt::format("cannot register node {}: {}", id_.name, last.message()));
}

Status NodeStatusReporter::UpdateStatus(bool force) {
  auto now = std::chrono::system_clock::now();
  NodeFacts facts = GatherFacts();
  json status = NodeStatusJson(facts, last_status_, now);
  if (!force && !NodeStatusChanged(last_status_, status) &&
      std::chrono::steady_clock::now() - last_write_ < kStatusReport) {
    return Status::Ok();
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto node = client_.Get(resources::kNodes, "", id_.name);
    if (!node.ok() && node.status().code() == StatusCode::kNotFound) {
      log::Warn(kLog, "node {} was deleted from the API: registering it again", id_.name);
      return Register(std::chrono::seconds(0));
    }
    if (!node.ok()) return node.status();
    (*node)["status"] = NodeStatusJson(facts, At(*node, {"status"}), now);
    auto written = client_.Update(resources::kNodes, "", *node, "status");
    if (written.ok()) {
      auto ready = [](const json& st) {
        for (const json& c : Array(st, {"conditions"})) {
          if (Str(c, {"type"}) == "Ready") return Str(c, {"status"}) + " " + Str(c, {"message"});
        }
        return std::string();
      };
      if (ready(last_status_) != ready(At(*written, {"status"}))) {
        log::Info(kLog, "node {} Ready: {}", id_.name, ready(At(*written, {"status"})));
      }
      node_uid_ = Str(*written, {"metadata", "uid"});
      last_status_ = At(*written, {"status"});
      last_write_ = std::chrono::steady_clock::now();
      return Status::Ok();
    }
    if (written.status().code() != StatusCode::kConflict) return written.status();
  }
  return Conflict("the node kept changing");
}

void NodeStatusReporter::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void NodeStatusReporter::Poke() {
  std::lock_guard lock(mu_);
  poked_ = true;
  cv_.notify_all();
}

void NodeStatusReporter::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void NodeStatusReporter::Loop() {
  std::string last_lease_error, last_status_error;
  auto next_beat = std::chrono::steady_clock::now();
  // After a silent spell (API unreachable, process frozen) the node lifecycle controller may have
  // marked the node Unknown behind our back: the status is then written even if it did not
  // change since our last write, until a write succeeds.
  auto last_renewed = next_beat;
  bool rewrite = false;
  for (;;) {
    bool beat = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next_beat, [this] { return stopping_ || poked_; });
      if (stopping_) return;
      poked_ = false;
      if (std::chrono::steady_clock::now() >= next_beat) {
        beat = true;
        next_beat = std::chrono::steady_clock::now() + heartbeat_;
      }
    }
    if (beat) {
      Status s = lease_.Renew(node_uid_);
      auto now = std::chrono::steady_clock::now();
      if (s.ok()) {
        if (now - last_renewed > 2 * heartbeat_) rewrite = true;
        last_renewed = now;
      }
      std::string error = s.ok() ? "" : s.message();
      if (error != last_lease_error && !error.empty()) log::Warn(kLog, "node lease: {}", error);
      last_lease_error = error;
    }
    Status s = UpdateStatus(rewrite);
    if (s.ok()) rewrite = false;
    std::string error = s.ok() ? "" : s.message();
    if (error != last_status_error && !error.empty()) log::Warn(kLog, "node status: {}", error);
    last_status_error = error;
  }
}

}  // namespace orch::agent
