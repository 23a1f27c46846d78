// The embedded etcd member of `orch server --cluster-init` and of servers joining it
// (embedded_etcd.h): certificates, membership, and the supervised /usr/bin/etcd process.
#include "embedded_etcd.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "bootstrap.h"
#include "cluster_pki.h"
#include "orch/etcd_cluster.h"
#include "orch/files.h"
#include "orch/log.h"
#include "orch/pki.h"
#include "process.h"

namespace orch {
namespace {

constexpr std::string_view kLog = "etcd";
constexpr const char* kEtcdBinary = "/usr/bin/etcd";
constexpr auto kReadyTimeout = std::chrono::seconds(60);
constexpr auto kJoinTimeout = std::chrono::seconds(60);

std::string TlsDir(const ServerConfig& config) {
  return config.data_dir + "/server/tls/etcd";
}
std::string DataDir(const ServerConfig& config) {
  return config.data_dir + "/server/db/etcd";
}

std::string NodeIp(const ServerConfig& config) {
  if (!config.agent.node_ip.empty()) return config.agent.node_ip;
  if (!config.advertise_address.empty()) return config.advertise_address;
  return "127.0.0.1";
}

std::string UrlHost(const std::string& ip) {
  return ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
}

// The CA is created by the first server only; joining servers got it with the bootstrap data.
Result<pki::Credential> LoadOrCreateEtcdCa(const std::string& dir, bool may_create) {
  auto cert = ReadFileToString(dir + "/server-ca.crt");
  auto key = ReadFileToString(dir + "/server-ca.key");
  if (cert.ok() && key.ok()) return pki::Credential{*cert, *key};
  if (!may_create) return NotFound("the etcd CA " + dir + "/server-ca.crt is missing");
  auto ca = pki::CreateCA("etcd-server-ca@" + std::to_string(std::time(nullptr)));
  if (!ca.ok()) return ca.status();
  if (Status s = WriteFileAtomic(dir + "/server-ca.key", ca->key_pem, 0600); !s.ok()) return s;
  if (Status s = WriteFileAtomic(dir + "/server-ca.crt", ca->cert_pem, 0644); !s.ok()) return s;
  log::Info(kLog, "created the etcd CA {}/server-ca.crt", dir);
  return *ca;
}

// Issued at every start: cheap, and the node IP may have changed.
Status Issue(const pki::Credential& ca, const pki::CertificateRequest& request,
             const std::string& base) {
  auto issued = pki::IssueCertificate(ca, request);
  if (!issued.ok()) return issued.status();
  if (Status s = WriteFileAtomic(base + ".key", issued->key_pem, 0600); !s.ok()) return s;
  return WriteFileAtomic(base + ".crt", issued->cert_pem, 0644);
}

Status IssueMemberCertificates(const ServerConfig& config, const pki::Credential& ca) {
  const std::string dir = TlsDir(config);
  std::vector<std::string> ips = {"127.0.0.1"};
  if (NodeIp(config) != "127.0.0.1") ips.push_back(NodeIp(config));
  pki::CertificateRequest member;
  member.common_name = "etcd-" + config.agent.node_name;
  member.ip_addresses = ips;
  member.dns_names = {"localhost"};
  if (!config.agent.node_name.empty()) member.dns_names.push_back(config.agent.node_name);
  member.server = member.client = true;
  if (Status s = Issue(ca, member, dir + "/server-client"); !s.ok()) return s;
  if (Status s = Issue(ca, member, dir + "/peer-server-client"); !s.ok()) return s;
  pki::CertificateRequest client;
  client.common_name = "orch-etcd-client";
  client.client = true;
  return Issue(ca, client, dir + "/client");
}

Status WaitForPort(int port, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Unavailable("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (up) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Unavailable(
      fmt::format("etcd did not listen on 127.0.0.1:{} within {} s", port, timeout.count()));
}

// The member name, chosen once and kept: etcd knows a member by it across restarts.
Result<std::string> MemberName(const ServerConfig& config) {
  const std::string file = config.data_dir + "/server/db/etcd-name";
  if (auto stored = ReadFileToString(file); stored.ok() && !stored->empty()) return *stored;
  std::string host = config.agent.node_name.empty() ? "orch" : config.agent.node_name;
  std::string name = host + "-" + pki::RandomHex(4);
  if (Status s = WriteFileAtomic(file, name, 0600); !s.ok()) return s;
  return name;
}

struct ServerUrl {
  std::string host;
  int port = 6443;
};

Result<ServerUrl> ParseServerUrl(const std::string& url) {
  if (!url.starts_with("https://")) return InvalidArgument("--server must be an https:// URL");
  std::string rest = url.substr(8);
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  ServerUrl out;
  auto colon = rest.rfind(':');
  auto bracket = rest.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    out.port = std::atoi(rest.substr(colon + 1).c_str());
    rest.resize(colon);
  }
  if (rest.starts_with("[") && rest.ends_with("]")) rest = rest.substr(1, rest.size() - 2);
  if (rest.empty() || out.port <= 0 || out.port > 65535) {
    return InvalidArgument("--server: bad URL " + url);
  }
  out.host = rest;
  return out;
}

Result<ServerJoinInfo> FetchOnce(const ServerConfig& config, const ServerUrl& url,
                                 const ParsedToken& token) {
  httplib::SSLClient insecure(url.host, url.port);
  insecure.enable_server_certificate_verification(false);
  insecure.set_connection_timeout(5);
  insecure.set_read_timeout(10);
  auto ca = insecure.Get("/cacerts");
  if (!ca) {
    return Unavailable(
        fmt::format("cannot reach {}: {}", config.server_url, httplib::to_string(ca.error())));
  }
  if (ca->status != 200) return Unavailable(fmt::format("GET /cacerts: HTTP {}", ca->status));
  if (!token.ca_hash.empty() && pki::Sha256Hex(ca->body) != token.ca_hash) {
    return InvalidArgument(
        fmt::format("the CA of {} does not match the token's hash", config.server_url));
  }
  // Outside tls/: not one of the files shared through the bootstrap data.
  const std::string ca_file = config.data_dir + "/server/join-server-ca.crt";
  if (Status s = MakeDirectories(config.data_dir + "/server", 0700); !s.ok()) return s;
  if (Status s = WriteFileAtomic(ca_file, ca->body, 0644); !s.ok()) return s;

  httplib::SSLClient client(url.host, url.port);
  client.set_ca_cert_path(ca_file);
  client.enable_server_certificate_verification(true);
  client.set_connection_timeout(5);
  client.set_read_timeout(30);
  client.set_bearer_token_auth(config.token);
  auto answer = client.Get("/v1-orch/server/bootstrap");
  if (!answer) {
    return Unavailable(
        fmt::format("cannot reach {}: {}", config.server_url, httplib::to_string(answer.error())));
  }
  if (answer->status == 401 || answer->status == 403) {
    return InvalidArgument(
        fmt::format("{} refused the token (HTTP {})", config.server_url, answer->status));
  }
  if (answer->status == 404) {
    return InvalidArgument(fmt::format("{} does not take joining servers", config.server_url));
  }
  if (answer->status != 200) {
    return Unavailable(fmt::format("{}: HTTP {}: {}", config.server_url, answer->status,
                                   answer->body.substr(0, 200)));
  }
  auto doc = nlohmann::json::parse(answer->body, nullptr, false);
  if (!doc.is_object() || !doc["bootstrap"].is_string()) {
    return InvalidArgument(fmt::format("{} sent no bootstrap data", config.server_url));
  }
  ServerJoinInfo info;
  info.bootstrap = doc["bootstrap"].get<std::string>();
  if (doc.contains("etcdClientURLs") && doc["etcdClientURLs"].is_array()) {
    for (const auto& u : doc["etcdClientURLs"]) {
      if (u.is_string()) info.etcd_client_urls.push_back(u.get<std::string>());
    }
  }
  return info;
}

}  // namespace

