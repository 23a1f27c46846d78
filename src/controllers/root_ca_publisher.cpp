// The root CA publisher (upstream's root-ca-cert-publisher): every namespace gets the ConfigMap
// kube-root-ca.crt holding the cluster CA under ca.crt, which kube-api-access volumes project
// next to the token so that pods can verify the API server. Changed or deleted copies come back.
#include <fmt/format.h>

#include "controller_util.h"
#include "orch/controllers.h"
#include "orch/files.h"
#include "orch/log.h"

namespace orch {
namespace {

using json = nlohmann::json;

constexpr char kComponent[] = "root-ca-cert-publisher";
constexpr char kConfigMapName[] = "kube-root-ca.crt";
constexpr char kDescription[] =
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters.";

class RootCaPublisher : public Component {
 public:
  explicit RootCaPublisher(ControllerContext& context)
      : client_(context.client),
        data_dir_(context.data_dir),
        namespaces_(context.informers.For(resources::kNamespaces)),
        config_maps_(context.informers.For(resources::kConfigMaps, "", "",
                                           std::string("metadata.name=") + kConfigMapName)),
        loop_(
            kComponent, context.informers, context.workers, std::chrono::minutes(5),
            [this] { return ctrl::InformerKeys(namespaces_); },
            [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return kComponent; }

  Status Start() override {
    // The serving certificate of every API server chains to the cluster CA (src/server).
    auto ca = ReadFileToString(data_dir_ + "/server/tls/server-ca.crt");
    if (!ca.ok()) {
      log::Warn(kComponent, "no cluster CA to publish: {}", ca.status().message());
      return Status::Ok();
    }
    ca_ = *ca;
    namespaces_.AddHandler({
        [this](const ObjectPtr& ns) { loop_.Add(ctrl::NameOf(*ns)); },
        [this](const ObjectPtr&, const ObjectPtr& ns) { loop_.Add(ctrl::NameOf(*ns)); },
        nullptr,
    });
    auto by_namespace = [this](const ObjectPtr& cm) { loop_.Add(ctrl::NamespaceOf(*cm)); };
    config_maps_.AddHandler({
        by_namespace,
        [by_namespace](const ObjectPtr&, const ObjectPtr& cm) { by_namespace(cm); },
        by_namespace,
    });
    loop_.Start();
    started_ = true;
    return Status::Ok();
  }

  void Stop() override {
    if (started_) loop_.Stop();
  }

 private:
  Status Sync(const std::string& ns_name) {
    ObjectPtr ns = namespaces_.Get("", ns_name);
    if (!ns || ctrl::IsBeingDeleted(*ns) ||
        ctrl::StringField(*ns, {"status", "phase"}) == "Terminating") {
      return Status::Ok();
    }
    json data = {{"ca.crt", ca_}};
    ObjectPtr existing = config_maps_.Get(ns_name, kConfigMapName);
    if (!existing) {
      json cm = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata",
                  {{"name", kConfigMapName},
                   {"namespace", ns_name},
                   {"annotations", {{"kubernetes.io/description", kDescription}}}}},
                 {"data", data}};
      auto created = client_.Create(resources::kConfigMaps, ns_name, cm);
      if (created.ok() || created.status().code() == StatusCode::kAlreadyExists ||
          created.status().code() == StatusCode::kNotFound ||
          created.status().message().find("being terminated") != std::string::npos) {
        return Status::Ok();
      }
      return created.status();
    }
    if (ctrl::Field(*existing, {"data"}) == data) return Status::Ok();
    json cm = *existing;
    cm["data"] = data;
    cm.erase("binaryData");
    auto updated = client_.Update(resources::kConfigMaps, ns_name, cm);
    if (updated.ok() || updated.status().code() == StatusCode::kNotFound) return Status::Ok();
    return updated.status();  // a conflict: the informer brings the newer copy, retried
  }

  ApiClient& client_;
  const std::string data_dir_;
  std::string ca_;  // set in Start, read-only after
  bool started_ = false;
  Informer& namespaces_;
  Informer& config_maps_;
  ctrl::ControllerLoop loop_;  // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewRootCaPublisher(ControllerContext& context) {
  return std::make_unique<RootCaPublisher>(context);
}

}  // namespace orch
