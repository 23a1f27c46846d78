// Generic REST semantics (rest.h): one implementation of create/update/patch/delete/list for
// every resource, built-in or custom.
#include "rest.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <charconv>

#include "apply.h"
#include "orch/base64.h"
#include "orch/log.h"
#include "patch.h"
#include "schema_validate.h"
#include "selector.h"
#include "validation.h"

namespace orch::api {
namespace {

constexpr int kMaxUpdateAttempts = 16;

// Upstream's apps/v1 DaemonSet carries the internal spec.templateGeneration in this annotation:
// 1 on create (or the positive number the client sent), one more whenever spec.template changes,
// never what an update sends. Older tools and the pod-template-generation pod label read it.
constexpr char kTemplateGenerationAnnotation[] = "deprecated.daemonset.template.generation";

int64_t TemplateGeneration(const json& obj, int64_t fallback) {
  const json& meta = obj.contains("metadata") ? obj["metadata"] : json::object();
  if (meta.contains("annotations") && meta["annotations"].is_object()) {
    const json& value = meta["annotations"].value(kTemplateGenerationAnnotation, json());
    if (value.is_string()) {
      const std::string& text = value.get_ref<const std::string&>();
      int64_t n = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (ec == std::errc() && end == text.data() + text.size() && n > 0) return n;
    }
  }
  return fallback;
}

// `old` is null on create; a status write never comes here.
void SetTemplateGeneration(const ResourceType& type, json& obj, const json* old) {
  if (type.group != "apps" || type.kind != "DaemonSet") return;
  int64_t generation = TemplateGeneration(obj, 1);
  if (old != nullptr) {
    const json& old_meta = (*old)["metadata"];
    // Objects stored before the annotation existed start from their generation.
    generation = TemplateGeneration(*old, old_meta.value("generation", int64_t{1}));
    const json none;
    const json& spec = obj.contains("spec") ? obj["spec"] : none;
    const json& old_spec = old->contains("spec") ? (*old)["spec"] : none;
    if (spec.value("template", json()) != old_spec.value("template", json())) ++generation;
  }
  json& annotations = obj["metadata"]["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  annotations[kTemplateGenerationAnnotation] = std::to_string(generation);
}

// Kinds whose metadata.generation counts spec changes: those with a status written by a
// controller (the core group's pods, nodes, namespaces and services do not track it).
bool TracksGeneration(const ResourceType& type) {
  if (type.crd) return true;
  if (!type.HasStatus()) return false;
  return !type.group.empty() || type.kind == "ReplicationController";
}

json WithoutMetaAndStatus(const json& obj) {
  json copy = obj;
  copy.erase("metadata");
  copy.erase("status");
  return copy;
}

bool HasFinalizers(const ResourceType& type, const json& obj) {
  auto m = obj.find("metadata");
  if (m != obj.end() && m->is_object()) {
    auto f = m->find("finalizers");
    if (f != m->end() && f->is_array() && !f->empty()) return true;
  }
  if (type.group.empty() && type.kind == "Namespace") {
    auto s = obj.find("spec");
    if (s != obj.end() && s->is_object()) {
      auto f = s->find("finalizers");
      if (f != s->end() && f->is_array() && !f->empty()) return true;
    }
  }
  return false;
}

// Objects compared for a no-op write: managedFields timestamps do not count.
bool SameObject(const json& a, const json& b) {
  if (a == b) return true;
  // Most writes change something outside metadata (a binding its spec): known without a copy.
  if (!a.is_object() || !b.is_object() || a.size() != b.size()) return false;
  for (auto it = a.begin(); it != a.end(); ++it) {
    auto other = b.find(it.key());
    if (other == b.end()) return false;
    if (it.key() != "metadata" && *it != *other) return false;
  }
  // Only metadata differs: compare it without the fields that do not count.
  auto ma = a.find("metadata");
  auto mb = b.find("metadata");
  if (ma == a.end() || mb == b.end()) return false;
  json x = *ma, y = *mb;
  for (json* m : {&x, &y}) {
    if (!m->is_object()) continue;
    m->erase("resourceVersion");
    auto mf = m->find("managedFields");
    if (mf != m->end() && mf->is_array()) {
      for (json& e : *mf) e.erase("time");
    }
  }
  return x == y;
}

// Continue tokens carry the list's revision and the last key returned, so later pages read
// the same snapshot.
std::string MakeContinue(int64_t revision, const std::string& last_key) {
  return Base64Encode(
      json({{"v", "meta.k8s.io/v1"}, {"rv", revision}, {"start", last_key}}).dump());
}

bool ParseContinue(const std::string& token, int64_t* revision, std::string* last_key) {
  auto raw = Base64Decode(token);
  if (!raw) return false;
  json j = json::parse(*raw, nullptr, false);
  if (!j.is_object() || !j.contains("rv") || !j["rv"].is_number_integer() || !j.contains("start") ||
      !j["start"].is_string()) {
    return false;
  }
  *revision = j["rv"].get<int64_t>();
  *last_key = j["start"].get<std::string>();
  return true;
}

const char* kExpiredContinue =
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list.";

// Upstream's decoding failure: `Deployment in version "v1" cannot be handled as a Deployment:`.
std::string CannotHandle(const ResourceType& type, const std::string& what) {
  return fmt::format("{} in version \"{}\" cannot be handled as a {}: {}", type.kind, type.version,
                     type.kind, what);
}

// What the field manager needs to know of a write: where it goes and which fields the
// endpoint resets (status on the main resource, everything else on /status).
FieldManagerOptions ManagerOptions(const ResourceType& type, const std::string& subresource) {
  FieldManagerOptions options;
  options.api_version = type.GroupVersion();
  options.kind = type.kind;
  options.subresource = subresource;
  options.now = NowTime();
  if (subresource == "status") {
    options.reset_fields = {{"spec"}, {"metadata"}};
  } else if (type.HasStatus()) {
    options.reset_fields = {{"status"}};
  }
  return options;
}

ApiError ApplyFailure(const Status& status) {
  if (status.code() == StatusCode::kInvalidArgument) return ApiError::BadRequest(status.message());
  return ApiError::Internal(status.message());
}

ApiError ApplyConflictError(const ResourceType& type, const std::string& name,
                            const std::vector<ApplyConflict>& conflicts) {
  ApiError e{409, "Conflict", ApplyConflictMessage(conflicts), json()};
  e.details = {{"name", name}, {"kind", type.plural}, {"causes", ApplyConflictCauses(conflicts)}};
  if (!type.group.empty()) e.details["group"] = type.group;
  return e;
}

}  // namespace

Rest::Rest(Store& store, const SecretBox* secrets, std::vector<AdmissionPlugin*> plugins)
    : store_(store), secrets_(secrets), plugins_(std::move(plugins)) {}

std::string Rest::Encode(const ResourceType& type, const json& obj) const {
  json copy = type.converter != nullptr ? type.converter->ToStorage(obj) : obj;
  auto m = copy.find("metadata");
  if (m != copy.end() && m->is_object()) m->erase("resourceVersion");
  std::string text = copy.dump();
  if (type.secret && secrets_ != nullptr) return secrets_->Seal(text);
  return text;
}

std::string Rest::EncodeForWrite(const ResourceType& type, json& obj) const {
  if (type.converter != nullptr) return Encode(type, obj);
  auto m = obj.find("metadata");
  if (m != obj.end() && m->is_object()) m->erase("resourceVersion");
  std::string text = obj.dump();
  if (type.secret && secrets_ != nullptr) return secrets_->Seal(text);
  return text;
}

void Rest::StashWrite(const ResourceType& type, const std::string& key, int64_t revision, json& obj,
                      json* prev, bool discard) {
  // A converted type decodes into another form than the one written; custom resources get the
  // cache's apiVersion on decode (the watch cache checks it).
  if (type.converter != nullptr) return;
  WriteStash::Objects objects;
  objects.object =
      discard ? std::make_shared<const json>(std::move(obj)) : std::make_shared<const json>(obj);
  if (prev != nullptr) objects.prev = std::make_shared<const json>(std::move(*prev));
  stash_.Put(key, revision, std::move(objects));
}

ApiResult<json> Rest::Decode(const ResourceType& type, const KeyValue& kv) const {
  auto obj = DecodeStored(type, kv);
  if (obj.ok() && type.converter != nullptr) return type.converter->FromStorage(std::move(*obj));
  return obj;
}

ApiResult<json> Rest::DecodeStored(const ResourceType& type, const KeyValue& kv) const {
  std::string text = kv.value;
  if (type.secret && secrets_ != nullptr) {
    auto plain = secrets_->Unseal(kv.value);
    if (!plain.ok()) return ApiError::Internal(plain.status().message());
    text = std::move(*plain);
  }
  json obj = json::parse(text, nullptr, false);
  if (obj.is_discarded() || !obj.is_object()) {
    return ApiError::Internal("stored object " + kv.key + " is not valid JSON");
  }
  SetResourceVersion(obj, kv.mod_revision);
  // Custom resources are stored once and served in every version (no conversion).
  if (type.crd) obj["apiVersion"] = type.GroupVersion();
  return obj;
}

ApiResult<json> Rest::Get(const ResourceType& type, const std::string& ns,
                          const std::string& name) {
  auto kv = store_.Get(type.StoreKey(ns, name));
  if (!kv.ok()) return ApiError::FromStatus(kv.status(), type.QualifiedPlural(), name);
  return Decode(type, *kv);
}

ApiResult<ListPage> Rest::List(const ResourceType& type, const std::string& ns,
                               const ListQuery& query) {
  auto labels = LabelSelector::Parse(query.label_selector);
  if (!labels.ok()) return ApiError::BadRequest(labels.status().message());
  auto fields = FieldSelector::Parse(query.field_selector, type.field_rules);
  if (!fields.ok()) return ApiError::BadRequest(fields.status().message());

  std::string prefix =
      type.namespaced && !ns.empty() ? type.StorePrefix() + ns + "/" : type.StorePrefix();
  RangeOptions options;
  options.prefix = prefix;
  if (!query.continue_token.empty()) {
    std::string last_key;
    if (!ParseContinue(query.continue_token, &options.revision, &last_key) ||
        last_key.compare(0, prefix.size(), prefix) != 0) {
      return ApiError::BadRequest("continue key is not valid");
    }
    options.start_after = last_key;
  } else if (query.resource_version_match == "Exact") {
    try {
      options.revision = std::stoll(query.resource_version);
    } catch (...) {
      return ApiError::BadRequest(
          "resourceVersion must be an integer with resourceVersionMatch=Exact");
    }
  }

  ListPage page;
  // Filtering happens after reading, so read in batches until the page is full.
  const int64_t batch = query.limit > 0 ? std::max<int64_t>(query.limit, 100) : 0;
  for (;;) {
    options.limit = batch;
    auto result = store_.List(options);
    if (!result.ok()) {
      if (result.status().code() == StatusCode::kCompacted) {
        return query.continue_token.empty() ? ApiError::Expired(fmt::format(
                                                  "too old resource version: {}", options.revision))
                                            : ApiError::Expired(kExpiredContinue);
      }
      return ApiError::FromStatus(result.status());
    }
    page.revision = result->revision;
    options.revision = result->revision;
    for (size_t i = 0; i < result->kvs.size(); ++i) {
      const KeyValue& kv = result->kvs[i];
      // Selectors see the stored form, as the watch cache's filters do.
      auto obj = DecodeStored(type, kv);
      if (!obj.ok()) return obj.error();
      const json& meta = obj->contains("metadata") ? (*obj)["metadata"] : json();
      if (!labels->Matches(meta.contains("labels") ? meta["labels"] : json::object())) continue;
      if (!fields->Matches(*obj)) continue;
      if (type.converter != nullptr) *obj = type.converter->FromStorage(std::move(*obj));
      page.items.push_back(std::move(*obj));
      if (query.limit > 0 && static_cast<int64_t>(page.items.size()) >= query.limit) {
        bool more = result->more || i + 1 < result->kvs.size();
        if (more) page.continue_token = MakeContinue(page.revision, kv.key);
        return page;
      }
    }
    if (!result->more || result->kvs.empty()) return page;
    options.start_after = result->kvs.back().key;
  }
}

std::optional<ApiError> Rest::RunAdmission(AdmissionRequest& request) {
  for (size_t i = 0; i < plugins_.size(); ++i) {
    if (auto error = plugins_[i]->Admit(request)) {
      for (size_t j = 0; j < i; ++j) plugins_[j]->Aborted(request);
      return error;
    }
  }
  return std::nullopt;
}

void Rest::FinishAdmission(const AdmissionRequest& request, bool committed) {
  for (AdmissionPlugin* plugin : plugins_) {
    if (committed) {
      plugin->Committed(request);
    } else {
      plugin->Aborted(request);
    }
  }
}

std::optional<ApiError> Rest::PrepareWrite(const ResourceType& type, json& obj, const json* old,
                                           const std::string& subresource,
                                           const WriteOptions& options,
                                           std::vector<std::string>& warnings) {
  // A binding changes the stored pod's spec.nodeName and PodScheduled condition and nothing a
  // client sent: as upstream's binding storage does, it skips defaulting, validation and managed
  // fields, about a third of the cost of the scheduler's hottest write.
  if (subresource == "binding" && old != nullptr) return std::nullopt;
  if (!obj.is_object()) return ApiError::BadRequest(CannotHandle(type, "expected an object"));
  if (!obj.contains("metadata") || obj["metadata"].is_null()) obj["metadata"] = json::object();
  if (!obj["metadata"].is_object()) {
    return ApiError::BadRequest(CannotHandle(type, "metadata must be an object"));
  }
  obj["apiVersion"] = type.GroupVersion();
  obj["kind"] = type.kind;

  // Unknown fields and wrong types, as the decoder would find them.
  if (type.schema != nullptr) {
    auto mode = ParseValidationMode(options.field_validation);
    if (!mode.ok()) return ApiError::BadRequest(mode.status().message());
    FieldCheckOptions check_options;
    check_options.custom_resource = type.crd;
    FieldCheck check = ValidateFields(obj, *type.schema, *mode, check_options);
    if (!check.type_errors.empty()) {
      return ApiError::BadRequest(CannotHandle(type, check.type_errors.front()));
    }
    if (std::string strict = check.StrictError(); !strict.empty()) {
      return ApiError::BadRequest(CannotHandle(type, strict));
    }
    warnings.insert(warnings.end(), check.warnings.begin(), check.warnings.end());
    // Like upstream's decoder, unknown fields never reach the datastore.
    Prune(obj, *type.schema);
  }

  json& meta = obj["metadata"];
  if (old == nullptr) {
    meta["uid"] = NewUid();
    meta["creationTimestamp"] = NowTime();
    for (const char* f :
         {"resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"}) {
      meta.erase(f);
    }
    if (type.HasStatus() && type.strategy->ResetStatusOnCreate()) obj.erase("status");
    type.strategy->PrepareForCreate(obj);
    if (TracksGeneration(type)) meta["generation"] = 1;
  } else {
    const json& old_meta = (*old)["metadata"];
    if (subresource == "status") {
      // A status write changes the status alone.
      json status = obj.contains("status") ? obj["status"] : json();
      json next = *old;
      if (status.is_null()) {
        next.erase("status");
      } else {
        next["status"] = std::move(status);
      }
      if (meta.contains("resourceVersion"))
        next["metadata"]["resourceVersion"] = meta["resourceVersion"];
      obj = std::move(next);
    } else {
      for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp",
                            "deletionGracePeriodSeconds", "namespace", "name"}) {
        if (old_meta.contains(f)) {
          meta[f] = old_meta[f];
        } else {
          meta.erase(f);
        }
      }
      if (type.HasStatus() && subresource.empty()) {
        if (old->contains("status")) {
          obj["status"] = (*old)["status"];
        } else {
          obj.erase("status");
        }
      }
      if (TracksGeneration(type)) {
        int64_t generation = old_meta.value("generation", int64_t{1});
        if (WithoutMetaAndStatus(obj) != WithoutMetaAndStatus(*old)) ++generation;
        obj["metadata"]["generation"] = generation;
      }
    }
  }
  json& m = obj["metadata"];

