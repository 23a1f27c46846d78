// The node agent's container configs: QoS classes, cgroup resources, security context, labels
// and annotations, the spec hash.
#include <catch2/catch.hpp>

#include "container_config.h"
#include "runtime_labels.h"

using json = nlohmann::json;
using namespace orch::agent;

namespace {

json Pod(json containers, json init = json::array()) {
  json pod = {{"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "u"}}},
              {"spec", {{"containers", std::move(containers)}}}};
  if (!init.empty()) pod["spec"]["initContainers"] = std::move(init);
  return pod;
}

json WithResources(json requests, json limits) {
  json c = {{"name", "c"}, {"image", "busybox"}, {"resources", json::object()}};
  if (!requests.is_null()) c["resources"]["requests"] = requests;
  if (!limits.is_null()) c["resources"]["limits"] = limits;
  return c;
}

}  // namespace

TEST_CASE("QoS classes") {
  CHECK(QosClass(Pod(json::array({{{"name", "c"}}}))) == "BestEffort");
  CHECK(QosClass(Pod(json::array({WithResources(nullptr, {{"cpu", "1"}, {"memory", "1Gi"}})}))) ==
        "Guaranteed");
  CHECK(QosClass(Pod(json::array({WithResources({{"cpu", "1"}, {"memory", "1Gi"}},
                                                {{"cpu", "1000m"}, {"memory", "1Gi"}})}))) ==
        "Guaranteed");
  CHECK(QosClass(Pod(json::array({WithResources(
            {{"cpu", "500m"}}, {{"cpu", "1"}, {"memory", "1Gi"}})}))) == "Burstable");
  CHECK(QosClass(Pod(json::array({WithResources({{"memory", "1Gi"}}, nullptr)}))) == "Burstable");
  // Every container counts, init containers too.
  CHECK(QosClass(Pod(json::array({WithResources(nullptr, {{"cpu", "1"}, {"memory", "1Gi"}})}),
                     json::array({{{"name", "i"}}}))) == "Burstable");
}

TEST_CASE("cgroup resources from requests and limits") {
  json guaranteed =
      Pod(json::array({WithResources(nullptr, {{"cpu", "250m"}, {"memory", "64Mi"}})}));
  auto r = ContainerResources(guaranteed, guaranteed["spec"]["containers"][0], 8LL << 30);
  CHECK(r.cpu_shares == 256);
  CHECK(r.cpu_period == 100000);
  CHECK(r.cpu_quota == 25000);
  CHECK(r.memory_limit_bytes == 64 << 20);
  CHECK(r.oom_score_adj == -997);

  json best = Pod(json::array({{{"name", "c"}}}));
  auto b = ContainerResources(best, best["spec"]["containers"][0], 8LL << 30);
  CHECK(b.cpu_shares == 2);
  CHECK(b.cpu_quota == 0);
  CHECK(b.memory_limit_bytes == 0);
  CHECK(b.oom_score_adj == 1000);

  json burst = Pod(json::array({WithResources({{"cpu", "1m"}, {"memory", "2Gi"}}, nullptr)}));
  auto u = ContainerResources(burst, burst["spec"]["containers"][0], 8LL << 30);
  CHECK(u.cpu_shares == 2);
  CHECK(u.oom_score_adj == 750);  // 1000 - 1000 * 2Gi / 8Gi

  json tiny = Pod(json::array({WithResources(nullptr, {{"cpu", "1m"}, {"memory", "1Mi"}})}));
  CHECK(ContainerResources(tiny, tiny["spec"]["containers"][0], 1LL << 30).cpu_quota == 1000);
}

TEST_CASE("container config: command, security, labels, annotations, log path") {
  json container = {{"name", "app"},
                    {"image", "busybox"},
                    {"command", json::array({"sh", "-c", "echo $(GREETING)"})},
                    {"workingDir", "/work"},
                    {"stdin", true},
                    {"tty", true},
                    {"terminationMessagePolicy", "FallbackToLogsOnError"},
                    {"securityContext",
                     {{"runAsUser", 1001},
                      {"readOnlyRootFilesystem", true},
                      {"allowPrivilegeEscalation", false},
                      {"capabilities", {{"add", {"NET_ADMIN"}}, {"drop", {"ALL"}}}}}}};
  json pod = Pod(json::array({container}));
  pod["spec"]["securityContext"] = {{"runAsUser", 5}, {"runAsGroup", 6}, {"runAsNonRoot", true}};
  pod["spec"]["terminationGracePeriodSeconds"] = 5;
  ContainerInputs in;
  in.node_name = "node-a";
  in.restart_count = 3;
  in.image_ref = "sha256:123";
  in.env = {{"GREETING", "hi"}};
  in.mounts = {{"/host/v", "/data", true}};
  in.termination_message_file = "/pods/u/containers/app/x";
  auto c = BuildContainerConfig(pod, pod["spec"]["containers"][0], in);
  CHECK(c.name == "app");
  CHECK(c.attempt == 3);
  CHECK(c.image == "sha256:123");
  CHECK(c.command == std::vector<std::string>{"sh", "-c", "echo hi"});
  CHECK(c.working_dir == "/work");
  CHECK(c.log_path == "app/3.log");
  CHECK(c.open_stdin);
  CHECK(c.tty);
  CHECK(c.mounts.size() == 1);
  CHECK(c.security.run_as_user == 1001);
  CHECK(c.security.run_as_group == 6);
  CHECK(c.security.readonly_rootfs);
  CHECK(c.security.no_new_privs);
  CHECK(c.security.capabilities_add == std::vector<std::string>{"NET_ADMIN"});
  CHECK(c.security.capabilities_drop == std::vector<std::string>{"ALL"});
  CHECK(c.labels.at(kContainerNameLabel) == "app");
  CHECK(c.labels.at(kPodUidLabel) == "u");
  CHECK(c.labels.at(kNodeLabel) == "node-a");
  CHECK(c.annotations.at(kRestartCountAnnotation) == "3");
  CHECK(c.annotations.at(kTerminationMessagePathAnnotation) == "/dev/termination-log");
  CHECK(c.annotations.at(kTerminationMessagePolicyAnnotation) == "FallbackToLogsOnError");
  CHECK(c.annotations.at(kGracePeriodAnnotation) == "5");
  CHECK(c.annotations.at(kTerminationMessageFileAnnotation) == "/pods/u/containers/app/x");
  CHECK(c.annotations.at(kSpecImageAnnotation) == "busybox");
  CHECK(c.annotations.at(kSpecHashAnnotation) == ContainerSpecHash(container));
  CHECK(EffectiveRunAsNonRoot(pod, container));
  CHECK(EffectiveRunAsUser(pod, {{"name", "x"}}) == 5);
}

TEST_CASE("the spec hash changes with the image, not with defaulted fields") {
  json a = {{"name", "c"}, {"image", "busybox:1"}};
  json b = {{"image", "busybox:1"},
            {"name", "c"},
            {"resources", json::object()},
            {"terminationMessagePath", "/dev/termination-log"},
            {"imagePullPolicy", "IfNotPresent"}};
  CHECK(ContainerSpecHash(a) == ContainerSpecHash(b));
  CHECK(ContainerSpecHash(a).size() == 16);
  b["image"] = "busybox:2";
  CHECK(ContainerSpecHash(a) != ContainerSpecHash(b));
}
