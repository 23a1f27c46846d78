// Informers and their factory (informer.h): list, then watch from the list's resourceVersion,
// re-list on compaction or errors; a few lister threads list, one factory thread stores every
// list and change and calls every handler.
#include "orch/informer.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <tuple>

#include "orch/log.h"

namespace orch {

std::string ObjectKey(const nlohmann::json& object) {
  std::string ns, name;
  if (object.is_object() && object.contains("metadata") && object["metadata"].is_object()) {
    const auto& meta = object["metadata"];
    ns = meta.value("namespace", "");
    name = meta.value("name", "");
  }
  return ns.empty() ? name : ns + "/" + name;
}

nlohmann::json ObjectMetadataOnly(nlohmann::json object) {
  if (!object.is_object()) return object;
  nlohmann::json kept = nlohmann::json::object();
  for (const char* field : {"apiVersion", "kind", "metadata"}) {
    auto it = object.find(field);
    if (it != object.end()) kept[field] = std::move(*it);
  }
  auto meta = kept.find("metadata");
  if (meta != kept.end() && meta->is_object()) meta->erase("managedFields");
  return kept;
}

std::pair<std::string, std::string> SplitObjectKey(const std::string& key) {
  size_t slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int64_t kPageSize = 500;
constexpr auto kMinBackoff = std::chrono::seconds(1);
constexpr auto kMaxBackoff = std::chrono::seconds(30);
// Watches end by themselves after 5 to 10 minutes, so that reconnections spread out.
constexpr int64_t kMinWatchSeconds = 300;

int64_t Millis(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::string ResourceVersionOf(const json& object) {
  if (!object.is_object() || !object.contains("metadata")) return "";
  const json& meta = object["metadata"];
  return meta.is_object() ? meta.value("resourceVersion", "") : "";
}

class FactoryImpl;

class InformerImpl : public Informer {
 public:
  InformerImpl(FactoryImpl& factory, ApiClient& client, ResourceRef ref, std::string ns,
               std::string label_selector, std::string field_selector, bool metadata_only,
               bool drop_managed_fields)
      : factory_(factory),
        client_(client),
        metadata_only_(metadata_only),
        drop_managed_fields_(drop_managed_fields),
        ref_(std::move(ref)),
        ns_(std::move(ns)),
        label_selector_(std::move(label_selector)),
        field_selector_(std::move(field_selector)),
        random_(std::random_device{}()) {}

  void AddHandler(InformerHandler handler) override;
  // A handler registration counts from AddHandler until its replay is done: a caller that added
  // handlers and then sees HasSynced knows they heard of everything listed.
  bool HasSynced() const override { return synced_ && pending_handlers_ == 0; }

  ObjectPtr Get(const std::string& ns, const std::string& name) const override {
    std::shared_lock lock(mu_);
    auto it = store_.find(ns.empty() ? name : ns + "/" + name);
    return it == store_.end() ? nullptr : it->second;
  }

  std::vector<ObjectPtr> List(const std::string& ns) const override {
    std::shared_lock lock(mu_);
    std::vector<ObjectPtr> out;
    if (ns.empty()) {
      out.reserve(store_.size());
      for (const auto& [key, object] : store_) out.push_back(object);
      return out;
    }
    // Keys are "ns/name": one namespace is one contiguous range.
    const std::string prefix = ns + "/";
    for (auto it = store_.lower_bound(prefix);
         it != store_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  std::vector<ObjectPtr> ByIndex(const std::string& index,
                                 const std::string& value) const override {
    std::shared_lock lock(mu_);
    std::vector<ObjectPtr> out;
    auto idx = indexes_.find(index);
    if (idx == indexes_.end()) return out;
    auto keys = idx->second.keys.find(value);
    if (keys == idx->second.keys.end()) return out;
    for (const std::string& key : keys->second) {
      auto it = store_.find(key);
      if (it != store_.end()) out.push_back(it->second);
    }
    return out;
  }

  void AddIndex(const std::string& index,
                std::function<std::vector<std::string>(const json&)> values) override {
    std::unique_lock lock(mu_);
    Index& idx = indexes_[index];
    idx.values = std::move(values);
    idx.keys.clear();
    for (const auto& [key, object] : store_) IndexAdd(idx, key, *object);
  }

  // Runs on a lister thread: reads the API and the store, posts the result to the factory thread.
  void Fetch();

  // The rest runs on the factory thread only.
  void Relist();
  void OnEvent(uint64_t generation, WatchEvent event);
  void OnEnd(uint64_t generation, Status status);
  void AddHandlerNow(InformerHandler handler);
  void StopWatch();

 private:
  struct Index {
    std::function<std::vector<std::string>(const json&)> values;
    std::map<std::string, std::set<std::string>> keys;  // value -> object keys
  };

  static void IndexAdd(Index& idx, const std::string& key, const json& object) {
    for (std::string& value : idx.values(object)) idx.keys[std::move(value)].insert(key);
  }
  static void IndexRemove(Index& idx, const std::string& key, const json& object) {
    for (const std::string& value : idx.values(object)) {
      auto it = idx.keys.find(value);
      if (it == idx.keys.end()) continue;
      it->second.erase(key);
      if (it->second.empty()) idx.keys.erase(it);
    }
  }

  // Stores `object` under `key` (null: removes it); returns what was there.
  ObjectPtr Store(const std::string& key, ObjectPtr object) {
    std::unique_lock lock(mu_);
    ObjectPtr old;
    auto it = store_.find(key);
    if (it != store_.end()) {
      old = std::move(it->second);
      for (auto& [name, idx] : indexes_) IndexRemove(idx, key, *old);
      if (object) {
        it->second = object;
      } else {
        store_.erase(it);
      }
    } else if (object) {
      store_.emplace(key, object);
    }
    if (object) {
      for (auto& [name, idx] : indexes_) IndexAdd(idx, key, *object);
    }
    return old;
  }

  using Objects = std::map<std::string, ObjectPtr>;  // by ObjectKey
  void Apply(Objects fresh, const std::string& resource_version, Clock::time_point queued,
             Clock::time_point listed);
  void StartWatch();
  void RelistLater(const Status& why);
  void NotifyAdd(const ObjectPtr& object);
  void NotifyUpdate(const ObjectPtr& old_object, const ObjectPtr& object);
  void NotifyDelete(const ObjectPtr& object);
  std::string What() const { return ref_.resource + (ns_.empty() ? "" : " in " + ns_); }

  // What the informer keeps of an object from the API.
  json Keep(json object) const {
    if (metadata_only_) return ObjectMetadataOnly(std::move(object));
    if (drop_managed_fields_ && object.is_object()) {
      auto meta = object.find("metadata");
      if (meta != object.end() && meta->is_object()) meta->erase("managedFields");
    }
    return object;
  }

  // The stored form of a watch event's object. The in-process client's shared object is kept
  // itself (no parse, no copy) unless Keep would drop something; then only the rest is copied.
  ObjectPtr Adopt(WatchEvent& event) const {
    if (!event.shared) return std::make_shared<const json>(Keep(std::move(event.object)));
    const json& in = *event.shared;
    auto meta = in.is_object() ? in.find("metadata") : in.end();
    bool managed = meta != in.end() && meta->is_object() && meta->contains("managedFields");
    if (!in.is_object() || !(metadata_only_ || (drop_managed_fields_ && managed))) {
      return std::move(event.shared);
    }
    json out = json::object();
    for (const auto& [name, value] : in.items()) {
      if (metadata_only_ && name != "apiVersion" && name != "kind" && name != "metadata") continue;
      if (name != "metadata" || !value.is_object()) {
        out.emplace(name, value);
        continue;
      }
      json& kept = out[name] = json::object();
      for (const auto& [field, v] : value.items()) {
        if (field != "managedFields") kept.emplace(field, v);
      }
    }
    return std::make_shared<const json>(std::move(out));
  }

  FactoryImpl& factory_;
  ApiClient& client_;
  const bool metadata_only_;
  const bool drop_managed_fields_;
  const ResourceRef ref_;
  const std::string ns_;
  const std::string label_selector_;
  const std::string field_selector_;

  mutable std::shared_mutex mu_;
  std::map<std::string, ObjectPtr> store_;  // guarded by mu_; by ObjectKey
  std::map<std::string, Index> indexes_;    // guarded by mu_
  std::atomic<bool> synced_{false};
  std::atomic<int> pending_handlers_{0};  // added, not yet registered and replayed

  // Factory thread only.
  bool listing_ = false;  // a Fetch is queued or running
  Clock::time_point list_queued_;
  std::vector<InformerHandler> handlers_;
  std::unique_ptr<Watch> watch_;
  uint64_t generation_ = 0;  // of the current watch; callbacks of older ones are ignored
  bool generation_saw_event_ = false;
  std::string last_resource_version_;
  std::chrono::seconds backoff_ = kMinBackoff;
  std::minstd_rand random_;
};

class FactoryImpl : public InformerFactory {
 public:
  FactoryImpl(ApiClient& client, InformerFactoryOptions options)
      : client_(client), options_(options) {}
  ~FactoryImpl() override {
    Stop();
    if (thread_.joinable()) {
      // Destroyed from one of its own handlers: nothing else may join it.
      if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();
      } else {
        thread_.join();
      }
    }
  }

  Informer& For(const ResourceRef& ref, const std::string& ns, const std::string& label_selector,
                const std::string& field_selector) override {
    return Find(ref, ns, label_selector, field_selector, false);
  }

  Informer& ForMetadata(const ResourceRef& ref) override { return Find(ref, "", "", "", true); }

  Informer& Find(const ResourceRef& ref, const std::string& ns, const std::string& label_selector,
                 const std::string& field_selector, bool metadata_only) {
    std::lock_guard lock(mu_);
    Key key{ref.group,      ref.version,    ref.resource, ns,
            label_selector, field_selector, metadata_only};
    auto it = informers_.find(key);
    if (it != informers_.end()) return *it->second;
    if (metadata_only) {
      // Whole objects hold the metadata too: no second list, watch and copy of the collection.
      auto whole = informers_.find(Key{ref.group, ref.version, ref.resource, "", "", "", false});
      if (whole != informers_.end()) return *whole->second;
    }
    auto informer =
        std::make_unique<InformerImpl>(*this, client_, ref, ns, label_selector, field_selector,
                                       metadata_only, options_.drop_managed_fields);
    InformerImpl* raw = informer.get();
    informers_.emplace(std::move(key), std::move(informer));
    if (started_) PostLocked([raw] { raw->Relist(); });
    return *raw;
  }

  void Start() override {
    std::lock_guard lock(mu_);
    if (started_ || stopping_) return;
    started_ = true;
    for (auto& [key, informer] : informers_) {
      InformerImpl* raw = informer.get();
      PostLocked([raw] { raw->Relist(); });
    }
    thread_ = std::thread([this] { Run(); });
  }

  bool WaitForSync(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    bool done = sync_cv_.wait_for(lock, timeout, [this] {
      if (stopping_) return true;
      for (const auto& [key, informer] : informers_) {
        if (!informer->HasSynced()) return false;
      }
      return true;
    });
    return done && !stopping_;
  }

  void Stop() override {
    std::vector<InformerImpl*> informers;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      cv_.notify_all();
      sync_cv_.notify_all();
      for (auto& [key, informer] : informers_) informers.push_back(informer.get());
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    // Listers see stopping_ between pages; what they post now is dropped.
    std::list<Lister> listers;
    {
      std::lock_guard lock(mu_);
      listers.swap(listers_);
      lists_.clear();
    }
    for (Lister& lister : listers) {
      if (lister.thread.joinable()) lister.thread.join();
    }
    // Only this thread touches the watches now. The lock is not held: a watch's Stop waits for
    // its running callback, which may be waiting to Post.
    for (InformerImpl* informer : informers) informer->StopWatch();
    std::lock_guard lock(mu_);
    tasks_.clear();
    timers_.clear();
  }

  // Runs `task` on the factory thread, after what is queued.
  void Post(std::function<void()> task) {
    std::lock_guard lock(mu_);
    PostLocked(std::move(task));
  }

  void PostAfter(std::chrono::milliseconds delay, std::function<void()> task) {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    timers_.emplace(Clock::now() + delay, std::move(task));
    cv_.notify_one();
  }

  void NotifySynced() {
    std::lock_guard lock(mu_);
    sync_cv_.notify_all();
  }

  // Queues `informer`'s Fetch for a lister thread, making one if fewer than list_concurrency
  // run: lists of different collections wait for the API side by side instead of in a row.
  // Listers end when nothing is left to list, so a process at rest keeps none.
  void QueueList(InformerImpl* informer) {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    lists_.push_back(informer);
    if (running_listers_ >= std::max(1, options_.list_concurrency)) return;
    // Join the listers that ended (they hold no lock once `done` is set and seen).
    for (auto it = listers_.begin(); it != listers_.end();) {
      if (!it->done) {
        ++it;
        continue;
      }
      it->thread.join();
      it = listers_.erase(it);
    }
    ++running_listers_;
    Lister& lister = listers_.emplace_back();
    lister.thread = std::thread([this, &lister] { ListLoop(lister); });
  }

  bool Stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

 private:
  using Key = std::tuple<std::string, std::string, std::string, std::string, std::string,
                         std::string, bool>;

  struct Lister {
    std::thread thread;
    bool done = false;  // guarded by mu_
  };

  void ListLoop(Lister& self) {
    std::unique_lock lock(mu_);
    while (!stopping_ && !lists_.empty()) {
      InformerImpl* informer = lists_.front();
      lists_.pop_front();
      lock.unlock();
      informer->Fetch();
      lock.lock();
    }
    --running_listers_;
    self.done = true;
  }

  void PostLocked(std::function<void()> task) {
    if (stopping_) return;
    tasks_.push_back(std::move(task));
    cv_.notify_one();
  }

  void Run() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      auto now = Clock::now();
      while (!timers_.empty() && timers_.begin()->first <= now) {
        tasks_.push_back(std::move(timers_.begin()->second));
        timers_.erase(timers_.begin());
      }
      if (tasks_.empty()) {
        if (timers_.empty()) {
          cv_.wait(lock);
        } else {
          cv_.wait_until(lock, timers_.begin()->first);
        }
        continue;
      }
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      task = nullptr;  // captured state goes before the lock is taken again
      lock.lock();
    }
  }

  ApiClient& client_;
  const InformerFactoryOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;                                      // wakes the factory thread
  std::condition_variable sync_cv_;                                 // wakes WaitForSync
  std::map<Key, std::unique_ptr<InformerImpl>> informers_;          // guarded by mu_; never shrinks
  std::deque<std::function<void()>> tasks_;                         // guarded by mu_
  std::multimap<Clock::time_point, std::function<void()>> timers_;  // guarded by mu_
  std::deque<InformerImpl*> lists_;                                 // guarded by mu_; to Fetch
  std::list<Lister> listers_;                                       // guarded by mu_
  int running_listers_ = 0;                                         // guarded by mu_
  bool started_ = false;                                            // guarded by mu_
  bool stopping_ = false;                                           // guarded by mu_
  std::thread thread_;
};

void InformerImpl::AddHandler(InformerHandler handler) {
  ++pending_handlers_;  // before it is queued: HasSynced turns false at once
  factory_.Post(
      [this, handler = std::move(handler)]() mutable { AddHandlerNow(std::move(handler)); });
}

void InformerImpl::AddHandlerNow(InformerHandler handler) {
  handlers_.push_back(std::move(handler));
  if (synced_ && handlers_.back().on_add) {
    for (const ObjectPtr& object : List("")) {
      try {
        handlers_.back().on_add(object);
      } catch (const std::exception& e) {
        log::Error("informer", "{} add handler threw: {}", What(), e.what());
      }
    }
  }
  if (--pending_handlers_ == 0 && synced_) factory_.NotifySynced();
}

void InformerImpl::Relist() {
  StopWatch();
  if (listing_) return;  // a list is on its way; its result starts the watch
  listing_ = true;
  list_queued_ = Clock::now();
  factory_.QueueList(this);
}

void InformerImpl::Fetch() {
  const auto started = Clock::now();
  Objects fresh;
  ListOptions options;
  options.label_selector = label_selector_;
  options.field_selector = field_selector_;
  options.limit = kPageSize;
  std::string resource_version;
  do {
    auto page = client_.List(ref_, ns_, options);
    if (!page.ok()) {
      const bool restart =
          page.status().code() == StatusCode::kCompacted && !options.continue_token.empty();
      factory_.Post([this, restart, status = page.status()] {
        listing_ = false;
        // An expired continue token: start over at once.
        if (restart) return Relist();
        RelistLater(status);
      });
      return;
    }
    // Later pages are served at the first page's revision; watching from it misses nothing.
    if (resource_version.empty()) resource_version = page->resource_version;
    // Objects the store holds unchanged keep their pointer (handlers may hold it) and are not
    // held twice while a re-list runs; each page's JSON goes before the next is read.
    std::shared_lock lock(mu_);
    for (json& item : page->items) {
      std::string key = ObjectKey(item);
      auto old = store_.find(key);
      if (old != store_.end() && ResourceVersionOf(*old->second) == ResourceVersionOf(item)) {
        fresh[std::move(key)] = old->second;
      } else {
        fresh[std::move(key)] = std::make_shared<const json>(Keep(std::move(item)));
      }
    }
    lock.unlock();
    options.continue_token = page->continue_token;
  } while (!options.continue_token.empty() && !factory_.Stopping());
  if (factory_.Stopping()) return;  // a partial list must not look like deletions
  auto result = std::make_shared<Objects>(std::move(fresh));
  factory_.Post([this, result, resource_version, started] {
    Apply(std::move(*result), resource_version, started, Clock::now());
  });
}

void InformerImpl::Apply(Objects fresh, const std::string& resource_version,
                         Clock::time_point started, Clock::time_point listed) {
  const auto applying = Clock::now();
  listing_ = false;
  // What changed while we were not watching, for the handlers.
  std::vector<ObjectPtr> added, deleted;
  std::vector<std::pair<ObjectPtr, ObjectPtr>> updated;
  size_t count = 0;
  {
    std::unique_lock lock(mu_);
    for (auto& [key, object] : fresh) {
      auto old = store_.find(key);
      if (old == store_.end()) {
        added.push_back(object);
      } else if (old->second != object) {
        updated.emplace_back(old->second, object);
      }
    }
    for (const auto& [key, object] : store_) {
      if (!fresh.count(key)) deleted.push_back(object);
    }
    store_ = std::move(fresh);
    count = store_.size();
    for (auto& [name, idx] : indexes_) {
      idx.keys.clear();
      for (const auto& [key, object] : store_) IndexAdd(idx, key, *object);
    }
  }
  for (const ObjectPtr& object : deleted) NotifyDelete(object);
  for (const ObjectPtr& object : added) NotifyAdd(object);
  for (const auto& [old_object, object] : updated) NotifyUpdate(old_object, object);
  last_resource_version_ = resource_version;
  StartWatch();
  log::Debug("informer",
             "{}: listed {} objects in {} ms (after {} ms waiting for a lister); {} ms waiting "
             "for the factory thread; {} ms storing and calling {} handler(s)",
             What(), count, Millis(listed - started), Millis(started - list_queued_),
             Millis(applying - listed), Millis(Clock::now() - applying), handlers_.size());
  // Synced after the watch started, so that a change made once WaitForSync returns is seen.
  if (!synced_) {
    synced_ = true;
    factory_.NotifySynced();
  }
}

void InformerImpl::StartWatch() {
  uint64_t generation = ++generation_;
  generation_saw_event_ = false;
  WatchOptions options;
  options.label_selector = label_selector_;
  options.field_selector = field_selector_;
  options.resource_version = last_resource_version_;
  options.allow_bookmarks = true;
  options.timeout_seconds = kMinWatchSeconds + static_cast<int64_t>(random_() % kMinWatchSeconds);
  // Events only queue work for the factory thread: the client's thread never waits on us.
  WatchHandler handler;
  FactoryImpl* factory = &factory_;
  handler.on_event = [this, factory, generation](WatchEvent event) {
    factory->Post([this, generation, event = std::move(event)]() mutable {
      OnEvent(generation, std::move(event));
    });
  };
  handler.on_end = [this, factory, generation](Status status) {
    factory->Post([this, generation, status = std::move(status)] { OnEnd(generation, status); });
  };
  auto watch = client_.StartWatch(ref_, ns_, options, std::move(handler));
  if (!watch.ok()) {
    ++generation_;
    if (watch.status().code() == StatusCode::kCompacted) {
      factory_.Post([this] { Relist(); });
      return;
    }
    return RelistLater(watch.status());
  }
  watch_ = std::move(*watch);
}

void InformerImpl::StopWatch() {
  ++generation_;
  if (watch_) {
    watch_->Stop();
    watch_.reset();
  }
}

void InformerImpl::RelistLater(const Status& why) {
  StopWatch();
  // A resource that is not served (a deleted custom resource definition) is retried quietly
  // once it has been reported.
  if (why.code() == StatusCode::kNotFound && backoff_ > kMinBackoff) {
    log::Debug("informer", "{}: {}; listing again in {}s", What(), why.ToString(),
               backoff_.count());
  } else {
    log::Warn("informer", "{}: {}; listing again in {}s", What(), why.ToString(), backoff_.count());
  }
  factory_.PostAfter(backoff_, [this] { Relist(); });
  backoff_ = std::min<std::chrono::seconds>(backoff_ * 2, kMaxBackoff);
}

void InformerImpl::OnEvent(uint64_t generation, WatchEvent event) {
  if (generation != generation_) return;
  if (!generation_saw_event_) {
    generation_saw_event_ = true;
    backoff_ = kMinBackoff;  // the API works again
  }
  std::string resource_version = ResourceVersionOf(event.Object());
  if (!resource_version.empty()) last_resource_version_ = resource_version;
  if (event.type == WatchEvent::Type::kBookmark) return;
  std::string key = ObjectKey(event.Object());
  if (key.empty()) return;
  ObjectPtr object = Adopt(event);
  if (event.type == WatchEvent::Type::kDeleted) {
    if (Store(key, nullptr)) NotifyDelete(object);
    return;
  }
  ObjectPtr old = Store(key, object);
  if (old) {
    // A resumed watch may repeat what the informer already has: no news for the handlers.
    if (!resource_version.empty() && ResourceVersionOf(*old) == resource_version) return;
    NotifyUpdate(old, object);
  } else {
    NotifyAdd(object);
  }
}

void InformerImpl::OnEnd(uint64_t generation, Status status) {
  if (generation != generation_) return;
  if (status.ok()) {
    // The server ended the watch (its timeout): resume where it stopped.
    StopWatch();
    backoff_ = kMinBackoff;
    return StartWatch();
  }
  if (status.code() == StatusCode::kCompacted) {
    log::Info("informer", "{}: {}; listing again", What(), status.message());
    return Relist();
  }
  RelistLater(status);
}

void InformerImpl::NotifyAdd(const ObjectPtr& object) {
  for (const auto& handler : handlers_) {
    if (!handler.on_add) continue;
    try {
      handler.on_add(object);
    } catch (const std::exception& e) {
      log::Error("informer", "{} add handler threw: {}", What(), e.what());
    }
  }
}

void InformerImpl::NotifyUpdate(const ObjectPtr& old_object, const ObjectPtr& object) {
  for (const auto& handler : handlers_) {
    if (!handler.on_update) continue;
    try {
      handler.on_update(old_object, object);
    } catch (const std::exception& e) {
      log::Error("informer", "{} update handler threw: {}", What(), e.what());
    }
  }
}

void InformerImpl::NotifyDelete(const ObjectPtr& object) {
  for (const auto& handler : handlers_) {
    if (!handler.on_delete) continue;
    try {
      handler.on_delete(object);
    } catch (const std::exception& e) {
      log::Error("informer", "{} delete handler threw: {}", What(), e.what());
    }
  }
}

}  // namespace

std::unique_ptr<InformerFactory> InformerFactory::Create(ApiClient& client,
                                                         InformerFactoryOptions options) {
  return std::make_unique<FactoryImpl>(client, options);
}

}  // namespace orch
