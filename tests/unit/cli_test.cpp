// The orch command line: defaults, every flag landing in its config field, config file and
// environment merging with their precedence, and one-line errors for bad input.
#include "cli.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

namespace {

using Args = std::vector<std::string>;

orch::Result<orch::Invocation> Parse(const Args& args, const std::string& config_file = "") {
  orch::CliDefaults defaults;
  defaults.config_file = config_file;
  return orch::ParseCommandLine(args, defaults);
}

orch::Invocation MustParse(const Args& args, const std::string& config_file = "") {
  auto inv = Parse(args, config_file);
  INFO((inv.ok() ? "" : inv.status().message()));
  REQUIRE(inv.ok());
  return *inv;
}

std::string ErrorOf(const Args& args, const std::string& config_file = "") {
  auto inv = Parse(args, config_file);
  if (inv.ok()) return "";
  CHECK(inv.status().code() == orch::StatusCode::kInvalidArgument);
  CHECK(inv.status().message().find('\n') == std::string::npos);  // one line
  return inv.status().message();
}

// A temporary folder removed with its files at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/orch-cli-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string file = path_ + "/" + name;
    std::ofstream(file) << content;
    return file;
  }

 private:
  std::string path_;
};

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

}  // namespace

using Catch::Contains;
using orch::Command;

TEST_CASE("Server defaults match k3s") {
  auto inv = MustParse({"server"});
  CHECK(inv.command == Command::kServer);
  const orch::ServerConfig& s = inv.server;
  CHECK(s.data_dir == "/var/lib/orch");
  CHECK(s.https_listen_port == 6443);
  CHECK(s.bind_address == "0.0.0.0");
  CHECK(s.write_kubeconfig == "/etc/orch/orch.yaml");
  CHECK(s.write_kubeconfig_mode == 0600);
  CHECK(s.cluster_cidr == "10.42.0.0/16");
  CHECK(s.service_cidr == "10.43.0.0/16");
  CHECK(s.cluster_dns == "10.43.0.10");
  CHECK(s.cluster_domain == "cluster.local");
  CHECK(s.token.empty());
  CHECK(s.datastore_endpoint.empty());
  CHECK_FALSE(s.disable_agent);
  CHECK_FALSE(s.debug);
  CHECK_FALSE(inv.print_config);
  CHECK(inv.config_file.empty());
  CHECK(s.agent.node_name.empty());  // filled by ResolveHostDefaults
  CHECK(s.agent.data_dir == "/var/lib/orch");
}