  if (type.schema != nullptr) ApplyDefaults(obj, *type.schema);
  type.strategy->Default(obj);
  if (subresource != "status") SetTemplateGeneration(type, obj, old);

  FieldErrors errors;
  ValidateObjectMeta(type, obj, old, errors);
  type.strategy->Validate(obj, errors);
  if (old != nullptr) type.strategy->ValidateUpdate(obj, *old, errors);
  if (type.crd && type.schema != nullptr) ValidateValues(obj, *type.schema, errors);
  if (!errors.empty()) {
    return ApiError::Invalid(type.QualifiedKind(), m.value("name", std::string()), errors);
  }

  if (!options.applied) {
    std::string manager = options.field_manager.empty() ? "unknown" : options.field_manager;
    if (Status status =
            UpdateManagedFields(old, obj, manager, type.schema, ManagerOptions(type, subresource));
        !status.ok()) {
      return ApiError::BadRequest(status.message());
    }
  }
  return std::nullopt;
}

ApiResult<WriteOutcome> Rest::Create(const ResourceType& type, const std::string& ns, json body,
                                     const WriteOptions& options) {
  if (!body.is_object()) return ApiError::BadRequest(CannotHandle(type, "expected an object"));
  if (body.contains("kind") && body["kind"] != type.kind) {
    return ApiError::BadRequest(
        fmt::format("the kind of the object ({}) does not match the "
                    "expected kind ({})",
                    body["kind"].dump(), type.kind));
  }
  if (body.contains("apiVersion") && body["apiVersion"] != type.GroupVersion()) {
    return ApiError::BadRequest(
        fmt::format("the API version in the data ({}) does not match the expected API version ({})",
                    body["apiVersion"].is_string() ? body["apiVersion"].get<std::string>()
                                                   : body["apiVersion"].dump(),
                    type.GroupVersion()));
  }
  if (!body.contains("metadata") || body["metadata"].is_null()) body["metadata"] = json::object();
  if (!body["metadata"].is_object()) {
    return ApiError::BadRequest(CannotHandle(type, "metadata must be an object"));
  }
  json& meta = body["metadata"];
  if (type.namespaced) {
    std::string body_ns = Namespace(body);
    if (!body_ns.empty() && body_ns != ns) {
      return ApiError::BadRequest(
          "the namespace of the provided object does not match the namespace sent on the request");
    }
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");
  }
  if (Name(body).empty() && meta.contains("generateName") && meta["generateName"].is_string() &&
      !meta["generateName"].get<std::string>().empty()) {
    meta["name"] = meta["generateName"].get<std::string>() + RandomSuffix();
  }

  WriteOutcome outcome;
  outcome.code = 201;
  if (auto error = PrepareWrite(type, body, nullptr, "", options, outcome.warnings)) return *error;
  AdmissionRequest admission{
      AdmissionRequest::Operation::kCreate, &type, "", &body, nullptr, options.dry_run};
  if (auto error = RunAdmission(admission)) return *error;
  std::string name = Name(body);
  if (options.dry_run) {
    FinishAdmission(admission, false);
    outcome.object = std::move(body);
    return outcome;
  }
  const std::string key = type.StoreKey(ns, name);
  auto kv = store_.Create(key, EncodeForWrite(type, body),
                          std::chrono::seconds(type.kind == "Event" ? 3600 : 0));
  if (!kv.ok()) {
    FinishAdmission(admission, false);
    return ApiError::FromStatus(kv.status(), type.QualifiedPlural(), name);
  }
  FinishAdmission(admission, true);
  SetResourceVersion(body, kv->mod_revision);
  StashWrite(type, key, kv->mod_revision, body, nullptr, options.discard_object);
  if (!options.discard_object) outcome.object = std::move(body);
  return outcome;
}

