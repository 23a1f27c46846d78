// orch's containerd config: registries.yaml (k3s's format) parsing, its translation into
// containerd 1.6 hosts.toml files and CRI auth sections, and the generated config.toml.
#include "containerd_config.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "orch/files.h"
#include "pause_image.h"

using Catch::Contains;
using orch::cri::ContainerdConfigToml;
using orch::cri::ContainerdOptions;
using orch::cri::LayoutFor;
using orch::cri::ParseRegistriesYaml;
using orch::cri::Registries;
using orch::cri::RegistryHostsFiles;

namespace {

Registries Parse(const std::string& text) {
  auto r = ParseRegistriesYaml(text);
  REQUIRE(r.ok());
  return *r;
}

std::string ParseError(const std::string& text) {
  auto r = ParseRegistriesYaml(text);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == orch::StatusCode::kInvalidArgument);
  return r.status().message();
}

}  // namespace

TEST_CASE("registries.yaml in k3s's format parses") {
  Registries r = Parse(R"(
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.example.com:5000"
      - "http://10.0.0.5:5000"
  "*":
    endpoint: ["http://cache.local"]
configs:
  "mirror.example.com:5000":
    auth:
      username: alice
      password: "s3cret"
    tls:
      insecure_skip_verify: true
      ca_file: /etc/ssl/mirror-ca.pem
  registry.local:
    tls:
      cert_file: /c.pem
      key_file: /k.pem
    unknown_key: ignored
)");
  REQUIRE(r.mirrors.size() == 2);
  CHECK(r.mirrors["docker.io"].endpoints ==
        std::vector<std::string>{"https://mirror.example.com:5000", "http://10.0.0.5:5000"});
  CHECK(r.mirrors["*"].endpoints == std::vector<std::string>{"http://cache.local"});
  REQUIRE(r.configs.size() == 2);
  const auto& m = r.configs["mirror.example.com:5000"];
  CHECK(m.username == "alice");
  CHECK(m.password == "s3cret");
  CHECK(m.insecure_skip_verify);
  CHECK(m.ca_file == "/etc/ssl/mirror-ca.pem");
  CHECK(r.configs["registry.local"].cert_file == "/c.pem");
  CHECK_FALSE(r.configs["registry.local"].insecure_skip_verify);
}

TEST_CASE("An empty registries.yaml means no registries") {
  CHECK(Parse("").mirrors.empty());
  CHECK(Parse("# nothing\n").configs.empty());
  CHECK(Parse("mirrors:\nconfigs:\n").mirrors.empty());
}

TEST_CASE("Malformed registries.yaml is refused with the entry named") {
  CHECK_THAT(ParseError("- a\n- b\n"), Contains("top level must be a map"));
  CHECK_THAT(ParseError("mirrors: [a]\n"), Contains("mirrors must be a map"));
  CHECK_THAT(ParseError("mirrors:\n  docker.io:\n    endpoint: https://x\n"),
             Contains("mirrors.docker.io.endpoint must be a list"));
  CHECK_THAT(ParseError("configs:\n  r:\n    auth:\n      username: [x]\n"),
             Contains("configs.r.auth.username"));
  CHECK_THAT(ParseError("configs:\n  r:\n    tls:\n      insecure_skip_verify: maybe\n"),
             Contains("registries.yaml"));
  CHECK_THAT(ParseError("mirrors: {\n"), Contains("registries.yaml"));
}

