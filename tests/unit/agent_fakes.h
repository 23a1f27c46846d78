// Test doubles for the node agent's unit tests: an ObjectSource over maps of ConfigMaps,
// Secrets and Services.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "object_source.h"

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

}  // namespace orch::testing
