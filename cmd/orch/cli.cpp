// The CLI11 definition of every orch command and flag, the YAML config file reader, and the
// post-parse checks that turn a command line into a validated Invocation.
#include "cli.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "orch/net.h"

namespace orch {
namespace {

const char* Getenv(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// The keys of a k3s-style config file (flag names without dashes) with their values as strings:
// a scalar gives one value, a list one per element.
Result<std::vector<std::pair<std::string, std::vector<std::string>>>> ReadYamlConfig(
    std::istream& in, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(
        fmt::format("config file {}: line {}: {}", file, e.mark.line + 1, e.msg));
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> entries;
  if (root.IsNull()) return entries;  // an empty file
  if (!root.IsMap()) {
    return InvalidArgument(
        fmt::format("config file {}: expected a map of flag names to values", file));
  }
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) {
      return InvalidArgument(fmt::format("config file {}: keys must be flag names", file));
    }
    std::string key = kv.first.Scalar();
    const YAML::Node& value = kv.second;
    std::vector<std::string> values;
    if (value.IsScalar()) {
      values.push_back(value.Scalar());
    } else if (value.IsSequence()) {
      for (const auto& element : value) {
        if (!element.IsScalar()) {
          return InvalidArgument(
              fmt::format("config file {}: '{}' must be a list of strings", file, key));
        }
        values.push_back(element.Scalar());
      }
    } else if (!value.IsNull()) {
      return InvalidArgument(
          fmt::format("config file {}: '{}' must be a string or a list of strings", file, key));
    }
    if (!values.empty()) entries.emplace_back(std::move(key), std::move(values));
  }
  return entries;
}

// Feeds the YAML config file to CLI11 as config items of the sub-command being run, so CLI11's
// own rule applies: a flag on the command line wins over the file. Keys whose ORCH_* variable is
// set are left out so the environment wins over the file too.
class YamlConfig : public CLI::Config {
 public:
  explicit YamlConfig(const CLI::App* root) : root_(root) {}

  // Sub-commands that take the config file. `strict`: an unknown key is an error (server,
  // agent); otherwise keys meant for other commands are skipped (datastore snapshot reads the
  // server's file for --data-dir and --datastore-endpoint only).
  void Accept(const CLI::App* command, bool strict) { accepted_[command] = strict; }

  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return ""; }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    const CLI::App* command = root_;
    std::vector<std::string> parents;
    while (!command->get_subcommands().empty()) {
      command = command->get_subcommands().front();
      parents.push_back(command->get_name());
    }
    auto accepted = accepted_.find(command);
    if (accepted == accepted_.end()) return {};
    bool strict = accepted->second;

    std::string file = root_->get_config_ptr()->as<std::string>();
    auto entries = ReadYamlConfig(input, file);
    if (!entries.ok()) throw CLI::ConfigError(entries.status().message());

