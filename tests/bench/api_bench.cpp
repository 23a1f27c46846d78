// api_bench: real `orch server --disable-agent`s on SQLite and on etcd (started here), driven side
// by side through the HTTPS client: verb latencies, paced latency, watch fan-out, memory
// (Markdown).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "etcd_process.h"
#include "load_average.h"
#include "orch/api_client.h"
#include "orch/log.h"
#include "orch_server_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace resources = orch::resources;

struct Flags {
  std::string orch = ORCH_BINARY;
  std::string etcd_binary = "/usr/bin/etcd";
  bool sqlite = true;
  bool etcd = true;
  bool etcd_first = false;  // order of the two servers within each phase
  int clients = 50;
  std::chrono::seconds duration = 10s;  // the concurrent phase
  int rate = 200;                       // requests/s of the paced phase
  std::chrono::seconds paced = 10s;
  int watches = 1000;
  int watch_events = 100;
  int objects = 10000;
};

constexpr const char* kNs = "bench";

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
  if (stat.empty()) return 0;
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

// Why the bench cannot go on; thrown on the main thread only, so that every server and etcd
// started here is stopped and its temporary dir removed on the way out.
struct BenchFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One server under test: `orch server --disable-agent` on its datastore, answering the API.
class Server {
 public:
  // `etcd`, if given, is the datastore (--datastore-endpoint); otherwise the embedded SQLite.
  Server(const Flags& flags, std::string name, std::unique_ptr<orch::testing::EtcdProcess> etcd)
      : name_(std::move(name)), etcd_(std::move(etcd)) {
    orch::testing::OrchServerOptions options;
    options.binary = flags.orch;
    options.name = "orch-api-bench";
    options.user_agent = "orch-api-bench";
    if (etcd_) options.extra_args = {"--datastore-endpoint", etcd_->endpoint()};
    auto started = orch::testing::OrchServerProcess::Start(options);
    if (!started.ok()) throw BenchFailure(name_ + ": " + started.status().ToString());
    process_ = std::move(*started);
    auto client = NewClient();
    for (int i = 0; i < 600; ++i) {
      if (client->Get(resources::kNamespaces, "", "default").ok()) return;
      std::this_thread::sleep_for(100ms);
    }
    Die("the server did not answer");
  }

  // Call from the main thread (Die throws).
  std::unique_ptr<orch::ApiClient> NewClient() const {
    auto client = process_->NewClient();
    if (!client.ok()) Die(client.status().ToString());
    return std::move(*client);
  }
  const std::string& name() const { return name_; }
  pid_t pid() const { return process_->pid(); }
  // The etcd process behind this server, or -1 on SQLite.
  pid_t etcd_pid() const { return etcd_ ? etcd_->pid() : -1; }

  [[noreturn]] void Die(const std::string& why) const {
    throw BenchFailure(fmt::format("{}: {}\n{}", name_, why, process_ ? process_->Log() : ""));
  }

 private:
  std::string name_;
  // Declared first, so destroyed last: the server stops before its datastore does.
  std::unique_ptr<orch::testing::EtcdProcess> etcd_;
  std::unique_ptr<orch::testing::OrchServerProcess> process_;
};

// One row of a verb table.
struct VerbStats {
  std::string verb;
  size_t calls = 0;
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int failures = 0;
};

VerbStats Stats(const std::string& verb, Samples& s, double seconds) {
  return {verb,
          s.count(),
          static_cast<double>(s.count()) / seconds,
          s.PercentileMs(0.5),
          s.PercentileMs(0.99),
          s.failures()};
}

// Everything one server's run produced; printed once every server has run.
struct Results {
  double rss_at_rest = 0;
  double etcd_rss_at_rest = 0;

  std::vector<VerbStats> concurrent;
  double concurrent_seconds = 0;
  double concurrent_cpu = 0;
  double concurrent_etcd_cpu = 0;
  double rss_after_concurrent = 0;

  std::vector<VerbStats> paced;
  double paced_seconds = 0;

