// Images for containers, as the kubelet gets them: imagePullPolicy (Always, IfNotPresent,
// Never), credentials from the pod's imagePullSecrets, back-off between failed pulls
// (ErrImagePull, then ImagePullBackOff), and the Pulling/Pulled/Failed/BackOff events.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "backoff.h"
#include "json_util.h"
#include "object_source.h"
#include "orch/events.h"
#include "orch/runtime.h"

namespace orch::agent {

// The registry host an image reference pulls from ("docker.io" for short names).
std::string ImageRegistry(const std::string& image);

// The credentials for `image` in a dockerconfigjson (`{"auths": {...}}`) or legacy dockercfg
// document, matched by registry host; nullopt when none applies.
std::optional<cri::AuthConfig> AuthForImage(const std::string& image, const json& docker_config);

// A Go time.Duration string as upstream's events print them ("523ms", "1.234s", "1m2.5s").
std::string GoDuration(std::chrono::milliseconds d);

struct ImageOutcome {
  std::string image_ref;  // set on success: the image ID to create the container from
  std::string reason;     // on failure: ErrImagePull, ImagePullBackOff, ErrImageNeverPull
  std::string message;
  // On ImagePullBackOff: how long until the next pull may be tried.
  std::chrono::milliseconds retry_after{0};
  bool ok() const { return !image_ref.empty(); }
};

// Thread-safe.
class ImagePuller {
 public:
  ImagePuller(cri::Runtime& runtime, EventRecorder& events, ObjectSource& objects)
      : runtime_(runtime), events_(events), objects_(objects) {}

  // Makes the image of `container` present per its pull policy. `pod_ref` is the events'
  // involved object.
  ImageOutcome Ensure(const json& pod, const json& container, const json& pod_ref,
                      const cri::PodSandboxConfig& sandbox);
  // Forgets the pod's pull back-offs.
  void Forget(const std::string& pod_uid) { backoff_.ResetPrefix(pod_uid + "/"); }

 private:
  std::optional<cri::AuthConfig> PullSecretAuth(const json& pod, const std::string& image);

  cri::Runtime& runtime_;
  EventRecorder& events_;
  ObjectSource& objects_;
  Backoff backoff_;
};

}  // namespace orch::agent
