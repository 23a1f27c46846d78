// Server-side tables: column definitions and the cells of representative objects, compared with
// what upstream's printers produce (the strings `kubectl get -o wide` shows), plus HumanDuration,
// timestamps, JSONPath and CRD printer columns.
#include "tables.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

using orch::api::BuildCustomResourceTable;
using orch::api::BuildTable;
using orch::api::HumanDuration;
using orch::api::IncludeObject;
using orch::api::json;

namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// 2024-05-01T12:00:00Z, the clock of every table below.
std::chrono::system_clock::time_point Now() {
  return std::chrono::system_clock::time_point(seconds(1714564800));
}

json Table(const std::string& resource, const std::string& group, const std::vector<json>& objects,
           IncludeObject include = IncludeObject::kMetadata) {
  std::vector<const json*> ptrs;
  for (const json& o : objects) ptrs.push_back(&o);
  orch::Result<json> t = BuildTable(resource, group, ptrs, include, Now());
  REQUIRE(t.ok());
  return *t;
}

json Cells(const std::string& resource, const std::string& group, const json& object) {
  json t = Table(resource, group, {object});
  REQUIRE(t["rows"].size() == 1);
  return t["rows"][0]["cells"];
}

std::vector<std::string> ColumnNames(const json& table, int priority = -1) {
  std::vector<std::string> names;
  for (const json& c : table["columnDefinitions"]) {
    if (priority < 0 || c["priority"] == priority) names.push_back(c["name"]);
  }
  return names;
}

json Meta(const std::string& name, const std::string& created, const std::string& ns = "default") {
  json m = {{"name", name}, {"creationTimestamp", created}, {"uid", "uid-" + name}};
  if (!ns.empty()) m["namespace"] = ns;
  return m;
}

json Running(bool ready, int restarts = 0) {
  return {{"name", "c"},
          {"ready", ready},
          {"restartCount", restarts},
          {"state", {{"running", {{"startedAt", "2024-05-01T11:00:00Z"}}}}}};
}

}  // namespace

TEST_CASE("HumanDuration matches duration.HumanDuration") {
  CHECK(HumanDuration(seconds(0)) == "0s");
  CHECK(HumanDuration(seconds(5)) == "5s");
  CHECK(HumanDuration(seconds(119)) == "119s");
  CHECK(HumanDuration(seconds(120)) == "2m");
  CHECK(HumanDuration(seconds(182)) == "3m2s");
  CHECK(HumanDuration(minutes(10)) == "10m");
  CHECK(HumanDuration(minutes(179)) == "179m");
  CHECK(HumanDuration(minutes(180)) == "3h");
  CHECK(HumanDuration(minutes(330)) == "5h30m");
  CHECK(HumanDuration(hours(8)) == "8h");
  CHECK(HumanDuration(hours(47)) == "47h");
  CHECK(HumanDuration(hours(48)) == "2d");
  CHECK(HumanDuration(hours(51)) == "2d3h");
  CHECK(HumanDuration(hours(191)) == "7d23h");
  CHECK(HumanDuration(hours(192)) == "8d");
  CHECK(HumanDuration(hours(24 * 45)) == "45d");
  CHECK(HumanDuration(hours(24 * 729)) == "729d");
  CHECK(HumanDuration(hours(24 * 730)) == "2y");
  CHECK(HumanDuration(hours(24 * 775)) == "2y45d");
  CHECK(HumanDuration(hours(24 * 365 * 8)) == "8y");
  CHECK(HumanDuration(hours(24 * 365 * 30)) == "30y");
  CHECK(HumanDuration(std::chrono::milliseconds(-1500)) == "0s");
  CHECK(HumanDuration(seconds(-2)) == "<invalid>");
}

