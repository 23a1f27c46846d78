// store_bench: one workload through the orch::Store contract against the embedded SQLite store
// and a real etcd started here, side by side, printed as a Markdown table (docs/benchmarks.md).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "etcd_process.h"
#include "load_average.h"
#include "orch/log.h"
#include "orch/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Flags {
  bool quick = false;
  bool sqlite = true;
  bool etcd = true;
  std::chrono::milliseconds duration = 5s;  // per write phase
  int64_t list_keys = 10000;
  int64_t list_page = 500;
  int64_t watch_events = 2000;
  int64_t disk_keys = 1000;
  int64_t disk_updates = 1000000;
  int disk_writers = 50;  // divides disk_keys: each writer owns disk_keys / disk_writers keys
  std::string dir = "/tmp";
  std::string etcd_binary = "/usr/bin/etcd";
};

constexpr std::size_t kValueBytes = 1024;
constexpr int kKeysPerWriter = 100;

std::string Value(int64_t n) {
  std::string v = fmt::format("{:016}", n);
  v.resize(kValueBytes, 'x');
  return v;
}

// Milliseconds from nanoseconds, for the table.
double Ms(int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

int64_t Percentile(std::vector<int64_t>& sorted_ns, double q) {
  if (sorted_ns.empty()) return 0;
  auto i = static_cast<std::size_t>(q * static_cast<double>(sorted_ns.size()));
  return sorted_ns[std::min(i, sorted_ns.size() - 1)];
}

struct WriteResult {
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int64_t errors = 0;
  // Raw material, merged over rounds before the figures above are computed.
  std::vector<int64_t> latencies_ns;
  double seconds = 0;

  void Merge(WriteResult&& round) {
    latencies_ns.insert(latencies_ns.end(), round.latencies_ns.begin(), round.latencies_ns.end());
    seconds += round.seconds;
    errors += round.errors;
    std::sort(latencies_ns.begin(), latencies_ns.end());
    per_second = static_cast<double>(latencies_ns.size()) / seconds;
    p50_ms = Ms(Percentile(latencies_ns, 0.50));
    p99_ms = Ms(Percentile(latencies_ns, 0.99));
  }
};

struct Results {
  std::map<int, WriteResult> writes;  // by number of writers
  double list_full_ms = 0;
  double list_paged_ms = 0;
  int64_t list_pages = 0;
  double watch_p50_ms = 0;
  double watch_p99_ms = 0;
  int64_t watch_missing = 0;
  std::optional<double> disk_final_mb;
  std::optional<double> disk_peak_mb;   // over the whole run
  double disk_peak_first_half_mb = 0;   // over the first half of the updates...
  double disk_peak_second_half_mb = 0;  // ...and the second: a growing store shows here
  double disk_seconds = 0;
  std::string error;  // set when the store could not run at all
};

// `writers` threads each create then compare-and-swap update their own kKeysPerWriter keys for
// `duration`, one operation at a time; every acknowledged write is timed.
WriteResult RunWrites(orch::Store& store, const std::string& prefix, int writers,
                      std::chrono::milliseconds duration) {
  std::vector<std::vector<int64_t>> latencies(writers);
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  auto deadline = start + duration;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      std::vector<int64_t> mod(kKeysPerWriter, 0);
      auto& lat = latencies[w];
      lat.reserve(1 << 16);
      for (int64_t n = 0; Clock::now() < deadline; ++n) {
        int k = static_cast<int>(n % kKeysPerWriter);
        std::string key = fmt::format("{}w{}/k{}", prefix, w, k);
        auto t0 = Clock::now();
        auto r = mod[k] == 0 ? store.Create(key, Value(n)) : store.Update(key, Value(n), mod[k]);
        auto t1 = Clock::now();
        if (!r.ok()) {
          ++errors;
          continue;
        }
        mod[k] = r->mod_revision;
        lat.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  WriteResult out;
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& l : latencies) out.latencies_ns.insert(out.latencies_ns.end(), l.begin(), l.end());
  out.errors = errors.load();
  return out;
}

// Writes `count` keys with `writers` threads (setup, untimed).
bool Fill(orch::Store& store, const std::string& prefix, int64_t count, int writers) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&] {
      for (int64_t i = next++; i < count && ok; i = next++) {
        if (!store.Create(fmt::format("{}k{:06}", prefix, i), Value(i)).ok()) ok = false;
      }
    });
  }
  for (auto& t : threads) t.join();
  return ok;
}