bool UsesEmbeddedEtcd(const ServerConfig& config) {
  return config.cluster_init || (!config.server_url.empty() && config.datastore_endpoint.empty());
}

StoreOptions EmbeddedEtcdStoreOptions(const ServerConfig& config) {
  StoreOptions options;
  options.data_dir = config.data_dir;
  options.endpoint = fmt::format("https://127.0.0.1:{}", config.etcd_client_port);
  options.ca_file = TlsDir(config) + "/server-ca.crt";
  options.cert_file = TlsDir(config) + "/client.crt";
  options.key_file = TlsDir(config) + "/client.key";
  return options;
}

Result<ServerJoinInfo> FetchServerJoinInfo(const ServerConfig& config) {
  auto url = ParseServerUrl(config.server_url);
  if (!url.ok()) return url.status();
  auto token = ParseToken(config.token);
  if (!token.ok()) return InvalidArgument("--token: " + token.status().message());
  auto deadline = std::chrono::steady_clock::now() + kJoinTimeout;
  for (;;) {
    auto info = FetchOnce(config, *url, *token);
    if (info.ok() || info.status().code() != StatusCode::kUnavailable ||
        std::chrono::steady_clock::now() > deadline) {
      return info;
    }
    log::Info(kLog, "waiting for {}: {}", config.server_url, info.status().message());
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

EmbeddedEtcdComponent::EmbeddedEtcdComponent(const ServerConfig& config) : config_(config) {}

EmbeddedEtcdComponent::~EmbeddedEtcdComponent() {
  Stop();
}

Status EmbeddedEtcdComponent::JoinCluster(const std::string& name, const std::string& peer_url,
                                          std::string& initial_cluster) {
  auto info = FetchServerJoinInfo(config_);
  if (!info.ok()) return info.status();
  if (info->etcd_client_urls.empty()) {
    return InvalidArgument(fmt::format(
        "{} runs no embedded etcd: join its datastore with --datastore-endpoint instead",
        config_.server_url));
  }
  auto token = ParseToken(config_.token);
  if (!token.ok()) return token.status();
  auto files = DecodeBootstrap(token->secret, info->bootstrap);
  if (!files.ok()) return InvalidArgument("the bootstrap data: " + files.status().message());
  if (Status s = WriteBootstrapFiles(config_.data_dir + "/server", *files, false); !s.ok()) {
    return s;
  }
  auto ca = LoadOrCreateEtcdCa(TlsDir(config_), false);
  if (!ca.ok()) return ca.status();
  if (Status s = IssueMemberCertificates(config_, *ca); !s.ok()) return s;

  StoreOptions existing = EmbeddedEtcdStoreOptions(config_);
  existing.endpoint = fmt::format("{}", fmt::join(info->etcd_client_urls, ","));
  auto members = AddEtcdMember(existing, peer_url);
  if (!members.ok()) {
    return Unavailable("adding this server to the etcd cluster: " + members.status().message());
  }
  std::vector<std::string> parts;
  for (const EtcdMember& m : *members) {
    bool self = std::find(m.peer_urls.begin(), m.peer_urls.end(), peer_url) != m.peer_urls.end();
    std::string member_name = self ? name : m.name;
    if (member_name.empty()) continue;  // another member added but not started: not ours to name
    for (const std::string& url : m.peer_urls) parts.push_back(member_name + "=" + url);
  }
  initial_cluster = fmt::format("{}", fmt::join(parts, ","));
  log::Info(kLog, "joined the etcd cluster of {} as {} ({} members)", config_.server_url, name,
            members->size());
  return Status::Ok();
}

Status EmbeddedEtcdComponent::Start() {
  const std::string tls = TlsDir(config_);
  if (Status s = MakeDirectories(tls, 0700); !s.ok()) return s;
  if (Status s = MakeDirectories(config_.data_dir + "/server/db", 0700); !s.ok()) return s;
  auto name = MemberName(config_);
  if (!name.ok()) return name.status();
  const std::string ip = UrlHost(NodeIp(config_));
  const std::string peer_url = fmt::format("https://{}:{}", ip, config_.etcd_peer_port);
  const std::string client_url = fmt::format("https://{}:{}", ip, config_.etcd_client_port);
  std::string listen_clients = fmt::format("https://127.0.0.1:{}", config_.etcd_client_port);
  if (ip != "127.0.0.1") listen_clients += "," + client_url;

  // A data dir with a member in it restarts that member; etcd ignores the initial-* flags then.
  std::error_code ec;
  bool has_member = std::filesystem::exists(DataDir(config_) + "/member/snap/db", ec);
  std::string state = "new";
  std::string initial_cluster = *name + "=" + peer_url;
  if (!has_member && !config_.server_url.empty()) {
    if (Status s = JoinCluster(*name, peer_url, initial_cluster); !s.ok()) return s;
    state = "existing";
  } else {
    auto ca = LoadOrCreateEtcdCa(tls, config_.server_url.empty());
    if (!ca.ok()) return ca.status();
    if (Status s = IssueMemberCertificates(config_, *ca); !s.ok()) return s;
  }

  cri::ProcessSupervisor::Options options;
  options.name = "etcd";
  options.log_file = config_.data_dir + "/server/db/etcd.log";
  options.argv = {kEtcdBinary,
                  "--name=" + *name,
                  "--data-dir=" + DataDir(config_),
                  "--listen-client-urls=" + listen_clients,
                  "--advertise-client-urls=" + client_url,
                  "--listen-peer-urls=" + peer_url,
                  "--initial-advertise-peer-urls=" + peer_url,
                  "--initial-cluster=" + initial_cluster,
                  "--initial-cluster-state=" + state,
                  "--initial-cluster-token=orch",
                  "--client-cert-auth",
                  "--trusted-ca-file=" + tls + "/server-ca.crt",
                  "--cert-file=" + tls + "/server-client.crt",
                  "--key-file=" + tls + "/server-client.key",
                  "--peer-client-cert-auth",
                  "--peer-trusted-ca-file=" + tls + "/server-ca.crt",
                  "--peer-cert-file=" + tls + "/peer-server-client.crt",
                  "--peer-key-file=" + tls + "/peer-server-client.key",
                  "--logger=zap",
                  "--log-outputs=stderr"};
  supervisor_ = std::make_unique<cri::ProcessSupervisor>(options);
  if (Status s = supervisor_->Start(); !s.ok()) {
    supervisor_.reset();
    return Unavailable(
        fmt::format("cannot run {}: {} (install Debian's etcd-server)", kEtcdBinary, s.message()));
  }
  if (Status s = WaitForPort(config_.etcd_client_port, kReadyTimeout); !s.ok()) {
    return Unavailable(fmt::format("{}; see {}", s.message(), options.log_file));
  }
  log::Info(kLog, "member {} ({} cluster) serving clients on {}, peers on {}", *name, state,
            listen_clients, peer_url);
  return Status::Ok();
}

void EmbeddedEtcdComponent::Stop() {
  if (supervisor_) supervisor_->Stop(std::chrono::seconds(10));
  supervisor_.reset();
}

}  // namespace orch
