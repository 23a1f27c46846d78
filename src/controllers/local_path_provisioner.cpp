// The local-path provisioner and the binding half of the PV controller (local_path_provisioner.h).
// Keys: "class" (the default StorageClass, queued once at start), "claim/<ns>/<name>" and
// "volume/<name>"; every write is idempotent so a sync may stop half-way and run again.
#include "local_path_provisioner.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "orch/labels.h"
#include "orch/log.h"
#include "orch/quantity.h"

namespace orch {
namespace ctrl {
namespace {

constexpr char kHostnameLabel[] = "kubernetes.io/hostname";

int64_t BytesOf(const json& value) {
  if (value.is_null()) return 0;
  auto q = Quantity::FromJson(value);
  return q.ok() ? q->Value() : 0;
}

std::string VolumeModeOf(const json& object) {
  return StringField(object, {"spec", "volumeMode"}, "Filesystem");
}

// Whether the volume's required node affinity names `node` by hostname (no affinity: anywhere).
bool AffinityAllows(const json& volume, const std::string& node) {
  const json& terms = Field(volume, {"spec", "nodeAffinity", "required", "nodeSelectorTerms"});
  if (!terms.is_array() || terms.empty() || node.empty()) return true;
  for (const json& term : terms) {
    const json& expressions = Field(term, {"matchExpressions"});
    if (!expressions.is_array() || expressions.empty()) continue;
    bool all = true;
    for (const json& e : expressions) {
      const json& values = Field(e, {"values"});
      bool in =
          values.is_array() && std::find(values.begin(), values.end(), json(node)) != values.end();
      if (StringField(e, {"key"}) != kHostnameLabel || StringField(e, {"operator"}) != "In" ||
          !in) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

}  // namespace

json LocalPathStorageClass() {
  return {{"apiVersion", "storage.k8s.io/v1"},
          {"kind", "StorageClass"},
          {"metadata",
           {{"name", kLocalPathClass}, {"annotations", {{kDefaultClassAnnotation, "true"}}}}},
          {"provisioner", kLocalPathProvisionerName},
          {"reclaimPolicy", "Delete"},
          {"volumeBindingMode", "WaitForFirstConsumer"}};
}

std::string LocalPathVolumeDir(const std::string& data_dir, const json& claim) {
  return fmt::format("{}/storage/pvc-{}_{}_{}", data_dir, UidOf(claim), NamespaceOf(claim),
                     NameOf(claim));
}

int64_t VolumeCapacityBytes(const json& volume) {
  return BytesOf(Field(volume, {"spec", "capacity", "storage"}));
}

int64_t ClaimRequestBytes(const json& claim) {
  return BytesOf(Field(claim, {"spec", "resources", "requests", "storage"}));
}

json LocalPathVolume(const json& claim, const json& storage_class, const std::string& node,
                     const std::string& data_dir) {
  const json& request = Field(claim, {"spec", "resources", "requests", "storage"});
  json modes = Field(claim, {"spec", "accessModes"});
  if (!modes.is_array() || modes.empty()) modes = json::array({"ReadWriteOnce"});
  json spec = {
      {"capacity", {{"storage", request.is_null() ? json("0") : request}}},
      {"accessModes", modes},
      {"storageClassName", NameOf(storage_class)},
      {"persistentVolumeReclaimPolicy", StringField(storage_class, {"reclaimPolicy"}, "Delete")},
      {"volumeMode", VolumeModeOf(claim)},
      {"hostPath", {{"path", LocalPathVolumeDir(data_dir, claim)}, {"type", "DirectoryOrCreate"}}},
      {"claimRef",
       {{"apiVersion", "v1"},
        {"kind", "PersistentVolumeClaim"},
        {"namespace", NamespaceOf(claim)},
        {"name", NameOf(claim)},
        {"uid", UidOf(claim)}}}};
  if (!node.empty()) {
    spec["nodeAffinity"] = {
        {"required",
         {{"nodeSelectorTerms",
           json::array(
               {{{"matchExpressions", json::array({{{"key", kHostnameLabel},
                                                    {"operator", "In"},
                                                    {"values", json::array({node})}}})}}})}}}};
  }
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolume"},
          {"metadata",
           {{"name", fmt::format("pvc-{}", UidOf(claim))},
            {"annotations", {{kProvisionedByAnnotation, kLocalPathProvisionerName}}}}},
          {"spec", std::move(spec)}};
}

bool VolumeFitsClaim(const json& volume, const json& claim, const std::string& node) {
  if (IsBeingDeleted(volume)) return false;
  if (StringField(volume, {"spec", "storageClassName"}) !=
      StringField(claim, {"spec", "storageClassName"})) {
    return false;
  }
  if (VolumeModeOf(volume) != VolumeModeOf(claim)) return false;
  const json& offered = Field(volume, {"spec", "accessModes"});
  const json& wanted = Field(claim, {"spec", "accessModes"});
  if (wanted.is_array()) {
    for (const json& mode : wanted) {
      if (!offered.is_array() || std::find(offered.begin(), offered.end(), mode) == offered.end())
        return false;
    }
  }
  if (VolumeCapacityBytes(volume) < ClaimRequestBytes(claim)) {
    return false;
  }
  if (const json& selector = Field(claim, {"spec", "selector"}); !selector.is_null()) {
    auto parsed = LabelSelector::FromJson(selector);
    if (!parsed.ok() || !parsed->Matches(Field(volume, {"metadata", "labels"}))) return false;
  }
  return AffinityAllows(volume, node);
}

}  // namespace ctrl

namespace {

using ctrl::Field;
using ctrl::json;
using ctrl::StringField;

constexpr char kComponent[] = "localpath";
constexpr char kClassKey[] = "class";
constexpr char kBetaDefaultClassAnnotation[] = "storageclass.beta.kubernetes.io/is-default-class";

bool IsStatusPhase(const json& object, const std::string& phase) {
  return StringField(object, {"status", "phase"}) == phase;
}

class LocalPathProvisioner : public Component {
 public:
  explicit LocalPathProvisioner(ControllerContext& context)
      : client_(context.client),
        events_(context.events),
        data_dir_(context.data_dir),
        claims_(context.informers.For(resources::kPersistentVolumeClaims)),
        volumes_(context.informers.For(resources::kPersistentVolumes)),
        classes_(context.informers.For(resources::kStorageClasses)),
        nodes_(context.informers.For(resources::kNodes)),
        loop_(
            kComponent, context.informers, context.workers, std::chrono::minutes(5),
            [this] { return Keys(); }, [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return kComponent; }

  Status Start() override {
    auto claim_changed = [this](const ObjectPtr& claim) { loop_.Add(ClaimKey(*claim)); };
    claims_.AddHandler({
        claim_changed,
        [claim_changed](const ObjectPtr&, const ObjectPtr& claim) { claim_changed(claim); },
        [this](const ObjectPtr& claim) {
          std::string volume = StringField(*claim, {"spec", "volumeName"});
          if (!volume.empty()) loop_.Add(fmt::format("volume/{}", volume));
        },
    });
    auto volume_changed = [this](const ObjectPtr& volume) {
      loop_.Add(fmt::format("volume/{}", ctrl::NameOf(*volume)));
      // A claim waiting for this volume (pre-bound, or bound half-way) goes on.
      std::string claim = StringField(*volume, {"spec", "claimRef", "name"});
      if (!claim.empty()) {
        loop_.Add(fmt::format("claim/{}/{}",
                              StringField(*volume, {"spec", "claimRef", "namespace"}), claim));
      }
    };
    volumes_.AddHandler({
        volume_changed,
        [volume_changed](const ObjectPtr&, const ObjectPtr& volume) { volume_changed(volume); },
        volume_changed,
    });
    // A new (default) class may serve claims that waited for one.
    auto class_changed = [this](const ObjectPtr&) {
      for (const ObjectPtr& claim : claims_.List()) {
        if (!IsStatusPhase(*claim, "Bound")) loop_.Add(ClaimKey(*claim));
      }
    };
    classes_.AddHandler({
        class_changed,
        [class_changed](const ObjectPtr&, const ObjectPtr& c) { class_changed(c); },
        nullptr,
    });
    loop_.Add(kClassKey);
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  static std::string ClaimKey(const json& claim) {
    return fmt::format("claim/{}/{}", ctrl::NamespaceOf(claim), ctrl::NameOf(claim));
  }

  std::vector<std::string> Keys() {
    std::vector<std::string> keys;
    for (const ObjectPtr& claim : claims_.List()) keys.push_back(ClaimKey(*claim));
    for (const ObjectPtr& volume : volumes_.List()) {
      keys.push_back(fmt::format("volume/{}", ctrl::NameOf(*volume)));
    }
    return keys;
  }

  Status Sync(const std::string& key) {
    if (key == kClassKey) return EnsureClass();
    if (key.rfind("volume/", 0) == 0) return SyncVolume(key.substr(7));
    if (key.rfind("claim/", 0) == 0) {
      std::string rest = key.substr(6);
      size_t slash = rest.find('/');
      if (slash == std::string::npos) return Status::Ok();
      return SyncClaim(rest.substr(0, slash), rest.substr(slash + 1));
    }
    return Status::Ok();
  }

  // k3s installs the class from a manifest at start; deleting it keeps it deleted until then.
  Status EnsureClass() {
    if (classes_.Get("", ctrl::kLocalPathClass)) return Status::Ok();
    auto created = client_.Create(resources::kStorageClasses, "", ctrl::LocalPathStorageClass());
    if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) {
      return created.status();
    }
    if (created.ok()) log::Info(kComponent, "created StorageClass {}", ctrl::kLocalPathClass);
    return Status::Ok();
  }

  // The default class (the newest of those annotated, as upstream picks), "" when none.
  std::string DefaultClass() {
    ObjectPtr best;
    for (const ObjectPtr& c : classes_.List()) {
      if (StringField(*c, {"metadata", "annotations", ctrl::kDefaultClassAnnotation}) != "true" &&
          StringField(*c, {"metadata", "annotations", kBetaDefaultClassAnnotation}) != "true") {
        continue;
      }
      if (ctrl::IsBeingDeleted(*c)) continue;
      auto created = [](const json& o) {
        return StringField(o, {"metadata", "creationTimestamp"});
      };
      if (!best || created(*c) > created(*best) ||
          (created(*c) == created(*best) && ctrl::NameOf(*c) < ctrl::NameOf(*best))) {
        best = c;
      }
    }
    return best ? ctrl::NameOf(*best) : "";
  }

  void Event(const json& object, const char* kind, const std::string& type,
             const std::string& reason, const std::string& message) {
    events_.Record(ctrl::EventRef(object, "v1", kind), type, reason, message);
  }

  Status SyncClaim(const std::string& ns, const std::string& name) {
    ObjectPtr claim = claims_.Get(ns, name);
    if (!claim || ctrl::IsBeingDeleted(*claim)) return Status::Ok();
    // A claim that names no class (the field absent, not "") gets the default one, as the
    // DefaultStorageClass admission and the PV controller's retroactive assignment do.
    const json& class_field = Field(*claim, {"spec", "storageClassName"});
    if (class_field.is_null() && StringField(*claim, {"spec", "volumeName"}).empty()) {
      std::string default_class = DefaultClass();
      if (!default_class.empty()) {
        json patch = {{"spec", {{"storageClassName", default_class}}}};
        auto patched = client_.Patch(resources::kPersistentVolumeClaims, ns, name,
                                     PatchType::kMerge, patch.dump());
        if (!patched.ok() && patched.status().code() != StatusCode::kNotFound) {
          return patched.status();
        }
        return Status::Ok();  // the update event brings the claim back
      }
    }
    std::string volume_name = StringField(*claim, {"spec", "volumeName"});
    if (!volume_name.empty()) return SyncBoundClaim(*claim, volume_name);

    const std::string class_name = StringField(*claim, {"spec", "storageClassName"});
    const std::string node =
        StringField(*claim, {"metadata", "annotations", ctrl::kSelectedNodeAnnotation});
    ObjectPtr storage_class = class_name.empty() ? nullptr : classes_.Get("", class_name);
    const bool wait_for_consumer =
        storage_class &&
        StringField(*storage_class, {"volumeBindingMode"}) == "WaitForFirstConsumer";
    if (wait_for_consumer && node.empty()) {
      Event(*claim, "PersistentVolumeClaim", "Normal", "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding");
      return Status::Ok();
    }

    // A volume made for this claim (pre-bound) or the smallest Available one that fits.
    ObjectPtr best;
    for (const ObjectPtr& volume : volumes_.List()) {
      const json& ref = Field(*volume, {"spec", "claimRef"});
      if (ref.is_object() && !StringField(ref, {"name"}).empty()) {
        bool ours =
            StringField(ref, {"name"}) == name && StringField(ref, {"namespace"}) == ns &&
            (StringField(ref, {"uid"}).empty() || StringField(ref, {"uid"}) == ctrl::UidOf(*claim));
        if (ours && !ctrl::IsBeingDeleted(*volume)) {
          best = volume;
          break;
        }
        continue;
      }
      if (!IsStatusPhase(*volume, "Available") && !IsStatusPhase(*volume, "")) continue;
      if (!ctrl::VolumeFitsClaim(*volume, *claim, node)) continue;
      if (!best || ctrl::VolumeCapacityBytes(*volume) < ctrl::VolumeCapacityBytes(*best))
        best = volume;
    }
    if (best) return Bind(*best, *claim);

    if (class_name.empty()) {
      Event(*claim, "PersistentVolumeClaim", "Normal", "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set");
      return Status::Ok();
    }
    if (!storage_class) {
      Event(*claim, "PersistentVolumeClaim", "Warning", "ProvisioningFailed",
            fmt::format("storageclass.storage.k8s.io \"{}\" not found", class_name));
      return Status::Ok();
    }
    std::string provisioner = StringField(*storage_class, {"provisioner"});
    if (provisioner != ctrl::kLocalPathProvisionerName) {
      Event(*claim, "PersistentVolumeClaim", "Normal", "ExternalProvisioning",
            fmt::format("Waiting for a volume to be created either by the external provisioner "
                        "'{}' or manually by the system administrator. If volume creation is "
                        "delayed, please verify that the provisioner is running and correctly "
                        "registered.",
                        provisioner));
      return Status::Ok();
    }
    return Provision(*claim, *storage_class, node);
  }

  // Immediate binding has no consumer to follow: the first schedulable node by name.
  std::string PickNode() {
    std::vector<std::string> names;
    for (const ObjectPtr& n : nodes_.List()) {
      if (!ctrl::BoolField(*n, {"spec", "unschedulable"})) names.push_back(ctrl::NameOf(*n));
    }
    std::sort(names.begin(), names.end());
    return names.empty() ? "" : names.front();
  }

  Status Provision(const json& claim, const json& storage_class, std::string node) {
    for (const json& mode : Field(claim, {"spec", "accessModes"})) {
      if (mode != "ReadWriteOnce" && mode != "ReadWriteOncePod") {
        Event(claim, "PersistentVolumeClaim", "Warning", "ProvisioningFailed",
              fmt::format("failed to provision volume with StorageClass \"{}\": NodePath only "
                          "supports ReadWriteOnce and ReadWriteOncePod access modes",
                          ctrl::NameOf(storage_class)));
        return Status::Ok();
      }
    }
    if (node.empty()) node = PickNode();
    if (node.empty()) return Unavailable("no schedulable node to provision the volume on");
    json volume = ctrl::LocalPathVolume(claim, storage_class, node, data_dir_);
    const std::string volume_name = ctrl::NameOf(volume);
    auto created = client_.Create(resources::kPersistentVolumes, "", volume);
    if (created.ok()) {
      log::Info(kComponent, "provisioned {} for {}/{} on {}", volume_name, ctrl::NamespaceOf(claim),
                ctrl::NameOf(claim), node);
      Event(claim, "PersistentVolumeClaim", "Normal", "ProvisioningSucceeded",
            fmt::format("Successfully provisioned volume {}", volume_name));
      volume = std::move(*created);
    } else if (created.status().code() == StatusCode::kAlreadyExists) {
      auto existing = client_.Get(resources::kPersistentVolumes, "", volume_name);
      if (!existing.ok()) return existing.status();
      volume = std::move(*existing);
    } else {
      Event(claim, "PersistentVolumeClaim", "Warning", "ProvisioningFailed",
            fmt::format("failed to provision volume with StorageClass \"{}\": {}",
                        ctrl::NameOf(storage_class), created.status().message()));
      return created.status();
    }
    return Bind(volume, claim);
  }

  // Claim side of a claim that names its volume: finish the binding, or report it lost.
  Status SyncBoundClaim(const json& claim, const std::string& volume_name) {
    ObjectPtr volume = volumes_.Get("", volume_name);
    json live;
    if (!volume) {
      // The volume informer may lag behind the claim's: ask the API before calling it lost.
      auto got = client_.Get(resources::kPersistentVolumes, "", volume_name);
      if (got.ok()) {
        live = std::move(*got);
      } else if (got.status().code() != StatusCode::kNotFound) {
        return got.status();
      } else {
        if (IsStatusPhase(claim, "Bound")) {
          Event(claim, "PersistentVolumeClaim", "Warning", "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!");
          return PatchStatus(resources::kPersistentVolumeClaims, claim, {{"phase", "Lost"}});
        }
        return Status::Ok();  // pre-bound to a volume that does not exist (yet)
      }
    }
    const json& v = volume ? *volume : live;
    const json& ref = Field(v, {"spec", "claimRef"});
    std::string ref_uid = StringField(ref, {"uid"});
    bool free = !ref.is_object() || StringField(ref, {"name"}).empty();
    bool ours = !free && StringField(ref, {"name"}) == ctrl::NameOf(claim) &&
                StringField(ref, {"namespace"}) == ctrl::NamespaceOf(claim) &&
                (ref_uid.empty() || ref_uid == ctrl::UidOf(claim));
    if (!free && !ours) {
      Event(claim, "PersistentVolumeClaim", "Warning", "FailedBinding",
            fmt::format("volume \"{}\" already bound to a different claim.", volume_name));
      return Status::Ok();
    }
    return Bind(v, claim);
  }

  // The volume's folder, where k3s's provisioner runs a helper pod on the node: orch removes it
  // itself when the folder is on this machine (the server's own node, or nodes sharing its
  // disk). Only folders the provisioner makes (<data-dir>/storage/pvc-...) are touched.
  Status RemoveFolder(const json& volume) {
    std::string path = StringField(volume, {"spec", "hostPath", "path"});
    if (path.empty()) path = StringField(volume, {"spec", "local", "path"});
    const std::string prefix = data_dir_ + "/storage/pvc-";
    if (path.rfind(prefix, 0) != 0 || path.find("/..") != std::string::npos ||
        path.find('/', prefix.size()) != std::string::npos) {
      return Status::Ok();
    }
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return Internal(fmt::format("remove {}: {}", path, ec.message()));
    log::Info(kComponent, "removed the folder {} of {}", path, ctrl::NameOf(volume));
    return Status::Ok();
  }

  Status PatchStatus(const ResourceRef& ref, const json& object, json status) {
    json patch = {{"status", std::move(status)}};
    auto patched = client_.Patch(ref, ctrl::NamespaceOf(object), ctrl::NameOf(object),
                                 PatchType::kMerge, patch.dump(), "status");
    if (!patched.ok() && patched.status().code() != StatusCode::kNotFound) {
      return patched.status();
    }
    return Status::Ok();
  }

  // Both halves, in upstream's order: the volume's claimRef and phase, then the claim's
  // volumeName, annotations and status. Each step is skipped when already done.
  Status Bind(const json& volume_in, const json& claim) {
    json volume = volume_in;
    const std::string volume_name = ctrl::NameOf(volume);
    if (StringField(volume, {"spec", "claimRef", "uid"}) != ctrl::UidOf(claim)) {
      // A full update: its resourceVersion makes a second claim racing for the volume fail.
      volume["spec"]["claimRef"] = {
          {"apiVersion", "v1"},
          {"kind", "PersistentVolumeClaim"},
          {"namespace", ctrl::NamespaceOf(claim)},
          {"name", ctrl::NameOf(claim)},
          {"uid", ctrl::UidOf(claim)},
          {"resourceVersion", StringField(claim, {"metadata", "resourceVersion"})}};
      volume["metadata"]["annotations"][ctrl::kBoundByControllerAnnotation] = "yes";
      auto updated = client_.Update(resources::kPersistentVolumes, "", volume);
      if (!updated.ok()) return updated.status();
      volume = std::move(*updated);
    }
    if (!IsStatusPhase(volume, "Bound")) {
      if (Status s = PatchStatus(resources::kPersistentVolumes, volume, {{"phase", "Bound"}});
          !s.ok()) {
        return s;
      }
    }
    const std::string ns = ctrl::NamespaceOf(claim);
    const std::string name = ctrl::NameOf(claim);
    if (StringField(claim, {"spec", "volumeName"}) != volume_name ||
        StringField(claim, {"metadata", "annotations", ctrl::kBindCompletedAnnotation}) != "yes") {
      json patch = {{"metadata",
                     {{"annotations",
                       {{ctrl::kBindCompletedAnnotation, "yes"},
                        {ctrl::kBoundByControllerAnnotation, "yes"}}}}},
                    {"spec", {{"volumeName", volume_name}}}};
      auto patched = client_.Patch(resources::kPersistentVolumeClaims, ns, name, PatchType::kMerge,
                                   patch.dump());
      if (!patched.ok()) {
        return patched.status().code() == StatusCode::kNotFound ? Status::Ok() : patched.status();
      }
    }
    if (!IsStatusPhase(claim, "Bound") ||
        Field(claim, {"status", "capacity"}) != Field(volume, {"spec", "capacity"})) {
      json status = {{"phase", "Bound"},
                     {"accessModes", Field(volume, {"spec", "accessModes"})},
                     {"capacity", Field(volume, {"spec", "capacity"})}};
      if (Status s = PatchStatus(resources::kPersistentVolumeClaims, claim, std::move(status));
          !s.ok()) {
        return s;
      }
      log::Debug(kComponent, "bound {}/{} to {}", ns, name, volume_name);
    }
    return Status::Ok();
  }

  Status SyncVolume(const std::string& name) {
    ObjectPtr volume = volumes_.Get("", name);
    if (!volume || ctrl::IsBeingDeleted(*volume)) return Status::Ok();
    const json& ref = Field(*volume, {"spec", "claimRef"});
    const std::string claim_name = StringField(ref, {"name"});
    const std::string claim_ns = StringField(ref, {"namespace"});
    const std::string claim_uid = StringField(ref, {"uid"});
    if (claim_name.empty() || claim_uid.empty()) {
      // Free, or pre-bound to a claim that has not come yet: Available.
      if (!IsStatusPhase(*volume, "Available")) {
        return PatchStatus(resources::kPersistentVolumes, *volume, {{"phase", "Available"}});
      }
      return Status::Ok();
    }
    ObjectPtr claim = claims_.Get(claim_ns, claim_name);
    if (claim && ctrl::UidOf(*claim) == claim_uid) return Status::Ok();
    // The claim informer may lag behind the volume's (a volume provisioned a moment ago): only
    // the API may say the claim is gone.
    auto live = client_.Get(resources::kPersistentVolumeClaims, claim_ns, claim_name);
    if (live.ok() && ctrl::UidOf(*live) == claim_uid) return Status::Ok();
    if (!live.ok() && live.status().code() != StatusCode::kNotFound) return live.status();

    const std::string policy =
        StringField(*volume, {"spec", "persistentVolumeReclaimPolicy"}, "Retain");
    const bool provisioned =
        StringField(*volume, {"metadata", "annotations", ctrl::kProvisionedByAnnotation}) ==
        ctrl::kLocalPathProvisionerName;
    if (policy == "Delete" && provisioned) {
      // Released first, as upstream's volume controller does: the pv-protection finalizer holds
      // a Bound volume.
      if (!IsStatusPhase(*volume, "Released")) {
        if (Status s = PatchStatus(resources::kPersistentVolumes, *volume, {{"phase", "Released"}});
            !s.ok()) {
          return s;
        }
      }
      if (Status s = RemoveFolder(*volume); !s.ok()) {
        Event(*volume, "PersistentVolume", "Warning", "VolumeFailedDelete", s.message());
        return s;
      }
      DeleteOptions options;
      options.precondition_uid = ctrl::UidOf(*volume);
      auto deleted = client_.Delete(resources::kPersistentVolumes, "", name, options);
      if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound) {
        Event(*volume, "PersistentVolume", "Warning", "VolumeFailedDelete",
              deleted.status().message());
        return deleted.status();
      }
      log::Info(kComponent, "deleted {}: its claim {}/{} is gone", name, claim_ns, claim_name);
      return Status::Ok();
    }
    if (!IsStatusPhase(*volume, "Released")) {
      if (policy == "Delete") {
        Event(*volume, "PersistentVolume", "Warning", "VolumeFailedDelete",
              fmt::format("orch deletes only volumes provisioned by {}",
                          ctrl::kLocalPathProvisionerName));
      }
      return PatchStatus(resources::kPersistentVolumes, *volume, {{"phase", "Released"}});
    }
    return Status::Ok();
  }

  ApiClient& client_;
  EventRecorder& events_;
  const std::string data_dir_;
  Informer& claims_;
  Informer& volumes_;
  Informer& classes_;
  Informer& nodes_;
  ctrl::ControllerLoop loop_;  // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewLocalPathProvisioner(ControllerContext& context) {
  return std::make_unique<LocalPathProvisioner>(context);
}

}  // namespace orch