// The full list in one call and in pages of `page`, both timed; median of three runs each.
void RunList(orch::Store& store, const Flags& flags, Results& out) {
  const std::string prefix = "/bench/list/";
  if (!Fill(store, prefix, flags.list_keys, 16)) {
    out.error = "list setup failed";
    return;
  }
  std::vector<double> full;
  std::vector<double> paged;
  for (int run = 0; run < 3; ++run) {
    orch::RangeOptions all;
    all.prefix = prefix;
    auto t0 = Clock::now();
    auto r = store.List(all);
    full.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (!r.ok() || static_cast<int64_t>(r->kvs.size()) != flags.list_keys) {
      out.error =
          "full list failed: " + (r.ok() ? std::string("wrong count") : r.status().ToString());
      return;
    }

    orch::RangeOptions page;
    page.prefix = prefix;
    page.limit = flags.list_page;
    int64_t seen = 0;
    int64_t pages = 0;
    t0 = Clock::now();
    for (;;) {
      auto p = store.List(page);
      if (!p.ok()) {
        out.error = "paged list failed: " + p.status().ToString();
        return;
      }
      ++pages;
      seen += static_cast<int64_t>(p->kvs.size());
      if (!p->more || p->kvs.empty()) break;
      page.revision = p->revision;
      page.start_after = p->kvs.back().key;
    }
    paged.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (seen != flags.list_keys) {
      out.error = "paged list saw the wrong number of keys";
      return;
    }
    out.list_pages = pages;
  }
  std::sort(full.begin(), full.end());
  std::sort(paged.begin(), paged.end());
  out.list_full_ms = full[1];
  out.list_paged_ms = paged[1];
}

// One writer updates keys one after another; a watcher records when each revision reaches it.
// The latency is from the write's acknowledgement to the event's arrival (0 when the event came
// first, which a store that notifies watchers before answering the writer may do).
void RunWatch(orch::Store& store, const Flags& flags, Results& out) {
  const std::string prefix = "/bench/watch/";
  auto watcher = store.Watch(prefix, 0);
  if (!watcher.ok()) {
    out.error = "watch failed: " + watcher.status().ToString();
    return;
  }
  std::mutex mu;
  std::map<int64_t, Clock::time_point> received;  // guarded by mu
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      auto batch = (*watcher)->Next(50ms);
      auto now = Clock::now();
      if (!batch.ok()) return;
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& e : *batch) received.emplace(e.kv.mod_revision, now);
    }
  });
  std::vector<std::pair<int64_t, Clock::time_point>> acked;
  for (int64_t i = 0; i < flags.watch_events; ++i) {
    std::string key = fmt::format("{}k{}", prefix, i % 10);
    auto r = i < 10 ? store.Create(key, Value(i)) : store.Update(key, Value(i), 0);
    auto now = Clock::now();
    if (r.ok()) acked.emplace_back(r->mod_revision, now);
  }
  auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    std::lock_guard<std::mutex> lock(mu);
    if (received.size() >= acked.size()) break;
    std::this_thread::sleep_for(10ms);
  }
  stop = true;
  reader.join();
  std::vector<int64_t> lat;
  for (auto& [rev, at] : acked) {
    auto it = received.find(rev);
    if (it == received.end()) {
      ++out.watch_missing;
      continue;
    }
    lat.push_back(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(it->second - at).count()));
  }
  std::sort(lat.begin(), lat.end());
  out.watch_p50_ms = Ms(Percentile(lat, 0.50));
  out.watch_p99_ms = Ms(Percentile(lat, 0.99));
}

