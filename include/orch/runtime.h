// The container runtime contract of the node agent: pod sandboxes, containers, images, exec and
// stats, shaped like CRI v1 but in plain structs, plus the node's own supervised containerd.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "orch/component.h"
#include "orch/status.h"

namespace orch::cri {

// Timestamps are nanoseconds since the Unix epoch, as CRI reports them; 0 means "not yet".
using Labels = std::map<std::string, std::string>;

// The pause (sandbox) image orch builds from runtime/pause/pause.c and imports into containerd at
// start; the supervised containerd's CRI plugin uses it as `sandbox_image`.
inline constexpr const char* kPauseImage = "docker.io/orch/pause:3.9";
// containerd's namespace for everything CRI does; imported images must land there.
inline constexpr const char* kContainerdNamespace = "k8s.io";

// --- Runtime ---

struct VersionInfo {
  std::string api_version;      // "v1" (the CRI API the runtime speaks, as it reports it)
  std::string runtime_name;     // "containerd"
  std::string runtime_version;  // "1.6.20~ds1"; nodeInfo shows "<name>://<version>"
};

struct RuntimeCondition {
  std::string type;  // "RuntimeReady", "NetworkReady"
  bool status = false;
  std::string reason;
  std::string message;
};

struct RuntimeStatus {
  std::vector<RuntimeCondition> conditions;
  bool runtime_ready = false;  // the RuntimeReady condition, false when absent
  bool network_ready = false;  // the NetworkReady condition (a CNI config is loaded)
};

// --- Pod sandboxes ---

// Whose namespace a sandbox or container joins. Defaults are the kubelet's: the pod's network
// and IPC namespaces, a PID namespace per container.
enum class NamespaceMode { kPod, kContainer, kNode };

struct NamespaceOptions {
  NamespaceMode network = NamespaceMode::kPod;    // kNode = hostNetwork
  NamespaceMode pid = NamespaceMode::kContainer;  // kPod = shareProcessNamespace, kNode = hostPID
  NamespaceMode ipc = NamespaceMode::kPod;        // kNode = hostIPC
};

enum class Protocol { kTcp, kUdp, kSctp };

struct PortMapping {  // a hostPort; needs the CNI portmap plugin
  Protocol protocol = Protocol::kTcp;
  int32_t container_port = 0;
  int32_t host_port = 0;
  std::string host_ip;  // "" = all addresses
};

struct DnsConfig {
  std::vector<std::string> servers;
  std::vector<std::string> searches;
  std::vector<std::string> options;  // "ndots:5"
};

struct SandboxSecurityContext {
  NamespaceOptions namespaces;
  std::optional<int64_t> run_as_user;
  std::optional<int64_t> run_as_group;
  std::vector<int64_t> supplemental_groups;
  bool privileged = false;  // must be true if any container of the pod is privileged
  bool readonly_rootfs = false;
};

struct PodSandboxConfig {
  // Identity: the runtime refuses a second sandbox with the same (name, uid, namespace, attempt)
  // while the first exists (kAlreadyExists).
  std::string name;
  std::string uid;
  std::string namespace_;
  uint32_t attempt = 0;
  std::string hostname;
  std::string log_directory;  // absolute; container log_path values are relative to it
  DnsConfig dns;              // empty = the runtime copies the node's resolv.conf
  std::vector<PortMapping> port_mappings;
  Labels labels;
  Labels annotations;
  std::string cgroup_parent;  // "" = the runtime's default
  SandboxSecurityContext security;
  std::map<std::string, std::string> sysctls;
};

enum class SandboxState { kReady, kNotReady };

struct PodSandbox {  // one ListPodSandboxes entry
  std::string id;
  std::string name;
  std::string uid;
  std::string namespace_;
  uint32_t attempt = 0;
  SandboxState state = SandboxState::kNotReady;
  int64_t created_at = 0;
  Labels labels;
  Labels annotations;
};

struct PodSandboxStatus {
  PodSandbox sandbox;
  std::string ip;                           // "" for host-network pods and sandboxes not ready
  std::vector<std::string> additional_ips;  // e.g. the IPv6 address of a dual-stack pod
  bool host_network = false;
};

struct SandboxFilter {  // empty fields match everything
  std::string id;
  std::optional<SandboxState> state;
  Labels label_selector;  // every pair must match
};

// --- Containers ---

enum class MountPropagation { kPrivate, kHostToContainer, kBidirectional };

struct Mount {
  std::string host_path;
  std::string container_path;
  bool readonly = false;
  MountPropagation propagation = MountPropagation::kPrivate;
};

struct LinuxResources {  // 0 = unset (no limit, the runtime's default)
  int64_t cpu_shares = 0;
  int64_t cpu_quota = 0;   // microseconds per cpu_period
  int64_t cpu_period = 0;  // microseconds
  int64_t memory_limit_bytes = 0;
  int64_t oom_score_adj = 0;  // raised to containerd's own score if lower (restrict_oom_score_adj)
};

struct ContainerSecurityContext {
  NamespaceOptions namespaces;  // same values as the sandbox's, except pid (see NamespaceOptions)
  std::optional<int64_t> run_as_user;   // unset = the image's user
  std::optional<int64_t> run_as_group;  // unset = the image's group
  std::vector<int64_t> supplemental_groups;
  bool privileged = false;
  bool readonly_rootfs = false;
  bool no_new_privs = false;                  // allowPrivilegeEscalation: false
  std::vector<std::string> capabilities_add;  // "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL" allowed
  std::vector<std::string> capabilities_drop;
};

struct ContainerConfig {
  std::string name;  // unique in the sandbox while the container exists
  uint32_t attempt = 0;
  std::string image;  // a reference or an image ID; must already be present (PullImage)
  std::vector<std::string> command;  // replaces the image's entrypoint when not empty
  std::vector<std::string> args;     // replaces the image's cmd when not empty
  std::string working_dir;
  std::vector<std::pair<std::string, std::string>> env;  // in order; later entries win
  std::vector<Mount> mounts;
  Labels labels;
  Labels annotations;
  std::string log_path;     // relative to the sandbox's log_directory; "" = no log file
  bool open_stdin = false;  // keep stdin open for attach
  bool stdin_once = false;
  bool tty = false;
  LinuxResources resources;
  ContainerSecurityContext security;
};

enum class ContainerState { kCreated, kRunning, kExited, kUnknown };

struct Container {  // one ListContainers entry
  std::string id;
  std::string sandbox_id;
  std::string name;
  uint32_t attempt = 0;
  std::string image;      // as given in ContainerConfig::image
  std::string image_ref;  // the image ID or digest the container runs
  ContainerState state = ContainerState::kUnknown;
  int64_t created_at = 0;
  Labels labels;
  Labels annotations;
};

struct ContainerStatus {
  Container container;
  int64_t started_at = 0;
  int64_t finished_at = 0;
  int32_t exit_code = 0;  // meaningful when state is kExited
  std::string reason;     // "Completed", "Error", "OOMKilled", ...
  std::string message;
  std::string log_path;  // absolute
};

struct ContainerFilter {  // empty fields match everything
  std::string id;
  std::optional<ContainerState> state;
  std::string sandbox_id;
  Labels label_selector;
};

struct ContainerStats {
  std::string id;
  std::string name;
  int64_t cpu_timestamp = 0;
  uint64_t cpu_usage_core_nanoseconds = 0;  // cumulative CPU time
  uint64_t cpu_usage_nano_cores = 0;        // recent rate, when the runtime computes one
  int64_t memory_timestamp = 0;
  uint64_t memory_working_set_bytes = 0;  // what kubectl top and eviction use
  uint64_t memory_usage_bytes = 0;
  uint64_t writable_layer_used_bytes = 0;
};

struct ContainerStatsFilter {
  std::string id;
  std::string sandbox_id;
  Labels label_selector;
};

struct ExecSyncResult {
  std::string stdout_data;
  std::string stderr_data;
  int32_t exit_code = 0;
  bool timed_out = false;  // the command ran past its timeout (exit_code is then meaningless)
};

// What a streaming (Exec/Attach) session carries; the CRI URL encodes it.
struct StreamOptions {
  bool attach_stdin = false;
  bool attach_stdout = true;
  bool attach_stderr = true;
  bool tty = false;  // with a tty, stderr is merged into stdout: set attach_stderr false
};

// --- Images ---

struct AuthConfig {  // registry credentials, e.g. from an imagePullSecret
  std::string username;
  std::string password;
  std::string auth;  // base64 "user:password", as in a dockerconfigjson
  std::string server_address;
  std::string identity_token;
  std::string registry_token;
};

struct Image {
  std::string id;  // "sha256:..."
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  uint64_t size = 0;
  std::optional<int64_t> uid;  // the image's numeric user, if it names one
  std::string username;        // the image's user by name, if not numeric
  bool pinned = false;         // never garbage-collected
};

struct FilesystemUsage {
  std::string mountpoint;
  int64_t timestamp = 0;
  uint64_t used_bytes = 0;
  uint64_t inodes_used = 0;
};

// A CRI v1 runtime. Every method is thread-safe and blocks until the runtime answers or the
// call's deadline passes (kUnavailable, also when the runtime is down or restarting; callers
// retry on their own schedule). Other failures: kNotFound when the named sandbox, container or
// image does not exist, kAlreadyExists when a name is taken, kInvalidArgument for a request the
// runtime rejects, kInternal otherwise; the message carries the runtime's own words (what users
// see in ErrImagePull or CreateContainerError).
class Runtime {
 public:
  virtual ~Runtime() = default;

