// api_bench: a real `orch server --disable-agent` (started here) driven through the HTTPS API
// client: verb latencies under 50 concurrent clients, single-object latency at a fixed request
// rate, event delivery to 1 000 open watches, and the server's memory. Prints Markdown for
// docs/benchmarks.md.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

#include "../e2e/kubeconfig_credentials.h"
#include "orch/api_client.h"
#include "orch/log.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace resources = orch::resources;

struct Flags {
  std::string orch = ORCH_BINARY;
  int clients = 50;
  std::chrono::seconds duration = 10s;  // the concurrent phase
  int rate = 200;                       // requests/s of the paced phase
  std::chrono::seconds paced = 10s;
  int watches = 1000;
  int watch_events = 100;
  int objects = 10000;
};

constexpr const char* kNs = "bench";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Resident memory of a process in MiB, from /proc.
double RssMiB(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// CPU seconds (user + system) a process has used, from /proc.
double CpuSeconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(f);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Latencies of one verb, in nanoseconds; thread-safe.
class Samples {
 public:
  void Add(Clock::duration d) {
    std::lock_guard lock(mu_);
    ns_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }
  void Fail() { failures_.fetch_add(1); }
  size_t count() const { return ns_.size(); }
  int failures() const { return failures_.load(); }
  double PercentileMs(double q) {
    std::lock_guard lock(mu_);
    if (ns_.empty()) return 0;
    std::sort(ns_.begin(), ns_.end());
    size_t i = std::min(ns_.size() - 1, static_cast<size_t>(q * static_cast<double>(ns_.size())));
    return static_cast<double>(ns_[i]) / 1e6;
  }

 private:
  std::mutex mu_;
  std::vector<int64_t> ns_;
  std::atomic<int> failures_{0};
};

json ConfigMap(const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", kNs}, {"labels", {{"bench", "api"}}}}},
          {"data", {{"v", value}}}};
}

// `orch server --disable-agent` in a temp dir on a free port; killed and removed at the end.
class Server {
 public:
  explicit Server(const Flags& flags) {
    char tmpl[] = "/tmp/orch-api-bench.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
    dir_ = tmpl;
    const std::string port = std::to_string(20000 + getpid() % 20000);
    const std::string data = (dir_ / "data").string(), kc = (dir_ / "kubeconfig").string(),
                      log = (dir_ / "server.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(flags.orch.c_str(), flags.orch.c_str(), "server", "--disable-agent", "--data-dir",
            data.c_str(), "--https-listen-port", port.c_str(), "--bind-address", "127.0.0.1",
            "--write-kubeconfig", kc.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 600 && options_.server_url.empty(); ++i) {
      options_ = orch::testing::KubeconfigCredentials(kc);
      if (options_.server_url.empty()) {
        std::this_thread::sleep_for(100ms);
      }
    }
    if (options_.server_url.empty()) Die("the server did not write its kubeconfig");
    options_.user_agent = "orch-api-bench";
    auto client = NewClient();
    for (int i = 0; i < 600; ++i) {
      if (client->Get(resources::kNamespaces, "", "default").ok()) return;
      std::this_thread::sleep_for(100ms);
    }
    Die("the server did not answer");
  }
  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<orch::ApiClient> NewClient() const {
    auto client = orch::NewHttpsApiClient(options_);
    if (!client.ok()) Die(client.status().ToString());
    return std::move(*client);
  }
  pid_t pid() const { return pid_; }