TEST_CASE("Every server flag lands in ServerConfig") {
  TempDir dir;
  std::string token_file = dir.Write("token", "  from-file \n");
  auto inv = MustParse({"server",
                        "-d",
                        "/srv/orch",
                        "--https-listen-port",
                        "7443",
                        "--bind-address",
                        "10.0.0.5",
                        "--advertise-address",
                        "10.0.0.6",
                        "--tls-san",
                        "a.example.com",
                        "--tls-san",
                        "10.0.0.7,b.example.com",
                        "-o",
                        "/tmp/k.yaml",
                        "--write-kubeconfig-mode",
                        "644",
                        "--token-file",
                        token_file,
                        "--datastore-endpoint",
                        "http://127.0.0.1:2379",
                        "--datastore-cafile",
                        "/ca.pem",
                        "--datastore-certfile",
                        "/c.pem",
                        "--datastore-keyfile",
                        "/k.pem",
                        "--cluster-cidr",
                        "10.52.0.0/16",
                        "--service-cidr",
                        "10.53.0.0/16",
                        "--cluster-domain",
                        "example.local",
                        "--node-name",
                        "n1",
                        "--node-ip",
                        "10.0.0.8",
                        "--node-label",
                        "a=b",
                        "--node-label",
                        "c=d,e=f",
                        "--node-taint",
                        "k=v:NoSchedule",
                        "--container-runtime-endpoint",
                        "unix:///run/containerd/containerd.sock",
                        "--disable-agent",
                        "--disable",
                        "servicelb",
                        "--disable",
                        "coredns,traefik",
                        "--debug",
                        "--print-config"});
  const orch::ServerConfig& s = inv.server;
  CHECK(s.data_dir == "/srv/orch");
  CHECK(s.https_listen_port == 7443);
  CHECK(s.bind_address == "10.0.0.5");
  CHECK(s.advertise_address == "10.0.0.6");
  CHECK(s.tls_san == Args{"a.example.com", "10.0.0.7", "b.example.com"});
  CHECK(s.write_kubeconfig == "/tmp/k.yaml");
  CHECK(s.write_kubeconfig_mode == 0644);
  CHECK(s.token == "from-file");
  CHECK(s.datastore_endpoint == "http://127.0.0.1:2379");
  CHECK(s.datastore_cafile == "/ca.pem");
  CHECK(s.datastore_certfile == "/c.pem");
  CHECK(s.datastore_keyfile == "/k.pem");
  CHECK(s.cluster_cidr == "10.52.0.0/16");
  CHECK(s.service_cidr == "10.53.0.0/16");
  CHECK(s.cluster_dns == "10.53.0.10");  // follows the service CIDR
  CHECK(s.cluster_domain == "example.local");
  CHECK(s.agent.node_name == "n1");
  CHECK(s.agent.node_ip == "10.0.0.8");
  CHECK(s.agent.node_labels == Args{"a=b", "c=d", "e=f"});
  CHECK(s.agent.node_taints == Args{"k=v:NoSchedule"});
  CHECK(s.agent.container_runtime_endpoint == "unix:///run/containerd/containerd.sock");
  CHECK(s.disable_agent);
  CHECK(s.disable == Args{"servicelb", "dns", "ingress"});
  CHECK(s.debug);
  CHECK(inv.print_config);
  // The embedded agent mirrors the server.
  CHECK(s.agent.data_dir == "/srv/orch");
  CHECK(s.agent.cluster_dns == "10.53.0.10");
  CHECK(s.agent.cluster_domain == "example.local");
  CHECK(s.agent.debug);

  auto explicit_dns = MustParse({"server", "--cluster-dns", "10.43.0.53", "-t", "tok"});
  CHECK(explicit_dns.server.cluster_dns == "10.43.0.53");
  CHECK(explicit_dns.server.token == "tok");
}

TEST_CASE("Every agent flag lands in AgentConfig, --join and -s alias --server") {
  auto inv = MustParse({"agent", "--server", "https://10.0.0.1:6443", "--token", "t", "-d",
                        "/srv/a", "--node-name", "w1", "--node-ip", "10.0.0.9", "--node-label",
                        "x=y", "--node-taint", "gpu:NoExecute", "--container-runtime-endpoint",
                        "unix:///x.sock", "--debug"});
  CHECK(inv.command == Command::kAgent);
  const orch::AgentConfig& a = inv.agent;
  CHECK(a.server_url == "https://10.0.0.1:6443");
  CHECK(a.token == "t");
  CHECK(a.data_dir == "/srv/a");
  CHECK(a.node_name == "w1");
  CHECK(a.node_ip == "10.0.0.9");
  CHECK(a.node_labels == Args{"x=y"});
  CHECK(a.node_taints == Args{"gpu:NoExecute"});
  CHECK(a.container_runtime_endpoint == "unix:///x.sock");
  CHECK(a.debug);

  CHECK(MustParse({"agent", "--join", "https://m:6443", "-t", "t"}).agent.server_url ==
        "https://m:6443");
  CHECK(MustParse({"agent", "-s", "https://m:6443", "-t", "t"}).agent.server_url ==
        "https://m:6443");
}

