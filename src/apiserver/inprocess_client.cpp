// In-process API client (inprocess_client.h): requests become api::Request values served by
// ApiHandler::ServeAs on the caller's thread; watch frames go through one delivery thread.
#include "inprocess_client.h"

#include <fmt/format.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "orch/log.h"

namespace orch::api {
namespace {

// Percent-encodes a query value.
std::string Escape(const std::string& in) {
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

Request MakeRequest(std::string method, const std::string& path,
                    const std::vector<std::pair<std::string, std::string>>& query) {
  Request r;
  r.method = std::move(method);
  r.path = path;
  r.target = path;
  char sep = '?';
  for (const auto& [name, value] : query) {
    if (value.empty()) continue;
    r.query.Set(name, value);
    r.target += fmt::format("{}{}={}", sep, name, Escape(value));
    sep = '&';
  }
  r.headers.Add("accept", "application/json");
  r.remote_address = "in-process";
  return r;
}

// Collects the one response of a unary call.
class UnaryWriter : public ResponseWriter {
 public:
  void Send(Response response) override { Finish(std::move(response)); }
  void StartStream(int status, std::string content_type,
                   std::vector<std::pair<std::string, std::string>>) override {
    stream_.status = status;
    stream_.content_type = std::move(content_type);
  }
  bool Write(std::string chunk) override {
    stream_.body += chunk;
    return true;
  }
  void End() override { Finish(std::move(stream_)); }
  void OnClose(std::function<void()> callback) override {
    std::lock_guard lock(mu_);
    if (done_) {
      callback();
    } else {
      on_close_.push_back(std::move(callback));
    }
  }
  std::future<Response> future() { return promise_.get_future(); }

 private:
  void Finish(Response response) {
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(mu_);
      if (done_) return;
      done_ = true;
      callbacks.swap(on_close_);
    }
    promise_.set_value(std::move(response));
    for (auto& c : callbacks) c();
  }

  std::mutex mu_;
  bool done_ = false;                            // guarded by mu_
  std::vector<std::function<void()>> on_close_;  // guarded by mu_
  Response stream_;
  std::promise<Response> promise_;
};

Status ErrorOf(const Response& response) {
  std::string reason;
  std::string message = fmt::format("HTTP {}", response.status);
  json body = json::parse(response.body, nullptr, false);
  if (body.is_object()) {
    reason = body.value("reason", "");
    message = body.value("message", message);
  }
  return StatusFromApiError(response.status, reason, message);
}

Result<json> DecodeObject(const Response& response) {
  if (response.status < 200 || response.status >= 300) return ErrorOf(response);
  json body = json::parse(response.body, nullptr, false);
  if (body.is_discarded()) return Internal("the API answered with malformed JSON");
  return body;
}

class DeliveryThread;

// One watch: its frames are queued by the handler's writes and delivered in order by the
// client's delivery thread.
class InProcessWatch : public orch::Watch,
                       public ResponseWriter,
                       public std::enable_shared_from_this<InProcessWatch> {
 public:
  InProcessWatch(DeliveryThread& delivery, orch::WatchHandler handler)
      : delivery_(delivery), handler_(std::move(handler)) {}

  // ResponseWriter: called by the handler and the watch cache.
  void Send(Response response) override;  // the watch was refused
  void StartStream(int, std::string, std::vector<std::pair<std::string, std::string>>) override {}
  bool Write(std::string chunk) override;
  bool TakesObjects() const override { return true; }
  bool WriteEvent(const char* type, std::shared_ptr<const json> object) override;
  void End() override;
  void OnClose(std::function<void()> callback) override;

  // Watch.
  void Stop() override;

  // On the delivery thread.
  void Deliver(const std::string& frame);
  void DeliverObject(const char* type, std::shared_ptr<const json> object);
  void DeliverEnd(Status status);

 private:
  bool Queue(std::function<void()> work);  // one frame or event; false when refused
  void Close();                            // releases the server side of the watch
  void Post(std::function<void()> work);

  DeliveryThread& delivery_;
  orch::WatchHandler handler_;
  std::recursive_mutex callback_mu_;  // held while a callback runs; Stop waits on it
  bool stopped_ = false;              // guarded by callback_mu_
  std::mutex mu_;
  bool closed_ = false;                          // guarded by mu_
  std::vector<std::function<void()>> on_close_;  // guarded by mu_
  size_t queued_ = 0;                            // guarded by mu_: frames not yet delivered
};

// Delivers the frames of every watch of one client, in order, off the watch cache's lock.
class DeliveryThread {
 public:
  DeliveryThread() : thread_([this] { Run(); }) {}
  ~DeliveryThread() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Post(std::function<void()> work) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      queue_.push_back(std::move(work));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto work = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      work();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::thread thread_;
};

// A watcher that falls this far behind is ended (the informer re-lists), as a slow HTTP
// client would be dropped.
constexpr size_t kMaxQueuedFrames = 100000;

void InProcessWatch::Send(Response response) {
  Status error = ErrorOf(response);
  Post([self = shared_from_this(), error] { self->DeliverEnd(error); });
  Close();
}

bool InProcessWatch::Queue(std::function<void()> work) {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  if (++queued_ > kMaxQueuedFrames) {
    delivery_.Post([self = shared_from_this()] {
      self->DeliverEnd(Unavailable("the watch fell too far behind"));
    });
    return false;
  }
  delivery_.Post(std::move(work));
  return true;
}

bool InProcessWatch::Write(std::string chunk) {
  return Queue([self = shared_from_this(), chunk = std::move(chunk)] { self->Deliver(chunk); });
}

bool InProcessWatch::WriteEvent(const char* type, std::shared_ptr<const json> object) {
  // `type` is one of the watch cache's static names: it outlives the queue.
  return Queue([self = shared_from_this(), type, object = std::move(object)]() mutable {
    self->DeliverObject(type, std::move(object));
  });
}

void InProcessWatch::End() {
  Post([self = shared_from_this()] { self->DeliverEnd(Status::Ok()); });
  Close();
}

void InProcessWatch::Post(std::function<void()> work) {
  // Under mu_, so that nothing reaches the delivery thread after Close (the client, which owns
  // that thread, may be gone by then).
  std::lock_guard lock(mu_);
  if (!closed_) delivery_.Post(std::move(work));
}

void InProcessWatch::OnClose(std::function<void()> callback) {
  {
    std::lock_guard lock(mu_);
    if (!closed_) {
      on_close_.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

void InProcessWatch::Close() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    callbacks.swap(on_close_);
  }
  for (auto& c : callbacks) c();
}

void InProcessWatch::Stop() {
  {
    std::lock_guard lock(callback_mu_);
    stopped_ = true;
  }
  Close();
}

// The watch event type a frame's "type" names; nothing for ERROR (and anything unknown).
std::optional<orch::WatchEvent::Type> EventTypeOf(std::string_view name) {
  if (name == "ADDED") return orch::WatchEvent::Type::kAdded;
  if (name == "MODIFIED") return orch::WatchEvent::Type::kModified;
  if (name == "DELETED") return orch::WatchEvent::Type::kDeleted;
  if (name == "BOOKMARK") return orch::WatchEvent::Type::kBookmark;
  return std::nullopt;
}

void InProcessWatch::Deliver(const std::string& frames) {
  {
    std::lock_guard lock(mu_);
    --queued_;
  }
  std::lock_guard lock(callback_mu_);
  if (stopped_) return;
  // A chunk holds one or more newline-terminated frames.
  size_t start = 0;
  while (start < frames.size() && !stopped_) {
    size_t end = frames.find('\n', start);
    if (end == std::string::npos) end = frames.size();
    json frame = json::parse(frames.begin() + start, frames.begin() + end, nullptr, false);
    start = end + 1;
    if (!frame.is_object()) continue;
    orch::WatchEvent event;
    if (auto type = EventTypeOf(frame.value("type", ""))) {
      event.type = *type;
    } else {  // ERROR: a Status
      const json& status = frame["object"];
      stopped_ = true;
      if (handler_.on_end) {
        handler_.on_end(StatusFromApiError(status.value("code", 500), status.value("reason", ""),
                                           status.value("message", "watch error")));
      }
      Close();
      return;
    }
    event.object = std::move(frame["object"]);
    if (handler_.on_event) handler_.on_event(std::move(event));
  }
}

void InProcessWatch::DeliverObject(const char* type, std::shared_ptr<const json> object) {
  {
    std::lock_guard lock(mu_);
    --queued_;
  }
  std::lock_guard lock(callback_mu_);
  if (stopped_) return;
  orch::WatchEvent event;
  auto event_type = EventTypeOf(type);
  if (!event_type) return;  // errors come as text frames (Write)
  event.type = *event_type;
  event.shared = std::move(object);
  if (handler_.on_event) handler_.on_event(std::move(event));
}

void InProcessWatch::DeliverEnd(Status status) {
  std::lock_guard lock(callback_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (handler_.on_end) handler_.on_end(std::move(status));
}

// Owns the user a client acts as; the watch handles share the delivery thread, which the
// client joins on destruction (after stopping the watches still open).
class InProcessClient : public ApiClient {
 public:
  InProcessClient(ApiHandler& handler, UserInfo user, std::string field_manager)
      : handler_(handler), user_(std::move(user)), field_manager_(std::move(field_manager)) {}

  ~InProcessClient() override {
    std::vector<std::weak_ptr<InProcessWatch>> watches;
    {
      std::lock_guard lock(mu_);
      watches.swap(watches_);
    }
    for (auto& weak : watches) {
      if (auto w = weak.lock()) w->Stop();
    }
  }

  Result<json> Get(const orch::ResourceRef& ref, const std::string& ns,
                   const std::string& name) override {
    return DecodeObject(Call(MakeRequest("GET", ref.ObjectPath(ns, name), {})));
  }

  Result<orch::ObjectList> List(const orch::ResourceRef& ref, const std::string& ns,
                                const orch::ListOptions& options) override {
    auto body = DecodeObject(
        Call(MakeRequest("GET", ref.CollectionPath(ns),
                         {{"labelSelector", options.label_selector},
                          {"fieldSelector", options.field_selector},
                          {"limit", options.limit > 0 ? std::to_string(options.limit) : ""},
                          {"continue", options.continue_token},
                          {"resourceVersion", options.resource_version}})));
    if (!body.ok()) return body.status();
    orch::ObjectList list;
    if (body->contains("items") && (*body)["items"].is_array()) {
      list.items.reserve((*body)["items"].size());
      for (json& item : (*body)["items"]) list.items.push_back(std::move(item));
    }
    const json meta = body->value("metadata", json::object());
    list.resource_version = meta.value("resourceVersion", "");
    list.continue_token = meta.value("continue", "");
    return list;
  }

  Result<json> Create(const orch::ResourceRef& ref, const std::string& ns, const json& object,
                      const orch::WriteOptions& options) override {
    Request r = MakeRequest("POST", ref.CollectionPath(ns), WriteQuery(options));
    r.headers.Add("content-type", "application/json");
    r.body = object.dump();
    return DecodeObject(Call(std::move(r)));
  }

  Result<json> Update(const orch::ResourceRef& ref, const std::string& ns, const json& object,
                      const std::string& subresource, const orch::WriteOptions& options) override {
    std::string name = object.contains("metadata") ? object["metadata"].value("name", "") : "";
    if (name.empty()) return InvalidArgument("update: metadata.name is required");
    Request r = MakeRequest("PUT", ref.ObjectPath(ns, name, subresource), WriteQuery(options));
    r.headers.Add("content-type", "application/json");
    r.body = object.dump();
    return DecodeObject(Call(std::move(r)));
  }

  Result<json> Patch(const orch::ResourceRef& ref, const std::string& ns, const std::string& name,
                     orch::PatchType type, const std::string& patch, const std::string& subresource,
                     const orch::WriteOptions& options) override {
    auto query = WriteQuery(options);
    if (options.force && type == orch::PatchType::kApply) query.emplace_back("force", "true");
    Request r = MakeRequest("PATCH", ref.ObjectPath(ns, name, subresource), query);
    static constexpr const char* kTypes[] = {
        "application/merge-patch+json", "application/json-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml"};
    r.headers.Add("content-type", kTypes[static_cast<int>(type)]);
    r.body = patch;
    return DecodeObject(Call(std::move(r)));
  }

  Result<json> Delete(const orch::ResourceRef& ref, const std::string& ns, const std::string& name,
                      const orch::DeleteOptions& options) override {
    json body = {{"kind", "orch::DeleteOptions"}, {"apiVersion", "v1"}};
    if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
    if (!options.propagation_policy.empty()) {
      body["propagationPolicy"] = options.propagation_policy;
    }
    if (!options.precondition_uid.empty()) {
      body["preconditions"]["uid"] = options.precondition_uid;
    }
    if (!options.precondition_resource_version.empty()) {
      body["preconditions"]["resourceVersion"] = options.precondition_resource_version;
    }
    Request r = MakeRequest("DELETE", ref.ObjectPath(ns, name), {});
    r.headers.Add("content-type", "application/json");
    r.body = body.dump();
    auto result = DecodeObject(Call(std::move(r)));
    if (!result.ok()) return result.status();
    // Still there (finalizers, graceful pod deletion): the object; gone: null.
    const json& meta = result->value("metadata", json::object());
    if (result->value("kind", "") == "Status" || !meta.contains("deletionTimestamp")) {
      return json();
    }
    return result;
  }

  Result<json> Post(const orch::ResourceRef& ref, const std::string& ns, const std::string& name,
                    const std::string& subresource, const json& body) override {
    Request r = MakeRequest("POST", ref.ObjectPath(ns, name, subresource),
                            {{"fieldManager", field_manager_}});
    r.headers.Add("content-type", "application/json");
    r.body = body.dump();
    return DecodeObject(Call(std::move(r)));
  }

  Result<std::unique_ptr<orch::Watch>> StartWatch(const orch::ResourceRef& ref,
                                                  const std::string& ns,
                                                  const orch::WatchOptions& options,
                                                  orch::WatchHandler handler) override {
    Request r =
        MakeRequest("GET", ref.CollectionPath(ns),
                    {{"watch", "1"},
                     {"labelSelector", options.label_selector},
                     {"fieldSelector", options.field_selector},
                     {"resourceVersion", options.resource_version},
                     {"allowWatchBookmarks", options.allow_bookmarks ? "true" : ""},
                     {"timeoutSeconds",
                      options.timeout_seconds > 0 ? std::to_string(options.timeout_seconds) : ""}});
    // A watch "from now" must not replay the current state: ask from the latest revision.
    if (options.resource_version.empty()) r.query.Set("sendInitialEvents", "false");
    auto watch = std::make_shared<InProcessWatch>(delivery_, std::move(handler));
    {
      std::lock_guard lock(mu_);
      std::erase_if(watches_, [](const auto& weak) { return weak.expired(); });
      watches_.push_back(watch);
    }
    handler_.ServeAs(user_, std::move(r), watch);
    return std::unique_ptr<orch::Watch>(new WatchHandle(watch));
  }

 private:
  // The caller's handle: destroying it stops the watch.
  class WatchHandle : public orch::Watch {
   public:
    explicit WatchHandle(std::shared_ptr<InProcessWatch> watch) : watch_(std::move(watch)) {}
    ~WatchHandle() override { watch_->Stop(); }
    void Stop() override { watch_->Stop(); }

   private:
    std::shared_ptr<InProcessWatch> watch_;
  };

  std::vector<std::pair<std::string, std::string>> WriteQuery(
      const orch::WriteOptions& options) const {
    return {
        {"fieldManager", options.field_manager.empty() ? field_manager_ : options.field_manager},
        {"dryRun", options.dry_run ? "All" : ""}};
  }

  Response Call(Request request) {
    auto writer = std::make_shared<UnaryWriter>();
    auto result = writer->future();
    handler_.ServeAs(user_, std::move(request), writer);
    return result.get();
  }

  ApiHandler& handler_;
  const UserInfo user_;
  const std::string field_manager_;
  DeliveryThread delivery_;
  std::mutex mu_;
  std::vector<std::weak_ptr<InProcessWatch>> watches_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<ApiClient> NewInProcessClient(ApiHandler& handler, UserInfo user,
                                              std::string field_manager) {
  return std::make_unique<InProcessClient>(handler, std::move(user), std::move(field_manager));
}

}  // namespace orch::api
