// The node agent's Node object: labels, taints, capacity and allocatable, conditions with the
// kubelet's thresholds, nodeInfo, the machine file parsers, and the CNI config it writes.
#include <catch2/catch.hpp>

#include "cni_config.h"
#include "machine.h"
#include "node_object.h"

using json = nlohmann::json;
using namespace orch::agent;
using orch::ParseTime;
using orch::SystemTime;

namespace {

const SystemTime kNow = *ParseTime("2025-01-02T03:04:05Z");

NodeFacts Facts() {
  NodeFacts f;
  f.id.name = "node-a";
  f.id.ip = "192.168.1.10";
  f.id.control_plane = true;
  f.machine.cpu_cores = 2;
  f.machine.memory_bytes = 4LL << 30;
  f.machine.architecture = "amd64";
  f.machine.kernel_version = "6.1.0";
  f.machine.os_image = "Debian GNU/Linux 12 (bookworm)";
  f.machine.machine_id = "m1";
  f.machine.boot_id = "b1";
  f.runtime_version = "containerd://1.6.20";
  f.kubelet_version = "v1.32.0";
  f.nodefs = {100ull << 30, 50ull << 30, 1000, 900};
  f.memory = MemoryStats{4ull << 30, 2ull << 30};
  f.pids = PidStats{4194304, 500};
  f.runtime_ready = true;
  f.network_ready = true;
  orch::cri::Image small;
  small.id = "sha256:1";
  small.repo_tags = {"orch.test/busybox:1"};
  small.size = 100;
  orch::cri::Image big;
  big.id = "sha256:2";
  big.repo_tags = {"docker.io/orch/pause:3.9"};
  big.repo_digests = {"docker.io/orch/pause@sha256:9"};
  big.size = 1000;
  f.images = {small, big};
  return f;
}

const json& ConditionOf(const json& status, const std::string& type) {
  for (const json& c : status["conditions"]) {
    if (c["type"] == type) return c;
  }
  FAIL("no condition " << type);
  static json none;
  return none;
}

}  // namespace

TEST_CASE("machine file parsers") {
  auto mem =
      ParseMeminfo("MemTotal:       16000000 kB\nMemFree: 1 kB\nMemAvailable:    8000000 kB\n");
  REQUIRE(mem.ok());
  CHECK(mem->total_bytes == 16000000ull * 1024);
  CHECK(mem->available_bytes == 8000000ull * 1024);
  CHECK_FALSE(ParseMeminfo("MemTotal: 1 kB\n").ok());
  CHECK(ParseOsRelease("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n") ==
        "Debian GNU/Linux 12 (bookworm)");
  CHECK(ParseOsRelease("ID=x\n") == "Linux");
  auto threads = ParseLoadavgThreads("0.52 0.58 0.59 3/745 12345\n");
  REQUIRE(threads.ok());
  CHECK(*threads == 745);
  CHECK(GoArch("x86_64") == "amd64");
  CHECK(GoArch("aarch64") == "arm64");
}

TEST_CASE("labels and taints from the flags") {
  NodeIdentity id;
  id.name = "node-a";
  id.control_plane = true;
  id.labels = {"zone=z1", "kubernetes.io/os=ignored-then-overridden"};
  MachineInfo m;
  m.architecture = "arm64";
  auto labels = NodeLabels(id, m);
  CHECK(labels["kubernetes.io/hostname"] == "node-a");
  CHECK(labels["kubernetes.io/arch"] == "arm64");
  CHECK(labels["node-role.kubernetes.io/control-plane"] == "true");
  CHECK(labels["zone"] == "z1");
  id.control_plane = false;
  CHECK_FALSE(NodeLabels(id, m).contains("node-role.kubernetes.io/control-plane"));

  auto taint = ParseNodeTaint("dedicated=gpu:NoSchedule");
  REQUIRE(taint.ok());
  CHECK(*taint == json{{"key", "dedicated"}, {"value", "gpu"}, {"effect", "NoSchedule"}});
  auto bare = ParseNodeTaint("special:NoExecute");
  REQUIRE(bare.ok());
  CHECK(*bare == json{{"key", "special"}, {"effect", "NoExecute"}});
  CHECK_FALSE(ParseNodeTaint("x=y").ok());
  CHECK_FALSE(ParseNodeTaint("x=y:Sometimes").ok());

  id.taints = {"dedicated=gpu:NoSchedule"};
  auto node = NewNodeObject(id, m, json::object());
  REQUIRE(node.ok());
  CHECK((*node)["spec"]["taints"].size() == 1);
  CHECK((*node)["metadata"]["name"] == "node-a");
  CHECK((*node)["metadata"]["labels"]["zone"] == "z1");
  CHECK((*node)["metadata"]["labels"]["kubernetes.io/arch"] == "arm64");

  json existing = {{"metadata", {{"name", "node-a"}, {"labels", {{"custom", "kept"}}}}},
                   {"spec", {{"podCIDR", "10.42.0.0/24"}}}};
  auto changed = MergeRegistration(existing, id, m);
  REQUIRE(changed.ok());
  CHECK(*changed);
  CHECK(existing["metadata"]["labels"]["custom"] == "kept");
  CHECK(existing["metadata"]["labels"]["kubernetes.io/hostname"] == "node-a");
  CHECK(existing["spec"]["taints"].size() == 1);
  CHECK(existing["spec"]["podCIDR"] == "10.42.0.0/24");
  auto again = MergeRegistration(existing, id, m);
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
}