ApiResult<WriteOutcome> Rest::GuaranteedUpdate(const ResourceType& type, const std::string& ns,
                                               const std::string& name,
                                               const std::string& subresource,
                                               const WriteOptions& options,
                                               const Mutation& mutate) {
  const std::string key = type.StoreKey(ns, name);
  for (int attempt = 0; attempt < kMaxUpdateAttempts; ++attempt) {
    auto kv = store_.Get(key);
    if (!kv.ok()) return ApiError::FromStatus(kv.status(), type.QualifiedPlural(), name);
    auto current = Decode(type, *kv);
    if (!current.ok()) return current.error();
    auto next = mutate(*current);
    if (!next.ok()) return next.error();
    json obj = std::move(*next);
    WriteOutcome outcome;
    if (auto error = PrepareWrite(type, obj, &*current, subresource, options, outcome.warnings)) {
      return *error;
    }
    // Removing the last finalizer of an object being deleted completes its deletion.
    if (IsDeleting(obj) && !HasFinalizers(type, obj)) {
      return RemoveFromStore(type, obj, kv->mod_revision, options.dry_run);
    }
    if (SameObject(obj, *current)) {
      outcome.object = std::move(*current);
      return outcome;
    }
    AdmissionRequest admission{
        AdmissionRequest::Operation::kUpdate, &type, subresource, &obj, &*current, options.dry_run};
    if (auto error = RunAdmission(admission)) return *error;
    if (options.dry_run) {
      FinishAdmission(admission, false);
      outcome.object = std::move(obj);
      return outcome;
    }
    auto written = store_.Update(key, EncodeForWrite(type, obj), kv->mod_revision);
    if (!written.ok()) {
      FinishAdmission(admission, false);
      if (written.status().code() == StatusCode::kConflict) continue;
      return ApiError::FromStatus(written.status(), type.QualifiedPlural(), name);
    }
    FinishAdmission(admission, true);
    SetResourceVersion(obj, written->mod_revision);
    // The state this write replaced is what the store's event carries as its previous value.
    StashWrite(type, key, written->mod_revision, obj, &*current, options.discard_object);
    if (!options.discard_object) outcome.object = std::move(obj);
    return outcome;
  }
  return ApiError::Conflict(type.QualifiedPlural(), name,
                            "the object has been modified too often while updating; try again");
}

