// An in-memory ApiClient for unit tests of everything that works through the API (informers,
// scheduler, controllers, agent): real resourceVersions, conflicts, watches and compaction.
#pragma once

// What it does, so that tests can rely on it:
//  - One global resourceVersion counter, bumped by every write; objects carry it as a string.
//  - Create: name or generateName (a 5-character suffix), uid, creationTimestamp, generation 1;
//    kAlreadyExists for a taken name; kInvalidArgument without a name or (namespaced) namespace.
//  - Update (PUT): kNotFound, kConflict when metadata.resourceVersion is set and stale. `status`
//    is written only through the "status" subresource (which writes nothing else), as the API
//    does for resources with a status subresource. metadata.generation goes up when anything
//    outside metadata and status changes. A write that changes nothing keeps the version.
//  - Patch: kMerge (RFC 7386) and kJson (RFC 6902), with the same rules as Update (a
//    metadata.resourceVersion in the patch is a precondition); other types are kInvalidArgument.
//  - Delete: preconditions, finalizers (sets deletionTimestamp; the object goes when an update
//    removes the last finalizer), graceful deletion of pods bound to a node (deletionTimestamp;
//    gone on a later delete with grace period 0), propagation policies Orphan/Foreground add
//    their finalizers. Returns the object while it stays, null JSON when it is gone.
//  - Namespaces: spec.finalizers hold a deletion as metadata.finalizers do; Delete sets
//    status.phase Terminating; the "finalize" subresource writes spec.finalizers only; Create in
//    a namespace being deleted fails (kInvalidArgument, the API's 403).
//  - Post: pods/binding (sets spec.nodeName, kConflict if already bound) and pods/eviction.
//  - List: label selectors (k=v, k==v, k!=v, k, !k) and field selectors (dotted.path=v,
//    dotted.path!=v), sorted by namespace/name, paging with limit/continue (continue is
//    served from the current state, not a snapshot); resource_version is the current counter.
//  - StartWatch: events after options.resource_version ("" or "0": from now) in order, from the
//    fake's own delivery thread, one callback at a time; kCompacted through on_end when that
//    version is older than the last Compact(). Watch::Stop waits for a running callback (unless
//    called from inside one) and guarantees no callback after it returns.
//  - Test controls: Compact (history; watches that fall behind it end kCompacted), EndWatches,
//  PauseWatches/ResumeWatches, WaitForDelivery,
//    SetErrorHook (fail chosen calls), Actions (what was called), WatchCount.
// Thread-safe. Callbacks must not block waiting on other callbacks of the same fake.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "orch/api_client.h"

namespace orch::testing {

// One call made to the fake, for tests that check what a component did.
struct Action {
  std::string verb;  // get list create update patch delete post watch
  std::string resource;
  std::string ns;
  std::string name;
  std::string subresource;
};

class FakeApiClient : public ApiClient {
 public:
  using json = nlohmann::json;

