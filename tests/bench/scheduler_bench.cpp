// scheduler_bench: how fast `orch server --disable-agent` (started here, its scheduler in
// process, no agents) binds pods: N fake Ready nodes with fresh Leases, M pending pods created at
// once through the HTTPS API; pods bound per second and creation-to-binding latency, in Markdown.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "orch/api_client.h"
#include "orch/log.h"
#include "orch/timestamps.h"
#include "orch_server_process.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace resources = orch::resources;

struct Flags {
  std::string orch = ORCH_BINARY;
  int nodes = 100;
  int pods = 1000;
  int creators = 8;  // concurrent clients creating the pods
};

constexpr const char* kNs = "default";

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// `orch server --disable-agent` in a temp dir on a free port (orch_server_process.h); stopped and
// removed at the end.
class Server {
 public:
  explicit Server(const Flags& flags) {
    orch::testing::OrchServerOptions options;
    options.binary = flags.orch;
    options.name = "orch-sched-bench";
    options.user_agent = "orch-scheduler-bench";
    auto started = orch::testing::OrchServerProcess::Start(options);
    if (!started.ok()) Die(started.status().ToString());
    process_ = std::move(*started);
    options_ = process_->client_options();
    auto client = NewClient();
    for (int i = 0; i < 600; ++i) {
      if (client->Get(resources::kServiceAccounts, kNs, "default").ok()) return;
      std::this_thread::sleep_for(100ms);
    }
    Die("the server did not answer (or made no default ServiceAccount)");
  }
  std::unique_ptr<orch::ApiClient> NewClient() const {
    auto client = orch::NewHttpsApiClient(options_);
    if (!client.ok()) Die(client.status().ToString());
    return std::move(*client);
  }

  [[noreturn]] void Die(const std::string& why) const {
    std::fprintf(stderr, "scheduler_bench: %s\n%s\n", why.c_str(),
                 process_ ? process_->Log().c_str() : "");
    std::exit(1);
  }

 private:
  std::unique_ptr<orch::testing::OrchServerProcess> process_;  // stops the server, removes its dir
  orch::HttpsClientOptions options_;
};

std::string NodeName(int i) {
  return fmt::format("bench-node-{:03}", i);
}

// A Ready node with room for far more pods than the run creates.
void CreateNode(orch::ApiClient& client, const Server& server, int i) {
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata",
                {{"name", NodeName(i)},
                 {"labels",
                  {{"kubernetes.io/hostname", NodeName(i)},
                   {"topology.kubernetes.io/zone", fmt::format("zone-{}", i % 3)}}}}}};
  auto created = client.Create(resources::kNodes, "", node);
  if (!created.ok()) server.Die("create node: " + created.status().ToString());
  const std::string now = orch::FormatTime(std::chrono::system_clock::now());
  json resources_list = {{"cpu", "32"}, {"memory", "128Gi"}, {"pods", "250"}};
  (*created)["status"] = {{"capacity", resources_list},
                          {"allocatable", resources_list},
                          {"conditions", json::array({{{"type", "Ready"},
                                                       {"status", "True"},
                                                       {"reason", "KubeletReady"},
                                                       {"lastHeartbeatTime", now},
                                                       {"lastTransitionTime", now}}})}};
  json status = (*created)["status"];
  // The node IPAM controller may write the node meanwhile (its pod CIDR): read it again.
  for (int attempt = 0;; ++attempt) {
    auto written = client.Update(resources::kNodes, "", *created, "status");
    if (written.ok()) return;
    if (written.status().code() != orch::StatusCode::kConflict || attempt == 10) {
      server.Die("node status: " + written.status().ToString());
    }
    auto fresh = client.Get(resources::kNodes, "", NodeName(i));
    if (!fresh.ok()) server.Die("get node: " + fresh.status().ToString());
    created = std::move(fresh);
    (*created)["status"] = status;
  }
}

