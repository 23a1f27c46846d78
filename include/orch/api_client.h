// The contract between the API and everything that works through it: scheduler, controllers and
// the node agent. Two implementations: the in-process client of `orch server` (no HTTP loop-back,
// ApiServer::Client) and the HTTPS client of remote agents (src/client). Objects are JSON exactly
// as the API serves them; errors are Status values carrying the API's message.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "orch/status.h"

namespace orch {

// One collection of the API: group ("" for core), version and plural resource name.
struct ResourceRef {
  std::string group;
  std::string version;
  std::string resource;
  bool namespaced = true;

  // "/api/v1" or "/apis/<group>/<version>".
  std::string GroupVersionPath() const;
  // The collection's path: "/api/v1/namespaces/ns/pods" (ns empty: across namespaces).
  std::string CollectionPath(const std::string& ns) const;
  // The object's path, with an optional subresource ("status", "binding", "eviction", "scale").
  std::string ObjectPath(const std::string& ns, const std::string& name,
                         const std::string& subresource = "") const;
};

// The resources orch's own components use.
namespace resources {
inline const ResourceRef kNamespaces{"", "v1", "namespaces", false};
inline const ResourceRef kNodes{"", "v1", "nodes", false};
inline const ResourceRef kPods{"", "v1", "pods"};
inline const ResourceRef kServices{"", "v1", "services"};
inline const ResourceRef kEndpoints{"", "v1", "endpoints"};
inline const ResourceRef kConfigMaps{"", "v1", "configmaps"};
inline const ResourceRef kSecrets{"", "v1", "secrets"};
inline const ResourceRef kServiceAccounts{"", "v1", "serviceaccounts"};
inline const ResourceRef kEvents{"", "v1", "events"};
inline const ResourceRef kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims"};
inline const ResourceRef kPersistentVolumes{"", "v1", "persistentvolumes", false};
inline const ResourceRef kStorageClasses{"storage.k8s.io", "v1", "storageclasses", false};
inline const ResourceRef kReplicationControllers{"", "v1", "replicationcontrollers"};
inline const ResourceRef kDeployments{"apps", "v1", "deployments"};
inline const ResourceRef kReplicaSets{"apps", "v1", "replicasets"};
inline const ResourceRef kDaemonSets{"apps", "v1", "daemonsets"};
inline const ResourceRef kStatefulSets{"apps", "v1", "statefulsets"};
inline const ResourceRef kControllerRevisions{"apps", "v1", "controllerrevisions"};
inline const ResourceRef kJobs{"batch", "v1", "jobs"};
inline const ResourceRef kCronJobs{"batch", "v1", "cronjobs"};
inline const ResourceRef kLeases{"coordination.k8s.io", "v1", "leases"};
inline const ResourceRef kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices"};
inline const ResourceRef kIngresses{"networking.k8s.io", "v1", "ingresses"};
inline const ResourceRef kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets"};
}  // namespace resources

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;  // 0 = everything in one page
  std::string continue_token;
  std::string resource_version;  // "" = latest (consistent read), "0" = any cached
};

struct ObjectList {
  std::vector<nlohmann::json> items;
  std::string resource_version;  // of the list: where a watch resumes
  std::string continue_token;    // "" on the last page
};

struct WriteOptions {
  std::string field_manager;  // defaults to the client's name
  bool dry_run = false;
  bool force = false;  // server-side apply only: take over conflicting fields
};

enum class PatchType { kMerge, kJson, kStrategicMerge, kApply };

struct DeleteOptions {
  std::optional<int64_t> grace_period_seconds;
  std::string propagation_policy;  // "" (the resource's default) | Background | Foreground | Orphan
  std::string precondition_uid;
  std::string precondition_resource_version;
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark };
  Type type;
  nlohmann::json object;  // for kBookmark only metadata.resourceVersion is meaningful
  // Set instead of `object` by the in-process client: the API server's own decoded object, the
  // same one for every watcher of the change, so nobody parses it again. Immutable: never cast
  // the const away. Read the event's object through Object().
  std::shared_ptr<const nlohmann::json> shared = nullptr;
  const nlohmann::json& Object() const { return shared ? *shared : object; }
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;  // where to resume; "" = from now (no initial state)
  bool allow_bookmarks = true;
  int64_t timeout_seconds = 0;  // 0 = the server's default (minutes, randomised)
};

// A running watch. Destroying it (or calling Stop) ends the stream; after Stop returns no callback
// of this watch runs any more. A watch runs on its client's threads: destroy it before the client.
class Watch {
 public:
  virtual ~Watch() = default;
  virtual void Stop() = 0;
};

