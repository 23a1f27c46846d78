// The HTTPS ApiClient against a real `orch server --disable-agent` (started here on a free port,
// killed at exit even on failure): verbs, error mapping, paging, patches, watches, informers.
#include "orch/api_client.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "kubeconfig_credentials.h"
#include "orch/informer.h"
#include "orch/pki.h"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
namespace resources = orch::resources;
namespace fs = std::filesystem;

const std::string kNs = "client-e2e";

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A temp dir, removed with everything in it.
struct TempDir {
  fs::path path;
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

// A child in its own process group, terminated (the whole group) when this goes away.
struct ChildProcess {
  pid_t pid = -1;
  ~ChildProcess() {
    if (pid <= 0) return;
    kill(-pid, SIGTERM);
    int status = 0;
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      gone = waitpid(pid, &status, WNOHANG) != 0;  // exited, or already reaped
      if (!gone) std::this_thread::sleep_for(50ms);
    }
    if (!gone) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
  }
};

// `orch server` with credentials from the kubeconfig it writes, shared by every test case. The
// members kill it and remove its dir at exit, also when starting it fails half-way; should this
// test die first, PR_SET_PDEATHSIG kills it.
class Server {
 public:
  static Server& Get() {
    // One attempt: after a failed start every test fails at once instead of waiting again.
    static bool attempted = false;
    if (attempted) REQUIRE(Started());
    attempted = true;
    static Server server;
    Started() = true;
    return server;
  }

  static bool& Started() {
    static bool started = false;
    return started;
  }

  const orch::HttpsClientOptions& options() const { return options_; }
  std::string Log() const { return ReadFile(dir_.path / "server.log"); }

  std::unique_ptr<orch::ApiClient> NewClient() const {
    auto client = orch::NewHttpsApiClient(options_);
    REQUIRE(client.ok());
    return std::move(*client);
  }

 private:
  Server() {
    const char* binary = std::getenv("ORCH_BINARY");
    std::string orch = binary != nullptr ? binary : ORCH_BINARY;
    char tmpl[] = "/tmp/orch-e2e-api-client.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir_.path = tmpl;
    int port = FreePort();
    const fs::path kubeconfig = dir_.path / "kubeconfig";
    const std::string log = (dir_.path / "server.log").string();
    const std::string data = (dir_.path / "data").string(), port_text = std::to_string(port),
                      kc = kubeconfig.string();
    const pid_t parent = getpid();
    server_.pid = fork();
    REQUIRE(server_.pid >= 0);
    if (server_.pid == 0) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);  // the test died before prctl
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(orch.c_str(), orch.c_str(), "server", "--disable-agent", "--data-dir", data.c_str(),
            "--https-listen-port", port_text.c_str(), "--write-kubeconfig", kc.c_str(), nullptr);
      _exit(127);
    }
    setpgid(server_.pid, server_.pid);
    // The kubeconfig appears once the credentials exist; the API answers a little later.
    for (int i = 0; i < 600 && options_.server_url.empty(); ++i) {
      options_ = orch::testing::KubeconfigCredentials(kubeconfig.string());
      if (options_.server_url.empty()) {
        int status = 0;
        INFO(Log());
        REQUIRE(waitpid(server_.pid, &status, WNOHANG) == 0);  // still running
        std::this_thread::sleep_for(100ms);
      }
    }
    INFO(Log());
    REQUIRE(!options_.server_url.empty());
    options_.user_agent = "orch-e2e";
    options_.field_manager = "orch-e2e";
    auto client = NewClient();
    bool ready = false;
    for (int i = 0; i < 600 && !ready; ++i) {
      ready = client->Get(resources::kNamespaces, "", "default").ok();
      if (!ready) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(ready);
    json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNs}}}};
    REQUIRE(client->Create(resources::kNamespaces, "", ns).ok());
  }

  TempDir dir_;
  ChildProcess server_;  // after dir_: stopped before the dir goes
  orch::HttpsClientOptions options_;
};

json ConfigMap(const std::string& name, const std::string& value = "1") {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", kNs}, {"labels", {{"suite", "e2e"}}}}},
          {"data", {{"v", value}}}};
}

std::string Rv(const json& object) {
  return object["metadata"]["resourceVersion"];
}