ApiResult<WriteOutcome> Rest::Update(const ResourceType& type, const std::string& ns,
                                     const std::string& name, json body,
                                     const std::string& subresource, const WriteOptions& options) {
  if (!body.is_object()) return ApiError::BadRequest(CannotHandle(type, "expected an object"));
  if (!body.contains("metadata") || !body["metadata"].is_object()) {
    body["metadata"] = json::object();
  }
  std::string body_name = Name(body);
  if (body_name.empty()) {
    body["metadata"]["name"] = name;
  } else if (body_name != name) {
    return ApiError::BadRequest(fmt::format(
        "the name of the object ({}) does not match the name on the URL ({})", body_name, name));
  }
  if (type.namespaced) {
    std::string body_ns = Namespace(body);
    if (!body_ns.empty() && body_ns != ns) {
      return ApiError::BadRequest(
          "the namespace of the provided object does not match the namespace sent on the request");
    }
    body["metadata"]["namespace"] = ns;
  }
  int64_t rv = ResourceVersion(body);
  if (rv < 0)
    return ApiError::BadRequest("metadata.resourceVersion: Invalid value: must be an integer");
  return GuaranteedUpdate(
      type, ns, name, subresource, options, [&](const json& current) -> ApiResult<json> {
        if (rv > 0 && rv != ResourceVersion(current)) {
          return ApiError::FromStatus(Conflict(""), type.QualifiedPlural(), name);
        }
        return body;
      });
}

