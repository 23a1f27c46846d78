// Pod volumes on the node (volumes.h).
#include "volumes.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "orch/base64.h"
#include "orch/files.h"
#include "orch/go_strconv.h"
#include "orch/quantity.h"
#include "orch/timestamps.h"

namespace orch::agent {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDataLink = "..data";
constexpr mode_t kDefaultFileMode = 0644;

std::string Errno(const std::string& what) {
  return fmt::format("{}: {}", what, strerror(errno));
}

// A relative path inside a volume: no absolute paths, no "..", no hidden "..x" top level (those
// names belong to the writer).
bool ValidVolumePath(const std::string& path) {
  if (path.empty() || path[0] == '/' || path.rfind("..", 0) == 0) return false;
  std::istringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part == "..") return false;
  }
  return true;
}

Status WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return Unavailable(Errno("cannot write " + path));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Unavailable(Errno("cannot write " + path));
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);  // the umask must not change what the pod asked for
  ::close(fd);
  return Status::Ok();
}

// The files under `root` (recursively), for comparing with a new payload.
VolumePayload ReadPayload(const std::string& root) {
  VolumePayload out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string rel = fs::relative(it->path(), root, ec).string();
    auto content = ReadFileToString(it->path().string());
    struct stat st {};
    if (!content.ok() || ::stat(it->path().c_str(), &st) != 0) continue;
    out[rel] = VolumeFile{std::move(*content), static_cast<mode_t>(st.st_mode & 07777)};
  }
  return out;
}

// "..2024_01_02_15_04_05.123456789": the writer's folder names, unique per write.
std::string TimestampedName() {
  static std::atomic<uint64_t> counter{0};
  auto now = std::chrono::system_clock::now();
  std::string t = FormatTime(now);  // 2006-01-02T15:04:05Z
  for (char& c : t) {
    if (c == '-' || c == 'T' || c == ':') c = '_';
  }
  t.pop_back();  // Z
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()) %
               std::chrono::seconds(1);
  return fmt::format("..{}.{:09}{}", t, nanos.count(), counter.fetch_add(1) % 10);
}

mode_t ModeOf(const json& value, mode_t fallback) {
  return value.is_number_integer() ? static_cast<mode_t>(value.get<int64_t>() & 07777) : fallback;
}

// Shared by configMap and secret volumes: keys -> files by items (or every key).
Result<VolumePayload> PayloadFrom(const json& source,
                                  const std::map<std::string, std::string>& data,
                                  const std::string& missing_key_prefix) {
  VolumePayload out;
  mode_t default_mode = ModeOf(At(source, {"defaultMode"}), kDefaultFileMode);
  const json& items = Array(source, {"items"});
  if (items.empty()) {
    for (const auto& [key, value] : data) {
      if (!ValidVolumePath(key)) continue;
      out[key] = VolumeFile{value, default_mode};
    }
    return out;
  }
  for (const json& item : items) {
    std::string key = Str(item, {"key"});
    std::string path = Str(item, {"path"});
    auto it = data.find(key);
    if (it == data.end()) {
      if (Bool(source, {"optional"})) continue;
      return InvalidArgument(missing_key_prefix + key);
    }
    if (!ValidVolumePath(path)) return InvalidArgument(fmt::format("invalid path {:?}", path));
    out[path] = VolumeFile{it->second, ModeOf(At(item, {"mode"}), default_mode)};
  }
  return out;
}

std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string VolumeDir(const AgentPaths& paths, const json& pod, const char* plugin,
                      const std::string& name) {
  return fmt::format("{}/volumes/kubernetes.io~{}/{}", paths.PodDir(Str(pod, {"metadata", "uid"})),
                     plugin, name);
}