// Collects a watch's events and its end, for the test thread to wait on.
class Collector {
 public:
  orch::WatchHandler Handler() {
    orch::WatchHandler h;
    h.on_event = [this](orch::WatchEvent e) {
      std::lock_guard lock(mu_);
      if (e.type == orch::WatchEvent::Type::kBookmark) return;
      const char* names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
      events_.push_back(std::string(names[static_cast<int>(e.type)]) + " " +
                        e.object["metadata"].value("name", ""));
      cv_.notify_all();
    };
    h.on_end = [this](orch::Status s) {
      std::lock_guard lock(mu_);
      end_ = s;
      cv_.notify_all();
    };
    return h;
  }

  // Waits up to 20 s for `n` events.
  std::vector<std::string> Events(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 20s, [&] { return events_.size() >= n; });
    return events_;
  }
  std::optional<orch::Status> End() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 20s, [&] { return end_.has_value(); });
    return end_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
  std::optional<orch::Status> end_;
};

using Lines = std::vector<std::string>;

}  // namespace

TEST_CASE("Create, get, update, delete and their errors") {
  auto client = Server::Get().NewClient();
  auto created = client->Create(resources::kConfigMaps, kNs, ConfigMap("basic"));
  REQUIRE(created.ok());
  CHECK(!(*created)["metadata"].value("uid", "").empty());
  CHECK(!Rv(*created).empty());

  auto again = client->Create(resources::kConfigMaps, kNs, ConfigMap("basic"));
  CHECK(again.status().code() == orch::StatusCode::kAlreadyExists);
  CHECK(again.status().message().find("already exists") != std::string::npos);

  auto got = client->Get(resources::kConfigMaps, kNs, "basic");
  REQUIRE(got.ok());
  CHECK(Rv(*got) == Rv(*created));
  auto missing = client->Get(resources::kConfigMaps, kNs, "nope");
  CHECK(missing.status().code() == orch::StatusCode::kNotFound);
  CHECK(missing.status().message() == "configmaps \"nope\" not found");

  json changed = *got;
  changed["data"]["v"] = "2";
  auto updated = client->Update(resources::kConfigMaps, kNs, changed);
  REQUIRE(updated.ok());
  CHECK((*updated)["data"]["v"] == "2");
  changed["data"]["v"] = "3";  // still carries the old resourceVersion
  auto stale = client->Update(resources::kConfigMaps, kNs, changed);
  CHECK(stale.status().code() == orch::StatusCode::kConflict);

  auto invalid = client->Create(resources::kConfigMaps, kNs, ConfigMap("Not_A_Name"));
  CHECK(invalid.status().code() == orch::StatusCode::kInvalidArgument);

  orch::WriteOptions dry;
  dry.dry_run = true;
  REQUIRE(client->Create(resources::kConfigMaps, kNs, ConfigMap("dry"), dry).ok());
  CHECK(client->Get(resources::kConfigMaps, kNs, "dry").status().code() ==
        orch::StatusCode::kNotFound);

  json generated = ConfigMap("");
  generated["metadata"].erase("name");
  generated["metadata"]["generateName"] = "gen-";
  auto gen = client->Create(resources::kConfigMaps, kNs, generated);
  REQUIRE(gen.ok());
  CHECK((*gen)["metadata"]["name"].get<std::string>().rfind("gen-", 0) == 0);

  // Gone at once: null. Held by a finalizer: the object, with its deletionTimestamp.
  auto deleted = client->Delete(resources::kConfigMaps, kNs, "basic");
  REQUIRE(deleted.ok());
  CHECK(deleted->is_null());
  CHECK(client->Delete(resources::kConfigMaps, kNs, "basic").status().code() ==
        orch::StatusCode::kNotFound);
  json held = ConfigMap("held");
  held["metadata"]["finalizers"] = {"example.com/hold"};
  REQUIRE(client->Create(resources::kConfigMaps, kNs, held).ok());
  auto pending = client->Delete(resources::kConfigMaps, kNs, "held");
  REQUIRE(pending.ok());
  REQUIRE(pending->is_object());
  CHECK((*pending)["metadata"].contains("deletionTimestamp"));
  REQUIRE(client
              ->Patch(resources::kConfigMaps, kNs, "held", orch::PatchType::kMerge,
                      R"({"metadata":{"finalizers":null}})")
              .ok());
  CHECK(client->Get(resources::kConfigMaps, kNs, "held").status().code() ==
        orch::StatusCode::kNotFound);

  orch::DeleteOptions precondition;
  precondition.precondition_resource_version = "1";
  CHECK(client->Delete(resources::kConfigMaps, kNs, (*gen)["metadata"]["name"], precondition)
            .status()
            .code() == orch::StatusCode::kConflict);
}

