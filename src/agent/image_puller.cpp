// Image pulls with policies, pull secrets and back-off (image_puller.h).
#include "image_puller.h"

#include <fmt/format.h>

#include "orch/base64.h"
#include "orch/log.h"

namespace orch::agent {
namespace {

constexpr std::string_view kLog = "agent";

// The default policy the API server gives (Always for :latest or no tag), in case it is unset.
std::string DefaultPolicy(const std::string& image) {
  if (image.find('@') != std::string::npos) return "IfNotPresent";
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  return !tagged || image.substr(colon + 1) == "latest" ? "Always" : "IfNotPresent";
}

// "https://index.docker.io/v1/" -> "index.docker.io"; Docker Hub's aliases -> "docker.io".
std::string NormalizeRegistry(std::string key) {
  if (auto scheme = key.find("://"); scheme != std::string::npos) key = key.substr(scheme + 3);
  if (auto slash = key.find('/'); slash != std::string::npos) key.resize(slash);
  if (key == "index.docker.io" || key == "registry-1.docker.io" ||
      key == "registry.hub.docker.com") {
    return "docker.io";
  }
  return key;
}

}  // namespace

std::string ImageRegistry(const std::string& image) {
  auto slash = image.find('/');
  if (slash == std::string::npos) return "docker.io";
  std::string first = image.substr(0, slash);
  if (first.find('.') == std::string::npos && first.find(':') == std::string::npos &&
      first != "localhost") {
    return "docker.io";
  }
  return NormalizeRegistry(first);
}

std::optional<cri::AuthConfig> AuthForImage(const std::string& image, const json& docker_config) {
  const json& auths = docker_config.contains("auths") ? docker_config["auths"] : docker_config;
  if (!auths.is_object()) return std::nullopt;
  std::string registry = ImageRegistry(image);
  for (const auto& [key, entry] : auths.items()) {
    if (!entry.is_object() || NormalizeRegistry(key) != registry) continue;
    cri::AuthConfig auth;
    auth.username = Str(entry, {"username"});
    auth.password = Str(entry, {"password"});
    auth.auth = Str(entry, {"auth"});
    auth.identity_token = Str(entry, {"identitytoken"});
    auth.registry_token = Str(entry, {"registrytoken"});
    auth.server_address = key;
    if (auth.username.empty() && !auth.auth.empty()) {
      if (auto decoded = Base64Decode(auth.auth)) {
        auto colon = decoded->find(':');
        if (colon != std::string::npos) {
          auth.username = decoded->substr(0, colon);
          auth.password = decoded->substr(colon + 1);
        }
      }
    }
    return auth;
  }
  return std::nullopt;
}

std::string GoDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms < 1000) return fmt::format("{}ms", ms);
  int64_t minutes = ms / 60000;
  int64_t rest = ms % 60000;
  std::string seconds = fmt::format("{}.{:03}", rest / 1000, rest % 1000);
  while (seconds.back() == '0') seconds.pop_back();
  if (seconds.back() == '.') seconds.pop_back();
  int64_t hours = minutes / 60;
  minutes %= 60;
  std::string out;
  if (hours > 0) out += fmt::format("{}h", hours);
  if (hours > 0 || minutes > 0) out += fmt::format("{}m", minutes);
  return out + seconds + "s";
}

std::optional<cri::AuthConfig> ImagePuller::PullSecretAuth(const json& pod,
                                                           const std::string& image) {
  std::string ns = Str(pod, {"metadata", "namespace"});
  for (const json& ref : Array(pod, {"spec", "imagePullSecrets"})) {
    std::string name = Str(ref, {"name"});
    if (name.empty()) continue;
    auto secret = objects_.Secret(ns, name);
    if (!secret.ok()) {
      log::Warn(kLog, "pod {}/{}: image pull secret {}: {}", ns, Str(pod, {"metadata", "name"}),
                name, secret.status().message());
      continue;
    }
    for (const char* key : {".dockerconfigjson", ".dockercfg"}) {
      std::string encoded = Str(**secret, {"data", key});
      if (encoded.empty()) continue;
      auto decoded = Base64Decode(encoded);
      if (!decoded) continue;
      json config = json::parse(*decoded, nullptr, false);
      if (config.is_discarded()) continue;
      if (auto auth = AuthForImage(image, config)) {
        // containerd drops credentials whose server address is not a URL of the very host it
        // contacts ("127.0.0.1:5000" does not even parse as one, and a mirror is another host):
        // the secret was picked for this image's registry, let it apply to this pull.
        auth->server_address.clear();
        return auth;
      }
    }
  }
  return std::nullopt;
}

ImageOutcome ImagePuller::Ensure(const json& pod, const json& container, const json& pod_ref,
                                 const cri::PodSandboxConfig& sandbox) {
  const std::string image = Str(container, {"image"});
  std::string policy = Str(container, {"imagePullPolicy"});
  if (policy.empty()) policy = DefaultPolicy(image);
  ImageOutcome out;

  auto present = runtime_.GetImageStatus(image);
  if (!present.ok() && present.status().code() != StatusCode::kNotFound) {
    out.reason = "ErrImagePull";
    out.message = present.status().message();
    return out;
  }
  if (present.ok() && policy != "Always") {
    events_.Record(pod_ref, "Normal", "Pulled",
                   fmt::format("Container image \"{}\" already present on machine", image));
    out.image_ref = present->id;
    return out;
  }
  if (policy == "Never") {
    out.reason = "ErrImageNeverPull";
    out.message =
        fmt::format("Container image \"{}\" is not present with pull policy of Never", image);
    events_.Record(pod_ref, "Warning", "ErrImageNeverPull", out.message);
    return out;
  }

  const std::string key = Str(pod, {"metadata", "uid"}) + "/" + image;
  if (auto wait = backoff_.Remaining(key, Backoff::Clock::now()); wait.count() > 0) {
    out.reason = "ImagePullBackOff";
    out.message = fmt::format("Back-off pulling image \"{}\"", image);
    out.retry_after = wait;
    events_.Record(pod_ref, "Normal", "BackOff", out.message);
    return out;
  }
  events_.Record(pod_ref, "Normal", "Pulling", fmt::format("Pulling image \"{}\"", image));
  auto started = std::chrono::steady_clock::now();
  auto pulled = runtime_.PullImage(image, PullSecretAuth(pod, image), &sandbox);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  if (!pulled.ok()) {
    backoff_.Next(key, Backoff::Clock::now());
    out.reason = "ErrImagePull";
    out.message = pulled.status().message();
    out.retry_after = backoff_.Remaining(key, Backoff::Clock::now());
    events_.Record(pod_ref, "Warning", "Failed",
                   fmt::format("Failed to pull image \"{}\": {}", image, out.message));
    events_.Record(pod_ref, "Warning", "Failed", "Error: ErrImagePull");
    return out;
  }
  backoff_.Reset(key);
  std::string size;
  if (auto status = runtime_.GetImageStatus(*pulled); status.ok() && status->size > 0) {
    size = fmt::format(" Image size: {} bytes.", status->size);
  }
  events_.Record(pod_ref, "Normal", "Pulled",
                 fmt::format("Successfully pulled image \"{}\" in {} ({} including waiting).{}",
                             image, GoDuration(took), GoDuration(took), size));
  out.image_ref = *pulled;
  return out;
}

}  // namespace orch::agent