  size_t deliveries = 0;
  double delivery_p50_ms = 0;
  double delivery_p99_ms = 0;
  double fanout_p50_ms = 0;
  double fanout_p99_ms = 0;
  int watch_complete = 0;
  double rss_before_watches = 0;
  double rss_with_watches = 0;

  double rss_with_objects = 0;
  double etcd_rss_with_objects = 0;
  int memory_failures = 0;
};

// Every client in its own thread creates, gets, updates and lists its own objects for the phase.
void ConcurrentPhase(const Server& server, const Flags& flags, Results& out) {
  std::map<std::string, Samples> verbs;
  for (const char* v : {"create", "get", "update", "list (50 objects)"}) verbs[v];
  std::vector<std::unique_ptr<orch::ApiClient>> clients;
  for (int i = 0; i < flags.clients; ++i) clients.push_back(server.NewClient());
  const double cpu_before = CpuSeconds(server.pid());
  const double etcd_cpu_before = server.etcd_pid() > 0 ? CpuSeconds(server.etcd_pid()) : 0;
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
  out.concurrent_seconds = seconds;
  out.concurrent_cpu = CpuSeconds(server.pid()) - cpu_before;
  if (server.etcd_pid() > 0)
    out.concurrent_etcd_cpu = CpuSeconds(server.etcd_pid()) - etcd_cpu_before;
  out.rss_after_concurrent = RssMiB(server.pid());
  for (auto& [verb, samples] : verbs) out.concurrent.push_back(Stats(verb, samples, seconds));
}