TEST_CASE("Pod tables have upstream's columns and cells") {
  json pod = {{"metadata", Meta("web-1", "2024-05-01T11:55:00Z")},
              {"spec",
               {{"nodeName", "node-a"},
                {"containers",
                 {{{"name", "a"}, {"image", "nginx"}}, {{"name", "b"}, {"image", "busybox"}}}}}},
              {"status",
               {{"phase", "Running"},
                {"podIP", "10.42.0.5"},
                {"podIPs", {{{"ip", "10.42.0.5"}}}},
                {"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
                {"containerStatuses", {Running(true), Running(true)}}}}};
  json t = Table("pods", "", {pod});
  CHECK(t["kind"] == "Table");
  CHECK(t["apiVersion"] == "meta.k8s.io/v1");
  CHECK(t["metadata"] == json::object());
  CHECK(ColumnNames(t) == std::vector<std::string>{"Name", "Ready", "Status", "Restarts", "Age",
                                                   "IP", "Node", "Nominated Node",
                                                   "Readiness Gates"});
  CHECK(ColumnNames(t, 1) ==
        std::vector<std::string>{"IP", "Node", "Nominated Node", "Readiness Gates"});
  const json& name_col = t["columnDefinitions"][0];
  CHECK(name_col["format"] == "name");
  CHECK(name_col["type"] == "string");
  CHECK(
      std::string(name_col["description"]).starts_with("Name must be unique within a namespace."));
  CHECK(t["columnDefinitions"][3]["description"] ==
        "The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.");
  CHECK(t["columnDefinitions"][5]["description"] ==
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not "
        "yet allocated.");

  const json& row = t["rows"][0];
  CHECK(row["cells"] ==
        json({"web-1", "2/2", "Running", "0", "5m", "10.42.0.5", "node-a", "<none>", "<none>"}));
  CHECK_FALSE(row.contains("conditions"));
  CHECK(row["object"]["kind"] == "PartialObjectMetadata");
  CHECK(row["object"]["apiVersion"] == "meta.k8s.io/v1");
  CHECK(row["object"]["metadata"] == pod["metadata"]);

  CHECK(Table("pods", "", {pod}, IncludeObject::kObject)["rows"][0]["object"] == pod);
  CHECK(Table("pods", "", {pod}, IncludeObject::kNone)["rows"][0]["object"].is_null());
}

TEST_CASE("Pod STATUS and RESTARTS cells follow printPod") {
  auto pod = [](json spec, json status, json extra_meta = json::object()) {
    json meta = Meta("p", "2024-05-01T09:00:00Z");
    meta.update(extra_meta);
    return json{{"metadata", meta}, {"spec", spec}, {"status", status}};
  };
  json one_container = {{"containers", {{{"name", "c"}, {"image", "busybox"}}}}};

  SECTION("crash-looping") {
    json status = {
        {"phase", "Running"},
        {"containerStatuses",
         {{{"name", "c"},
           {"ready", false},
           {"restartCount", 5},
           {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}},
           {"lastState",
            {{"terminated",
              {{"exitCode", 1}, {"reason", "Error"}, {"finishedAt", "2024-05-01T11:58:00Z"}}}}}}}}};
    json cells = Cells("pods", "", pod(one_container, status));
    CHECK(cells[1] == "0/1");
    CHECK(cells[2] == "CrashLoopBackOff");
    CHECK(cells[3] == "5 (2m ago)");
    CHECK(cells[4] == "3h");
    CHECK(cells[5] == "<none>");
    CHECK(cells[6] == "<none>");
  }

  SECTION("waiting and terminated reasons pass through") {
    for (const char* reason :
         {"ContainerCreating", "ErrImagePull", "ImagePullBackOff", "PodInitializing"}) {
      json status = {
          {"phase", "Pending"},
          {"containerStatuses",
           {{{"name", "c"}, {"ready", false}, {"state", {{"waiting", {{"reason", reason}}}}}}}}};
      CHECK(Cells("pods", "", pod(one_container, status))[2] == reason);
    }
    for (const char* reason : {"OOMKilled", "Error", "Completed"}) {
      json status = {
          {"phase", "Running"},
          {"containerStatuses",
           {{{"name", "c"}, {"state", {{"terminated", {{"exitCode", 1}, {"reason", reason}}}}}}}}};
      CHECK(Cells("pods", "", pod(one_container, status))[2] == reason);
    }
    json signal = {
        {"phase", "Running"},
        {"containerStatuses",
         {{{"name", "c"}, {"state", {{"terminated", {{"exitCode", 137}, {"signal", 9}}}}}}}}};
    CHECK(Cells("pods", "", pod(one_container, signal))[2] == "Signal:9");
    json exit_code = {
        {"phase", "Running"},
        {"containerStatuses", {{{"name", "c"}, {"state", {{"terminated", {{"exitCode", 2}}}}}}}}};
    CHECK(Cells("pods", "", pod(one_container, exit_code))[2] == "ExitCode:2");
    CHECK(Cells("pods", "", pod(one_container, {{"phase", "Pending"}}))[2] == "Pending");
    json evicted = {{"phase", "Failed"}, {"reason", "Evicted"}};
    CHECK(Cells("pods", "", pod(one_container, evicted))[2] == "Evicted");
  }

  SECTION("completed pods carry a row condition") {
    json status = {{"phase", "Succeeded"},
                   {"containerStatuses",
                    {{{"name", "c"},
                      {"state", {{"terminated", {{"exitCode", 0}, {"reason", "Completed"}}}}}}}}};
    json t = Table("pods", "", {pod(one_container, status)});
    CHECK(t["rows"][0]["cells"][1] == "0/1");
    CHECK(t["rows"][0]["cells"][2] == "Completed");
    CHECK(t["rows"][0]["conditions"] ==
          json::parse(R"([{"type":"Completed","status":"True","reason":"Succeeded",
                          "message":"The pod has completed successfully."}])"));
  }

  SECTION("a sidecar still running turns Completed back into Running") {
    json two = {{"containers", {{{"name", "a"}}, {{"name", "b"}}}}};
    json status = {{"phase", "Running"},
                   {"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
                   {"containerStatuses",
                    {Running(true),
                     {{"name", "b"},
                      {"state", {{"terminated", {{"exitCode", 0}, {"reason", "Completed"}}}}}}}}};
    json cells = Cells("pods", "", pod(two, status));
    CHECK(cells[1] == "1/2");
    CHECK(cells[2] == "Running");
  }

  SECTION("init containers") {
    json spec = {{"initContainers", {{{"name", "init-a"}}, {{"name", "init-b"}}}},
                 {"containers", {{{"name", "c"}}}}};
    json status = {{"phase", "Pending"},
                   {"initContainerStatuses",
                    {{{"name", "init-a"},
                      {"state", {{"terminated", {{"exitCode", 0}, {"reason", "Completed"}}}}}},
                     {{"name", "init-b"}, {"state", {{"running", json::object()}}}}}},
                   {"containerStatuses",
                    {{{"name", "c"}, {"state", {{"waiting", {{"reason", "PodInitializing"}}}}}}}}};
    json cells = Cells("pods", "", pod(spec, status));
    CHECK(cells[1] == "0/1");
    CHECK(cells[2] == "Init:1/2");
    CHECK(cells[3] == "0");

    json crash = {
        {"phase", "Pending"},
        {"initContainerStatuses",
         {{{"name", "init-a"},
           {"restartCount", 3},
           {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}},
           {"lastState",
            {{"terminated", {{"exitCode", 1}, {"finishedAt", "2024-05-01T11:59:00Z"}}}}}}}}};
    cells = Cells("pods", "", pod(spec, crash));
    CHECK(cells[2] == "Init:CrashLoopBackOff");
    CHECK(cells[3] == "3 (60s ago)");

    json failed = {{"phase", "Pending"},
                   {"initContainerStatuses",
                    {{{"name", "init-a"}, {"state", {{"terminated", {{"exitCode", 3}}}}}}}}};
    CHECK(Cells("pods", "", pod(spec, failed))[2] == "Init:ExitCode:3");
  }

  SECTION("a restartable init container (sidecar) counts as a container") {
    json spec = {{"initContainers", {{{"name", "proxy"}, {"restartPolicy", "Always"}}}},
                 {"containers", {{{"name", "c"}}}}};
    json status = {{"phase", "Running"},
                   {"conditions", {{{"type", "Initialized"}, {"status", "True"}}}},
                   {"initContainerStatuses",
                    {{{"name", "proxy"},
                      {"started", true},
                      {"ready", true},
                      {"restartCount", 1},
                      {"state", {{"running", json::object()}}}}}},
                   {"containerStatuses", {Running(true)}}};
    json cells = Cells("pods", "", pod(spec, status));
    CHECK(cells[1] == "2/2");
    CHECK(cells[2] == "Running");
    CHECK(cells[3] == "1");
  }

  SECTION("terminating pods") {
    json status = {{"phase", "Running"}, {"containerStatuses", {Running(true)}}};
    json deleting = {{"deletionTimestamp", "2024-05-01T11:59:00Z"}};
    CHECK(Cells("pods", "", pod(one_container, status, deleting))[2] == "Terminating");
    json lost = {{"phase", "Running"}, {"reason", "NodeLost"}};
    CHECK(Cells("pods", "", pod(one_container, lost, deleting))[2] == "Unknown");
    json done = {{"phase", "Succeeded"}};
    CHECK(Cells("pods", "", pod(one_container, done, deleting))[2] == "Succeeded");
  }

  SECTION("scheduling gates and readiness gates") {
    json gated = {
        {"phase", "Pending"},
        {"conditions",
         {{{"type", "PodScheduled"}, {"status", "False"}, {"reason", "SchedulingGated"}}}}};
    CHECK(Cells("pods", "", pod(one_container, gated))[2] == "SchedulingGated");
    json spec = one_container;
    spec["readinessGates"] = {{{"conditionType", "example.com/lb"}}, {{"conditionType", "x"}}};
    json status = {{"phase", "Running"},
                   {"nominatedNodeName", "node-b"},
                   {"conditions", {{{"type", "example.com/lb"}, {"status", "True"}}}}};
    json cells = Cells("pods", "", pod(spec, status));
    CHECK(cells[7] == "node-b");
    CHECK(cells[8] == "1/2");
  }
}

