// A pod's volumes on the node: emptyDir (on disk, or tmpfs with medium Memory), hostPath (with
// its type checks), configMap and secret (files written atomically, refreshed when the source
// changes), downwardAPI and projected (configMap, secret, downwardAPI and serviceAccountToken
// sources; tokens come from TokenRequests bound to the pod and are renewed), and the CRI
// mounts of a container's volumeMounts, and persistentVolumeClaim (the bound PersistentVolume's
// hostPath or local folder, bind-mounted).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agent_paths.h"
#include "container_env.h"
#include "json_util.h"
#include "object_source.h"
#include "orch/runtime.h"
#include "orch/status.h"
#include "token_manager.h"

namespace orch::agent {

// Set by orch's local-path provisioner (src/controllers/local_path_provisioner.h) on the
// PersistentVolumes it makes, as k3s's provisioner does.
inline constexpr char kProvisionedByAnnotation[] = "pv.kubernetes.io/provisioned-by";
inline constexpr char kLocalPathProvisioner[] = "rancher.io/local-path";

struct VolumeInfo {
  std::string host_path;
  bool read_only = false;  // configMap and secret volumes are always mounted read-only
};

using VolumeMap = std::map<std::string, VolumeInfo>;

// One file of a configMap/secret-style volume, by path relative to the volume.
struct VolumeFile {
  std::string content;
  mode_t mode = 0644;
  bool operator==(const VolumeFile&) const = default;
};
using VolumePayload = std::map<std::string, VolumeFile>;

// Writes `payload` into `dir` the way the kubelet's atomic writer does, so that a container
// never sees a mix of old and new files: the files go into a fresh timestamped folder, a
// `..data` symlink is switched to it in one rename, and each top-level name is a symlink
// through `..data`. Nothing is written when the payload is what `dir` already holds. Returns
// whether anything changed.
Result<bool> WriteAtomically(const std::string& dir, const VolumePayload& payload);

// The files of a configMap or secret volume source (items, keys, modes, optional), from the
// object (nullptr when it does not exist). Errors carry the kubelet's wording.
Result<VolumePayload> ConfigMapPayload(const json& source, const json* config_map);
Result<VolumePayload> SecretPayload(const json& source, const json* secret);

// `metadata.labels` / `metadata.annotations` as a downwardAPI file: `key="value"` lines sorted
// by key, values quoted as Go's %q does, no final newline.
std::string FormatDownwardMap(const json& map);

// The files of a downwardAPI volume source (items with fieldRef or resourceFieldRef, path, mode);
// `ctx` says what the pod object does not (node, addresses, allocatable). `default_mode` applies
// unless the source or the item sets one.
Result<VolumePayload> DownwardApiPayload(const json& source, const json& pod, const EnvContext& ctx,
                                         mode_t default_mode);

// Thread-safe for different pods (the pod worker serializes the calls for one pod).
class VolumeManager {
 public:
  // `use_tmpfs`: mount tmpfs for memory-backed emptyDirs and secret volumes (needs root; tests
  // without root turn it off and get plain folders).
  // `tokens` serves serviceAccountToken sources; null: such sources are skipped (warned).
  VolumeManager(const AgentPaths& paths, ObjectSource& objects, bool use_tmpfs = true,
                TokenSource* tokens = nullptr)
      : paths_(paths), objects_(objects), use_tmpfs_(use_tmpfs), tokens_(tokens) {}

  // Sets up every volume of the pod, refreshing configMap, secret, downwardAPI and projected
  // contents. The error names the volume: `MountVolume.SetUp failed for volume "v" : configmap
  // "c" not found`. `env` fills downwardAPI fields the pod object lacks; what was skipped
  // (serviceAccountToken sources without a token source) goes to `warnings` when given. Tokens
  // are renewed by the call that finds them due (pod workers resync every minute).
  Result<VolumeMap> SetUp(const json& pod, const EnvContext& env = {},
                          std::vector<std::string>* warnings = nullptr);

  // The CRI mounts of the container's volumeMounts (subPath folders are created as needed).
  Result<std::vector<cri::Mount>> MountsFor(const json& container, const VolumeMap& volumes,
                                            const EnvList& env);

  // Unmounts what the agent mounted for pod `uid` and removes its folder. kUnavailable (and
  // nothing removed) if something under it stays mounted.
  Status TearDown(const std::string& uid);

 private:
  Result<VolumeInfo> SetUpOne(const json& pod, const json& volume, const EnvContext& env,
                              std::vector<std::string>* warnings);
  // The host folder of the PersistentVolume bound to claim `ns`/`name`; kUnavailable while the
  // claim is missing or not bound (the pod waits).
  Result<std::string> ClaimPath(const std::string& ns, const std::string& name);
  Result<VolumePayload> ProjectedPayload(const json& pod, const std::string& name,
                                         const json& projected, const EnvContext& env,
                                         std::vector<std::string>* warnings);
  Status EnsureTmpfs(const std::string& dir, const std::string& size);

  const AgentPaths paths_;
  ObjectSource& objects_;
  const bool use_tmpfs_;
  TokenSource* const tokens_;
};

// Mount points at or under `prefix`, from /proc/self/mountinfo, deepest first.
std::vector<std::string> MountPointsUnder(const std::string& prefix);

// Whether `path` (not following a last symlink) is the root of a mount.
bool IsMountPoint(const std::string& path);

}  // namespace orch::agent
