// The event recorder (events.h): core/v1 Events written by a background thread from a bounded
// queue, repeats of one event folded into its count, as `kubectl describe` shows them.
#include "orch/events.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "orch/log.h"
#include "orch/timestamps.h"

namespace orch {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxQueued = 1000;
constexpr size_t kMaxRemembered = 4096;  // distinct events whose repeats are folded
constexpr auto kFoldWindow = std::chrono::minutes(10);
constexpr auto kDrainTime = std::chrono::seconds(5);
constexpr size_t kMaxMessageBytes = 1024;
// A full queue drops events in bursts (a scheduler failing thousands of pods): one log line
// per burst and interval, with the count, instead of one per event.
constexpr auto kDropReportInterval = std::chrono::seconds(10);

std::string Field(const json& object, const char* section, const char* field) {
  if (!object.is_object()) return "";
  const json* from = &object;
  if (section != nullptr) {
    if (!object.contains(section) || !object[section].is_object()) return "";
    from = &object[section];
  }
  auto it = from->find(field);
  return it != from->end() && it->is_string() ? it->get<std::string>() : "";
}

class RecorderImpl : public EventRecorder {
 public:
  RecorderImpl(ApiClient& client, std::string component, std::string host)
      : client_(client), component_(std::move(component)), host_(std::move(host)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~RecorderImpl() override { Stop(); }

  void Record(const json& involved, const std::string& type, const std::string& reason,
              const std::string& message) override {
    Item item;
    item.involved = {{"kind", Field(involved, nullptr, "kind")},
                     {"apiVersion", Field(involved, nullptr, "apiVersion")},
                     {"name", Field(involved, "metadata", "name")},
                     {"uid", Field(involved, "metadata", "uid")},
                     {"resourceVersion", Field(involved, "metadata", "resourceVersion")}};
    std::string ns = Field(involved, "metadata", "namespace");
    if (!ns.empty()) item.involved["namespace"] = ns;
    item.type = type;
    item.reason = reason;
    item.message =
        message.size() > kMaxMessageBytes ? message.substr(0, kMaxMessageBytes) : message;
    item.time = std::chrono::system_clock::now();
    std::lock_guard lock(mu_);
    if (stopping_) return;
    if (queue_.size() >= kMaxQueued) {
      // Events are best effort: when the API is slow or down, the excess goes.
      ++dropped_;
      ReportDropsLocked(false);
      return;
    }
    queue_.push_back(std::move(item));
    cv_.notify_one();
  }

  void Stop() override {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        stopping_ = true;
        drain_until_ = Clock::now() + kDrainTime;
      }
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Item {
    json involved;  // the ObjectReference
    std::string type, reason, message;
    std::chrono::system_clock::time_point time;
  };
  // An Event already written, whose repeats bump its count.
  struct Written {
    std::string ns, name;
    int64_t count = 0;
    Clock::time_point last_seen;
  };

  void Run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() || (stopping_ && Clock::now() >= drain_until_)) break;
      Item item = std::move(queue_.front());
      queue_.pop_front();
      ReportDropsLocked(false);
      lock.unlock();
      Write(item);
      lock.lock();
    }
    ReportDropsLocked(true);
  }

  // Logs how many events were dropped since the last report, at most once per interval (or
  // now, at the end).
  void ReportDropsLocked(bool final) {
    if (dropped_ == 0) return;
    auto now = Clock::now();
    if (!final && now < next_drop_report_) return;
    log::Warn(component_, "event queue full: dropped {} event(s){}", dropped_,
              final ? ""
                    : fmt::format(" (reported at most every {} s)",
                                  std::chrono::seconds(kDropReportInterval).count()));
    dropped_ = 0;
    next_drop_report_ = now + kDropReportInterval;
  }

  void Write(const Item& item) {
    const std::string key =
        fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}", item.involved.value("uid", ""),
                    item.involved.value("namespace", ""), item.involved.value("name", ""),
                    item.type, item.reason, item.message);
    const std::string timestamp = FormatTime(item.time);
    auto now = Clock::now();
    auto seen = written_.find(key);
    if (seen != written_.end() && now - seen->second.last_seen < kFoldWindow) {
      Written& w = seen->second;
      json patch = {{"count", w.count + 1}, {"lastTimestamp", timestamp}};
      auto patched =
          client_.Patch(resources::kEvents, w.ns, w.name, PatchType::kMerge, patch.dump());
      if (patched.ok()) {
        ++w.count;
        w.last_seen = now;
        return;
      }
      if (patched.status().code() != StatusCode::kNotFound) {
        log::Debug(component_, "updating event {}/{}: {}", w.ns, w.name,
                   patched.status().ToString());
        return;
      }
      written_.erase(seen);  // the Event expired or was deleted: write a new one
    }

    std::string ns = item.involved.value("namespace", "");
    if (ns.empty()) ns = "default";  // where upstream puts events of cluster-scoped objects
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    std::string name = fmt::format("{}.{:x}", item.involved.value("name", ""), nanos);
    json source = {{"component", component_}};
    if (!host_.empty()) source["host"] = host_;
    json event = {{"apiVersion", "v1"},
                  {"kind", "Event"},
                  {"metadata", {{"name", name}, {"namespace", ns}}},
                  {"involvedObject", item.involved},
                  {"reason", item.reason},
                  {"message", item.message},
                  {"type", item.type},
                  {"source", source},
                  {"count", 1},
                  {"firstTimestamp", timestamp},
                  {"lastTimestamp", timestamp},
                  {"reportingComponent", component_},
                  {"reportingInstance", host_}};
    auto created = client_.Create(resources::kEvents, ns, event);
    if (!created.ok()) {
      log::Debug(component_, "writing event {}/{}: {}", ns, name, created.status().ToString());
      return;
    }
    if (written_.size() >= kMaxRemembered) Forget(now);
    written_[key] = Written{ns, name, 1, now};
  }

  // Makes room in the memory of written events: the expired ones, else the oldest.
  void Forget(Clock::time_point now) {
    for (auto it = written_.begin(); it != written_.end();) {
      it = now - it->second.last_seen >= kFoldWindow ? written_.erase(it) : std::next(it);
    }
    if (written_.size() < kMaxRemembered) return;
    auto oldest = written_.begin();
    for (auto it = written_.begin(); it != written_.end(); ++it) {
      if (it->second.last_seen < oldest->second.last_seen) oldest = it;
    }
    written_.erase(oldest);
  }

  ApiClient& client_;
  const std::string component_;
  const std::string host_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;                  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  Clock::time_point drain_until_;           // guarded by mu_
  size_t dropped_ = 0;                      // guarded by mu_; since the last report
  Clock::time_point next_drop_report_;      // guarded by mu_
  std::map<std::string, Written> written_;  // recorder thread only
  std::thread thread_;
};

}  // namespace

std::unique_ptr<EventRecorder> EventRecorder::Create(ApiClient& client, std::string component,
                                                     std::string host) {
  return std::make_unique<RecorderImpl>(client, std::move(component), std::move(host));
}

}  // namespace orch
