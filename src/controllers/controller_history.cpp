// The ControllerRevision history of DaemonSets and StatefulSets (controller_history.h), with the
// semantics of upstream's pkg/controller/history.
#include "controller_history.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "deployment_util.h"

namespace orch::ctrl::history {

namespace {

// Object names may have 253 characters; the hash (at most 10) and the dash must fit.
constexpr size_t kMaxNamePrefix = 223;
// How many hash collisions CreateRevision steps over before giving up for this sync.
constexpr int kMaxCollisionRetries = 5;

std::optional<TimePoint> CreationTime(const json& object) {
  return ParseTime(StringField(object, {"metadata", "creationTimestamp"}));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pure functions.

std::string HashRevisionData(const json& data, int64_t collision_count) {
  return deploy::ComputeHash(
      data, collision_count == 0 ? std::nullopt : std::optional<int64_t>(collision_count));
}

std::string RevisionName(std::string_view owner_name, std::string_view hash) {
  std::string_view prefix = owner_name.substr(0, std::min(owner_name.size(), kMaxNamePrefix));
  return fmt::format("{}-{}", prefix, hash);
}

json TemplateRevisionData(const json& owner) {
  json template_copy = Field(owner, {"spec", "template"});
  if (!template_copy.is_object()) template_copy = json::object();
  template_copy["$patch"] = "replace";
  return {{"spec", {{"template", std::move(template_copy)}}}};
}

json TemplateFromRevision(const json& revision) {
  json template_copy = Field(revision, {"data", "spec", "template"});
  if (!template_copy.is_object()) return nullptr;
  template_copy.erase("$patch");
  return template_copy;
}

json NewRevision(const Owner& owner, const json& labels, const json& annotations, const json& data,
                 int64_t revision, int64_t collision_count) {
  const std::string hash = HashRevisionData(data, collision_count);
  json meta = {{"name", RevisionName(NameOf(owner.object), hash)},
               {"namespace", NamespaceOf(owner.object)},
               {"labels", labels.is_object() ? labels : json::object()},
               {"ownerReferences",
                json::array({NewControllerRef(owner.object, owner.api_version, owner.kind)})}};
  meta["labels"][kControllerRevisionHashLabel] = hash;
  if (annotations.is_object() && !annotations.empty()) meta["annotations"] = annotations;
  return {{"apiVersion", "apps/v1"},
          {"kind", "ControllerRevision"},
          {"metadata", std::move(meta)},
          {"data", data},
          {"revision", revision}};
}

int64_t RevisionNumber(const json& revision) {
  return IntField(revision, {"revision"});
}

std::string RevisionHash(const json& revision) {
  std::string hash = StringField(revision, {"metadata", "labels", kControllerRevisionHashLabel});
  if (!hash.empty()) return hash;
  std::string name = NameOf(revision);
  size_t dash = name.rfind('-');
  return dash == std::string::npos ? "" : name.substr(dash + 1);
}

bool EqualRevision(const json& a, const json& b) {
  return DropEmpty(Field(a, {"data"})) == DropEmpty(Field(b, {"data"}));
}

void SortRevisions(RevisionList& revisions) {
  std::stable_sort(revisions.begin(), revisions.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
    int64_t ra = RevisionNumber(*a), rb = RevisionNumber(*b);
    if (ra != rb) return ra < rb;
    auto ca = CreationTime(*a), cb = CreationTime(*b);
    if (ca != cb) return ca < cb;
    return NameOf(*a) < NameOf(*b);
  });
}

int64_t MaxRevision(const RevisionList& revisions) {
  int64_t max = 0;
  for (const ObjectPtr& r : revisions) max = std::max(max, RevisionNumber(*r));
  return max;
}

RevisionList FindEqualRevisions(const RevisionList& revisions, const json& data) {
  const json needle = DropEmpty(data);
  RevisionList out;
  for (const ObjectPtr& r : revisions) {
    if (DropEmpty(Field(*r, {"data"})) == needle) out.push_back(r);
  }
  return out;
}

int64_t RevisionHistoryLimit(const json& owner) {
  const json& v = Field(owner, {"spec", "revisionHistoryLimit"});
  if (!v.is_number_integer() || v.get<int64_t>() < 0) return kDefaultRevisionHistoryLimit;
  return v.get<int64_t>();
}

// ---------------------------------------------------------------------------------------------
// Through the API.

RevisionList ListRevisions(const Informer& revisions, const json& owner) {
  RevisionList out = revisions.ByIndex(kControllerIndex, UidOf(owner));
  SortRevisions(out);
  return out;
}

RevisionList ClaimRevisions(ApiClient& client, const Informer& revisions, const Owner& owner,
                            const ResourceRef& owner_resource, const LabelSelector& selector,
                            Status* first_error) {
  RefManager refs(client, resources::kControllerRevisions, owner.object, owner.api_version,
                  owner.kind, selector, RecheckOwner(client, owner_resource, owner.object));
  RevisionList out = refs.Claim(OwnedAndOrphans(revisions, owner.object), first_error);
  SortRevisions(out);
  return out;
}

Result<ObjectPtr> CreateRevision(ApiClient& client, const Owner& owner, const json& labels,
                                 const json& annotations, const json& data, int64_t revision,
                                 int64_t* collision_count) {
  const std::string ns = NamespaceOf(owner.object);
  for (int attempt = 0; attempt <= kMaxCollisionRetries; ++attempt) {
    json wanted = NewRevision(owner, labels, annotations, data, revision, *collision_count);
    auto created = client.Create(resources::kControllerRevisions, ns, wanted);
    if (created.ok()) return std::make_shared<const json>(std::move(*created));
    if (created.status().code() != StatusCode::kAlreadyExists) return created.status();
    auto existing = client.Get(resources::kControllerRevisions, ns, NameOf(wanted));
    if (!existing.ok()) return existing.status();  // deleted meanwhile: the next sync retries
    if (EqualRevision(*existing, wanted)) {
      return std::make_shared<const json>(std::move(*existing));
    }
    ++*collision_count;
  }
  return Conflict(fmt::format("{} {}/{}: no free ControllerRevision name after {} hash collisions",
                              owner.kind, ns, NameOf(owner.object), kMaxCollisionRetries));
}

Result<CurrentRevision> EnsureCurrentRevision(ApiClient& client, const Owner& owner,
                                              const json& labels, const json& annotations,
                                              const json& data, const RevisionList& revisions,
                                              int64_t* collision_count) {
  CurrentRevision out;
  out.revisions = revisions;
  SortRevisions(out.revisions);
  const int64_t max = MaxRevision(out.revisions);
  RevisionList equal = FindEqualRevisions(out.revisions, data);
  if (!equal.empty()) {
    // Several equal ones only come from older writers; the newest is the one to keep.
    ObjectPtr current = equal.back();
    if (RevisionNumber(*current) < max) {
      json patch = {{"metadata",
                     {{"resourceVersion", StringField(*current, {"metadata", "resourceVersion"})}}},
                    {"revision", max + 1}};
      auto updated = client.Patch(resources::kControllerRevisions, NamespaceOf(*current),
                                  NameOf(*current), PatchType::kMerge, patch.dump());
      if (!updated.ok()) return updated.status();
      ObjectPtr bumped = std::make_shared<const json>(std::move(*updated));
      std::replace(out.revisions.begin(), out.revisions.end(), current, bumped);
      current = std::move(bumped);
      SortRevisions(out.revisions);
    }
    out.revision = std::move(current);
    return out;
  }
  auto created = CreateRevision(client, owner, labels, annotations, data, max + 1, collision_count);
  if (!created.ok()) return created.status();
  out.created = true;
  out.revision = *created;
  // An equal revision already there (a stale cache) replaces the one we did not know of.
  std::erase_if(out.revisions,
                [&](const ObjectPtr& r) { return NameOf(*r) == NameOf(*out.revision); });
  out.revisions.push_back(out.revision);
  SortRevisions(out.revisions);
  return out;
}

Status TruncateHistory(ApiClient& client, RevisionList revisions,
                       const std::set<std::string>& in_use, int64_t limit, int* deleted) {
  if (deleted != nullptr) *deleted = 0;
  std::erase_if(revisions, [&](const ObjectPtr& r) {
    return in_use.count(NameOf(*r)) > 0 || in_use.count(RevisionHash(*r)) > 0;
  });
  if (static_cast<int64_t>(revisions.size()) <= limit) return Status::Ok();
  SortRevisions(revisions);
  revisions.resize(revisions.size() - static_cast<size_t>(std::max<int64_t>(limit, 0)));
  Status first_error;
  for (const ObjectPtr& r : revisions) {
    DeleteOptions options;
    options.precondition_uid = UidOf(*r);
    auto result =
        client.Delete(resources::kControllerRevisions, NamespaceOf(*r), NameOf(*r), options);
    if (result.ok()) {
      if (deleted != nullptr) ++*deleted;
    } else if (result.status().code() != StatusCode::kNotFound && first_error.ok()) {
      first_error = result.status();
    }
  }
  return first_error;
}

}  // namespace orch::ctrl::history