  FakeApiClient() : delivery_([this] { DeliveryLoop(); }) {}
  ~FakeApiClient() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
      cv_.notify_all();
    }
    delivery_.join();
  }
  FakeApiClient(const FakeApiClient&) = delete;
  FakeApiClient& operator=(const FakeApiClient&) = delete;

  // ---- Test controls ----

  // The last resourceVersion written.
  int64_t CurrentResourceVersion() const {
    std::lock_guard lock(mu_);
    return rv_;
  }

  // Forgets the event history up to now: a watch from an older resourceVersion ends with
  // kCompacted (informers re-list), and so do open watches that had not yet received all of it
  // (e.g. while paused), as a watcher that falls behind a compaction does.
  void Compact() {
    std::lock_guard lock(mu_);
    for (auto& w : watchers_) {
      if (!w->end && !w->done && NextEvent(*w)) {
        w->end = Compacted(fmt::format("too old resource version: {} ({})", w->after, rv_ + 1));
      }
    }
    compacted_rv_ = rv_;
    history_.clear();
    cv_.notify_all();
  }

  // Ends every open watch with `status` (OK: as a server timeout does; kCompacted: as a 410
  // does); events not yet delivered to them are dropped.
  void EndWatches(Status status) {
    std::lock_guard lock(mu_);
    for (auto& w : watchers_) {
      if (!w->end) w->end = status;
    }
    cv_.notify_all();
  }

  // Holds back watch deliveries (writes still happen and are queued), e.g. to make changes an
  // informer only learns about by re-listing.
  void PauseWatches() {
    std::lock_guard lock(mu_);
    paused_ = true;
  }
  void ResumeWatches() {
    std::lock_guard lock(mu_);
    paused_ = false;
    cv_.notify_all();
  }

  // Waits until every open watch got every event written so far (false on timeout or paused).
  bool WaitForDelivery(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return idle_cv_.wait_for(lock, timeout, [this] { return !paused_ && !HasWorkLocked(); });
  }

  // Called (under the fake's lock: it must not call the fake) before each call; a non-OK Status
  // fails the call with it. Null removes the hook.
  void SetErrorHook(std::function<Status(const Action&)> hook) {
    std::lock_guard lock(mu_);
    error_hook_ = std::move(hook);
  }

  std::vector<Action> Actions() const {
    std::lock_guard lock(mu_);
    return actions_;
  }
  void ClearActions() {
    std::lock_guard lock(mu_);
    actions_.clear();
  }

  size_t WatchCount() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& w : watchers_) n += w->end ? 0 : 1;
    return n;
  }

  // ---- ApiClient ----

  Result<json> Get(const ResourceRef& ref, const std::string& ns,
                   const std::string& name) override {
    std::lock_guard lock(mu_);
    if (Status s = Begin({"get", ref.resource, ns, name, ""}); !s.ok()) return s;
    auto it = objects_.find(Key(ref, ns, name));
    if (it == objects_.end()) return NotFoundError(ref, name);
    return it->second;
  }

  Result<ObjectList> List(const ResourceRef& ref, const std::string& ns,
                          const ListOptions& options = {}) override {
    std::lock_guard lock(mu_);
    if (Status s = Begin({"list", ref.resource, ns, "", ""}); !s.ok()) return s;
    auto labels = ParseSelector(options.label_selector, false);
    if (!labels.ok()) return labels.status();
    auto fields = ParseSelector(options.field_selector, true);
    if (!fields.ok()) return fields.status();
    ObjectList list;
    list.resource_version = std::to_string(rv_);
    const std::string prefix = Prefix(ref, ns);
    auto it = options.continue_token.empty() ? objects_.lower_bound(prefix)
                                             : objects_.upper_bound(options.continue_token);
    for (; it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      if (!Matches(*labels, it->second, false) || !Matches(*fields, it->second, true)) continue;
      if (options.limit > 0 && static_cast<int64_t>(list.items.size()) == options.limit) {
        list.continue_token = std::prev(it)->first;
        break;
      }
      list.items.push_back(it->second);
    }
    return list;
  }

  Result<json> Create(const ResourceRef& ref, const std::string& ns, const json& object,
                      const WriteOptions& options = {}) override {
    std::lock_guard lock(mu_);
    json obj = object;
    if (!obj.is_object()) return InvalidArgument("the object must be a JSON object");
    json& meta = obj["metadata"];
    if (!meta.is_object()) meta = json::object();
    std::string name = meta.value("name", "");
    if (name.empty() && !meta.value("generateName", "").empty()) {
      name = meta.value("generateName", "") + Suffix(++generated_);
      meta["name"] = name;
    }
    auto object_ns = Namespace(ref, ns, meta);
    if (!object_ns.ok()) return object_ns.status();
    if (Status s = Begin({"create", ref.resource, *object_ns, name, ""}); !s.ok()) return s;
    if (name.empty()) return InvalidArgument("metadata.name or metadata.generateName is required");
    const std::string key = Key(ref, *object_ns, name);
    if (objects_.count(key)) {
      return AlreadyExists(fmt::format("{} \"{}\" already exists", ref.resource, name));
    }
    if (ref.namespaced) {
      auto ns_it = objects_.find(Key(kNamespaceRef, "", *object_ns));
      if (ns_it != objects_.end() && HasDeletionTimestamp(ns_it->second)) {
        return InvalidArgument(fmt::format(
            "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is "
            "being terminated",
            ref.resource, name, *object_ns));
      }
    }
    meta.erase("resourceVersion");
    meta["uid"] = fmt::format("00000000-0000-4000-8000-{:012x}", ++uids_);
    meta["creationTimestamp"] = Now();
    meta["generation"] = 1;
    if (options.dry_run) return obj;
    return Commit(ref, key, std::move(obj), WatchEvent::Type::kAdded);
  }

  Result<json> Update(const ResourceRef& ref, const std::string& ns, const json& object,
                      const std::string& subresource = "",
                      const WriteOptions& options = {}) override {
    std::lock_guard lock(mu_);
    if (!object.is_object() || !object.contains("metadata")) {
      return InvalidArgument("the object needs metadata");
    }
    std::string name = object["metadata"].value("name", "");
    auto object_ns = Namespace(ref, ns, object["metadata"]);
    if (!object_ns.ok()) return object_ns.status();
    if (Status s = Begin({"update", ref.resource, *object_ns, name, subresource}); !s.ok()) {
      return s;
    }
    auto it = objects_.find(Key(ref, *object_ns, name));
    if (it == objects_.end()) return NotFoundError(ref, name);
    return Write(ref, it, object, subresource, options.dry_run);
  }

  Result<json> Patch(const ResourceRef& ref, const std::string& ns, const std::string& name,
                     PatchType type, const std::string& patch, const std::string& subresource = "",
                     const WriteOptions& options = {}) override {
    std::lock_guard lock(mu_);
    if (Status s = Begin({"patch", ref.resource, ns, name, subresource}); !s.ok()) return s;
    auto it = objects_.find(Key(ref, ns, name));
    if (it == objects_.end()) return NotFoundError(ref, name);
    json parsed = json::parse(patch, nullptr, false);
    if (parsed.is_discarded()) return InvalidArgument("the patch is not valid JSON");
    json next = it->second;
    // The stored version is no precondition; one in the patch is.
    next["metadata"].erase("resourceVersion");
    try {
      if (type == PatchType::kMerge) {
        next.merge_patch(parsed);
      } else if (type == PatchType::kJson) {
        next = next.patch(parsed);
      } else {
        return InvalidArgument("the fake API client supports merge and JSON patches only");
      }
    } catch (const std::exception& e) {
      return InvalidArgument(fmt::format("the patch does not apply: {}", e.what()));
    }
    return Write(ref, it, next, subresource, options.dry_run);
  }

  Result<json> Delete(const ResourceRef& ref, const std::string& ns, const std::string& name,
                      const DeleteOptions& options = {}) override {
    std::lock_guard lock(mu_);
    if (Status s = Begin({"delete", ref.resource, ns, name, ""}); !s.ok()) return s;
    return DeleteLocked(ref, ns, name, options);
  }

  Result<json> Post(const ResourceRef& ref, const std::string& ns, const std::string& name,
                    const std::string& subresource, const json& body) override {
    std::lock_guard lock(mu_);
    if (Status s = Begin({"post", ref.resource, ns, name, subresource}); !s.ok()) return s;
    json success = {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Success"}};
    if (ref.resource == "pods" && subresource == "binding") {
      auto it = objects_.find(Key(ref, ns, name));
      if (it == objects_.end()) return NotFoundError(ref, name);
      std::string node = body.contains("target") ? body["target"].value("name", "") : "";
      if (node.empty()) return InvalidArgument("target.name: Required value");
      const json& spec = it->second.contains("spec") ? it->second["spec"] : json::object();
      if (!spec.value("nodeName", "").empty()) {
        return Conflict(fmt::format("pod {} is already assigned to node \"{}\"", name,
                                    spec.value("nodeName", "")));
      }
      json next = it->second;
      next["spec"]["nodeName"] = node;
      auto written = Write(ref, it, next, "", false);
      if (!written.ok()) return written.status();
      return success;
    }
    if (ref.resource == "pods" && subresource == "eviction") {
      DeleteOptions options;
      if (body.contains("deleteOptions") && body["deleteOptions"].is_object()) {
        const json& o = body["deleteOptions"];
        if (o.contains("gracePeriodSeconds")) {
          options.grace_period_seconds = o["gracePeriodSeconds"].get<int64_t>();
        }
      }
      auto deleted = DeleteLocked(ref, ns, name, options);
      if (!deleted.ok()) return deleted.status();
      return success;
    }
    return NotFound(fmt::format("the fake API client has no {}/{}", ref.resource, subresource));
  }

  Result<std::unique_ptr<Watch>> StartWatch(const ResourceRef& ref, const std::string& ns,
                                            const WatchOptions& options,
                                            WatchHandler handler) override {
    std::lock_guard lock(mu_);
    if (Status s = Begin({"watch", ref.resource, ns, "", ""}); !s.ok()) return s;
    auto labels = ParseSelector(options.label_selector, false);
    if (!labels.ok()) return labels.status();
    auto fields = ParseSelector(options.field_selector, true);
    if (!fields.ok()) return fields.status();
    auto w = std::make_shared<Watcher>();
    w->prefix = Prefix(ref, ns);
    w->labels = std::move(*labels);
    w->fields = std::move(*fields);
    w->handler = std::move(handler);
    w->after = rv_;
    if (!options.resource_version.empty() && options.resource_version != "0") {
      try {
        w->after = std::stoll(options.resource_version);
      } catch (...) {
        return InvalidArgument("resourceVersion must be an integer");
      }
      if (w->after < compacted_rv_) {
        w->end = Compacted(
            fmt::format("too old resource version: {} ({})", w->after, compacted_rv_ + 1));
      }
    }
    watchers_.push_back(w);
    cv_.notify_all();
    return std::unique_ptr<Watch>(std::make_unique<FakeWatch>(this, w));
  }

 private:
  struct Requirement {
    std::string key;
    std::string value;
    enum class Op { kEquals, kNotEquals, kExists, kNotExists } op;
  };
  using Selector = std::vector<Requirement>;

  struct Watcher {
    std::string prefix;
    Selector labels, fields;
    WatchHandler handler;
    int64_t after = 0;          // the last resourceVersion delivered (or skipped)
    std::optional<Status> end;  // set: on_end is due, no more events
    bool done = false;          // on_end delivered or stopped
  };

  class FakeWatch : public Watch {
   public:
    FakeWatch(FakeApiClient* fake, std::shared_ptr<Watcher> w) : fake_(fake), w_(std::move(w)) {}
    ~FakeWatch() override { Stop(); }
    void Stop() override { fake_->StopWatcher(w_); }

   private:
    FakeApiClient* fake_;
    std::shared_ptr<Watcher> w_;
  };

  struct Event {
    int64_t rv;
    std::string key;  // of the object, for the watchers' prefixes
    WatchEvent::Type type;
    json object;
  };

  static std::string Now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }

  static std::string Suffix(uint64_t n) {
    const char* kChars = "bcdfghjklmnpqrstvwxz2456789";
    std::string out;
    for (int i = 0; i < 5; ++i, n /= 27) out.push_back(kChars[n % 27]);
    return out;
  }

  // Keys sort by resource, then namespace, then name: a collection is a contiguous range.
  static std::string Prefix(const ResourceRef& ref, const std::string& ns) {
    std::string prefix = ref.group + "/" + ref.resource + "|";
    if (ref.namespaced && !ns.empty()) prefix += ns + "|";
    return prefix;
  }
  static std::string Key(const ResourceRef& ref, const std::string& ns, const std::string& name) {
    return ref.group + "/" + ref.resource + "|" + (ref.namespaced ? ns + "|" : "") + name;
  }

  static Status NotFoundError(const ResourceRef& ref, const std::string& name) {
    std::string what = ref.group.empty() ? ref.resource : ref.resource + "." + ref.group;
    return NotFound(fmt::format("{} \"{}\" not found", what, name));
  }

  // The namespace of a write: the call's, or the object's; they must agree.
  static Result<std::string> Namespace(const ResourceRef& ref, const std::string& ns, json& meta) {
    if (!ref.namespaced) {
      meta.erase("namespace");
      return std::string();
    }
    std::string object_ns = meta.value("namespace", "");
    if (!ns.empty() && !object_ns.empty() && ns != object_ns) {
      return InvalidArgument(
          "the namespace of the object does not match the namespace of the call");
    }
    std::string out = ns.empty() ? object_ns : ns;
    if (out.empty()) return InvalidArgument("a namespace is required");
    meta["namespace"] = out;
    return out;
  }
  static Result<std::string> Namespace(const ResourceRef& ref, const std::string& ns,
                                       const json& meta) {
    json copy = meta;
    return Namespace(ref, ns, copy);
  }

  static Result<Selector> ParseSelector(const std::string& text, bool fields) {
    Selector out;
    size_t start = 0;
    while (start < text.size()) {
      size_t comma = text.find(',', start);
      std::string term =
          text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      start = comma == std::string::npos ? text.size() : comma + 1;
      term.erase(0, term.find_first_not_of(' '));
      term.erase(term.find_last_not_of(' ') + 1);
      if (term.empty()) continue;
      if (term.find(" in ") != std::string::npos || term.find(" notin ") != std::string::npos ||
          term.find('(') != std::string::npos) {
        return InvalidArgument("the fake API client supports equality selectors only: " + term);
      }
      Requirement r;
      size_t op;
      if ((op = term.find("!=")) != std::string::npos) {
        r = {term.substr(0, op), term.substr(op + 2), Requirement::Op::kNotEquals};
      } else if ((op = term.find("==")) != std::string::npos) {
        r = {term.substr(0, op), term.substr(op + 2), Requirement::Op::kEquals};
      } else if ((op = term.find('=')) != std::string::npos) {
        r = {term.substr(0, op), term.substr(op + 1), Requirement::Op::kEquals};
      } else if (!fields && term[0] == '!') {
        r = {term.substr(1), "", Requirement::Op::kNotExists};
      } else if (!fields) {
        r = {term, "", Requirement::Op::kExists};
      } else {
        return InvalidArgument("bad field selector: " + term);
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  // A label, or a field by dotted path (non-strings compare by their JSON text).
  static std::optional<std::string> Lookup(const json& object, const std::string& key, bool field) {
    const json* at = &object;
    if (!field) {
      if (!object.contains("metadata") || !object["metadata"].contains("labels")) {
        return std::nullopt;
      }
      at = &object["metadata"]["labels"];
      auto it = at->find(key);
      if (it == at->end() || !it->is_string()) return std::nullopt;
      return it->get<std::string>();
    }
    size_t start = 0;
    while (start <= key.size()) {
      size_t dot = key.find('.', start);
      std::string part =
          key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!at->is_object() || !at->contains(part)) return std::string();  // absent: ""
      at = &(*at)[part];
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return at->is_string() ? at->get<std::string>() : at->dump();
  }

  static bool Matches(const Selector& selector, const json& object, bool fields) {
    for (const Requirement& r : selector) {
      auto value = Lookup(object, r.key, fields);
      switch (r.op) {
        case Requirement::Op::kEquals:
          if (!value || *value != r.value) return false;
          break;
        case Requirement::Op::kNotEquals:
          if (value && *value == r.value) return false;
          break;
        case Requirement::Op::kExists:
          if (!value) return false;
          break;
        case Requirement::Op::kNotExists:
          if (value) return false;
          break;
      }
    }
    return true;
  }

  Status Begin(Action action) {
    actions_.push_back(action);
    return error_hook_ ? error_hook_(action) : Status::Ok();
  }

  static bool HasDeletionTimestamp(const json& obj) {
    return obj["metadata"].contains("deletionTimestamp") &&
           !obj["metadata"]["deletionTimestamp"].is_null();
  }
  static bool HasFinalizers(const json& obj) {
    if (obj.contains("spec") && obj["spec"].is_object() && obj["spec"].contains("finalizers") &&
        obj["spec"]["finalizers"].is_array() && !obj["spec"]["finalizers"].empty() &&
        obj.value("kind", "") == "Namespace") {
      return true;
    }
    return obj["metadata"].contains("finalizers") && obj["metadata"]["finalizers"].is_array() &&
           !obj["metadata"]["finalizers"].empty();
  }
  static bool IsNamespace(const ResourceRef& ref) {
    return ref.group.empty() && ref.resource == "namespaces";
  }
  static json Field(const json& obj, const char* a, const char* b) {
    if (!obj.contains(a) || !obj[a].is_object() || !obj[a].contains(b)) return nullptr;
    return obj[a][b];
  }
  inline static const ResourceRef kNamespaceRef{"", "v1", "namespaces", false};

  // Stores `obj` with a new resourceVersion and records the event.
  json Commit(const ResourceRef& ref, const std::string& key, json obj, WatchEvent::Type type) {
    (void)ref;
    obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
    if (type == WatchEvent::Type::kDeleted) {
      objects_.erase(key);
    } else {
      objects_[key] = obj;
    }
    history_.push_back({rv_, key, type, obj});
    cv_.notify_all();
    return obj;
  }

  // The write path of Update and Patch: `next` is the caller's version of the object at `it`.
  Result<json> Write(const ResourceRef& ref, std::map<std::string, json>::iterator it,
                     const json& next_in, const std::string& subresource, bool dry_run) {
    const json& current = it->second;
    const std::string name = current["metadata"].value("name", "");
    if (next_in.contains("metadata") && next_in["metadata"].contains("resourceVersion")) {
      std::string expected = next_in["metadata"].value("resourceVersion", "");
      if (!expected.empty() && expected != current["metadata"].value("resourceVersion", "")) {
        return Conflict(fmt::format(
            "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please "
            "apply your changes to the latest version and try again",
            ref.resource, name));
      }
    }
    json next;
    if (subresource == "status") {
      next = current;
      if (next_in.contains("status")) {
        next["status"] = next_in["status"];
      } else {
        next.erase("status");
      }
    } else if (subresource.empty()) {
      next = next_in;
      if (current.contains("status")) {
        next["status"] = current["status"];
      } else {
        next.erase("status");
      }
      // What the server owns stays as it is.
      json& meta = next["metadata"];
      if (!meta.is_object()) meta = json::object();
      for (const char* f : {"name", "namespace", "uid", "creationTimestamp", "generation",
                            "deletionTimestamp", "deletionGracePeriodSeconds"}) {
        if (current["metadata"].contains(f)) {
          meta[f] = current["metadata"][f];
        } else {
          meta.erase(f);
        }
      }
      json spec_now = current, spec_next = next;
      for (json* j : {&spec_now, &spec_next}) {
        j->erase("metadata");
        j->erase("status");
      }
      if (spec_now != spec_next)
        meta["generation"] = current["metadata"].value("generation", 1) + 1;
    } else if (subresource == "finalize" && IsNamespace(ref)) {
      next = current;
      next["spec"]["finalizers"] = Field(next_in, "spec", "finalizers");
    } else {
      return InvalidArgument("the fake API client has no subresource " + subresource);
    }
    next["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"];
    if (next == current) return next;  // no change, no new version
    if (dry_run) return next;
    const std::string key = it->first;
    if (HasDeletionTimestamp(next) && !HasFinalizers(next) &&
        next["metadata"].value("deletionGracePeriodSeconds", int64_t{0}) == 0) {
      Commit(ref, key, next, WatchEvent::Type::kDeleted);
      return next;
    }
    return Commit(ref, key, std::move(next), WatchEvent::Type::kModified);
  }

  Result<json> DeleteLocked(const ResourceRef& ref, const std::string& ns, const std::string& name,
                            const DeleteOptions& options) {
    const std::string key = Key(ref, ns, name);
    auto it = objects_.find(key);
    if (it == objects_.end()) return NotFoundError(ref, name);
    json next = it->second;
    json& meta = next["metadata"];
    if (!options.precondition_uid.empty() && options.precondition_uid != meta.value("uid", "")) {
      return Conflict("Precondition failed: UID in precondition: " + options.precondition_uid);
    }
    if (!options.precondition_resource_version.empty() &&
        options.precondition_resource_version != meta.value("resourceVersion", "")) {
      return Conflict("Precondition failed: ResourceVersion in precondition: " +
                      options.precondition_resource_version);
    }
    bool pending = false;
    if (ref.group.empty() && ref.resource == "pods") {
      const json& spec = next.contains("spec") ? next["spec"] : json::object();
      std::string phase = next.contains("status") ? next["status"].value("phase", "") : "";
      int64_t grace = options.grace_period_seconds.value_or(
          spec.value("terminationGracePeriodSeconds", int64_t{30}));
      if (spec.value("nodeName", "").empty() || phase == "Succeeded" || phase == "Failed") {
        grace = 0;
      }
      if (grace > 0) {
        int64_t existing = meta.value("deletionGracePeriodSeconds", int64_t{-1});
        if (existing < 0 || grace < existing) {
          meta["deletionGracePeriodSeconds"] = grace;
          meta["deletionTimestamp"] = Now();
        }
        pending = true;
      }
    }
    if (IsNamespace(ref)) next["status"]["phase"] = "Terminating";
    if (options.propagation_policy == "Orphan" || options.propagation_policy == "Foreground") {
      std::string finalizer =
          options.propagation_policy == "Orphan" ? "orphan" : "foregroundDeletion";
      json& finalizers = meta["finalizers"];
      if (!finalizers.is_array()) finalizers = json::array();
      if (std::find(finalizers.begin(), finalizers.end(), finalizer) == finalizers.end()) {
        finalizers.push_back(finalizer);
      }
    }
    if (HasFinalizers(next)) {
      if (!HasDeletionTimestamp(next)) {
        meta["deletionTimestamp"] = Now();
        meta["deletionGracePeriodSeconds"] = 0;
      }
      pending = true;
    }
    if (!pending) {
      Commit(ref, key, std::move(next), WatchEvent::Type::kDeleted);
      return json();
    }
    if (next == it->second) return next;
    return Commit(ref, key, std::move(next), WatchEvent::Type::kModified);
  }

  // ---- Watch delivery (the fake's own thread) ----

  // The next event for `w` after w->after, or null; skips (and passes) events it does not want.
  const Event* NextEvent(Watcher& w) {
    auto it = std::upper_bound(history_.begin(), history_.end(), w.after,
                               [](int64_t rv, const Event& e) { return rv < e.rv; });
    for (; it != history_.end(); ++it) {
      if (it->key.compare(0, w.prefix.size(), w.prefix) == 0 &&
          Matches(w.labels, it->object, false) && Matches(w.fields, it->object, true)) {
        return &*it;
      }
    }
    return nullptr;
  }

  bool HasWorkLocked() {
    if (delivering_) return true;
    for (auto& w : watchers_) {
      if (w->done) continue;
      if (w->end || NextEvent(*w)) return true;
    }
    return false;
  }

  void DeliveryLoop() {
    std::unique_lock lock(mu_);
    while (!shutdown_) {
      std::shared_ptr<Watcher> target;
      const Event* event = nullptr;
      if (!paused_) {
        for (auto& w : watchers_) {
          if (w->done) continue;
          if (w->end || (event = NextEvent(*w))) {
            target = w;
            break;
          }
        }
      }
      if (!target) {
        idle_cv_.notify_all();
        cv_.wait(lock);
        continue;
      }
      std::function<void()> call;
      if (target->end) {
        target->done = true;
        Status status = *target->end;
        if (target->handler.on_end) call = [target, status] { target->handler.on_end(status); };
      } else {
        target->after = event->rv;
        WatchEvent out{event->type, event->object};
        if (target->handler.on_event) {
          call = [target, out = std::move(out)]() mutable {
            target->handler.on_event(std::move(out));
          };
        }
      }
      if (!call) continue;
      delivering_ = target;
      lock.unlock();
      call();
      call = nullptr;
      lock.lock();
      delivering_ = nullptr;
      delivered_cv_.notify_all();
    }
  }

  void StopWatcher(const std::shared_ptr<Watcher>& w) {
    std::unique_lock lock(mu_);
    w->done = true;
    if (std::this_thread::get_id() != delivery_.get_id()) {
      delivered_cv_.wait(lock, [&] { return delivering_ != w; });
    }
    watchers_.remove(w);
    idle_cv_.notify_all();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;            // wakes the delivery thread
  std::condition_variable delivered_cv_;  // a callback returned
  std::condition_variable idle_cv_;       // the delivery thread has nothing to do
  // Starts at 1 as etcd's revision does: a list of the empty store answers "1", never "0"
  // (which a watch reads as "from now", losing the writes between the list and the watch).
  int64_t rv_ = 1;                        // guarded by mu_, as is everything below
  int64_t compacted_rv_ = 0;
  uint64_t uids_ = 0;
  uint64_t generated_ = 0;
  std::map<std::string, json> objects_;  // by Key
  std::deque<Event> history_;            // every write since the last Compact, by rv
  std::list<std::shared_ptr<Watcher>> watchers_;
  std::shared_ptr<Watcher> delivering_;  // whose callback runs now
  bool paused_ = false;
  bool shutdown_ = false;
  std::function<Status(const Action&)> error_hook_;
  std::vector<Action> actions_;
  std::thread delivery_;  // last: starts once everything above exists
};

}  // namespace orch::testing
