// A container's environment as the kubelet builds it: service link variables, envFrom, env
// (value with $(VAR) expansion, fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef), and
// the $(VAR) expansion of command and args. Pure functions over the pod and an ObjectSource.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "json_util.h"
#include "object_source.h"
#include "orch/status.h"

namespace orch::agent {

using EnvList = std::vector<std::pair<std::string, std::string>>;

// Kubernetes' $(VAR) syntax: $(NAME) becomes lookup(NAME) when it finds one (else stays
// as written), $$ is a literal $, any other $ is kept. `lookup` returns false for unknown names.
std::string ExpandVars(std::string_view input,
                       const std::function<bool(const std::string&, std::string*)>& lookup);

// {NAME}_SERVICE_HOST, {NAME}_SERVICE_PORT[_{PORT}], {NAME}_PORT[...] docker-link variables of
// one Service (skipped for headless ones: no variables).
void AppendServiceEnv(const json& service, std::map<std::string, std::string>& out);

// What the environment depends on besides the pod and the container.
struct EnvContext {
  std::string node_name;
  std::string pod_ip;
  std::vector<std::string> pod_ips;
  std::string host_ip;
  // The node's allocatable cpu (millicores) and memory (bytes): what resourceFieldRef reports for
  // limits a container does not set.
  int64_t node_cpu_milli = 0;
  int64_t node_memory_bytes = 0;
  int64_t node_ephemeral_bytes = 0;
};

struct EnvResult {
  EnvList env;                        // in declaration order, service variables last
  std::vector<std::string> warnings;  // for InvalidEnvironmentVariableNames events
};

// The environment of `container` in `pod`. Errors are what the kubelet reports as
// CreateContainerConfigError: `configmap "x" not found`, `couldn't find key k in ConfigMap
// ns/x`, ... (kNotFound or kInvalidArgument; kUnavailable when a source cannot be read now).
Result<EnvResult> BuildEnvironment(const json& pod, const json& container, const EnvContext& ctx,
                                   ObjectSource& objects);

// The container's command and args with $(VAR) references to `env` expanded.
std::pair<std::vector<std::string>, std::vector<std::string>> ExpandCommandAndArgs(
    const json& container, const EnvList& env);

// The value of a fieldRef's `path` (metadata.name, metadata.namespace, metadata.uid,
// metadata.labels['k'], metadata.annotations['k'], spec.nodeName, spec.serviceAccountName,
// status.podIP(s), status.hostIP(s)); kInvalidArgument for any other path.
Result<std::string> FieldRefValue(const json& pod, const std::string& path, const EnvContext& ctx);

// The value a resourceFieldRef names ("limits.cpu", "requests.memory", ...) with its divisor,
// as the kubelet renders it (rounded up); kInvalidArgument for an unknown resource.
Result<std::string> ResourceFieldValue(const json& pod, const json& container, const json& ref,
                                       const EnvContext& ctx);

}  // namespace orch::agent
