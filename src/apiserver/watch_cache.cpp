// Implementation of the watch cache (watch_cache.h): a reader thread turns datastore events
// into decoded API events, keeps a bounded window per resource and fans them out; a ticker
// thread ends timed-out watches and sends bookmarks.
#include "watch_cache.h"

#include <fmt/format.h>

#include "orch/log.h"

namespace orch::api {
namespace {

constexpr size_t kWindowMaxEntries = 2000;
constexpr size_t kWindowMaxBytes = 8 * 1024 * 1024;
constexpr auto kBookmarkInterval = std::chrono::seconds(60);
constexpr auto kStoreWait = std::chrono::milliseconds(1000);

// "/registry/apps/deployments/ns/name" -> ("apps", "deployments", "ns/name")
bool SplitKey(const std::string& key, std::string* group, std::string* plural,
              std::string* rest) {
  static const std::string kRoot = "/registry/";
  if (key.compare(0, kRoot.size(), kRoot) != 0) return false;
  size_t g = kRoot.size();
  size_t p = key.find('/', g);
  if (p == std::string::npos) return false;
  size_t r = key.find('/', p + 1);
  if (r == std::string::npos) return false;
  *group = key.substr(g, p - g);
  *plural = key.substr(p + 1, r - p - 1);
  *rest = key.substr(r + 1);
  return true;
}

bool FilterActive(const WatchFilter& f) { return !f.labels.Empty() || !f.fields.Empty(); }

}  // namespace

const char* WatchEventTypeName(WatchEvent::Type type) {
  switch (type) {
    case WatchEvent::Type::kAdded: return "ADDED";
    case WatchEvent::Type::kModified: return "MODIFIED";
    case WatchEvent::Type::kDeleted: return "DELETED";
    case WatchEvent::Type::kBookmark: return "BOOKMARK";
    case WatchEvent::Type::kError: return "ERROR";
  }
  return "ERROR";
}

struct WatchCache::Watcher {
  const ResourceType* type = nullptr;
  std::string window;  // store prefix
  WatchFilter filter;
  int64_t after = 0;
  WatchSink sink;
  WatchEnd on_end;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point last_bookmark = std::chrono::steady_clock::now();
  bool ended = false;  // guarded by WatchCache::mu_
};

size_t WatchCache::Entry::bytes() const {
  return sizeof(Entry) + (text ? text->size() : 0) + (prev_text ? prev_text->size() : 0);
}

namespace {
class SubscriptionImpl : public WatchCache::Subscription {
 public:
  explicit SubscriptionImpl(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  void Cancel() override {
    std::function<void()> cancel;
    {
      std::lock_guard lock(mu_);
      cancel.swap(cancel_);
    }
    if (cancel) cancel();
  }

 private:
  std::mutex mu_;
  std::function<void()> cancel_;
};
}  // namespace

Result<std::unique_ptr<WatchCache>> WatchCache::Start(Rest& rest,
                                                      const ResourceRegistry& registry) {
  auto revision = rest.store().CurrentRevision();
  if (!revision.ok()) return revision.status();
  auto watch = rest.store().Watch("/registry/", *revision + 1);
  if (!watch.ok()) return watch.status();
  return std::unique_ptr<WatchCache>(
      new WatchCache(rest, registry, std::move(*watch), *revision));
}

WatchCache::WatchCache(Rest& rest, const ResourceRegistry& registry,
                       std::unique_ptr<orch::Watcher> watch, int64_t revision)
    : rest_(rest), registry_(&registry), revision_(revision), store_watch_(std::move(watch)) {
  start_revision_ = revision;
  thread_ = std::thread([this] { Run(); });
  ticker_ = std::thread([this] { Tick(); });
}

WatchCache::~WatchCache() { Stop(); }

void WatchCache::Stop() {
  if (stopping_.exchange(true)) return;
  store_watch_->Cancel();
  {
    std::lock_guard lock(mu_);
    progressed_.notify_all();
    stopped_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (ticker_.joinable()) ticker_.join();
  EndAll(ApiError::Unavailable("the API server is shutting down"));
}

void WatchCache::Run() {
  while (!stopping_) {
    auto batch = store_watch_->Next(kStoreWait);
    if (!batch.ok()) {
      if (stopping_ || batch.status().code() == StatusCode::kCancelled) return;
      // Fell behind the datastore's compaction (or lost it): every watcher must relist.
      log::Warn("watch-cache", "datastore watch ended: {}; restarting",
                batch.status().message());
      EndAll(ApiError::Expired("the watch cache was reset; relist"));
      auto revision = rest_.store().CurrentRevision();
      auto watch = revision.ok() ? rest_.store().Watch("/registry/", *revision + 1)
                                 : Result<std::unique_ptr<orch::Watcher>>(revision.status());
      if (!watch.ok()) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      std::lock_guard lock(mu_);
      store_watch_ = std::move(*watch);
      windows_.clear();
      start_revision_ = *revision;
      revision_ = *revision;
      continue;
    }
    auto resources = registry_->Current();
    for (const Event& event : *batch) {
      // Asked for every change, so that the stash forgets what it holds for older ones.
      auto stashed = event.type == Event::Type::kDelete
                         ? std::nullopt
                         : rest_.stash().Take(event.kv.key, event.kv.mod_revision);
      std::string group, plural, rest;
      const ResourceType* type = nullptr;
      if (SplitKey(event.kv.key, &group, &plural, &rest)) {
        type = resources->FindByStore(group, plural);
      }
      if (type != nullptr) {
        Entry entry;
        size_t slash = rest.find('/');
        if (type->namespaced && slash != std::string::npos) {
          entry.ns = rest.substr(0, slash);
          entry.name = rest.substr(slash + 1);
        } else {
          entry.name = rest;
        }
        entry.revision = event.kv.mod_revision;
        std::shared_ptr<const json> obj, prev;
        if (event.type == Event::Type::kDelete) {
          entry.type = WatchEvent::Type::kDeleted;
          if (event.prev) {
            auto decoded = rest_.Decode(*type, *event.prev);
            if (decoded.ok()) {
              SetResourceVersion(*decoded, event.kv.mod_revision);
              obj = std::make_shared<const json>(std::move(*decoded));
            }
          }
        } else {
          entry.type = event.kv.create_revision == event.kv.mod_revision
                           ? WatchEvent::Type::kAdded
                           : WatchEvent::Type::kModified;
          // This server's own write: the writer's decoded objects, unless it wrote another
          // version of a custom resource than the cache serves.
          if (stashed && stashed->object->value("apiVersion", "") == type->GroupVersion()) {
            obj = std::move(stashed->object);
            prev = std::move(stashed->prev);
          } else {
            auto decoded = rest_.Decode(*type, event.kv);
            if (decoded.ok()) obj = std::make_shared<const json>(std::move(*decoded));
          }
          if (event.prev && !prev) {
            auto old = rest_.Decode(*type, *event.prev);
            if (old.ok()) prev = std::make_shared<const json>(std::move(*old));
          }
        }
        if (obj) {
          entry.text = std::make_shared<const std::string>(obj->dump());
          if (prev) entry.prev_text = std::make_shared<const std::string>(prev->dump());
          Dispatch(*type, std::move(entry), obj, prev);
        }
      }
      std::lock_guard lock(mu_);
      revision_ = event.kv.mod_revision;
    }
    std::lock_guard lock(mu_);
    progressed_.notify_all();
  }
}

bool WatchCache::Deliver(Watcher& w, const Entry& e, const std::shared_ptr<const json>& obj,
                         const std::shared_ptr<const json>& prev) {
  if (e.revision <= w.after) return true;
  if (!w.filter.ns.empty() && e.ns != w.filter.ns) return true;
  if (!w.filter.name.empty() && e.name != w.filter.name) return true;
  WatchEvent out;
  out.type = e.type;
  out.revision = e.revision;
  out.object = obj;
  out.text = e.text;
  if (FilterActive(w.filter)) {
    auto matches = [&](const json& o) {
      const json& meta = o.contains("metadata") ? o["metadata"] : json::object();
      static const json kEmpty = json::object();
      const json& labels = meta.contains("labels") ? meta["labels"] : kEmpty;
      return w.filter.labels.Matches(labels) && w.filter.fields.Matches(o);
    };
    bool now = matches(*obj);
    if (e.type == WatchEvent::Type::kDeleted) {
      if (!now) return true;
    } else {
      bool before = prev ? matches(*prev) : (e.type == WatchEvent::Type::kModified && now);
      if (now && before) {
        out.type = WatchEvent::Type::kModified;
      } else if (now) {
        out.type = WatchEvent::Type::kAdded;
      } else if (before) {
        out.type = WatchEvent::Type::kDeleted;
      } else {
        return true;
      }
    }
  }
  w.after = e.revision;
  return w.sink(out);
}

void WatchCache::Dispatch(const ResourceType& type, Entry entry,
                          const std::shared_ptr<const json>& obj,
                          const std::shared_ptr<const json>& prev) {
  std::vector<std::shared_ptr<Watcher>> ended;
  {
    std::lock_guard lock(mu_);
    Window& window = windows_[type.StorePrefix()];
    if (window.entries.empty() && window.complete_after == 0) {
      window.complete_after = start_revision_;
    }
    for (auto& w : window.watchers) {
      if (!w->ended && !Deliver(*w, entry, obj, prev)) {
        w->ended = true;
        ended.push_back(w);
      }
    }
    window.bytes += entry.bytes();
    window.entries.push_back(std::move(entry));
    while (window.entries.size() > kWindowMaxEntries || window.bytes > kWindowMaxBytes) {
      window.complete_after = window.entries.front().revision;
      window.bytes -= window.entries.front().bytes();
      window.entries.pop_front();
    }
    for (auto& w : ended) {
      auto& list = window.watchers;
      list.erase(std::remove(list.begin(), list.end(), w), list.end());
    }
  }
  for (auto& w : ended) {
    if (w->on_end) w->on_end();
  }
}

ApiResult<std::shared_ptr<WatchCache::Subscription>> WatchCache::Subscribe(
    const ResourceType& type, WatchFilter filter, int64_t after_revision, WatchSink sink,
    WatchEnd on_end) {
  auto watcher = std::make_shared<Watcher>();
  watcher->type = &type;
  watcher->window = type.StorePrefix();
  watcher->after = after_revision;
  watcher->sink = std::move(sink);
  watcher->on_end = std::move(on_end);
  if (filter.timeout.count() > 0) {
    watcher->deadline = std::chrono::steady_clock::now() + filter.timeout;
  }
  watcher->filter = std::move(filter);
  bool ended = false;
  {
    std::unique_lock lock(mu_);
    if (stopping_) return ApiError::Unavailable("the API server is shutting down");
    Window& window = windows_[watcher->window];
    if (window.entries.empty() && window.complete_after == 0) {
      window.complete_after = start_revision_;
    }
    if (after_revision < window.complete_after) {
      return ApiError::Expired(fmt::format("too old resource version: {} ({})", after_revision,
                                           window.complete_after + 1));
    }
    for (const Entry& e : window.entries) {
      if (e.revision <= after_revision) continue;
      // Replays parse the stored text again; live dispatch shares one parse per event.
      auto obj = std::make_shared<const json>(json::parse(*e.text));
      std::shared_ptr<const json> prev;
      if (e.prev_text) prev = std::make_shared<const json>(json::parse(*e.prev_text));
      if (!Deliver(*watcher, e, obj, prev)) {
        ended = true;
        break;
      }
    }
    if (!ended) window.watchers.push_back(watcher);
  }
  if (ended && watcher->on_end) watcher->on_end();
  std::weak_ptr<Watcher> weak = watcher;
  std::shared_ptr<Subscription> subscription =
      std::make_shared<SubscriptionImpl>([this, weak] {
        if (auto w = weak.lock()) Remove(w);
      });
  return subscription;
}

void WatchCache::Remove(const std::shared_ptr<Watcher>& watcher) {
  std::lock_guard lock(mu_);
  watcher->ended = true;
  auto it = windows_.find(watcher->window);
  if (it == windows_.end()) return;
  auto& list = it->second.watchers;
  list.erase(std::remove(list.begin(), list.end(), watcher), list.end());
}

bool WatchCache::WaitFor(int64_t revision, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return progressed_.wait_for(lock, timeout,
                              [&] { return revision_.load() >= revision || stopping_; }) &&
         revision_.load() >= revision;
}

size_t WatchCache::WatcherCount() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [prefix, window] : windows_) n += window.watchers.size();
  return n;
}

void WatchCache::Tick() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    stopped_.wait_for(lock, std::chrono::seconds(1));
    if (stopping_) break;
    auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<Watcher>> ended;
    for (auto& [prefix, window] : windows_) {
      for (auto& w : window.watchers) {
        if (w->ended) continue;
        bool timed_out = now >= w->deadline;
        bool bookmark_due = w->filter.bookmarks && now - w->last_bookmark >= kBookmarkInterval;
        if (timed_out || bookmark_due) {
          // A bookmark before the end lets the client resume exactly where it was.
          if (w->filter.bookmarks) {
            WatchEvent b;
            b.type = WatchEvent::Type::kBookmark;
            b.revision = std::max(revision_.load(), w->after);
            json stub = {{"kind", w->type->kind},
                         {"apiVersion", w->type->GroupVersion()},
                         {"metadata", {{"resourceVersion", std::to_string(b.revision)}}}};
            b.text = std::make_shared<const std::string>(stub.dump());
            b.object = std::make_shared<const json>(std::move(stub));
            w->last_bookmark = now;
            if (!w->sink(b)) timed_out = true;
          }
        }
        if (timed_out) {
          w->ended = true;
          ended.push_back(w);
        }
      }
      auto& list = window.watchers;
      list.erase(std::remove_if(list.begin(), list.end(), [](const auto& w) { return w->ended; }),
                 list.end());
    }
    if (!ended.empty()) {
      lock.unlock();
      for (auto& w : ended) {
        if (w->on_end) w->on_end();
      }
      lock.lock();
    }
  }
}

void WatchCache::EndAll(const ApiError& error) {
  std::vector<std::shared_ptr<Watcher>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [prefix, window] : windows_) {
      for (auto& w : window.watchers) {
        if (w->ended) continue;
        w->ended = true;
        WatchEvent e;
        e.type = WatchEvent::Type::kError;
        json status = error.ToStatus();
        e.text = std::make_shared<const std::string>(status.dump());
        e.object = std::make_shared<const json>(std::move(status));
        w->sink(e);
        all.push_back(w);
      }
      window.watchers.clear();
    }
  }
  for (auto& w : all) {
    if (w->on_end) w->on_end();
  }
}

}  // namespace orch::api
