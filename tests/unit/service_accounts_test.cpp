// Service accounts in a real API server on a temporary SQLite store: ServiceAccount admission
// (default account, kube-api-access volume, automount rules, missing accounts), TokenRequest
// (defaults, bounds, bindings, errors) and authentication of the tokens over HTTPS (bound pod
// deleted, garbage), through the in-process and HTTPS clients.
#include <catch2/catch.hpp>
#include <filesystem>

#include "orch/apiserver.h"
#include "orch/sa_token.h"
#include "orch/store.h"
#include "test_api_server.h"

namespace orch {
namespace {

using nlohmann::json;

// A server that signs and checks service-account tokens, with an admin client.
struct TestServer : testing::TestApiServer {
  std::unique_ptr<ApiClient> admin;

  TestServer()
      : TestApiServer("orch-sa-", [](ApiServerOptions& options, const std::filesystem::path& dir) {
          options.service_account_key_file = (dir / "service.key").string();
          options.api_audiences = {satoken::kDefaultIssuer, "k3s"};
        }) {
    admin = server->NewClient("admin", {"system:masters"}, "test");
  }

  std::unique_ptr<ApiClient> WithToken(const std::string& token) {
    HttpsClientOptions o;
    o.server_url = "https://127.0.0.1:" + std::to_string(server->port());
    o.ca_pem = ca_pem;
    o.bearer_token = token;
    auto client = NewHttpsApiClient(o);
    REQUIRE(client.ok());
    return std::move(*client);
  }
};

json Pod(const std::string& name, json spec_extra = json::object()) {
  json spec = {{"containers", {{{"name", "c"}, {"image", "busybox"}}}}};
  spec.update(spec_extra);
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", spec}};
}

json Claims(const std::string& token) {
  size_t first = token.find('.'), second = token.find('.', first + 1);
  return json::parse(*satoken::Base64UrlDecode(token.substr(first + 1, second - first - 1)));
}

const json* VolumeNamed(const json& pod, const std::string& prefix) {
  if (!pod["spec"].contains("volumes")) return nullptr;
  for (const json& v : pod["spec"]["volumes"]) {
    if (v["name"].get<std::string>().rfind(prefix, 0) == 0) return &v;
  }
  return nullptr;
}

TEST_CASE("pods get their service account and the kube-api-access volume") {
  TestServer ts;
  auto pod = ts.admin->Create(
      resources::kPods, "default",
      Pod("web", {{"initContainers", {{{"name", "init"}, {"image", "busybox"}}}}}));
  REQUIRE(pod.ok());
  CHECK((*pod)["spec"]["serviceAccountName"] == "default");
  CHECK((*pod)["spec"]["serviceAccount"] == "default");
  const json* volume = VolumeNamed(*pod, "kube-api-access-");
  REQUIRE(volume != nullptr);
  std::string name = (*volume)["name"];
  CHECK(name.size() == std::string("kube-api-access-").size() + 5);
  const json& projected = (*volume)["projected"];
  CHECK(projected["defaultMode"] == 420);
  REQUIRE(projected["sources"].size() == 3);
  CHECK(projected["sources"][0]["serviceAccountToken"] ==
        json({{"expirationSeconds", 3607}, {"path", "token"}}));
  CHECK(projected["sources"][1]["configMap"]["name"] == "kube-root-ca.crt");
  CHECK(projected["sources"][1]["configMap"]["items"][0] ==
        json({{"key", "ca.crt"}, {"path", "ca.crt"}}));
  CHECK(projected["sources"][2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] ==
        "metadata.namespace");
  for (const char* list : {"initContainers", "containers"}) {
    const json& mount = (*pod)["spec"][list][0]["volumeMounts"][0];
    CHECK(mount["name"] == name);
    CHECK(mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount");
    CHECK(mount["readOnly"] == true);
  }
}

TEST_CASE("automountServiceAccountToken: the pod's word wins over the account's") {
  TestServer ts;
  json sa = {{"apiVersion", "v1"},
             {"kind", "ServiceAccount"},
             {"metadata", {{"name", "quiet"}, {"namespace", "default"}}},
             {"automountServiceAccountToken", false},
             {"imagePullSecrets", {{{"name", "regcred"}}}}};
  REQUIRE(ts.admin->Create(resources::kServiceAccounts, "default", sa).ok());
  auto off = ts.admin->Create(resources::kPods, "default",
                              Pod("off", {{"automountServiceAccountToken", false}}));
  REQUIRE(off.ok());
  CHECK(VolumeNamed(*off, "kube-api-access-") == nullptr);
  auto quiet = ts.admin->Create(resources::kPods, "default",
                                Pod("quiet", {{"serviceAccountName", "quiet"}}));
  REQUIRE(quiet.ok());
  CHECK(VolumeNamed(*quiet, "kube-api-access-") == nullptr);
  CHECK((*quiet)["spec"]["imagePullSecrets"] == json::array({{{"name", "regcred"}}}));
  auto forced = ts.admin->Create(
      resources::kPods, "default",
      Pod("forced", {{"serviceAccountName", "quiet"}, {"automountServiceAccountToken", true}}));
  REQUIRE(forced.ok());
  CHECK(VolumeNamed(*forced, "kube-api-access-") != nullptr);
  // A container that mounts something of its own there keeps it.
  json own = Pod("own", {{"volumes", {{{"name", "mine"}, {"emptyDir", json::object()}}}}});
  own["spec"]["containers"][0]["volumeMounts"] = {
      {{"name", "mine"}, {"mountPath", "/var/run/secrets/kubernetes.io/serviceaccount"}}};
  auto kept = ts.admin->Create(resources::kPods, "default", own);
  REQUIRE(kept.ok());
  CHECK((*kept)["spec"]["containers"][0]["volumeMounts"].size() == 1);
  CHECK(VolumeNamed(*kept, "kube-api-access-") == nullptr);
}

TEST_CASE("a pod of a missing service account is refused") {
  TestServer ts;
  auto pod = ts.admin->Create(resources::kPods, "default",
                              Pod("lost", {{"serviceAccountName", "nobody"}}));
  REQUIRE_FALSE(pod.ok());
  CHECK(pod.status().message() ==
        "pods \"lost\" is forbidden: error looking up service account default/nobody: "
        "serviceaccount \"nobody\" not found");
}

TEST_CASE("TokenRequest issues tokens that authenticate as the service account") {
  TestServer ts;
  auto issued = ts.admin->Post(resources::kServiceAccounts, "default", "default", "token",
                               {{"apiVersion", "authentication.k8s.io/v1"},
                                {"kind", "TokenRequest"},
                                {"spec", json::object()}});
  REQUIRE(issued.ok());
  CHECK((*issued)["kind"] == "TokenRequest");
  CHECK((*issued)["spec"]["expirationSeconds"] == 3600);
  CHECK((*issued)["spec"]["audiences"] == json::array({satoken::kDefaultIssuer, "k3s"}));
  std::string token = (*issued)["status"]["token"];
  json claims = Claims(token);
  CHECK(claims["sub"] == "system:serviceaccount:default:default");
  CHECK(claims["exp"].get<int64_t>() - claims["iat"].get<int64_t>() == 3600);
  CHECK_FALSE(claims["kubernetes.io"].contains("pod"));
  CHECK(!(*issued)["status"]["expirationTimestamp"].get<std::string>().empty());

  auto as_sa = ts.WithToken(token);
  auto listed = as_sa->List(resources::kPods, "default");
  CHECK(listed.ok());

  auto garbage = ts.WithToken("eyJhbGciOiJSUzI1NiJ9.e30.AAAA");
  auto refused = garbage->List(resources::kPods, "default");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message() == "Unauthorized");
}

TEST_CASE("TokenRequest errors are upstream's") {
  TestServer ts;
  auto short_lived = ts.admin->Post(resources::kServiceAccounts, "default", "default", "token",
                                    {{"spec", {{"expirationSeconds", 60}}}});
  REQUIRE_FALSE(short_lived.ok());
  CHECK(short_lived.status().message().find(
            "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 "
            "minutes") != std::string::npos);
  auto missing =
      ts.admin->Post(resources::kServiceAccounts, "default", "nobody", "token", json::object());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);
  auto bad_kind = ts.admin->Post(
      resources::kServiceAccounts, "default", "default", "token",
      {{"spec",
        {{"boundObjectRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "x"}}}}}});
  REQUIRE_FALSE(bad_kind.ok());
  CHECK(bad_kind.status().message() ==
        "cannot bind token to object of type apps/v1, Kind=Deployment");
}

TEST_CASE("a token bound to a pod dies with the pod") {
  TestServer ts;
  auto pod = ts.admin->Create(resources::kPods, "default", Pod("web"));
  REQUIRE(pod.ok());
  std::string uid = (*pod)["metadata"]["uid"];
  json ref = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", "web"}, {"uid", uid}};
  auto issued = ts.admin->Post(resources::kServiceAccounts, "default", "default", "token",
                               {{"spec", {{"boundObjectRef", ref}, {"expirationSeconds", 3607}}}});
  REQUIRE(issued.ok());
  std::string token = (*issued)["status"]["token"];
  json claims = Claims(token);
  CHECK(claims["kubernetes.io"]["pod"] == json({{"name", "web"}, {"uid", uid}}));
  // The kube-api-access lifetime is extended, flagged by warnafter; the status says 3607 s.
  CHECK(claims["kubernetes.io"]["warnafter"].get<int64_t>() - claims["iat"].get<int64_t>() == 3607);
  CHECK(claims["exp"].get<int64_t>() - claims["iat"].get<int64_t>() == 365LL * 24 * 3600);

  auto as_pod = ts.WithToken(token);
  REQUIRE(as_pod->Get(resources::kPods, "default", "web").ok());

  // Another account may not bind to this pod; a stale uid conflicts.
  json other = {{"apiVersion", "v1"},
                {"kind", "ServiceAccount"},
                {"metadata", {{"name", "other"}, {"namespace", "default"}}}};
  REQUIRE(ts.admin->Create(resources::kServiceAccounts, "default", other).ok());
  auto wrong = ts.admin->Post(resources::kServiceAccounts, "default", "other", "token",
                              {{"spec", {{"boundObjectRef", ref}}}});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.status().message() ==
        "cannot bind token for serviceaccount \"other\" to pod running with different "
        "serviceaccount name.");
  json stale = ref;
  stale["uid"] = "00000000-0000-0000-0000-000000000000";
  auto conflict = ts.admin->Post(resources::kServiceAccounts, "default", "default", "token",
                                 {{"spec", {{"boundObjectRef", stale}}}});
  REQUIRE_FALSE(conflict.ok());
  CHECK(conflict.status().code() == StatusCode::kConflict);

  // A second token, never used (the server remembers successes for 10 s).
  auto unused = ts.admin->Post(resources::kServiceAccounts, "default", "default", "token",
                               {{"spec", {{"boundObjectRef", ref}}}});
  REQUIRE(unused.ok());
  DeleteOptions now;
  now.grace_period_seconds = 0;
  REQUIRE(ts.admin->Delete(resources::kPods, "default", "web", now).ok());
  auto after = ts.WithToken((*unused)["status"]["token"])->List(resources::kPods, "default");
  REQUIRE_FALSE(after.ok());
  CHECK(after.status().message() == "Unauthorized");
  // Nor can new tokens be bound to it.
  auto issued_again = ts.admin->Post(resources::kServiceAccounts, "default", "default", "token",
                                     {{"spec", {{"boundObjectRef", ref}}}});
  CHECK(issued_again.status().code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace orch