    std::vector<CLI::ConfigItem> items;
    for (auto& [key, values] : *entries) {
      const CLI::Option* option = command->get_option_no_throw("--" + key);
      if (option == nullptr || !option->get_configurable()) {
        if (!strict) continue;
        throw CLI::ConfigError(
            fmt::format("config file {}: unknown key '{}' ('{}' has no flag --{})", file, key,
                        parents.empty() ? "orch" : parents.back(), key));
      }
      if (!option->get_envname().empty() && Getenv(option->get_envname().c_str())) continue;
      CLI::ConfigItem item;
      item.parents = parents;
      item.name = key;
      item.inputs = std::move(values);
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  const CLI::App* root_;
  std::map<const CLI::App*, bool> accepted_;
};

// CLI11's messages, made into the one line `orch: error:` prints.
std::string OneLineMessage(const CLI::Error& e, const std::string& command) {
  std::string message = e.what();
  std::string hint = command.empty() ? "orch --help" : "orch " + command + " --help";
  const std::string extras = "The following argument was not expected: ";
  const std::string extras_plural = "The following arguments were not expected: ";
  if (message.starts_with(extras) && command.empty() && message[extras.size()] != '-') {
    message = "unknown command: " + message.substr(extras.size());
  } else if (message.starts_with(extras)) {
    message = "unknown flag or argument: " + message.substr(extras.size());
  } else if (message.starts_with(extras_plural)) {
    message = "unknown flags or arguments: " + message.substr(extras_plural.size());
  } else if (message == "A subcommand is required") {
    message = "a sub-command is required";
  } else if (e.get_name() == "ConfigError" || e.get_name() == "FileError") {
    hint.clear();
  }
  std::replace(message.begin(), message.end(), '\n', ' ');
  // "Could not convert" reads better lowercased after "orch: error:"; "FILE is required" not.
  if (message.size() > 1 && std::isupper(static_cast<unsigned char>(message[0])) &&
      std::islower(static_cast<unsigned char>(message[1]))) {
    message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
  }
  if (hint.empty()) return message;
  return fmt::format("{} (see '{}')", message, hint);
}

// Reads --token-file into `token`: the first line, trimmed.
Status ApplyTokenFile(const std::string& token_file, std::string& token) {
  if (token_file.empty()) return Status::Ok();
  if (!token.empty()) {
    return InvalidArgument("--token and --token-file both given (ORCH_TOKEN counts as --token)");
  }
  std::ifstream in(token_file);
  if (!in) return InvalidArgument(fmt::format("--token-file: cannot read {}", token_file));
  std::string line;
  std::getline(in, line);
  token = Trim(line);
  if (token.empty()) return InvalidArgument(fmt::format("--token-file: {} is empty", token_file));
  return Status::Ok();
}

Result<uint32_t> ParseFileMode(const std::string& text) {
  bool ok = !text.empty() && text.size() <= 4;
  uint32_t mode = 0;
  for (char c : text) {
    ok = ok && c >= '0' && c <= '7';
    mode = mode * 8 + static_cast<uint32_t>(c - '0');
  }
  if (!ok || mode > 0777) {
    return InvalidArgument(
        fmt::format("--write-kubeconfig-mode: '{}' is not an octal file mode like 0644", text));
  }
  return mode;
}

// A Go duration as kube-controller-manager's flags take it ("40s", "1m30s", "500ms"), in
// milliseconds; a bare number is seconds.
Result<int64_t> ParseDurationMillis(const std::string& flag, const std::string& text) {
  auto bad = [&] {
    return InvalidArgument(
        fmt::format("{}: '{}' is not a duration like 40s, 1m30s or 500ms", flag, text));
  };
  if (text.empty()) return bad();
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return static_cast<int64_t>(std::stoll(text)) * 1000;
  }
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start || i - start > 9) return bad();
    int64_t value = std::stoll(text.substr(start, i - start));
    size_t unit_start = i;
    while (i < text.size() && (text[i] < '0' || text[i] > '9')) ++i;
    std::string unit = text.substr(unit_start, i - unit_start);
    if (unit == "ms") {
      total += value;
    } else if (unit == "s") {
      total += value * 1000;
    } else if (unit == "m") {
      total += value * 60 * 1000;
    } else if (unit == "h") {
      total += value * 3600 * 1000;
    } else {
      return bad();
    }
  }
  return total;
}

Status NormalizeDisable(std::vector<std::string>& disable) {
  std::vector<std::string> normalized;
  for (const std::string& name : disable) {
    auto component = NormalizeComponentName(Trim(name));
    if (!component.ok()) return component.status();
    if (std::find(normalized.begin(), normalized.end(), *component) == normalized.end()) {
      normalized.push_back(*component);
    }
  }
  disable = std::move(normalized);
  return Status::Ok();
}

// The node flags a server (for its embedded agent) and an agent share.
void AddNodeFlags(CLI::App* command, AgentConfig& agent) {
  command->add_option("--node-name", agent.node_name, "Node name (default: the host name)")
      ->type_name("NAME")
      ->envname("ORCH_NODE_NAME")
      ->group("Node");
  command
      ->add_option("--node-ip", agent.node_ip,
                   "IP address to advertise for this node (default: the default route's source "
                   "address)")
      ->type_name("IP")
      ->group("Node");
  command
      ->add_option("--node-label", agent.node_labels,
                   "Label KEY=VALUE to register the node with (repeatable, or comma-separated)")
      ->type_name("KEY=VALUE")
      ->default_str("")
      ->delimiter(',')
      ->group("Node");
  command
      ->add_option("--node-taint", agent.node_taints,
                   "Taint KEY=VALUE:EFFECT to register the node with (repeatable, or "
                   "comma-separated)")
      ->type_name("KEY=VALUE:EFFECT")
      ->default_str("")
      ->delimiter(',')
      ->group("Node");
  command
      ->add_option("--container-runtime-endpoint", agent.container_runtime_endpoint,
                   "CRI socket of an already running containerd (default: orch starts its own)")
      ->type_name("ENDPOINT")
      ->group("Node");
  command
      ->add_flag("--disable-kube-proxy", agent.disable_kube_proxy,
                 "Do not run the service proxy (ClusterIP/NodePort rules) on the nodes "
                 "(agents take the server's)")
      ->group("Node");
  command
      ->add_option("--flannel-backend", agent.flannel_backend,
                   "How pods reach other nodes' pods: host-gw, vxlan or none (agents take the "
                   "server's)")
      ->type_name("BACKEND")
      ->group("Node");
  command
      ->add_option("--kubelet-arg", agent.kubelet_args,
                   "Kubelet setting KEY=VALUE (repeatable): container-log-max-size, "
                   "container-log-max-files, image-gc-high-threshold, image-gc-low-threshold, "
                   "image-minimum-gc-age")
      ->type_name("KEY=VALUE")
      ->default_str("")
      ->group("Node");
}

