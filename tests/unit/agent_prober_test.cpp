// The node agent's probes and lifecycle hooks: probe settings and ports, the exec, HTTP and TCP
// actions against a fake runtime and local sockets, the probe manager's result rules with a
// manual clock, and the hooks' upstream error wording.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "fake_runtime.h"
#include "handlers.h"
#include "lifecycle.h"
#include "prober.h"

using json = nlohmann::json;
using namespace orch::agent;
using std::chrono::seconds;

namespace {

class RecordingEvents : public orch::EventRecorder {
 public:
  void Record(const json& involved, const std::string& type, const std::string& reason,
              const std::string& message) override {
    std::lock_guard lock(mu_);
    events_.push_back(type + " " + reason + ": " + message);
    paths_.push_back(involved.value("fieldPath", ""));
  }
  void Stop() override {}
  std::vector<std::string> All() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::vector<std::string> Paths() {
    std::lock_guard lock(mu_);
    return paths_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> events_;
  std::vector<std::string> paths_;
};

// A loopback listener that answers each connection with `response` and keeps the requests.
class TinyHttpServer {
 public:
  explicit TinyHttpServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    REQUIRE(::listen(fd_, 8) == 0);
    thread_ = std::thread([this] {
      while (true) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::read(c, buf, sizeof buf);
          if (n <= 0) break;
          request.append(buf, static_cast<size_t>(n));
        }
        {
          std::lock_guard lock(mu_);
          requests_.push_back(request);
        }
        (void)::write(c, response_.data(), response_.size());
        ::close(c);
      }
    });
  }
  ~TinyHttpServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::string LastRequest() {
    std::lock_guard lock(mu_);
    return requests_.empty() ? "" : requests_.back();
  }

 private:
  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

// A port on loopback that nothing listens on.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

json PodWith(json container) {
  return {{"metadata", {{"name", "p"}, {"namespace", "default"}, {"uid", "u1"}}},
          {"spec", {{"containers", json::array({std::move(container)})}}}};
}

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("probe settings default as upstream's") {
  auto s = ProbeSettingsOf(json::object(), ProbeType::kReadiness);
  CHECK(s.initial_delay_seconds == 0);
  CHECK(s.period_seconds == 10);
  CHECK(s.timeout_seconds == 1);
  CHECK(s.success_threshold == 1);
  CHECK(s.failure_threshold == 3);
  CHECK_FALSE(s.termination_grace_seconds);
  auto l = ProbeSettingsOf({{"periodSeconds", 2},
                            {"successThreshold", 4},
                            {"failureThreshold", 1},
                            {"initialDelaySeconds", 5},
                            {"terminationGracePeriodSeconds", 7}},
                           ProbeType::kLiveness);
  CHECK(l.period_seconds == 2);
  CHECK(l.success_threshold == 1);  // liveness and startup: always 1
  CHECK(l.failure_threshold == 1);
  CHECK(l.initial_delay_seconds == 5);
  CHECK(*l.termination_grace_seconds == 7);
  CHECK(ProbeUserAgent().rfind("kube-probe/1.", 0) == 0);
}

TEST_CASE("ports by number or by container port name") {
  json c = {{"ports", json::array({{{"name", "http"}, {"containerPort", 8080}}})}};
  CHECK(*ResolvePort(80, c) == 80);
  CHECK(*ResolvePort("8081", c) == 8081);
  CHECK(*ResolvePort("http", c) == 8080);
  CHECK_FALSE(ResolvePort("metrics", c).ok());
  CHECK_FALSE(ResolvePort(0, c).ok());
  CHECK_FALSE(ResolvePort(70000, c).ok());
  CHECK_FALSE(ResolvePort(nullptr, c).ok());
}

