// The node agent's container environments: $(VAR) expansion, service links, envFrom, env from
// values, fields, resources, ConfigMaps and Secrets, with the kubelet's errors.
#include <catch2/catch.hpp>

#include "agent_fakes.h"
#include "container_env.h"
#include "orch/base64.h"

using json = nlohmann::json;
using namespace orch::agent;

namespace {

std::string Expand(const std::string& in, const std::map<std::string, std::string>& vars) {
  return ExpandVars(in, [&](const std::string& name, std::string* value) {
    auto it = vars.find(name);
    if (it == vars.end()) return false;
    *value = it->second;
    return true;
  });
}

std::map<std::string, std::string> AsMap(const EnvList& env) {
  return std::map<std::string, std::string>(env.begin(), env.end());
}

json Pod(json containers, json spec_extra = json::object()) {
  json pod = {{"metadata",
               {{"name", "web-1"},
                {"namespace", "shop"},
                {"uid", "uid-1"},
                {"labels", {{"app", "web"}}},
                {"annotations", {{"team", "blue"}}}}},
              {"spec", {{"containers", std::move(containers)}, {"serviceAccountName", "sa"}}}};
  pod["spec"].update(spec_extra);
  return pod;
}

EnvContext Context() {
  EnvContext ctx;
  ctx.node_name = "node-a";
  ctx.pod_ip = "10.42.0.7";
  ctx.pod_ips = {"10.42.0.7"};
  ctx.host_ip = "192.168.1.10";
  ctx.node_cpu_milli = 4000;
  ctx.node_memory_bytes = 8LL << 30;
  return ctx;
}

}  // namespace

TEST_CASE("$(VAR) expansion follows Kubernetes' rules") {
  std::map<std::string, std::string> vars = {{"A", "1"}, {"B", "two"}, {"EMPTY", ""}};
  CHECK(Expand("$(A)", vars) == "1");
  CHECK(Expand("x$(A)y$(B)z", vars) == "x1ytwoz");
  CHECK(Expand("$(MISSING)", vars) == "$(MISSING)");
  CHECK(Expand("$$(A)", vars) == "$(A)");
  CHECK(Expand("$$$(A)", vars) == "$1");
  CHECK(Expand("$$", vars) == "$");
  CHECK(Expand("$A", vars) == "$A");
  CHECK(Expand("cost: 5$", vars) == "cost: 5$");
  CHECK(Expand("$(A", vars) == "$(A");
  CHECK(Expand("$()", vars) == "$()");
  CHECK(Expand("$(EMPTY)x", vars) == "x");
  CHECK(Expand("no vars", vars) == "no vars");
}

TEST_CASE("service links: the kubernetes Service always, the namespace's unless disabled") {
  orch::testing::FakeObjectSource objects;
  objects.AddService("default", "kubernetes", "10.43.0.1",
                     json::array({{{"name", "https"}, {"port", 443}, {"protocol", "TCP"}}}));
  objects.AddService("shop", "redis-main", "10.43.0.20",
                     json::array({{{"name", "db"}, {"port", 6379}, {"protocol", "TCP"}},
                                  {{"port", 6380}, {"protocol", "UDP"}}}));
  objects.AddService("shop", "headless", "None", json::array({{{"port", 80}}}));
  objects.AddService("other", "elsewhere", "10.43.0.30", json::array({{{"port", 80}}}));
  json pod = Pod(json::array({{{"name", "c"}, {"image", "busybox"}}}));
  auto env = BuildEnvironment(pod, pod["spec"]["containers"][0], Context(), objects);
  REQUIRE(env.ok());
  auto vars = AsMap(env->env);
  CHECK(vars["KUBERNETES_SERVICE_HOST"] == "10.43.0.1");
  CHECK(vars["KUBERNETES_SERVICE_PORT"] == "443");
  CHECK(vars["KUBERNETES_SERVICE_PORT_HTTPS"] == "443");
  CHECK(vars["KUBERNETES_PORT"] == "tcp://10.43.0.1:443");
  CHECK(vars["KUBERNETES_PORT_443_TCP"] == "tcp://10.43.0.1:443");
  CHECK(vars["KUBERNETES_PORT_443_TCP_PROTO"] == "tcp");
  CHECK(vars["KUBERNETES_PORT_443_TCP_PORT"] == "443");
  CHECK(vars["KUBERNETES_PORT_443_TCP_ADDR"] == "10.43.0.1");
  CHECK(vars["REDIS_MAIN_SERVICE_HOST"] == "10.43.0.20");
  CHECK(vars["REDIS_MAIN_SERVICE_PORT"] == "6379");
  CHECK(vars["REDIS_MAIN_SERVICE_PORT_DB"] == "6379");
  CHECK(vars["REDIS_MAIN_PORT_6380_UDP"] == "udp://10.43.0.20:6380");
  CHECK_FALSE(vars.contains("HEADLESS_SERVICE_HOST"));
  CHECK_FALSE(vars.contains("ELSEWHERE_SERVICE_HOST"));

  json no_links =
      Pod(json::array({{{"name", "c"}, {"image", "busybox"}}}), {{"enableServiceLinks", false}});
  auto limited = BuildEnvironment(no_links, no_links["spec"]["containers"][0], Context(), objects);
  REQUIRE(limited.ok());
  auto limited_vars = AsMap(limited->env);
  CHECK(limited_vars["KUBERNETES_SERVICE_HOST"] == "10.43.0.1");
  CHECK_FALSE(limited_vars.contains("REDIS_MAIN_SERVICE_HOST"));
}

