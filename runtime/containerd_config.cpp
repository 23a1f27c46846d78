// Generates orch's containerd config.toml and the registry hosts.toml files. registries.yaml
// mirrors become hosts.toml folders under config_path (containerd 1.6 forbids `mirrors` and
// `configs.tls` next to config_path); credentials stay in the CRI `configs.<host>.auth` sections,
// which containerd 1.6 still reads with config_path set.
#include "containerd_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <sstream>

namespace orch::cri {
namespace {

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// "mirror:5000" -> "https://mirror:5000"; a trailing slash is dropped.
std::string NormalizeEndpoint(std::string endpoint) {
  if (endpoint.find("://") == std::string::npos) endpoint = "https://" + endpoint;
  while (endpoint.size() > 1 && endpoint.back() == '/') endpoint.pop_back();
  return endpoint;
}

// The host[:port] of an endpoint URL, the key of its registries.yaml `configs` entry.
std::string EndpointHost(const std::string& endpoint) {
  size_t start = endpoint.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = endpoint.find('/', start);
  return endpoint.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// The registry a name resolves to when no mirror answers.
std::string UpstreamServer(const std::string& registry) {
  if (registry == "docker.io") return "https://registry-1.docker.io";
  return "https://" + registry;
}

// TLS settings of one registry host, in hosts.toml keys; nothing when there is no config.
void WriteTls(std::ostringstream& out, const Registries& registries, const std::string& host,
              const std::string& indent) {
  auto it = registries.configs.find(host);
  if (it == registries.configs.end()) return;
  const RegistryConfig& c = it->second;
  if (c.insecure_skip_verify) out << indent << "skip_verify = true\n";
  if (!c.ca_file.empty()) out << indent << "ca = " << Quote(c.ca_file) << "\n";
  if (!c.cert_file.empty() && !c.key_file.empty()) {
    out << indent << "client = [[" << Quote(c.cert_file) << ", " << Quote(c.key_file) << "]]\n";
  } else if (!c.cert_file.empty()) {
    out << indent << "client = " << Quote(c.cert_file) << "\n";
  }
}

std::string Scalar(const YAML::Node& node, const std::string& where) {
  if (!node || node.IsNull()) return "";
  if (!node.IsScalar()) throw std::runtime_error(where + " must be a string");
  return node.as<std::string>();
}

}  // namespace

Result<Registries> ParseRegistriesYaml(const std::string& text) {
  Registries out;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return out;
    if (!root.IsMap()) return InvalidArgument("registries.yaml: the top level must be a map");
    if (YAML::Node mirrors = root["mirrors"]; mirrors && !mirrors.IsNull()) {
      if (!mirrors.IsMap()) return InvalidArgument("registries.yaml: mirrors must be a map");
      for (const auto& entry : mirrors) {
        std::string registry = entry.first.as<std::string>();
        std::string where = "registries.yaml: mirrors." + registry;
        RegistryMirror mirror;
        YAML::Node endpoints = entry.second["endpoint"];
        if (endpoints && !endpoints.IsNull()) {
          if (!endpoints.IsSequence()) return InvalidArgument(where + ".endpoint must be a list");
          for (const auto& e : endpoints) {
            std::string endpoint = Scalar(e, where + ".endpoint[]");
            if (!endpoint.empty()) mirror.endpoints.push_back(endpoint);
          }
        }
        out.mirrors[registry] = std::move(mirror);
      }
    }
    if (YAML::Node configs = root["configs"]; configs && !configs.IsNull()) {
      if (!configs.IsMap()) return InvalidArgument("registries.yaml: configs must be a map");
      for (const auto& entry : configs) {
        std::string host = entry.first.as<std::string>();
        std::string where = "registries.yaml: configs." + host;
        RegistryConfig config;
        if (YAML::Node auth = entry.second["auth"]; auth && !auth.IsNull()) {
          if (!auth.IsMap()) return InvalidArgument(where + ".auth must be a map");
          config.username = Scalar(auth["username"], where + ".auth.username");
          config.password = Scalar(auth["password"], where + ".auth.password");
          config.auth = Scalar(auth["auth"], where + ".auth.auth");
          config.identity_token = Scalar(auth["identity_token"], where + ".auth.identity_token");
        }
        if (YAML::Node tls = entry.second["tls"]; tls && !tls.IsNull()) {
          if (!tls.IsMap()) return InvalidArgument(where + ".tls must be a map");
          if (YAML::Node skip = tls["insecure_skip_verify"]; skip && !skip.IsNull()) {
            config.insecure_skip_verify = skip.as<bool>();
          }
          config.ca_file = Scalar(tls["ca_file"], where + ".tls.ca_file");
          config.cert_file = Scalar(tls["cert_file"], where + ".tls.cert_file");
          config.key_file = Scalar(tls["key_file"], where + ".tls.key_file");
        }
        out.configs[host] = std::move(config);
      }
    }
  } catch (const std::exception& e) {
    return InvalidArgument(fmt::format("registries.yaml: {}", e.what()));
  }
  return out;
}

ContainerdLayout LayoutFor(const ContainerdOptions& options) {
  ContainerdLayout l;
  std::string agent = options.data_dir + "/agent";
  l.dir = agent + "/containerd";
  l.config_file = l.dir + "/config.toml";
  l.root = l.dir + "/root";
  l.state = l.dir + "/state";
  l.socket = l.dir + "/containerd.sock";
  l.log_file = l.dir + "/containerd.log";
  l.hosts_dir = l.dir + "/certs.d";
  l.pause_archive = l.dir + "/pause.tar";
  l.cni_conf_dir = options.cni_conf_dir.empty() ? agent + "/etc/cni/net.d" : options.cni_conf_dir;
  l.images_dir = agent + "/images";
  l.registries_file = options.registries_file.empty() ? options.data_dir + "/registries.yaml"
                                                      : options.registries_file;
  return l;
}

std::string ContainerdConfigToml(const ContainerdOptions& options, const ContainerdLayout& layout,
                                 const Registries& registries) {
  const std::string cri = "[plugins.\"io.containerd.grpc.v1.cri\"";
  std::ostringstream out;
  out << "# Written by orch at every agent start: edits are overwritten.\n"
      << "version = 2\n"
      << "root = " << Quote(layout.root) << "\n"
      << "state = " << Quote(layout.state)
      << "\n"
      // Snapshotters this machine cannot use only add warnings to the log.
      << "disabled_plugins = [\"io.containerd.snapshotter.v1.aufs\", "
         "\"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.devmapper\", "
         "\"io.containerd.snapshotter.v1.zfs\"]\n\n"
      << "[grpc]\n"
      << "  address = " << Quote(layout.socket) << "\n\n"
      << "[debug]\n"
      << "  level = " << Quote(options.debug ? "debug" : "info")
      << "\n\n"
      // The default is /opt/containerd, outside orch's data dir.
      << "[plugins.\"io.containerd.internal.v1.opt\"]\n"
      << "  path = " << Quote(layout.root + "/opt") << "\n\n"
      << cri << "]\n"
      << "  sandbox_image = " << Quote(kPauseImage)
      << "\n"
      // Lowering oom_score_adj below containerd's own is denied on some hosts (and in nested
      // containers); without this every sandbox fails to start there.
      << "  restrict_oom_score_adj = true\n"
      << "  enable_selinux = false\n"
      // The agent proxies exec/attach/port-forward to this server; loopback only, random port.
      << "  stream_server_address = \"127.0.0.1\"\n"
      << "  stream_server_port = \"0\"\n"
      << "  " << cri << ".containerd]\n"
      << "    snapshotter = \"overlayfs\"\n"
      << "    default_runtime_name = \"runc\"\n"
      << "    " << cri << ".containerd.runtimes.runc]\n"
      << "      runtime_type = \"io.containerd.runc.v2\"\n"
      // runc's state per node, not the shared /run/containerd/runc: nodes sharing a machine
      // (one network namespace each) keep apart.
      << "      " << cri << ".containerd.runtimes.runc.options]\n"
      << "        Root = " << Quote(layout.state + "/runc") << "\n"
      << "  " << cri << ".cni]\n"
      << "    bin_dir = " << Quote(options.cni_bin_dir) << "\n"
      << "    conf_dir = " << Quote(layout.cni_conf_dir) << "\n"
      << "  " << cri << ".registry]\n"
      << "    config_path = " << Quote(layout.hosts_dir) << "\n";
  for (const auto& [host, c] : registries.configs) {
    if (c.username.empty() && c.password.empty() && c.auth.empty() && c.identity_token.empty()) {
      continue;
    }
    // Docker Hub's pulls go to registry-1.docker.io: credentials given for docker.io apply there.
    std::vector<std::string> hosts = {host};
    if (host == "docker.io" && !registries.configs.contains("registry-1.docker.io")) {
      hosts.push_back("registry-1.docker.io");
    }
    for (const auto& h : hosts) {
      out << "    " << cri << ".registry.configs." << Quote(h) << ".auth]\n";
      if (!c.username.empty()) out << "      username = " << Quote(c.username) << "\n";
      if (!c.password.empty()) out << "      password = " << Quote(c.password) << "\n";
      if (!c.auth.empty()) out << "      auth = " << Quote(c.auth) << "\n";
      if (!c.identity_token.empty()) {
        out << "      identitytoken = " << Quote(c.identity_token) << "\n";
      }
    }
  }
  return out.str();
}

std::map<std::string, std::string> RegistryHostsFiles(const Registries& registries) {
  std::map<std::string, std::string> files;
  for (const auto& [registry, mirror] : registries.mirrors) {
    bool wildcard = registry == "*";
    std::ostringstream out;
    // Without `server` the registry itself is the fallback after the mirrors; for "*" that is
    // whichever registry the image names.
    if (!wildcard) {
      out << "server = " << Quote(UpstreamServer(registry)) << "\n";
      WriteTls(out, registries, registry, "");
    }
    for (const auto& raw : mirror.endpoints) {
      std::string endpoint = NormalizeEndpoint(raw);
      out << "\n[host." << Quote(endpoint) << "]\n"
          << "  capabilities = [\"pull\", \"resolve\"]\n";
      WriteTls(out, registries, EndpointHost(endpoint), "  ");
    }
    files[wildcard ? "_default" : registry] = out.str();
  }
  // A registry with TLS settings but no mirror entry still needs a hosts.toml to carry them. The
  // settings also go in an explicit host entry: containerd 1.6 does not apply the top-level
  // ones (a self-signed registry failed with "x509: certificate signed by unknown authority").
  for (const auto& [host, c] : registries.configs) {
    if (files.contains(host)) continue;
    if (!c.insecure_skip_verify && c.ca_file.empty() && c.cert_file.empty()) continue;
    std::ostringstream out;
    std::string server = UpstreamServer(host);
    out << "server = " << Quote(server) << "\n";
    WriteTls(out, registries, host, "");
    out << "\n[host." << Quote(server) << "]\n"
        << "  capabilities = [\"pull\", \"resolve\"]\n";
    WriteTls(out, registries, host, "  ");
    files[host] = out.str();
  }
  return files;
}

}  // namespace orch::cri