TEST_CASE("Node tables show status, roles and wide columns") {
  json node = {{"metadata",
                {{"name", "server-1"},
                 {"creationTimestamp", "2024-04-29T09:00:00Z"},
                 {"labels",
                  {{"node-role.kubernetes.io/control-plane", "true"},
                   {"node-role.kubernetes.io/master", "true"},
                   {"kubernetes.io/hostname", "server-1"}}}}},
               {"spec", {{"unschedulable", true}}},
               {"status",
                {{"conditions",
                  {{{"type", "MemoryPressure"}, {"status", "False"}},
                   {{"type", "Ready"}, {"status", "True"}}}},
                 {"addresses",
                  {{{"type", "InternalIP"}, {"address", "192.168.1.10"}},
                   {{"type", "Hostname"}, {"address", "server-1"}}}},
                 {"nodeInfo",
                  {{"kubeletVersion", "v1.32.3+orch"},
                   {"osImage", "Debian GNU/Linux 12 (bookworm)"},
                   {"kernelVersion", "6.1.0-18-amd64"},
                   {"containerRuntimeVersion", "containerd://1.6.20"}}}}}};
  json t = Table("nodes", "", {node});
  CHECK(ColumnNames(t) == std::vector<std::string>{"Name", "Status", "Roles", "Age", "Version",
                                                   "Internal-IP", "External-IP", "OS-Image",
                                                   "Kernel-Version", "Container-Runtime"});
  CHECK(t["rows"][0]["cells"] ==
        json({"server-1", "Ready,SchedulingDisabled", "control-plane,master", "2d3h",
              "v1.32.3+orch", "192.168.1.10", "<none>", "Debian GNU/Linux 12 (bookworm)",
              "6.1.0-18-amd64", "containerd://1.6.20"}));

  json bare = {{"metadata", {{"name", "agent-1"}, {"labels", {{"kubernetes.io/role", "worker"}}}}}};
  CHECK(Cells("nodes", "", bare) == json({"agent-1", "Unknown", "worker", "<unknown>", "", "<none>",
                                          "<none>", "<unknown>", "<unknown>", "<unknown>"}));
  json not_ready = {{"metadata", {{"name", "n"}}},
                    {"status", {{"conditions", {{{"type", "Ready"}, {"status", "Unknown"}}}}}}};
  CHECK(Cells("nodes", "", not_ready)[1] == "NotReady");
  CHECK(Cells("nodes", "", not_ready)[2] == "<none>");
}

