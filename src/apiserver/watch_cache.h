// The watch cache: one datastore watch on every API object feeds a bounded window of recent
// events per resource; every client watch (HTTP or in-process) is served from it, filtered by
// namespace, name, labels and fields. Slow consumers are dropped by their sinks, never buffered.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "object.h"
#include "rest.h"
#include "selector.h"

namespace orch::api {

// One change as a watcher sees it.
struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kAdded;
  int64_t revision = 0;
  // The object (for deletes: its last state with the deletion's resourceVersion; for
  // bookmarks: a stub with only the revision; for errors: a Status). Shared, never mutated.
  std::shared_ptr<const json> object;
  // The same object as compact JSON text, serialized once for every watcher.
  std::shared_ptr<const std::string> text;
};
const char* WatchEventTypeName(WatchEvent::Type type);

struct WatchFilter {
  std::string ns;    // "" = all namespaces
  std::string name;  // "" = all names (from fieldSelector metadata.name=...)
  LabelSelector labels;
  FieldSelector fields;
  bool bookmarks = false;
  std::chrono::seconds timeout{0};  // 0 = none
};

// Receives events; returns false to stop (the watch then ends). Called from the cache's
// thread (or the subscriber's, during replay): must not block.
using WatchSink = std::function<bool(const WatchEvent& event)>;
// Called once when the watch ends for any reason other than Cancel (timeout, compaction,
// sink refusal, shutdown).
using WatchEnd = std::function<void()>;

class WatchCache {
 public:
  // Starts the datastore watch at the store's current revision. Fails (Unavailable) when the
  // datastore cannot be watched.
  static Result<std::unique_ptr<WatchCache>> Start(Rest& rest, const ResourceRegistry& registry);
  ~WatchCache();
  WatchCache(const WatchCache&) = delete;
  WatchCache& operator=(const WatchCache&) = delete;

  class Subscription {
   public:
    virtual ~Subscription() = default;
    // Ends the watch; no more sink calls after this returns. Idempotent.
    virtual void Cancel() = 0;
  };

  // Delivers every event of `type` with revision > `after_revision` that passes `filter`,
  // first from the window, then live. Gone (410) when `after_revision` is older than the window.
  ApiResult<std::shared_ptr<Subscription>> Subscribe(const ResourceType& type,
                                                     WatchFilter filter, int64_t after_revision,
                                                     WatchSink sink, WatchEnd on_end);

  // The newest revision the cache has processed.
  int64_t Revision() const { return revision_.load(); }
  // Waits (up to `timeout`) until the cache has processed `revision`.
  bool WaitFor(int64_t revision, std::chrono::milliseconds timeout);
  // Open watches, for /metrics.
  size_t WatcherCount() const;

  void Stop();

 private:
  WatchCache(Rest& rest, const ResourceRegistry& registry, std::unique_ptr<orch::Watcher> watch,
             int64_t revision);
  struct Watcher;
  struct Entry {
    std::string ns, name;
    WatchEvent::Type type;
    int64_t revision;
    std::shared_ptr<const std::string> text;       // object as stored at this revision
    std::shared_ptr<const std::string> prev_text;  // previous state, if known
    size_t bytes() const;
  };
  struct Window {
    std::deque<Entry> entries;
    int64_t complete_after = 0;  // every event with revision > this is in `entries`
    size_t bytes = 0;
    std::vector<std::shared_ptr<Watcher>> watchers;
  };

  void Run();
  void Dispatch(const ResourceType& type, Entry entry, const std::shared_ptr<const json>& obj,
                const std::shared_ptr<const json>& prev);
  void Tick();
  bool Deliver(Watcher& w, const Entry& e, const std::shared_ptr<const json>& obj,
               const std::shared_ptr<const json>& prev);
  void EndAll(const ApiError& error);
  void Remove(const std::shared_ptr<Watcher>& watcher);

  Rest& rest_;
  const ResourceRegistry* registry_;
  std::atomic<int64_t> revision_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable progressed_;  // revision_ advanced
  std::condition_variable stopped_;     // wakes the ticker on Stop
  int64_t start_revision_ = 0;          // windows are complete after this; guarded by mu_
  std::map<std::string, Window> windows_;  // by store prefix; guarded by mu_
  std::unique_ptr<orch::Watcher> store_watch_;
  std::thread thread_;
  std::thread ticker_;
};

}  // namespace orch::api