// Keeps the nodes' Leases fresh, as their kubelets would, until stopped.
class LeaseKeeper {
 public:
  LeaseKeeper(const Server& server, int nodes) : client_(server.NewClient()), nodes_(nodes) {
    Renew();
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, 10s, [this] { return stopping_; })) {
        lock.unlock();
        Renew();
        lock.lock();
      }
    });
  }
  ~LeaseKeeper() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Renew() {
    const std::string now = orch::FormatTime(std::chrono::system_clock::now());
    for (int i = 0; i < nodes_; ++i) {
      json lease = {
          {"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", {{"name", NodeName(i)}, {"namespace", "kube-node-lease"}}},
          {"spec",
           {{"holderIdentity", NodeName(i)}, {"leaseDurationSeconds", 40}, {"renewTime", now}}}};
      auto got = client_->Get(resources::kLeases, "kube-node-lease", NodeName(i));
      if (got.ok()) {
        (*got)["spec"]["renewTime"] = now;
        (void)client_->Update(resources::kLeases, "kube-node-lease", *got);
      } else {
        (void)client_->Create(resources::kLeases, "kube-node-lease", lease);
      }
    }
  }

  std::unique_ptr<orch::ApiClient> client_;
  const int nodes_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

json Pod(int i) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", fmt::format("bench-pod-{:05}", i)}, {"labels", {{"app", "bench"}}}}},
      {"spec",
       {{"containers",
         json::array({{{"name", "c"},
                       {"image", "busybox"},
                       {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}}}}})}}}};
}

// Sets spec.unschedulable on every node.
void Cordon(orch::ApiClient& client, const Server& server, int nodes, bool cordon) {
  const std::string patch = json{{"spec", {{"unschedulable", cordon}}}}.dump();
  for (int i = 0; i < nodes; ++i) {
    auto r = client.Patch(resources::kNodes, "", NodeName(i), orch::PatchType::kMerge, patch);
    if (!r.ok()) server.Die("cordon: " + r.status().ToString());
  }
}