// Receives a watch's events in order, on a thread of the client's (never concurrently for one
// watch). Callbacks must return quickly: hand work to a queue.
struct WatchHandler {
  std::function<void(WatchEvent)> on_event;
  // Called once when the stream ends by itself: OK when the server closed it normally (timeout),
  // kCompacted when the resource version is too old (re-list), another error otherwise. Not called
  // after Stop.
  std::function<void(Status)> on_end;
};

// Thread-safe; one client serves every component of a process. Calls block the calling thread
// until the API answers (never a client thread: do not call from a watch callback's thread).
class ApiClient {
 public:
  virtual ~ApiClient() = default;

  virtual Result<nlohmann::json> Get(const ResourceRef& ref, const std::string& ns,
                                     const std::string& name) = 0;
  virtual Result<ObjectList> List(const ResourceRef& ref, const std::string& ns,
                                  const ListOptions& options = {}) = 0;
  // POST to the collection; `object` carries apiVersion, kind and metadata (name or generateName).
  virtual Result<nlohmann::json> Create(const ResourceRef& ref, const std::string& ns,
                                        const nlohmann::json& object,
                                        const WriteOptions& options = {}) = 0;
  // PUT of the whole object (or of a subresource, e.g. "status"); kConflict when
  // metadata.resourceVersion is stale.
  virtual Result<nlohmann::json> Update(const ResourceRef& ref, const std::string& ns,
                                        const nlohmann::json& object,
                                        const std::string& subresource = "",
                                        const WriteOptions& options = {}) = 0;
  virtual Result<nlohmann::json> Patch(const ResourceRef& ref, const std::string& ns,
                                       const std::string& name, PatchType type,
                                       const std::string& patch,
                                       const std::string& subresource = "",
                                       const WriteOptions& options = {}) = 0;
  // The object as it is after the call (with deletionTimestamp when finalizers or a grace period
  // delay its removal), or null JSON when it is gone at once.
  virtual Result<nlohmann::json> Delete(const ResourceRef& ref, const std::string& ns,
                                        const std::string& name,
                                        const DeleteOptions& options = {}) = 0;
  // POST of `body` to a subresource that is not the object itself: pods/binding, pods/eviction.
  virtual Result<nlohmann::json> Post(const ResourceRef& ref, const std::string& ns,
                                      const std::string& name, const std::string& subresource,
                                      const nlohmann::json& body) = 0;
  // Starts a watch of the collection; the first events may arrive before this returns.
  virtual Result<std::unique_ptr<Watch>> StartWatch(const ResourceRef& ref, const std::string& ns,
                                                    const WatchOptions& options,
                                                    WatchHandler handler) = 0;
};

// The HTTPS client of remote agents and tools (src/client): keep-alive connections for calls,
// one long-lived stream per watch, all on a small fixed set of I/O threads.
struct HttpsClientOptions {
  std::string server_url;  // https://host:port
  std::string ca_pem;      // the cluster CA the server's certificate must chain to
  std::string cert_pem;    // client certificate and key (PEM); or a bearer token
  std::string key_pem;
  std::string bearer_token;
  std::string user_agent = "orch";
  std::string field_manager = "orch";  // WriteOptions::field_manager when left empty
  std::chrono::seconds request_timeout{30};
};
// Fails only on unusable options (bad URL or PEM); the server is contacted lazily.
Result<std::unique_ptr<ApiClient>> NewHttpsApiClient(const HttpsClientOptions& options);

// How an API error becomes a Status, in both clients: 404 kNotFound, 409 with reason
// AlreadyExists kAlreadyExists, other 409 kConflict, 410 kCompacted, 400/401/403/405/415/422
// kInvalidArgument, 413 kTooLarge, 429/5xx and transport failures kUnavailable, others kInternal.
// The message is the API Status's message.
inline Status StatusFromApiError(int http_code, const std::string& reason,
                                 const std::string& message) {
  switch (http_code) {
    case 404: return NotFound(message);
    case 409: return reason == "AlreadyExists" ? AlreadyExists(message) : Conflict(message);
    case 410: return Compacted(message);
    case 413: return TooLarge(message);
    case 400: case 401: case 403: case 405: case 406: case 415: case 422:
      return InvalidArgument(message);
    default:
      if (http_code == 0 || http_code == 429 || http_code >= 500) return Unavailable(message);
      return Internal(message);
  }
}

inline std::string ResourceRef::GroupVersionPath() const {
  return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

inline std::string ResourceRef::CollectionPath(const std::string& ns) const {
  std::string path = GroupVersionPath();
  if (namespaced && !ns.empty()) path += "/namespaces/" + ns;
  return path + "/" + resource;
}

inline std::string ResourceRef::ObjectPath(const std::string& ns, const std::string& name,
                                           const std::string& subresource) const {
  std::string path = CollectionPath(ns) + "/" + name;
  if (!subresource.empty()) path += "/" + subresource;
  return path;
}

}  // namespace orch