TEST_CASE("Service tables print ports, external IPs and selectors") {
  json svc = {{"metadata", Meta("web", "2024-05-01T11:00:00Z")},
              {"spec",
               {{"type", "NodePort"},
                {"clusterIP", "10.43.12.7"},
                {"clusterIPs", {"10.43.12.7"}},
                {"ports",
                 {{{"port", 80}, {"nodePort", 30080}, {"protocol", "TCP"}},
                  {{"port", 53}, {"protocol", "UDP"}}}},
                {"selector", {{"app", "web"}, {"tier", "front"}}}}}};
  json t = Table("services", "", {svc});
  CHECK(ColumnNames(t) == std::vector<std::string>{"Name", "Type", "Cluster-IP", "External-IP",
                                                   "Port(s)", "Age", "Selector"});
  CHECK(t["rows"][0]["cells"] == json({"web", "NodePort", "10.43.12.7", "<none>",
                                       "80:30080/TCP,53/UDP", "60m", "app=web,tier=front"}));

  json lb = {
      {"metadata", Meta("lb", "2024-05-01T11:59:50Z")},
      {"spec",
       {{"type", "LoadBalancer"}, {"clusterIP", "10.43.0.20"}, {"ports", {{{"port", 443}}}}}}};
  CHECK(Cells("services", "", lb) ==
        json({"lb", "LoadBalancer", "10.43.0.20", "<pending>", "443/TCP", "10s", "<none>"}));
  lb["status"] = {
      {"loadBalancer", {{"ingress", {{{"ip", "172.18.0.3"}}, {{"ip", "172.18.0.2"}}}}}}};
  CHECK(Cells("services", "", lb)[3] == "172.18.0.2,172.18.0.3");
  lb["spec"]["externalIPs"] = {"1.2.3.4"};
  CHECK(Cells("services", "", lb)[3] == "172.18.0.2,172.18.0.3,1.2.3.4");

  json headless = {{"metadata", Meta("db", "2024-05-01T11:00:00Z")},
                   {"spec", {{"type", "ClusterIP"}, {"clusterIP", "None"}}}};
  CHECK(Cells("services", "", headless)[2] == "None");
  CHECK(Cells("services", "", headless)[4] == "<none>");
  json external = {{"metadata", Meta("ext", "2024-05-01T11:00:00Z")},
                   {"spec", {{"type", "ExternalName"}, {"externalName", "example.com"}}}};
  CHECK(Cells("services", "", external)[2] == "<none>");
  CHECK(Cells("services", "", external)[3] == "example.com");
}

TEST_CASE("Workload tables") {
  json deploy = {
      {"metadata", Meta("web", "2024-05-01T10:00:00Z")},
      {"spec",
       {{"replicas", 3},
        {"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"template",
         {{"spec",
           {{"containers",
             {{{"name", "nginx"}, {"image", "nginx:1.25"}},
              {{"name", "sidecar"}, {"image", "busybox"}}}}}}}}}},
      {"status", {{"readyReplicas", 2}, {"updatedReplicas", 3}, {"availableReplicas", 2}}}};
  json t = Table("deployments", "apps", {deploy});
  CHECK(ColumnNames(t) == std::vector<std::string>{"Name", "Ready", "Up-to-date", "Available",
                                                   "Age", "Containers", "Images", "Selector"});
  CHECK(t["rows"][0]["cells"] ==
        json({"web", "2/3", 3, 2, "120m", "nginx,sidecar", "nginx:1.25,busybox", "app=web"}));

  json rs = {{"metadata", Meta("web-5d4f", "2024-05-01T10:00:00Z")},
             {"spec", {{"replicas", 2}, {"selector", {{"matchLabels", {{"app", "web"}}}}}}},
             {"status", {{"replicas", 2}, {"readyReplicas", 1}}}};
  CHECK(Cells("replicasets", "apps", rs) == json({"web-5d4f", 2, 2, 1, "120m", "", "", "app=web"}));

  json sts = {{"metadata", Meta("db", "2024-05-01T11:58:58Z")}, {"status", {{"readyReplicas", 1}}}};
  CHECK(Cells("statefulsets", "apps", sts) == json({"db", "1/1", "62s", "", ""}));

  json ds = {{"metadata", Meta("agent", "2024-05-01T11:00:00Z", "kube-system")},
             {"spec",
              {{"selector", {{"matchLabels", {{"k8s-app", "agent"}}}}},
               {"template", {{"spec", {{"nodeSelector", {{"kubernetes.io/os", "linux"}}}}}}}}},
             {"status",
              {{"desiredNumberScheduled", 2},
               {"currentNumberScheduled", 2},
               {"numberReady", 1},
               {"updatedNumberScheduled", 2},
               {"numberAvailable", 1}}}};
  CHECK(Cells("daemonsets", "apps", ds) ==
        json({"agent", 2, 2, 1, 2, 1, "kubernetes.io/os=linux", "60m", "", "", "k8s-app=agent"}));

  json cr = {{"metadata",
              {{"name", "agent-7c9"},
               {"creationTimestamp", "2024-05-01T11:00:00Z"},
               {"ownerReferences",
                {{{"apiVersion", "apps/v1"},
                  {"kind", "DaemonSet"},
                  {"name", "agent"},
                  {"controller", true}}}}}},
             {"revision", 3}};
  CHECK(Cells("controllerrevisions", "apps", cr) ==
        json({"agent-7c9", "daemonset.apps/agent", 3, "60m"}));

  json rc = {{"metadata", Meta("old", "2024-05-01T11:00:00Z")},
             {"spec", {{"replicas", 1}, {"selector", {{"app", "old"}}}}}};
  CHECK(Cells("replicationcontrollers", "", rc) ==
        json({"old", 1, 0, 0, "60m", "", "", "app=old"}));
}