void AddDatastoreFlags(CLI::App* command, std::string& endpoint, std::string& ca_file,
                       std::string& cert_file, std::string& key_file) {
  command
      ->add_option("--datastore-endpoint", endpoint,
                   "sqlite://PATH, or etcd members http(s)://HOST:2379[,...] (default: SQLite in "
                   "DATA-DIR/server/db)")
      ->type_name("URL")
      ->envname("ORCH_DATASTORE_ENDPOINT")
      ->group("Datastore");
  command->add_option("--datastore-cafile", ca_file, "CA of the etcd members (PEM)")
      ->type_name("FILE")
      ->envname("ORCH_DATASTORE_CAFILE")
      ->group("Datastore");
  command->add_option("--datastore-certfile", cert_file, "Client certificate for etcd (PEM)")
      ->type_name("FILE")
      ->envname("ORCH_DATASTORE_CERTFILE")
      ->group("Datastore");
  command->add_option("--datastore-keyfile", key_file, "Client key for etcd (PEM)")
      ->type_name("FILE")
      ->envname("ORCH_DATASTORE_KEYFILE")
      ->group("Datastore");
}

}  // namespace

Result<Invocation> ParseCommandLine(const std::vector<std::string>& args,
                                    const CliDefaults& defaults) {
  Invocation inv;

  // kubectl takes its arguments verbatim (-n, -o yaml, --help...): they never reach CLI11.
  if (!args.empty() && args[0] == "kubectl") {
    inv.command = Command::kKubectl;
    inv.kubectl_args.assign(args.begin() + 1, args.end());
    if (const char* out = Getenv("ORCH_KUBECONFIG_OUTPUT")) {
      inv.server.write_kubeconfig = out;
      return inv;
    }
    // The server's config file may move the admin kubeconfig; a broken file is the server's
    // problem, so it is not an error here.
    const char* file_env = Getenv("ORCH_CONFIG_FILE");
    std::string file = file_env ? file_env : defaults.config_file;
    std::ifstream in(file);
    if (!file.empty() && in) {
      auto entries = ReadYamlConfig(in, file);
      if (entries.ok()) {
        for (const auto& [key, values] : *entries) {
          if (key == "write-kubeconfig" || key == "o") inv.server.write_kubeconfig = values.back();
        }
      }
    }
    return inv;
  }

  CLI::App app{"orch - Kubernetes in one executable", "orch"};
  app.footer(
      "Run 'orch COMMAND --help' for the flags of a command. Flags can also come from "
      "ORCH_* environment variables and from the YAML config file (keys are flag names without "
      "dashes).");
  // Like k3s (and most CLIs), a flag given twice takes the last value.
  app.option_defaults()->always_capture_default()->multi_option_policy(
      CLI::MultiOptionPolicy::TakeLast);
  auto yaml = std::make_shared<YamlConfig>(&app);
  app.config_formatter(yaml);
  // ORCH_CONFIG_FILE replaces the default file and, like --config, must exist (checked below,
  // only for the commands that read it, so a stale variable does not break `orch version`).
  const char* config_env = Getenv("ORCH_CONFIG_FILE");
  std::string default_config = config_env ? config_env : defaults.config_file;
  CLI::Option* config_option = app.set_config(
      "-c,--config", default_config,
      "YAML config file (ORCH_CONFIG_FILE; read if present: " +
          (defaults.config_file.empty() ? std::string("none") : defaults.config_file) + ")");
  config_option->type_name("FILE");
  bool want_version = false;
  app.add_flag("-v,--version", want_version, "Print the version and exit");

  // server
  ServerConfig& server = inv.server;
  std::string server_token_file, server_mode, cluster_dns, node_monitor_grace_period;
  CLI::App* server_cmd = app.add_subcommand("server",
                                            "Run the control plane (and a node, unless "
                                            "--disable-agent)");
  server_cmd->fallthrough();  // -c/--config after the sub-command
  server_cmd->add_option("-d,--data-dir", server.data_dir, "Folder for all state")
      ->type_name("DIR")
      ->envname("ORCH_DATA_DIR");
  server_cmd
      ->add_option("--https-listen-port", server.https_listen_port, "Port of the HTTPS API server")
      ->type_name("PORT");
  server_cmd->add_option("--bind-address", server.bind_address, "Address the API server binds")
      ->type_name("IP");
  server_cmd
      ->add_option("--advertise-address", server.advertise_address,
                   "Address agents and kubeconfigs use to reach the API server (default: the node "
                   "IP)")
      ->type_name("IP");
  server_cmd
      ->add_option("--tls-san", server.tls_san,
                   "Extra host name or IP for the API server certificate (repeatable)")
      ->type_name("NAME")
      ->default_str("")
      ->delimiter(',');
  server_cmd
      ->add_option("-o,--write-kubeconfig", server.write_kubeconfig,
                   "Where to write the admin kubeconfig")
      ->type_name("FILE")
      ->envname("ORCH_KUBECONFIG_OUTPUT");
  server_cmd
      ->add_option("--write-kubeconfig-mode", server_mode,
                   "File mode of the admin kubeconfig, octal (default: 0600)")
      ->type_name("MODE")
      ->envname("ORCH_KUBECONFIG_MODE");
  server_cmd
      ->add_option("-t,--token", server.token,
                   "Join token for agents (default: generated into DATA-DIR/server/token)")
      ->type_name("TOKEN")
      ->envname("ORCH_TOKEN");
  server_cmd->add_option("--token-file", server_token_file, "File holding the join token")
      ->type_name("FILE")
      ->envname("ORCH_TOKEN_FILE");
  AddDatastoreFlags(server_cmd, server.datastore_endpoint, server.datastore_cafile,
                    server.datastore_certfile, server.datastore_keyfile);
  server_cmd
      ->add_option("-s,--server", server.server_url,
                   "Join the cluster of this server (https://HOST:6443; needs --token)")
      ->type_name("URL")
      ->envname("ORCH_URL")
      ->group("Datastore");
  server_cmd
      ->add_flag("--cluster-init", server.cluster_init,
                 "Run an embedded etcd member (DATA-DIR/server/db/etcd) as the datastore")
      ->group("Datastore");
  server_cmd
      ->add_option("--etcd-client-port", server.etcd_client_port,
                   "Client port of the embedded etcd (default: 2379)")
      ->type_name("PORT")
      ->group("Datastore");
  server_cmd
      ->add_option("--etcd-peer-port", server.etcd_peer_port,
                   "Peer port of the embedded etcd (default: 2380)")
      ->type_name("PORT")
      ->group("Datastore");
  server_cmd->add_option("--cluster-cidr", server.cluster_cidr, "Network for pod IPs")
      ->type_name("CIDR")
      ->group("Networking");
  server_cmd->add_option("--service-cidr", server.service_cidr, "Network for service ClusterIPs")
      ->type_name("CIDR")
      ->group("Networking");
  server_cmd
      ->add_option("--cluster-dns", cluster_dns,
                   "ClusterIP of the DNS service (default: the 10th address of --service-cidr, "
                   "10.43.0.10)")
      ->type_name("IP")
      ->group("Networking");
  server_cmd->add_option("--cluster-domain", server.cluster_domain, "Cluster DNS domain")
      ->type_name("DOMAIN")
      ->group("Networking");
  AddNodeFlags(server_cmd, server.agent);
  server_cmd->add_flag("--disable-agent", server.disable_agent,
                       "Run the control plane only, no node on this machine");
  server_cmd->add_flag("--disable-scheduler", server.disable_scheduler, "Do not run the scheduler");
  server_cmd->add_flag("--disable-controller-manager", server.disable_controller_manager,
                       "Do not run the controllers");
  server_cmd
      ->add_option("--disable", server.disable,
                   fmt::format("Do not run a packaged component (repeatable, or comma-separated): "
                               "{}",
                               fmt::join(kDisableableComponents, ", ")))
      ->type_name("COMPONENT")
      ->default_str("")
      ->delimiter(',');
  server_cmd
      ->add_option("--node-monitor-grace-period", node_monitor_grace_period,
                   "How long a node's kubelet may stay silent before the node is marked "
                   "unreachable (default: 40s)")
      ->type_name("DURATION");
  server_cmd->add_flag("--debug", server.debug, "Log debug messages")->envname("ORCH_DEBUG");
  server_cmd->add_flag("--cleanup", inv.cleanup,
                       "Remove the service proxy's iptables rules (ORCH-* chains) and exit");
  server_cmd->add_flag("--print-config", inv.print_config,
                       "Print the effective configuration (config file keys) and exit");
  yaml->Accept(server_cmd, true);

  // agent
  AgentConfig& agent = inv.agent;
  std::string agent_token_file;
  CLI::App* agent_cmd = app.add_subcommand("agent", "Run a node that joins a server");
  agent_cmd->fallthrough();
  agent_cmd
      ->add_option("-s,--server,--join", agent.server_url,
                   "URL of the server to join, https://HOST:6443")
      ->type_name("URL")
      ->envname("ORCH_URL");
  agent_cmd->add_option("-t,--token", agent.token, "The cluster's join token")
      ->type_name("TOKEN")
      ->envname("ORCH_TOKEN");
  agent_cmd->add_option("--token-file", agent_token_file, "File holding the join token")
      ->type_name("FILE")
      ->envname("ORCH_TOKEN_FILE");
  agent_cmd->add_option("-d,--data-dir", agent.data_dir, "Folder for all state")
      ->type_name("DIR")
      ->envname("ORCH_DATA_DIR");
  AddNodeFlags(agent_cmd, agent);
  agent_cmd->add_flag("--debug", agent.debug, "Log debug messages")->envname("ORCH_DEBUG");
  agent_cmd->add_flag("--cleanup", inv.cleanup,
                      "Remove the service proxy's iptables rules (ORCH-* chains) and exit");
  agent_cmd->add_flag("--print-config", inv.print_config,
                      "Print the effective configuration (config file keys) and exit");
  yaml->Accept(agent_cmd, true);

  CLI::App* version_cmd = app.add_subcommand("version", "Print the version and exit");
  CLI::App* kubectl_cmd = app.add_subcommand(
      "kubectl", "Run the installed kubectl against this cluster (arguments passed through)");
  kubectl_cmd->allow_extras();  // only reached for help: the real path returns above
  CLI::App* check_cmd = app.add_subcommand(
      "check-config", "Check that this host can run orch (kernel, cgroups, containerd, ...)");

  // datastore snapshot save|restore FILE
  CLI::App* datastore_cmd = app.add_subcommand("datastore", "Manage the datastore");
  datastore_cmd->require_subcommand(1);
  CLI::App* migrate_cmd = AddDatastoreMigrateCommand(datastore_cmd, inv.migrate);
  CLI::App* snapshot_cmd =
      datastore_cmd->add_subcommand("snapshot", "Save or restore a datastore snapshot");
  snapshot_cmd->require_subcommand(1);
  CLI::App* save_cmd = snapshot_cmd->add_subcommand(
      "save", "Write a consistent copy of the datastore to FILE (the server may be running)");
  CLI::App* restore_cmd = snapshot_cmd->add_subcommand(
      "restore", "Replace the datastore with the snapshot in FILE (the server must be stopped)");
  for (CLI::App* command : {save_cmd, restore_cmd}) {
    command->fallthrough();
    command->add_option("FILE", inv.snapshot_file, "Snapshot file")->required();
    command->add_option("-d,--data-dir", inv.store.data_dir, "Folder for all state")
        ->type_name("DIR")
        ->envname("ORCH_DATA_DIR");
    AddDatastoreFlags(command, inv.store.endpoint, inv.store.ca_file, inv.store.cert_file,
                      inv.store.key_file);
    yaml->Accept(command, false);
  }

  if (args.empty()) {
    inv.command = Command::kHelp;
    inv.help_text = app.help();
    return inv;
  }

  std::string command_name;
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops from the back
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    inv.command = Command::kHelp;
    inv.help_text = app.help();
    return inv;
  } catch (const CLI::CallForAllHelp&) {
    inv.command = Command::kHelp;
    inv.help_text = app.help("", CLI::AppFormatMode::All);
    return inv;
  } catch (const CLI::ParseError& e) {
    for (const CLI::App* c = &app; !c->get_subcommands().empty();) {
      c = c->get_subcommands().front();
      command_name += (command_name.empty() ? "" : " ") + c->get_name();
    }
    return InvalidArgument(OneLineMessage(e, command_name));
  }
  if (config_option->count() > 0) {
    inv.config_file = config_option->as<std::string>();
  } else if (config_env != nullptr && (*server_cmd || *agent_cmd || *save_cmd || *restore_cmd)) {
    return InvalidArgument(
        fmt::format("ORCH_CONFIG_FILE: cannot read the config file {}", config_env));
  }

  if (want_version || *version_cmd) {
    inv.command = Command::kVersion;
    return inv;
  }
  if (*kubectl_cmd) {  // unreachable except via `orch kubectl` after global flags
    return InvalidArgument("'kubectl' must come first: orch kubectl ARGS...");
  }
  if (*check_cmd) {
    inv.command = Command::kCheckConfig;
    return inv;
  }
  if (*migrate_cmd) {
    inv.command = Command::kDatastoreMigrate;
    return inv;
  }
  if (*save_cmd || *restore_cmd) {
    inv.command = *save_cmd ? Command::kSnapshotSave : Command::kSnapshotRestore;
    if (inv.store.data_dir.empty()) return InvalidArgument("--data-dir: must not be empty");
    return inv;
  }
  if (*server_cmd) {
    inv.command = Command::kServer;
    if (inv.cleanup) return inv;  // needs nothing else
    if (Status s = ApplyTokenFile(server_token_file, server.token); !s.ok()) return s;
    if (!server_mode.empty()) {
      auto mode = ParseFileMode(server_mode);
      if (!mode.ok()) return mode.status();
      server.write_kubeconfig_mode = *mode;
    }
    if (Status s = NormalizeDisable(server.disable); !s.ok()) return s;
    if (!node_monitor_grace_period.empty()) {
      auto grace = ParseDurationMillis("--node-monitor-grace-period", node_monitor_grace_period);
      if (!grace.ok()) return grace.status();
      if (*grace <= 0) {
        return InvalidArgument("--node-monitor-grace-period: must be greater than zero");
      }
      server.node_monitor_grace_period_ms = *grace;
    }
    if (cluster_dns.empty()) {
      // k3s's rule: the DNS service sits at the 10th address of the service network.
      auto service_cidr = Cidr::Parse(server.service_cidr);
      auto dns = service_cidr.ok() ? service_cidr->AddressAt(10) : Result<IpAddress>(IpAddress());
      if (dns.ok()) cluster_dns = dns->ToString();
      // A bad or tiny --service-cidr is reported by ValidateServerConfig below.
    }
    server.cluster_dns = cluster_dns;
    // The embedded agent shares the server's view of the cluster.
    server.agent.data_dir = server.data_dir;
    server.agent.cluster_dns = server.cluster_dns;
    server.agent.cluster_domain = server.cluster_domain;
    server.agent.cluster_cidr = server.cluster_cidr;
    server.agent.service_cidr = server.service_cidr;
    server.agent.disable_dns = IsDisabled(server, "dns");
    server.agent.debug = server.debug;
    if (Status s = ValidateServerConfig(server); !s.ok()) return s;
    return inv;
  }
  if (*agent_cmd) {
    inv.command = Command::kAgent;
    if (inv.cleanup) return inv;  // needs no server or token
    if (Status s = ApplyTokenFile(agent_token_file, agent.token); !s.ok()) return s;
    // Cluster-wide values come from the server; one the user gave must agree with it.
    agent.flannel_backend_given = agent_cmd->get_option("--flannel-backend")->count() > 0;
    agent.disable_kube_proxy_given = agent_cmd->get_option("--disable-kube-proxy")->count() > 0;
    if (Status s = ValidateAgentConfig(agent); !s.ok()) return s;
    return inv;
  }
  inv.command = Command::kHelp;
  inv.help_text = app.help();
  return inv;
}

