// Generation of the OpenAPI v3 and v2 documents from the schema model and the served resources,
// a small encoder of the gnostic openapi_v2 protobuf, and the lazy document cache.
#include "openapi.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace orch::api {
namespace {

enum class Dialect { kV2, kV3 };

constexpr const char* kMetaPrefix = "io.k8s.apimachinery.pkg.apis.meta.v1.";

// ---- schemas ----

class SchemaRenderer {
 public:
  explicit SchemaRenderer(Dialect dialect) : dialect_(dialect) {}

  json Ref(const Schema& named) const {
    return {{"$ref",
             std::string(dialect_ == Dialect::kV3 ? "#/components/schemas/" : "#/definitions/") +
                 named.name}};
  }

  // A components/definitions entry.
  json Named(const Schema& s) const {
    json out = Body(s);
    if (!s.description.empty()) out["description"] = s.description;
    if (!s.gvks.empty()) {
      json list = json::array();
      for (const auto& g : s.gvks) {
        list.push_back({{"group", g.group}, {"kind", g.kind}, {"version", g.version}});
      }
      out["x-kubernetes-group-version-kind"] = std::move(list);
    }
    return out;
  }

  // The value of a property: a reference (with the field's own description and attributes, as
  // upstream writes `allOf: [{$ref}]` in v3 and siblings of `$ref` in v2) or an inline schema.
  json Field(const Property& p) const {
    const Schema& s = *p.schema;
    if (!s.name.empty() || s.ref != nullptr) {
      const Schema& target = s.ref != nullptr ? *s.ref : s;
      json extra = s.ref != nullptr ? Overrides(s, target) : json::object();
      if (!p.description.empty()) extra["description"] = p.description;
      return Wrap(target, std::move(extra));
    }
    json out = Body(s);
    const std::string& d = p.description.empty() ? s.description : p.description;
    if (!d.empty()) out["description"] = d;
    return out;
  }

  // Every named type `s` refers to, directly or through inline nodes.
  static void Collect(const Schema* s, std::set<const Schema*>& named,
                      std::set<const Schema*>& seen) {
    if (s == nullptr || !seen.insert(s).second) return;
    if (!s->name.empty()) named.insert(s);
    if (s->ref != nullptr) Collect(s->ref, named, seen);
    for (const Property& p : s->properties) Collect(p.schema, named, seen);
    Collect(s->items, named, seen);
    Collect(s->additional_properties, named, seen);
    for (const Schema* sub : s->all_of) Collect(sub, named, seen);
    for (const Schema* sub : s->any_of) Collect(sub, named, seen);
    for (const Schema* sub : s->one_of) Collect(sub, named, seen);
    Collect(s->not_schema, named, seen);
  }

 private:
  json Wrap(const Schema& target, json extra) const {
    if (extra.empty()) return Ref(target);
    if (dialect_ == Dialect::kV3) {
      extra["allOf"] = json::array({Ref(target)});
      return extra;
    }
    extra.update(Ref(target));
    return extra;
  }

  // A node used where a schema is expected (items, additionalProperties, allOf members).
  json Child(const Schema& s) const {
    if (!s.name.empty()) return Ref(s);
    if (s.ref != nullptr) return Wrap(*s.ref, Overrides(s, *s.ref));
    json out = Body(s);
    if (!s.description.empty()) out["description"] = s.description;
    return out;
  }

  // The attributes a per-field copy adds to its named type.
  json Overrides(const Schema& copy, const Schema& target) const {
    json mine = Attributes(copy);
    json theirs = Attributes(target);
    json out = json::object();
    for (const auto& [k, v] : mine.items()) {
      auto it = theirs.find(k);
      if (it == theirs.end() || *it != v) out[k] = v;
    }
    return out;
  }

  // Value constraints and extensions of a node (not its structure).
  json Attributes(const Schema& s) const {
    json out = json::object();
    if (!s.enum_values.empty()) out["enum"] = s.enum_values;
    if (s.default_value) out["default"] = *s.default_value;
    if (s.nullable && dialect_ == Dialect::kV3) out["nullable"] = true;
    if (s.minimum) out["minimum"] = *s.minimum;
    if (s.maximum) out["maximum"] = *s.maximum;
    if (s.exclusive_minimum) out["exclusiveMinimum"] = true;
    if (s.exclusive_maximum) out["exclusiveMaximum"] = true;
    if (s.min_length) out["minLength"] = *s.min_length;
    if (s.max_length) out["maxLength"] = *s.max_length;
    if (!s.pattern.empty()) out["pattern"] = s.pattern;
    if (s.min_items) out["minItems"] = *s.min_items;
    if (s.max_items) out["maxItems"] = *s.max_items;
    if (s.unique_items) out["uniqueItems"] = true;
    if (s.min_properties) out["minProperties"] = *s.min_properties;
    if (s.max_properties) out["maxProperties"] = *s.max_properties;
    if (!s.patch_merge_key.empty()) out["x-kubernetes-patch-merge-key"] = s.patch_merge_key;
    if (!s.patch_strategy.empty()) out["x-kubernetes-patch-strategy"] = s.patch_strategy;
    switch (s.list_type) {
      case Schema::ListType::kAtomic:
        out["x-kubernetes-list-type"] = "atomic";
        break;
      case Schema::ListType::kSet:
        out["x-kubernetes-list-type"] = "set";
        break;
      case Schema::ListType::kMap:
        out["x-kubernetes-list-type"] = "map";
        break;
      case Schema::ListType::kNone:
        break;
    }
    if (!s.list_map_keys.empty()) out["x-kubernetes-list-map-keys"] = s.list_map_keys;
    if (!s.map_type.empty()) out["x-kubernetes-map-type"] = s.map_type;
    if (s.format == "int-or-string" || s.int_or_string) out["format"] = "int-or-string";
    return out;
  }