Status CheckHostPath(const std::string& path, const std::string& type) {
  struct stat st {};
  bool exists = ::stat(path.c_str(), &st) == 0;
  auto fail = [&](const char* what) {
    return InvalidArgument(fmt::format("hostPath type check failed: {} is not {}", path, what));
  };
  if (type.empty()) return Status::Ok();
  if (type == "DirectoryOrCreate") {
    if (!exists) {
      Status s = MakeDirectories(path, 0755);
      if (!s.ok()) return s;
      return Status::Ok();
    }
    return S_ISDIR(st.st_mode) ? Status::Ok() : fail("a directory");
  }
  if (type == "Directory")
    return exists && S_ISDIR(st.st_mode) ? Status::Ok() : fail("a directory");
  if (type == "FileOrCreate") {
    if (!exists) {
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return InvalidArgument(Errno("cannot create " + path));
      ::close(fd);
      return Status::Ok();
    }
    return S_ISREG(st.st_mode) ? Status::Ok() : fail("a file");
  }
  if (type == "File") return exists && S_ISREG(st.st_mode) ? Status::Ok() : fail("a file");
  if (type == "Socket") {
    return exists && S_ISSOCK(st.st_mode) ? Status::Ok() : fail("a socket file");
  }
  if (type == "CharDevice") {
    return exists && S_ISCHR(st.st_mode) ? Status::Ok() : fail("a character device");
  }
  if (type == "BlockDevice") {
    return exists && S_ISBLK(st.st_mode) ? Status::Ok() : fail("a block device");
  }
  return InvalidArgument(fmt::format("hostPath type {:?} is not supported", type));
}

}  // namespace

std::vector<std::string> MountPointsUnder(const std::string& prefix) {
  std::vector<std::string> out;
  // Line by line: the table is not held whole (nor copied) in memory.
  std::ifstream table("/proc/self/mountinfo");
  if (!table) return out;
  std::string base = prefix;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string line;
  while (std::getline(table, line)) {
    // "<id> <parent> <major:minor> <root> <mount point> ...": the fifth field.
    size_t start = 0;
    for (int field = 0; field < 4 && start != std::string::npos; ++field) {
      start = line.find(' ', start);
      if (start != std::string::npos) ++start;
    }
    if (start == std::string::npos) continue;
    size_t end = line.find(' ', start);
    if (end == std::string::npos) continue;
    std::string mount_point = Unescape(line.substr(start, end - start));
    if (mount_point == base || mount_point.rfind(base + "/", 0) == 0) out.push_back(mount_point);
  }
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// statx says it directly (STATX_ATTR_MOUNT_ROOT, Linux 5.8; bind mounts of the same file system
// included) without reading the whole mount table: on a busy node that is hundreds of lines, and
// during a burst of pod starts every pod worker read it at once (0.6 MB of the agent's heap peak
// with 50 pods). Kernels without the attribute fall back to the table.
bool IsMountPoint(const std::string& path) {
  struct statx stx {};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, 0, &stx) == 0 &&
      (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0) {
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
  auto mounts = MountPointsUnder(path);
  return std::find(mounts.begin(), mounts.end(), path) != mounts.end();
}

Result<bool> WriteAtomically(const std::string& dir, const VolumePayload& payload) {
  if (Status s = MakeDirectories(dir, 0755); !s.ok()) return s;
  std::string data_link = dir + "/" + kDataLink;
  char target[PATH_MAX];
  ssize_t n = ::readlink(data_link.c_str(), target, sizeof target - 1);
  std::string old_name = n > 0 ? std::string(target, static_cast<size_t>(n)) : "";
  if (!old_name.empty() && ReadPayload(dir + "/" + old_name) == payload) return false;

  std::string new_name = TimestampedName();
  std::string new_dir = dir + "/" + new_name;
  if (::mkdir(new_dir.c_str(), 0755) != 0) return Unavailable(Errno("cannot create " + new_dir));
  std::set<std::string> top_level;
  for (const auto& [path, file] : payload) {
    std::string full = new_dir + "/" + path;
    std::string parent = full.substr(0, full.rfind('/'));
    if (parent != new_dir) {
      if (Status s = MakeDirectories(parent, 0755); !s.ok()) return s;
    }
    if (Status s = WriteFile(full, file.content, file.mode); !s.ok()) return s;
    top_level.insert(path.substr(0, path.find('/')));
  }
  ::chmod(new_dir.c_str(), 0755);
  std::string tmp_link = dir + "/..data_tmp";
  ::unlink(tmp_link.c_str());
  if (::symlink(new_name.c_str(), tmp_link.c_str()) != 0) {
    return Unavailable(Errno("cannot link " + tmp_link));
  }
  if (::rename(tmp_link.c_str(), data_link.c_str()) != 0) {
    return Unavailable(Errno("cannot switch " + data_link));
  }
  for (const auto& name : top_level) {
    std::string link = dir + "/" + name;
    struct stat st {};
    if (::lstat(link.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) continue;
      std::error_code ec;
      fs::remove_all(link, ec);
    }
    std::string to = std::string(kDataLink) + "/" + name;
    if (::symlink(to.c_str(), link.c_str()) != 0) return Unavailable(Errno("cannot link " + link));
  }
  // Names that left the payload, and the previous folder.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("..", 0) == 0 || top_level.contains(name)) continue;
    if (entry.is_symlink(ec)) fs::remove(entry.path(), ec);
  }
  if (!old_name.empty() && old_name.rfind("..", 0) == 0 && old_name != new_name) {
    fs::remove_all(dir + "/" + old_name, ec);
  }
  return true;
}

