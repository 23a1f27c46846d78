// sched_bench (issue 5): how fast the scheduler of `orch server --disable-agent` (started here, no
// agents) binds pods to N fake Ready nodes with fresh Leases: M pods pending when the scheduler
// starts, M pods created while it runs, and pods waiting on cordoned nodes; rates and latencies.
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
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
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
  int pods = 5000;         // the backlog and the streamed phase
  int cordon_pods = 1000;  // the cordon phase
  int creators = 8;        // concurrent clients creating the pods
  std::set<std::string> phases = {"backlog", "streamed", "cordon"};
  std::string server_log;  // copy the server's log here at the end
};

constexpr const char* kNs = "default";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// `orch server --disable-agent` in a temp dir on a free port, restartable with or without its
// scheduler (same data dir and port); killed and removed at the end.
class Server {
 public:
  explicit Server(const Flags& flags) : flags_(flags) {
    char tmpl[] = "/tmp/orch-sched-bench.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
    dir_ = tmpl;
    port_ = std::to_string(20000 + (getpid() + 7919) % 20000);
  }
  ~Server() {
    Stop();
    if (!flags_.server_log.empty()) {
      std::error_code ec;
      fs::copy_file(dir_ / "server.log", flags_.server_log, fs::copy_options::overwrite_existing,
                    ec);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Starts the server and returns once its API answers (and it made the default ServiceAccount).
  void Start(bool with_scheduler) {
    orch::testing::OrchServerOptions options;
    options.binary = flags_.orch;
    options.dir = dir_;  // kept for a restart on the same state, and for the log copy at the end
    options.port = std::stoi(port_);
    options.user_agent = "orch-sched-bench";
    if (!with_scheduler) options.extra_args = {"--disable-scheduler"};
    auto started = orch::testing::OrchServerProcess::Start(options);
    if (!started.ok()) Die(started.status().ToString());
    process_ = std::move(*started);
    options_ = process_->client_options();
    auto client = NewClient();
    for (int i = 0; i < 1200; ++i) {
      if (client->Get(resources::kServiceAccounts, kNs, "default").ok()) return;
      std::this_thread::sleep_for(50ms);
    }
    Die("the server did not answer (or made no default ServiceAccount)");
  }

  void Stop() { process_.reset(); }

  std::unique_ptr<orch::ApiClient> NewClient() const {
    auto client = orch::NewHttpsApiClient(options_);
    if (!client.ok()) Die(client.status().ToString());
    return std::move(*client);
  }

  [[noreturn]] void Die(const std::string& why) const {
    std::fprintf(stderr, "sched_bench: %s\n%s\n", why.c_str(),
                 ReadFile(dir_ / "server.log").c_str());
    std::exit(1);
  }

 private:
  const Flags& flags_;
  fs::path dir_;
  std::string port_;
  std::unique_ptr<orch::testing::OrchServerProcess> process_;
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

// Keeps the nodes' Leases fresh, as their kubelets would, until destroyed.
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

json Pod(const std::string& app, int i) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", fmt::format("{}-pod-{:05}", app, i)}, {"labels", {{"app", app}}}}},
      {"spec",
       {{"containers",
         json::array({{{"name", "c"},
                       {"image", "busybox"},
                       {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}}}}})}}}};
}

// Creates `count` pods labelled app=`app` with `creators` concurrent clients; calls `sent` with
// each pod's name just before its create goes out. Returns the seconds it took.
double CreatePods(const Server& server, const Flags& flags, const std::string& app, int count,
                  const std::function<void(const std::string&)>& sent, int* failures) {
  auto start = Clock::now();
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> creators;
  for (int c = 0; c < flags.creators; ++c) {
    creators.emplace_back([&] {
      auto client = server.NewClient();
      for (int i = next++; i < count; i = next++) {
        json pod = Pod(app, i);
        if (sent) sent(pod["metadata"]["name"].get<std::string>());
        if (!client->Create(resources::kPods, kNs, pod).ok()) ++failed;
      }
    });
  }
  for (std::thread& t : creators) t.join();
  *failures = failed.load();
  return Seconds(Clock::now() - start);
}