  json Body(const Schema& s) const {
    json out = Attributes(s);
    bool v3 = dialect_ == Dialect::kV3;
    if (s.int_or_string) {
      if (v3) {
        out["x-kubernetes-int-or-string"] = true;
        out["anyOf"] = json::array({{{"type", "integer"}}, {{"type", "string"}}});
      } else {
        out["type"] = "string";
      }
    } else if (s.format == "quantity") {
      // A string or a number: v3 says so (explain then prints <Quantity>); v2 cannot.
      if (v3) {
        out["oneOf"] = json::array({{{"type", "string"}}, {{"type", "number"}}});
      } else {
        out["type"] = "string";
      }
    } else if (s.type != Schema::Type::kAny) {
      out["type"] = SchemaTypeName(s.type);
      if (!s.format.empty()) out["format"] = s.format;
    }
    if (s.preserve_unknown_fields) out["x-kubernetes-preserve-unknown-fields"] = true;
    if (s.embedded_resource) out["x-kubernetes-embedded-resource"] = true;
    if (!s.properties.empty()) {
      json props = json::object();
      for (const Property& p : s.properties) {
        if (p.schema != nullptr) props[p.name] = Field(p);
      }
      out["properties"] = std::move(props);
    }
    if (!s.required.empty()) out["required"] = s.required;
    if (s.items != nullptr) out["items"] = Child(*s.items);
    if (s.additional_properties != nullptr) {
      out["additionalProperties"] = Child(*s.additional_properties);
    }
    auto list = [&](const char* key, const std::vector<const Schema*>& subs) {
      if (subs.empty()) return;
      json arr = json::array();
      for (const Schema* sub : subs) arr.push_back(Child(*sub));
      if (out.contains(key)) {
        for (auto& e : arr) out[key].push_back(std::move(e));
      } else {
        out[key] = std::move(arr);
      }
    };
    list("allOf", s.all_of);
    if (v3) {
      list("anyOf", s.any_of);
      list("oneOf", s.one_of);
      if (s.not_schema != nullptr) out["not"] = Child(*s.not_schema);
    }
    return out;
  }