Result<VolumePayload> ConfigMapPayload(const json& source, const json* config_map) {
  if (config_map == nullptr) {
    if (Bool(source, {"optional"})) return VolumePayload{};
    return NotFound(fmt::format("configmap \"{}\" not found", Str(source, {"name"})));
  }
  std::map<std::string, std::string> data;
  if (const json& d = At(*config_map, {"data"}); d.is_object()) {
    for (const auto& [k, v] : d.items()) {
      if (v.is_string()) data[k] = v.get<std::string>();
    }
  }
  if (const json& b = At(*config_map, {"binaryData"}); b.is_object()) {
    for (const auto& [k, v] : b.items()) {
      if (!v.is_string()) continue;
      if (auto decoded = Base64Decode(v.get<std::string>())) data[k] = std::move(*decoded);
    }
  }
  return PayloadFrom(source, data, "configmap references non-existent config key: ");
}

Result<VolumePayload> SecretPayload(const json& source, const json* secret) {
  if (secret == nullptr) {
    if (Bool(source, {"optional"})) return VolumePayload{};
    return NotFound(fmt::format("secret \"{}\" not found", Str(source, {"secretName"})));
  }
  std::map<std::string, std::string> data;
  if (const json& d = At(*secret, {"data"}); d.is_object()) {
    for (const auto& [k, v] : d.items()) {
      if (!v.is_string()) continue;
      if (auto decoded = Base64Decode(v.get<std::string>())) data[k] = std::move(*decoded);
    }
  }
  return PayloadFrom(source, data, "references non-existent secret key: ");
}

std::string FormatDownwardMap(const json& map) {
  std::vector<std::string> lines;
  if (map.is_object()) {
    for (const auto& [k, v] : map.items()) {
      if (v.is_string()) lines.push_back(k + "=" + GoQuote(v.get<std::string>()));
    }
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& line : lines) out += (out.empty() ? "" : "\n") + line;
  return out;
}

Result<VolumePayload> DownwardApiPayload(const json& source, const json& pod, const EnvContext& ctx,
                                         mode_t default_mode) {
  VolumePayload out;
  default_mode = ModeOf(At(source, {"defaultMode"}), default_mode);
  for (const json& item : Array(source, {"items"})) {
    std::string path = Str(item, {"path"});
    if (!ValidVolumePath(path)) return InvalidArgument(fmt::format("invalid path {:?}", path));
    std::string content;
    if (const json& f = At(item, {"fieldRef"}); f.is_object()) {
      std::string field = Str(f, {"fieldPath"});
      if (field == "metadata.labels") {
        content = FormatDownwardMap(At(pod, {"metadata", "labels"}));
      } else if (field == "metadata.annotations") {
        content = FormatDownwardMap(At(pod, {"metadata", "annotations"}));
      } else {
        auto v = FieldRefValue(pod, field, ctx);
        if (!v.ok()) return v.status();
        content = std::move(*v);
      }
    } else if (const json& r = At(item, {"resourceFieldRef"}); r.is_object()) {
      if (Str(r, {"containerName"}).empty()) {
        return InvalidArgument(fmt::format("resourceFieldRef of {:?} must name a container", path));
      }
      auto v = ResourceFieldValue(pod, json::object(), r, ctx);
      if (!v.ok()) return v.status();
      content = std::move(*v);
    } else {
      return InvalidArgument(
          fmt::format("item {:?} has neither fieldRef nor resourceFieldRef", path));
    }
    out[path] = VolumeFile{std::move(content), ModeOf(At(item, {"mode"}), default_mode)};
  }
  return out;
}