TEST_CASE("Job and CronJob tables") {
  json job = {
      {"metadata", Meta("pi", "2024-05-01T11:00:00Z")},
      {"spec",
       {{"completions", 1},
        {"parallelism", 1},
        {"selector", {{"matchLabels", {{"batch.kubernetes.io/controller-uid", "abc"}}}}},
        {"template", {{"spec", {{"containers", {{{"name", "pi"}, {"image", "perl:5.34"}}}}}}}}}},
      {"status",
       {{"succeeded", 1},
        {"startTime", "2024-05-01T11:00:00Z"},
        {"completionTime", "2024-05-01T11:00:42Z"},
        {"conditions",
         {{{"type", "SuccessCriteriaMet"}, {"status", "True"}},
          {{"type", "Complete"}, {"status", "True"}}}}}}};
  json t = Table("jobs", "batch", {job});
  CHECK(ColumnNames(t) == std::vector<std::string>{"Name", "Status", "Completions", "Duration",
                                                   "Age", "Containers", "Images", "Selector"});
  CHECK(t["rows"][0]["cells"] == json({"pi", "Complete", "1/1", "42s", "60m", "pi", "perl:5.34",
                                       "batch.kubernetes.io/controller-uid=abc"}));

  json running = {{"metadata", Meta("work", "2024-05-01T11:50:00Z")},
                  {"spec", {{"parallelism", 3}}},
                  {"status", {{"succeeded", 1}, {"startTime", "2024-05-01T11:50:00Z"}}}};
  json cells = Cells("jobs", "batch", running);
  CHECK(cells[1] == "Running");
  CHECK(cells[2] == "1/1 of 3");
  CHECK(cells[3] == "10m");
  json failed = {{"metadata", Meta("f", "2024-05-01T11:50:00Z")},
                 {"status", {{"conditions", {{{"type", "Failed"}, {"status", "True"}}}}}}};
  CHECK(Cells("jobs", "batch", failed)[1] == "Failed");
  CHECK(Cells("jobs", "batch", failed)[2] == "0/1");
  CHECK(Cells("jobs", "batch", failed)[3] == "");
  json suspended = {{"metadata", Meta("s", "2024-05-01T11:50:00Z")},
                    {"status", {{"conditions", {{{"type", "Suspended"}, {"status", "True"}}}}}}};
  CHECK(Cells("jobs", "batch", suspended)[1] == "Suspended");

  json cron = {
      {"metadata", Meta("nightly", "2024-04-01T12:00:00Z")},
      {"spec",
       {{"schedule", "0 3 * * *"},
        {"suspend", false},
        {"jobTemplate",
         {{"spec",
           {{"template",
             {{"spec", {{"containers", {{{"name", "b"}, {"image", "busybox"}}}}}}}}}}}}}},
      {"status", {{"lastScheduleTime", "2024-05-01T03:00:00Z"}, {"active", json::array()}}}};
  CHECK(Cells("cronjobs", "batch", cron) == json({"nightly", "0 3 * * *", "<none>", "False", 0,
                                                  "9h", "30d", "b", "busybox", "<none>"}));
}

