// Routing and encoding of API requests (api_handler.h): paths to verbs, query parameters to
// options, results to JSON, Tables or watch streams, errors to Status.
#include "api_handler.h"

#include <fmt/format.h>

#include "discovery.h"
#include "eviction.h"
#include "orch/log.h"
#include "orch/node_link.h"
#include "orch/version.h"
#include "patch.h"
#include "tables.h"

namespace orch::api {
namespace {

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

Response JsonResponse(const json& body, int code = 200) {
  Response r;
  r.status = code;
  r.body = body.dump();
  return r;
}

bool WantsTable(const std::string& accept) {
  return accept.find("as=Table") != std::string::npos;
}

bool WantsPartialMetadata(const std::string& accept) {
  return accept.find("as=PartialObjectMetadata") != std::string::npos;
}

json PartialMetadata(const json& obj) {
  return {{"kind", "PartialObjectMetadata"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", obj.contains("metadata") ? obj["metadata"] : json::object()}};
}

// The verb name RBAC and metrics use.
std::string VerbOf(const std::string& method, bool has_name, bool watch) {
  if (watch) return "watch";
  if (method == "GET" || method == "HEAD") return has_name ? "get" : "list";
  if (method == "POST") return "create";
  if (method == "PUT") return "update";
  if (method == "PATCH") return "patch";
  if (method == "DELETE") return has_name ? "delete" : "deletecollection";
  return method;
}

// Records the request in metrics when the response is sent or the stream starts.
class MeteredWriter : public ResponseWriter {
 public:
  MeteredWriter(std::shared_ptr<ResponseWriter> inner, Metrics& metrics, std::string verb,
                std::string resource)
      : inner_(std::move(inner)),
        metrics_(metrics),
        verb_(std::move(verb)),
        resource_(std::move(resource)),
        start_(std::chrono::steady_clock::now()) {
    metrics_.AddInFlight(1);
  }
  ~MeteredWriter() override {
    if (!recorded_) metrics_.AddInFlight(-1);
  }
  void Send(Response response) override {
    Record(response.status);
    inner_->Send(std::move(response));
  }
  void StartStream(int status, std::string content_type,
                   std::vector<std::pair<std::string, std::string>> headers) override {
    Record(status);
    inner_->StartStream(status, std::move(content_type), std::move(headers));
  }
  bool Write(std::string chunk) override { return inner_->Write(std::move(chunk)); }
  bool TakesObjects() const override { return inner_->TakesObjects(); }
  bool WriteEvent(const char* type, std::shared_ptr<const json> object) override {
    return inner_->WriteEvent(type, std::move(object));
  }
  void End() override { inner_->End(); }
  void OnClose(std::function<void()> callback) override { inner_->OnClose(std::move(callback)); }
  std::shared_ptr<RawConnection> TakeConnection() override {
    auto conn = inner_->TakeConnection();
    if (conn) Record(101);  // the stream's own answer passes through unseen
    return conn;
  }

 private:
  void Record(int code) {
    if (recorded_.exchange(true)) return;
    metrics_.AddInFlight(-1);
    metrics_.ObserveRequest(
        verb_, resource_, code,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  std::shared_ptr<ResponseWriter> inner_;
  Metrics& metrics_;
  std::string verb_, resource_;
  std::chrono::steady_clock::time_point start_;
  std::atomic<bool> recorded_{false};
};

std::string ParseDryRun(const Query& q, bool* dry_run) {
  *dry_run = false;
  for (const std::string& v : q.GetAll("dryRun")) {
    if (v == "All") {
      *dry_run = true;
    } else if (!v.empty()) {
      return fmt::format("Invalid dry run value: {}", v);
    }
  }
  return "";
}

// The field manager upstream derives from the User-Agent when none is given:
// "kubectl/v1.32.4 (linux/amd64) kubernetes/..." -> "kubectl".
std::string DefaultFieldManager(const Request& request) {
  std::string agent = request.headers.Get("user-agent");
  auto slash = agent.find('/');
  std::string prefix = agent.substr(0, slash);
  return prefix.empty() ? "unknown" : prefix.substr(0, 128);
}

// The Table for `kubectl get`: a CRD version's printer columns, else the kind's columns.
Result<json> ToTable(const ResourceType& type, const std::vector<const json*>& items,
                     const std::string& include_param) {
  auto include = ParseIncludeObject(include_param);
  if (!include.ok()) return include.status();
  auto now = std::chrono::system_clock::now();
  if (type.crd && type.crd_version.contains("additionalPrinterColumns")) {
    return BuildCustomResourceTable(type.crd_version["additionalPrinterColumns"], items, *include,
                                    now);
  }
  if (type.converter != nullptr) {
    // Upstream prints every version of a kind with the same columns: the stored version's.
    std::vector<json> stored;
    stored.reserve(items.size());
    for (const json* item : items) stored.push_back(type.converter->ToStorage(*item));
    std::vector<const json*> pointers;
    for (const json& item : stored) pointers.push_back(&item);
    auto table = BuildTable(type.plural, type.group, pointers, *include, now);
    if (table.ok() && *include == IncludeObject::kObject) {
      for (size_t i = 0; i < items.size(); ++i) (*table)["rows"][i]["object"] = *items[i];
    }
    return table;
  }
  return BuildTable(type.plural, type.group, items, *include, now);
}

}  // namespace

struct ApiHandler::Route {
  std::string group, version, ns, plural, name, subresource;
  bool watch_prefix = false;
};

ApiResult<json> ApiHandler::ParseRequestBody(const Request& request, const std::string& group,
                                             const std::string& version, const std::string& kind,
                                             bool custom_resource) const {
  // Custom resources have no protobuf form: upstream answers 415 too.
  const SchemaSet* schemas = custom_resource ? nullptr : options_.schemas;
  const Schema* expected = schemas != nullptr ? schemas->FindKind(group, version, kind) : nullptr;
  return ParseBody(request.body, request.headers.Get("content-type"), schemas, expected);
}

ApiHandler::ApiHandler(ApiHandlerOptions options, ResourceRegistry& registry, Rest& rest,
                       WatchCache& cache, const Authenticator& authenticator,
                       const Authorizer& authorizer, OpenApiService* openapi, Metrics& metrics)
    : options_(std::move(options)),
      registry_(registry),
      rest_(rest),
      cache_(cache),
      authenticator_(authenticator),
      authorizer_(authorizer),
      openapi_(openapi),
      metrics_(metrics) {}

void ApiHandler::Serve(Request request, std::shared_ptr<ResponseWriter> writer) {
  const std::string& path = request.path;
  // Health, version and the CA bundle need no credentials (load balancers and joining agents).
  if (path == "/healthz" || path == "/livez" || path.rfind("/healthz/", 0) == 0 ||
      path.rfind("/livez/", 0) == 0) {
    return writer->Send({200, "text/plain; charset=utf-8", {}, "ok"});
  }
  if (path == "/readyz" || path.rfind("/readyz/", 0) == 0) {
    if (!ready_) return writer->Send({500, "text/plain; charset=utf-8", {}, "not ready"});
    // Like upstream's etcd check: a server whose datastore does not answer is not ready (the
    // store bounds the call, so this answers within seconds).
    if (auto revision = rest_.store().CurrentRevision(); !revision.ok()) {
      return writer->Send({500, "text/plain; charset=utf-8", {},
                           "[-]etcd failed: " + revision.status().message() +
                               "\nreadyz check failed"});
    }
    return writer->Send({200, "text/plain; charset=utf-8", {}, "ok"});
  }
  if (path == "/version" || path == "/version/") {
    std::string version = kKubernetesVersion;
    std::string minor = version.substr(version.find('.') + 1);
    minor = minor.substr(0, minor.find('.'));
    return writer->Send(JsonResponse({{"major", "1"},
                                      {"minor", minor},
                                      {"gitVersion", version + "+orch"},
                                      {"gitCommit", kGitCommit},
                                      {"gitTreeState", "clean"},
                                      {"buildDate", "1970-01-01T00:00:00Z"},
                                      {"goVersion", "n/a"},
                                      {"compiler", "gcc"},
                                      {"platform", "linux/amd64"}}));
  }
  if (path == "/cacerts") {
    return writer->Send({200, "text/plain; charset=utf-8", {}, options_.ca_bundle_pem});
  }
  auto user = authenticator_.Authenticate(request);
  // Agents open their links with their node certificates, checked by the link registry.
  if (path == link::kConnectPath && options_.node_links != nullptr) {
    return options_.node_links->ServeConnect(request, writer);
  }
  // Joining servers too; the server role checks their token.
  if (path.rfind("/v1-orch/server/", 0) == 0 && options_.server_join) {
    std::string bearer = request.headers.Get("authorization");
    bearer = bearer.rfind("Bearer ", 0) == 0 ? bearer.substr(7) : "";
    ServerJoinResponse answer = options_.server_join({request.method, path, bearer});
    return writer->Send({answer.status, "application/json", {}, answer.body});
  }
  // Joining nodes authenticate with the join token itself, checked by the signer.
  if (path.rfind(kNodeJoinPrefix, 0) == 0 && options_.node_signer != nullptr) {
    return writer->Send(options_.node_signer->Serve(request, user.has_value()));
  }
  if (!user) return writer->Send(ApiError::Unauthorized().ToResponse());
  ServeAs(*user, std::move(request), std::move(writer));
}

void ApiHandler::ServeAs(const UserInfo& user, Request request,
                         std::shared_ptr<ResponseWriter> raw_writer) {
  const std::string path = request.path;
  auto parts = SplitPath(path);
  auto resources = registry_.Current();
  const std::string accept = request.headers.Get("accept");

  if (path == "/metrics") {
    return raw_writer->Send(
        {200, "text/plain; version=0.0.4", {}, metrics_.Render(cache_.WatcherCount())});
  }
  if (options_.service_account_tokens != nullptr) {
    if (path == "/.well-known/openid-configuration") {
      return raw_writer->Send(JsonResponse(options_.service_account_tokens->OpenIdConfiguration(
          "https://" + options_.server_address)));
    }
    if (path == "/openid/v1/jwks") {
      Response r = JsonResponse(options_.service_account_tokens->Jwks());
      r.content_type = "application/jwk-set+json";
      return raw_writer->Send(std::move(r));
    }
  }
  if (!parts.empty() && parts[0] == "openapi") {
    if (openapi_ == nullptr) {
      return raw_writer->Send(ApiError::NotFound("openapi", path).ToResponse());
    }
    return raw_writer->Send(openapi_->Serve(request));
  }

  Route route;
  size_t rest_at = 0;
  if (!parts.empty() && parts[0] == "api") {
    if (parts.size() == 1) {
      std::string v = AggregatedDiscoveryVersion(accept);
      if (!v.empty()) {
        Response r = JsonResponse(AggregatedDiscovery(*resources, true, "apidiscovery.k8s.io/" + v));
        r.content_type = "application/json;g=apidiscovery.k8s.io;v=" + v + ";as=APIGroupDiscoveryList";
        return raw_writer->Send(std::move(r));
      }
      return raw_writer->Send(JsonResponse(ApiVersions(options_.server_address)));
    }
    route.version = parts[1];
    rest_at = 2;
  } else if (!parts.empty() && parts[0] == "apis") {
    if (parts.size() == 1) {
      std::string v = AggregatedDiscoveryVersion(accept);
      if (!v.empty()) {
        Response r =
            JsonResponse(AggregatedDiscovery(*resources, false, "apidiscovery.k8s.io/" + v));
        r.content_type = "application/json;g=apidiscovery.k8s.io;v=" + v + ";as=APIGroupDiscoveryList";
        return raw_writer->Send(std::move(r));
      }
      return raw_writer->Send(JsonResponse(ApiGroupList(*resources)));
    }
    route.group = parts[1];
    if (parts.size() == 2) {
      json group = ApiGroup(*resources, route.group);
      if (group.is_null()) {
        return raw_writer->Send(ApiError{404, "NotFound", "the server could not find the requested resource", json()}.ToResponse());
      }
      return raw_writer->Send(JsonResponse(group));
    }
    route.version = parts[2];
    rest_at = 3;
  } else {
    return raw_writer->Send({404, "text/plain; charset=utf-8", {}, "404 page not found\n"});
  }

  std::vector<std::string> rest(parts.begin() + rest_at, parts.end());
  if (rest.empty()) {
    json list = ApiResourceList(*resources, route.group, route.version);
    if (list.is_null()) {
      return raw_writer->Send(ApiError{404, "NotFound", "the server could not find the requested resource", json()}.ToResponse());
    }
    return raw_writer->Send(JsonResponse(list));
  }
  if (rest[0] == "watch") {
    route.watch_prefix = true;
    rest.erase(rest.begin());
  }
  // namespaces/{ns}/{plural}/... unless it is the namespace's own subresource.
  if (rest.size() >= 3 && rest[0] == "namespaces" &&
      !(route.group.empty() && rest.size() == 3 &&
        (rest[2] == "status" || rest[2] == "finalize"))) {
    route.ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  if (rest.empty() || rest.size() > 3) {
    return raw_writer->Send(ApiError{404, "NotFound", "the server could not find the requested resource", json()}.ToResponse());
  }
  route.plural = rest[0];
  if (rest.size() >= 2) route.name = rest[1];
  if (rest.size() == 3) route.subresource = rest[2];

  bool watch = route.watch_prefix || request.query.IsTrue("watch");
  std::string verb = VerbOf(request.method, !route.name.empty(), watch);
  std::string metric_resource =
      route.subresource.empty() ? route.plural : route.plural + "/" + route.subresource;
  auto writer = std::make_shared<MeteredWriter>(std::move(raw_writer), metrics_, verb,
                                                metric_resource);

  RequestAttributes attributes;
  attributes.verb = verb;
  attributes.group = route.group;
  attributes.version = route.version;
  attributes.resource = route.plural;
  attributes.subresource = route.subresource;
  attributes.ns = route.ns;
  attributes.name = route.name;
  attributes.resource_request = true;
  std::string denied = authorizer_.Authorize(user, attributes);
  if (!denied.empty()) return writer->Send(ApiError::Forbidden(denied).ToResponse());

  try {
    ServeResource(user, request, route, writer);
  } catch (const std::exception& e) {
    log::Error("apiserver", "{} {}: {}", request.method, request.target, e.what());
    writer->Send(ApiError::Internal(e.what()).ToResponse());
  }
}

Response ApiHandler::Encode(const Request& request, const ResourceType& type, json object,
                            int code, const std::vector<std::string>& warnings) {
  const std::string accept = request.headers.Get("accept");
  json body;
  if (WantsTable(accept) && object.value("kind", "") == type.kind) {
    std::vector<const json*> items = {&object};
    auto table = ToTable(type, items, request.query.Get("includeObject", "Metadata"));
    body = table.ok() ? std::move(*table) : std::move(object);
  } else if (WantsPartialMetadata(accept)) {
    body = PartialMetadata(object);
  } else {
    body = std::move(object);
  }
  Response r = JsonResponse(body, code);
  for (const std::string& w : warnings) {
    r.headers.emplace_back("Warning", "299 - " + json(w).dump());
  }
  return r;
}

Response ApiHandler::EncodeList(const Request& request, const ResourceType& type, ListPage page) {
  const std::string accept = request.headers.Get("accept");
  json meta = {{"resourceVersion", std::to_string(page.revision)}};
  if (!page.continue_token.empty()) meta["continue"] = page.continue_token;
  if (WantsTable(accept)) {
    std::vector<const json*> items;
    items.reserve(page.items.size());
    for (const json& item : page.items) items.push_back(&item);
    auto table = ToTable(type, items, request.query.Get("includeObject", "Metadata"));
    if (table.ok()) {
      (*table)["metadata"] = meta;
      return JsonResponse(*table);
    }
  }
  if (WantsPartialMetadata(accept)) {
    json items = json::array();
    for (const json& item : page.items) items.push_back(PartialMetadata(item));
    return JsonResponse({{"kind", "PartialObjectMetadataList"},
                         {"apiVersion", "meta.k8s.io/v1"},
                         {"metadata", meta},
                         {"items", items}});
  }
  // Lists are assembled as text: items are already JSON objects and may be many.
  std::string body = fmt::format(R"({{"kind":"{}List","apiVersion":"{}","metadata":{},"items":[)",
                                 type.kind, type.GroupVersion(), meta.dump());
  for (size_t i = 0; i < page.items.size(); ++i) {
    if (i > 0) body.push_back(',');
    body += page.items[i].dump();
  }
  body += "]}";
  return {200, "application/json", {}, std::move(body)};
}

void ApiHandler::ServeResource(const UserInfo& user, Request& request, Route& route,
                               std::shared_ptr<ResponseWriter> writer) {
  (void)user;
  auto resources = registry_.Current();
  const ResourceType* type = resources->Find(route.group, route.version, route.plural);
  if (type == nullptr) {
    return writer->Send(ApiError{404, "NotFound", "the server could not find the requested resource", json()}.ToResponse());
  }
  // Keep the resource set (and so `type`) alive while serving.
  std::shared_ptr<const ResourceSet> hold = resources;
  if (!type->namespaced && !route.ns.empty()) {
    return writer->Send(ApiError{404, "NotFound", "the server could not find the requested resource", json()}.ToResponse());
  }
  if (type->namespaced && route.ns.empty() && !route.name.empty()) {
    return writer->Send(ApiError{404, "NotFound", "the server could not find the requested resource", json()}.ToResponse());
  }
  if (!route.subresource.empty() && type->FindSubresource(route.subresource) == nullptr) {
    return writer->Send(ApiError{404, "NotFound", "the server could not find the requested resource", json()}.ToResponse());
  }

  const Query& q = request.query;
  const std::string& method = request.method;
  bool watch = route.watch_prefix || q.IsTrue("watch");

  WriteOptions write;
  if (std::string bad = ParseDryRun(q, &write.dry_run); !bad.empty()) {
    return writer->Send(ApiError::BadRequest(bad).ToResponse());
  }
  write.field_manager = q.Get("fieldManager");
  if (write.field_manager.empty() && method != "PATCH") write.field_manager = DefaultFieldManager(request);
  write.field_validation = q.Get("fieldValidation", "Warn");
  if (write.field_validation != "Strict" && write.field_validation != "Warn" &&
      write.field_validation != "Ignore") {
    return writer->Send(ApiError::BadRequest(fmt::format(
        "fieldValidation parameter unsupported: {}", write.field_validation)).ToResponse());
  }
  write.force = q.IsTrue("force");

  // Subresources with their own shapes.
  if (route.subresource == "scale") return ServeScale(request, *type, route.ns, route.name, writer);
  if (route.subresource == "binding" || (route.plural == "bindings" && method == "POST")) {
    return ServeBinding(request, *type, route.ns, route.name, writer);
  }
  if (route.subresource == "eviction") {
    return ServeEviction(request, *type, route.ns, route.name, writer);
  }
  if (route.subresource == "token" && route.group.empty() && route.plural == "serviceaccounts" &&
      options_.service_account_tokens != nullptr) {
    return ServeTokenRequest(request, route.ns, route.name, writer);
  }
  if (options_.pod_streams != nullptr && route.group.empty() && route.plural == "pods" &&
      (route.subresource == "log" || route.subresource == "exec" ||
       route.subresource == "attach" || route.subresource == "portforward")) {
    return options_.pod_streams->Serve(request, *type, route.ns, route.name, route.subresource,
                                       writer);
  }
  if (!route.subresource.empty() && route.subresource != "status" &&
      route.subresource != "finalize") {
    return writer->Send(ApiError::MethodNotAllowed(fmt::format(
        "the server does not allow this method on the requested resource ({}/{})", route.plural,
        route.subresource)).ToResponse());
  }

  if ((method == "GET" || method == "HEAD") && !route.name.empty() && !watch) {
    auto obj = rest_.Get(*type, route.ns, route.name);
    if (!obj.ok()) return writer->Send(obj.error().ToResponse());
    return writer->Send(Encode(request, *type, std::move(*obj), 200));
  }
  if (method == "GET" && watch) {
    return ServeWatch(request, *type, route.ns, route.name, writer);
  }
  ListQuery list;
  list.label_selector = q.Get("labelSelector");
  list.field_selector = q.Get("fieldSelector");
  list.continue_token = q.Get("continue");
  list.resource_version = q.Get("resourceVersion");
  list.resource_version_match = q.Get("resourceVersionMatch");
  if (q.Has("limit")) {
    try {
      list.limit = std::stoll(q.Get("limit"));
    } catch (...) {
      return writer->Send(ApiError::BadRequest("limit must be an integer").ToResponse());
    }
  }
  if (method == "GET") {
    auto page = rest_.List(*type, route.ns, list);
    if (!page.ok()) return writer->Send(page.error().ToResponse());
    return writer->Send(EncodeList(request, *type, std::move(*page)));
  }

  if (method == "POST" && route.name.empty()) {
    auto body = ParseRequestBody(request, type->group, type->version, type->kind, type->crd);
    if (!body.ok()) return writer->Send(body.error().ToResponse());
    auto created = rest_.Create(*type, route.ns, std::move(*body), write);
    if (!created.ok()) return writer->Send(created.error().ToResponse());
    return writer->Send(
        Encode(request, *type, std::move(created->object), created->code, created->warnings));
  }
  if (method == "PUT" && !route.name.empty()) {
    auto body = ParseRequestBody(request, type->group, type->version, type->kind, type->crd);
    if (!body.ok()) return writer->Send(body.error().ToResponse());
    std::string sub = route.subresource == "finalize" ? "" : route.subresource;
    auto updated = rest_.Update(*type, route.ns, route.name, std::move(*body), sub, write);
    if (!updated.ok()) return writer->Send(updated.error().ToResponse());
    return writer->Send(Encode(request, *type, std::move(updated->object), 200, updated->warnings));
  }
  if (method == "PATCH" && !route.name.empty()) {
    std::string content_type = request.headers.Get("content-type");
    if (write.field_manager.empty() && content_type.find("apply-patch") == std::string::npos) {
      write.field_manager = DefaultFieldManager(request);
    }
    auto patched = rest_.Patch(*type, route.ns, route.name, content_type, request.body,
                               route.subresource, write);
    if (!patched.ok()) return writer->Send(patched.error().ToResponse());
    return writer->Send(
        Encode(request, *type, std::move(patched->object), patched->code, patched->warnings));
  }
  if (method == "DELETE") {
    DeleteOptions del;
    json body;
    if (!request.body.empty()) {
      auto parsed = ParseRequestBody(request, "", "v1", "DeleteOptions");
      if (!parsed.ok()) return writer->Send(parsed.error().ToResponse());
      body = std::move(*parsed);
      if (!body.is_object()) {
        return writer->Send(ApiError::BadRequest("DeleteOptions must be an object").ToResponse());
      }
    }
    if (body.is_object()) {
      if (body.contains("gracePeriodSeconds") && body["gracePeriodSeconds"].is_number_integer()) {
        del.grace_period_seconds = body["gracePeriodSeconds"].get<int64_t>();
      }
      if (body.contains("propagationPolicy") && body["propagationPolicy"].is_string()) {
        del.propagation_policy = body["propagationPolicy"].get<std::string>();
      }
      if (body.contains("orphanDependents") && body["orphanDependents"].is_boolean()) {
        del.propagation_policy = body["orphanDependents"].get<bool>() ? "Orphan" : "Background";
      }
      if (body.contains("preconditions") && body["preconditions"].is_object()) {
        del.precondition_uid = body["preconditions"].value("uid", "");
        del.precondition_resource_version = body["preconditions"].value("resourceVersion", "");
      }
      if (body.contains("dryRun") && body["dryRun"].is_array()) {
        for (const json& v : body["dryRun"]) {
          if (v == "All") del.dry_run = true;
        }
      }
    }
    if (q.Has("gracePeriodSeconds")) {
      try {
        del.grace_period_seconds = std::stoll(q.Get("gracePeriodSeconds"));
      } catch (...) {
        return writer->Send(ApiError::BadRequest("gracePeriodSeconds must be an integer").ToResponse());
      }
    }
    if (q.Has("propagationPolicy")) del.propagation_policy = q.Get("propagationPolicy");
    if (!del.propagation_policy.empty() && del.propagation_policy != "Background" &&
        del.propagation_policy != "Foreground" && del.propagation_policy != "Orphan") {
      return writer->Send(ApiError::BadRequest(fmt::format(
          "propagationPolicy: Unsupported value: \"{}\": supported values: \"Foreground\", "
          "\"Background\", \"Orphan\"", del.propagation_policy)).ToResponse());
    }
    del.dry_run = del.dry_run || write.dry_run;
    if (route.name.empty()) {
      auto deleted = rest_.DeleteCollection(*type, route.ns, list, del);
      if (!deleted.ok()) return writer->Send(deleted.error().ToResponse());
      return writer->Send(EncodeList(request, *type, std::move(*deleted)));
    }
    auto deleted = rest_.Delete(*type, route.ns, route.name, del);
    if (!deleted.ok()) return writer->Send(deleted.error().ToResponse());
    return writer->Send(Encode(request, *type, std::move(deleted->object), 200));
  }
  writer->Send(ApiError::MethodNotAllowed(fmt::format(
      "the server does not allow this method on the requested resource")).ToResponse());
}

void ApiHandler::ServeWatch(Request& request, const ResourceType& type, const std::string& ns,
                            const std::string& name, std::shared_ptr<ResponseWriter> writer) {
  const Query& q = request.query;
  WatchFilter filter;
  filter.ns = ns;
  filter.name = name;
  auto labels = LabelSelector::Parse(q.Get("labelSelector"));
  if (!labels.ok()) return writer->Send(ApiError::BadRequest(labels.status().message()).ToResponse());
  filter.labels = std::move(*labels);
  auto fields = FieldSelector::Parse(q.Get("fieldSelector"), type.field_rules);
  if (!fields.ok()) return writer->Send(ApiError::BadRequest(fields.status().message()).ToResponse());
  if (auto exact = fields->RequiresExactMatch("metadata.name")) filter.name = *exact;
  if (auto exact = fields->RequiresExactMatch("metadata.namespace")) {
    if (!filter.ns.empty() && filter.ns != *exact) filter.name = "\x01";  // matches nothing
    filter.ns = *exact;
  }
  filter.fields = std::move(*fields);
  filter.bookmarks = q.IsTrue("allowWatchBookmarks");
  // Like upstream, a watch without a timeout ends after a random 30 to 60 minutes, so that
  // clients spread their reconnections.
  int64_t timeout = 1800 + static_cast<int64_t>(std::hash<std::string>{}(request.remote_address) % 1800);
  if (q.Has("timeoutSeconds")) {
    try {
      timeout = std::stoll(q.Get("timeoutSeconds"));
    } catch (...) {
      return writer->Send(ApiError::BadRequest("timeoutSeconds must be an integer").ToResponse());
    }
  }
  filter.timeout = std::chrono::seconds(std::max<int64_t>(timeout, 1));

  std::string rv = q.Get("resourceVersion");
  bool send_initial = q.Has("sendInitialEvents") ? q.IsTrue("sendInitialEvents")
                                                 : (rv.empty() || rv == "0");
  int64_t after = 0;
  std::vector<json> initial;
  if (!send_initial) {
    if (rv.empty() || rv == "0") {
      after = cache_.Revision();
    } else {
      try {
        after = std::stoll(rv);
      } catch (...) {
        return writer->Send(ApiError::BadRequest("resourceVersion must be an integer").ToResponse());
      }
    }
  } else {
    // The current state first (as ADDED events), then every change after it.
    ListQuery list;
    list.label_selector = q.Get("labelSelector");
    list.field_selector = q.Get("fieldSelector");
    auto page = rest_.List(type, filter.ns, list);
    if (!page.ok()) return writer->Send(page.error().ToResponse());
    after = page->revision;
    for (json& item : page->items) {
      if (!filter.name.empty() && Name(item) != filter.name) continue;
      initial.push_back(std::move(item));
    }
  }

  const bool table = WantsTable(request.headers.Get("accept"));
  const std::string include = q.Get("includeObject", "Metadata");
  const ResourceType* type_ptr = &type;
  auto frame = [type_ptr, table, include](const char* event_type, const json* obj,
                                          const std::string* text) {
    if (table && obj != nullptr && (std::string(event_type) != "ERROR") &&
        (std::string(event_type) != "BOOKMARK")) {
      std::vector<const json*> items = {obj};
      auto t = ToTable(*type_ptr, items, include);
      if (t.ok()) {
        return fmt::format(R"({{"type":"{}","object":{}}})", event_type, t->dump()) + "\n";
      }
    }
    return fmt::format(R"({{"type":"{}","object":{}}})", event_type, text ? *text : obj->dump()) +
           "\n";
  };

  // An in-process watcher takes the decoded objects themselves, unless it asked for a table.
  const bool objects = !table && writer->TakesObjects();
  writer->StartStream(200, "application/json");
  for (json& item : initial) {
    if (objects) {
      if (!writer->WriteEvent("ADDED", std::make_shared<const json>(std::move(item)))) return;
    } else if (!writer->Write(frame("ADDED", &item, nullptr))) {
      return;
    }
  }
  if (send_initial && q.Has("sendInitialEvents") && filter.bookmarks) {
    json mark = {{"kind", type.kind},
                 {"apiVersion", type.GroupVersion()},
                 {"metadata",
                  {{"resourceVersion", std::to_string(after)},
                   {"annotations", {{"k8s.io/initial-events-end", "true"}}}}}};
    if (!writer->Write(frame("BOOKMARK", &mark, nullptr))) return;
  }
  auto subscription = cache_.Subscribe(
      type, std::move(filter), after,
      [writer, frame, objects, converter = type.converter](const WatchEvent& e) {
        const bool error = e.type == WatchEvent::Type::kError;
        if (converter != nullptr && !error && e.object) {
          // The cache holds the stored version; this watch is of another served version.
          json served = converter->FromStorage(*e.object);
          if (objects) {
            return writer->WriteEvent(WatchEventTypeName(e.type),
                                      std::make_shared<const json>(std::move(served)));
          }
          return writer->Write(frame(WatchEventTypeName(e.type), &served, nullptr));
        }
        if (objects && !error && e.object) {
          return writer->WriteEvent(WatchEventTypeName(e.type), e.object);
        }
        return writer->Write(frame(WatchEventTypeName(e.type), e.object.get(), e.text.get()));
      },
      [writer] { writer->End(); });
  if (!subscription.ok()) {
    json status = subscription.error().ToStatus();
    writer->Write(frame("ERROR", &status, nullptr));
    writer->End();
    return;
  }
  std::shared_ptr<WatchCache::Subscription> sub = *subscription;
  writer->OnClose([sub] { sub->Cancel(); });
}

void ApiHandler::ServeScale(Request& request, const ResourceType& type, const std::string& ns,
                            const std::string& name, std::shared_ptr<ResponseWriter> writer) {
  auto to_scale = [&type](const json& obj) {
    json selector = obj.contains("spec") ? obj["spec"].value("selector", json()) : json();
    std::string selector_text;
    if (selector.is_object() && (selector.contains("matchLabels") || selector.contains("matchExpressions"))) {
      selector_text = FormatLabelSelector(selector);
    } else if (selector.is_object()) {
      selector_text = FormatLabels(selector);  // ReplicationController: a plain map
    }
    json meta = {{"name", Name(obj)},
                 {"namespace", Namespace(obj)},
                 {"uid", Uid(obj)},
                 {"resourceVersion", MetaString(obj, "resourceVersion")},
                 {"creationTimestamp", MetaString(obj, "creationTimestamp")}};
    int64_t spec_replicas = obj.contains("spec") ? obj["spec"].value("replicas", int64_t{1}) : 1;
    int64_t status_replicas = obj.contains("status") ? obj["status"].value("replicas", int64_t{0}) : 0;
    json scale = {{"kind", "Scale"},
                  {"apiVersion", "autoscaling/v1"},
                  {"metadata", meta},
                  {"spec", {{"replicas", spec_replicas}}},
                  {"status", {{"replicas", status_replicas}}}};
    if (!selector_text.empty()) scale["status"]["selector"] = selector_text;
    (void)type;
    return scale;
  };
  if (request.method == "GET") {
    auto obj = rest_.Get(type, ns, name);
    if (!obj.ok()) return writer->Send(obj.error().ToResponse());
    return writer->Send(JsonResponse(to_scale(*obj)));
  }
  if (request.method != "PUT" && request.method != "PATCH") {
    return writer->Send(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource").ToResponse());
  }
  WriteOptions write;
  (void)ParseDryRun(request.query, &write.dry_run);
  write.field_manager = request.query.Get("fieldManager", DefaultFieldManager(request));
  // Read the current object, compute the new Scale, write spec.replicas through a merge patch
  // so the usual update path (and its conflicts) applies.
  auto current = rest_.Get(type, ns, name);
  if (!current.ok()) return writer->Send(current.error().ToResponse());
  json scale = to_scale(*current);
  json next;
  if (request.method == "PUT") {
    auto body = ParseRequestBody(request, "autoscaling", "v1", "Scale");
    if (!body.ok()) return writer->Send(body.error().ToResponse());
    next = std::move(*body);
  } else {
    std::string content_type = request.headers.Get("content-type");
    auto parsed = ParseBody(request.body, "application/json");
    if (!parsed.ok()) return writer->Send(parsed.error().ToResponse());
    Result<json> patched = Internal("unsupported patch");
    if (content_type.find("json-patch") != std::string::npos) {
      auto ops = DecodeJsonPatch(*parsed);
      patched = ops.ok() ? ApplyJsonPatch(scale, *ops) : Result<json>(ops.status());
    } else {
      patched = MergePatch(scale, *parsed);
    }
    if (!patched.ok()) return writer->Send(ApiError::BadRequest(patched.status().message()).ToResponse());
    next = std::move(*patched);
  }
  if (!next.contains("spec") || !next["spec"].contains("replicas") ||
      !next["spec"]["replicas"].is_number_integer() || next["spec"]["replicas"].get<int64_t>() < 0) {
    FieldErrors errors = {FieldInvalid("spec.replicas", next.contains("spec") ? next["spec"].value("replicas", json()) : json(),
                                       "must be greater than or equal to 0")};
    return writer->Send(ApiError::Invalid("Scale.autoscaling", name, errors).ToResponse());
  }
  int64_t rv = ResourceVersion(next);
  json patch = {{"spec", {{"replicas", next["spec"]["replicas"]}}}};
  if (rv > 0) patch["metadata"] = {{"resourceVersion", std::to_string(rv)}};
  auto updated = rest_.Patch(type, ns, name, "application/merge-patch+json", patch.dump(), "", write);
  if (!updated.ok()) return writer->Send(updated.error().ToResponse());
  writer->Send(JsonResponse(to_scale(updated->object)));
}

void ApiHandler::ServeBinding(Request& request, const ResourceType& type, const std::string& ns,
                              const std::string& name, std::shared_ptr<ResponseWriter> writer) {
  if (request.method != "POST") {
    return writer->Send(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource").ToResponse());
  }
  auto body = ParseRequestBody(request, "", "v1", "Binding");
  if (!body.ok()) return writer->Send(body.error().ToResponse());
  std::string pod = name.empty() ? Name(*body) : name;
  std::string node = body->contains("target") ? (*body)["target"].value("name", "") : "";
  if (node.empty()) {
    return writer->Send(ApiError::Invalid("Binding", pod, {FieldRequired("target.name")}).ToResponse());
  }
  auto registry = registry_.Current();
  const ResourceType* pods = registry->Find("", "v1", "pods");
  (void)type;
  WriteOptions write;
  write.field_manager = request.query.Get("fieldManager", DefaultFieldManager(request));
  auto bound = rest_.Bind(*pods, ns, pod, node, write);
  if (!bound.ok()) return writer->Send(bound.error().ToResponse());
  writer->Send(JsonResponse(SuccessStatus("pods", pod, ""), 201));
}

void ApiHandler::ServeEviction(Request& request, const ResourceType& type, const std::string& ns,
                               const std::string& name, std::shared_ptr<ResponseWriter> writer) {
  if (request.method != "POST") {
    return writer->Send(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource").ToResponse());
  }
  auto body = ParseRequestBody(request, "policy", "v1", "Eviction");
  if (!body.ok()) return writer->Send(body.error().ToResponse());
  auto registry = registry_.Current();
  const ResourceType* pdbs = registry->Find("policy", "v1", "poddisruptionbudgets");
  auto evicted =
      EvictPod(rest_, type, pdbs, ns, name, *body, request.query.Get("dryRun", "") == "All");
  if (!evicted.ok()) return writer->Send(evicted.error().ToResponse());
  writer->Send(JsonResponse(*evicted, 201));
}

void ApiHandler::ServeTokenRequest(Request& request, const std::string& ns,
                                   const std::string& name,
                                   std::shared_ptr<ResponseWriter> writer) {
  if (request.method != "POST") {
    return writer->Send(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource").ToResponse());
  }
  json body = json::object();
  if (!request.body.empty()) {
    bool protobuf = request.headers.Get("content-type").find("protobuf") != std::string::npos;
    auto parsed = protobuf ? DecodeTokenRequestProtobuf(request.body)
                           : ParseRequestBody(request, "authentication.k8s.io", "v1", "TokenRequest");
    if (!parsed.ok()) return writer->Send(parsed.error().ToResponse());
    body = std::move(*parsed);
  }
  auto issued = options_.service_account_tokens->CreateToken(ns, name, std::move(body));
  if (!issued.ok()) return writer->Send(issued.error().ToResponse());
  writer->Send(JsonResponse(*issued, 201));
}

}  // namespace orch::api
