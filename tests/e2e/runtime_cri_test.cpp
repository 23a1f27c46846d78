// e2e: orch's own containerd and CRI client against the real thing: start and image import, a
// pod on a CNI bridge with a busybox container, logs, exec, stats, a containerd crash and
// restart, teardown, and a pull through a registries.yaml mirror with credentials.
// Run by tests/e2e/runtime_cri_test.sh (root), which prepares the data dir and cleans up after.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "orch/files.h"
#include "orch/runtime.h"

using namespace std::chrono_literals;
using Catch::Contains;
using Catch::StartsWith;
namespace cri = orch::cri;

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

bool Eventually(const std::function<bool()>& done, std::chrono::seconds limit = 30s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

std::string ReadAll(const std::string& path) {
  auto r = orch::ReadFileToString(path);
  return r.ok() ? *r : "";
}

// Whatever a failed assertion leaves running: sandboxes are stopped and removed through CRI
// (which also tears down their network namespaces), then containerd is stopped.
struct Cleanup {
  cri::Containerd* containerd = nullptr;
  cri::Runtime* runtime = nullptr;
  ~Cleanup() {
    if (runtime != nullptr && containerd != nullptr && containerd->pid() > 0) {
      auto sandboxes = runtime->ListPodSandboxes({});
      if (sandboxes.ok()) {
        for (const auto& s : *sandboxes) {
          (void)runtime->StopPodSandbox(s.id);
          (void)runtime->RemovePodSandbox(s.id);
        }
      }
    }
    if (containerd != nullptr) containerd->Stop();
  }
};

}  // namespace

