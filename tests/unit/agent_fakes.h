// Test doubles for the node agent's unit tests: an ObjectSource over maps of ConfigMaps,
// Secrets and Services; a Machine with fixed facts; an ApiClient that can be cut off.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "machine.h"
#include "object_source.h"
#include "orch/api_client.h"

namespace orch::testing {

class FakeObjectSource : public agent::ObjectSource {
 public:
  using json = nlohmann::json;

  void AddConfigMap(const std::string& ns, const std::string& name, json data,
                    json binary = nullptr) {
    json object = {{"metadata", {{"name", name}, {"namespace", ns}}}, {"data", std::move(data)}};
    if (!binary.is_null()) object["binaryData"] = std::move(binary);
    config_maps_[ns + "/" + name] = std::make_shared<const json>(std::move(object));
  }
  // `data` values in clear; stored base64-encoded as the API holds them.
  void AddSecret(const std::string& ns, const std::string& name, json encoded_data) {
    secrets_[ns + "/" + name] = std::make_shared<const json>(
        json{{"metadata", {{"name", name}, {"namespace", ns}}}, {"data", std::move(encoded_data)}});
  }
  void AddService(const std::string& ns, const std::string& name, const std::string& ip,
                  json ports) {
    services_[ns].push_back(std::make_shared<const json>(
        json{{"metadata", {{"name", name}, {"namespace", ns}}},
             {"spec", {{"clusterIP", ip}, {"ports", std::move(ports)}}}}));
  }

  // Whole objects, replacing any of the same name.
  void AddPersistentVolumeClaim(json claim) {
    std::string key =
        claim["metadata"].value("namespace", "") + "/" + claim["metadata"].value("name", "");
    claims_[key] = std::make_shared<const json>(std::move(claim));
  }
  void AddPersistentVolume(json volume) {
    std::string name = volume["metadata"].value("name", "");
    volumes_[name] = std::make_shared<const json>(std::move(volume));
  }

  Result<ObjectPtr> ConfigMap(const std::string& ns, const std::string& name) override {
    auto it = config_maps_.find(ns + "/" + name);
    if (it == config_maps_.end()) return NotFound("configmap \"" + name + "\" not found");
    return it->second;
  }
  Result<ObjectPtr> Secret(const std::string& ns, const std::string& name) override {
    auto it = secrets_.find(ns + "/" + name);
    if (it == secrets_.end()) return NotFound("secret \"" + name + "\" not found");
    return it->second;
  }
  Result<ObjectPtr> PersistentVolumeClaim(const std::string& ns, const std::string& name) override {
    auto it = claims_.find(ns + "/" + name);
    if (it == claims_.end()) return NotFound("persistentvolumeclaim \"" + name + "\" not found");
    return it->second;
  }
  Result<ObjectPtr> PersistentVolume(const std::string& name) override {
    auto it = volumes_.find(name);
    if (it == volumes_.end()) return NotFound("persistentvolume \"" + name + "\" not found");
    return it->second;
  }
  std::vector<ObjectPtr> Services(const std::string& ns) override {
    auto it = services_.find(ns);
    return it == services_.end() ? std::vector<ObjectPtr>{} : it->second;
  }

 private:
  std::map<std::string, ObjectPtr> config_maps_;
  std::map<std::string, ObjectPtr> secrets_;
  std::map<std::string, std::vector<ObjectPtr>> services_;
  std::map<std::string, ObjectPtr> claims_;
  std::map<std::string, ObjectPtr> volumes_;
};

// A machine with fixed, plausible facts: 4 cores, 8 GiB, a 100 GiB filesystem.
class FakeMachine : public agent::Machine {
 public:
  agent::MachineInfo Info() override {
    agent::MachineInfo info;
    info.cpu_cores = 4;
    info.memory_bytes = 8LL << 30;
    info.kernel_version = "6.1.0";
    info.os_image = "Debian GNU/Linux 12 (bookworm)";
    info.architecture = "amd64";
    info.machine_id = info.system_uuid = info.boot_id = "fake";
    return info;
  }
  Result<agent::MemoryStats> Memory() override {
    return agent::MemoryStats{8ULL << 30, 6ULL << 30};
  }
  Result<agent::FilesystemStats> Filesystem(const std::string&) override {
    return agent::FilesystemStats{100ULL << 30, 50ULL << 30, 1000000, 900000};
  }
  Result<agent::PidStats> Pids() override { return agent::PidStats{4194304, 300}; }
};

// Forwards to another ApiClient, or answers every call kUnavailable while cut off: an API server
// the node cannot reach. Watches already open are not cut.
class CutOffApiClient : public ApiClient {
 public:
  explicit CutOffApiClient(ApiClient& inner) : inner_(inner) {}
  void SetReachable(bool reachable) { reachable_ = reachable; }

  Result<nlohmann::json> Get(const ResourceRef& ref, const std::string& ns,
                             const std::string& name) override {
    if (!reachable_) return Down();
    return inner_.Get(ref, ns, name);
  }
  Result<ObjectList> List(const ResourceRef& ref, const std::string& ns,
                          const ListOptions& options) override {
    if (!reachable_) return Down();
    return inner_.List(ref, ns, options);
  }
  Result<nlohmann::json> Create(const ResourceRef& ref, const std::string& ns,
                                const nlohmann::json& object,
                                const WriteOptions& options) override {
    if (!reachable_) return Down();
    return inner_.Create(ref, ns, object, options);
  }
  Result<nlohmann::json> Update(const ResourceRef& ref, const std::string& ns,
                                const nlohmann::json& object, const std::string& subresource,
                                const WriteOptions& options) override {
    if (!reachable_) return Down();
    return inner_.Update(ref, ns, object, subresource, options);
  }
  Result<nlohmann::json> Patch(const ResourceRef& ref, const std::string& ns,
                               const std::string& name, PatchType type, const std::string& patch,
                               const std::string& subresource,
                               const WriteOptions& options) override {
    if (!reachable_) return Down();
    return inner_.Patch(ref, ns, name, type, patch, subresource, options);
  }
  Result<nlohmann::json> Delete(const ResourceRef& ref, const std::string& ns,
                                const std::string& name, const DeleteOptions& options) override {
    if (!reachable_) return Down();
    return inner_.Delete(ref, ns, name, options);
  }
  Result<nlohmann::json> Post(const ResourceRef& ref, const std::string& ns,
                              const std::string& name, const std::string& subresource,
                              const nlohmann::json& body) override {
    if (!reachable_) return Down();
    return inner_.Post(ref, ns, name, subresource, body);
  }
  Result<std::unique_ptr<Watch>> StartWatch(const ResourceRef& ref, const std::string& ns,
                                            const WatchOptions& options,
                                            WatchHandler handler) override {
    if (!reachable_) return Down();
    return inner_.StartWatch(ref, ns, options, std::move(handler));
  }

 private:
  static Status Down() { return Status(StatusCode::kUnavailable, "connection refused"); }

  ApiClient& inner_;
  std::atomic<bool> reachable_{true};
};

}  // namespace orch::testing