// One measured run over pods labelled app=`app`. Streamed: the pods are created while the
// scheduler binds them (binding can go no faster than creation). Backlog: every node is cordoned,
// all pods are created and wait, then the nodes are uncordoned: the scheduler's own pace.
bool Phase(const Server& server, const Flags& flags, orch::ApiClient& admin, const std::string& app,
           bool backlog) {
  // Every pod's creation time (when its create was sent) and binding time (when the watch saw
  // spec.nodeName first).
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Clock::time_point> sent, bound;
  std::map<std::string, int> per_node;
  orch::WatchOptions options;
  options.label_selector = "app=" + app;
  orch::WatchHandler handler;
  handler.on_event = [&](orch::WatchEvent event) {
    if (event.type != orch::WatchEvent::Type::kAdded &&
        event.type != orch::WatchEvent::Type::kModified) {
      return;
    }
    const std::string node = event.object["spec"].value("nodeName", "");
    if (node.empty()) return;
    const std::string name = event.object["metadata"].value("name", "");
    auto now = Clock::now();
    std::lock_guard lock(mu);
    if (bound.emplace(name, now).second) {
      ++per_node[node];
      if (static_cast<int>(bound.size()) == flags.pods) cv.notify_all();
    }
  };
  auto watcher = server.NewClient();
  auto watch = watcher->StartWatch(resources::kPods, kNs, options, std::move(handler));
  if (!watch.ok()) server.Die("watch: " + watch.status().ToString());
  std::this_thread::sleep_for(1s);
  if (backlog) Cordon(admin, server, flags.nodes, true);

  auto start = Clock::now();
  std::atomic<int> next{0}, failures{0};
  std::vector<std::thread> creators;
  for (int c = 0; c < flags.creators; ++c) {
    creators.emplace_back([&] {
      auto client = server.NewClient();
      for (int i = next++; i < flags.pods; i = next++) {
        json pod = Pod(i);
        pod["metadata"]["name"] = fmt::format("{}-pod-{:05}", app, i);
        pod["metadata"]["labels"]["app"] = app;
        {
          std::lock_guard lock(mu);
          sent[pod["metadata"]["name"].get<std::string>()] = Clock::now();
        }
        if (!client->Create(resources::kPods, kNs, pod).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : creators) t.join();
  const auto created = Clock::now();
  const double create_seconds = std::chrono::duration<double>(created - start).count();
  if (backlog) {
    std::this_thread::sleep_for(2s);  // every pod tried once and parked as unschedulable
    std::lock_guard lock(mu);
    if (!bound.empty()) server.Die("pods were bound to cordoned nodes");
    start = Clock::now();
    for (auto& [name, at] : sent) at = start;
  }
  if (backlog) Cordon(admin, server, flags.nodes, false);
  bool all = false;
  {
    std::unique_lock lock(mu);
    all = cv.wait_for(lock, 300s, [&] { return static_cast<int>(bound.size()) >= flags.pods; });
  }
  (*watch)->Stop();

  std::vector<double> latency;
  Clock::time_point last_bound = start;
  {
    std::lock_guard lock(mu);
    for (const auto& [name, at] : bound) {
      auto it = sent.find(name);
      if (it != sent.end()) latency.push_back(Ms(at - it->second));
      last_bound = std::max(last_bound, at);
    }
  }
  std::sort(latency.begin(), latency.end());
  auto at = [&](double q) {
    return latency.empty()
               ? 0.0
               : latency[std::min(latency.size() - 1, static_cast<size_t>(q * latency.size()))];
  };
  int min_per_node = flags.pods, max_per_node = 0;
  for (int i = 0; i < flags.nodes; ++i) {
    int n = per_node.count(NodeName(i)) ? per_node[NodeName(i)] : 0;
    min_per_node = std::min(min_per_node, n);
    max_per_node = std::max(max_per_node, n);
  }
  const double seconds = std::chrono::duration<double>(last_bound - start).count();
  std::printf("\n### %s: %d nodes, %d pods created by %d clients%s\n\n",
              backlog ? "Backlog (pods created first, then the nodes uncordoned)"
                      : "Streamed (pods bound while they are created)",
              flags.nodes, flags.pods, flags.creators, all ? "" : " (NOT all bound within 300 s)");
  std::printf("| measure | value |\n|---|---|\n");
  std::printf("| pods bound | %zu (create failures: %d) |\n", latency.size(), failures.load());
  std::printf("| creating all pods took | %.2f s (%.0f creates/s) |\n", create_seconds,
              flags.pods / create_seconds);
  std::printf("| %s to last binding | %.2f s |\n", backlog ? "uncordon" : "first create", seconds);
  std::printf("| pods bound per second | %.0f |\n", seconds > 0 ? latency.size() / seconds : 0.0);
  std::printf("| %s-to-bound latency p50 / p99 / max ms | %.0f / %.0f / %.0f |\n",
              backlog ? "uncordon" : "create", at(0.5), at(0.99),
              latency.empty() ? 0.0 : latency.back());
  std::printf("| pods per node min / max | %d / %d |\n", min_per_node, max_per_node);
  return all;
}

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--orch") {
      flags.orch = value();
    } else if (a == "--nodes") {
      flags.nodes = std::stoi(value());
    } else if (a == "--pods") {
      flags.pods = std::stoi(value());
    } else if (a == "--help") {
      std::printf("usage: scheduler_bench [--orch PATH] [--nodes N] [--pods M]\n");
      return 0;
    } else {
      std::fprintf(stderr, "scheduler_bench: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  orch::log::SetLevel(orch::log::Level::kError);

  Server server(flags);
  auto admin = server.NewClient();
  for (int i = 0; i < flags.nodes; ++i) CreateNode(*admin, server, i);
  LeaseKeeper leases(server, flags.nodes);
  std::this_thread::sleep_for(3s);  // the scheduler's node informer has them
  std::printf("## Scheduler (scheduler_bench)\n");

  const bool streamed = Phase(server, flags, *admin, "bench", false);
  const bool backlog = Phase(server, flags, *admin, "backlog", true);
  return streamed && backlog ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return Main(argc, argv);
}
