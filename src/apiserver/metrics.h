// Prometheus metrics of the API server: requests by verb, resource and code with latency
// histograms, requests in flight, open watches, and datastore latency per operation.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "orch/store.h"

namespace orch::api {

class Metrics {
 public:
  void ObserveRequest(const std::string& verb, const std::string& resource, int code,
                      double seconds);
  void ObserveStore(const std::string& operation, double seconds);
  void AddInFlight(int delta) { in_flight_ += delta; }

  // The text exposition format; `open_watches` is read from the watch cache.
  std::string Render(size_t open_watches) const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    5};
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> counts{};
    uint64_t count = 0;
    double sum = 0;
    void Observe(double v);
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;  // guarded by mu_
  std::map<std::pair<std::string, std::string>, Histogram> latency_;        // guarded by mu_
  std::map<std::string, Histogram> store_latency_;                          // guarded by mu_
  std::atomic<int64_t> in_flight_{0};
};

// A Store that times every call into `metrics` and forwards it to `inner`.
std::unique_ptr<Store> InstrumentStore(Store& inner, Metrics& metrics);

}  // namespace orch::api
