// An in-memory cri::Runtime for the node agent's unit tests: sandboxes and containers with
// states, label filters, images, and controls to make containers exit, as containerd would.
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "orch/runtime.h"

namespace orch::testing {

// What it does: RunPodSandbox/CreateContainer give ids "sb-N"/"c-N"; StartContainer runs a
// container; StopContainer records the grace and exits it with 143 (137 when `grace` is 0);
// StopPodSandbox stops the sandbox and exits its running containers (137); Remove* delete;
// List* filter by id, state, sandbox and labels. Images: those added with AddImage are
// present; PullImage of others fails with NotFound unless added to `pullable`. Thread-safe.
class FakeRuntime : public cri::Runtime {
 public:
  struct Stop {
    std::string id;
    std::chrono::seconds grace;
  };

  void AddImage(const std::string& ref, const std::string& id) {
    std::lock_guard lock(mu_);
    images_[ref] = id;
  }
  void AllowPull(const std::string& ref, const std::string& id) {
    std::lock_guard lock(mu_);
    pullable_[ref] = id;
  }
  // The container exits with `code` (reason as containerd gives it).
  void Exit(const std::string& id, int32_t code, const std::string& reason = "") {
    std::lock_guard lock(mu_);
    auto& c = containers_.at(id);
    c.status.container.state = cri::ContainerState::kExited;
    c.status.exit_code = code;
    c.status.reason = reason.empty() ? (code == 0 ? "Completed" : "Error") : reason;
    c.status.finished_at = Now();
  }
  // The containers of the sandbox, by name, newest first.
  std::vector<cri::ContainerStatus> ContainersNamed(const std::string& name) {
    std::lock_guard lock(mu_);
    std::vector<cri::ContainerStatus> out;
    for (const auto& [id, c] : containers_) {
      if (c.status.container.name == name) out.push_back(c.status);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.container.created_at > b.container.created_at;
    });
    return out;
  }
  std::vector<cri::PodSandbox> Sandboxes() {
    std::lock_guard lock(mu_);
    std::vector<cri::PodSandbox> out;
    for (const auto& [id, s] : sandboxes_) out.push_back(s.sandbox);
    return out;
  }
  std::vector<Stop> Stops() {
    std::lock_guard lock(mu_);
    return stops_;
  }
  int pulls() const { return pulls_; }
  int creates() const { return creates_; }

  Result<cri::VersionInfo> GetVersion() override {
    return cri::VersionInfo{"v1", "containerd", "1.6.20"};
  }
  Result<cri::RuntimeStatus> GetRuntimeStatus() override {
    cri::RuntimeStatus s;
    s.runtime_ready = s.network_ready = true;
    return s;
  }

  Result<std::string> RunPodSandbox(const cri::PodSandboxConfig& config) override {
    std::lock_guard lock(mu_);
    SandboxEntry e;
    e.sandbox.id = "sb-" + std::to_string(++next_);
    e.sandbox.name = config.name;
    e.sandbox.uid = config.uid;
    e.sandbox.namespace_ = config.namespace_;
    e.sandbox.attempt = config.attempt;
    e.sandbox.state = cri::SandboxState::kReady;
    e.sandbox.created_at = Now();
    e.sandbox.labels = config.labels;
    e.sandbox.annotations = config.annotations;
    e.ip = "10.42.0." + std::to_string(next_);
    e.host_network = config.security.namespaces.network == cri::NamespaceMode::kNode;
    sandboxes_[e.sandbox.id] = e;
    return e.sandbox.id;
  }
  Status StopPodSandbox(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return Status::Ok();
    it->second.sandbox.state = cri::SandboxState::kNotReady;
    for (auto& [cid, c] : containers_) {
      if (c.status.container.sandbox_id == id &&
          c.status.container.state == cri::ContainerState::kRunning) {
        c.status.container.state = cri::ContainerState::kExited;
        c.status.exit_code = 137;
        c.status.reason = "Error";
        c.status.finished_at = Now();
      }
    }
    return Status::Ok();
  }
  Status RemovePodSandbox(const std::string& id) override {
    std::lock_guard lock(mu_);
    sandboxes_.erase(id);
    for (auto it = containers_.begin(); it != containers_.end();) {
      it = it->second.status.container.sandbox_id == id ? containers_.erase(it) : std::next(it);
    }
    return Status::Ok();
  }
  Result<cri::PodSandboxStatus> GetPodSandboxStatus(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return NotFound("sandbox " + id);
    cri::PodSandboxStatus s;
    s.sandbox = it->second.sandbox;
    s.ip = it->second.host_network ? "" : it->second.ip;
    s.host_network = it->second.host_network;
    return s;
  }
  Result<std::vector<cri::PodSandbox>> ListPodSandboxes(const cri::SandboxFilter& f) override {
    std::lock_guard lock(mu_);
    std::vector<cri::PodSandbox> out;
    for (const auto& [id, e] : sandboxes_) {
      if (!f.id.empty() && f.id != id) continue;
      if (f.state && *f.state != e.sandbox.state) continue;
      if (!Matches(e.sandbox.labels, f.label_selector)) continue;
      out.push_back(e.sandbox);
    }
    return out;
  }

