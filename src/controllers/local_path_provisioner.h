// The local-path provisioner, as k3s ships it: the default StorageClass `local-path` and, for
// claims of a class with provisioner rancher.io/local-path, PersistentVolumes that are folders
// of one node (<data-dir>/storage/pvc-<uid>_<ns>_<name>). Also the parts of the PV controller
// orch needs: binding claims to fitting Available volumes, the default class for claims that
// name none, and deleting a volume with reclaim policy Delete once its claim is gone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

// The factory of the AllControllers() table ("localpath"; `--disable local-storage`).
std::unique_ptr<Component> NewLocalPathProvisioner(ControllerContext& context);

namespace ctrl {

inline constexpr char kLocalPathClass[] = "local-path";
inline constexpr char kLocalPathProvisionerName[] = "rancher.io/local-path";
inline constexpr char kDefaultClassAnnotation[] = "storageclass.kubernetes.io/is-default-class";
inline constexpr char kSelectedNodeAnnotation[] = "volume.kubernetes.io/selected-node";
inline constexpr char kProvisionedByAnnotation[] = "pv.kubernetes.io/provisioned-by";
inline constexpr char kBindCompletedAnnotation[] = "pv.kubernetes.io/bind-completed";
inline constexpr char kBoundByControllerAnnotation[] = "pv.kubernetes.io/bound-by-controller";

// The StorageClass created at start when missing.
json LocalPathStorageClass();

// The folder of a claim's volume under `data_dir`: <data_dir>/storage/pvc-<uid>_<ns>_<name>.
std::string LocalPathVolumeDir(const std::string& data_dir, const json& claim);

// The PersistentVolume provisioned for `claim` (of `storage_class`, whose reclaimPolicy it
// takes) on `node`, already naming the claim; no node affinity when `node` is empty.
json LocalPathVolume(const json& claim, const json& storage_class, const std::string& node,
                     const std::string& data_dir);

// Whether an unclaimed volume can serve the claim: same class, every access mode the claim asks
// for, at least the requested storage, same volume mode, not being deleted, and (when `node` is
// given and the volume has node affinity) a kubernetes.io/hostname term naming `node`.
bool VolumeFitsClaim(const json& volume, const json& claim, const std::string& node);

// The storage the claim requests / the volume offers, in bytes (0 when none).
int64_t ClaimRequestBytes(const json& claim);
int64_t VolumeCapacityBytes(const json& volume);

}  // namespace ctrl
}  // namespace orch
