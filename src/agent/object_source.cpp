// Informer-backed ConfigMaps, Secrets, Services, PersistentVolumeClaims and PersistentVolumes
// for the agent (object_source.h).
#include "object_source.h"

#include <fmt/format.h>

#include "json_util.h"

namespace orch::agent {

InformerObjectSource::InformerObjectSource(InformerFactory& factory, ApiClient& client,
                                           ChangeHandler on_change)
    : factory_(factory),
      client_(client),
      on_change_(std::move(on_change)),
      services_(factory.For(resources::kServices)) {}

Informer& InformerObjectSource::NamespaceInformer(const ResourceRef& ref, const char* kind,
                                                  const std::string& ns) {
  std::lock_guard lock(mu_);
  std::string key = std::string(kind) + "/" + ns;
  if (auto it = informers_.find(key); it != informers_.end()) return *it->second;
  Informer& informer = factory_.For(ref, ns);
  std::string k = kind;
  auto notify = [this, k](const ObjectPtr& object) {
    if (!on_change_) return;
    if (k == "persistentvolume") {
      // Pods name the claim, not the volume: tell the claim bound to it.
      std::string claim = Str(*object, {"spec", "claimRef", "name"});
      if (!claim.empty()) {
        on_change_("persistentvolumeclaim", Str(*object, {"spec", "claimRef", "namespace"}), claim);
      }
      return;
    }
    on_change_(k, Str(*object, {"metadata", "namespace"}), Str(*object, {"metadata", "name"}));
  };
  informer.AddHandler(
      {notify, [notify](const ObjectPtr&, const ObjectPtr& o) { notify(o); }, notify});
  informers_[key] = &informer;
  return informer;
}

Result<ObjectPtr> InformerObjectSource::Read(const ResourceRef& ref, const char* kind,
                                             const std::string& ns, const std::string& name) {
  Informer& informer = NamespaceInformer(ref, kind, ns);
  if (informer.HasSynced()) {
    ObjectPtr object = informer.Get(ns, name);
    if (!object) return NotFound(fmt::format("{} \"{}\" not found", kind, name));
    return object;
  }
  auto object = client_.Get(ref, ns, name);
  if (!object.ok()) return object.status();
  return std::make_shared<const nlohmann::json>(std::move(*object));
}

Result<ObjectPtr> InformerObjectSource::ConfigMap(const std::string& ns, const std::string& name) {
  return Read(resources::kConfigMaps, "configmap", ns, name);
}

Result<ObjectPtr> InformerObjectSource::Secret(const std::string& ns, const std::string& name) {
  return Read(resources::kSecrets, "secret", ns, name);
}

Result<ObjectPtr> InformerObjectSource::PersistentVolumeClaim(const std::string& ns,
                                                              const std::string& name) {
  return Read(resources::kPersistentVolumeClaims, "persistentvolumeclaim", ns, name);
}

Result<ObjectPtr> InformerObjectSource::PersistentVolume(const std::string& name) {
  return Read(resources::kPersistentVolumes, "persistentvolume", "", name);
}

std::vector<ObjectPtr> InformerObjectSource::Services(const std::string& ns) {
  return services_.List(ns);
}

}  // namespace orch::agent