  Result<std::string> CreateContainer(const std::string& sandbox_id,
                                      const cri::ContainerConfig& config,
                                      const cri::PodSandboxConfig& sandbox) override {
    std::lock_guard lock(mu_);
    if (!sandboxes_.contains(sandbox_id)) return NotFound("sandbox " + sandbox_id);
    if (sandbox.uid != sandboxes_[sandbox_id].sandbox.uid)
      return InvalidArgument("wrong sandbox config");
    ContainerEntry e;
    e.config = config;
    cri::Container& c = e.status.container;
    c.id = "c-" + std::to_string(++next_);
    c.sandbox_id = sandbox_id;
    c.name = config.name;
    c.attempt = config.attempt;
    c.image = config.image;
    c.image_ref = config.image;
    c.state = cri::ContainerState::kCreated;
    c.created_at = Now();
    c.labels = config.labels;
    c.annotations = config.annotations;
    e.status.log_path = sandbox.log_directory + "/" + config.log_path;
    containers_[c.id] = e;
    ++creates_;
    return c.id;
  }
  Status StartContainer(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return NotFound("container " + id);
    it->second.status.container.state = cri::ContainerState::kRunning;
    it->second.status.started_at = Now();
    return Status::Ok();
  }
  Status StopContainer(const std::string& id, std::chrono::seconds grace) override {
    std::lock_guard lock(mu_);
    stops_.push_back({id, grace});
    auto it = containers_.find(id);
    if (it == containers_.end()) return Status::Ok();
    auto& s = it->second.status;
    if (s.container.state == cri::ContainerState::kRunning) {
      s.container.state = cri::ContainerState::kExited;
      s.exit_code = grace.count() == 0 ? 137 : 143;
      s.reason = "Error";
      s.finished_at = Now();
    }
    return Status::Ok();
  }
  Status RemoveContainer(const std::string& id) override {
    std::lock_guard lock(mu_);
    containers_.erase(id);
    return Status::Ok();
  }
  Result<cri::ContainerStatus> GetContainerStatus(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return NotFound("container " + id);
    cri::ContainerStatus status = it->second.status;
    status.container.sandbox_id.clear();  // as CRI's ContainerStatus: no sandbox ID
    return status;
  }
  Result<std::vector<cri::Container>> ListContainers(const cri::ContainerFilter& f) override {
    std::lock_guard lock(mu_);
    std::vector<cri::Container> out;
    for (const auto& [id, e] : containers_) {
      const cri::Container& c = e.status.container;
      if (!f.id.empty() && f.id != id) continue;
      if (f.state && *f.state != c.state) continue;
      if (!f.sandbox_id.empty() && f.sandbox_id != c.sandbox_id) continue;
      if (!Matches(c.labels, f.label_selector)) continue;
      out.push_back(c);
    }
    return out;
  }
  Status ReopenContainerLog(const std::string&) override { return Status::Ok(); }
  // ExecSync answers with `exec_handler` when set (exit 0 otherwise); every call is recorded.
  struct ExecCall {
    std::string id;
    std::vector<std::string> cmd;
    std::chrono::seconds timeout;
  };
  using ExecHandler = std::function<Result<cri::ExecSyncResult>(const ExecCall&)>;
  void SetExecHandler(ExecHandler handler) {
    std::lock_guard lock(mu_);
    exec_handler_ = std::move(handler);
  }
  std::vector<ExecCall> Execs() {
    std::lock_guard lock(mu_);
    return execs_;
  }
  Result<cri::ExecSyncResult> ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                                       std::chrono::seconds timeout) override {
    ExecHandler handler;
    {
      std::lock_guard lock(mu_);
      execs_.push_back({id, cmd, timeout});
      handler = exec_handler_;
    }
    if (handler) return handler({id, cmd, timeout});
    return cri::ExecSyncResult{};
  }
  Result<std::string> Exec(const std::string&, const std::vector<std::string>&,
                           const cri::StreamOptions&) override {
    return Internal("not faked");
  }
  Result<std::string> Attach(const std::string&, const cri::StreamOptions&) override {
    return Internal("not faked");
  }
  Result<std::string> PortForward(const std::string&, const std::vector<int32_t>&) override {
    return Internal("not faked");
  }
  Result<cri::ContainerStats> GetContainerStats(const std::string&) override {
    return Internal("not faked");
  }
  Result<std::vector<cri::ContainerStats>> ListContainerStats(
      const cri::ContainerStatsFilter&) override {
    return std::vector<cri::ContainerStats>{};
  }
  Result<std::string> PullImage(const std::string& image, const std::optional<cri::AuthConfig>&,
                                const cri::PodSandboxConfig*) override {
    std::lock_guard lock(mu_);
    ++pulls_;
    auto it = pullable_.find(image);
    if (it == pullable_.end()) {
      return NotFound("failed to resolve reference \"" + image + "\": not found");
    }
    images_[image] = it->second;
    return it->second;
  }
  Result<cri::Image> GetImageStatus(const std::string& image) override {
    std::lock_guard lock(mu_);
    for (const auto& [ref, id] : images_) {
      if (ref == image || id == image) {
        cri::Image out;
        out.id = id;
        out.repo_tags = {ref};
        out.size = 1000;
        return out;
      }
    }
    return NotFound("image " + image);
  }
  Result<std::vector<cri::Image>> ListImages() override { return std::vector<cri::Image>{}; }
  Status RemoveImage(const std::string&) override { return Status::Ok(); }
  Result<std::vector<cri::FilesystemUsage>> ImageFsInfo() override {
    return std::vector<cri::FilesystemUsage>{};
  }

 private:
  struct SandboxEntry {
    cri::PodSandbox sandbox;
    std::string ip;
    bool host_network = false;
  };
  struct ContainerEntry {
    cri::ContainerConfig config;
    cri::ContainerStatus status;
  };

  static bool Matches(const cri::Labels& labels, const cri::Labels& selector) {
    for (const auto& [k, v] : selector) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) return false;
    }
    return true;
  }
  // The wall clock in nanoseconds (back-offs compare it with the real time), strictly
  // increasing so "newest" is well defined even within one clock tick.
  int64_t Now() {
    int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    clock_ = std::max(now, clock_ + 1);
    return clock_;
  }

  std::mutex mu_;
  int next_ = 0;
  int64_t clock_ = 0;
  std::atomic<int> pulls_{0};
  std::atomic<int> creates_{0};
  std::map<std::string, SandboxEntry> sandboxes_;
  std::map<std::string, ContainerEntry> containers_;
  std::map<std::string, std::string> images_;
  std::map<std::string, std::string> pullable_;
  std::vector<Stop> stops_;
  ExecHandler exec_handler_;
  std::vector<ExecCall> execs_;
};

}  // namespace orch::testing
