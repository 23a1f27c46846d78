// Custom resources: a controller inside the API server that turns every
// CustomResourceDefinition into served resources (discovery, REST, watch, OpenAPI), keeps the
// CRD's status conditions, and removes a CRD's objects before the CRD itself goes.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "rest.h"
#include "watch_cache.h"

namespace orch::api {

class CrdController {
 public:
  // `builtins` is the resource set without custom resources; `schemas` the built-in schemas
  // (for ObjectMeta and friends inside custom schemas).
  CrdController(ResourceRegistry& registry, std::shared_ptr<const ResourceSet> builtins,
                const SchemaSet* schemas, Rest& rest);
  ~CrdController();
  CrdController(const CrdController&) = delete;
  CrdController& operator=(const CrdController&) = delete;

  // Serves the CRDs stored now (before the API listens), then follows changes.
  Status Start(WatchCache& cache);
  void Stop();

 private:
  void Run();
  void Sync(const std::string& name);
  void Publish();

  ResourceRegistry& registry_;
  std::shared_ptr<const ResourceSet> builtins_;
  const SchemaSet* schemas_;
  Rest& rest_;
  const ResourceType* crds_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;  // CRD names to sync; guarded by mu_
  std::set<std::string> queued_;   // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  // Served types of each CRD; touched only by the controller thread (and Start before it).
  std::map<std::string, std::vector<std::shared_ptr<const ResourceType>>> served_;
  std::shared_ptr<WatchCache::Subscription> subscription_;
  std::thread thread_;
};

// The checks a CustomResourceDefinition must pass to be stored (its strategy's Validate).
void ValidateCustomResourceDefinition(const json& crd, FieldErrors& errors);

}  // namespace orch::api
