// cri_floor: the pod start floor of a node's runtime, for tests/bench/pod_bench.sh. Against a
// running containerd (the agent's own, with its CNI config) it makes pods the way the agent does
// (its CRI client and its sandbox and container configs) but with nothing else: RunPodSandbox,
// CreateContainer, StartContainer; times 1 pod and N pods at once, and the CPU the runtime's
// processes used meanwhile. No kubelet can start pods faster than this on the same machine.
//
//   cri_floor --endpoint SOCKET --image REF [--singles N] [--batch N] [--parallel K]
//             [--log-root DIR] [--containerd-pid PID]
//   cri_floor --cpu-snapshot FILE --endpoint SOCKET --containerd-pid PID [--agent-pid PID]
//   cri_floor --cpu-since FILE --endpoint SOCKET --containerd-pid PID [--agent-pid PID] [--pods N]
//
// The snapshot modes let pod_bench.sh measure the same CPU around its own batch of pods.
// The floor's sandboxes carry no orch.io/node label, so the agent leaves them alone.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "container_config.h"
#include "orch/files.h"
#include "orch/runtime.h"
#include "runtime_labels.h"
#include "sandbox_config.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using orch::agent::json;

struct Flags {
  std::string endpoint;  // the containerd socket (a path, or unix://path)
  std::string image = "orch.test/busybox:1";
  int singles = 10;
  int batch = 50;
  int parallel = 0;  // how many pods are being started at once in the batch; 0 = all of them
  std::string log_root = "/tmp/cri-floor-logs";
  int containerd_pid = 0;
  int agent_pid = 0;
  std::string cpu_snapshot;  // write the CPU counters here and exit
  std::string cpu_since;     // print the CPU used since the snapshot in this file and exit
  int pods = 0;              // with --cpu-since: how many pods started meanwhile (per-pod CPU)
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "cri_floor: %s\nusage: cri_floor --endpoint SOCKET [--image REF] [--singles N] "
               "[--batch N] [--parallel K] [--log-root DIR] [--containerd-pid PID]\n"
               "       cri_floor --cpu-snapshot FILE | --cpu-since FILE --endpoint SOCKET "
               "--containerd-pid PID [--agent-pid PID] [--pods N]\n",
               why);
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value of " + a).c_str());
      return argv[++i];
    };
    if (a == "--endpoint") {
      f.endpoint = value();
    } else if (a == "--image") {
      f.image = value();
    } else if (a == "--singles") {
      f.singles = std::stoi(value());
    } else if (a == "--batch") {
      f.batch = std::stoi(value());
    } else if (a == "--parallel") {
      f.parallel = std::stoi(value());
    } else if (a == "--log-root") {
      f.log_root = value();
    } else if (a == "--containerd-pid") {
      f.containerd_pid = std::stoi(value());
    } else if (a == "--agent-pid") {
      f.agent_pid = std::stoi(value());
    } else if (a == "--cpu-snapshot") {
      f.cpu_snapshot = value();
    } else if (a == "--cpu-since") {
      f.cpu_since = value();
    } else if (a == "--pods") {
      f.pods = std::stoi(value());
    } else {
      Usage(("unknown flag " + a).c_str());
    }
  }
  if (f.endpoint.empty()) Usage("--endpoint is required");
  if (f.endpoint.rfind("unix://", 0) == 0) f.endpoint = f.endpoint.substr(7);
  return f;
}

// A file's contents, "" when it cannot be read (a process that just exited).
std::string ReadFile(const fs::path& path) {
  auto text = orch::ReadFileToString(path.string());
  return text.ok() ? std::move(*text) : std::string();
}

// --- CPU of the runtime's processes ---

// CPU seconds of one process from /proc/PID/stat: its own (user + system) and that of the
// children it has reaped (a CNI plugin run by containerd, runc run by a shim).
struct ProcCpu {
  double self = 0;
  double children = 0;
};

bool ReadProcCpu(int pid, ProcCpu* out, int* ppid) {
  std::string stat = ReadFile(fmt::format("/proc/{}/stat", pid));
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream in(stat.substr(paren + 2));
  std::vector<std::string> fields;
  std::string field;
  while (in >> field) fields.push_back(field);
  // After the command: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
  if (fields.size() < 15) return false;
  double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  *ppid = std::stoi(fields[1]);
  out->self = (std::stod(fields[11]) + std::stod(fields[12])) / tick;
  out->children = (std::stod(fields[13]) + std::stod(fields[14])) / tick;
  return true;
}

// Per process, by category: "containerd", "shim" (containerd-shim processes whose -address is
// the socket), "pod" (the shims' children: pause and the containers' processes, whose time
// includes runc init before it executed them) and "agent".
struct CpuSample {
  std::map<int, std::pair<std::string, ProcCpu>> procs;
};