TEST_CASE("Every patch type") {
  auto client = Server::Get().NewClient();
  REQUIRE(client->Create(resources::kConfigMaps, kNs, ConfigMap("patched")).ok());
  auto merge = client->Patch(resources::kConfigMaps, kNs, "patched", orch::PatchType::kMerge,
                             R"({"data":{"merge":"yes"}})");
  REQUIRE(merge.ok());
  CHECK((*merge)["data"]["merge"] == "yes");
  auto json_patch = client->Patch(resources::kConfigMaps, kNs, "patched", orch::PatchType::kJson,
                                  R"([{"op":"replace","path":"/data/v","value":"json"}])");
  REQUIRE(json_patch.ok());
  CHECK((*json_patch)["data"]["v"] == "json");
  auto strategic = client->Patch(resources::kConfigMaps, kNs, "patched",
                                 orch::PatchType::kStrategicMerge, R"({"data":{"smp":"yes"}})");
  REQUIRE(strategic.ok());
  CHECK((*strategic)["data"]["smp"] == "yes");
  orch::WriteOptions apply;
  apply.force = true;
  auto applied = client->Patch(resources::kConfigMaps, kNs, "applied", orch::PatchType::kApply,
                               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n"
                               "data:\n  v: applied\n",
                               "", apply);
  REQUIRE(applied.ok());
  CHECK((*applied)["data"]["v"] == "applied");
  bool managed_by_us = false;
  for (const json& entry : (*applied)["metadata"]["managedFields"]) {
    managed_by_us = managed_by_us || entry.value("manager", "") == "orch-e2e";
  }
  CHECK(managed_by_us);
  auto bad = client->Patch(resources::kConfigMaps, kNs, "patched", orch::PatchType::kJson,
                           R"([{"op":"test","path":"/data/v","value":"other"}])");
  CHECK_FALSE(bad.ok());
  CHECK(client->Patch(resources::kConfigMaps, kNs, "nope", orch::PatchType::kMerge, "{}")
            .status()
            .code() == orch::StatusCode::kNotFound);
}

TEST_CASE("Lists come in pages and honour selectors") {
  auto client = Server::Get().NewClient();
  for (int i = 0; i < 7; ++i) {
    json cm = ConfigMap("paged-" + std::to_string(i));
    cm["metadata"]["labels"]["page"] = "yes";
    REQUIRE(client->Create(resources::kConfigMaps, kNs, cm).ok());
  }
  orch::ListOptions options;
  options.label_selector = "page=yes";
  options.limit = 3;
  std::vector<size_t> pages;
  std::vector<std::string> names;
  do {
    auto page = client->List(resources::kConfigMaps, kNs, options);
    REQUIRE(page.ok());
    CHECK(!page->resource_version.empty());
    pages.push_back(page->items.size());
    for (const json& item : page->items) {
      names.push_back(item["metadata"]["name"]);
      CHECK(item["kind"] == "ConfigMap");
      CHECK(item["apiVersion"] == "v1");
    }
    options.continue_token = page->continue_token;
  } while (!options.continue_token.empty());
  CHECK(pages == std::vector<size_t>{3, 3, 1});
  CHECK(names.size() == 7);

  orch::ListOptions by_field;
  by_field.field_selector = "metadata.name=paged-4";
  auto one = client->List(resources::kConfigMaps, kNs, by_field);
  REQUIRE(one.ok());
  REQUIRE(one->items.size() == 1);
  CHECK(one->items[0]["metadata"]["name"] == "paged-4");

  orch::ListOptions bad;
  bad.label_selector = "a in (";
  CHECK(client->List(resources::kConfigMaps, kNs, bad).status().code() ==
        orch::StatusCode::kInvalidArgument);
}