TEST_CASE("Mirrors become hosts.toml files with TLS from the endpoint's config") {
  auto files = RegistryHostsFiles(Parse(R"(
mirrors:
  docker.io:
    endpoint: ["https://mirror.example.com:5000/", "10.0.0.5:5000"]
  registry.local:5000:
    endpoint: ["http://registry.local:5000"]
configs:
  "mirror.example.com:5000":
    tls:
      insecure_skip_verify: true
      ca_file: /ca.pem
      cert_file: /c.pem
      key_file: /k.pem
)"));
  // The mirror's own host gets a file too, so pulls that name it directly use its TLS settings.
  REQUIRE(files.size() == 3);
  CHECK(files["mirror.example.com:5000"] ==
        "server = \"https://mirror.example.com:5000\"\n"
        "skip_verify = true\n"
        "ca = \"/ca.pem\"\n"
        "client = [[\"/c.pem\", \"/k.pem\"]]\n"
        "\n[host.\"https://mirror.example.com:5000\"]\n"
        "  capabilities = [\"pull\", \"resolve\"]\n"
        "  skip_verify = true\n"
        "  ca = \"/ca.pem\"\n"
        "  client = [[\"/c.pem\", \"/k.pem\"]]\n");
  CHECK(files["docker.io"] ==
        "server = \"https://registry-1.docker.io\"\n"
        "\n[host.\"https://mirror.example.com:5000\"]\n"
        "  capabilities = [\"pull\", \"resolve\"]\n"
        "  skip_verify = true\n"
        "  ca = \"/ca.pem\"\n"
        "  client = [[\"/c.pem\", \"/k.pem\"]]\n"
        "\n[host.\"https://10.0.0.5:5000\"]\n"
        "  capabilities = [\"pull\", \"resolve\"]\n");
  CHECK(files["registry.local:5000"] ==
        "server = \"https://registry.local:5000\"\n"
        "\n[host.\"http://registry.local:5000\"]\n"
        "  capabilities = [\"pull\", \"resolve\"]\n");
}

TEST_CASE("The * mirror is containerd's _default host folder, without a server") {
  auto files =
      RegistryHostsFiles(Parse("mirrors:\n  \"*\":\n    endpoint: [\"http://cache:80\"]\n"));
  REQUIRE(files.size() == 1);
  CHECK(files["_default"] ==
        "\n[host.\"http://cache:80\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
}

TEST_CASE("TLS settings of a registry without mirrors get their own hosts.toml") {
  auto files = RegistryHostsFiles(Parse(R"(
configs:
  insecure.local:8443:
    tls:
      insecure_skip_verify: true
  authonly.local:
    auth:
      username: u
)"));
  REQUIRE(files.size() == 1);
  CHECK(files["insecure.local:8443"] ==
        "server = \"https://insecure.local:8443\"\nskip_verify = true\n"
        "\n[host.\"https://insecure.local:8443\"]\n"
        "  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n");
}

TEST_CASE("config.toml has the paths, the CRI settings this host needs, and the credentials") {
  ContainerdOptions options;
  options.data_dir = "/var/lib/orch";
  auto layout = LayoutFor(options);
  CHECK(layout.socket == "/var/lib/orch/agent/containerd/containerd.sock");
  CHECK(layout.cni_conf_dir == "/var/lib/orch/agent/etc/cni/net.d");
  CHECK(layout.images_dir == "/var/lib/orch/agent/images");
  CHECK(layout.registries_file == "/var/lib/orch/registries.yaml");
  std::string toml = ContainerdConfigToml(options, layout, Parse(R"(
configs:
  "registry.example.com:5000":
    auth: {username: bob, password: "pa\"ss"}
  docker.io:
    auth: {auth: "Ym9iOnB3"}
  tlsonly.local:
    tls: {insecure_skip_verify: true}
)"));
  CHECK_THAT(toml, Contains("version = 2\n"));
  CHECK_THAT(toml, Contains("root = \"/var/lib/orch/agent/containerd/root\"\n"));
  CHECK_THAT(toml, Contains("state = \"/var/lib/orch/agent/containerd/state\"\n"));
  CHECK_THAT(toml,
             Contains("[grpc]\n  address = \"/var/lib/orch/agent/containerd/containerd.sock\"\n"));
  CHECK_THAT(toml, Contains("  sandbox_image = \"docker.io/orch/pause:3.9\"\n"));
  CHECK_THAT(toml, Contains("  restrict_oom_score_adj = true\n"));
  CHECK_THAT(toml, Contains("    snapshotter = \"overlayfs\"\n"));
  CHECK_THAT(toml, Contains("    bin_dir = \"/usr/lib/cni\"\n"));
  CHECK_THAT(toml, Contains("    conf_dir = \"/var/lib/orch/agent/etc/cni/net.d\"\n"));
  CHECK_THAT(toml, Contains("    config_path = \"/var/lib/orch/agent/containerd/certs.d\"\n"));
  CHECK_THAT(toml, Contains("registry.configs.\"registry.example.com:5000\".auth]\n"
                            "      username = \"bob\"\n      password = \"pa\\\"ss\"\n"));
  CHECK_THAT(toml, Contains("registry.configs.\"docker.io\".auth]\n      auth = \"Ym9iOnB3\"\n"));
  CHECK_THAT(toml, Contains("registry.configs.\"registry-1.docker.io\".auth]\n"));
  // containerd 1.6 refuses `mirrors` and `configs.tls` next to config_path.
  CHECK_THAT(toml, !Contains("registry.mirrors"));
  CHECK_THAT(toml, !Contains(".tls]"));
  CHECK_THAT(toml, !Contains("tlsonly"));
  CHECK_THAT(toml, Contains("  level = \"info\"\n"));
  options.debug = true;
  options.cni_conf_dir = "/etc/cni/net.d";
  toml = ContainerdConfigToml(options, LayoutFor(options), {});
  CHECK_THAT(toml, Contains("  level = \"debug\"\n"));
  CHECK_THAT(toml, Contains("    conf_dir = \"/etc/cni/net.d\"\n"));
  CHECK_THAT(toml, !Contains(".auth]"));
}

TEST_CASE("The linked-in pause archive is an OCI layout naming kPauseImage") {
  std::string_view archive = orch::cri::PauseImageArchive();
  REQUIRE(archive.size() > 10000);
  // A tar: the "ustar" magic at offset 257 of the first header.
  CHECK(archive.substr(257, 5) == "ustar");
  CHECK(archive.find("\"imageLayoutVersion\":\"1.0.0\"") != std::string_view::npos);
  CHECK(archive.find(std::string("\"io.containerd.image.name\":\"") + orch::cri::kPauseImage +
                     "\"") != std::string_view::npos);
}

namespace {

struct TempDataDir {
  TempDataDir() {
    char tmpl[] = "/tmp/orch-containerd-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDataDir() { std::filesystem::remove_all(path); }
  std::string path;
};

}  // namespace

TEST_CASE("Start refuses a malformed registries.yaml before starting anything") {
  TempDataDir dir;
  REQUIRE(orch::WriteFileAtomic(dir.path + "/registries.yaml", "mirrors: [oops]\n", 0600).ok());
  ContainerdOptions options;
  options.data_dir = dir.path;
  options.containerd_binary = "/nonexistent/containerd";
  auto containerd = orch::cri::NewContainerd(options);
  orch::Status s = containerd->Start();
  CHECK(s.code() == orch::StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Contains(dir.path + "/registries.yaml"));
  CHECK_THAT(s.message(), Contains("mirrors must be a map"));
  CHECK(containerd->starts() == 0);
}

TEST_CASE("Start writes the config files and fails cleanly when containerd cannot run") {
  TempDataDir dir;
  REQUIRE(orch::WriteFileAtomic(dir.path + "/registries.yaml",
                                "mirrors:\n  docker.io:\n    endpoint: [\"http://m:5000\"]\n", 0600)
              .ok());
  ContainerdOptions options;
  options.data_dir = dir.path;
  options.containerd_binary = "/nonexistent/containerd";
  auto containerd = orch::cri::NewContainerd(options);
  orch::Status s = containerd->Start();
  CHECK_THAT(s.message(), Contains("cannot run /nonexistent/containerd"));
  CHECK(containerd->pid() == -1);
  auto layout = LayoutFor(options);
  auto config = orch::ReadFileToString(layout.config_file);
  REQUIRE(config.ok());
  CHECK_THAT(*config, Contains("restrict_oom_score_adj = true"));
  auto hosts = orch::ReadFileToString(layout.hosts_dir + "/docker.io/hosts.toml");
  REQUIRE(hosts.ok());
  CHECK_THAT(*hosts, Contains("[host.\"http://m:5000\"]"));
  auto pause = orch::ReadFileToString(layout.pause_archive);
  REQUIRE(pause.ok());
  CHECK(pause->size() == orch::cri::PauseImageArchive().size());
  CHECK(std::filesystem::is_directory(layout.cni_conf_dir));
  CHECK(std::filesystem::is_directory(layout.images_dir));
  containerd->Stop();  // harmless after a failed start
}

TEST_CASE("A data dir too deep for a unix socket path is refused") {
  ContainerdOptions options;
  options.data_dir = "/tmp/" + std::string(120, 'x');
  orch::Status s = orch::cri::NewContainerd(options)->Start();
  CHECK(s.code() == orch::StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Contains("too long"));
}
