// Local, always-current copies of API collections for controllers, the scheduler and the agent:
// an informer lists a collection, then watches it from the list's resourceVersion, re-listing when
// the watch ends (410 Gone, errors: with back-off) and telling its handlers about every change.
// Components share informers through an InformerFactory, so each collection is watched once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "orch/api_client.h"

namespace orch {

using ObjectPtr = std::shared_ptr<const nlohmann::json>;

// Change notifications. Run on the informer's delivery thread, one at a time, in the order the
// changes happened; must return quickly (enqueue a key, do not call the API). After a re-list,
// objects that vanished meanwhile are reported deleted and changed ones updated.
struct InformerHandler {
  std::function<void(const ObjectPtr& object)> on_add;
  std::function<void(const ObjectPtr& old_object, const ObjectPtr& object)> on_update;
  std::function<void(const ObjectPtr& last_known)> on_delete;
};

// Thread-safe. Reads are served from memory and never call the API.
class Informer {
 public:
  virtual ~Informer() = default;

  // Handlers added after the first sync first get on_add for every object already known.
  virtual void AddHandler(InformerHandler handler) = 0;
  // True once the first list has been stored and delivered to the handlers, and every handler
  // added before this call is registered and has heard of every object already known.
  virtual bool HasSynced() const = 0;

  // The object "ns/name" (or "name" for cluster-scoped ones), or null.
  virtual ObjectPtr Get(const std::string& ns, const std::string& name) const = 0;
  // Every object, or those of one namespace.
  virtual std::vector<ObjectPtr> List(const std::string& ns = "") const = 0;
  // Objects whose index value (see AddIndex) equals `value`.
  virtual std::vector<ObjectPtr> ByIndex(const std::string& index,
                                         const std::string& value) const = 0;
  // Adds a secondary index, e.g. "nodeName" -> spec.nodeName, "owner" -> owner uids. Call before
  // InformerFactory::Start.
  virtual void AddIndex(const std::string& index,
                        std::function<std::vector<std::string>(const nlohmann::json&)> values) = 0;
};

// `object` reduced to apiVersion, kind and metadata without managedFields.
nlohmann::json ObjectMetadataOnly(nlohmann::json object);

// "ns/name" for namespaced objects, "name" otherwise: the key work queues carry.
std::string ObjectKey(const nlohmann::json& object);
// Splits a key made by ObjectKey into namespace ("" if none) and name.
std::pair<std::string, std::string> SplitObjectKey(const std::string& key);

struct InformerFactoryOptions {
  // Drop metadata.managedFields from every stored object (upstream's scheduler and
  // controller-manager strip them in their informers' transform): components that never read
  // them keep much less memory.
  bool drop_managed_fields = false;
  // How many informers may wait for a (re)list at the same time; at least 1.
  int list_concurrency = 4;
};

// Owns the informers of one process and the threads that run them: up to list_concurrency
// threads list, made while there are lists to make; one thread stores every list and change
// and calls every handler; watch events arrive on the client's threads.
class InformerFactory {
 public:
  virtual ~InformerFactory() = default;

  // The informer of `ref` in `ns` ("" = all namespaces) with the given selectors, created on first
  // use; the same object for the same arguments. Informers made after Start start at once.
  virtual Informer& For(const ResourceRef& ref, const std::string& ns = "",
                        const std::string& label_selector = "",
                        const std::string& field_selector = "") = 0;
  // Like For(ref), but the informer keeps only each object's apiVersion, kind and metadata
  // (without managedFields), as upstream's metadata informers do: consumers that read names and
  // ownership only (the garbage collector) then hold a fraction of the memory of whole objects.
  // If For(ref) was made already, that informer is returned instead (one list and watch, no
  // second copy): callers must read only apiVersion, kind and metadata.
  virtual Informer& ForMetadata(const ResourceRef& ref) = 0;
  virtual void Start() = 0;
  // Waits until every informer made so far has synced; false on timeout or Stop.
  virtual bool WaitForSync(std::chrono::milliseconds timeout) = 0;
  // Stops every watch and thread; no handler runs after it returns. Idempotent.
  virtual void Stop() = 0;

  static std::unique_ptr<InformerFactory> Create(ApiClient& client,
                                                 InformerFactoryOptions options = {});
};

}  // namespace orch