CpuSample SampleCpu(const Flags& f) {
  CpuSample s;
  std::map<int, int> parent;
  std::vector<int> shims;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    int pid = std::atoi(name.c_str());
    ProcCpu cpu;
    int ppid = 0;
    if (!ReadProcCpu(pid, &cpu, &ppid)) continue;
    parent[pid] = ppid;
    if (pid == f.containerd_pid) {
      s.procs[pid] = {"containerd", cpu};
    } else if (pid == f.agent_pid) {
      s.procs[pid] = {"agent", cpu};
    } else {
      std::string cmdline = ReadFile(entry.path() / "cmdline");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find("containerd-shim") != std::string::npos &&
          cmdline.find(" " + f.endpoint) != std::string::npos) {
        s.procs[pid] = {"shim", cpu};
        shims.push_back(pid);
      }
    }
  }
  for (const auto& [pid, ppid] : parent) {
    if (std::find(shims.begin(), shims.end(), ppid) == shims.end()) continue;
    ProcCpu cpu;
    int unused = 0;
    if (ReadProcCpu(pid, &cpu, &unused)) s.procs[pid] = {"pod", cpu};
  }
  return s;
}

void WriteSample(const CpuSample& s, const std::string& path) {
  std::ofstream out(path);
  for (const auto& [pid, entry] : s.procs) {
    out << pid << ' ' << entry.first << ' ' << entry.second.self << ' ' << entry.second.children
        << '\n';
  }
}

CpuSample ReadSample(const std::string& path) {
  CpuSample s;
  std::ifstream in(path);
  int pid = 0;
  std::string kind;
  ProcCpu cpu;
  while (in >> pid >> kind >> cpu.self >> cpu.children) s.procs[pid] = {kind, cpu};
  return s;
}

// The CPU used between two samples, by category; processes gone by `after` are not counted
// (pods removed meanwhile), new ones count from zero.
std::string CpuReport(const CpuSample& before, const CpuSample& after, int pods) {
  std::map<std::string, double> self, children;
  for (const auto& [pid, entry] : after.procs) {
    ProcCpu base;
    if (auto it = before.procs.find(pid); it != before.procs.end()) base = it->second.second;
    self[entry.first] += entry.second.self - base.self;
    children[entry.first] += entry.second.children - base.children;
  }
  double runtime =
      self["containerd"] + children["containerd"] + self["shim"] + children["shim"] + self["pod"];
  std::string out = fmt::format(
      "runtime CPU {:.2f} s ({:.0f} ms per pod): containerd {:.2f} s + its children (CNI "
      "plugins, shim start) {:.2f} s, shims {:.2f} s + their children (runc) {:.2f} s, pod "
      "processes (runc init, pause, the command) {:.2f} s",
      runtime, pods > 0 ? runtime * 1000 / pods : 0.0, self["containerd"], children["containerd"],
      self["shim"], children["shim"], self["pod"]);
  if (self.contains("agent")) {
    double agent = self["agent"] + children["agent"];
    out += fmt::format("; agent {:.2f} s ({:.0f} ms per pod)", agent,
                       pods > 0 ? agent * 1000 / pods : 0.0);
  }
  return out;
}

// --- Pods ---

std::string RandomUid() {
  std::random_device rd;
  return fmt::format("{:08x}-{:04x}-4{:03x}-8{:03x}-{:08x}{:04x}", rd(), rd() & 0xffff,
                     rd() & 0xfff, rd() & 0xfff, rd(), rd() & 0xffff);
}

// The pod pod_bench.py creates, as the agent sees it.
json BenchPod(const std::string& name, const std::string& image) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", "default"},
            {"uid", RandomUid()},
            {"labels", {{"bench", "floor"}}}}},
          {"spec",
           {{"nodeName", "floor"},
            {"terminationGracePeriodSeconds", 0},
            {"restartPolicy", "Always"},
            {"dnsPolicy", "Default"},
            {"containers", json::array({{{"name", "c"},
                                         {"image", image},
                                         {"imagePullPolicy", "IfNotPresent"},
                                         {"command", json::array({"sleep", "3600"})}}})}}}};
}

class Floor {
 public:
  Floor(const Flags& flags, orch::cri::Runtime& runtime, std::string image_id)
      : flags_(flags), runtime_(runtime), image_id_(std::move(image_id)) {
    ctx_.node_name = "floor";
    ctx_.log_root = flags.log_root;
    ctx_.host_dns = orch::agent::ParseResolvConf(ReadFile("/etc/resolv.conf"));
  }

  // Starts one pod; its sandbox ID goes to `sandboxes`. Errors end the bench.
  void StartPod(const std::string& name) {
    json pod = BenchPod(name, flags_.image);
    orch::cri::PodSandboxConfig sandbox = orch::agent::BuildSandboxConfig(pod, ctx_, 0);
    sandbox.labels.erase(orch::agent::kNodeLabel);  // not the agent's: it leaves it alone
    if (auto s = orch::MakeDirectories(sandbox.log_directory + "/c", 0755); !s.ok()) Die(s);
    auto id = runtime_.RunPodSandbox(sandbox);
    if (!id.ok()) Die(id.status());
    {
      std::lock_guard lock(mu_);
      sandboxes_.push_back(*id);
    }
    orch::agent::ContainerInputs in;
    in.node_name = ctx_.node_name;
    in.node_memory_bytes = int64_t{8} << 30;
    in.image_ref = image_id_;
    orch::cri::ContainerConfig config =
        orch::agent::BuildContainerConfig(pod, pod["spec"]["containers"][0], in);
    config.labels.erase(orch::agent::kNodeLabel);
    auto container = runtime_.CreateContainer(*id, config, sandbox);
    if (!container.ok()) Die(container.status());
    if (auto s = runtime_.StartContainer(*container); !s.ok()) Die(s);
  }