ApiResult<WriteOutcome> Rest::Bind(const ResourceType& pods, const std::string& ns,
                                   const std::string& pod, const std::string& node,
                                   const WriteOptions& options) {
  // The "binding" subresource lets one write carry both spec.nodeName and the status condition.
  // The caller answers a Status: the written pod goes to the watch cache uncopied.
  WriteOptions bind_options = options;
  bind_options.discard_object = true;
  return GuaranteedUpdate(
      pods, ns, pod, "binding", bind_options, [&](const json& current) -> ApiResult<json> {
        const json* spec = current.contains("spec") ? &current["spec"] : nullptr;
        std::string bound = spec != nullptr ? spec->value("nodeName", "") : "";
        if (!bound.empty()) {
          return ApiError::Conflict(
              "pods", pod, fmt::format("pod {} is already assigned to node \"{}\"", pod, bound));
        }
        if (IsDeleting(current)) {
          return ApiError::Conflict(
              "pods", pod,
              fmt::format("pod {} is being deleted, cannot be assigned to a host", pod));
        }
        json next = current;
        next["spec"]["nodeName"] = node;
        json& conditions = next["status"]["conditions"];
        if (!conditions.is_array()) conditions = json::array();
        json scheduled = {{"type", "PodScheduled"},
                          {"status", "True"},
                          {"lastProbeTime", nullptr},
                          {"lastTransitionTime", NowTime()}};
        auto it = std::find_if(conditions.begin(), conditions.end(), [](const json& c) {
          return c.is_object() && c.value("type", "") == "PodScheduled";
        });
        if (it == conditions.end()) {
          conditions.push_back(std::move(scheduled));
        } else {
          *it = std::move(scheduled);
        }
        return next;
      });
}