TEST_CASE("node status: capacity, allocatable, addresses, info, images") {
  json s = NodeStatusJson(Facts(), json(), kNow);
  CHECK(s["capacity"]["cpu"] == "2");
  CHECK(s["capacity"]["memory"] == "4194304Ki");
  CHECK(s["capacity"]["pods"] == "110");
  CHECK(s["capacity"]["ephemeral-storage"] == "104857600Ki");
  CHECK(s["allocatable"]["memory"] == "4091904Ki");  // less the 100Mi eviction threshold
  CHECK(s["allocatable"]["ephemeral-storage"] ==
        std::to_string(static_cast<uint64_t>((100ull << 30) * 0.9)));
  CHECK(s["addresses"] == json::array({{{"type", "InternalIP"}, {"address", "192.168.1.10"}},
                                       {{"type", "Hostname"}, {"address", "node-a"}}}));
  CHECK(s["nodeInfo"]["containerRuntimeVersion"] == "containerd://1.6.20");
  CHECK(s["nodeInfo"]["kubeletVersion"] == "v1.32.0");
  CHECK(s["nodeInfo"]["osImage"] == "Debian GNU/Linux 12 (bookworm)");
  CHECK(s["nodeInfo"]["operatingSystem"] == "linux");
  CHECK(s["nodeInfo"]["architecture"] == "amd64");
  CHECK(s["nodeInfo"]["bootID"] == "b1");
  REQUIRE(s["images"].size() == 2);
  CHECK(s["images"][0]["names"] ==
        json::array({"docker.io/orch/pause@sha256:9", "docker.io/orch/pause:3.9"}));
  CHECK(s["images"][0]["sizeBytes"] == 1000);
  const json& ready = ConditionOf(s, "Ready");
  CHECK(ready["status"] == "True");
  CHECK(ready["reason"] == "KubeletReady");
  CHECK(ready["message"] == "kubelet is posting ready status");
  CHECK(ConditionOf(s, "MemoryPressure")["reason"] == "KubeletHasSufficientMemory");
  CHECK(ConditionOf(s, "DiskPressure")["reason"] == "KubeletHasNoDiskPressure");
  CHECK(ConditionOf(s, "PIDPressure")["reason"] == "KubeletHasSufficientPID");
  CHECK(s["conditions"][3]["type"] == "Ready");
}

TEST_CASE("node conditions follow the machine, transition times only on change") {
  json first = NodeStatusJson(Facts(), json(), kNow);
  NodeFacts pressed = Facts();
  pressed.memory->available_bytes = 50ull << 20;
  pressed.nodefs.available_bytes = 5ull << 30;  // 5% left
  pressed.pids->running = 4000000;
  pressed.network_ready = false;
  pressed.runtime_message = "container runtime network not ready: NetworkReady=false";
  auto later = kNow + std::chrono::seconds(30);
  json second = NodeStatusJson(pressed, first, later);
  CHECK(ConditionOf(second, "MemoryPressure")["status"] == "True");
  CHECK(ConditionOf(second, "MemoryPressure")["reason"] == "KubeletHasInsufficientMemory");
  CHECK(ConditionOf(second, "DiskPressure")["status"] == "True");
  CHECK(ConditionOf(second, "PIDPressure")["status"] == "True");
  CHECK(ConditionOf(second, "Ready")["status"] == "False");
  CHECK(ConditionOf(second, "Ready")["reason"] == "KubeletNotReady");
  CHECK(ConditionOf(second, "Ready")["message"] == pressed.runtime_message);
  CHECK(ConditionOf(second, "Ready")["lastTransitionTime"] == "2025-01-02T03:04:35Z");
  CHECK(NodeStatusChanged(first, second));

  json third = NodeStatusJson(Facts(), first, later);
  CHECK(ConditionOf(third, "Ready")["lastTransitionTime"] == "2025-01-02T03:04:05Z");
  CHECK(ConditionOf(third, "Ready")["lastHeartbeatTime"] == "2025-01-02T03:04:35Z");
  CHECK_FALSE(NodeStatusChanged(first, third));  // only heartbeats moved

  NodeFacts inodes = Facts();
  inodes.nodefs.inodes_free = 10;  // 1% of inodes left
  CHECK(ConditionOf(NodeStatusJson(inodes, json(), kNow), "DiskPressure")["status"] == "True");
}

TEST_CASE("the CNI config list") {
  CniOptions o;
  o.bridge = "orchtest1";
  o.pod_cidr = "10.201.3.0/24";
  o.ipam_dir = "/data/agent/cni/networks";
  json list = json::parse(CniConfigList(o));
  CHECK(list["cniVersion"] == "1.0.0");
  CHECK(list["name"] == "orch");
  REQUIRE(list["plugins"].size() == 2);
  const json& bridge = list["plugins"][0];
  CHECK(bridge["type"] == "bridge");
  CHECK(bridge["bridge"] == "orchtest1");
  CHECK(bridge["isGateway"] == true);
  CHECK(bridge["ipMasq"] == false);
  CHECK(bridge["hairpinMode"] == true);
  CHECK(bridge["ipam"]["type"] == "host-local");
  CHECK(bridge["ipam"]["ranges"][0][0]["subnet"] == "10.201.3.0/24");
  CHECK(bridge["ipam"]["routes"][0]["dst"] == "0.0.0.0/0");
  CHECK(bridge["ipam"]["dataDir"] == "/data/agent/cni/networks");
  const json& portmap = list["plugins"][1];
  CHECK(portmap["type"] == "portmap");
  CHECK(portmap["capabilities"]["portMappings"] == true);
  CHECK(portmap["snat"] == true);
}