  // Stops and removes every sandbox started so far.
  void RemoveAll() {
    std::vector<std::string> ids;
    {
      std::lock_guard lock(mu_);
      ids.swap(sandboxes_);
    }
    std::vector<std::thread> threads;
    std::atomic<size_t> next{0};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (size_t i = next++; i < ids.size(); i = next++) {
          (void)runtime_.StopPodSandbox(ids[i]);
          if (auto s = runtime_.RemovePodSandbox(ids[i]); !s.ok()) {
            std::fprintf(stderr, "cri_floor: removing sandbox %s: %s\n", ids[i].c_str(),
                         s.ToString().c_str());
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  }

  // `count` pods, at most `parallel` being started at a time; each one's time from the start of
  // the round to its StartContainer answer, sorted.
  std::vector<double> Round(const std::string& prefix, int count, int parallel) {
    std::vector<double> times(static_cast<size_t>(count));
    std::atomic<int> next{0};
    auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < std::min(parallel, count); ++t) {
      threads.emplace_back([&] {
        for (int i = next++; i < count; i = next++) {
          StartPod(fmt::format("{}{}", prefix, i));
          times[static_cast<size_t>(i)] =
              std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        }
      });
    }
    for (auto& t : threads) t.join();
    std::sort(times.begin(), times.end());
    return times;
  }

 private:
  [[noreturn]] void Die(const orch::Status& s) {
    std::fprintf(stderr, "cri_floor: %s\n", s.ToString().c_str());
    RemoveAll();
    std::exit(1);
  }

  const Flags& flags_;
  orch::cri::Runtime& runtime_;
  const std::string image_id_;
  orch::agent::SandboxContext ctx_;
  std::mutex mu_;
  std::vector<std::string> sandboxes_;  // guarded by mu_
};

// Nearest rank, as pod_bench.py's pct.
double Pct(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto k = static_cast<long>(std::lround(p / 100.0 * static_cast<double>(sorted.size()) + 0.5)) - 1;
  k = std::clamp<long>(k, 0, static_cast<long>(sorted.size()) - 1);
  return sorted[static_cast<size_t>(k)];
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  if (!flags.cpu_snapshot.empty()) {
    WriteSample(SampleCpu(flags), flags.cpu_snapshot);
    return 0;
  }
  if (!flags.cpu_since.empty()) {
    std::printf("%s\n",
                CpuReport(ReadSample(flags.cpu_since), SampleCpu(flags), flags.pods).c_str());
    return 0;
  }
  orch::cri::CriClientOptions options;
  options.endpoint = "unix://" + flags.endpoint;
  auto runtime = orch::cri::NewCriClient(options);
  if (!runtime.ok()) {
    std::fprintf(stderr, "cri_floor: %s\n", runtime.status().ToString().c_str());
    return 1;
  }
  auto image = (*runtime)->GetImageStatus(flags.image);
  if (!image.ok()) {
    std::fprintf(stderr, "cri_floor: image %s: %s\n", flags.image.c_str(),
                 image.status().ToString().c_str());
    return 1;
  }
  Floor floor(flags, **runtime, image->id);

  std::vector<double> singles;
  for (int r = 0; r < flags.singles; ++r) {
    auto t = floor.Round(fmt::format("floor-single{}-", r), 1, 1);
    singles.insert(singles.end(), t.begin(), t.end());
    floor.RemoveAll();
  }
  std::sort(singles.begin(), singles.end());
  if (!singles.empty()) {
    std::printf("floor, 1 pod  (%d rounds): p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", flags.singles,
                Pct(singles, 50), Pct(singles, 99), singles.back());
  }
  if (flags.batch > 0) {
    int parallel = flags.parallel > 0 ? flags.parallel : flags.batch;
    CpuSample before = SampleCpu(flags);
    auto batch = floor.Round("floor-batch-", flags.batch, parallel);
    CpuSample after = SampleCpu(flags);
    std::printf(
        "floor, %d pods at once (%d started at a time): p50 %.0f ms, p99 %.0f ms, all "
        "started after %.0f ms\n",
        flags.batch, parallel, Pct(batch, 50), Pct(batch, 99), batch.back());
    if (flags.containerd_pid > 0) {
      std::printf("floor, %d pods: %s\n", flags.batch,
                  CpuReport(before, after, flags.batch).c_str());
    }
    std::fflush(stdout);
    floor.RemoveAll();
  }
  return 0;
}
