// The labels and annotations the agent puts on CRI sandboxes and containers: the kubelet's
// io.kubernetes.* keys (so tools like crictl show pods as they expect) plus orch's own, which
// carry what a restarted agent needs to adopt its containers.
#pragma once

#include <string>

namespace orch::agent {

// Labels (filterable in ListPodSandboxes / ListContainers).
inline constexpr const char* kPodNameLabel = "io.kubernetes.pod.name";
inline constexpr const char* kPodNamespaceLabel = "io.kubernetes.pod.namespace";
inline constexpr const char* kPodUidLabel = "io.kubernetes.pod.uid";
inline constexpr const char* kContainerNameLabel = "io.kubernetes.container.name";
// Which node agent owns the sandbox or container: with --container-runtime-endpoint the
// runtime may be shared, and an agent must never remove what is not its own.
inline constexpr const char* kNodeLabel = "orch.io/node";

// Annotations of containers.
inline constexpr const char* kRestartCountAnnotation = "io.kubernetes.container.restartCount";
inline constexpr const char* kTerminationMessagePathAnnotation =
    "io.kubernetes.container.terminationMessagePath";
inline constexpr const char* kTerminationMessagePolicyAnnotation =
    "io.kubernetes.container.terminationMessagePolicy";
inline constexpr const char* kGracePeriodAnnotation = "io.kubernetes.pod.terminationGracePeriod";
// A hash of the container's spec: a changed spec (a new image) restarts the container.
inline constexpr const char* kSpecHashAnnotation = "orch.io/container-spec-hash";
// The host file mounted at terminationMessagePath, read when the container exits.
inline constexpr const char* kTerminationMessageFileAnnotation = "orch.io/termination-message-file";
// The image as the pod spec names it (the container is created from the resolved image ID).
inline constexpr const char* kSpecImageAnnotation = "orch.io/image";

}  // namespace orch::agent