TEST_CASE("Environment variables fill what flags do not") {
  ScopedEnv url("ORCH_URL", "https://env:6443");
  ScopedEnv token("ORCH_TOKEN", "env-token");
  ScopedEnv dir("ORCH_DATA_DIR", "/env/dir");
  auto inv = MustParse({"agent"});
  CHECK(inv.agent.server_url == "https://env:6443");
  CHECK(inv.agent.token == "env-token");
  CHECK(inv.agent.data_dir == "/env/dir");
  // A flag wins over the environment.
  CHECK(MustParse({"agent", "--token", "flag"}).agent.token == "flag");

  ScopedEnv mode("ORCH_KUBECONFIG_MODE", "0640");
  CHECK(MustParse({"server"}).server.write_kubeconfig_mode == 0640);
}

TEST_CASE("The config file sets keys; flags and then environment win over it") {
  TempDir dir;
  std::string file = dir.Write("config.yaml", R"(
write-kubeconfig-mode: "0644"
https-listen-port: 7443
tls-san: [one.example.com, 10.0.0.1]
node-label:
  - a=b
  - c=d
cluster-cidr: 10.52.0.0/16
node-name: from-file
token: file-token
debug: true
disable: servicelb,coredns
)");
  auto inv = MustParse({"server", "--node-name", "from-flag"}, file);
  const orch::ServerConfig& s = inv.server;
  CHECK(inv.config_file == file);
  CHECK(s.write_kubeconfig_mode == 0644);
  CHECK(s.https_listen_port == 7443);
  CHECK(s.tls_san == Args{"one.example.com", "10.0.0.1"});
  CHECK(s.agent.node_labels == Args{"a=b", "c=d"});
  CHECK(s.cluster_cidr == "10.52.0.0/16");
  CHECK(s.agent.node_name == "from-flag");
  CHECK(s.token == "file-token");
  CHECK(s.debug);
  CHECK(s.disable == Args{"servicelb", "dns"});

  // A repeatable flag on the command line replaces the file's list.
  CHECK(MustParse({"server", "--node-label", "x=y"}, file).server.agent.node_labels == Args{"x=y"});

  // The environment wins over the file.
  {
    ScopedEnv token("ORCH_TOKEN", "env-token");
    CHECK(MustParse({"server"}, file).server.token == "env-token");
  }

  // --config (before or after the sub-command) and ORCH_CONFIG_FILE name the file.
  CHECK(MustParse({"--config", file, "server"}).server.https_listen_port == 7443);
  CHECK(MustParse({"server", "-c", file}).server.https_listen_port == 7443);
  {
    ScopedEnv env("ORCH_CONFIG_FILE", file.c_str());
    CHECK(MustParse({"server"}).server.https_listen_port == 7443);
  }
}

TEST_CASE("A missing default config file is fine, a named one is not") {
  CHECK(MustParse({"server"}, "/nonexistent/config.yaml").config_file.empty());
  CHECK_THAT(ErrorOf({"server", "--config", "/nonexistent/config.yaml"}),
             Contains("/nonexistent/config.yaml"));
  ScopedEnv env("ORCH_CONFIG_FILE", "/nonexistent/env.yaml");
  CHECK_THAT(ErrorOf({"server"}),
             Contains("ORCH_CONFIG_FILE") && Contains("/nonexistent/env.yaml"));
  // Commands that do not read the file do not care.
  CHECK(MustParse({"version"}).command == Command::kVersion);
  CHECK(MustParse({"check-config"}).command == Command::kCheckConfig);
}

TEST_CASE("Config file errors") {
  TempDir dir;
  CHECK_THAT(ErrorOf({"server"}, dir.Write("a.yaml", "no-such-flag: 1\n")),
             Contains("unknown key 'no-such-flag'"));
  CHECK_THAT(ErrorOf({"agent", "-t", "x", "-s", "https://m:6443"},
                     dir.Write("b.yaml", "cluster-cidr: 10.0.0.0/16\n")),
             Contains("unknown key 'cluster-cidr'"));
  CHECK_THAT(ErrorOf({"server"}, dir.Write("c.yaml", "tls-san: {a: b}\n")),
             Contains("'tls-san' must be a string or a list"));
  CHECK_THAT(ErrorOf({"server"}, dir.Write("d.yaml", "- a\n- b\n")), Contains("expected a map"));
  CHECK_THAT(ErrorOf({"server"}, dir.Write("e.yaml", "a: [\n")), Contains("e.yaml"));
  CHECK_THAT(ErrorOf({"server"}, dir.Write("f.yaml", "cluster-cidr: 10.42.0.0/33\n")),
             Contains("--cluster-cidr"));
  CHECK(MustParse({"server"}, dir.Write("empty.yaml", "")).command == Command::kServer);
  CHECK(MustParse({"server"}, dir.Write("null.yaml", "node-label:\n")).command == Command::kServer);
}