TEST_CASE("Pods: binding through Post, graceful deletion returns the object") {
  auto client = Server::Get().NewClient();
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "bound"}, {"namespace", kNs}}},
              // Bound by this test alone: the server's scheduler leaves it alone.
              {"spec",
               {{"schedulerName", "e2e-no-scheduler"},
                {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
  REQUIRE(client->Create(resources::kPods, kNs, pod).ok());
  json binding = {{"apiVersion", "v1"},
                  {"kind", "Binding"},
                  {"metadata", {{"name", "bound"}}},
                  {"target", {{"kind", "Node"}, {"name", "node-1"}}}};
  auto bound = client->Post(resources::kPods, kNs, "bound", "binding", binding);
  INFO(bound.status().ToString());
  REQUIRE(bound.ok());
  CHECK(client->Post(resources::kPods, kNs, "bound", "binding", binding).status().code() ==
        orch::StatusCode::kConflict);
  auto got = client->Get(resources::kPods, kNs, "bound");
  REQUIRE(got.ok());
  CHECK((*got)["spec"]["nodeName"] == "node-1");

  auto terminating = client->Delete(resources::kPods, kNs, "bound");
  REQUIRE(terminating.ok());
  REQUIRE(terminating->is_object());
  CHECK((*terminating)["metadata"].contains("deletionTimestamp"));
  orch::DeleteOptions now;
  now.grace_period_seconds = 0;
  auto gone = client->Delete(resources::kPods, kNs, "bound", now);
  REQUIRE(gone.ok());
  CHECK(gone->is_null());
}

TEST_CASE("Concurrent calls share the connection pool") {
  auto client = Server::Get().NewClient();
  REQUIRE(client->Create(resources::kConfigMaps, kNs, ConfigMap("shared")).ok());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (client->Get(resources::kConfigMaps, kNs, "shared").ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 200);
}

TEST_CASE("TLS: the server must prove itself with the cluster CA and its names") {
  orch::HttpsClientOptions options = Server::Get().options();
  auto other_ca = orch::pki::CreateCA("someone-else");
  REQUIRE(other_ca.ok());
  options.ca_pem = other_ca->cert_pem;
  auto client = orch::NewHttpsApiClient(options);
  REQUIRE(client.ok());
  auto got = (*client)->Get(resources::kNamespaces, "", "default");
  CHECK(got.status().code() == orch::StatusCode::kUnavailable);
  CHECK(got.status().message().find("certificate verify failed") != std::string::npos);

  // localhost is one of the certificate's names too.
  options = Server::Get().options();
  std::string url = options.server_url;
  options.server_url = "https://localhost" + url.substr(url.rfind(':'));
  auto by_name = orch::NewHttpsApiClient(options);
  REQUIRE(by_name.ok());
  CHECK((*by_name)->Get(resources::kNamespaces, "", "default").ok());

  orch::HttpsClientOptions plain = options;
  plain.server_url = "http://127.0.0.1:1";
  CHECK(orch::NewHttpsApiClient(plain).status().code() == orch::StatusCode::kInvalidArgument);
  options.cert_pem = "not a certificate";
  CHECK(orch::NewHttpsApiClient(options).status().code() == orch::StatusCode::kInvalidArgument);
}

TEST_CASE("Watches deliver ADDED, MODIFIED, DELETED in order and stop cleanly") {
  auto client = Server::Get().NewClient();
  orch::ListOptions only_watched;
  only_watched.label_selector = "watched=yes";
  auto list = client->List(resources::kConfigMaps, kNs, only_watched);
  REQUIRE(list.ok());

  Collector events;
  orch::WatchOptions options;
  options.label_selector = "watched=yes";
  options.resource_version = list->resource_version;
  auto watch = client->StartWatch(resources::kConfigMaps, kNs, options, events.Handler());
  REQUIRE(watch.ok());

  json cm = ConfigMap("w1");
  cm["metadata"]["labels"]["watched"] = "yes";
  REQUIRE(client->Create(resources::kConfigMaps, kNs, cm).ok());
  REQUIRE(client
              ->Patch(resources::kConfigMaps, kNs, "w1", orch::PatchType::kMerge,
                      R"({"data":{"v":"2"}})")
              .ok());
  REQUIRE(client->Delete(resources::kConfigMaps, kNs, "w1").ok());
  CHECK(events.Events(3) == Lines{"ADDED w1", "MODIFIED w1", "DELETED w1"});

  // After Stop nothing more arrives: a second watch sees the next change, the first does not.
  (*watch)->Stop();
  Collector second;
  options.resource_version = "";  // from now
  auto watch2 = client->StartWatch(resources::kConfigMaps, kNs, options, second.Handler());
  REQUIRE(watch2.ok());
  cm["metadata"]["name"] = "w2";
  REQUIRE(client->Create(resources::kConfigMaps, kNs, cm).ok());
  CHECK(second.Events(1) == Lines{"ADDED w2"});
  CHECK(events.Events(0).size() == 3);
  (*watch2)->Stop();
}

TEST_CASE("A watch can be stopped from its own callback") {
  auto client = Server::Get().NewClient();
  std::mutex mu;
  std::condition_variable cv;
  std::unique_ptr<orch::Watch> watch;  // guarded by mu
  int calls = 0;                       // guarded by mu
  orch::WatchHandler handler;
  handler.on_event = [&](orch::WatchEvent) {
    std::lock_guard lock(mu);
    ++calls;
    if (watch) watch->Stop();
    cv.notify_all();
  };
  orch::WatchOptions options;
  options.label_selector = "selfstop=yes";
  auto started = client->StartWatch(resources::kConfigMaps, kNs, options, handler);
  REQUIRE(started.ok());
  {
    std::lock_guard lock(mu);
    watch = std::move(*started);
  }
  for (const char* name : {"s1", "s2"}) {
    json cm = ConfigMap(name);
    cm["metadata"]["labels"]["selfstop"] = "yes";
    REQUIRE(client->Create(resources::kConfigMaps, kNs, cm).ok());
  }
  std::unique_lock lock(mu);
  cv.wait_for(lock, 20s, [&] { return calls > 0; });
  CHECK(calls == 1);
  watch.reset();
}

TEST_CASE("Watches end with OK at their timeout and with kCompacted when too old") {
  auto client = Server::Get().NewClient();
  Collector timed;
  orch::WatchOptions options;
  options.timeout_seconds = 1;
  auto watch = client->StartWatch(resources::kConfigMaps, kNs, options, timed.Handler());
  REQUIRE(watch.ok());
  auto end = timed.End();
  REQUIRE(end.has_value());
  CHECK(end->ok());

  // Revision 1 is older than what the server keeps for watches: 410, re-list.
  Collector old;
  options.timeout_seconds = 0;
  options.resource_version = "1";
  auto too_old = client->StartWatch(resources::kConfigMaps, kNs, options, old.Handler());
  if (too_old.ok()) {
    auto old_end = old.End();
    REQUIRE(old_end.has_value());
    CHECK(old_end->code() == orch::StatusCode::kCompacted);
  } else {
    CHECK(too_old.status().code() == orch::StatusCode::kCompacted);
  }
}

TEST_CASE("An informer over the HTTPS client follows the collection") {
  auto client = Server::Get().NewClient();
  json cm = ConfigMap("inf-1");
  cm["metadata"]["labels"]["informed"] = "yes";
  REQUIRE(client->Create(resources::kConfigMaps, kNs, cm).ok());
  auto factory = orch::InformerFactory::Create(*client);
  orch::Informer& informer = factory->For(resources::kConfigMaps, kNs, "informed=yes");
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> seen;  // guarded by mu
  orch::InformerHandler handler;
  auto push = [&](std::string line) {
    std::lock_guard lock(mu);
    seen.push_back(std::move(line));
    cv.notify_all();
  };
  handler.on_add = [&](const orch::ObjectPtr& o) { push("add " + orch::ObjectKey(*o)); };
  handler.on_update = [&](const orch::ObjectPtr&, const orch::ObjectPtr& o) {
    push("update " + orch::ObjectKey(*o) + " " + (*o)["data"].value("v", ""));
  };
  handler.on_delete = [&](const orch::ObjectPtr& o) { push("delete " + orch::ObjectKey(*o)); };
  informer.AddHandler(handler);
  factory->Start();
  REQUIRE(factory->WaitForSync(20s));
  REQUIRE(informer.Get(kNs, "inf-1") != nullptr);

  cm["metadata"]["name"] = "inf-2";
  REQUIRE(client->Create(resources::kConfigMaps, kNs, cm).ok());
  REQUIRE(client
              ->Patch(resources::kConfigMaps, kNs, "inf-1", orch::PatchType::kMerge,
                      R"({"data":{"v":"9"}})")
              .ok());
  REQUIRE(client->Delete(resources::kConfigMaps, kNs, "inf-2").ok());
  std::unique_lock lock(mu);
  cv.wait_for(lock, 20s, [&] { return seen.size() >= 4; });
  CHECK(seen == Lines{"add client-e2e/inf-1", "add client-e2e/inf-2", "update client-e2e/inf-1 9",
                      "delete client-e2e/inf-2"});
  lock.unlock();
  CHECK((*informer.Get(kNs, "inf-1"))["data"]["v"] == "9");
  CHECK(informer.List(kNs).size() == 1);
  factory->Stop();
}