// When each pod labelled app=`app` was first seen bound (spec.nodeName set), from a list and a
// watch resumed from it (so a binding made before the watch started is not missed).
class Bindings {
 public:
  Bindings(const Server& server, const std::string& app, int expected)
      : client_(server.NewClient()), expected_(expected) {
    orch::ListOptions list_options;
    list_options.label_selector = "app=" + app;
    auto list = client_->List(resources::kPods, kNs, list_options);
    if (!list.ok()) server.Die("list: " + list.status().ToString());
    for (const json& pod : list->items) See(pod);
    orch::WatchOptions options;
    options.label_selector = "app=" + app;
    options.resource_version = list->resource_version;
    orch::WatchHandler handler;
    handler.on_event = [this](orch::WatchEvent event) {
      if (event.type == orch::WatchEvent::Type::kAdded ||
          event.type == orch::WatchEvent::Type::kModified) {
        See(event.Object());
      }
    };
    // A watch the server drops would otherwise leave Wait counting nothing until its timeout.
    handler.on_end = [this](orch::Status status) {
      std::lock_guard lock(mu_);
      ended_ = status.ok() ? "closed by the server" : status.ToString();
      cv_.notify_all();
    };
    auto watch = client_->StartWatch(resources::kPods, kNs, options, std::move(handler));
    if (!watch.ok()) server.Die("watch: " + watch.status().ToString());
    watch_ = std::move(*watch);
  }
  ~Bindings() { watch_->Stop(); }

  // True when every expected pod was bound within `timeout`; false at the timeout or as soon as
  // the watch ends (said on stderr: the counts are then incomplete).
  bool Wait(Clock::duration timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return Complete() || !ended_.empty(); });
    if (!Complete() && !ended_.empty()) {
      fmt::print(stderr, "sched_bench: the watch of the pods ended early ({}) after {} of {}\n",
                 ended_, bound_.size(), expected_);
    }
    return Complete();
  }
  size_t Count() {
    std::lock_guard lock(mu_);
    return bound_.size();
  }
  std::map<std::string, Clock::time_point> Bound() {
    std::lock_guard lock(mu_);
    return bound_;
  }
  std::map<std::string, int> PerNode() {
    std::lock_guard lock(mu_);
    return per_node_;
  }

 private:
  void See(const json& pod) {
    auto spec = pod.find("spec");
    if (spec == pod.end()) return;
    const std::string node = spec->value("nodeName", "");
    if (node.empty()) return;
    const std::string name = pod["metadata"].value("name", "");
    auto now = Clock::now();
    std::lock_guard lock(mu_);
    if (bound_.emplace(name, now).second) {
      ++per_node_[node];
      if (static_cast<int>(bound_.size()) == expected_) cv_.notify_all();
    }
  }

  bool Complete() const { return static_cast<int>(bound_.size()) >= expected_; }

  std::unique_ptr<orch::ApiClient> client_;
  const int expected_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Clock::time_point> bound_;  // guarded by mu_
  std::map<std::string, int> per_node_;             // guarded by mu_
  std::string ended_;                               // why the watch ended; guarded by mu_
  std::unique_ptr<orch::Watch> watch_;
};

struct Row {
  std::string measure;
  std::string value;
};

double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()))];
}

// Latency of every bound pod from its `since` time (sorted), the first and last binding.
struct Outcome {
  std::vector<double> latency_ms;
  Clock::time_point first{}, last{};
  int min_per_node = 0, max_per_node = 0;
};

Outcome Measure(Bindings& bindings, const Flags& flags,
                const std::function<std::optional<Clock::time_point>(const std::string&)>& since) {
  Outcome out;
  bool any = false;
  for (const auto& [name, at] : bindings.Bound()) {
    if (auto from = since(name)) out.latency_ms.push_back(Ms(at - *from));
    out.first = any ? std::min(out.first, at) : at;
    out.last = any ? std::max(out.last, at) : at;
    any = true;
  }
  std::sort(out.latency_ms.begin(), out.latency_ms.end());
  auto per_node = bindings.PerNode();
  out.min_per_node = std::numeric_limits<int>::max();
  for (int i = 0; i < flags.nodes; ++i) {
    int n = per_node.count(NodeName(i)) ? per_node[NodeName(i)] : 0;
    out.min_per_node = std::min(out.min_per_node, n);
    out.max_per_node = std::max(out.max_per_node, n);
  }
  return out;
}

void PrintTable(const std::string& title, const std::vector<Row>& rows) {
  std::printf("\n### %s\n\n| measure | value |\n|---|---|\n", title.c_str());
  for (const Row& r : rows) std::printf("| %s | %s |\n", r.measure.c_str(), r.value.c_str());
  std::fflush(stdout);
}