TEST_CASE("Bad input is one line naming the problem") {
  CHECK_THAT(
      ErrorOf({"server", "--no-such-flag"}),
      Contains("unknown flag or argument: --no-such-flag") && Contains("orch server --help"));
  CHECK_THAT(ErrorOf({"bogus"}), Contains("bogus"));
  CHECK_THAT(ErrorOf({"server", "--cluster-cidr", "10.42.0.0/33"}), Contains("--cluster-cidr"));
  CHECK_THAT(ErrorOf({"server", "--service-cidr", "banana"}), Contains("--service-cidr"));
  CHECK_THAT(ErrorOf({"server", "--cluster-cidr", "10.43.0.0/24"}), Contains("overlap"));
  CHECK_THAT(ErrorOf({"server", "--node-ip", "10.0.0.300"}), Contains("--node-ip"));
  CHECK_THAT(ErrorOf({"server", "--https-listen-port", "70000"}), Contains("--https-listen-port"));
  CHECK_THAT(ErrorOf({"server", "--https-listen-port", "0"}), Contains("--https-listen-port"));
  CHECK_THAT(ErrorOf({"server", "--https-listen-port", "http"}), Contains("--https-listen-port"));
  CHECK_THAT(ErrorOf({"server", "--cluster-dns", "10.42.0.10"}),
             Contains("outside --service-cidr"));
  CHECK_THAT(ErrorOf({"server", "--node-label", "novalue"}), Contains("--node-label"));
  CHECK_THAT(ErrorOf({"server", "--node-taint", "k=v:Never"}), Contains("--node-taint"));
  CHECK_THAT(ErrorOf({"server", "--write-kubeconfig-mode", "rw"}),
             Contains("--write-kubeconfig-mode"));
  CHECK_THAT(ErrorOf({"server", "--disable", "everything"}), Contains("unknown component"));
  CHECK_THAT(ErrorOf({"server", "--token-file", "/nonexistent/token"}), Contains("--token-file"));
  CHECK_THAT(ErrorOf({"server", "--token", "a", "--token-file", "/etc/hostname"}),
             Contains("both"));
  CHECK_THAT(ErrorOf({"agent", "--server", "https://m:6443"}), Contains("--token"));
  CHECK_THAT(ErrorOf({"agent", "--token", "t"}), Contains("--server"));
  CHECK_THAT(ErrorOf({"datastore", "snapshot", "save"}), Contains("FILE"));
  CHECK_THAT(ErrorOf({"server", "--data-dir"}), Contains("--data-dir"));
}

TEST_CASE("Help, version and the other commands") {
  auto help = MustParse({"--help"});
  CHECK(help.command == Command::kHelp);
  for (const char* command :
       {"server", "agent", "version", "kubectl", "check-config", "datastore"}) {
    CHECK_THAT(help.help_text, Contains(command));
  }
  CHECK(MustParse({}).command == Command::kHelp);
  auto server_help = MustParse({"server", "--help"});
  CHECK(server_help.command == Command::kHelp);
  CHECK_THAT(server_help.help_text, Contains("--cluster-cidr") && Contains("--node-label"));
  CHECK_THAT(MustParse({"datastore", "snapshot", "--help"}).help_text,
             Contains("save") && Contains("restore"));

  CHECK(MustParse({"version"}).command == Command::kVersion);
  CHECK(MustParse({"--version"}).command == Command::kVersion);
  CHECK(MustParse({"check-config"}).command == Command::kCheckConfig);

  auto save = MustParse({"datastore", "snapshot", "save", "/tmp/snap.db", "-d", "/srv/orch"});
  CHECK(save.command == Command::kSnapshotSave);
  CHECK(save.snapshot_file == "/tmp/snap.db");
  CHECK(save.store.data_dir == "/srv/orch");
  auto restore = MustParse({"datastore", "snapshot", "restore", "/tmp/snap.db"});
  CHECK(restore.command == Command::kSnapshotRestore);
  CHECK(restore.store.data_dir == "/var/lib/orch");
}

