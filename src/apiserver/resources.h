// The resources the API serves: one ResourceType per group/version/plural with its scope,
// names, subresources and per-kind strategy. Built-in types are fixed at start; custom
// resources are added and removed as CRDs come and go (copy-on-write snapshots).
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "conversion.h"
#include "errors.h"
#include "schema.h"
#include "selector.h"

namespace orch::api {

using json = nlohmann::json;
class ResourceType;

// Per-kind behaviour on top of the generic REST semantics. Default: nothing special.
class Strategy {
 public:
  virtual ~Strategy() = default;
  // Whether a create through the main resource starts with an empty status (true for kinds
  // whose status only their controller writes; false for Node, whose agent creates it whole).
  virtual bool ResetStatusOnCreate() const { return true; }
  // Kind-specific fields of a new object (after the status reset), e.g. a pod's phase.
  virtual void PrepareForCreate(json& /*obj*/) const {}
  // Defaults that depend on other fields (schema defaults are applied before this).
  virtual void Default(json& /*obj*/) const {}
  // Kind-specific checks of a new object; names and metadata are checked generically.
  virtual void Validate(const json& /*obj*/, FieldErrors& /*errors*/) const {}
  // Kind-specific checks of an update against the stored object (immutable fields, ...).
  virtual void ValidateUpdate(const json& /*obj*/, const json& /*old*/,
                              FieldErrors& /*errors*/) const {}
};

// A subresource as discovery lists it ("deployments/scale" is kind Scale of autoscaling/v1).
struct Subresource {
  std::string name;     // status, scale, binding, eviction, log, exec, ...
  std::string group;    // empty = the parent's
  std::string version;  // empty = the parent's
  std::string kind;     // empty = the parent's
  std::vector<std::string> verbs;
};

class ResourceType {
 public:
  std::string group;  // "" for core
  std::string version;
  std::string kind;
  std::string plural;
  std::string singular;
  bool namespaced = true;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  std::vector<std::string> verbs;  // empty = the standard eight
  std::vector<Subresource> subresources;
  const Schema* schema = nullptr;      // top-level schema of the kind; null = unknown fields kept
  const Strategy* strategy = nullptr;  // never null after registration
  std::shared_ptr<const FieldRules> field_rules;  // the fields selectors may use
  bool secret = false;                 // values encrypted at rest
  // Set on a version served from another version's stored form (conversion.h); the datastore
  // keys are then the stored version's.
  const VersionConverter* converter = nullptr;
  bool crd = false;
  json crd_version;                    // the CRD's version entry (printer columns, scale paths)
  std::shared_ptr<const void> owner;   // keeps a CRD's schema set alive

  std::string GroupVersion() const { return group.empty() ? version : group + "/" + version; }
  // "pods", "deployments.apps": how upstream names the resource in messages.
  std::string QualifiedPlural() const { return group.empty() ? plural : plural + "." + group; }
  // "Pod", "Deployment.apps": how upstream names the kind in Invalid messages.
  std::string QualifiedKind() const { return group.empty() ? kind : kind + "." + group; }
  // Datastore prefix of all objects: /registry/<group or core>/<plural>/
  std::string StorePrefix() const;
  // Datastore key of one object.
  std::string StoreKey(const std::string& ns, const std::string& name) const;
  const Subresource* FindSubresource(const std::string& name) const;
  bool HasStatus() const { return FindSubresource("status") != nullptr; }
  const std::vector<std::string>& Verbs() const;
};

// An immutable view of every served resource; lookups are lock-free on a snapshot.
class ResourceSet {
 public:
  void Add(std::shared_ptr<const ResourceType> type);
  // By group, version and plural (or singular/short name when `any_name`).
  const ResourceType* Find(const std::string& group, const std::string& version,
                           const std::string& plural) const;
  const ResourceType* FindKind(const std::string& group, const std::string& version,
                               const std::string& kind) const;
  // The stored version of the resource under a store prefix group/plural (the watch cache
  // decodes keys).
  const ResourceType* FindByStore(const std::string& store_group, const std::string& plural) const;
  const std::vector<std::shared_ptr<const ResourceType>>& all() const { return all_; }
  // Group names in discovery order, each with its versions (preferred first).
  std::vector<std::pair<std::string, std::vector<std::string>>> Groups() const;

 private:
  std::vector<std::shared_ptr<const ResourceType>> all_;
  std::map<std::string, const ResourceType*> by_path_;  // "group/version/plural"
};

// Holds the current ResourceSet; readers take a snapshot, writers (CRD changes) swap it.
class ResourceRegistry {
 public:
  explicit ResourceRegistry(std::shared_ptr<const ResourceSet> initial)
      : current_(std::move(initial)) {}
  std::shared_ptr<const ResourceSet> Current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  void Replace(std::shared_ptr<const ResourceSet> next) {
    std::lock_guard lock(mu_);
    current_ = std::move(next);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const ResourceSet> current_;  // guarded by mu_
};

// The built-in resources with their strategies, schemas looked up in `schemas` (may be null
// while schemas are missing: then no field validation happens for that kind).
std::shared_ptr<ResourceSet> BuiltinResources(const SchemaSet* schemas);

}  // namespace orch::api