  Dialect dialect_;
};

// ---- paths ----

struct ParamSpec {
  const char* name;
  const char* type;
  const char* description;
};

constexpr ParamSpec kParams[] = {
    {"allowWatchBookmarks", "boolean",
     "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."},
    {"continue", "string",
     "The continue option should be set when retrieving more results from "
     "the server, with the value of the previous list's metadata.continue."},
    {"dryRun", "string",
     "When present, indicates that modifications should not be persisted. Valid value: All."},
    {"fieldManager", "string",
     "fieldManager is a name associated with the actor or entity that is making these changes."},
    {"fieldSelector", "string",
     "A selector to restrict the list of returned objects by their fields."},
    {"fieldValidation", "string",
     "fieldValidation instructs the server on how to handle objects in the request "
     "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn "
     "(the default) and Strict."},
    {"force", "boolean",
     "Force is going to \"force\" Apply requests: conflicting fields are re-acquired."},
    {"gracePeriodSeconds", "integer",
     "The duration in seconds before the object should be deleted."},
    {"labelSelector", "string",
     "A selector to restrict the list of returned objects by their labels."},
    {"limit", "integer", "limit is a maximum number of responses to return for a list call."},
    {"orphanDependents", "boolean",
     "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned."},
    {"propagationPolicy", "string",
     "Whether and how garbage collection will be performed: Orphan, Background or Foreground."},
    {"resourceVersion", "string",
     "resourceVersion sets a constraint on what resource versions a request may be served from."},
    {"resourceVersionMatch", "string",
     "resourceVersionMatch determines how resourceVersion is applied to list calls."},
    {"sendInitialEvents", "boolean",
     "sendInitialEvents=true may be set together with watch=true to begin with synthetic "
     "events of the current state."},
    {"timeoutSeconds", "integer", "Timeout for the list/watch call."},
    {"watch", "boolean",
     "Watch for changes to the described resources and return them as a stream of add, update, "
     "and remove notifications."},
    {"container", "string", "The container for which to stream logs or run the command."},
    {"follow", "boolean", "Follow the log stream of the pod."},
    {"limitBytes", "integer",
     "If set, the number of bytes to read from the server before terminating the log output."},
    {"previous", "boolean", "Return previous terminated container logs."},
    {"sinceSeconds", "integer",
     "A relative time in seconds before the current time from which to show logs."},
    {"sinceTime", "string", "An RFC3339 timestamp from which to show logs."},
    {"tailLines", "integer", "If set, the number of lines from the end of the logs to show."},
    {"timestamps", "boolean",
     "If true, add an RFC3339 timestamp at the beginning of every line of log output."},
    {"command", "string", "Command is the remote command to execute. argv array."},
    {"stdin", "boolean", "Redirect the standard input stream of the pod for this call."},
    {"stdout", "boolean", "Redirect the standard output stream of the pod for this call."},
    {"stderr", "boolean", "Redirect the standard error stream of the pod for this call."},
    {"tty", "boolean", "TTY if true indicates that a tty will be allocated for the exec call."},
    {"ports", "integer", "List of ports to forward."},
};

const ParamSpec* FindParam(std::string_view name) {
  for (const ParamSpec& p : kParams) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

// Query parameters of each kind of operation; nullptr ends a list.
constexpr const char* kListParams[] = {"allowWatchBookmarks",
                                       "continue",
                                       "fieldSelector",
                                       "labelSelector",
                                       "limit",
                                       "resourceVersion",
                                       "resourceVersionMatch",
                                       "sendInitialEvents",
                                       "timeoutSeconds",
                                       "watch",
                                       nullptr};
constexpr const char* kWriteParams[] = {"dryRun", "fieldManager", "fieldValidation", nullptr};
constexpr const char* kPatchParams[] = {"dryRun", "fieldManager", "fieldValidation", "force",
                                        nullptr};
constexpr const char* kDeleteParams[] = {"dryRun", "gracePeriodSeconds", "orphanDependents",
                                         "propagationPolicy", nullptr};
constexpr const char* kDeleteCollectionParams[] = {"continue",
                                                   "dryRun",
                                                   "fieldSelector",
                                                   "gracePeriodSeconds",
                                                   "labelSelector",
                                                   "limit",
                                                   "orphanDependents",
                                                   "propagationPolicy",
                                                   "resourceVersion",
                                                   "resourceVersionMatch",
                                                   "sendInitialEvents",
                                                   "timeoutSeconds",
                                                   nullptr};
constexpr const char* kLogParams[] = {"container", "follow",       "limitBytes",
                                      "previous",  "sinceSeconds", "sinceTime",
                                      "tailLines", "timestamps",   nullptr};
constexpr const char* kExecParams[] = {"command", "container", "stderr", "stdin",
                                       "stdout",  "tty",       nullptr};
constexpr const char* kAttachParams[] = {"container", "stderr", "stdin", "stdout", "tty", nullptr};
constexpr const char* kPortForwardParams[] = {"ports", nullptr};

std::string Capitalize(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

// "AppsV1", "CoreV1", "RbacAuthorizationV1", "StableExampleComV1": upstream's operation ids.
std::string GroupVersionCamel(const std::string& group, const std::string& version) {
  std::string g = group.empty() ? "core" : group;
  const std::string k8s = ".k8s.io";
  if (g.size() > k8s.size() && g.compare(g.size() - k8s.size(), k8s.size(), k8s) == 0) {
    g.resize(g.size() - k8s.size());
  }
  std::string out;
  size_t start = 0;
  while (start <= g.size()) {
    size_t dot = g.find_first_of(".-", start);
    if (dot == std::string::npos) dot = g.size();
    out += Capitalize(g.substr(start, dot - start));
    start = dot + 1;
  }
  return out + Capitalize(version);
}

// "apps_v1", "core_v1", "rbacAuthorization_v1": upstream's tags.
std::string Tag(const std::string& group, const std::string& version) {
  std::string camel = GroupVersionCamel(group, "");
  if (!camel.empty())
    camel[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(camel[0])));
  return camel + "_" + version;
}

// One operation to write.
struct Operation {
  std::string method;  // get put post patch delete
  std::string action;  // x-kubernetes-action
  std::string id;
  std::string description;
  const char* const* query = nullptr;  // nullptr-terminated
  const Schema* request = nullptr;     // body schema (patch: the Patch type)
  bool patch = false;
  bool strategic = false;
  const Schema* response = nullptr;  // null: a string (logs, connect)
  bool created = false;              // 201 besides 200 (create, replace, patch)
  bool accepted = false;             // 202 besides 200 (create, delete)
  bool list = false;                 // streams (watch) besides plain responses
  Schema::GroupVersionKind gvk;
};

class PathWriter {
 public:
  PathWriter(Dialect dialect, const SchemaSet& schemas, const SchemaRenderer& renderer,
             std::set<const Schema*>& used)
      : dialect_(dialect), schemas_(schemas), renderer_(renderer), used_(used) {
    patch_ = schemas.Find(std::string(kMetaPrefix) + "Patch");
    delete_options_ = schemas.Find(std::string(kMetaPrefix) + "DeleteOptions");
    status_ = schemas.Find(std::string(kMetaPrefix) + "Status");
  }

  void AddResource(const OpenApiResource& r, const Schema* kind, json& paths) {
    std::string prefix = "/" + OpenApiGroupVersionPath(r.group, r.version);
    std::string gv = GroupVersionCamel(r.group, r.version);
    std::string ns = r.namespaced ? "Namespaced" : "";
    std::string collection = prefix + (r.namespaced ? "/namespaces/{namespace}/" : "/") + r.plural;
    std::string item = collection + "/{name}";
    const Schema* list = r.list_schema != nullptr
                             ? r.list_schema
                             : schemas_.FindKind(r.group, r.version, r.kind + "List");
    if (list == nullptr && kind != nullptr && !kind->name.empty()) list = SynthesizeList(r, kind);
    Schema::GroupVersionKind gvk{r.group, r.version, r.kind};
    tag_ = Tag(r.group, r.version);
    auto has = [&](const char* verb) {
      if (r.verbs.empty()) return true;
      return std::find(r.verbs.begin(), r.verbs.end(), verb) != r.verbs.end();
    };
    Use(kind);
    Use(list);

    json coll_item = json::object();
    if (has("list")) {
      coll_item["get"] =
          Op({"get", "list", "list" + gv + ns + r.kind, "list or watch objects of kind " + r.kind,
              kListParams, nullptr, false, false, list, false, false, true, gvk});
    }
    if (has("create")) {
      coll_item["post"] = Op({"post", "post", "create" + gv + ns + r.kind, "create a " + r.kind,
                              kWriteParams, kind, false, false, kind, true, true, false, gvk});
    }
    if (has("deletecollection")) {
      coll_item["delete"] = Op({"delete", "deletecollection", "deleteCollection" + gv + ns + r.kind,
                                "delete collection of " + r.kind, kDeleteCollectionParams,
                                delete_options_, false, false, status_, false, false, false, gvk});
    }
    if (!coll_item.empty()) {
      coll_item["parameters"] = PathParams(r.namespaced, false);
      paths[collection] = std::move(coll_item);
    }

    json one = json::object();
    if (has("get")) {
      one["get"] = Op({"get", "get", "read" + gv + ns + r.kind, "read the specified " + r.kind,
                       nullptr, nullptr, false, false, kind, false, false, false, gvk});
    }
    if (has("update")) {
      one["put"] =
          Op({"put", "put", "replace" + gv + ns + r.kind, "replace the specified " + r.kind,
              kWriteParams, kind, false, false, kind, true, false, false, gvk});
    }
    if (has("patch")) {
      one["patch"] = Op({"patch", "patch", "patch" + gv + ns + r.kind,
                         "partially update the specified " + r.kind, kPatchParams, patch_, true,
                         r.strategic_merge_patch, kind, true, false, false, gvk});
    }
    if (has("delete")) {
      one["delete"] = Op({"delete", "delete", "delete" + gv + ns + r.kind, "delete a " + r.kind,
                          kDeleteParams, delete_options_, false, false,
                          status_ != nullptr ? status_ : kind, false, true, false, gvk});
    }
    if (!one.empty()) {
      one["parameters"] = PathParams(r.namespaced, true);
      paths[item] = std::move(one);
    }

    // The cluster-wide list of a namespaced kind: explain looks the kind up here.
    if (r.namespaced && has("list")) {
      json all;
      all["get"] = Op({"get", "list", "list" + gv + r.kind + "ForAllNamespaces",
                       "list or watch objects of kind " + r.kind, kListParams, nullptr, false,
                       false, list, false, false, true, gvk});
      all["parameters"] = json::array({Param("pretty", "string",
                                             "If 'true', then the output is "
                                             "pretty printed.",
                                             "query", false)});
      paths[prefix + "/" + r.plural] = std::move(all);
    }

    for (const auto& sub : r.subresources) AddSubresource(r, sub, kind, gvk, item, gv, ns, paths);
  }

 private:
  void Use(const Schema* s) {
    if (s != nullptr && !s->name.empty()) used_.insert(s);
  }

  // <Kind>List for kinds whose list type is not at hand (custom resources whose caller did not
  // pass list_schema): owned by this writer, so it lives as long as the document is built.
  const Schema* SynthesizeList(const OpenApiResource& r, const Schema* kind) {
    std::string name = kind->name + "List";
    if (const Schema* made = synthesized_.Find(name)) return made;
    Schema* str = synthesized_.New();
    str->type = Schema::Type::kString;
    Schema* items = synthesized_.New();
    items->type = Schema::Type::kArray;
    items->items = kind;
    const Schema* meta = schemas_.Find(std::string(kMetaPrefix) + "ListMeta");
    if (meta == nullptr) {
      Schema* any = synthesized_.New();
      any->type = Schema::Type::kObject;
      any->preserve_unknown_fields = true;
      meta = any;
    }
    Schema* list = synthesized_.New();
    list->type = Schema::Type::kObject;
    list->name = name;
    list->description = r.kind + "List is a list of " + r.kind;
    list->properties = {{"apiVersion", "", str},
                        {"items", "List of " + r.kind + ".", items},
                        {"kind", "", str},
                        {"metadata", "Standard list metadata.", meta}};
    list->required = {"items"};
    list->gvks.push_back({r.group, r.version, r.kind + "List"});
    return synthesized_.AddNamed(list);
  }

  void AddSubresource(const OpenApiResource& r, const OpenApiResource::Subresource& sub,
                      const Schema* kind, const Schema::GroupVersionKind& parent_gvk,
                      const std::string& item, const std::string& gv, const std::string& ns,
                      json& paths) {
    Schema::GroupVersionKind gvk = parent_gvk;
    const Schema* schema = kind;
    if (sub.own_kind) {
      gvk = {sub.group, sub.version, sub.kind};
      schema = schemas_.FindKind(sub.group, sub.version, sub.kind);
      if (schema == nullptr && r.schema != nullptr && sub.kind == r.kind) schema = kind;
    }
    Use(schema);
    std::vector<std::string> verbs = sub.verbs;
    if (verbs.empty()) {
      if (sub.name == "status" || sub.name == "scale") {
        verbs = {"get", "update", "patch"};
      } else if (sub.name == "log") {
        verbs = {"get"};
      } else if (sub.name == "exec" || sub.name == "attach" || sub.name == "portforward" ||
                 sub.name == "proxy") {
        verbs = {"connect"};
      } else {
        verbs = {"create"};
      }
    }
    std::string suffix = Capitalize(sub.name);
    if (sub.name == "portforward") suffix = "Portforward";
    std::string path = item + "/" + sub.name;
    std::string what = r.kind + " " + sub.name;
    json entry = json::object();
    for (const std::string& verb : verbs) {
      if (sub.name == "log" && verb == "get") {
        entry["get"] = Op({"get", "get", "read" + gv + ns + r.kind + "Log",
                           "read log of the specified " + r.kind, kLogParams, nullptr, false, false,
                           nullptr, false, false, false, parent_gvk});
      } else if (verb == "connect" ||
                 ((sub.name == "exec" || sub.name == "attach" || sub.name == "portforward") &&
                  (verb == "get" || verb == "create"))) {
        const char* const* params = sub.name == "exec"          ? kExecParams
                                    : sub.name == "attach"      ? kAttachParams
                                    : sub.name == "portforward" ? kPortForwardParams
                                                                : nullptr;
        Schema::GroupVersionKind opts{r.group, r.version, r.kind + suffix + "Options"};
        entry["get"] = Op({"get", "connect", "connectGet" + gv + ns + r.kind + suffix,
                           "connect GET requests to " + sub.name + " of " + r.kind, params, nullptr,
                           false, false, nullptr, false, false, false, opts});
        entry["post"] = Op({"post", "connect", "connectPost" + gv + ns + r.kind + suffix,
                            "connect POST requests to " + sub.name + " of " + r.kind, params,
                            nullptr, false, false, nullptr, false, false, false, opts});
      } else if (verb == "get") {
        entry["get"] = Op({"get", "get", "read" + gv + ns + r.kind + suffix,
                           "read " + what + " of the specified " + r.kind, nullptr, nullptr, false,
                           false, schema, false, false, false, gvk});
      } else if (verb == "update") {
        entry["put"] = Op({"put", "put", "replace" + gv + ns + r.kind + suffix,
                           "replace " + what + " of the specified " + r.kind, kWriteParams, schema,
                           false, false, schema, true, false, false, gvk});
      } else if (verb == "patch") {
        entry["patch"] =
            Op({"patch", "patch", "patch" + gv + ns + r.kind + suffix,
                "partially update " + what + " of the specified " + r.kind, kPatchParams, patch_,
                true, r.strategic_merge_patch, schema, true, false, false, gvk});
      } else if (verb == "create") {
        entry["post"] = Op({"post", "post", "create" + gv + ns + r.kind + suffix,
                            "create " + what + " of " + r.kind, kWriteParams, schema, false, false,
                            schema, true, true, false, gvk});
      }
    }
    if (entry.empty()) return;
    entry["parameters"] = PathParams(r.namespaced, true);
    paths[path] = std::move(entry);
  }

  json Param(const std::string& name, const std::string& type, const std::string& description,
             const char* in, bool required) const {
    json p = {{"name", name}, {"in", in}, {"description", description}};
    if (required) p["required"] = true;
    if (dialect_ == Dialect::kV3) {
      json schema = {{"type", type}};
      if (!required) schema["uniqueItems"] = true;
      p["schema"] = std::move(schema);
    } else {
      p["type"] = type;
      if (!required) p["uniqueItems"] = true;
    }
    return p;
  }

  json PathParams(bool namespaced, bool named) const {
    json params = json::array();
    if (named) params.push_back(Param("name", "string", "name of the object", "path", true));
    if (namespaced) {
      params.push_back(Param("namespace", "string",
                             "object name and auth scope, such as for teams and projects", "path",
                             true));
    }
    params.push_back(
        Param("pretty", "string", "If 'true', then the output is pretty printed.", "query", false));
    return params;
  }

  json SchemaOrString(const Schema* s) {
    if (s == nullptr) return {{"type", "string"}};
    Use(s);
    return s->name.empty() ? json{{"type", "object"}} : renderer_.Ref(*s);
  }

  json Op(const Operation& op) {
    bool v3 = dialect_ == Dialect::kV3;
    json o = {{"description", op.description},
              {"operationId", op.id},
              {"tags", json::array({tag_})},
              {"x-kubernetes-action", op.action},
              {"x-kubernetes-group-version-kind",
               {{"group", op.gvk.group}, {"kind", op.gvk.kind}, {"version", op.gvk.version}}}};
    json params = json::array();
    if (op.query != nullptr) {
      for (const char* const* q = op.query; *q != nullptr; ++q) {
        std::string name = *q;
        const ParamSpec* spec = FindParam(name);
        if (spec != nullptr)
          params.push_back(Param(name, spec->type, spec->description, "query", false));
      }
    }
    std::vector<std::string> consumes;
    if (op.patch) {
      consumes = {"application/json-patch+json", "application/merge-patch+json"};
      if (op.strategic) consumes.push_back("application/strategic-merge-patch+json");
      consumes.push_back("application/apply-patch+yaml");
    } else {
      consumes = {"*/*"};
    }
    bool has_body = op.request != nullptr || op.patch;
    json body_schema =
        op.request != nullptr ? SchemaOrString(op.request) : json{{"type", "object"}};
    std::vector<std::string> produces = {"application/json", "application/yaml",
                                         "application/vnd.kubernetes.protobuf"};
    if (op.list) {
      produces.push_back("application/json;stream=watch");
      produces.push_back("application/vnd.kubernetes.protobuf;stream=watch");
    }
    if (op.response == nullptr) produces = {"*/*"};
    json response_schema = SchemaOrString(op.response);

    json responses = json::object();
    auto add_response = [&](const char* code, const char* description) {
      if (v3) {
        json content = json::object();
        for (const std::string& ct : produces) content[ct] = {{"schema", response_schema}};
        responses[code] = {{"description", description}, {"content", std::move(content)}};
      } else {
        responses[code] = {{"description", description}, {"schema", response_schema}};
      }
    };
    add_response("200", "OK");
    if (op.created) add_response("201", "Created");
    if (op.accepted) add_response("202", "Accepted");
    responses["401"] = {{"description", "Unauthorized"}};

    if (v3) {
      if (has_body) {
        json content = json::object();
        for (const std::string& ct : consumes) content[ct] = {{"schema", body_schema}};
        o["requestBody"] = {{"content", std::move(content)}, {"required", op.method != "delete"}};
      }
    } else {
      if (has_body) {
        json body = {{"name", "body"}, {"in", "body"}, {"schema", body_schema}};
        if (op.method != "delete") body["required"] = true;
        params.insert(params.begin(), std::move(body));
      }
      o["consumes"] = consumes;
      o["produces"] = produces;
      o["schemes"] = json::array({"https"});
    }
    if (!params.empty()) o["parameters"] = std::move(params);
    o["responses"] = std::move(responses);
    return o;
  }

  Dialect dialect_;
  const SchemaSet& schemas_;
  const SchemaRenderer& renderer_;
  std::set<const Schema*>& used_;
  const Schema* patch_ = nullptr;
  const Schema* delete_options_ = nullptr;
  const Schema* status_ = nullptr;
  std::string tag_;
  SchemaSet synthesized_;
};

const Schema* KindSchema(const OpenApiResource& r, const SchemaSet& schemas) {
  if (r.schema != nullptr) return r.schema;
  return schemas.FindKind(r.group, r.version, r.kind);
}

json Components(const SchemaRenderer& renderer, const std::set<const Schema*>& roots) {
  std::set<const Schema*> named, seen;
  for (const Schema* s : roots) SchemaRenderer::Collect(s, named, seen);
  json out = json::object();
  for (const Schema* s : named) out[s->name] = renderer.Named(*s);
  return out;
}

void AddStandardTypes(const SchemaSet& schemas, std::set<const Schema*>& used) {
  for (const char* t : {"Status", "DeleteOptions", "Patch"}) {
    if (const Schema* s = schemas.Find(std::string(kMetaPrefix) + t)) used.insert(s);
  }
}

// ---- protobuf (gnostic openapi_v2) ----

class ProtoWriter {
 public:
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  void Tag(int field, int wire) { Varint(static_cast<uint64_t>(field) << 3 | wire); }
  void String(int field, const std::string& s) {
    if (s.empty()) return;
    Tag(field, 2);
    Varint(s.size());
    out_ += s;
  }
  void Bool(int field, bool b) {
    if (!b) return;
    Tag(field, 0);
    Varint(1);
  }
  void Int(int field, int64_t v) {
    if (v == 0) return;
    Tag(field, 0);
    Varint(static_cast<uint64_t>(v));
  }
  void Double(int field, double d) {
    if (d == 0) return;
    Tag(field, 1);
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof(bits));
    for (int i = 0; i < 8; ++i) out_ += static_cast<char>((bits >> (8 * i)) & 0xff);
  }
  // A nested message, written by `fill` into its own buffer and length-prefixed; proto3
  // messages are emitted even when empty (presence matters for oneofs).
  void Message(int field, const std::function<void(ProtoWriter&)>& fill) {
    ProtoWriter sub;
    fill(sub);
    Tag(field, 2);
    Varint(sub.out_.size());
    out_ += sub.out_;
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

// Any { yaml = 2 }: JSON text is YAML, and kube-openapi reads extensions from it.
void AnyYaml(ProtoWriter& w, int field, const json& value) {
  w.Message(field, [&](ProtoWriter& a) { a.String(2, value.dump()); });
}

// repeated NamedAny vendor_extension = field: every "x-" key of `j`.
void VendorExtensions(ProtoWriter& w, int field, const json& j) {
  for (const auto& [k, v] : j.items()) {
    if (k.rfind("x-", 0) != 0) continue;
    w.Message(field, [&](ProtoWriter& n) {
      n.String(1, k);
      AnyYaml(n, 2, v);
    });
  }
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool BoolOf(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

void Strings(ProtoWriter& w, int field, const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return;
  for (const json& s : *it) {
    if (s.is_string()) {
      // Repeated strings keep empty elements.
      w.Tag(field, 2);
      w.Varint(s.get_ref<const std::string&>().size());
      w.out() += s.get_ref<const std::string&>();
    }
  }
}

void EncodeSchema(ProtoWriter& w, const json& s) {
  w.String(1, Str(s, "$ref"));
  w.String(2, Str(s, "format"));
  w.String(3, Str(s, "title"));
  w.String(4, Str(s, "description"));
  if (auto it = s.find("default"); it != s.end()) AnyYaml(w, 5, *it);
  if (auto it = s.find("maximum"); it != s.end() && it->is_number()) w.Double(7, it->get<double>());
  w.Bool(8, BoolOf(s, "exclusiveMaximum"));
  if (auto it = s.find("minimum"); it != s.end() && it->is_number()) w.Double(9, it->get<double>());
  w.Bool(10, BoolOf(s, "exclusiveMinimum"));
  auto int_field = [&](int field, const char* key) {
    if (auto it = s.find(key); it != s.end() && it->is_number_integer()) {
      w.Int(field, it->get<int64_t>());
    }
  };
  int_field(11, "maxLength");
  int_field(12, "minLength");
  w.String(13, Str(s, "pattern"));
  int_field(14, "maxItems");
  int_field(15, "minItems");
  w.Bool(16, BoolOf(s, "uniqueItems"));
  int_field(17, "maxProperties");
  int_field(18, "minProperties");
  Strings(w, 19, s, "required");
  if (auto it = s.find("enum"); it != s.end() && it->is_array()) {
    for (const json& e : *it) AnyYaml(w, 20, e);
  }
  if (auto it = s.find("additionalProperties"); it != s.end()) {
    w.Message(21, [&](ProtoWriter& a) {
      if (it->is_boolean()) {
        a.Tag(2, 0);
        a.Varint(it->get<bool>() ? 1 : 0);
      } else {
        a.Message(1, [&](ProtoWriter& x) { EncodeSchema(x, *it); });
      }
    });
  }
  if (auto it = s.find("type"); it != s.end() && it->is_string()) {
    w.Message(22, [&](ProtoWriter& t) { t.String(1, it->get<std::string>()); });
  }
  if (auto it = s.find("items"); it != s.end() && it->is_object()) {
    w.Message(23,
              [&](ProtoWriter& i) { i.Message(1, [&](ProtoWriter& x) { EncodeSchema(x, *it); }); });
  }
  if (auto it = s.find("allOf"); it != s.end() && it->is_array()) {
    for (const json& sub : *it) w.Message(24, [&](ProtoWriter& x) { EncodeSchema(x, sub); });
  }
  if (auto it = s.find("properties"); it != s.end() && it->is_object()) {
    w.Message(25, [&](ProtoWriter& props) {
      for (const auto& [name, sub] : it->items()) {
        props.Message(1, [&](ProtoWriter& n) {
          n.String(1, name);
          n.Message(2, [&](ProtoWriter& x) { EncodeSchema(x, sub); });
        });
      }
    });
  }
  VendorExtensions(w, 31, s);
}

void EncodeParameter(ProtoWriter& w, const json& p) {
  // ParametersItem { Parameter parameter = 1 { BodyParameter = 1 | NonBodyParameter = 2 } }
  w.Message(1, [&](ProtoWriter& param) {
    std::string in = Str(p, "in");
    if (in == "body") {
      param.Message(1, [&](ProtoWriter& b) {
        b.String(1, Str(p, "description"));
        b.String(2, Str(p, "name"));
        b.String(3, in);
        b.Bool(4, BoolOf(p, "required"));
        if (auto it = p.find("schema"); it != p.end()) {
          b.Message(5, [&](ProtoWriter& x) { EncodeSchema(x, *it); });
        }
        VendorExtensions(b, 6, p);
      });
      return;
    }
    param.Message(2, [&](ProtoWriter& nb) {
      // query = 3 and path = 4 share the first fields' numbers but not the later ones.
      bool query = in != "path";
      nb.Message(query ? 3 : 4, [&](ProtoWriter& q) {
        q.Bool(1, BoolOf(p, "required"));
        q.String(2, in);
        q.String(3, Str(p, "description"));
        q.String(4, Str(p, "name"));
        if (query) {
          q.String(6, Str(p, "type"));
          q.String(7, Str(p, "format"));
          q.Bool(20, BoolOf(p, "uniqueItems"));
          VendorExtensions(q, 23, p);
        } else {
          q.String(5, Str(p, "type"));
          q.String(6, Str(p, "format"));
          q.Bool(19, BoolOf(p, "uniqueItems"));
          VendorExtensions(q, 22, p);
        }
      });
    });
  });
}

void EncodeOperation(ProtoWriter& w, const json& op) {
  Strings(w, 1, op, "tags");
  w.String(2, Str(op, "summary"));
  w.String(3, Str(op, "description"));
  w.String(5, Str(op, "operationId"));
  Strings(w, 6, op, "produces");
  Strings(w, 7, op, "consumes");
  if (auto it = op.find("parameters"); it != op.end() && it->is_array()) {
    for (const json& p : *it) w.Message(8, [&](ProtoWriter& x) { EncodeParameter(x, p); });
  }
  if (auto it = op.find("responses"); it != op.end() && it->is_object()) {
    w.Message(9, [&](ProtoWriter& rs) {
      for (const auto& [code, resp] : it->items()) {
        rs.Message(1, [&](ProtoWriter& named) {
          named.String(1, code);
          named.Message(2, [&](ProtoWriter& rv) {
            rv.Message(1, [&](ProtoWriter& r) {
              r.String(1, Str(resp, "description"));
              if (auto s = resp.find("schema"); s != resp.end()) {
                r.Message(2, [&](ProtoWriter& si) {
                  si.Message(1, [&](ProtoWriter& x) { EncodeSchema(x, *s); });
                });
              }
              VendorExtensions(r, 5, resp);
            });
          });
        });
      }
    });
  }
  Strings(w, 10, op, "schemes");
  w.Bool(11, BoolOf(op, "deprecated"));
  VendorExtensions(w, 13, op);
}

std::string EncodeV2(const json& doc) {
  ProtoWriter w;
  w.String(1, Str(doc, "swagger"));
  if (auto it = doc.find("info"); it != doc.end()) {
    w.Message(2, [&](ProtoWriter& i) {
      i.String(1, Str(*it, "title"));
      i.String(2, Str(*it, "version"));
      i.String(3, Str(*it, "description"));
    });
  }
  if (auto it = doc.find("paths"); it != doc.end() && it->is_object()) {
    w.Message(8, [&](ProtoWriter& paths) {
      for (const auto& [path, item] : it->items()) {
        paths.Message(2, [&](ProtoWriter& named) {
          named.String(1, path);
          named.Message(2, [&](ProtoWriter& pi) {
            static const std::pair<const char*, int> kMethods[] = {
                {"get", 2},     {"put", 3},  {"post", 4}, {"delete", 5},
                {"options", 6}, {"head", 7}, {"patch", 8}};
            for (const auto& [method, field] : kMethods) {
              if (auto op = item.find(method); op != item.end()) {
                pi.Message(field, [&](ProtoWriter& x) { EncodeOperation(x, *op); });
              }
            }
            if (auto ps = item.find("parameters"); ps != item.end() && ps->is_array()) {
              for (const json& p : *ps)
                pi.Message(9, [&](ProtoWriter& x) { EncodeParameter(x, p); });
            }
            VendorExtensions(pi, 10, item);
          });
        });
      }
    });
  }
  if (auto it = doc.find("definitions"); it != doc.end() && it->is_object()) {
    w.Message(9, [&](ProtoWriter& defs) {
      for (const auto& [name, schema] : it->items()) {
        defs.Message(1, [&](ProtoWriter& named) {
          named.String(1, name);
          named.Message(2, [&](ProtoWriter& x) { EncodeSchema(x, schema); });
        });
      }
    });
  }
  if (auto it = doc.find("security"); it != doc.end() && it->is_array()) {
    for (const json& req : *it) {
      w.Message(12, [&](ProtoWriter& sr) {
        for (const auto& [name, scopes] : req.items()) {
          sr.Message(1, [&](ProtoWriter& n) {
            n.String(1, name);
            n.Message(2, [&](ProtoWriter& arr) {
              for (const json& s : scopes) arr.String(1, s.get<std::string>());
            });
          });
        }
      });
    }
  }
  if (auto it = doc.find("securityDefinitions"); it != doc.end() && it->is_object()) {
    w.Message(13, [&](ProtoWriter& defs) {
      for (const auto& [name, def] : it->items()) {
        defs.Message(1, [&](ProtoWriter& n) {
          n.String(1, name);
          n.Message(2, [&](ProtoWriter& item) {
            item.Message(2, [&](ProtoWriter& key) {  // ApiKeySecurity
              key.String(1, Str(def, "type"));
              key.String(2, Str(def, "name"));
              key.String(3, Str(def, "in"));
              key.String(4, Str(def, "description"));
            });
          });
        });
      }
    });
  }
  VendorExtensions(w, 16, doc);
  return std::move(w.out());
}

// Building a document makes a JSON tree several times the size of its text; glibc keeps the
// freed pages unless asked, which would count against the server's resting RSS.
void ReleaseFreedMemory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

uint64_t Fnv1a(std::string_view data, uint64_t basis) {
  uint64_t h = basis;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

std::string OpenApiGroupVersionPath(const std::string& group, const std::string& version) {
  return group.empty() ? "api/" + version : "apis/" + group + "/" + version;
}

std::string OpenApiHash(std::string_view data) {
  // Two FNV-1a passes with different bases, the second over the data and its length, give a
  // 128-bit value; plenty against accidental collisions of a handful of documents.
  uint64_t a = Fnv1a(data, 0xcbf29ce484222325ULL);
  uint64_t b = Fnv1a(data, 0x84222325cbf29ce4ULL) ^ (data.size() * 0x9e3779b97f4a7c15ULL);
  static const char kHex[] = "0123456789ABCDEF";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kHex[(a >> (4 * i)) & 0xf];
    out[31 - i] = kHex[(b >> (4 * i)) & 0xf];
  }
  return out;
}

Result<json> BuildOpenApiV3(const std::vector<OpenApiResource>& resources, const SchemaSet& schemas,
                            const std::string& gv_path) {
  try {
    SchemaRenderer renderer(Dialect::kV3);
    std::set<const Schema*> used;
    PathWriter writer(Dialect::kV3, schemas, renderer, used);
    json paths = json::object();
    bool any = false;
    for (const OpenApiResource& r : resources) {
      if (OpenApiGroupVersionPath(r.group, r.version) != gv_path) continue;
      any = true;
      writer.AddResource(r, KindSchema(r, schemas), paths);
    }
    if (!any) return NotFound("no OpenAPI document for " + gv_path);
    AddStandardTypes(schemas, used);
    json doc = {{"openapi", "3.0.0"},
                {"info", {{"title", "Kubernetes"}, {"version", "unversioned"}}},
                {"paths", std::move(paths)},
                {"components",
                 {{"schemas", Components(renderer, used)},
                  {"securitySchemes",
                   {{"BearerToken",
                     {{"type", "apiKey"},
                      {"description", "Bearer Token authentication"},
                      {"name", "authorization"},
                      {"in", "header"}}}}}}},
                {"security", json::array({{{"BearerToken", json::array()}}})}};
    return doc;
  } catch (const std::exception& e) {
    return Internal(std::string("building OpenAPI v3: ") + e.what());
  }
}

Result<json> BuildOpenApiV2(const std::vector<OpenApiResource>& resources, const SchemaSet& schemas,
                            const std::string& version) {
  try {
    SchemaRenderer renderer(Dialect::kV2);
    std::set<const Schema*> used;
    PathWriter writer(Dialect::kV2, schemas, renderer, used);
    json paths = json::object();
    for (const OpenApiResource& r : resources) writer.AddResource(r, KindSchema(r, schemas), paths);
    AddStandardTypes(schemas, used);
    json doc = {{"swagger", "2.0"},
                {"info", {{"title", "Kubernetes"}, {"version", version}}},
                {"paths", std::move(paths)},
                {"definitions", Components(renderer, used)},
                {"securityDefinitions",
                 {{"BearerToken",
                   {{"type", "apiKey"},
                    {"description", "Bearer Token authentication"},
                    {"name", "authorization"},
                    {"in", "header"}}}}},
                {"security", json::array({{{"BearerToken", json::array()}}})}};
    return doc;
  } catch (const std::exception& e) {
    return Internal(std::string("building OpenAPI v2: ") + e.what());
  }
}

Result<std::string> EncodeOpenApiV2Protobuf(const json& v2) {
  try {
    if (!v2.is_object()) return InvalidArgument("OpenAPI v2 document must be an object");
    return EncodeV2(v2);
  } catch (const std::exception& e) {
    return Internal(std::string("encoding OpenAPI v2: ") + e.what());
  }
}

OpenApiDocuments::OpenApiDocuments(std::vector<OpenApiResource> resources, const SchemaSet* schemas,
                                   std::string version)
    : resources_(std::move(resources)), schemas_(schemas), version_(std::move(version)) {}

std::vector<std::string> OpenApiDocuments::GroupVersionPaths() const {
  std::vector<std::string> out;
  for (const OpenApiResource& r : resources_) {
    std::string p = OpenApiGroupVersionPath(r.group, r.version);
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(std::move(p));
  }
  return out;
}

Result<std::shared_ptr<const OpenApiDocument>> OpenApiDocuments::MakeV3(
    const std::string& gv_path) const {
  auto doc = BuildOpenApiV3(resources_, *schemas_, gv_path);
  if (!doc.ok()) return doc.status();
  auto out = std::make_shared<OpenApiDocument>();
  try {
    out->body = doc->dump();
  } catch (const std::exception& e) {  // invalid UTF-8 in a description
    return Internal(std::string("serializing OpenAPI v3: ") + e.what());
  }
  out->content_type = kJson;
  out->hash = OpenApiHash(out->body);
  return std::shared_ptr<const OpenApiDocument>(std::move(out));
}

Result<std::shared_ptr<const OpenApiDocument>> OpenApiDocuments::V3GroupVersion(
    const std::string& gv_path) const {
  std::lock_guard lock(mu_);
  if (auto it = v3_.find(gv_path); it != v3_.end()) return it->second;
  auto doc = MakeV3(gv_path);
  if (!doc.ok()) return doc.status();
  v3_[gv_path] = *doc;
  v3_hashes_[gv_path] = (*doc)->hash;
  ReleaseFreedMemory();
  return *doc;
}

std::string OpenApiDocuments::V3Hash(const std::string& gv_path) const {
  {
    std::lock_guard lock(mu_);
    if (auto it = v3_hashes_.find(gv_path); it != v3_hashes_.end()) return it->second;
  }
  auto doc = V3GroupVersion(gv_path);
  return doc.ok() ? (*doc)->hash : std::string();
}

Result<std::shared_ptr<const OpenApiDocument>> OpenApiDocuments::V3Index() const {
  std::lock_guard lock(mu_);
  if (index_) return index_;
  json paths = json::object();
  for (const std::string& gv : GroupVersionPaths()) {
    std::string hash;
    if (auto it = v3_hashes_.find(gv); it != v3_hashes_.end()) {
      hash = it->second;
    } else {
      // Hash it without keeping it: most clients fetch one or two group-versions.
      auto doc = MakeV3(gv);
      if (!doc.ok()) return doc.status();
      hash = (*doc)->hash;
      v3_hashes_[gv] = hash;
    }
    paths[gv] = {{"serverRelativeURL", "/openapi/v3/" + gv + "?hash=" + hash}};
  }
  ReleaseFreedMemory();
  auto out = std::make_shared<OpenApiDocument>();
  out->body = json{{"paths", std::move(paths)}}.dump();
  out->content_type = kJson;
  out->hash = OpenApiHash(out->body);
  index_ = out;
  return index_;
}

Result<std::shared_ptr<const OpenApiDocument>> OpenApiDocuments::V2Locked() const {
  if (v2_json_) return v2_json_;
  auto doc = BuildOpenApiV2(resources_, *schemas_, version_);
  if (!doc.ok()) return doc.status();
  auto out = std::make_shared<OpenApiDocument>();
  try {
    out->body = doc->dump();
  } catch (const std::exception& e) {
    return Internal(std::string("serializing OpenAPI v2: ") + e.what());
  }
  out->content_type = kJson;
  out->hash = OpenApiHash(out->body);
  v2_json_ = out;
  ReleaseFreedMemory();
  return v2_json_;
}

Result<std::shared_ptr<const OpenApiDocument>> OpenApiDocuments::V2Json() const {
  std::lock_guard lock(mu_);
  return V2Locked();
}

Result<std::shared_ptr<const OpenApiDocument>> OpenApiDocuments::V2Protobuf() const {
  std::lock_guard lock(mu_);
  if (v2_proto_) return v2_proto_;
  // Built from a JSON document that is not kept: 1.27/1.28 kubectl fetch the protobuf on most
  // commands, JSON clients are rare.
  auto doc = BuildOpenApiV2(resources_, *schemas_, version_);
  if (!doc.ok()) return doc.status();
  auto bytes = EncodeOpenApiV2Protobuf(*doc);
  if (!bytes.ok()) return bytes.status();
  auto out = std::make_shared<OpenApiDocument>();
  out->body = std::move(bytes).value();
  out->content_type = kV2Protobuf;
  out->hash = OpenApiHash(out->body);
  v2_proto_ = out;
  ReleaseFreedMemory();
  return v2_proto_;
}

}  // namespace orch::api
