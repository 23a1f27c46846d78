// OpenAPI documents of the served resources, built from their schemas: the v3 index and
// per-group-version documents kubectl reads, and the v2 document (JSON and gnostic protobuf).
//
// What kubectl 1.27-1.33 needs from these documents (read from its sources):
// - `/openapi/v3` lists every group-version as `{"paths":{"apis/apps/v1":{"serverRelativeURL":
//   "/openapi/v3/apis/apps/v1?hash=H"}}}`; the documents are fetched as application/json.
// - Server-side field validation is trusted when the PATCH operation whose
//   `x-kubernetes-group-version-kind` is the kind's lists an operation-level query parameter
//   `fieldValidation` (cli-runtime query_param_verifier_v3.go). For CRD kinds missing from v3
//   it checks core/v1 Namespace. Every PATCH operation here lists it.
// - 1.30+ `apply` computes strategic merge patches from v3 when the kind's PATCH operation's
//   requestBody accepts application/strategic-merge-patch+json: it finds the component with
//   the kind in its `x-kubernetes-group-version-kind` list and follows properties through
//   `allOf[0]`/`$ref`, reading `x-kubernetes-patch-merge-key`/`-strategy` on the property.
// - `kubectl explain` (1.27+) uses v3 by default: it finds the kind via the GET operation of
//   `/apis/G/V/<plural>` (the cluster-wide list path, present for namespaced kinds too), then
//   the component with the matching gvk. v2 is only used with `--output plaintext-openapiv2`
//   or when `/openapi/v3` fails.
// - `/openapi/v2` is always requested as protobuf
//   (Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf) and parsed as a gnostic
//   openapi_v2.Document: 1.27/1.28 fetch it on every apply/create/explain (factory Validator,
//   OpenAPISchema), 1.27-1.29 use it to compute apply's strategic merge patch. The server should
//   answer 200 with V2Protobuf() and Content-Type
//   `application/com.github.proto-openapi.spec.v2.v1.0+protobuf` (an empty body is also a valid,
//   empty document: kubectl then falls back to its compiled-in types). JSON clients get V2Json().
// - Serving: documents carry a hash; answer ETag `"<hash>"`, honour If-None-Match (304), and for
//   v3 group-versions requested with the current `?hash=` add `Cache-Control: public, immutable`
//   (upstream redirects a stale hash to the current URL with 301).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "orch/status.h"
#include "schema.h"

namespace orch::api {

// One served resource as the documents describe it. The REST layer fills these from its
// resource registry.
struct OpenApiResource {
  std::string group;  // "" for core
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;
  // Verbs as discovery lists them: get list watch create update patch delete deletecollection.
  // Empty means all eight.
  std::vector<std::string> verbs;
  struct Subresource {
    std::string name;  // status, scale, eviction, binding, log, exec, attach, portforward, ...
    // The subresource's own kind when it differs from the parent's, e.g. autoscaling/v1 Scale.
    std::string group, version, kind;
    bool own_kind = false;  // group/version/kind above are set
    // Verbs; empty means the usual ones for the name (status/scale: get update patch;
    // eviction/binding: create; log: get; exec/attach/portforward: connect).
    std::vector<std::string> verbs;
  };
  std::vector<Subresource> subresources;
  // The kind's schema and its list's. Null: looked up in the documents' SchemaSet by
  // group/version/kind (and kind + "List").
  const Schema* schema = nullptr;
  const Schema* list_schema = nullptr;
  // Built-in kinds accept strategic merge patches; custom resources do not.
  bool strategic_merge_patch = true;
  // Keeps a custom resource's SchemaSet alive as long as documents refer to it.
  std::shared_ptr<const void> owner;
};

// A generated document, immutable once made.
struct OpenApiDocument {
  std::string body;
  std::string content_type;
  std::string hash;  // uppercase hex of a stable hash of `body`
};

// "api/v1" for the core group, "apis/<group>/<version>" otherwise: the key of the v3 index.
std::string OpenApiGroupVersionPath(const std::string& group, const std::string& version);

// A stable 128-bit hash of `data` as 32 uppercase hex digits (FNV-1a based; not cryptographic,
// for caching and ETags only).
std::string OpenApiHash(std::string_view data);

// The v3 document of one group-version (`gv_path` as OpenApiGroupVersionPath gives it) for
// the resources of that group-version: paths of every operation, components.schemas with every
// type reachable from its kinds. `schemas` holds the built-in types (kinds without their own
// schema, ObjectMeta, Status, DeleteOptions, Patch, ...). NotFound when no resource is in it.
Result<json> BuildOpenApiV3(const std::vector<OpenApiResource>& resources, const SchemaSet& schemas,
                            const std::string& gv_path);

// The swagger 2.0 document of all resources (definitions + paths).
Result<json> BuildOpenApiV2(const std::vector<OpenApiResource>& resources, const SchemaSet& schemas,
                            const std::string& version);

// Encodes a swagger 2.0 JSON document (as BuildOpenApiV2 makes it) as the gnostic
// openapi_v2.Document protobuf message. Vendor extensions, defaults, enums and examples become
// Any{yaml: <JSON text>}, which is what kube-openapi parses them from.
Result<std::string> EncodeOpenApiV2Protobuf(const json& v2);

// The documents of one snapshot of the served resources, generated on first request and cached
// (a new snapshot, e.g. after a CRD change, is a new object). Thread-safe.
class OpenApiDocuments {
 public:
  static constexpr const char* kJson = "application/json";
  static constexpr const char* kV2Protobuf =
      "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

  // `schemas` must outlive this object; `version` is the server version for v2's info.version.
  OpenApiDocuments(std::vector<OpenApiResource> resources, const SchemaSet* schemas,
                   std::string version);
  OpenApiDocuments(const OpenApiDocuments&) = delete;
  OpenApiDocuments& operator=(const OpenApiDocuments&) = delete;

  // /openapi/v3. Computing it hashes every group-version document; only the hashes are kept.
  Result<std::shared_ptr<const OpenApiDocument>> V3Index() const;
  // /openapi/v3/<gv_path>; NotFound for an unknown group-version.
  Result<std::shared_ptr<const OpenApiDocument>> V3GroupVersion(const std::string& gv_path) const;
  // The current hash of a group-version document ("" if unknown), for `?hash=` checks.
  std::string V3Hash(const std::string& gv_path) const;
  // /openapi/v2 as JSON, and as the gnostic protobuf kubectl asks for.
  Result<std::shared_ptr<const OpenApiDocument>> V2Json() const;
  Result<std::shared_ptr<const OpenApiDocument>> V2Protobuf() const;

  // The group-version paths served, in order.
  std::vector<std::string> GroupVersionPaths() const;

 private:
  Result<std::shared_ptr<const OpenApiDocument>> MakeV3(const std::string& gv_path) const;
  Result<std::shared_ptr<const OpenApiDocument>> V2Locked() const;

  const std::vector<OpenApiResource> resources_;
  const SchemaSet* schemas_;
  const std::string version_;

  mutable std::mutex mu_;
  mutable std::map<std::string, std::shared_ptr<const OpenApiDocument>> v3_;  // guarded by mu_
  mutable std::map<std::string, std::string> v3_hashes_;                      // guarded by mu_
  mutable std::shared_ptr<const OpenApiDocument> index_;                      // guarded by mu_
  mutable std::shared_ptr<const OpenApiDocument> v2_json_;                    // guarded by mu_
  mutable std::shared_ptr<const OpenApiDocument> v2_proto_;                   // guarded by mu_
};

}  // namespace orch::api