  [[noreturn]] void Die(const std::string& why) const {
    std::fprintf(stderr, "api_bench: %s\n%s\n", why.c_str(), ReadFile(dir_ / "server.log").c_str());
    std::exit(1);
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  orch::HttpsClientOptions options_;
};

void PrintRow(const char* verb, Samples& s, double seconds) {
  std::printf("| %s | %zu | %.0f | %.2f | %.2f | %d |\n", verb, s.count(),
              static_cast<double>(s.count()) / seconds, s.PercentileMs(0.5), s.PercentileMs(0.99),
              s.failures());
}

// Every client in its own thread creates, gets, updates and lists its own objects for the phase.
void ConcurrentPhase(const Server& server, const Flags& flags) {
  std::map<std::string, Samples> verbs;
  for (const char* v : {"create", "get", "update", "list (50 objects)"}) verbs[v];
  std::vector<std::unique_ptr<orch::ApiClient>> clients;
  for (int i = 0; i < flags.clients; ++i) clients.push_back(server.NewClient());
  const double cpu_before = CpuSeconds(server.pid());
  const auto start = Clock::now(), end = start + flags.duration;
  std::vector<std::thread> threads;
  for (int c = 0; c < flags.clients; ++c) {
    threads.emplace_back([&, c] {
      orch::ApiClient& api = *clients[c];
      orch::ListOptions list;
      list.label_selector = fmt::format("client={}", c);
      for (int n = 0; Clock::now() < end; ++n) {
        std::string name = fmt::format("c{}-{}", c, n);
        json cm = ConfigMap(name, "0");
        cm["metadata"]["labels"]["client"] = std::to_string(c);
        auto t0 = Clock::now();
        auto created = api.Create(resources::kConfigMaps, kNs, cm);
        auto t1 = Clock::now();
        created.ok() ? verbs["create"].Add(t1 - t0) : verbs["create"].Fail();
        auto got = api.Get(resources::kConfigMaps, kNs, name);
        auto t2 = Clock::now();
        got.ok() ? verbs["get"].Add(t2 - t1) : verbs["get"].Fail();
        if (!got.ok()) continue;
        (*got)["data"]["v"] = "1";
        auto updated = api.Update(resources::kConfigMaps, kNs, *got);
        auto t3 = Clock::now();
        updated.ok() ? verbs["update"].Add(t3 - t2) : verbs["update"].Fail();
        if (n % 5 == 0) {
          list.limit = 50;
          auto listed = api.List(resources::kConfigMaps, kNs, list);
          auto t4 = Clock::now();
          listed.ok() ? verbs["list (50 objects)"].Add(t4 - t3) : verbs["list (50 objects)"].Fail();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = CpuSeconds(server.pid()) - cpu_before;
  std::printf("\n### %d concurrent clients for %.0f s\n\n", flags.clients, seconds);
  std::printf(
      "| verb | calls | calls/s | p50 ms | p99 ms | failures |\n|---|---|---|---|---|---|\n");
  for (auto& [verb, samples] : verbs) PrintRow(verb.c_str(), samples, seconds);
  std::printf("\nServer CPU: %.1f s over %.1f s (%.0f%% of one core); RSS after: %.1f MiB\n", cpu,
              seconds, 100 * cpu / seconds, RssMiB(server.pid()));
}

// Single-object calls (get and update of existing objects, creates) at a fixed total rate spread
// over the clients: the latency a user sees on a busy but not saturated server.
void PacedPhase(const Server& server, const Flags& flags) {
  Samples get, update, create;
  const int threads_n = 10;
  std::vector<std::unique_ptr<orch::ApiClient>> clients;
  for (int i = 0; i < threads_n; ++i) clients.push_back(server.NewClient());
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL * threads_n / flags.rate);
  const auto start = Clock::now(), end = start + flags.paced;
  std::vector<std::thread> threads;
  for (int c = 0; c < threads_n; ++c) {
    threads.emplace_back([&, c] {
      orch::ApiClient& api = *clients[c];
      std::string name = fmt::format("paced-{}", c);
      (void)api.Create(resources::kConfigMaps, kNs, ConfigMap(name, "0"));
      // Staggered starts, then one call per interval on a fixed schedule (no coordinated omission:
      // a late call is measured from when it was due).
      auto due = start + interval * c / threads_n;
      for (int n = 0; due < end; ++n, due += interval) {
        std::this_thread::sleep_until(due);
        if (n % 3 == 0) {
          bool ok = api.Get(resources::kConfigMaps, kNs, name).ok();
          ok ? get.Add(Clock::now() - due) : get.Fail();
        } else if (n % 3 == 1) {
          json patch = {{"data", {{"v", std::to_string(n)}}}};
          bool ok =
              api.Patch(resources::kConfigMaps, kNs, name, orch::PatchType::kMerge, patch.dump())
                  .ok();
          ok ? update.Add(Clock::now() - due) : update.Fail();
        } else {
          bool ok =
              api.Create(resources::kConfigMaps, kNs, ConfigMap(fmt::format("{}-{}", name, n), "0"))
                  .ok();
          ok ? create.Add(Clock::now() - due) : create.Fail();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("\n### Single-object calls at %d requests/s for %.0f s\n\n", flags.rate, seconds);
  std::printf(
      "| verb | calls | calls/s | p50 ms | p99 ms | failures |\n|---|---|---|---|---|---|\n");
  PrintRow("get", get, seconds);
  PrintRow("patch (merge)", update, seconds);
  PrintRow("create", create, seconds);
}

// Opens `watches` watches on one namespace, then creates objects one at a time: how long until
// each watch has each event.
void WatchPhase(const Server& server, const Flags& flags) {
  const std::string ns = "bench-watch";
  auto admin = server.NewClient();
  (void)admin->Create(resources::kNamespaces, "",
                      {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  // Each client carries 100 watch streams on its I/O threads.
  std::vector<std::unique_ptr<orch::ApiClient>> clients;
  for (int i = 0; i < (flags.watches + 99) / 100; ++i) clients.push_back(server.NewClient());
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Clock::time_point> sent;  // object name → when its create was sent
  std::map<std::string, int> seen;
  Samples delivery;
  std::vector<std::unique_ptr<orch::Watch>> watches;
  const double rss_before = RssMiB(server.pid());
  for (int i = 0; i < flags.watches; ++i) {
    orch::WatchOptions options;
    options.label_selector = "bench=watch";
    orch::WatchHandler handler;
    handler.on_event = [&](orch::WatchEvent event) {
      if (event.type != orch::WatchEvent::Type::kAdded) return;
      const std::string name = event.object["metadata"].value("name", "");
      auto now = Clock::now();
      std::lock_guard lock(mu);
      auto it = sent.find(name);
      if (it == sent.end()) return;
      delivery.Add(now - it->second);
      if (++seen[name] == flags.watches) cv.notify_all();
    };
    auto w = clients[i / 100]->StartWatch(resources::kConfigMaps, ns, options, std::move(handler));
    if (!w.ok()) server.Die("watch: " + w.status().ToString());
    watches.push_back(std::move(*w));
  }
  std::this_thread::sleep_for(2s);  // every stream established
  const double rss_watching = RssMiB(server.pid());
  int complete = 0;
  std::vector<double> fanout_ms;
  for (int n = 0; n < flags.watch_events; ++n) {
    std::string name = fmt::format("w-{}", n);
    json cm = ConfigMap(name, "0");
    cm["metadata"]["namespace"] = ns;
    cm["metadata"]["labels"]["bench"] = "watch";
    auto t0 = Clock::now();
    {
      std::lock_guard lock(mu);
      sent[name] = t0;
    }
    if (!admin->Create(resources::kConfigMaps, ns, cm).ok()) continue;
    std::unique_lock lock(mu);
    if (cv.wait_for(lock, 10s, [&] { return seen[name] == flags.watches; })) {
      ++complete;
      fanout_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
  }
  watches.clear();
  std::sort(fanout_ms.begin(), fanout_ms.end());
  auto at = [&](double q) {
    return fanout_ms.empty() ? 0.0
                             : fanout_ms[std::min(fanout_ms.size() - 1,
                                                  static_cast<size_t>(q * fanout_ms.size()))];
  };
  std::printf("\n### %d open watches, %d objects created one at a time\n\n", flags.watches,
              flags.watch_events);
  std::printf("| measure | value |\n|---|---|\n");
  std::printf("| deliveries (create → a watcher has the event) | %zu |\n", delivery.count());
  std::printf("| per-delivery p50 / p99 ms | %.2f / %.2f |\n", delivery.PercentileMs(0.5),
              delivery.PercentileMs(0.99));
  std::printf("| create → all %d watchers have it, p50 / p99 ms | %.2f / %.2f |\n", flags.watches,
              at(0.5), at(0.99));
  std::printf("| objects every watcher received | %d of %d |\n", complete, flags.watch_events);
  std::printf("| server RSS before / with the watches open | %.1f / %.1f MiB |\n", rss_before,
              rss_watching);
}

// Fills the store to `objects` ConfigMaps of about 1 KiB and measures the server's memory.
void MemoryPhase(const Server& server, const Flags& flags) {
  const std::string ns = "bench-memory";
  auto admin = server.NewClient();
  (void)admin->Create(resources::kNamespaces, "",
                      {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  const int threads_n = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int c = 0; c < threads_n; ++c) {
    threads.emplace_back([&, c] {
      auto api = server.NewClient();
      for (int n = c; n < flags.objects; n += threads_n) {
        json cm = ConfigMap(fmt::format("m-{}", n), std::string(1024, 'x'));
        cm["metadata"]["namespace"] = ns;
        if (!api->Create(resources::kConfigMaps, ns, cm).ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::this_thread::sleep_for(2s);
  std::printf("\n### Memory with %d more objects of 1 KiB\n\n", flags.objects);
  std::printf("Server RSS: %.1f MiB (%d failed creates)\n", RssMiB(server.pid()), failures.load());
}

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--orch") {
      flags.orch = value();
    } else if (a == "--quick") {
      flags.duration = 3s;
      flags.paced = 3s;
      flags.watches = 100;
      flags.watch_events = 20;
      flags.objects = 1000;
    } else if (a == "--help") {
      std::printf("usage: api_bench [--orch PATH] [--quick]\n");
      return 0;
    } else {
      std::fprintf(stderr, "api_bench: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  // Each watch is a connection on both ends.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  orch::log::SetLevel(orch::log::Level::kError);

  Server server(flags);
  std::this_thread::sleep_for(5s);  // let start-up settle
  std::printf("## API server (api_bench)\n\nServer RSS at rest: %.1f MiB\n", RssMiB(server.pid()));
  auto admin = server.NewClient();
  (void)admin->Create(resources::kNamespaces, "",
                      {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNs}}}});
  ConcurrentPhase(server, flags);
  PacedPhase(server, flags);
  WatchPhase(server, flags);
  MemoryPhase(server, flags);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return Main(argc, argv);
}
