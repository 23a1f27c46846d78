// OpenAPI v2/v3 serving (openapi_service.h). Documents are generated lazily per group-version
// by OpenApiDocuments and cached until the resource set changes.
#include "openapi_service.h"

#include <mutex>

#include "openapi.h"
#include "orch/version.h"

namespace orch::api {

OpenApiResource ToOpenApiResource(const ResourceType& type) {
  OpenApiResource r;
  r.group = type.group;
  r.version = type.version;
  r.plural = type.plural;
  r.kind = type.kind;
  r.namespaced = type.namespaced;
  r.verbs = type.verbs;
  for (const Subresource& s : type.subresources) {
    OpenApiResource::Subresource sub;
    sub.name = s.name;
    sub.own_kind = !s.kind.empty();
    sub.group = s.group.empty() ? type.group : s.group;
    sub.version = s.version.empty() ? type.version : s.version;
    sub.kind = s.kind;
    sub.verbs = s.verbs;
    r.subresources.push_back(std::move(sub));
  }
  r.schema = type.schema;
  r.strategic_merge_patch = !type.crd;
  r.owner = type.owner;
  return r;
}

namespace {

class Service : public OpenApiService {
 public:
  Service(const ResourceRegistry& registry, const SchemaSet* schemas)
      : registry_(registry), schemas_(schemas) {}

  Response Serve(const Request& request) override {
    auto docs = Documents();
    Result<std::shared_ptr<const OpenApiDocument>> doc = NotFound("no such OpenAPI document");
    const std::string& path = request.path;
    if (path == "/openapi/v2" || path == "/openapi/v2/") {
      bool protobuf = request.headers.Get("accept").find("protobuf") != std::string::npos;
      doc = protobuf ? docs->V2Protobuf() : docs->V2Json();
    } else if (path == "/openapi/v3" || path == "/openapi/v3/") {
      doc = docs->V3Index();
    } else if (path.rfind("/openapi/v3/", 0) == 0) {
      doc = docs->V3GroupVersion(path.substr(std::string("/openapi/v3/").size()));
    }
    if (!doc.ok()) {
      if (doc.status().code() == StatusCode::kNotFound) {
        return {404, "text/plain; charset=utf-8", {}, "404 page not found\n"};
      }
      return ApiError::Internal(doc.status().message()).ToResponse();
    }
    const OpenApiDocument& d = **doc;
    std::string etag = "\"" + d.hash + "\"";
    Response r;
    r.content_type = d.content_type;
    r.headers.emplace_back("Etag", etag);
    bool pinned = !request.query.Get("hash").empty() && request.query.Get("hash") == d.hash;
    r.headers.emplace_back("Cache-Control", pinned ? "public, immutable, max-age=31536000"
                                                   : "no-cache, private");
    if (request.headers.Get("if-none-match") == etag) {
      r.status = 304;
      return r;
    }
    r.body = d.body;
    return r;
  }

 private:
  std::shared_ptr<const OpenApiDocuments> Documents() {
    auto current = registry_.Current();
    std::lock_guard lock(mu_);
    if (current != built_for_ || !docs_) {
      std::vector<OpenApiResource> resources;
      for (const auto& t : current->all()) resources.push_back(ToOpenApiResource(*t));
      docs_ = std::make_shared<const OpenApiDocuments>(std::move(resources), schemas_,
                                                       std::string(kKubernetesVersion));
      built_for_ = current;
    }
    return docs_;
  }

  const ResourceRegistry& registry_;
  const SchemaSet* schemas_;
  std::mutex mu_;
  std::shared_ptr<const ResourceSet> built_for_;        // guarded by mu_
  std::shared_ptr<const OpenApiDocuments> docs_;        // guarded by mu_
};

}  // namespace

std::unique_ptr<OpenApiService> NewOpenApiService(const ResourceRegistry& registry,
                                                  const SchemaSet* schemas) {
  return std::make_unique<Service>(registry, schemas);
}

}  // namespace orch::api