TEST_CASE("exec action: exit code, output, timeout, runtime errors") {
  orch::testing::FakeRuntime runtime;
  runtime.SetExecHandler([](const auto& call) -> orch::Result<orch::cri::ExecSyncResult> {
    if (call.cmd[0] == "fail") return orch::cri::ExecSyncResult{"out\n", "err\n", 1, false};
    if (call.cmd[0] == "slow") return orch::cri::ExecSyncResult{"", "", -1, true};
    if (call.cmd[0] == "gone") return orch::NotFound("container c1 not found");
    return orch::cri::ExecSyncResult{"fine", "", 0, false};
  });
  auto ok = RunExecAction(runtime, "c1", {{"command", {"true"}}}, seconds(3));
  CHECK(ok.outcome == HandlerOutcome::kSuccess);
  CHECK(runtime.Execs().back().timeout == seconds(3));
  CHECK(runtime.Execs().back().id == "c1");
  auto failed = RunExecAction(runtime, "c1", {{"command", {"fail", "x"}}}, seconds(1));
  CHECK(failed.outcome == HandlerOutcome::kFailure);
  CHECK(failed.output == "out\nerr\n");
  auto slow = RunExecAction(runtime, "c1", {{"command", {"slow", "5"}}}, seconds(1));
  CHECK(slow.outcome == HandlerOutcome::kFailure);
  CHECK(slow.output == "command \"slow 5\" timed out");
  CHECK(RunExecAction(runtime, "c1", {{"command", {"gone"}}}, seconds(1)).outcome ==
        HandlerOutcome::kError);
  CHECK(RunExecAction(runtime, "c1", json::object(), seconds(1)).outcome == HandlerOutcome::kError);
}