int64_t FileBytes(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

// SQLite only: flags.disk_updates updates spread over flags.disk_keys keys, with the store's
// automatic compaction as shipped; the database and WAL sizes are sampled throughout.
void RunDisk(const Flags& flags, const std::string& dir, Results& out) {
  orch::StoreOptions options;
  options.data_dir = dir + "/disk";
  auto opened = orch::OpenStore(options);
  if (!opened.ok()) {
    out.error = "disk store: " + opened.status().ToString();
    return;
  }
  auto& store = **opened;
  const std::string db = options.data_dir + "/server/db/state.db";
  auto db_bytes = [&] { return FileBytes(db) + FileBytes(db + "-wal") + FileBytes(db + "-shm"); };

  std::atomic<bool> done{false};
  std::atomic<int64_t> next{0};
  int64_t peak_first = 0;   // written by the sampler only
  int64_t peak_second = 0;  // written by the sampler only
  std::thread sampler([&] {
    while (!done) {
      int64_t now = db_bytes();
      int64_t& peak = next.load() < flags.disk_updates / 2 ? peak_first : peak_second;
      peak = std::max(peak, now);
      std::this_thread::sleep_for(200ms);
    }
  });
  auto start = Clock::now();
  std::atomic<int64_t> last_report{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < flags.disk_writers; ++w) {
    writers.emplace_back([&, w] {
      // Each writer owns the keys k = w, w + writers, ...: no CAS conflicts between writers.
      std::map<int64_t, int64_t> mod;
      for (int64_t n = next++; n < flags.disk_updates; n = next++) {
        int64_t k = (n % (flags.disk_keys / flags.disk_writers)) * flags.disk_writers + w;
        std::string key = fmt::format("/bench/disk/k{:04}", k);
        auto it = mod.find(k);
        auto r = it == mod.end() ? store.Create(key, Value(n)) : store.Update(key, Value(n), 0);
        if (r.ok()) mod[k] = r->mod_revision;
        if (n - last_report.load() >= flags.disk_updates / 10) {
          last_report = n;
          std::fprintf(stderr, "  disk: %lld/%lld updates, %.1f MB\n", static_cast<long long>(n),
                       static_cast<long long>(flags.disk_updates),
                       static_cast<double>(db_bytes()) / 1e6);
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  out.disk_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  done = true;
  sampler.join();
  int64_t final_bytes = db_bytes();
  peak_second = std::max(peak_second, final_bytes);
  out.disk_final_mb = static_cast<double>(final_bytes) / 1e6;
  out.disk_peak_first_half_mb = static_cast<double>(peak_first) / 1e6;
  out.disk_peak_second_half_mb = static_cast<double>(peak_second) / 1e6;
  out.disk_peak_mb = std::max(out.disk_peak_first_half_mb, out.disk_peak_second_half_mb);
}

std::string MakeTempDir(const std::string& parent, const std::string& name) {
  std::string tmpl = parent + "/orch-bench-" + name + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) return "";
  return buf.data();
}

// The floor under any durable write on this disk: append 1 KB to a file and fdatasync it, as a
// write-ahead log does, timed one after another.
std::pair<double, double> ProbeFsync(const std::string& dir, int count) {
  std::string path = dir + "/fsync-probe";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return {0, 0};
  std::string block(kValueBytes, 'f');
  std::vector<int64_t> lat;
  for (int i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()) ||
        fdatasync(fd) != 0) {
      break;
    }
    lat.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
  }
  close(fd);
  unlink(path.c_str());
  std::sort(lat.begin(), lat.end());
  return {Ms(Percentile(lat, 0.50)), Ms(Percentile(lat, 0.99))};
}

// One store under test: what it is, its results, and what keeps it open.
struct Subject {
  std::string name;
  std::unique_ptr<orch::Store> store;
  Results results;
};

// Each phase runs on every store back to back, so that both see the same machine: other load
// on a shared disk moves fsync times by several milliseconds from one minute to the next.
void RunPhases(std::vector<Subject*>& subjects, const Flags& flags) {
  // Two alternating rounds of half the duration each, for the same reason.
  constexpr int kRounds = 2;
  for (int writers : {1, 8, 64}) {
    for (int round = 0; round < kRounds; ++round) {
      for (Subject* s : subjects) {
        std::fprintf(stderr, "%s: writes with %d writer(s), round %d...\n", s->name.c_str(),
                     writers, round + 1);
        s->results.writes[writers].Merge(
            RunWrites(*s->store, fmt::format("/bench/write/{}/{}/", writers, round), writers,
                      flags.duration / kRounds));
      }
    }
  }
  for (Subject* s : subjects) {
    std::fprintf(stderr, "%s: list of %lld keys...\n", s->name.c_str(),
                 static_cast<long long>(flags.list_keys));
    RunList(*s->store, flags, s->results);
  }
  for (Subject* s : subjects) {
    std::fprintf(stderr, "%s: watch delivery...\n", s->name.c_str());
    RunWatch(*s->store, flags, s->results);
  }
}

std::string Cell(const std::optional<Results>& r,
                 const std::function<std::string(const Results&)>& f) {
  if (!r) return "not run";
  if (!r->error.empty()) return "failed";
  return f(*r);
}

std::string Ratio(const std::optional<Results>& a, const std::optional<Results>& b,
                  const std::function<double(const Results&)>& f) {
  if (!a || !b || !a->error.empty() || !b->error.empty() || f(*b) == 0) return "";
  // Two significant digits below 1: "0.0x" would hide how much faster the first store is.
  double ratio = f(*a) / f(*b);
  return ratio < 1 ? fmt::format("{:.2f}x", ratio) : fmt::format("{:.1f}x", ratio);
}

void PrintTable(const Flags& flags, const std::optional<Results>& sqlite,
                const std::optional<Results>& etcd) {
  std::printf("| measure | SQLite (embedded) | etcd 3.4 (loopback) | SQLite / etcd |\n");
  std::printf("|---|---:|---:|---:|\n");
  for (int w : {1, 8, 64}) {
    auto rate = [w](const Results& r) { return r.writes.at(w).per_second; };
    std::printf(
        "| writes/s, %d writer%s | %s | %s | %s |\n", w, w == 1 ? "" : "s",
        Cell(sqlite, [&](const Results& r) { return fmt::format("{:.0f}", rate(r)); }).c_str(),
        Cell(etcd, [&](const Results& r) { return fmt::format("{:.0f}", rate(r)); }).c_str(),
        Ratio(sqlite, etcd, rate).c_str());
    auto lat = [w](const Results& r) {
      const WriteResult& x = r.writes.at(w);
      std::string s = fmt::format("{:.2f} / {:.2f}", x.p50_ms, x.p99_ms);
      if (x.errors > 0) s += fmt::format(" ({} errors)", x.errors);
      return s;
    };
    auto p50 = [w](const Results& r) { return r.writes.at(w).p50_ms; };
    auto p99 = [w](const Results& r) { return r.writes.at(w).p99_ms; };
    std::string ratios = Ratio(sqlite, etcd, p50);
    if (!ratios.empty()) ratios = fmt::format("{} / {}", ratios, Ratio(sqlite, etcd, p99));
    std::printf("| write latency p50 / p99 ms, %d writer%s | %s | %s | %s |\n", w,
                w == 1 ? "" : "s", Cell(sqlite, lat).c_str(), Cell(etcd, lat).c_str(),
                ratios.c_str());
  }
  auto full = [](const Results& r) { return r.list_full_ms; };
  auto paged = [](const Results& r) { return r.list_paged_ms; };
  std::printf(
      "| list %lld keys, one call, ms | %s | %s | %s |\n", static_cast<long long>(flags.list_keys),
      Cell(sqlite, [&](const Results& r) { return fmt::format("{:.1f}", full(r)); }).c_str(),
      Cell(etcd, [&](const Results& r) { return fmt::format("{:.1f}", full(r)); }).c_str(),
      Ratio(sqlite, etcd, full).c_str());
  std::printf(
      "| list %lld keys, pages of %lld, ms | %s | %s | %s |\n",
      static_cast<long long>(flags.list_keys), static_cast<long long>(flags.list_page),
      Cell(sqlite, [&](const Results& r) { return fmt::format("{:.1f}", paged(r)); }).c_str(),
      Cell(etcd, [&](const Results& r) { return fmt::format("{:.1f}", paged(r)); }).c_str(),
      Ratio(sqlite, etcd, paged).c_str());
  auto watch = [](const Results& r) {
    std::string s = fmt::format("{:.2f} / {:.2f}", r.watch_p50_ms, r.watch_p99_ms);
    if (r.watch_missing > 0) s += fmt::format(" ({} missing)", r.watch_missing);
    return s;
  };
  std::printf("| watch delivery p50 / p99 ms | %s | %s | |\n", Cell(sqlite, watch).c_str(),
              Cell(etcd, watch).c_str());
  if (flags.disk_updates > 0) {
    auto disk = [](const Results& r) {
      if (!r.disk_final_mb) return std::string("n/a");
      return fmt::format("{:.1f} (peak {:.1f} in 1st half, {:.1f} in 2nd; {:.0f} s)",
                         *r.disk_final_mb, r.disk_peak_first_half_mb, r.disk_peak_second_half_mb,
                         r.disk_seconds);
    };
    std::printf("| disk MB (db+wal+shm) after %lld updates of %lld keys | %s | not measured | |\n",
                static_cast<long long>(flags.disk_updates), static_cast<long long>(flags.disk_keys),
                Cell(sqlite, disk).c_str());
  }
  for (const auto& [name, r] : {std::pair{"SQLite", &sqlite}, std::pair{"etcd", &etcd}}) {
    if (*r && !(*r)->error.empty()) std::printf("\n%s failed: %s\n", name, (*r)->error.c_str());
  }
}

// The goals from docs/benchmarks.md, judged on this run.
void PrintGoals(const Flags& flags, const std::optional<Results>& sqlite,
                const std::optional<Results>& etcd) {
  if (!sqlite || !sqlite->error.empty()) return;
  std::printf("\nGoals:\n\n");
  if (etcd && etcd->error.empty()) {
    double ratio = sqlite->writes.at(64).per_second / etcd->writes.at(64).per_second;
    std::printf("- SQLite write throughput >= 5x etcd's at 64 writers: %.1fx, %s\n", ratio,
                ratio >= 5 ? "met" : "MISSED");
  }
  double p99 = sqlite->writes.at(1).p99_ms;
  std::printf("- SQLite p99 write latency < 2 ms at 1 writer: %.2f ms, %s\n", p99,
              p99 < 2 ? "met" : "MISSED");
  if (sqlite->disk_final_mb) {
    // Bounded: what the store holds follows the retained history (retain_revisions, plus what is
    // written between two automatic compactions), not the number of updates. So the second half
    // of the run must not need more room than the first, and the end state must be far below the
    // ~1 KB per update that a store without compaction would keep.
    double history_mb = static_cast<double>(flags.disk_updates) * kValueBytes / 1e6;
    bool flat = sqlite->disk_peak_second_half_mb <= 1.1 * sqlite->disk_peak_first_half_mb;
    bool small = *sqlite->disk_final_mb < 0.25 * history_mb;
    std::printf(
        "- SQLite disk bounded after %lld updates of %lld keys: %.1f MB at the end (%.0f MB of "
        "values written), peak %.1f MB in the first half and %.1f MB in the second, %s\n",
        static_cast<long long>(flags.disk_updates), static_cast<long long>(flags.disk_keys),
        *sqlite->disk_final_mb, history_mb, sqlite->disk_peak_first_half_mb,
        sqlite->disk_peak_second_half_mb, flat && small ? "met" : "MISSED");
  }
}

int Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--quick] [--only sqlite|etcd] [--duration-ms N] [--disk-updates N]\n"
               "          [--dir DIR] [--etcd-binary PATH]\n"
               "  --quick           1 s write phases, 2000-key list, 100000 disk updates\n"
               "  --disk-updates N  updates for the SQLite disk measure (0 skips it)\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  std::optional<int64_t> disk_updates;
  std::optional<int64_t> duration_ms;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    if (a == "--quick") {
      flags.quick = true;
    } else if (a == "--only") {
      auto v = value();
      if (!v || (*v != "sqlite" && *v != "etcd")) return Usage(argv[0]);
      flags.sqlite = *v == "sqlite";
      flags.etcd = *v == "etcd";
    } else if (a == "--duration-ms") {
      auto v = value();
      if (!v) return Usage(argv[0]);
      duration_ms = std::atoll(v->c_str());
    } else if (a == "--disk-updates") {
      auto v = value();
      if (!v) return Usage(argv[0]);
      disk_updates = std::atoll(v->c_str());
    } else if (a == "--dir") {
      auto v = value();
      if (!v) return Usage(argv[0]);
      flags.dir = *v;
    } else if (a == "--etcd-binary") {
      auto v = value();
      if (!v) return Usage(argv[0]);
      flags.etcd_binary = *v;
    } else {
      return Usage(argv[0]);
    }
  }
  if (flags.quick) {
    flags.duration = 1s;
    flags.list_keys = 2000;
    flags.watch_events = 500;
    flags.disk_updates = 100000;
  }
  if (duration_ms) flags.duration = std::chrono::milliseconds(*duration_ms);
  if (disk_updates) flags.disk_updates = *disk_updates;
  // The stores' own logs (connects, compactions) would interleave with the table.
  orch::log::SetLevel(orch::log::Level::kWarn);

  std::string dir = MakeTempDir(flags.dir, "run");
  if (dir.empty()) {
    std::fprintf(stderr, "cannot make a temp dir in %s\n", flags.dir.c_str());
    return 1;
  }
  std::optional<Results> sqlite;
  std::optional<Results> etcd;
  Subject sqlite_subject{"SQLite", nullptr, {}};
  Subject etcd_subject{"etcd", nullptr, {}};
  std::unique_ptr<orch::testing::EtcdProcess> etcd_process;
  std::vector<Subject*> subjects;
  if (flags.sqlite) {
    orch::StoreOptions options;
    options.data_dir = dir + "/sqlite";
    auto store = orch::OpenStore(options);
    if (store.ok()) {
      sqlite_subject.store = std::move(store).value();
      subjects.push_back(&sqlite_subject);
    } else {
      sqlite_subject.results.error = store.status().ToString();
    }
  }
  if (flags.etcd) {
    auto started = orch::testing::EtcdProcess::Start(flags.etcd_binary);
    if (started.ok()) {
      etcd_process = std::move(started).value();
      orch::StoreOptions options;
      options.endpoint = etcd_process->endpoint();
      auto store = orch::OpenStore(options);
      if (store.ok()) {
        etcd_subject.store = std::move(store).value();
        subjects.push_back(&etcd_subject);
      } else {
        etcd_subject.results.error = store.status().ToString();
      }
    } else {
      etcd_subject.results.error = started.status().ToString();
    }
  }
  const std::string load_before = orch::testing::LoadAverage();
  auto fsync_before = ProbeFsync(dir, 200);
  RunPhases(subjects, flags);
  sqlite_subject.store.reset();
  etcd_subject.store.reset();
  etcd_process.reset();
  auto fsync_after = ProbeFsync(dir, 200);
  const std::string load_after = orch::testing::LoadAverage();
  if (flags.sqlite && sqlite_subject.results.error.empty() && flags.disk_updates > 0) {
    std::fprintf(stderr, "SQLite: disk use after %lld updates of %lld keys...\n",
                 static_cast<long long>(flags.disk_updates),
                 static_cast<long long>(flags.disk_keys));
    RunDisk(flags, dir, sqlite_subject.results);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (flags.sqlite) sqlite = std::move(sqlite_subject.results);
  if (flags.etcd) etcd = std::move(etcd_subject.results);

  std::printf("\n");
  PrintTable(flags, sqlite, etcd);
  std::printf(
      "\nDisk floor, 1 KB append + fdatasync in %s (200 times before and after the store runs): "
      "p50 %.2f / %.2f ms, p99 %.2f / %.2f ms.\n",
      flags.dir.c_str(), fsync_before.first, fsync_after.first, fsync_before.second,
      fsync_after.second);
  std::printf("Load average (1, 5, 15 min) before / after the store runs: %s / %s.\n",
              load_before.c_str(), load_after.c_str());
  PrintGoals(flags, sqlite, etcd);
  bool failed = (sqlite && !sqlite->error.empty()) || (etcd && !etcd->error.empty());
  return failed ? 1 : 0;
}