ApiResult<WriteOutcome> Rest::Patch(const ResourceType& type, const std::string& ns,
                                    const std::string& name, const std::string& content_type,
                                    const std::string& patch, const std::string& subresource,
                                    const WriteOptions& options) {
  auto patch_type = PatchTypeFromContentType(content_type);
  if (!patch_type) {
    return ApiError::UnsupportedMediaType(UnsupportedPatchTypeMessage(type.crd));
  }
  if (Status supported = CheckPatchTypeSupported(*patch_type, type.crd || type.schema == nullptr);
      !supported.ok()) {
    return ApiError::UnsupportedMediaType(supported.message());
  }
  const bool apply = *patch_type == PatchType::kApplyPatch;
  auto parsed = ParseBody(patch, apply ? "application/apply-patch+yaml" : "application/json");
  if (!parsed.ok()) return parsed.error();
  json patch_doc = std::move(*parsed);
  std::optional<JsonPatch> operations;
  if (*patch_type == PatchType::kJsonPatch) {
    auto decoded = DecodeJsonPatch(patch_doc);
    if (!decoded.ok()) return ApiError::BadRequest(decoded.status().message());
    operations = std::move(*decoded);
  } else if (!patch_doc.is_object()) {
    return ApiError::BadRequest(apply ? "the apply configuration must be an object"
                                      : "the patch must be a JSON object");
  }

  if (apply) {
    if (options.field_manager.empty()) {
      return ApiError::BadRequest(
          "PATCH requests with apply content type must carry a fieldManager");
    }
    auto existing = store_.Get(type.StoreKey(ns, name));
    if (!existing.ok() && existing.status().code() == StatusCode::kNotFound &&
        subresource.empty()) {
      auto applied = ServerSideApply(nullptr, patch_doc, options.field_manager, options.force,
                                     type.schema, ManagerOptions(type, subresource));
      if (!applied.ok()) return ApplyFailure(applied.status());
      json obj = std::move(applied->object);
      if (!obj.contains("metadata") || !obj["metadata"].is_object())
        obj["metadata"] = json::object();
      if (Name(obj) != name) {
        return ApiError::BadRequest(
            fmt::format("the name of the object ({}) does not match the name on the URL ({})",
                        Name(obj), name));
      }
      WriteOptions create_options = options;
      create_options.applied = true;
      return Create(type, ns, std::move(obj), create_options);
    }
  }

  int64_t pinned = 0;
  WriteOptions update_options = options;
  update_options.applied = apply;
  return GuaranteedUpdate(
      type, ns, name, subresource, update_options, [&](const json& current) -> ApiResult<json> {
        json result;
        if (apply) {
          auto applied = ServerSideApply(&current, patch_doc, options.field_manager, options.force,
                                         type.schema, ManagerOptions(type, subresource));
          if (!applied.ok()) return ApplyFailure(applied.status());
          if (!applied->conflicts.empty()) {
            return ApplyConflictError(type, name, applied->conflicts);
          }
          result = std::move(applied->object);
        } else {
          Result<json> patched = *patch_type == PatchType::kJsonPatch
                                     ? ApplyJsonPatch(current, *operations)
                                 : *patch_type == PatchType::kMergePatch
                                     ? MergePatch(current, patch_doc)
                                     : StrategicMergePatch(current, patch_doc, type.schema);
          if (!patched.ok()) {
            const Status& st = patched.status();
            if (st.code() == StatusCode::kConflict) {
              return ApiError::FromStatus(st, type.QualifiedPlural(), name);
            }
            if (st.code() == StatusCode::kInternal) return ApiError::Internal(st.message());
            if (*patch_type == PatchType::kJsonPatch || IsUnprocessablePatchError(st)) {
              return ApiError{422, "Invalid", st.message(), json()};
            }
            return ApiError::BadRequest(st.message());
          }
          result = std::move(*patched);
        }
        // A resourceVersion in the patch is a precondition.
        int64_t rv = ResourceVersion(result);
        if (rv != ResourceVersion(current) && rv != 0) pinned = rv;
        if (pinned != 0 && pinned != ResourceVersion(current)) {
          return ApiError::FromStatus(Conflict(""), type.QualifiedPlural(), name);
        }
        if (Name(result) != name) {
          return ApiError::BadRequest(
              fmt::format("the name of the object ({}) does not match the name on the URL ({})",
                          Name(result), name));
        }
        return result;
      });
}

