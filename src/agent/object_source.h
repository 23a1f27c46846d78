// Where the agent reads the ConfigMaps, Secrets, Services, PersistentVolumeClaims and
// PersistentVolumes that pods reference (env vars, volumes, service links): an interface so the
// pure code that builds containers is tested with a map, and the agent serves it from informers.
#pragma once

#include <string>
#include <vector>

#include "orch/informer.h"
#include "orch/status.h"

namespace orch::agent {

// Thread-safe.
class ObjectSource {
 public:
  virtual ~ObjectSource() = default;
  // The object, kNotFound when it does not exist, kUnavailable when it cannot be read now.
  virtual Result<ObjectPtr> ConfigMap(const std::string& ns, const std::string& name) = 0;
  virtual Result<ObjectPtr> Secret(const std::string& ns, const std::string& name) = 0;
  virtual Result<ObjectPtr> PersistentVolumeClaim(const std::string& ns,
                                                  const std::string& name) = 0;
  virtual Result<ObjectPtr> PersistentVolume(const std::string& name) = 0;
  // The Services of a namespace (for the {SVC}_SERVICE_HOST variables).
  virtual std::vector<ObjectPtr> Services(const std::string& ns) = 0;
};

}  // namespace orch::agent

#include <functional>
#include <map>
#include <mutex>

#include "orch/api_client.h"

namespace orch::agent {

// The agent's ObjectSource: Services from one cluster-wide informer, ConfigMaps and Secrets
// from informers of the namespaces that have pods on this node (made on first use, so a node
// does not hold the whole cluster's Secrets), read from the API while such an informer syncs.
// PersistentVolumeClaims come the same way, PersistentVolumes from one cluster-wide informer
// (made on first use). `on_change(kind, ns, name)` ("configmap", "secret" or
// "persistentvolumeclaim"; a PersistentVolume's change is told as its claim's) runs on informer
// threads when one changes, so pods using it are synced again (volume contents, pods waiting
// for it).
class InformerObjectSource : public ObjectSource {
 public:
  using ChangeHandler =
      std::function<void(const std::string& kind, const std::string& ns, const std::string& name)>;

  // Call before factory.Start (the Services informer is made here).
  InformerObjectSource(InformerFactory& factory, ApiClient& client, ChangeHandler on_change);

  Result<ObjectPtr> ConfigMap(const std::string& ns, const std::string& name) override;
  Result<ObjectPtr> Secret(const std::string& ns, const std::string& name) override;
  Result<ObjectPtr> PersistentVolumeClaim(const std::string& ns, const std::string& name) override;
  Result<ObjectPtr> PersistentVolume(const std::string& name) override;
  std::vector<ObjectPtr> Services(const std::string& ns) override;
  bool ServicesSynced() const { return services_.HasSynced(); }

 private:
  Result<ObjectPtr> Read(const ResourceRef& ref, const char* kind, const std::string& ns,
                         const std::string& name);
  Informer& NamespaceInformer(const ResourceRef& ref, const char* kind, const std::string& ns);

  InformerFactory& factory_;
  ApiClient& client_;
  ChangeHandler on_change_;
  Informer& services_;
  std::mutex mu_;
  std::map<std::string, Informer*> informers_;  // guarded by mu_; by "<kind>/<ns>"
};

}  // namespace orch::agent