  // These two wait (up to CriClientOptions::probe_timeout) for a runtime that is not reachable
  // yet, and are how a client notices a restarted runtime at once; every other call fails fast
  // with kUnavailable while the runtime is unreachable.
  virtual Result<VersionInfo> GetVersion() = 0;
  // Whether the runtime and the pod network are ready (RuntimeReady / NetworkReady conditions).
  virtual Result<RuntimeStatus> GetRuntimeStatus() = 0;

  // Creates the sandbox (network namespace, pause container) and returns its ID.
  virtual Result<std::string> RunPodSandbox(const PodSandboxConfig& config) = 0;
  // Stops every container of the sandbox and tears down its network; idempotent (OK when already
  // stopped or gone).
  virtual Status StopPodSandbox(const std::string& sandbox_id) = 0;
  // Removes the sandbox and its containers, forcibly if still running; OK when already gone.
  virtual Status RemovePodSandbox(const std::string& sandbox_id) = 0;
  virtual Result<PodSandboxStatus> GetPodSandboxStatus(const std::string& sandbox_id) = 0;
  virtual Result<std::vector<PodSandbox>> ListPodSandboxes(const SandboxFilter& filter) = 0;

  // Creates (does not start) a container in a ready sandbox; `sandbox` is the config the sandbox
  // was run with. Returns the container ID. The image must be present (kNotFound otherwise).
  virtual Result<std::string> CreateContainer(const std::string& sandbox_id,
                                              const ContainerConfig& config,
                                              const PodSandboxConfig& sandbox) = 0;
  virtual Status StartContainer(const std::string& container_id) = 0;
  // SIGTERM (or the image's stop signal), then SIGKILL after `grace`; returns once the container
  // has exited. OK when already stopped.
  virtual Status StopContainer(const std::string& container_id, std::chrono::seconds grace) = 0;
  // Removes the container (killing it if running) and its log file; OK when already gone.
  virtual Status RemoveContainer(const std::string& container_id) = 0;
  virtual Result<ContainerStatus> GetContainerStatus(const std::string& container_id) = 0;
  virtual Result<std::vector<Container>> ListContainers(const ContainerFilter& filter) = 0;
  // Makes the runtime reopen the container's log file, after the caller rotated (renamed) it.
  virtual Status ReopenContainerLog(const std::string& container_id) = 0;