ApiResult<WriteOutcome> Rest::RemoveFromStore(const ResourceType& type, const json& current,
                                              int64_t revision, bool dry_run) {
  WriteOutcome outcome;
  outcome.object = current;
  if (dry_run) return outcome;
  auto deleted = store_.Delete(type.StoreKey(Namespace(current), Name(current)), revision);
  if (!deleted.ok()) {
    return ApiError::FromStatus(deleted.status(), type.QualifiedPlural(), Name(current));
  }
  SetResourceVersion(outcome.object, deleted->kv.mod_revision);
  return outcome;
}

ApiResult<WriteOutcome> Rest::Delete(const ResourceType& type, const std::string& ns,
                                     const std::string& name, const DeleteOptions& options) {
  const std::string key = type.StoreKey(ns, name);
  const std::string what = type.QualifiedPlural();
  for (int attempt = 0; attempt < kMaxUpdateAttempts; ++attempt) {
    auto kv = store_.Get(key);
    if (!kv.ok()) return ApiError::FromStatus(kv.status(), what, name);
    auto decoded = Decode(type, *kv);
    if (!decoded.ok()) return decoded.error();
    json current = std::move(*decoded);
    if (!options.precondition_uid.empty() && options.precondition_uid != Uid(current)) {
      return ApiError::Conflict(what, name,
                                fmt::format("Precondition failed: UID in precondition: {}, UID "
                                            "in object meta: {}",
                                            options.precondition_uid, Uid(current)));
    }
    if (!options.precondition_resource_version.empty() &&
        options.precondition_resource_version != MetaString(current, "resourceVersion")) {
      return ApiError::Conflict(
          what, name,
          fmt::format("Precondition failed: ResourceVersion in precondition: {}, "
                      "ResourceVersion in object meta: {}",
                      options.precondition_resource_version,
                      MetaString(current, "resourceVersion")));
    }

    AdmissionRequest admission{
        AdmissionRequest::Operation::kDelete, &type, "", nullptr, &current, options.dry_run};
    if (auto error = RunAdmission(admission)) return *error;

    json next = current;
    json& meta = next["metadata"];
    bool pending = false;  // deletion waits for the agent or for finalizers

    // Pods bound to a node terminate gracefully: the agent stops the containers and then
    // deletes the pod for good.
    if (type.group.empty() && type.kind == "Pod") {
      const json& spec = current.contains("spec") ? current["spec"] : json::object();
      std::string phase = current.contains("status") ? current["status"].value("phase", "") : "";
      bool bound = spec.contains("nodeName") && spec["nodeName"].is_string() &&
                   !spec["nodeName"].get<std::string>().empty();
      int64_t grace = options.grace_period_seconds.value_or(
          spec.value("terminationGracePeriodSeconds", int64_t{30}));
      if (!bound || phase == "Succeeded" || phase == "Failed") grace = 0;
      if (grace > 0) {
        int64_t existing = meta.value("deletionGracePeriodSeconds", int64_t{-1});
        if (existing < 0 || grace < existing) {
          meta["deletionGracePeriodSeconds"] = grace;
          meta["deletionTimestamp"] =
              FormatTime(std::chrono::system_clock::now() + std::chrono::seconds(grace));
        }
        pending = true;
      }
    }
    if (type.group.empty() && type.kind == "Namespace") {
      next["status"]["phase"] = "Terminating";
    }
    // The garbage collector's finalizers say how dependents go. Without a policy in the request
    // a finalizer set by an earlier delete stands, else the kind's default (batch/v1 Jobs orphan
    // their pods, as upstream); an explicit policy replaces them.
    json& finalizers = meta["finalizers"];
    if (!finalizers.is_array()) finalizers = json::array();
    auto has = [&](const char* f) {
      return std::find(finalizers.begin(), finalizers.end(), f) != finalizers.end();
    };
    std::string policy = options.propagation_policy;
    if (policy.empty()) {
      if (has("orphan")) {
        policy = "Orphan";
      } else if (has("foregroundDeletion")) {
        policy = "Foreground";
      } else if (type.group == "batch" && type.kind == "Job") {
        policy = "Orphan";
      }
    }
    json kept = json::array();
    for (const json& f : finalizers) {
      if (f != "orphan" && f != "foregroundDeletion") kept.push_back(f);
    }
    if (policy == "Orphan") kept.push_back("orphan");
    if (policy == "Foreground") kept.push_back("foregroundDeletion");
    if (kept.empty() && finalizers.empty()) {
      meta.erase("finalizers");
    } else {
      finalizers = std::move(kept);
    }
    if (HasFinalizers(type, next)) {
      if (!meta.contains("deletionTimestamp")) {
        meta["deletionTimestamp"] = NowTime();
        meta["deletionGracePeriodSeconds"] = 0;
      }
      pending = true;
    }

    if (!pending) {
      auto removed = RemoveFromStore(type, current, kv->mod_revision, options.dry_run);
      FinishAdmission(admission, removed.ok() && !options.dry_run);
      if (!removed.ok() && removed.error().reason == "Conflict") continue;
      return removed;
    }
    FinishAdmission(admission, false);
    WriteOutcome outcome;
    if (SameObject(next, current) || options.dry_run) {
      outcome.object = options.dry_run ? std::move(next) : std::move(current);
      return outcome;
    }
    auto written = store_.Update(key, Encode(type, next), kv->mod_revision);
    if (!written.ok()) {
      if (written.status().code() == StatusCode::kConflict) continue;
      return ApiError::FromStatus(written.status(), what, name);
    }
    SetResourceVersion(next, written->mod_revision);
    outcome.object = std::move(next);
    return outcome;
  }
  return ApiError::Conflict(what, name, "the object kept changing while being deleted; try again");
}

ApiResult<ListPage> Rest::DeleteCollection(const ResourceType& type, const std::string& ns,
                                           const ListQuery& query, const DeleteOptions& options) {
  ListQuery all = query;
  all.limit = 0;
  all.continue_token.clear();
  auto listed = List(type, ns, all);
  if (!listed.ok()) return listed.error();
  ListPage deleted;
  deleted.revision = listed->revision;
  for (const json& item : listed->items) {
    auto result = Delete(type, Namespace(item), Name(item), options);
    if (result.ok()) {
      deleted.items.push_back(std::move(result->object));
    } else if (result.error().code != 404) {
      return result.error();
    }
  }
  return deleted;
}

}  // namespace orch::api