TEST_CASE("env: values with expansion, envFrom with prefixes, declaration order") {
  orch::testing::FakeObjectSource objects;
  objects.AddConfigMap("shop", "settings", {{"GREETING", "hello"}, {"1BAD", "x"}, {"mode", "m"}});
  objects.AddSecret("shop", "creds", {{"PASSWORD", orch::Base64Encode("s3cret")}});
  json container = {
      {"name", "c"},
      {"envFrom", json::array({{{"configMapRef", {{"name", "settings"}}}},
                               {{"secretRef", {{"name", "creds"}}}, {"prefix", "DB_"}},
                               {{"configMapRef", {{"name", "absent"}, {"optional", true}}}}})},
      {"env", json::array({{{"name", "FIRST"}, {"value", "$(GREETING) world"}},
                           {{"name", "SECOND"}, {"value", "$(FIRST)! $(LATER) $$(FIRST)"}},
                           {{"name", "LATER"}, {"value", "late"}},
                           {{"name", "GREETING"}, {"value", "overridden"}},
                           {{"name", "SVC"}, {"value", "$(KUBERNETES_SERVICE_HOST)"}}})}};
  objects.AddService("default", "kubernetes", "10.43.0.1",
                     json::array({{{"name", "https"}, {"port", 443}}}));
  json pod = Pod(json::array({container}));
  auto env = BuildEnvironment(pod, pod["spec"]["containers"][0], Context(), objects);
  REQUIRE(env.ok());
  auto vars = AsMap(env->env);
  CHECK(vars["GREETING"] == "overridden");
  CHECK(vars["FIRST"] == "hello world");
  CHECK(vars["SECOND"] == "hello world! $(LATER) $(FIRST)");
  CHECK(vars["DB_PASSWORD"] == "s3cret");
  CHECK(vars["mode"] == "m");
  CHECK(vars["SVC"] == "10.43.0.1");
  CHECK_FALSE(vars.contains("1BAD"));
  REQUIRE(env->warnings.size() == 1);
  CHECK(env->warnings[0] ==
        "Keys [1BAD] from the EnvFrom configMap shop/settings were skipped since they are "
        "considered invalid environment variable names.");
  // Declared variables keep their first position; service variables come last.
  std::vector<std::string> names;
  for (const auto& [k, v] : env->env) names.push_back(k);
  auto pos = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) - names.begin();
  };
  CHECK(pos("GREETING") < pos("FIRST"));
  CHECK(pos("FIRST") < pos("SECOND"));
  CHECK(pos("LATER") < pos("KUBERNETES_SERVICE_HOST"));
}