TEST_CASE("httpGet action: status ranges, path, headers, refused connections") {
  json container = {{"ports", json::array({{{"name", "web"}, {"containerPort", 1}}})}};
  {
    TinyHttpServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    json action = {{"port", server.port()},
                   {"path", "/healthz?x=1"},
                   {"httpHeaders", json::array({{{"name", "X-Probe"}, {"value", "yes"}}})}};
    auto r = RunHttpGetAction(action, container, "127.0.0.1", seconds(2), ProbeUserAgent());
    CHECK(r.outcome == HandlerOutcome::kSuccess);
    std::string request = server.LastRequest();
    CHECK(request.rfind("GET /healthz?x=1 HTTP/1.1\r\n", 0) == 0);
    CHECK(request.find("X-Probe: yes") != std::string::npos);
    CHECK(request.find("User-Agent: kube-probe/") != std::string::npos);
  }
  {
    TinyHttpServer server("HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n");
    container["ports"][0]["containerPort"] = server.port();
    auto r = RunHttpGetAction({{"port", "web"}}, container, "127.0.0.1", seconds(2), "");
    CHECK(r.outcome == HandlerOutcome::kSuccess);  // 3xx counts as success
  }
  {
    TinyHttpServer server("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    auto r = RunHttpGetAction({{"port", server.port()}}, container, "127.0.0.1", seconds(2), "");
    CHECK(r.outcome == HandlerOutcome::kFailure);
    CHECK(r.output == "HTTP probe failed with statuscode: 500");
  }
  int closed = ClosedPort();
  auto refused =
      RunHttpGetAction({{"port", closed}, {"path", "/x"}}, container, "127.0.0.1", seconds(2), "");
  CHECK(refused.outcome == HandlerOutcome::kFailure);
  CHECK(refused.output.rfind("Get \"http://127.0.0.1:" + std::to_string(closed) + "/x\": ", 0) ==
        0);
  CHECK(RunHttpGetAction({{"port", "nope"}}, container, "127.0.0.1", seconds(1), "").outcome ==
        HandlerOutcome::kError);
}

TEST_CASE("tcpSocket action: open and refused ports") {
  TinyHttpServer server("");
  auto open =
      RunTcpSocketAction({{"port", server.port()}}, json::object(), "127.0.0.1", seconds(2));
  CHECK(open.outcome == HandlerOutcome::kSuccess);
  int closed = ClosedPort();
  auto refused = RunTcpSocketAction({{"port", closed}}, json::object(), "127.0.0.1", seconds(2));
  CHECK(refused.outcome == HandlerOutcome::kFailure);
  CHECK(refused.output ==
        "dial tcp 127.0.0.1:" + std::to_string(closed) + ": connect: connection refused");
}

namespace {

// A manager without threads whose probes answer from `answers` (by probe type name).
struct ProberHarness {
  orch::testing::FakeRuntime runtime;
  RecordingEvents events;
  std::mutex mu;
  std::map<std::string, HandlerResult> answers;
  std::vector<std::string> changes;
  int attempts = 0;
  std::unique_ptr<ProbeManager> manager;
  ProbeManager::Clock::time_point t = ProbeManager::Clock::now();

  ProberHarness() {
    ProbeManager::Options options;
    options.threads = false;
    options.run = [this](const ProbeAttempt& a) {
      std::lock_guard lock(mu);
      ++attempts;
      return answers[ProbeTypeName(a.type)];
    };
    manager = std::make_unique<ProbeManager>(
        runtime, events, [this](const std::string& uid) { changes.push_back(uid); }, options);
  }
  void Answer(const std::string& type, HandlerOutcome outcome, std::string output = "") {
    std::lock_guard lock(mu);
    answers[type] = {outcome, std::move(output)};
  }
  // SyncPod, then the manual clock restarts from now (the manager dates new probes by the real
  // steady clock).
  void Sync(const json& pod, const std::map<std::string, ProbeManager::Running>& running,
            const std::string& ip = "10.42.0.5") {
    manager->SyncPod(pod, running, ip);
    t = ProbeManager::Clock::now();
  }
  // Advances the manual clock by `s` seconds and runs what is due.
  void Tick(int s = 0) {
    t += seconds(s);
    manager->RunDue(t);
  }
};

}  // namespace

TEST_CASE("readiness: starts not ready, follows the thresholds") {
  ProberHarness h;
  json c = {{"name", "app"},
            {"readinessProbe",
             {{"exec", {{"command", {"true"}}}}, {"periodSeconds", 5}, {"successThreshold", 2}}}};
  json pod = PodWith(c);
  h.Sync(pod, {{"app", {"c1", NowNanos()}}}, "10.42.0.5");
  CHECK(h.manager->size() == 1);
  CHECK_FALSE(h.manager->StateOf("u1", c, "c1").ready);
  CHECK(h.manager->StateOf("u1", c, "c1").started);

  h.Answer("Readiness", HandlerOutcome::kSuccess);
  h.Tick();
  CHECK_FALSE(h.manager->StateOf("u1", c, "c1").ready);  // one success of two
  h.Tick(4);
  CHECK(h.attempts == 1);  // not due before the period
  h.Tick(1);
  CHECK(h.attempts == 2);
  CHECK(h.manager->StateOf("u1", c, "c1").ready);
  CHECK(h.changes == std::vector<std::string>{"u1"});

  // Three failures (the default threshold) make it unready again, with an event each time.
  h.Answer("Readiness", HandlerOutcome::kFailure, "not yet");
  h.Tick(5);
  h.Tick(5);
  CHECK(h.manager->StateOf("u1", c, "c1").ready);
  h.Tick(5);
  CHECK_FALSE(h.manager->StateOf("u1", c, "c1").ready);
  CHECK(h.changes.size() == 2);
  auto events = h.events.All();
  REQUIRE(events.size() == 3);
  CHECK(events[0] == "Warning Unhealthy: Readiness probe failed: not yet");
  CHECK(h.events.Paths()[0] == "spec.containers{app}");

  // An errored attempt does not count; it is reported.
  h.Answer("Readiness", HandlerOutcome::kError, "rpc error");
  h.Tick(5);
  CHECK(h.events.All().back() == "Warning Unhealthy: Readiness probe errored: rpc error");

  // Another container instance (a restart) starts over; a stopped container loses its probes.
  h.Sync(pod, {{"app", {"c2", NowNanos()}}}, "10.42.0.5");
  CHECK_FALSE(h.manager->StateOf("u1", c, "c2").ready);
  h.Sync(pod, {}, "10.42.0.5");
  CHECK(h.manager->size() == 0);
}

TEST_CASE("initialDelaySeconds holds the first probe back") {
  ProberHarness h;
  json c = {{"name", "app"},
            {"readinessProbe", {{"tcpSocket", {{"port", 80}}}, {"initialDelaySeconds", 30}}}};
  h.Answer("Readiness", HandlerOutcome::kSuccess);
  h.Sync(PodWith(c), {{"app", {"c1", NowNanos()}}}, "10.42.0.5");
  h.Tick();
  h.Tick(20);
  CHECK(h.attempts == 0);
  h.Tick(11);
  CHECK(h.attempts == 1);
  CHECK(h.manager->StateOf("u1", c, "c1").ready);
}

TEST_CASE("liveness failure asks for a kill once, then holds") {
  ProberHarness h;
  json c = {{"name", "app"},
            {"livenessProbe",
             {{"exec", {{"command", {"false"}}}},
              {"periodSeconds", 1},
              {"failureThreshold", 2},
              {"terminationGracePeriodSeconds", 3}}}};
  h.Sync(PodWith(c), {{"app", {"c1", NowNanos()}}}, "10.42.0.5");
  CHECK_FALSE(h.manager->StateOf("u1", c, "c1").failed);
  CHECK(h.manager->StateOf("u1", c, "c1").ready);  // no readiness probe: ready once running
  h.Answer("Liveness", HandlerOutcome::kFailure, "boom");
  h.Tick();
  CHECK_FALSE(h.manager->StateOf("u1", c, "c1").failed);
  h.Tick(1);
  auto state = h.manager->StateOf("u1", c, "c1");
  REQUIRE(state.failed);
  CHECK(*state.failed == ProbeType::kLiveness);
  CHECK(*state.kill_grace_seconds == 3);
  CHECK(h.changes.size() == 1);
  h.Tick(1);
  h.Tick(1);
  CHECK(h.attempts == 2);  // on hold until the container changes
  CHECK(h.events.All().back() == "Warning Unhealthy: Liveness probe failed: boom");
}

TEST_CASE("startup probe gates liveness and readiness") {
  ProberHarness h;
  json c = {{"name", "app"},
            {"startupProbe", {{"exec", {{"command", {"s"}}}}, {"periodSeconds", 1}}},
            {"livenessProbe", {{"exec", {{"command", {"l"}}}}, {"periodSeconds", 1}}},
            {"readinessProbe", {{"exec", {{"command", {"r"}}}}, {"periodSeconds", 1}}}};
  h.Sync(PodWith(c), {{"app", {"c1", NowNanos()}}}, "10.42.0.5");
  CHECK(h.manager->size() == 3);
  h.Answer("Startup", HandlerOutcome::kFailure, "starting");
  h.Answer("Liveness", HandlerOutcome::kFailure, "dead");
  h.Answer("Readiness", HandlerOutcome::kSuccess);
  h.Tick();
  h.Tick(1);
  auto state = h.manager->StateOf("u1", c, "c1");
  CHECK_FALSE(state.started);
  CHECK_FALSE(state.ready);
  CHECK_FALSE(state.failed);
  CHECK(h.attempts == 2);  // the startup probe only
  h.Answer("Startup", HandlerOutcome::kSuccess);
  h.Tick(1);
  CHECK(h.manager->StateOf("u1", c, "c1").started);
  h.Tick(1);  // now liveness and readiness run; startup is done
  CHECK(h.attempts == 5);
  state = h.manager->StateOf("u1", c, "c1");
  CHECK(state.ready);
  CHECK_FALSE(state.failed);  // one liveness failure of three

  // A startup probe that fails its threshold asks for a kill.
  ProberHarness g;
  json s = {{"name", "app"},
            {"startupProbe",
             {{"exec", {{"command", {"s"}}}}, {"periodSeconds", 1}, {"failureThreshold", 1}}}};
  g.Answer("Startup", HandlerOutcome::kFailure, "never");
  g.Sync(PodWith(s), {{"app", {"c1", NowNanos()}}}, "");
  g.Tick();
  auto failed = g.manager->StateOf("u1", s, "c1");
  REQUIRE(failed.failed);
  CHECK(*failed.failed == ProbeType::kStartup);
  CHECK(g.events.All().back() == "Warning Unhealthy: Startup probe failed: never");
}

TEST_CASE("a probe the manager does not hold yet counts as not passed") {
  ProberHarness h;
  json c = {{"name", "app"},
            {"readinessProbe", {{"exec", {{"command", {"r"}}}}}},
            {"startupProbe", {{"exec", {{"command", {"s"}}}}}}};
  auto state = h.manager->StateOf("u1", c, "c1");
  CHECK_FALSE(state.ready);
  CHECK_FALSE(state.started);
  json plain = {{"name", "app"}};
  CHECK(h.manager->StateOf("u1", plain, "c1").ready);
}

TEST_CASE("the threaded manager probes on its own and reports changes") {
  orch::testing::FakeRuntime runtime;
  RecordingEvents events;
  std::mutex mu;
  std::condition_variable cv;
  int changes = 0;
  ProbeManager manager(runtime, events, [&](const std::string&) {
    std::lock_guard lock(mu);
    ++changes;
    cv.notify_all();
  });
  json c = {{"name", "app"}, {"readinessProbe", {{"exec", {{"command", {"true"}}}}}}};
  manager.SyncPod(PodWith(c), {{"app", {"c1", NowNanos()}}}, "10.42.0.5");
  std::unique_lock lock(mu);
  REQUIRE(cv.wait_for(lock, seconds(10), [&] { return changes > 0; }));
  CHECK(manager.StateOf("u1", c, "c1").ready);
  CHECK(runtime.Execs().at(0).cmd == std::vector<std::string>{"true"});
  CHECK(runtime.Execs().at(0).timeout == seconds(1));
}

TEST_CASE("lifecycle hooks: exec, httpGet, sleep and their failure messages") {
  orch::testing::FakeRuntime runtime;
  runtime.SetExecHandler([](const auto& call) -> orch::Result<orch::cri::ExecSyncResult> {
    if (call.cmd.back() == "exit 1") return orch::cri::ExecSyncResult{"", "oops\n", 1, false};
    return orch::cri::ExecSyncResult{};
  });
  json container = {{"name", "app"}};
  json pod = PodWith(container);
  CHECK(RunLifecycleHook(runtime, pod, container, {{"exec", {{"command", {"sh", "-c", "true"}}}}},
                         "c1", "", seconds(0))
            .ok());
  auto failed =
      RunLifecycleHook(runtime, pod, container, {{"exec", {{"command", {"sh", "-c", "exit 1"}}}}},
                       "c1", "", seconds(5));
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.message() ==
        "Exec lifecycle hook ([sh -c exit 1]) for Container \"app\" in Pod \"p_default(u1)\" "
        "failed - error: command 'sh -c exit 1' exited with 1: oops\n, message: \"oops\\n\"");
  CHECK(runtime.Execs().back().timeout == seconds(5));

  TinyHttpServer server("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
  CHECK(RunLifecycleHook(runtime, pod, container,
                         {{"httpGet", {{"port", server.port()}, {"path", "/stop"}}}}, "c1",
                         "127.0.0.1", seconds(2))
            .ok());
  CHECK(server.LastRequest().rfind("GET /stop ", 0) == 0);
  auto refused = RunLifecycleHook(runtime, pod, container,
                                  {{"httpGet", {{"port", ClosedPort()}, {"path", "/stop"}}}}, "c1",
                                  "127.0.0.1", seconds(2));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.message().rfind(
            "HTTP lifecycle hook (/stop) for Container \"app\" in Pod \"p_default(u1)\" failed - "
            "error: Get \"http://127.0.0.1:",
            0) == 0);
  CHECK(
      RunLifecycleHook(runtime, pod, container, {{"sleep", {{"seconds", 0}}}}, "c1", "", seconds(1))
          .ok());
}
