// Metrics collection and exposition (metrics.h), and the timing Store decorator.
#include "metrics.h"

#include <fmt/format.h>

#include <chrono>

namespace orch::api {

void Metrics::Histogram::Observe(double v) {
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (v <= kBuckets[i]) ++counts[i];
  }
  ++count;
  sum += v;
}

void Metrics::ObserveRequest(const std::string& verb, const std::string& resource, int code,
                             double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{verb, resource, code}];
  latency_[{verb, resource}].Observe(seconds);
}

void Metrics::ObserveStore(const std::string& operation, double seconds) {
  std::lock_guard lock(mu_);
  store_latency_[operation].Observe(seconds);
}

std::string Metrics::Render(size_t open_watches) const {
  std::string out;
  auto histogram = [&out](const std::string& name, const std::string& labels, const Histogram& h) {
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, labels, kBuckets[i], h.counts[i]);
    }
    out += fmt::format("{}_bucket{{{}le=\"+Inf\"}} {}\n", name, labels, h.count);
    std::string bare =
        labels.empty() ? std::string() : fmt::format("{{{}}}", labels.substr(0, labels.size() - 1));
    out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, bare, h.sum, name, bare, h.count);
  };
  std::lock_guard lock(mu_);
  out += "# HELP apiserver_request_total Requests by verb, resource and HTTP code.\n";
  out += "# TYPE apiserver_request_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [verb, resource, code] = key;
    out += fmt::format("apiserver_request_total{{verb=\"{}\",resource=\"{}\",code=\"{}\"}} {}\n",
                       verb, resource, code, n);
  }
  out += "# HELP apiserver_request_duration_seconds Request latency by verb and resource.\n";
  out += "# TYPE apiserver_request_duration_seconds histogram\n";
  for (const auto& [key, h] : latency_) {
    histogram("apiserver_request_duration_seconds",
              fmt::format("verb=\"{}\",resource=\"{}\",", key.first, key.second), h);
  }
  out += "# HELP apiserver_current_inflight_requests Requests being served.\n";
  out += "# TYPE apiserver_current_inflight_requests gauge\n";
  out += fmt::format("apiserver_current_inflight_requests {}\n", in_flight_.load());
  out += "# HELP apiserver_registered_watchers Open watches.\n";
  out += "# TYPE apiserver_registered_watchers gauge\n";
  out += fmt::format("apiserver_registered_watchers {}\n", open_watches);
  out += "# HELP orch_datastore_request_duration_seconds Datastore latency by operation.\n";
  out += "# TYPE orch_datastore_request_duration_seconds histogram\n";
  for (const auto& [op, h] : store_latency_) {
    histogram("orch_datastore_request_duration_seconds", fmt::format("operation=\"{}\",", op), h);
  }
  return out;
}

namespace {

class InstrumentedStore : public Store {
 public:
  InstrumentedStore(Store& inner, Metrics& metrics) : inner_(inner), metrics_(metrics) {}

 private:
  template <typename F>
  auto Timed(const char* op, F&& f) {
    auto start = std::chrono::steady_clock::now();
    auto result = f();
    metrics_.ObserveStore(op, std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                            start)
                                  .count());
    return result;
  }

 public:

  Result<int64_t> CurrentRevision() override { return inner_.CurrentRevision(); }
  Result<int64_t> CompactedRevision() override { return inner_.CompactedRevision(); }
  Result<KeyValue> Get(const std::string& key, int64_t revision) override {
    return Timed("get", [&] { return inner_.Get(key, revision); });
  }
  Result<ListResult> List(const RangeOptions& options) override {
    return Timed("list", [&] { return inner_.List(options); });
  }
  Result<int64_t> Count(const std::string& prefix) override {
    return Timed("count", [&] { return inner_.Count(prefix); });
  }
  Result<KeyValue> Create(const std::string& key, std::string value,
                          std::chrono::seconds ttl) override {
    return Timed("create", [&] { return inner_.Create(key, std::move(value), ttl); });
  }
  Result<KeyValue> Update(const std::string& key, std::string value, int64_t expected,
                          std::chrono::seconds ttl) override {
    return Timed("update", [&] { return inner_.Update(key, std::move(value), expected, ttl); });
  }
  Result<Event> Delete(const std::string& key, int64_t expected) override {
    return Timed("delete", [&] { return inner_.Delete(key, expected); });
  }
  Result<std::unique_ptr<Watcher>> Watch(const std::string& prefix, int64_t from) override {
    return inner_.Watch(prefix, from);
  }
  Status Compact(int64_t revision) override { return inner_.Compact(revision); }

 private:
  Store& inner_;
  Metrics& metrics_;
};

}  // namespace

std::unique_ptr<Store> InstrumentStore(Store& inner, Metrics& metrics) {
  return std::make_unique<InstrumentedStore>(inner, metrics);
}

}  // namespace orch::api