TEST_CASE("env: fieldRef and resourceFieldRef") {
  orch::testing::FakeObjectSource objects;
  auto field = [](const std::string& name, const std::string& path) {
    return json{{"name", name}, {"valueFrom", {{"fieldRef", {{"fieldPath", path}}}}}};
  };
  auto resource = [](const std::string& name, const std::string& res, json divisor = nullptr) {
    json ref = {{"resource", res}};
    if (!divisor.is_null()) ref["divisor"] = divisor;
    return json{{"name", name}, {"valueFrom", {{"resourceFieldRef", ref}}}};
  };
  json container = {
      {"name", "c"},
      {"resources", {{"limits", {{"cpu", "500m"}, {"memory", "64Mi"}}}}},
      {"env",
       json::array(
           {field("NAME", "metadata.name"), field("NS", "metadata.namespace"),
            field("UID", "metadata.uid"), field("APP", "metadata.labels['app']"),
            field("NONE", "metadata.labels['none']"), field("TEAM", "metadata.annotations['team']"),
            field("NODE", "spec.nodeName"), field("SA", "spec.serviceAccountName"),
            field("IP", "status.podIP"), field("IPS", "status.podIPs"),
            field("HOST", "status.hostIP"), resource("CPU", "limits.cpu"),
            resource("CPU_M", "limits.cpu", "1m"), resource("MEM_MI", "limits.memory", "1Mi"),
            resource("REQ_MEM", "requests.memory"), resource("REQ_CPU", "requests.cpu", "1m")})}};
  json pod = Pod(json::array({container, {{"name", "other"}}}), {{"nodeName", "node-a"}});
  auto env = BuildEnvironment(pod, pod["spec"]["containers"][0], Context(), objects);
  REQUIRE(env.ok());
  auto vars = AsMap(env->env);
  CHECK(vars["NAME"] == "web-1");
  CHECK(vars["NS"] == "shop");
  CHECK(vars["UID"] == "uid-1");
  CHECK(vars["APP"] == "web");
  CHECK(vars["NONE"] == "");
  CHECK(vars["TEAM"] == "blue");
  CHECK(vars["NODE"] == "node-a");
  CHECK(vars["SA"] == "sa");
  CHECK(vars["IP"] == "10.42.0.7");
  CHECK(vars["IPS"] == "10.42.0.7");
  CHECK(vars["HOST"] == "192.168.1.10");
  CHECK(vars["CPU"] == "1");  // 500m rounded up to whole cores
  CHECK(vars["CPU_M"] == "500");
  CHECK(vars["MEM_MI"] == "64");
  CHECK(vars["REQ_MEM"] == std::to_string(64 << 20));  // requests default to limits
  CHECK(vars["REQ_CPU"] == "500");

  // Without limits, the node's allocatable amounts.
  json bare = Pod(json::array(
      {{{"name", "c"},
        {"env", json::array({resource("CPU", "limits.cpu"), resource("MEM", "limits.memory")})}}}));
  auto node_env = BuildEnvironment(bare, bare["spec"]["containers"][0], Context(), objects);
  REQUIRE(node_env.ok());
  CHECK(AsMap(node_env->env)["CPU"] == "4");
  CHECK(AsMap(node_env->env)["MEM"] == std::to_string(8LL << 30));

  json bad = Pod(json::array({{{"name", "c"}, {"env", json::array({field("X", "spec.nope")})}}}));
  auto err = BuildEnvironment(bad, bad["spec"]["containers"][0], Context(), objects);
  REQUIRE_FALSE(err.ok());
  CHECK(err.status().message() == "unsupported fieldPath: spec.nope");
}

TEST_CASE("env: ConfigMap and Secret keys, optional, and the kubelet's errors") {
  orch::testing::FakeObjectSource objects;
  objects.AddConfigMap("shop", "settings", {{"greeting", "hi"}});
  objects.AddSecret("shop", "creds", {{"token", orch::Base64Encode("t0k")}});
  auto key_ref = [](const std::string& name, const char* kind, const std::string& source,
                    const std::string& key, bool optional) {
    json ref = {{"name", source}, {"key", key}};
    if (optional) ref["optional"] = true;
    return json{{"name", name}, {"valueFrom", {{kind, ref}}}};
  };
  auto run = [&](json env) {
    json pod = Pod(json::array({{{"name", "c"}, {"env", std::move(env)}}}));
    return BuildEnvironment(pod, pod["spec"]["containers"][0], Context(), objects);
  };
  auto ok = run(json::array({key_ref("G", "configMapKeyRef", "settings", "greeting", false),
                             key_ref("T", "secretKeyRef", "creds", "token", false),
                             key_ref("O1", "configMapKeyRef", "absent", "x", true),
                             key_ref("O2", "secretKeyRef", "creds", "absent", true)}));
  REQUIRE(ok.ok());
  auto vars = AsMap(ok->env);
  CHECK(vars["G"] == "hi");
  CHECK(vars["T"] == "t0k");
  CHECK_FALSE(vars.contains("O1"));
  CHECK_FALSE(vars.contains("O2"));

  auto missing_map = run(json::array({key_ref("G", "configMapKeyRef", "absent", "x", false)}));
  REQUIRE_FALSE(missing_map.ok());
  CHECK(missing_map.status().message() == "configmap \"absent\" not found");
  auto missing_secret = run(json::array({key_ref("G", "secretKeyRef", "nope", "x", false)}));
  REQUIRE_FALSE(missing_secret.ok());
  CHECK(missing_secret.status().message() == "secret \"nope\" not found");
  auto missing_key = run(json::array({key_ref("G", "configMapKeyRef", "settings", "x", false)}));
  REQUIRE_FALSE(missing_key.ok());
  CHECK(missing_key.status().message() == "couldn't find key x in ConfigMap shop/settings");
  auto missing_secret_key = run(json::array({key_ref("G", "secretKeyRef", "creds", "x", false)}));
  REQUIRE_FALSE(missing_secret_key.ok());
  CHECK(missing_secret_key.status().message() == "couldn't find key x in Secret shop/creds");
}

TEST_CASE("command and args expand $(VAR) from the final environment") {
  json container = {{"command", json::array({"sh", "-c", "echo $(MSG) $(NOPE) $$(MSG)"})},
                    {"args", json::array({"--name=$(NAME)"})}};
  auto [command, args] = ExpandCommandAndArgs(container, {{"MSG", "hi"}, {"NAME", "web"}});
  CHECK(command == std::vector<std::string>{"sh", "-c", "echo hi $(NOPE) $(MSG)"});
  CHECK(args == std::vector<std::string>{"--name=web"});
}