// Single-object calls (get and update of existing objects, creates) at a fixed total rate spread
// over the clients: the latency a user sees on a busy but not saturated server.
void PacedPhase(const Server& server, const Flags& flags, Results& out) {
  Samples get, update, create;
  const int threads_n = 10;
  std::vector<std::unique_ptr<orch::ApiClient>> clients;
  // Each client connects and creates its object before the clock starts: the first timed call
  // must not pay for a TLS handshake (those ten calls alone would be the p99).
  for (int i = 0; i < threads_n; ++i) {
    clients.push_back(server.NewClient());
    (void)clients.back()->Create(resources::kConfigMaps, kNs,
                                 ConfigMap(fmt::format("paced-{}", i), "0"));
  }
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL * threads_n / flags.rate);
  const auto start = Clock::now(), end = start + flags.paced;
  std::vector<std::thread> threads;
  for (int c = 0; c < threads_n; ++c) {
    threads.emplace_back([&, c] {
      orch::ApiClient& api = *clients[c];
      std::string name = fmt::format("paced-{}", c);
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
  out.paced_seconds = seconds;
  out.paced = {Stats("get", get, seconds), Stats("patch (merge)", update, seconds),
               Stats("create", create, seconds)};
}

// Opens `watches` watches on one namespace, then creates objects one at a time: how long until
// each watch has each event.
void WatchPhase(const Server& server, const Flags& flags, Results& out) {
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
  out.deliveries = delivery.count();
  out.delivery_p50_ms = delivery.PercentileMs(0.5);
  out.delivery_p99_ms = delivery.PercentileMs(0.99);
  out.fanout_p50_ms = at(0.5);
  out.fanout_p99_ms = at(0.99);
  out.watch_complete = complete;
  out.rss_before_watches = rss_before;
  out.rss_with_watches = rss_watching;
}

// Fills the store to `objects` ConfigMaps of about 1 KiB and measures the server's memory.
void MemoryPhase(const Server& server, const Flags& flags, Results& out) {
  const std::string ns = "bench-memory";
  auto admin = server.NewClient();
  (void)admin->Create(resources::kNamespaces, "",
                      {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  const int threads_n = 10;
  std::vector<std::unique_ptr<orch::ApiClient>> clients;
  for (int c = 0; c < threads_n; ++c) clients.push_back(server.NewClient());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int c = 0; c < threads_n; ++c) {
    threads.emplace_back([&, c] {
      orch::ApiClient& api = *clients[c];
      for (int n = c; n < flags.objects; n += threads_n) {
        json cm = ConfigMap(fmt::format("m-{}", n), std::string(1024, 'x'));
        cm["metadata"]["namespace"] = ns;
        if (!api.Create(resources::kConfigMaps, ns, cm).ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::this_thread::sleep_for(2s);
  out.rss_with_objects = RssMiB(server.pid());
  if (server.etcd_pid() > 0) out.etcd_rss_with_objects = RssMiB(server.etcd_pid());
  out.memory_failures = failures.load();
}

// --- output -----------------------------------------------------------------------------------
// With one server the tables are the ones this bench always printed (so earlier runs compare
// line by line); with both, each table gains a datastore column and a summary gives the ratios.

struct Run {
  const Server* server;
  Results results;
};

void PrintVerbTable(const std::vector<Run>& runs,
                    const std::function<const std::vector<VerbStats>&(const Results&)>& rows) {
  const bool both = runs.size() > 1;
  std::printf(
      "| verb |%s calls | calls/s | p50 ms | p99 ms | failures |\n|---|%s---|---|---|---|---|\n",
      both ? " datastore |" : "", both ? "---|" : "");
  for (size_t i = 0; i < rows(runs.front().results).size(); ++i) {
    for (const Run& run : runs) {
      const VerbStats& v = rows(run.results)[i];
      std::printf("| %s |%s %zu | %.0f | %.2f | %.2f | %d |\n", v.verb.c_str(),
                  both ? fmt::format(" {} |", run.server->name()).c_str() : "", v.calls,
                  v.per_second, v.p50_ms, v.p99_ms, v.failures);
    }
  }
}

void PrintConcurrent(const std::vector<Run>& runs, const Flags& flags) {
  const Results& first = runs.front().results;
  std::printf(
      "\n### %d concurrent clients for %.0f s\n\n", flags.clients,
      runs.size() > 1 ? static_cast<double>(flags.duration.count()) : first.concurrent_seconds);
  PrintVerbTable(runs,
                 [](const Results& r) -> const std::vector<VerbStats>& { return r.concurrent; });
  std::printf("\n");
  for (const Run& run : runs) {
    const Results& r = run.results;
    std::printf("%sServer CPU: %.1f s over %.1f s (%.0f%% of one core); RSS after: %.1f MiB\n",
                runs.size() > 1 ? fmt::format("{}: ", run.server->name()).c_str() : "",
                r.concurrent_cpu, r.concurrent_seconds,
                100 * r.concurrent_cpu / r.concurrent_seconds, r.rss_after_concurrent);
    if (run.server->etcd_pid() > 0) {
      std::printf("etcd itself: CPU %.1f s (%.0f%% of one core)\n", r.concurrent_etcd_cpu,
                  100 * r.concurrent_etcd_cpu / r.concurrent_seconds);
    }
  }
}

void PrintPaced(const std::vector<Run>& runs, const Flags& flags) {
  std::printf("\n### Single-object calls at %d requests/s for %.0f s\n\n", flags.rate,
              runs.size() > 1 ? static_cast<double>(flags.paced.count())
                              : runs.front().results.paced_seconds);
  PrintVerbTable(runs, [](const Results& r) -> const std::vector<VerbStats>& { return r.paced; });
}

void PrintWatch(const std::vector<Run>& runs, const Flags& flags) {
  std::printf("\n### %d open watches, %d objects created one at a time\n\n", flags.watches,
              flags.watch_events);
  std::string header = "| measure |";
  std::string rule = "|---|";
  for (const Run& run : runs) {
    header += runs.size() > 1 ? fmt::format(" {} |", run.server->name()) : " value |";
    rule += "---|";
  }
  std::printf("%s\n%s\n", header.c_str(), rule.c_str());
  auto row = [&](const std::string& measure, const std::function<std::string(const Results&)>& f) {
    std::string line = fmt::format("| {} |", measure);
    for (const Run& run : runs) line += fmt::format(" {} |", f(run.results));
    std::printf("%s\n", line.c_str());
  };
  row("deliveries (create → a watcher has the event)",
      [](const Results& r) { return fmt::format("{}", r.deliveries); });
  row("per-delivery p50 / p99 ms", [](const Results& r) {
    return fmt::format("{:.2f} / {:.2f}", r.delivery_p50_ms, r.delivery_p99_ms);
  });
  row(fmt::format("create → all {} watchers have it, p50 / p99 ms", flags.watches),
      [](const Results& r) {
        return fmt::format("{:.2f} / {:.2f}", r.fanout_p50_ms, r.fanout_p99_ms);
      });
  row("objects every watcher received", [&](const Results& r) {
    return fmt::format("{} of {}", r.watch_complete, flags.watch_events);
  });
  row("server RSS before / with the watches open", [](const Results& r) {
    return fmt::format("{:.1f} / {:.1f} MiB", r.rss_before_watches, r.rss_with_watches);
  });
}

void PrintMemory(const std::vector<Run>& runs, const Flags& flags) {
  std::printf("\n### Memory with %d more objects of 1 KiB\n\n", flags.objects);
  for (const Run& run : runs) {
    const Results& r = run.results;
    std::printf("%sServer RSS: %.1f MiB (%d failed creates)%s\n",
                runs.size() > 1 ? fmt::format("{}: ", run.server->name()).c_str() : "",
                r.rss_with_objects, r.memory_failures,
                run.server->etcd_pid() > 0
                    ? fmt::format("; etcd itself: {:.1f} MiB", r.etcd_rss_with_objects).c_str()
                    : "");
  }
}

// The measures a user choosing a datastore looks at, SQLite's next to etcd's.
void PrintSummary(const Results& sqlite, const Results& etcd) {
  std::printf("\n### SQLite and etcd side by side\n\n");
  std::printf("| measure | SQLite | etcd | SQLite / etcd |\n|---|---:|---:|---:|\n");
  auto row = [](const std::string& measure, double a, double b, const char* format) {
    std::string ratio = b > 0 ? fmt::format("{:.2f}x", a / b) : "";
    std::printf("| %s | %s | %s | %s |\n", measure.c_str(),
                fmt::format(fmt::runtime(format), a).c_str(),
                fmt::format(fmt::runtime(format), b).c_str(), ratio.c_str());
  };
  for (size_t i = 0; i < sqlite.concurrent.size(); ++i) {
    row(fmt::format("{} calls/s, 50 clients", sqlite.concurrent[i].verb),
        sqlite.concurrent[i].per_second, etcd.concurrent[i].per_second, "{:.0f}");
  }
  for (size_t i = 0; i < sqlite.concurrent.size(); ++i) {
    row(fmt::format("{} p99 ms, 50 clients", sqlite.concurrent[i].verb),
        sqlite.concurrent[i].p99_ms, etcd.concurrent[i].p99_ms, "{:.1f}");
  }
  for (size_t i = 0; i < sqlite.paced.size(); ++i) {
    row(fmt::format("{} p50 ms, paced", sqlite.paced[i].verb), sqlite.paced[i].p50_ms,
        etcd.paced[i].p50_ms, "{:.2f}");
    row(fmt::format("{} p99 ms, paced", sqlite.paced[i].verb), sqlite.paced[i].p99_ms,
        etcd.paced[i].p99_ms, "{:.2f}");
  }
  row("create → all watchers have it, p50 ms", sqlite.fanout_p50_ms, etcd.fanout_p50_ms, "{:.1f}");
  row("server RSS at rest, MiB", sqlite.rss_at_rest, etcd.rss_at_rest, "{:.1f}");
  row("server RSS with the objects, MiB", sqlite.rss_with_objects, etcd.rss_with_objects, "{:.1f}");
  row("server + etcd RSS with the objects, MiB", sqlite.rss_with_objects,
      etcd.rss_with_objects + etcd.etcd_rss_with_objects, "{:.1f}");
  row("server + etcd CPU, % of one core, 50 clients",
      100 * sqlite.concurrent_cpu / sqlite.concurrent_seconds,
      100 * (etcd.concurrent_cpu + etcd.concurrent_etcd_cpu) / etcd.concurrent_seconds, "{:.0f}");
}

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--orch") {
      flags.orch = value();
    } else if (a == "--etcd-binary") {
      flags.etcd_binary = value();
    } else if (a == "--datastore") {
      std::string v = value();
      if (v != "sqlite" && v != "etcd" && v != "both") {
        std::fprintf(stderr, "api_bench: --datastore is sqlite, etcd or both\n");
        return 2;
      }
      flags.sqlite = v != "etcd";
      flags.etcd = v != "sqlite";
    } else if (a == "--etcd-first") {
      flags.etcd_first = true;
    } else if (a == "--quick") {
      flags.duration = 3s;
      flags.paced = 3s;
      flags.watches = 100;
      flags.watch_events = 20;
      flags.objects = 1000;
    } else if (a == "--help") {
      std::printf(
          "usage: api_bench [--datastore sqlite|etcd|both] [--etcd-first] [--quick] [--orch PATH]\n"
          "                 [--etcd-binary PATH]\n"
          "  --datastore  which orch servers to run (default both: each phase runs on the SQLite\n"
          "               one, then on the one on a single-member etcd started here)\n"
          "  --etcd-first the etcd one first in each phase (a second run with it shows what\n"
          "               the order costs the one that goes second)\n"
          "  --quick      3 s phases, 100 watches, 1 000 objects\n");
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

  // Both servers run for the whole bench and every phase runs on one and then the other, so that
  // both see the same machine (its load moves from minute to minute); the idle one costs little.
  std::vector<std::unique_ptr<Server>> servers;
  try {
    if (flags.sqlite) servers.push_back(std::make_unique<Server>(flags, "SQLite", nullptr));
    if (flags.etcd) {
      auto etcd = orch::testing::EtcdProcess::Start(flags.etcd_binary);
      if (!etcd.ok()) throw BenchFailure("etcd: " + etcd.status().ToString());
      servers.push_back(std::make_unique<Server>(flags, "etcd", std::move(*etcd)));
    }
    std::vector<Run> runs;
    for (const auto& s : servers) runs.push_back({s.get(), {}});
    std::this_thread::sleep_for(5s);  // let start-up settle
    const std::string load_before = orch::testing::LoadAverage();
    for (Run& run : runs) {
      run.results.rss_at_rest = RssMiB(run.server->pid());
      if (run.server->etcd_pid() > 0) run.results.etcd_rss_at_rest = RssMiB(run.server->etcd_pid());
      auto admin = run.server->NewClient();
      (void)admin->Create(
          resources::kNamespaces, "",
          {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNs}}}});
    }
    const std::vector<std::pair<const char*, void (*)(const Server&, const Flags&, Results&)>>
        phases = {{"concurrent clients", ConcurrentPhase},
                  {"paced calls", PacedPhase},
                  {"watches", WatchPhase},
                  {"memory", MemoryPhase}};
    for (const auto& [what, phase] : phases) {
      for (size_t i = 0; i < runs.size(); ++i) {
        Run& run = runs[flags.etcd_first ? runs.size() - 1 - i : i];
        std::fprintf(stderr, "api_bench: %s: %s...\n", run.server->name().c_str(), what);
        phase(*run.server, flags, run.results);
      }
    }

    if (runs.size() == 1) {
      std::printf("## API server (api_bench)\n\nServer RSS at rest: %.1f MiB\n",
                  runs.front().results.rss_at_rest);
    } else {
      std::printf(
          "## API server (api_bench): orch on SQLite and on etcd (%s first in each phase)\n\n"
          "Server RSS at rest: SQLite %.1f MiB; etcd %.1f MiB (etcd itself: %.1f MiB)\n",
          flags.etcd_first ? "etcd" : "SQLite", runs[0].results.rss_at_rest,
          runs[1].results.rss_at_rest, runs[1].results.etcd_rss_at_rest);
    }
    PrintConcurrent(runs, flags);
    PrintPaced(runs, flags);
    PrintWatch(runs, flags);
    PrintMemory(runs, flags);
    if (runs.size() == 2) PrintSummary(runs[0].results, runs[1].results);
    std::printf("\nLoad average (1, 5, 15 min) before / after the phases: %s / %s\n",
                load_before.c_str(), orch::testing::LoadAverage().c_str());
  } catch (const BenchFailure& e) {
    std::fprintf(stderr, "api_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return Main(argc, argv);
}