TEST_CASE("orch runs a pod through its own containerd") {
  const std::string data_dir = Env("ORCH_TEST_DATA_DIR");
  const std::string ipam_dir = Env("ORCH_TEST_IPAM_DIR");
  const std::string registry_log = Env("ORCH_TEST_REGISTRY_LOG");
  REQUIRE(!data_dir.empty());
  REQUIRE(!ipam_dir.empty());

  // A bridge network of the test's own (no masquerade, no gateway: nothing outside the bridge
  // changes on the host).
  std::string cni_dir = data_dir + "/agent/etc/cni/net.d";
  REQUIRE(orch::MakeDirectories(cni_dir, 0755).ok());
  REQUIRE(orch::WriteFileAtomic(
              cni_dir + "/10-orchtest.conflist",
              R"({"cniVersion":"1.0.0","name":"orchtest","plugins":[{"type":"bridge",)"
              R"("bridge":"orchtest0","isGateway":false,"ipMasq":false,"ipam":{"type":)"
              R"("host-local","ranges":[[{"subnet":"10.99.0.0/24"}]],"dataDir":")" +
                  ipam_dir + "\"}}]}",
              0644)
              .ok());

  cri::ContainerdOptions options;
  options.data_dir = data_dir;
  options.restart_backoff_min = 200ms;
  options.stop_grace = 5s;
  auto containerd = cri::NewContainerd(options);
  Cleanup cleanup;
  cleanup.containerd = containerd.get();
  orch::Status started = containerd->Start();
  if (!started.ok()) {
    std::string log = ReadAll(data_dir + "/agent/containerd/containerd.log");
    FAIL(started.message() << "\n" << log.substr(log.size() > 4000 ? log.size() - 4000 : 0));
  }
  CHECK(containerd->starts() == 1);
  CHECK(containerd->endpoint() == "unix://" + data_dir + "/agent/containerd/containerd.sock");

  cri::CriClientOptions client_options;
  client_options.endpoint = containerd->endpoint();
  client_options.call_timeout = 60s;
  auto client = cri::NewCriClient(client_options);
  REQUIRE(client.ok());
  cri::Runtime& runtime = **client;
  cleanup.runtime = &runtime;

  {
    auto version = runtime.GetVersion();
    REQUIRE(version.ok());
    CHECK(version->runtime_name == "containerd");
    CHECK(version->api_version == "v1");
    CHECK_THAT(version->runtime_version, StartsWith("1."));
    // The CNI config was there before containerd started, so the network is ready at once.
    REQUIRE(Eventually([&] {
      auto status = runtime.GetRuntimeStatus();
      return status.ok() && status->runtime_ready && status->network_ready;
    }));
  }

  // The pause image (linked into orch) and the busybox archive from agent/images (gzip).
  auto pause = runtime.GetImageStatus(cri::kPauseImage);
  REQUIRE(pause.ok());
  CHECK_THAT(pause->id, StartsWith("sha256:"));
  auto busybox = runtime.GetImageStatus("orch.test/busybox:1");
  REQUIRE(busybox.ok());
  auto busybox_hub = runtime.GetImageStatus("busybox");  // docker.io/library/busybox:latest
  REQUIRE(busybox_hub.ok());
  CHECK(busybox_hub->id == busybox->id);
  CHECK(runtime.GetImageStatus("orch.test/absent:1").status().code() ==
        orch::StatusCode::kNotFound);
  auto images = runtime.ListImages();
  REQUIRE(images.ok());
  CHECK(images->size() >= 2);

  // A pod on the bridge.
  cri::PodSandboxConfig pod;
  pod.name = "cri-test";
  pod.uid = "0b6c8f1e-orch-test";
  pod.namespace_ = "default";
  pod.hostname = "cri-test";
  pod.log_directory = data_dir + "/pod-logs";
  pod.labels = {{"orch.test", "runtime"}};
  pod.annotations = {{"orch.test/note", "e2e"}};
  pod.dns.servers = {"10.43.0.10"};
  pod.dns.searches = {"default.svc.cluster.local"};
  auto sandbox_id = runtime.RunPodSandbox(pod);
  REQUIRE(sandbox_id.ok());
  auto sandbox = runtime.GetPodSandboxStatus(*sandbox_id);
  REQUIRE(sandbox.ok());
  CHECK(sandbox->sandbox.state == cri::SandboxState::kReady);
  CHECK(sandbox->sandbox.name == "cri-test");
  CHECK(sandbox->sandbox.namespace_ == "default");
  CHECK(sandbox->sandbox.labels.at("orch.test") == "runtime");
  CHECK_THAT(sandbox->ip, StartsWith("10.99.0."));
  CHECK_FALSE(sandbox->host_network);
  // The same identity twice is refused while the first exists.
  CHECK(runtime.RunPodSandbox(pod).status().code() == orch::StatusCode::kAlreadyExists);

  cri::ContainerConfig hello;
  hello.name = "hello";
  hello.image = "orch.test/busybox:1";
  hello.command = {"sh", "-c", "echo hello; echo $GREETING >&2; sleep 30"};
  hello.env = {{"GREETING", "from stderr"}};
  hello.log_path = "hello/0.log";
  hello.labels = {{"orch.test/container", "hello"}};
  hello.resources.cpu_shares = 512;
  hello.resources.memory_limit_bytes = 64 << 20;
  auto container_id = runtime.CreateContainer(*sandbox_id, hello, pod);
  REQUIRE(container_id.ok());
  REQUIRE(runtime.StartContainer(*container_id).ok());
  auto status = runtime.GetContainerStatus(*container_id);
  REQUIRE(status.ok());
  CHECK(status->container.state == cri::ContainerState::kRunning);
  CHECK(status->container.name == "hello");
  CHECK(status->started_at > 0);
  CHECK(status->log_path == pod.log_directory + "/hello/0.log");
  CHECK_THAT(status->container.image_ref, StartsWith("sha256:"));

  // CRI log lines: "<RFC 3339 nano time> <stream> <F|P> <text>".
  std::string log;
  REQUIRE(Eventually([&] {
    log = ReadAll(status->log_path);
    return log.find("from stderr") != std::string::npos;
  }));
  INFO(log);
  std::regex line_format(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (stdout|stderr) F (.*)$)");
  std::istringstream lines(log);
  std::string line;
  std::vector<std::string> seen;
  while (std::getline(lines, line)) {
    std::smatch m;
    REQUIRE(std::regex_match(line, m, line_format));
    seen.push_back(m[3].str() + " " + m[4].str());
  }
  // The two streams are copied separately: their relative order in the file is not fixed.
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"stderr from stderr", "stdout hello"});

  // ExecSync: output, exit codes, the environment, and a timeout.
  auto hi = runtime.ExecSync(*container_id, {"echo", "hi"}, 10s);
  REQUIRE(hi.ok());
  CHECK(hi->stdout_data == "hi\n");
  CHECK(hi->exit_code == 0);
  CHECK_FALSE(hi->timed_out);
  auto three =
      runtime.ExecSync(*container_id, {"sh", "-c", "echo $GREETING; echo e >&2; exit 3"}, 10s);
  REQUIRE(three.ok());
  CHECK(three->stdout_data == "from stderr\n");
  CHECK(three->stderr_data == "e\n");
  CHECK(three->exit_code == 3);
  auto slow = runtime.ExecSync(*container_id, {"sleep", "20"}, 1s);
  REQUIRE(slow.ok());
  CHECK(slow->timed_out);
  CHECK(runtime.ExecSync("no-such-container", {"true"}, 5s).status().code() ==
        orch::StatusCode::kNotFound);

  // Streaming sessions are served by containerd's loopback streaming server.
  cri::StreamOptions interactive;
  interactive.attach_stdin = true;
  auto exec_url = runtime.Exec(*container_id, {"sh"}, interactive);
  REQUIRE(exec_url.ok());
  CHECK_THAT(*exec_url, StartsWith("http://127.0.0.1:"));
  CHECK_THAT(*exec_url, Contains("/exec/"));
  auto attach_url = runtime.Attach(*container_id, {});
  REQUIRE(attach_url.ok());
  CHECK_THAT(*attach_url, Contains("/attach/"));
  auto forward_url = runtime.PortForward(*sandbox_id, {8080});
  REQUIRE(forward_url.ok());
  CHECK_THAT(*forward_url, Contains("/portforward/"));

  // Stats and lists.
  auto stats = runtime.GetContainerStats(*container_id);
  REQUIRE(stats.ok());
  CHECK(stats->id == *container_id);
  CHECK(stats->memory_working_set_bytes > 0);
  CHECK(stats->cpu_usage_core_nanoseconds > 0);
  cri::ContainerStatsFilter stats_filter;
  stats_filter.sandbox_id = *sandbox_id;
  auto all_stats = runtime.ListContainerStats(stats_filter);
  REQUIRE(all_stats.ok());
  CHECK(all_stats->size() == 1);
  cri::ContainerFilter in_pod;
  in_pod.sandbox_id = *sandbox_id;
  auto listed = runtime.ListContainers(in_pod);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().name == "hello");
  CHECK(listed->front().labels.at("orch.test/container") == "hello");
  cri::SandboxFilter labelled;
  labelled.label_selector = {{"orch.test", "runtime"}};
  auto by_label = runtime.ListPodSandboxes(labelled);
  REQUIRE(by_label.ok());
  CHECK(by_label->size() == 1);
  auto fs = runtime.ImageFsInfo();
  REQUIRE(fs.ok());
  REQUIRE_FALSE(fs->empty());
  // (used_bytes lags: containerd sums snapshot sizes on a 10 s timer.)
  CHECK_THAT(fs->front().mountpoint, Contains(data_dir));

  // containerd dies: the supervisor starts it again, the client reconnects by itself, and the
  // container kept running (its shim is not containerd's child).
  pid_t first_pid = containerd->pid();
  REQUIRE(first_pid > 0);
  REQUIRE(::kill(first_pid, SIGKILL) == 0);
  REQUIRE(Eventually([&] { return containerd->starts() == 2 && containerd->pid() > 0; }));
  CHECK(containerd->pid() != first_pid);
  REQUIRE(Eventually([&] { return runtime.GetVersion().ok(); }));
  auto after = runtime.GetContainerStatus(*container_id);
  REQUIRE(after.ok());
  CHECK(after->container.state == cri::ContainerState::kRunning);
  auto hi_again = runtime.ExecSync(*container_id, {"echo", "hi"}, 10s);
  REQUIRE(hi_again.ok());
  CHECK(hi_again->stdout_data == "hi\n");

  // A container over its memory limit is killed by the kernel and reported as OOMKilled
  // (`tail` of a file without newlines buffers it all).
  cri::ContainerConfig hog;
  hog.name = "hog";
  hog.image = "orch.test/busybox:1";
  hog.command = {"tail", "/dev/zero"};
  hog.resources.memory_limit_bytes = 16 << 20;
  auto hog_id = runtime.CreateContainer(*sandbox_id, hog, pod);
  REQUIRE(hog_id.ok());
  REQUIRE(runtime.StartContainer(*hog_id).ok());
  cri::ContainerStatus hog_status;
  REQUIRE(Eventually([&] {
    auto st = runtime.GetContainerStatus(*hog_id);
    if (st.ok()) hog_status = *st;
    return st.ok() && st->container.state == cri::ContainerState::kExited;
  }));
  CHECK(hog_status.reason == "OOMKilled");
  CHECK(hog_status.exit_code == 137);
  REQUIRE(runtime.RemoveContainer(*hog_id).ok());

  // Teardown. sh as PID 1 ignores SIGTERM, so the stop ends with SIGKILL after the grace.
  REQUIRE(runtime.StopContainer(*container_id, 1s).ok());
  auto stopped = runtime.GetContainerStatus(*container_id);
  REQUIRE(stopped.ok());
  CHECK(stopped->container.state == cri::ContainerState::kExited);
  CHECK(stopped->exit_code == 137);
  CHECK(stopped->finished_at >= stopped->started_at);
  CHECK(runtime.StopContainer(*container_id, 1s).ok());  // idempotent
  REQUIRE(runtime.RemoveContainer(*container_id).ok());
  CHECK(runtime.RemoveContainer(*container_id).ok());  // already gone is fine
  CHECK(runtime.GetContainerStatus(*container_id).status().code() == orch::StatusCode::kNotFound);
  REQUIRE(runtime.StopPodSandbox(*sandbox_id).ok());
  REQUIRE(runtime.RemovePodSandbox(*sandbox_id).ok());
  auto none = runtime.ListPodSandboxes({});
  REQUIRE(none.ok());
  CHECK(none->empty());

  // registries.yaml: a mirror for orch.test.mirror at the test's fake registry, with
  // credentials for it. The pull must reach the mirror and answer its Basic challenge.
  if (!registry_log.empty()) {
    auto pulled = runtime.PullImage("orch.test.mirror/library/nothing:1", std::nullopt, nullptr);
    REQUIRE_FALSE(pulled.ok());
    std::string requests = ReadAll(registry_log);
    INFO(requests);
    CHECK_THAT(requests, Contains("/v2/library/nothing/manifests/1?ns=orch.test.mirror auth=-"));
    // "orch-user:orch-pass" in base64.
    CHECK_THAT(requests, Contains("/v2/library/nothing/manifests/1?ns=orch.test.mirror auth=Basic "
                                  "b3JjaC11c2VyOm9yY2gtcGFzcw=="));
    // The "*" mirror (containerd's _default hosts folder) catches every other registry.
    auto other = runtime.PullImage("other.invalid/library/thing:2", std::nullopt, nullptr);
    REQUIRE_FALSE(other.ok());
    requests = ReadAll(registry_log);
    CHECK_THAT(requests, Contains("/v2/library/thing/manifests/2?ns=other.invalid"));
  }

  // Stop: containerd goes away, and the socket no longer answers.
  pid_t last_pid = containerd->pid();
  containerd->Stop();
  CHECK(containerd->pid() == -1);
  CHECK(::kill(last_pid, 0) != 0);
  CHECK(runtime.GetVersion().status().code() == orch::StatusCode::kUnavailable);
  cleanup.containerd = nullptr;
}