TEST_CASE("Configuration, storage, RBAC and networking tables") {
  json cm = {{"metadata", Meta("cfg", "2024-05-01T11:59:55Z")},
             {"data", {{"a", "1"}, {"b", "2"}}},
             {"binaryData", {{"c", "AA=="}}}};
  CHECK(Cells("configmaps", "", cm) == json({"cfg", 3, "5s"}));

  json secret = {{"metadata", Meta("tls", "2024-05-01T11:00:00Z")},
                 {"type", "kubernetes.io/tls"},
                 {"data", {{"tls.crt", "x"}, {"tls.key", "y"}}}};
  CHECK(Cells("secrets", "", secret) == json({"tls", "kubernetes.io/tls", 2, "60m"}));

  json sa = {{"metadata", Meta("default", "2024-05-01T11:00:00Z")}};
  CHECK(Cells("serviceaccounts", "", sa) == json({"default", 0, "60m"}));

  json ns = {{"metadata", Meta("kube-system", "2024-04-01T12:00:00Z", "")},
             {"status", {{"phase", "Active"}}}};
  CHECK(Cells("namespaces", "", ns) == json({"kube-system", "Active", "30d"}));

  json pv = {{"metadata", Meta("pv1", "2024-05-01T11:00:00Z", "")},
             {"spec",
              {{"capacity", {{"storage", "10Gi"}}},
               {"accessModes", {"ReadWriteMany", "ReadWriteOnce"}},
               {"persistentVolumeReclaimPolicy", "Retain"},
               {"storageClassName", "local-path"},
               {"claimRef", {{"namespace", "default"}, {"name", "data"}}}}},
             {"status", {{"phase", "Bound"}}}};
  CHECK(Cells("persistentvolumes", "", pv) ==
        json({"pv1", "10Gi", "RWO,RWX", "Retain", "Bound", "default/data", "local-path", "<unset>",
              "", "60m", "<unset>"}));

  json pvc = {
      {"metadata", Meta("data", "2024-05-01T11:00:00Z")},
      {"spec",
       {{"volumeName", "pv1"}, {"storageClassName", "local-path"}, {"volumeMode", "Filesystem"}}},
      {"status",
       {{"phase", "Bound"},
        {"accessModes", {"ReadWriteOnce"}},
        {"capacity", {{"storage", "1024Mi"}}}}}};
  CHECK(Cells("persistentvolumeclaims", "", pvc) ==
        json({"data", "Bound", "pv1", "1Gi", "RWO", "local-path", "<unset>", "60m", "Filesystem"}));
  json pending = {{"metadata", Meta("new", "2024-05-01T11:00:00Z")},
                  {"status", {{"phase", "Pending"}}}};
  CHECK(Cells("persistentvolumeclaims", "", pending) ==
        json({"new", "Pending", "", "", "", "", "<unset>", "60m", "<unset>"}));

  json sc = {{"metadata",
              {{"name", "local-path"},
               {"creationTimestamp", "2024-05-01T11:00:00Z"},
               {"annotations", {{"storageclass.kubernetes.io/is-default-class", "true"}}}}},
             {"provisioner", "rancher.io/local-path"},
             {"volumeBindingMode", "WaitForFirstConsumer"}};
  CHECK(Cells("storageclasses", "storage.k8s.io", sc) ==
        json({"local-path (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer",
              false, "60m"}));

  json quota = {{"metadata", Meta("q", "2024-05-01T11:00:00Z")},
                {"status",
                 {{"hard", {{"pods", "10"}, {"requests.cpu", "2"}, {"limits.memory", "2Gi"}}},
                  {"used", {{"pods", "3"}, {"requests.cpu", "500m"}}}}}};
  CHECK(Cells("resourcequotas", "", quota) ==
        json({"q", "pods: 3/10, requests.cpu: 500m/2", "limits.memory: 0/2Gi", "60m"}));

  json lease = {{"metadata", Meta("node-a", "2024-05-01T11:00:00Z", "kube-node-lease")},
                {"spec", {{"holderIdentity", "node-a"}}}};
  CHECK(Cells("leases", "coordination.k8s.io", lease) == json({"node-a", "node-a", "60m"}));

  json rb = {{"metadata", Meta("admins", "2024-05-01T11:00:00Z")},
             {"roleRef", {{"kind", "ClusterRole"}, {"name", "admin"}}},
             {"subjects",
              {{{"kind", "User"}, {"name", "alice"}},
               {{"kind", "Group"}, {"name", "ops"}},
               {{"kind", "ServiceAccount"}, {"namespace", "ci"}, {"name", "bot"}},
               {{"kind", "User"}, {"name", "bob"}}}}};
  json t = Table("rolebindings", "rbac.authorization.k8s.io", {rb});
  CHECK(ColumnNames(t) ==
        std::vector<std::string>{"Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"});
  CHECK(t["rows"][0]["cells"] ==
        json({"admins", "ClusterRole/admin", "60m", "alice, bob", "ops", "ci/bot"}));

  json role = {{"metadata", Meta("reader", "2024-05-01T11:00:00Z")}};
  json rt = Table("roles", "rbac.authorization.k8s.io", {role});
  CHECK(ColumnNames(rt) == std::vector<std::string>{"Name", "Created At"});
  CHECK(rt["columnDefinitions"][1]["type"] == "date");
  CHECK(rt["rows"][0]["cells"] == json({"reader", "2024-05-01T11:00:00Z"}));
  CHECK(Cells("limitranges", "", role) == json({"reader", "2024-05-01T11:00:00Z"}));

  json ep = {{"metadata", Meta("web", "2024-05-01T11:00:00Z")},
             {"subsets",
              {{{"addresses", {{{"ip", "10.42.0.5"}}, {{"ip", "10.42.1.7"}}, {{"ip", "fd00::1"}}}},
                {"ports", {{{"port", 80}}, {{"port", 443}}}}}}}};
  CHECK(Cells("endpoints", "", ep) ==
        json({"web", "10.42.0.5:80,10.42.1.7:80,[fd00::1]:80 + 3 more...", "60m"}));
  CHECK(Cells("endpoints", "", json{{"metadata", Meta("none", "2024-05-01T11:00:00Z")}})[1] ==
        "<none>");

  json slice = {{"metadata", Meta("web-abc", "2024-05-01T11:00:00Z")},
                {"addressType", "IPv4"},
                {"ports", {{{"port", 80}}, {{"name", "https"}}}},
                {"endpoints", {{{"addresses", {"10.42.0.5"}}}, {{"addresses", {"10.42.1.7"}}}}}};
  CHECK(Cells("endpointslices", "discovery.k8s.io", slice) ==
        json({"web-abc", "IPv4", "80,https", "10.42.0.5,10.42.1.7", "60m"}));

  json ing = {{"metadata", Meta("web", "2024-05-01T11:00:00Z")},
              {"spec",
               {{"ingressClassName", "traefik"},
                {"rules", {{{"host", "a.example.com"}}, {{"host", "b.example.com"}}}},
                {"tls", {{{"hosts", {"a.example.com"}}}}}}},
              {"status", {{"loadBalancer", {{"ingress", {{{"ip", "192.168.1.10"}}}}}}}}};
  CHECK(Cells("ingresses", "networking.k8s.io", ing) ==
        json({"web", "traefik", "a.example.com,b.example.com", "192.168.1.10", "80, 443", "60m"}));

  json np = {{"metadata", Meta("deny", "2024-05-01T11:00:00Z")}, {"spec", json::object()}};
  CHECK(Cells("networkpolicies", "networking.k8s.io", np) == json({"deny", "<none>", "60m"}));

  json pdb = {{"metadata", Meta("web", "2024-05-01T11:00:00Z")},
              {"spec", {{"minAvailable", "50%"}}},
              {"status", {{"disruptionsAllowed", 1}}}};
  CHECK(Cells("poddisruptionbudgets", "policy", pdb) == json({"web", "50%", "N/A", 1, "60m"}));

  json hpa = {{"metadata", Meta("web", "2024-05-01T11:00:00Z")},
              {"spec",
               {{"scaleTargetRef", {{"kind", "Deployment"}, {"name", "web"}}},
                {"minReplicas", 1},
                {"maxReplicas", 5},
                {"metrics",
                 {{{"type", "Resource"},
                   {"resource",
                    {{"name", "cpu"},
                     {"target", {{"type", "Utilization"}, {"averageUtilization", 80}}}}}}}}}},
              {"status",
               {{"currentReplicas", 2},
                {"currentMetrics",
                 {{{"type", "Resource"},
                   {"resource", {{"name", "cpu"}, {"current", {{"averageUtilization", 12}}}}}}}}}}};
  CHECK(Cells("horizontalpodautoscalers", "autoscaling", hpa) ==
        json({"web", "Deployment/web", "cpu: 12%/80%", "1", 5, 2, "60m"}));
}