TEST_CASE("datastore snapshot reads only its keys from the server's config file") {
  TempDir dir;
  std::string file = dir.Write("config.yaml",
                               "data-dir: /srv/orch\ncluster-cidr: 10.52.0.0/16\n"
                               "datastore-endpoint: sqlite:///srv/state.db\n");
  auto inv = MustParse({"datastore", "snapshot", "save", "/tmp/s.db"}, file);
  CHECK(inv.store.data_dir == "/srv/orch");
  CHECK(inv.store.endpoint == "sqlite:///srv/state.db");
}

TEST_CASE("kubectl arguments pass through untouched") {
  auto inv = MustParse(
      {"kubectl", "get", "pods", "-n", "kube-system", "-o", "yaml", "--help", "--config", "x"});
  CHECK(inv.command == Command::kKubectl);
  CHECK(inv.kubectl_args ==
        Args{"get", "pods", "-n", "kube-system", "-o", "yaml", "--help", "--config", "x"});
  CHECK(inv.server.write_kubeconfig == "/etc/orch/orch.yaml");

  TempDir dir;
  std::string file = dir.Write("config.yaml", "write-kubeconfig: /srv/admin.yaml\nother: 1\n");
  CHECK(MustParse({"kubectl", "version"}, file).server.write_kubeconfig == "/srv/admin.yaml");
  ScopedEnv env("ORCH_KUBECONFIG_OUTPUT", "/env/admin.yaml");
  CHECK(MustParse({"kubectl", "version"}, file).server.write_kubeconfig == "/env/admin.yaml");
}

TEST_CASE("Host defaults fill node name, node IP and advertise address") {
  class Fake : public orch::Host {
   public:
    orch::Result<std::string> ReadFile(const std::string&) override {
      return std::string(
          "Iface Destination Gateway Flags RefCnt Use Metric Mask\n"
          "eth0 00000000 0100000A 0003 0 0 0 00000000\n");
    }
    bool PathExists(const std::string&) override { return false; }
    bool IsExecutable(const std::string&) override { return false; }
    std::string FindExecutable(const std::string&) override { return ""; }
    bool IsRoot() override { return true; }
    orch::Result<std::string> HostName() override { return std::string("MyHost"); }
    orch::Result<orch::IpAddress> SourceAddressFor(const orch::IpAddress&) override {
      return *orch::IpAddress::Parse("10.0.0.42");
    }
  } host;
  auto inv = MustParse({"server"});
  REQUIRE(orch::ResolveHostDefaults(inv, host).ok());
  CHECK(inv.server.agent.node_name == "myhost");
  CHECK(inv.server.agent.node_ip == "10.0.0.42");
  CHECK(inv.server.advertise_address == "10.0.0.42");

  auto given = MustParse({"server", "--node-ip", "10.0.0.7", "--node-name", "n"});
  REQUIRE(orch::ResolveHostDefaults(given, host).ok());
  CHECK(given.server.agent.node_name == "n");
  CHECK(given.server.advertise_address == "10.0.0.7");
}