Status VolumeManager::EnsureTmpfs(const std::string& dir, const std::string& size) {
  if (!use_tmpfs_ || IsMountPoint(dir)) return Status::Ok();
  std::string options = "mode=0755";
  if (!size.empty()) options += ",size=" + size;
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    return Unavailable(Errno("cannot mount tmpfs on " + dir));
  }
  return Status::Ok();
}

Result<VolumePayload> VolumeManager::ProjectedPayload(const json& pod, const std::string& name,
                                                      const json& projected, const EnvContext& env,
                                                      std::vector<std::string>* warnings) {
  const std::string ns = Str(pod, {"metadata", "namespace"});
  const json& default_mode = At(projected, {"defaultMode"});
  VolumePayload out;
  auto merge = [&](VolumePayload part) {
    for (auto& [path, file] : part) out[path] = std::move(file);
  };
  for (const json& source : Array(projected, {"sources"})) {
    if (const json& cm = At(source, {"configMap"}); cm.is_object()) {
      json copy = cm;
      if (!copy.contains("defaultMode") && !default_mode.is_null())
        copy["defaultMode"] = default_mode;
      auto object = objects_.ConfigMap(ns, Str(cm, {"name"}));
      if (!object.ok() && object.status().code() != StatusCode::kNotFound) return object.status();
      auto part = ConfigMapPayload(copy, object.ok() ? object->get() : nullptr);
      if (!part.ok()) return part.status();
      merge(std::move(*part));
    } else if (const json& secret = At(source, {"secret"}); secret.is_object()) {
      json copy = secret;
      copy["secretName"] = Str(secret, {"name"});
      if (!copy.contains("defaultMode") && !default_mode.is_null())
        copy["defaultMode"] = default_mode;
      auto object = objects_.Secret(ns, Str(secret, {"name"}));
      if (!object.ok() && object.status().code() != StatusCode::kNotFound) return object.status();
      auto part = SecretPayload(copy, object.ok() ? object->get() : nullptr);
      if (!part.ok()) return part.status();
      merge(std::move(*part));
    } else if (const json& downward = At(source, {"downwardAPI"}); downward.is_object()) {
      auto part = DownwardApiPayload(downward, pod, env, ModeOf(default_mode, kDefaultFileMode));
      if (!part.ok()) return part.status();
      merge(std::move(*part));
    } else if (const json& token = At(source, {"serviceAccountToken"}); token.is_object()) {
      std::string path = Str(token, {"path"});
      if (tokens_ == nullptr) {
        // Without a token source the rest of the volume is still provided.
        if (warnings != nullptr) {
          warnings->push_back(fmt::format(
              "projected volume \"{}\": serviceAccountToken source (path \"{}\") skipped: no "
              "token source on this node",
              name, path));
        }
        continue;
      }
      if (!ValidVolumePath(path)) {
        return InvalidArgument(fmt::format("serviceAccountToken path {:?} is invalid", path));
      }
      auto issued =
          tokens_->Token(pod, Str(token, {"audience"}), Int(token, {"expirationSeconds"}, 3600));
      if (!issued.ok()) return issued.status();
      out[path] = VolumeFile{std::move(*issued), ModeOf(default_mode, kDefaultFileMode)};
    } else {
      std::string kind = "unknown";
      for (const auto& [key, value] : source.items()) kind = key;
      if (warnings != nullptr) {
        warnings->push_back(fmt::format(
            "projected volume \"{}\": {} source skipped: not supported by orch yet", name, kind));
      }
    }
  }
  return out;
}