TEST_CASE("Event tables read core and events.k8s.io events") {
  json event = {{"metadata", Meta("web-1.17c", "2024-05-01T11:50:00Z")},
                {"involvedObject",
                 {{"kind", "Pod"},
                  {"name", "web-1"},
                  {"namespace", "default"},
                  {"fieldPath", "spec.containers{a}"}}},
                {"reason", "Pulled"},
                {"message", "Successfully pulled image \"nginx\"\n"},
                {"source", {{"component", "kubelet"}, {"host", "node-a"}}},
                {"firstTimestamp", "2024-05-01T11:50:00Z"},
                {"lastTimestamp", "2024-05-01T11:58:00Z"},
                {"count", 3},
                {"type", "Normal"}};
  json t = Table("events", "", {event});
  CHECK(ColumnNames(t) == std::vector<std::string>{"Last Seen", "Type", "Reason", "Object",
                                                   "Subobject", "Source", "Message", "First Seen",
                                                   "Count", "Name"});
  CHECK(t["rows"][0]["cells"] ==
        json({"2m", "Normal", "Pulled", "pod/web-1", "spec.containers{a}", "kubelet, node-a",
              "Successfully pulled image \"nginx\"", "10m", 3, "web-1.17c"}));

  json scheduled = {{"metadata", Meta("web-2.18a", "2024-05-01T11:59:30Z")},
                    {"involvedObject", {{"kind", "Pod"}, {"name", "web-2"}}},
                    {"reason", "Scheduled"},
                    {"type", "Normal"},
                    {"message", "Successfully assigned default/web-2 to node-a"},
                    {"eventTime", "2024-05-01T11:59:30.123456Z"},
                    {"reportingComponent", "default-scheduler"},
                    {"reportingInstance", "default-scheduler-node-a"}};
  CHECK(Cells("events", "", scheduled) ==
        json({"29s", "Normal", "Scheduled", "pod/web-2", "",
              "default-scheduler, default-scheduler-node-a",
              "Successfully assigned default/web-2 to node-a", "29s", 1, "web-2.18a"}));

  json v1 = {{"metadata", Meta("x", "2024-05-01T11:00:00Z")},
             {"regarding", {{"kind", "Node"}, {"name", "node-a"}}},
             {"reason", "NodeReady"},
             {"type", "Normal"},
             {"note", "Node node-a status is now: NodeReady"},
             {"eventTime", "2024-05-01T11:00:00.000000Z"},
             {"reportingController", "kubelet"},
             {"series", {{"count", 4}, {"lastObservedTime", "2024-05-01T11:59:00.000000Z"}}}};
  CHECK(Cells("events", "events.k8s.io", v1) ==
        json({"60s", "Normal", "NodeReady", "node/node-a", "", "kubelet",
              "Node node-a status is now: NodeReady", "60m", 4, "x"}));
}

TEST_CASE("Unknown resources get NAME and AGE") {
  json obj = {{"metadata", Meta("thing", "2024-05-01T11:00:00Z")}};
  json t = Table("widgets", "example.com", {obj});
  CHECK(ColumnNames(t) == std::vector<std::string>{"Name", "Age"});
  CHECK(t["rows"][0]["cells"] == json({"thing", "60m"}));
  CHECK(Table("widgets", "example.com", {})["rows"] == json::array());

  std::vector<const json*> bad = {nullptr};
  CHECK_FALSE(BuildTable("pods", "", bad, IncludeObject::kMetadata, Now()).ok());
}