Status ResolveHostDefaults(Invocation& invocation, Host& host) {
  AgentConfig* node = nullptr;
  if (invocation.command == Command::kServer) node = &invocation.server.agent;
  if (invocation.command == Command::kAgent) node = &invocation.agent;
  if (node == nullptr) return Status::Ok();
  if (node->node_name.empty()) {
    auto name = DefaultNodeName(host);
    if (!name.ok()) return name.status();
    node->node_name = *name;
  }
  if (node->node_ip.empty()) {
    auto ip = DefaultNodeIp(host);
    if (!ip.ok()) return ip.status();
    node->node_ip = ip->ToString();
  }
  if (invocation.command == Command::kServer && invocation.server.advertise_address.empty()) {
    invocation.server.advertise_address = node->node_ip;
  }
  return Status::Ok();
}

namespace {

void EmitList(YAML::Emitter& out, const char* key, const std::vector<std::string>& values) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << values;
}

void EmitNode(YAML::Emitter& out, const AgentConfig& node) {
  out << YAML::Key << "node-name" << YAML::Value << node.node_name;
  out << YAML::Key << "node-ip" << YAML::Value << node.node_ip;
  EmitList(out, "node-label", node.node_labels);
  EmitList(out, "node-taint", node.node_taints);
  out << YAML::Key << "container-runtime-endpoint" << YAML::Value
      << node.container_runtime_endpoint;
  out << YAML::Key << "disable-kube-proxy" << YAML::Value << node.disable_kube_proxy;
  out << YAML::Key << "flannel-backend" << YAML::Value << node.flannel_backend;
  EmitList(out, "kubelet-arg", node.kubelet_args);
}