TEST_CASE("The printed config reads back as a config file") {
  TempDir dir;
  auto original =
      MustParse({"server", "--tls-san", "a.example.com", "--node-label", "a=b",
                 "--write-kubeconfig-mode", "0640", "--disable", "servicelb", "--cluster-cidr",
                 "10.52.0.0/16", "--node-ip", "10.1.1.1", "--debug", "--token", "secret"});
  std::string printed = orch::FormatConfig(original.server);
  CHECK_THAT(printed, Contains("token: \"********\"") && !Contains("secret"));
  CHECK_THAT(printed, Contains("write-kubeconfig-mode: \"0640\""));
  // Without the (redacted) token, every key must be accepted and give the same config.
  std::string without_token;
  for (size_t start = 0; start < printed.size();) {
    size_t end = printed.find('\n', start);
    std::string line = printed.substr(start, end - start);
    if (!line.starts_with("token:")) without_token += line + "\n";
    start = end == std::string::npos ? printed.size() : end + 1;
  }
  auto reread = MustParse({"server"}, dir.Write("printed.yaml", without_token));
  CHECK(orch::FormatConfig(reread.server) == orch::FormatConfig([&] {
          orch::ServerConfig c = original.server;
          c.token.clear();
          return c;
        }()));

  auto agent = MustParse({"agent", "-s", "https://m:6443", "-t", "t", "--node-label", "a=b"});
  CHECK_THAT(orch::FormatConfig(agent.agent),
             Contains("server: https://m:6443") && Contains("node-label: [a=b]"));
}

TEST_CASE("--disable-kube-proxy turns the node's service proxy off; --cleanup needs nothing else") {
  CHECK_FALSE(MustParse({"server"}).server.agent.disable_kube_proxy);
  CHECK(MustParse({"server", "--disable-kube-proxy"}).server.agent.disable_kube_proxy);
  auto agent = MustParse(
      {"agent", "--server", "https://10.0.0.1:6443", "--token", "t", "--disable-kube-proxy"});
  CHECK(agent.agent.disable_kube_proxy);
  CHECK_FALSE(agent.cleanup);
  // An agent without --server and --token may still clean up (kube-proxy --cleanup).
  auto cleanup = MustParse({"agent", "--cleanup"});
  CHECK(cleanup.command == orch::Command::kAgent);
  CHECK(cleanup.cleanup);
  CHECK(MustParse({"server", "--cleanup"}).cleanup);
  CHECK_FALSE(ErrorOf({"agent"}).empty());
}

TEST_CASE("--flannel-backend picks the pod network between nodes: host-gw, vxlan or none") {
  CHECK(MustParse({"server"}).server.agent.flannel_backend == "host-gw");
  CHECK(MustParse({"server", "--flannel-backend", "vxlan"}).server.agent.flannel_backend ==
        "vxlan");
  CHECK(MustParse({"agent", "-s", "https://m:6443", "-t", "t", "--flannel-backend", "none"})
            .agent.flannel_backend == "none");
  CHECK_THAT(ErrorOf({"server", "--flannel-backend", "wireguard"}),
             Contains("--flannel-backend: 'wireguard' is not one of host-gw, vxlan, none"));
}

TEST_CASE(
    "an agent knows which cluster-wide flags the user gave; the server's embedded agent "
    "shares the server's settings") {
  auto plain = MustParse({"agent", "-s", "https://m:6443", "-t", "t"}).agent;
  CHECK_FALSE(plain.flannel_backend_given);
  CHECK_FALSE(plain.disable_kube_proxy_given);
  auto given = MustParse({"agent", "-s", "https://m:6443", "-t", "t", "--flannel-backend",
                          "host-gw", "--disable-kube-proxy"})
                   .agent;
  CHECK(given.flannel_backend_given);
  CHECK(given.disable_kube_proxy_given);

  auto server = MustParse({"server", "--cluster-cidr", "10.52.0.0/16", "--service-cidr",
                           "10.53.0.0/16", "--cluster-domain", "example.local", "--disable", "dns"})
                    .server;
  CHECK(server.agent.cluster_cidr == "10.52.0.0/16");
  CHECK(server.agent.service_cidr == "10.53.0.0/16");
  CHECK(server.agent.cluster_dns == "10.53.0.10");
  CHECK(server.agent.cluster_domain == "example.local");
  CHECK(server.agent.disable_dns);
  CHECK_FALSE(MustParse({"server"}).server.agent.disable_dns);
}
