// The generic REST semantics of every resource on top of the datastore: create, get, list,
// update, patch, delete with Kubernetes' rules (uids, resourceVersion = store revision with
// optimistic concurrency, generation, status split, finalizers, graceful deletion, dry run).
// Per-kind behaviour comes from the ResourceType's Strategy and the admission plugins.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "encryption.h"
#include "object.h"
#include "orch/store.h"
#include "resources.h"
#include "write_stash.h"

namespace orch::api {

struct WriteOptions {
  bool dry_run = false;
  std::string field_manager;              // managedFields owner of this write
  std::string field_validation = "Warn";  // Strict | Warn | Ignore
  bool force = false;                     // server-side apply: take ownership on conflicts
  bool applied = false;  // the object comes from server-side apply, managedFields are set
  // The caller has no use for WriteOutcome::object (pods/binding answers a Status): the written
  // object goes to the watch cache without a copy, and the outcome's object stays null.
  bool discard_object = false;
};

struct WriteOutcome {
  json object;
  int code = 200;  // 201 for creates
  std::vector<std::string> warnings;
};

struct DeleteOptions {
  bool dry_run = false;
  std::optional<int64_t> grace_period_seconds;
  std::string propagation_policy;  // Background (default) | Foreground | Orphan
  std::string precondition_uid;
  std::string precondition_resource_version;
};

struct ListQuery {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;
  std::string continue_token;
  std::string resource_version;        // "" = latest, "0" = any, N
  std::string resource_version_match;  // "" | NotOlderThan | Exact
};

struct ListPage {
  std::vector<json> items;
  int64_t revision = 0;
  std::string continue_token;
};

// What admission plugins see and may change before a write is stored.
struct AdmissionRequest {
  enum class Operation { kCreate, kUpdate, kDelete };
  Operation operation = Operation::kCreate;
  const ResourceType* type = nullptr;
  std::string subresource;
  json* object = nullptr;     // the object to be stored (null for delete)
  const json* old = nullptr;  // the stored object (null for create)
  bool dry_run = false;
};

// Checks and mutations that need cluster state (namespace lifecycle, IP and port allocation).
// Admit runs before the write; Committed/Aborted let allocators keep their books exact.
class AdmissionPlugin {
 public:
  virtual ~AdmissionPlugin() = default;
  virtual std::optional<ApiError> Admit(AdmissionRequest& request) = 0;
  // The write that `request` admitted was stored (or, for Aborted, was not).
  virtual void Committed(const AdmissionRequest& /*request*/) {}
  virtual void Aborted(const AdmissionRequest& /*request*/) {}
};

class Rest {
 public:
  // `secrets` may be null (no encryption). Plugins run in order and must outlive Rest.
  Rest(Store& store, const SecretBox* secrets, std::vector<AdmissionPlugin*> plugins);

  ApiResult<json> Get(const ResourceType& type, const std::string& ns, const std::string& name);
  ApiResult<ListPage> List(const ResourceType& type, const std::string& ns, const ListQuery& query);
  ApiResult<WriteOutcome> Create(const ResourceType& type, const std::string& ns, json body,
                                 const WriteOptions& options);
  // PUT of the object (subresource "") or of its "status".
  ApiResult<WriteOutcome> Update(const ResourceType& type, const std::string& ns,
                                 const std::string& name, json body, const std::string& subresource,
                                 const WriteOptions& options);
  // PATCH with `content_type` naming the patch kind (merge, json, strategic, apply).
  ApiResult<WriteOutcome> Patch(const ResourceType& type, const std::string& ns,
                                const std::string& name, const std::string& content_type,
                                const std::string& patch, const std::string& subresource,
                                const WriteOptions& options);
  ApiResult<WriteOutcome> Delete(const ResourceType& type, const std::string& ns,
                                 const std::string& name, const DeleteOptions& options);
  // pods/binding: spec.nodeName and the PodScheduled condition in one write, retried when the
  // pod changes meanwhile (the agent or a controller writing its status); 409 when the pod is
  // bound already or being deleted.
  ApiResult<WriteOutcome> Bind(const ResourceType& pods, const std::string& ns,
                               const std::string& pod, const std::string& node,
                               const WriteOptions& options);
  // Deletes every object the query selects; answers the list of what was deleted.
  ApiResult<ListPage> DeleteCollection(const ResourceType& type, const std::string& ns,
                                       const ListQuery& query, const DeleteOptions& options);

  // Store encoding, also used by the watch cache: JSON without resourceVersion, sealed for
  // secrets.
  std::string Encode(const ResourceType& type, const json& obj) const;
  ApiResult<json> Decode(const ResourceType& type, const KeyValue& kv) const;
  // Decode without the conversion to a served version (conversion.h): what selectors see.
  ApiResult<json> DecodeStored(const ResourceType& type, const KeyValue& kv) const;

  Store& store() { return store_; }
  // The objects of this server's own writes, for the watch cache (write_stash.h).
  WriteStash& stash() { return stash_; }

 private:
  // Applies `mutate` to the stored object and writes the result with compare-and-swap,
  // retrying on conflicts unless the caller pinned a resourceVersion.
  using Mutation = std::function<ApiResult<json>(const json& current)>;
  ApiResult<WriteOutcome> GuaranteedUpdate(const ResourceType& type, const std::string& ns,
                                           const std::string& name, const std::string& subresource,
                                           const WriteOptions& options, const Mutation& mutate);
  // Everything between "the client's new object" and "store it": immutable metadata, status
  // split, generation, defaults, validation, admission. `old` null for creates.
  std::optional<ApiError> PrepareWrite(const ResourceType& type, json& obj, const json* old,
                                       const std::string& subresource, const WriteOptions& options,
                                       std::vector<std::string>& warnings);
  std::optional<ApiError> RunAdmission(AdmissionRequest& request);
  void FinishAdmission(const AdmissionRequest& request, bool committed);
  ApiResult<WriteOutcome> RemoveFromStore(const ResourceType& type, const json& current,
                                          int64_t revision, bool dry_run);

  // Encode for a write: `obj` loses its resourceVersion in place instead of being copied.
  std::string EncodeForWrite(const ResourceType& type, json& obj) const;
  // Puts a successful write's objects in the stash; `obj` is moved there when `discard`.
  void StashWrite(const ResourceType& type, const std::string& key, int64_t revision, json& obj,
                  json* prev, bool discard);

  Store& store_;
  const SecretBox* secrets_;
  std::vector<AdmissionPlugin*> plugins_;
  WriteStash stash_;
};

}  // namespace orch::api
