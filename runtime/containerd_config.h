// What orch writes for its own containerd: the file layout under <data-dir>/agent/containerd,
// config.toml, and registries.yaml (k3s's format) translated into containerd's hosts.toml files.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "orch/runtime.h"
#include "orch/status.h"

namespace orch::cri {

// One `mirrors:` entry of registries.yaml, keyed by registry host ("docker.io", or "*" for
// every registry).
struct RegistryMirror {
  std::vector<std::string> endpoints;  // "https://mirror:5000", "http://insecure:5000"
};

// One `configs:` entry, keyed by registry host[:port].
struct RegistryConfig {
  std::string username;
  std::string password;
  std::string auth;  // base64 "user:password"
  std::string identity_token;
  bool insecure_skip_verify = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

struct Registries {
  std::map<std::string, RegistryMirror> mirrors;
  std::map<std::string, RegistryConfig> configs;
};

// Parses registries.yaml text. kInvalidArgument naming the entry when a known field has the
// wrong shape; unknown keys are ignored (as k3s does). Empty text means no registries.
Result<Registries> ParseRegistriesYaml(const std::string& text);

// Where everything lives, from ContainerdOptions.
struct ContainerdLayout {
  std::string dir;              // <data>/agent/containerd
  std::string config_file;      // dir/config.toml
  std::string root;             // dir/root: images, snapshots, metadata
  std::string state;            // dir/state: sockets, shims' bundles
  std::string socket;           // dir/containerd.sock
  std::string log_file;         // dir/containerd.log
  std::string hosts_dir;        // dir/certs.d: the registry config_path
  std::string pause_archive;    // dir/pause.tar: the embedded pause image, written at start
  std::string cni_conf_dir;     // <data>/agent/etc/cni/net.d unless given
  std::string images_dir;       // <data>/agent/images: archives imported at start
  std::string registries_file;  // <data>/registries.yaml unless given
};

ContainerdLayout LayoutFor(const ContainerdOptions& options);

// The text of config.toml (containerd 1.6, config version 2).
std::string ContainerdConfigToml(const ContainerdOptions& options, const ContainerdLayout& layout,
                                 const Registries& registries);

// hosts.toml contents by folder name under hosts_dir ("docker.io", "registry:5000", "_default"
// for the "*" mirror).
std::map<std::string, std::string> RegistryHostsFiles(const Registries& registries);

}  // namespace orch::cri