// How many FailedScheduling events name pods of `app`, and one of their messages: a run where
// pods were found unschedulable measured something else than the scheduler's pace.
Row FailedScheduling(const Server& server, const std::string& app) {
  auto client = server.NewClient();
  auto events = client->List(resources::kEvents, kNs, {});
  if (!events.ok()) return {"FailedScheduling events", events.status().ToString()};
  int count = 0;
  std::string example;
  for (const json& e : events->items) {
    if (e.value("reason", "") != "FailedScheduling") continue;
    const std::string name =
        e.contains("involvedObject") ? e["involvedObject"].value("name", "") : std::string();
    if (name.rfind(app + "-", 0) != 0) continue;
    count += e.value("count", 1);
    if (example.empty()) example = e.value("message", "");
  }
  return {"FailedScheduling events for these pods",
          count == 0 ? "0" : fmt::format("{} (e.g. \"{}\")", count, example)};
}

std::string LatencyCell(const std::vector<double>& sorted) {
  return fmt::format("{:.0f} / {:.0f} / {:.0f}", Quantile(sorted, 0.5), Quantile(sorted, 0.99),
                     sorted.empty() ? 0.0 : sorted.back());
}

// The measure: `pods` pods pending (created while the server ran without its scheduler),
// then the server restarted with its scheduler: how fast it binds them all.
bool BacklogPhase(Server& server, const Flags& flags, std::unique_ptr<LeaseKeeper>& leases) {
  int failures = 0;
  const double create_seconds = CreatePods(server, flags, "backlog", flags.pods, {}, &failures);
  leases.reset();
  server.Stop();
  const auto restart = Clock::now();
  server.Start(/*with_scheduler=*/true);
  const auto ready = Clock::now();  // the API answers; the scheduler starts leading about now
  leases = std::make_unique<LeaseKeeper>(server, flags.nodes);
  Bindings bindings(server, "backlog", flags.pods - failures);
  const bool all = bindings.Wait(300s);
  Outcome o = Measure(bindings, flags, [&](const std::string&) { return ready; });
  const size_t bound = o.latency_ms.size();
  const double spread = Seconds(o.last - o.first);
  PrintTable(
      fmt::format("Backlog: {} pods pending on {} nodes when the scheduler starts{}", flags.pods,
                  flags.nodes, all ? "" : " (NOT all bound within 300 s)"),
      {
          {"pods created (scheduler off) in",
           fmt::format("{:.1f} s ({:.0f} creates/s, {} failed)", create_seconds,
                       flags.pods / create_seconds, failures)},
          {"server restart until its API answered",
           fmt::format("{:.2f} s", Seconds(ready - restart))},
          {"API answering to first binding", fmt::format("{:.2f} s", Seconds(o.first - ready))},
          {"first to last binding", fmt::format("{:.2f} s", spread)},
          {"**pods bound per second** (first to last binding)",
           fmt::format("**{:.0f}**", spread > 0 ? (bound - 1) / spread : 0.0)},
          {"pods bound per second (API answering to last binding)",
           fmt::format("{:.0f}", bound / Seconds(o.last - ready))},
          {"API-answering-to-bound latency p50 / p99 / max ms", LatencyCell(o.latency_ms)},
          {"pods bound / per node min / max",
           fmt::format("{} / {} / {}", bound, o.min_per_node, o.max_per_node)},
          FailedScheduling(server, "backlog"),
      });
  return all;
}

// Pods created while the scheduler runs: binding cannot go faster than creation, so this shows
// the latency a user sees from `create` to bound.
bool StreamedPhase(const Server& server, const Flags& flags) {
  Bindings bindings(server, "streamed", flags.pods);
  std::mutex mu;
  std::map<std::string, Clock::time_point> sent;
  int failures = 0;
  const auto start = Clock::now();
  const double create_seconds = CreatePods(
      server, flags, "streamed", flags.pods,
      [&](const std::string& name) {
        std::lock_guard lock(mu);
        sent[name] = Clock::now();
      },
      &failures);
  const bool all = bindings.Wait(300s);
  Outcome o = Measure(bindings, flags, [&](const std::string& name) {
    std::lock_guard lock(mu);
    auto it = sent.find(name);
    return it == sent.end() ? std::nullopt : std::optional(it->second);
  });
  const size_t bound = o.latency_ms.size();
  PrintTable(fmt::format("Streamed: {} pods created by {} clients while the scheduler runs{}",
                         flags.pods, flags.creators, all ? "" : " (NOT all bound within 300 s)"),
             {
                 {"creating all pods took",
                  fmt::format("{:.1f} s ({:.0f} creates/s, {} failed)", create_seconds,
                              flags.pods / create_seconds, failures)},
                 {"first create to last binding", fmt::format("{:.2f} s", Seconds(o.last - start))},
                 {"pods bound per second", fmt::format("{:.0f}", bound / Seconds(o.last - start))},
                 {"create-to-bound latency p50 / p99 / max ms", LatencyCell(o.latency_ms)},
                 {"pods bound / per node min / max",
                  fmt::format("{} / {} / {}", bound, o.min_per_node, o.max_per_node)},
                 FailedScheduling(server, "streamed"),
             });
  return all;
}