std::string Redacted(const std::string& token) {
  return token.empty() ? "" : "********";
}

}  // namespace

std::string FormatConfig(const ServerConfig& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "data-dir" << YAML::Value << c.data_dir;
  out << YAML::Key << "https-listen-port" << YAML::Value << c.https_listen_port;
  out << YAML::Key << "bind-address" << YAML::Value << c.bind_address;
  out << YAML::Key << "advertise-address" << YAML::Value << c.advertise_address;
  EmitList(out, "tls-san", c.tls_san);
  out << YAML::Key << "write-kubeconfig" << YAML::Value << c.write_kubeconfig;
  out << YAML::Key << "write-kubeconfig-mode" << YAML::Value << YAML::DoubleQuoted
      << fmt::format("{:04o}", c.write_kubeconfig_mode);
  out << YAML::Key << "token" << YAML::Value << Redacted(c.token);
  out << YAML::Key << "datastore-endpoint" << YAML::Value << c.datastore_endpoint;
  out << YAML::Key << "datastore-cafile" << YAML::Value << c.datastore_cafile;
  out << YAML::Key << "datastore-certfile" << YAML::Value << c.datastore_certfile;
  out << YAML::Key << "datastore-keyfile" << YAML::Value << c.datastore_keyfile;
  out << YAML::Key << "server" << YAML::Value << c.server_url;
  out << YAML::Key << "cluster-init" << YAML::Value << c.cluster_init;
  out << YAML::Key << "cluster-cidr" << YAML::Value << c.cluster_cidr;
  out << YAML::Key << "service-cidr" << YAML::Value << c.service_cidr;
  out << YAML::Key << "cluster-dns" << YAML::Value << c.cluster_dns;
  out << YAML::Key << "cluster-domain" << YAML::Value << c.cluster_domain;
  EmitNode(out, c.agent);
  out << YAML::Key << "disable-agent" << YAML::Value << c.disable_agent;
  out << YAML::Key << "disable-scheduler" << YAML::Value << c.disable_scheduler;
  out << YAML::Key << "disable-controller-manager" << YAML::Value << c.disable_controller_manager;
  EmitList(out, "disable", c.disable);
  out << YAML::Key << "node-monitor-grace-period" << YAML::Value
      << (c.node_monitor_grace_period_ms % 1000 == 0
              ? fmt::format("{}s", c.node_monitor_grace_period_ms / 1000)
              : fmt::format("{}ms", c.node_monitor_grace_period_ms));
  out << YAML::Key << "debug" << YAML::Value << c.debug;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string FormatConfig(const AgentConfig& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "server" << YAML::Value << c.server_url;
  out << YAML::Key << "token" << YAML::Value << Redacted(c.token);
  out << YAML::Key << "data-dir" << YAML::Value << c.data_dir;
  EmitNode(out, c);
  out << YAML::Key << "debug" << YAML::Value << c.debug;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace orch