TEST_CASE("JSONPath finds what printer columns ask for") {
  json obj = json::parse(R"({
    "metadata": {"labels": {"app": "web", "app.kubernetes.io/name": "x"}},
    "spec": {"replicas": 3, "items": [{"n": 1}, {"n": 2}, {"n": 3}]},
    "status": {"conditions": [{"type": "Synced", "status": "False"},
                              {"type": "Ready", "status": "True"}]}})");
  auto find = [&](const std::string& expr) {
    orch::Result<orch::api::JsonPath> p = orch::api::JsonPath::Parse(expr);
    INFO(expr << ": " << p.status().ToString());
    REQUIRE(p.ok());
    std::vector<json> out;
    for (const json* v : p->Find(obj)) out.push_back(*v);
    return out;
  };
  CHECK(find(".spec.replicas") == std::vector<json>{3});
  CHECK(find("{.spec.replicas}") == std::vector<json>{3});
  CHECK(find(".metadata.labels.app") == std::vector<json>{"web"});
  CHECK(find(".metadata.labels['app.kubernetes.io/name']") == std::vector<json>{"x"});
  CHECK(find(".metadata.labels.app\\.kubernetes\\.io/name") == std::vector<json>{"x"});
  CHECK(find(".status.conditions[?(@.type==\"Ready\")].status") == std::vector<json>{"True"});
  CHECK(find(".status.conditions[?(@.type=='Synced')].status") == std::vector<json>{"False"});
  CHECK(find(".spec.items[*].n") == std::vector<json>{1, 2, 3});
  CHECK(find(".spec.items[-1].n") == std::vector<json>{3});
  CHECK(find(".spec.items[?(@.n > 1)].n") == std::vector<json>{2, 3});
  CHECK(find(".spec.items[5].n").empty());
  CHECK(find(".spec.missing.deeper").empty());
  CHECK_FALSE(orch::api::JsonPath::Parse(".spec[").ok());
  CHECK_FALSE(orch::api::JsonPath::Parse("..spec").ok());
}

TEST_CASE("Custom resources print their additionalPrinterColumns") {
  json columns = json::parse(R"([
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status",
     "description": "Whether it is ready"},
    {"name": "App", "type": "string", "jsonPath": ".metadata.labels.app", "priority": 1},
    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
    {"name": "Spec", "type": "string", "jsonPath": ".spec.nested"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}])");
  json obj = {{"apiVersion", "example.com/v1"},
              {"kind", "Widget"},
              {"metadata", {{"name", "w1"}, {"creationTimestamp", "2024-05-01T11:00:00Z"}}},
              {"spec", {{"replicas", 2.7}, {"ratio", 1}, {"nested", {{"b", 1}, {"a", "x"}}}}},
              {"status", {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
  std::vector<const json*> objects = {&obj};
  orch::Result<json> t =
      BuildCustomResourceTable(columns, objects, IncludeObject::kMetadata, Now());
  REQUIRE(t.ok());
  CHECK(ColumnNames(*t) ==
        std::vector<std::string>{"Name", "Replicas", "Ready", "App", "Ratio", "Spec", "Age"});
  CHECK((*t)["columnDefinitions"][1]["description"] ==
        "Custom resource definition column (in JSONPath format): .spec.replicas");
  CHECK((*t)["columnDefinitions"][2]["description"] == "Whether it is ready");
  CHECK((*t)["columnDefinitions"][3]["priority"] == 1);
  CHECK((*t)["columnDefinitions"][6]["type"] == "date");
  const json& cells = (*t)["rows"][0]["cells"];
  CHECK(cells[0] == "w1");
  CHECK(cells[1] == 2);
  CHECK(cells[2] == "True");
  CHECK(cells[3].is_null());  // no such label
  CHECK(cells[4] == 1.0);
  CHECK(cells[5] == "{\"a\":\"x\",\"b\":1}");
  CHECK(cells[6] == "60m");
  CHECK((*t)["rows"][0]["object"]["kind"] == "PartialObjectMetadata");

  orch::Result<json> plain =
      BuildCustomResourceTable(nullptr, objects, IncludeObject::kNone, Now());
  REQUIRE(plain.ok());
  CHECK(ColumnNames(*plain) == std::vector<std::string>{"Name", "Age"});
  CHECK((*plain)["columnDefinitions"][1]["type"] == "date");
  CHECK((*plain)["rows"][0]["cells"] == json({"w1", "60m"}));

  json broken = json::parse(R"([{"name": "A", "type": "string", "jsonPath": ".a"},
                                {"name": "B", "type": "string", "jsonPath": ".b["},
                                {"name": "C", "type": "string", "jsonPath": ".c"}])");
  orch::Result<json> partial =
      BuildCustomResourceTable(broken, objects, IncludeObject::kNone, Now());
  REQUIRE(partial.ok());
  CHECK(ColumnNames(*partial) == std::vector<std::string>{"Name", "A"});

  json dates = json::parse(R"([{"name": "When", "type": "date", "jsonPath": ".spec.when"}])");
  json odd = {{"metadata", {{"name", "o"}}}, {"spec", {{"when", "not a time"}}}};
  std::vector<const json*> odd_objects = {&odd};
  CHECK((*BuildCustomResourceTable(dates, odd_objects, IncludeObject::kNone,
                                   Now()))["rows"][0]["cells"][1] == "<invalid>");
}

TEST_CASE("includeObject values parse like upstream") {
  CHECK(*orch::api::ParseIncludeObject("") == IncludeObject::kMetadata);
  CHECK(*orch::api::ParseIncludeObject("Metadata") == IncludeObject::kMetadata);
  CHECK(*orch::api::ParseIncludeObject("Object") == IncludeObject::kObject);
  CHECK(*orch::api::ParseIncludeObject("None") == IncludeObject::kNone);
  orch::Result<IncludeObject> bad = orch::api::ParseIncludeObject("All");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "unrecognized includeObject value: \"All\"");
}