// Sets spec.unschedulable on every node.
void Cordon(orch::ApiClient& client, const Server& server, int nodes, bool cordon) {
  const std::string patch = json{{"spec", {{"unschedulable", cordon}}}}.dump();
  for (int i = 0; i < nodes; ++i) {
    auto r = client.Patch(resources::kNodes, "", NodeName(i), orch::PatchType::kMerge, patch);
    if (!r.ok()) server.Die("cordon: " + r.status().ToString());
  }
}

// Every node cordoned, pods created (each tried once and parked as unschedulable, with its
// FailedScheduling event and condition), then the nodes uncordoned one patch at a time: how the
// scheduler requeues unschedulable pods when nodes change.
bool CordonPhase(const Server& server, const Flags& flags) {
  auto admin = server.NewClient();
  Bindings bindings(server, "cordon", flags.cordon_pods);
  Cordon(*admin, server, flags.nodes, true);
  std::this_thread::sleep_for(1s);
  int failures = 0;
  const double create_seconds =
      CreatePods(server, flags, "cordon", flags.cordon_pods, {}, &failures);
  std::this_thread::sleep_for(2s);  // every pod tried once and parked as unschedulable
  if (bindings.Count() != 0) server.Die("pods were bound to cordoned nodes");
  const auto start = Clock::now();
  Cordon(*admin, server, flags.nodes, false);
  const auto uncordoned = Clock::now();
  const bool all = bindings.Wait(300s);
  Outcome o = Measure(bindings, flags, [&](const std::string&) { return start; });
  const size_t bound = o.latency_ms.size();
  PrintTable(
      fmt::format("Cordon: {} pods waiting on {} cordoned nodes, then the nodes uncordoned "
                  "one patch at a time{}",
                  flags.cordon_pods, flags.nodes, all ? "" : " (NOT all bound within 300 s)"),
      {
          {"pods created in", fmt::format("{:.1f} s ({} failed)", create_seconds, failures)},
          {"uncordoning all nodes took", fmt::format("{:.2f} s", Seconds(uncordoned - start))},
          {"first uncordon to last binding", fmt::format("{:.2f} s", Seconds(o.last - start))},
          {"pods bound per second", fmt::format("{:.0f}", bound / Seconds(o.last - start))},
          {"uncordon-to-bound latency p50 / p99 / max ms", LatencyCell(o.latency_ms)},
          {"pods bound / per node min / max",
           fmt::format("{} / {} / {}", bound, o.min_per_node, o.max_per_node)},
          FailedScheduling(server, "cordon"),
      });
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
    } else if (a == "--cordon-pods") {
      flags.cordon_pods = std::stoi(value());
    } else if (a == "--creators") {
      flags.creators = std::stoi(value());
    } else if (a == "--phases") {
      flags.phases.clear();
      std::stringstream ss(value());
      for (std::string p; std::getline(ss, p, ',');) flags.phases.insert(p);
    } else if (a == "--server-log") {
      flags.server_log = value();
    } else if (a == "--help") {
      std::printf(
          "usage: sched_bench [--orch PATH] [--nodes N] [--pods M] [--cordon-pods K]\n"
          "                   [--creators C] [--phases backlog,streamed,cordon]\n"
          "                   [--server-log FILE]\n");
      return 0;
    } else {
      std::fprintf(stderr, "sched_bench: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  orch::log::SetLevel(orch::log::Level::kError);

  Server server(flags);
  // The backlog phase creates its pods before the scheduler runs, so the server starts without.
  const bool backlog = flags.phases.count("backlog") > 0;
  server.Start(/*with_scheduler=*/!backlog);
  {
    auto admin = server.NewClient();
    for (int i = 0; i < flags.nodes; ++i) CreateNode(*admin, server, i);
  }
  auto leases = std::make_unique<LeaseKeeper>(server, flags.nodes);
  std::this_thread::sleep_for(2s);  // the informers have the nodes
  std::printf("## Scheduler (sched_bench): %d nodes, orch %s\n", flags.nodes, flags.orch.c_str());

  bool ok = true;
  if (backlog) ok = BacklogPhase(server, flags, leases) && ok;
  if (flags.phases.count("streamed")) ok = StreamedPhase(server, flags) && ok;
  if (flags.phases.count("cordon") && flags.cordon_pods > 0) ok = CordonPhase(server, flags) && ok;
  leases.reset();
  server.Stop();
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return Main(argc, argv);
}