Result<VolumeInfo> VolumeManager::SetUpOne(const json& pod, const json& volume,
                                           const EnvContext& env,
                                           std::vector<std::string>* warnings) {
  const std::string name = Str(volume, {"name"});
  const std::string ns = Str(pod, {"metadata", "namespace"});
  if (const json& empty_dir = At(volume, {"emptyDir"}); empty_dir.is_object()) {
    std::string dir = VolumeDir(paths_, pod, "empty-dir", name);
    if (Status s = MakeDirectories(dir, 0777); !s.ok()) return s;
    if (Str(empty_dir, {"medium"}) == "Memory") {
      std::string size;
      if (const json& limit = At(empty_dir, {"sizeLimit"}); !limit.is_null()) {
        auto q = Quantity::FromJson(limit);
        if (q.ok() && q->Value() > 0) size = std::to_string(q->Value());
      }
      if (Status s = EnsureTmpfs(dir, size); !s.ok()) return s;
    }
    ::chmod(dir.c_str(), 0777);  // any user of the pod may write
    return VolumeInfo{dir, false};
  }
  if (const json& host = At(volume, {"hostPath"}); host.is_object()) {
    std::string path = Str(host, {"path"});
    if (path.empty() || path[0] != '/') {
      return InvalidArgument(fmt::format("hostPath {:?} is not absolute", path));
    }
    if (Status s = CheckHostPath(path, Str(host, {"type"})); !s.ok()) return s;
    return VolumeInfo{path, false};
  }
  if (const json& source = At(volume, {"configMap"}); source.is_object()) {
    auto object = objects_.ConfigMap(ns, Str(source, {"name"}));
    if (!object.ok() && object.status().code() != StatusCode::kNotFound) return object.status();
    auto payload = ConfigMapPayload(source, object.ok() ? object->get() : nullptr);
    if (!payload.ok()) return payload.status();
    std::string dir = VolumeDir(paths_, pod, "configmap", name);
    auto written = WriteAtomically(dir, *payload);
    if (!written.ok()) return written.status();
    return VolumeInfo{dir, true};
  }
  if (const json& source = At(volume, {"secret"}); source.is_object()) {
    auto object = objects_.Secret(ns, Str(source, {"secretName"}));
    if (!object.ok() && object.status().code() != StatusCode::kNotFound) return object.status();
    auto payload = SecretPayload(source, object.ok() ? object->get() : nullptr);
    if (!payload.ok()) return payload.status();
    std::string dir = VolumeDir(paths_, pod, "secret", name);
    if (Status s = MakeDirectories(dir, 0755); !s.ok()) return s;
    // Secrets live in memory only, as upstream keeps them.
    if (Status s = EnsureTmpfs(dir, ""); !s.ok()) return s;
    auto written = WriteAtomically(dir, *payload);
    if (!written.ok()) return written.status();
    return VolumeInfo{dir, true};
  }
  if (const json& source = At(volume, {"downwardAPI"}); source.is_object()) {
    auto payload = DownwardApiPayload(source, pod, env, kDefaultFileMode);
    if (!payload.ok()) return payload.status();
    // Memory-backed, as upstream wraps it in a tmpfs emptyDir.
    std::string dir = VolumeDir(paths_, pod, "downward-api", name);
    if (Status s = MakeDirectories(dir, 0755); !s.ok()) return s;
    if (Status s = EnsureTmpfs(dir, ""); !s.ok()) return s;
    auto written = WriteAtomically(dir, *payload);
    if (!written.ok()) return written.status();
    return VolumeInfo{dir, true};
  }
  if (const json& projected = At(volume, {"projected"}); projected.is_object()) {
    auto payload = ProjectedPayload(pod, name, projected, env, warnings);
    if (!payload.ok()) return payload.status();
    std::string dir = VolumeDir(paths_, pod, "projected", name);
    if (Status s = MakeDirectories(dir, 0755); !s.ok()) return s;
    if (Status s = EnsureTmpfs(dir, ""); !s.ok()) return s;
    auto written = WriteAtomically(dir, *payload);
    if (!written.ok()) return written.status();
    return VolumeInfo{dir, true};
  }
  if (const json& claim = At(volume, {"persistentVolumeClaim"}); claim.is_object()) {
    auto path = ClaimPath(ns, Str(claim, {"claimName"}));
    if (!path.ok()) return path.status();
    return VolumeInfo{std::move(*path), Bool(claim, {"readOnly"})};
  }
  std::string kind = "unknown";
  for (const auto& [key, value] : volume.items()) {
    if (key != "name") kind = key;
  }
  return InvalidArgument(fmt::format("volume type {} is not supported by orch yet", kind));
}