  // Runs `cmd` in the container and collects its output. A command still running after
  // `timeout` is reported as timed_out (not an error). A non-zero exit is a success with that
  // exit_code; errors mean the command could not be run.
  virtual Result<ExecSyncResult> ExecSync(const std::string& container_id,
                                          const std::vector<std::string>& cmd,
                                          std::chrono::seconds timeout) = 0;
  // The single-use URL of the runtime's streaming server that serves one exec / attach /
  // port-forward session (kubectl's SPDY or WebSocket protocols, proxied byte for byte).
  virtual Result<std::string> Exec(const std::string& container_id,
                                   const std::vector<std::string>& cmd,
                                   const StreamOptions& options) = 0;
  virtual Result<std::string> Attach(const std::string& container_id,
                                     const StreamOptions& options) = 0;
  virtual Result<std::string> PortForward(const std::string& sandbox_id,
                                          const std::vector<int32_t>& ports) = 0;

  virtual Result<ContainerStats> GetContainerStats(const std::string& container_id) = 0;
  virtual Result<std::vector<ContainerStats>> ListContainerStats(
      const ContainerStatsFilter& filter) = 0;

  // Pulls `image` (through the registry mirrors and credentials containerd is configured with,
  // or `auth` when given) and returns its image ID. Failures keep the registry's message.
  virtual Result<std::string> PullImage(const std::string& image,
                                        const std::optional<AuthConfig>& auth,
                                        const PodSandboxConfig* sandbox) = 0;
  // The image by reference or ID; kNotFound when it is not present.
  virtual Result<Image> GetImageStatus(const std::string& image) = 0;
  virtual Result<std::vector<Image>> ListImages() = 0;
  // OK when already gone.
  virtual Status RemoveImage(const std::string& image) = 0;
  // Usage of the filesystem(s) holding images (for DiskPressure and node stats).
  virtual Result<std::vector<FilesystemUsage>> ImageFsInfo() = 0;
};

struct CriClientOptions {
  // "unix:///path/to/socket" (a bare absolute path is taken as a unix socket too).
  std::string endpoint;
  // Deadline of each call, except the ones below.
  std::chrono::milliseconds call_timeout{std::chrono::minutes(2)};
  // Deadline of Version and Status (used for readiness and heartbeats: must answer fast).
  std::chrono::milliseconds probe_timeout{std::chrono::seconds(10)};
  // Deadline of PullImage (large images over slow links).
  std::chrono::milliseconds pull_timeout{std::chrono::minutes(30)};
};

// A CRI v1 gRPC client. Connecting is lazy: this fails only for a malformed endpoint
// (kInvalidArgument); an absent or restarting runtime makes the calls fail with kUnavailable
// until it is back (the client reconnects by itself).
Result<std::unique_ptr<Runtime>> NewCriClient(const CriClientOptions& options);

// --- The node's own containerd ---

struct ContainerdOptions {
  std::string data_dir;  // orch's --data-dir; containerd lives in <data_dir>/agent/containerd
  std::string containerd_binary = "/usr/bin/containerd";
  std::string ctr_binary = "/usr/bin/ctr";
  std::string cni_bin_dir = "/usr/lib/cni";
  std::string cni_conf_dir;  // "" = <data_dir>/agent/etc/cni/net.d
  // `<data_dir>/registries.yaml` when "" ; a missing file means no mirrors or credentials.
  std::string registries_file;
  bool debug = false;  // containerd's log level debug instead of info
  // Back-off between restarts of a containerd that died: doubles from min to max.
  std::chrono::milliseconds restart_backoff_min{std::chrono::milliseconds(500)};
  std::chrono::milliseconds restart_backoff_max{std::chrono::seconds(30)};
  // How long Start waits for the CRI socket to answer Version.
  std::chrono::milliseconds start_timeout{std::chrono::seconds(60)};
  // Grace between SIGTERM and SIGKILL on Stop.
  std::chrono::milliseconds stop_grace{std::chrono::seconds(10)};
};

// The agent's own containerd, as a component. Start: writes the config (and registry hosts
// files), starts containerd as a child process, waits until its CRI socket answers Version,
// imports the pause image and every archive in <data_dir>/agent/images/ (*.tar, *.tar.gz,
// *.tgz; OCI layout or docker-archive) into the k8s.io namespace; fails if any of that fails (a
// bad archive is logged and skipped). While running, a containerd that dies is restarted with
// back-off. Stop: SIGTERM, SIGKILL after the grace; running containers survive (their shims are
// not children of containerd) and a later Start adopts them. Start/Stop follow Component's rules;
// the accessors are thread-safe.
class Containerd : public Component {
 public:
  // "unix://<data_dir>/agent/containerd/containerd.sock": the CRI endpoint to pass to NewCriClient.
  virtual std::string endpoint() const = 0;
  // How many times containerd was (re)started since construction (1 after a clean Start).
  virtual int starts() const = 0;
  // The process ID of the running containerd, or -1 while it is down.
  virtual int pid() const = 0;
};

std::unique_ptr<Containerd> NewContainerd(const ContainerdOptions& options);

}  // namespace orch::cri