Result<std::string> VolumeManager::ClaimPath(const std::string& ns, const std::string& name) {
  // A claim that is missing or not bound yet is not an error of the pod: it waits (the sync is
  // retried, and the claim's changes wake it), as the kubelet waits for its volumes.
  auto claim = objects_.PersistentVolumeClaim(ns, name);
  if (!claim.ok()) {
    if (claim.status().code() != StatusCode::kNotFound) return claim.status();
    return Unavailable(fmt::format("persistentvolumeclaim \"{}\" not found", name));
  }
  const json& pvc = **claim;
  if (!Str(pvc, {"metadata", "deletionTimestamp"}).empty()) {
    return Unavailable(
        fmt::format("persistentvolumeclaim \"{}\" is being deleted and cannot be used", name));
  }
  std::string phase = Str(pvc, {"status", "phase"}, "Pending");
  std::string volume_name = Str(pvc, {"spec", "volumeName"});
  if (phase != "Bound" || volume_name.empty()) {
    return Unavailable(fmt::format(
        "unbound PersistentVolumeClaim: persistentvolumeclaim \"{}\" is {} (volume {:?}); "
        "waiting for it to be bound",
        name, phase, volume_name));
  }
  auto pv = objects_.PersistentVolume(volume_name);
  if (!pv.ok()) {
    if (pv.status().code() != StatusCode::kNotFound) return pv.status();
    return Unavailable(
        fmt::format("persistentvolume \"{}\" of claim \"{}\" not found", volume_name, name));
  }
  const json& volume = **pv;
  const json& ref = At(volume, {"spec", "claimRef"});
  if (ref.is_object() &&
      (Str(ref, {"name"}) != name || Str(ref, {"namespace"}) != ns ||
       (!Str(ref, {"uid"}).empty() && Str(ref, {"uid"}) != Str(pvc, {"metadata", "uid"})))) {
    return Unavailable(fmt::format("persistentvolume \"{}\" is bound to another claim ({}/{})",
                                   volume_name, Str(ref, {"namespace"}), Str(ref, {"name"})));
  }
  // Volumes the local-path provisioner made are created on first use, writable by any user of
  // the pod, as k3s's helper does with `mkdir -m 0777`.
  bool local_path =
      Str(volume, {"metadata", "annotations", kProvisionedByAnnotation}) == kLocalPathProvisioner;
  std::string path;
  std::string type;
  if (const json& host = At(volume, {"spec", "hostPath"}); host.is_object()) {
    path = Str(host, {"path"});
    type = Str(host, {"type"});
  } else if (const json& local = At(volume, {"spec", "local"}); local.is_object()) {
    path = Str(local, {"path"});
    type = local_path ? "DirectoryOrCreate" : "Directory";  // a local volume must exist
  } else {
    std::string kind = "unknown";
    if (const json& spec = At(volume, {"spec"}); spec.is_object()) {
      for (const auto& [key, value] : spec.items()) {
        if (value.is_object() && key != "claimRef" && key != "capacity" && key != "nodeAffinity") {
          kind = key;
        }
      }
    }
    return InvalidArgument(fmt::format(
        "persistentvolume \"{}\": volume type {} is not supported by orch yet", volume_name, kind));
  }
  if (path.empty() || path[0] != '/') {
    return InvalidArgument(
        fmt::format("persistentvolume \"{}\": path {:?} is not absolute", volume_name, path));
  }
  struct stat st {};
  bool existed = ::stat(path.c_str(), &st) == 0;
  if (Status s = CheckHostPath(path, type); !s.ok()) return s;
  if (!existed && local_path) ::chmod(path.c_str(), 0777);
  return path;
}

Result<VolumeMap> VolumeManager::SetUp(const json& pod, const EnvContext& env,
                                       std::vector<std::string>* warnings) {
  VolumeMap out;
  for (const json& volume : Array(pod, {"spec", "volumes"})) {
    std::string name = Str(volume, {"name"});
    auto info = SetUpOne(pod, volume, env, warnings);
    if (!info.ok()) {
      return Status(info.status().code(),
                    fmt::format("MountVolume.SetUp failed for volume \"{}\" : {}", name,
                                info.status().message()));
    }
    out[name] = std::move(*info);
  }
  return out;
}

Result<std::vector<cri::Mount>> VolumeManager::MountsFor(const json& container,
                                                         const VolumeMap& volumes,
                                                         const EnvList& env) {
  std::vector<cri::Mount> out;
  for (const json& vm : Array(container, {"volumeMounts"})) {
    std::string name = Str(vm, {"name"});
    auto it = volumes.find(name);
    if (it == volumes.end()) {
      return InvalidArgument(fmt::format("cannot find volume \"{}\" to mount into container \"{}\"",
                                         name, Str(container, {"name"})));
    }
    std::string host = it->second.host_path;
    std::string sub = Str(vm, {"subPath"});
    if (sub.empty()) {
      std::string expr = Str(vm, {"subPathExpr"});
      if (!expr.empty()) {
        std::map<std::string, std::string> vars(env.begin(), env.end());
        sub = ExpandVars(expr, [&](const std::string& var, std::string* value) {
          auto v = vars.find(var);
          if (v == vars.end()) return false;
          *value = v->second;
          return true;
        });
      }
    }
    if (!sub.empty()) {
      if (!ValidVolumePath(sub)) {
        return InvalidArgument(fmt::format("invalid subPath {:?} of volume \"{}\"", sub, name));
      }
      host += "/" + sub;
      struct stat st {};
      if (::lstat(host.c_str(), &st) != 0) {
        if (Status s = MakeDirectories(host, 0755); !s.ok()) return s;
      }
    }
    cri::Mount m;
    m.host_path = host;
    m.container_path = Str(vm, {"mountPath"});
    m.readonly = Bool(vm, {"readOnly"}) || it->second.read_only;
    std::string propagation = Str(vm, {"mountPropagation"});
    if (propagation == "HostToContainer") m.propagation = cri::MountPropagation::kHostToContainer;
    if (propagation == "Bidirectional") m.propagation = cri::MountPropagation::kBidirectional;
    out.push_back(std::move(m));
  }
  return out;
}

Status VolumeManager::TearDown(const std::string& uid) {
  if (tokens_ != nullptr) tokens_->Forget(uid);
  std::string dir = paths_.PodDir(uid);
  std::error_code ec;
  if (uid.empty() || !fs::exists(dir, ec)) return Status::Ok();
  for (const auto& mount_point : MountPointsUnder(dir)) {
    if (::umount2(mount_point.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      return Unavailable(Errno("cannot unmount " + mount_point));
    }
  }
  // Never delete through a mount: whatever is still mounted keeps the folder.
  if (auto left = MountPointsUnder(dir); !left.empty()) {
    return Unavailable(fmt::format("{} is still mounted", left.front()));
  }
  fs::remove_all(dir, ec);
  if (ec) return Unavailable(fmt::format("cannot remove {}: {}", dir, ec.message()));
  return Status::Ok();
}

}  // namespace orch::agent
