// Implementation of tables.h. Column definitions and cell logic follow upstream's printers
// (k8s.io/kubernetes/pkg/printers/internalversion/printers.go, 1.32), the default and CRD table
// convertors (k8s.io/apiserver/pkg/registry/rest/table.go,
// k8s.io/apiextensions-apiserver/pkg/registry/customresource/tableconvertor) and
// k8s.io/apimachinery/pkg/util/duration. Column descriptions are upstream's API documentation.
#include "tables.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "orch/json_path.h"
#include "orch/quantity.h"
#include "orch/timestamps.h"
#include "selector.h"

namespace orch::api {

struct JsonPath::Step {
  enum class Kind { kField, kIndex, kWildcard, kFilter };
  Kind kind = Kind::kField;
  std::string field;
  int64_t index = 0;
  // Filters: the path relative to the element (@), the operator ("" tests presence) and the
  // literal it is compared with.
  std::vector<std::shared_ptr<const Step>> lhs;
  std::string op;
  json literal;
};

namespace {

using Clock = std::chrono::system_clock;
using Cells = json;  // an array

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// ---------------------------------------------------------------------------------------------
// Reading objects. Absent fields read as null, "", 0 or false, as upstream's typed structs do.

const json& Null() {
  static const json kNull;
  return kNull;
}

using json_path::Field;

std::string Str(const json& v) {
  return v.is_string() ? v.get<std::string>() : "";
}

int64_t Int(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) return static_cast<int64_t>(v.get<double>());
  return 0;
}

// An optional integer field (a pointer upstream): nullopt when absent.
std::optional<int64_t> OptInt(const json& v) {
  if (v.is_number()) return Int(v);
  return std::nullopt;
}

bool Bool(const json& v) {
  return v.is_boolean() && v.get<bool>();
}

size_t Size(const json& v) {
  return (v.is_array() || v.is_object()) ? v.size() : 0;
}

const json& Items(const json& v) {
  static const json kEmpty = json::array();
  return v.is_array() ? v : kEmpty;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A resource.Quantity field printed as upstream prints it (a missing one is the zero "0").
std::string QuantityString(const json& v) {
  Result<Quantity> q = Quantity::FromJson(v);
  return q.ok() ? q->String() : Str(v);
}

// An IntOrString printed with its String(): "3", "50%".
std::string IntOrString(const json& v) {
  if (v.is_number()) return std::to_string(Int(v));
  return Str(v);
}

// ---------------------------------------------------------------------------------------------
// Time.

int64_t Saturate(__int128 v) {
  return static_cast<int64_t>(std::clamp<__int128>(v, std::numeric_limits<int64_t>::min(),
                                                   std::numeric_limits<int64_t>::max()));
}

int64_t NowNanos(Clock::time_point now) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
}

// The nanos of a timestamp field; nullopt for absent, malformed or zero (upstream's IsZero).
std::optional<int64_t> Timestamp(const json& v) {
  if (!v.is_string()) return std::nullopt;
  std::optional<int64_t> t = ParseTimestampNanos(v.get_ref<const std::string&>());
  if (!t || *t == std::numeric_limits<int64_t>::min()) return std::nullopt;
  return t;
}

std::string HumanSince(int64_t then, Clock::time_point now) {
  return HumanDuration(
      std::chrono::nanoseconds(Saturate(static_cast<__int128>(NowNanos(now)) - then)));
}

// translateTimestampSince: the age of a timestamp field, "<unknown>" when unset.
std::string Since(const json& v, Clock::time_point now) {
  std::optional<int64_t> t = Timestamp(v);
  return t ? HumanSince(*t, now) : "<unknown>";
}

std::string Age(const json& obj, Clock::time_point now) {
  return Since(Field(obj, {"metadata", "creationTimestamp"}), now);
}

// Go's fmt %v of a float64 (strconv 'g' with the shortest digits; exponent form below 1e-4
// and from 1e21 on).
std::string GoFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  const bool neg = !mant.empty() && mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits += c;
  }
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 21) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exp < 0 ? "e-" : "e+";
    const int a = exp < 0 ? -exp : exp;
    if (a < 10) out += "0";
    return out + std::to_string(a);
  }
  if (exp < 0) return out + "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  const size_t int_len = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_len) return out + digits + std::string(int_len - digits.size(), '0');
  return out + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

// ---------------------------------------------------------------------------------------------
// Column definitions.

struct Column {
  std::string name;
  std::string type;
  std::string format;
  std::string description;
  int priority = 0;
};

// The API documentation upstream's printers take column descriptions from (SwaggerDoc() of
// k8s.io/api 0.32 types), keyed "<package>.<Type>.<field>".
std::string_view Doc(std::string_view key) {
  static const auto* const kDocs = new std::map<std::string_view, std::string_view>{
      {"meta.ObjectMeta.name",
       "Name must be unique within a namespace. Is required when creating resources, although some "
       "resources may allow a client to request the generation of an appropriate name "
       "automatically. Name is primarily intended for creation idempotence and configuration "
       "definition. Cannot be updated. More info: "
       "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"},
      {"meta.ObjectMeta.creationTimestamp",
       "CreationTimestamp is a timestamp representing the server time when this object was "
       "created. It is not guaranteed to be set in happens-before order across separate "
       "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
       "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
       "https://git.k8s.io/community/contributors/devel/sig-architecture/"
       "api-conventions.md#metadata"},
      {"core.PodStatus.podIP",
       "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
       "allocated."},
      {"core.PodSpec.nodeName",
       "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate "
       "for scheduling by the scheduler defined in schedulerName. Once this field is set, the "
       "kubelet for this node becomes responsible for the lifecycle of this pod. This field should "
       "not be used to express a desire for the pod to be scheduled on a specific node. "
       "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename"},
      {"core.PodStatus.nominatedNodeName",
       "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot "
       "be scheduled right away as preemption victims receive their graceful termination periods. "
       "This field does not guarantee that the pod will be scheduled on this node. Scheduler may "
       "decide to place the pod elsewhere if other nodes become available sooner. Scheduler may "
       "also decide to give the resources on this node to a higher priority pod that is created "
       "after preemption. As a result, this field may be different than PodSpec.nodeName when the "
       "pod is scheduled."},
      {"core.PodSpec.readinessGates",
       "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when "
       "all its containers are ready AND all conditions specified in the readiness gates have "
       "status equal to \"True\" More info: "
       "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates"},
      {"core.ReplicationControllerSpec.replicas",
       "Replicas is the number of desired replicas. This is a pointer to distinguish between "
       "explicit zero and unspecified. Defaults to 1. More info: "
       "https://kubernetes.io/docs/concepts/workloads/controllers/"
       "replicationcontroller#what-is-a-replicationcontroller"},
      {"core.ReplicationControllerStatus.replicas",
       "Replicas is the most recently observed number of replicas. More info: "
       "https://kubernetes.io/docs/concepts/workloads/controllers/"
       "replicationcontroller#what-is-a-replicationcontroller"},
      {"core.ReplicationControllerStatus.readyReplicas",
       "The number of ready replicas for this replication controller."},
      {"core.ReplicationControllerSpec.selector",
       "Selector is a label query over pods that should match the Replicas count. If Selector is "
       "empty, it is defaulted to the labels present on the Pod template. Label keys and values "
       "that must match in order to be controlled by this replication controller, if empty "
       "defaulted to labels on Pod template. More info: "
       "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"},
      {"core.PodSpec.nodeSelector",
       "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which "
       "must match a node's labels for the pod to be scheduled on that node. More info: "
       "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"},
      {"core.ServiceSpec.type",
       "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are "
       "ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a "
       "cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by "
       "the selector or if that is not specified, by manual construction of an Endpoints object or "
       "EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the "
       "endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" "
       "builds on ClusterIP and allocates a port on every node which routes to the same endpoints "
       "as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external "
       "load-balancer (if supported in the current cloud) which routes to the same endpoints as "
       "the clusterIP. \"ExternalName\" aliases this service to the specified externalName. "
       "Several other fields do not apply to ExternalName services. More info: "
       "https://kubernetes.io/docs/concepts/services-networking/service/"
       "#publishing-services-service-types"},
      {"core.ServiceSpec.clusterIP",
       "clusterIP is the IP address of the service and is usually assigned randomly. If an address "
       "is specified manually, is in-range (as per system configuration), and is not in use, it "
       "will be allocated to the service; otherwise creation of the service will fail. This field "
       "may not be changed through updates unless the type field is also being changed to "
       "ExternalName (which requires this field to be blank) or the type field is being changed "
       "from ExternalName (in which case this field may optionally be specified, as describe "
       "above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting "
       "this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct "
       "endpoint connections are preferred and proxying is not required.  Only applies to types "
       "ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service "
       "of type ExternalName, creation will fail. This field will be wiped when updating a Service "
       "to type ExternalName. More info: "
       "https://kubernetes.io/docs/concepts/services-networking/service/"
       "#virtual-ips-and-service-proxies"},
      {"core.ServiceSpec.externalIPs",
       "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
       "traffic for this service.  These IPs are not managed by Kubernetes.  The user is "
       "responsible for ensuring that traffic arrives at a node with this IP.  A common example is "
       "external load-balancers that are not part of the Kubernetes system."},
      {"core.ServiceSpec.ports",
       "The list of ports that are exposed by this service. More info: "
       "https://kubernetes.io/docs/concepts/services-networking/service/"
       "#virtual-ips-and-service-proxies"},
      {"core.ServiceSpec.selector",
       "Route service traffic to pods with label keys and values matching this selector. If empty "
       "or not present, the service is assumed to have an external process managing its endpoints, "
       "which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and "
       "LoadBalancer. Ignored if type is ExternalName. More info: "
       "https://kubernetes.io/docs/concepts/services-networking/service/"},
      {"core.Endpoints.subsets",
       "The set of all endpoints is the union of all subsets. Addresses are placed into subsets "
       "according to the IPs they share. A single address with multiple ports, some of which are "
       "ready and some of which are not (because they come from different containers) will result "
       "in the address being displayed in different subsets for the different ports. No address "
       "will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses "
       "and ports that comprise a service."},
      {"core.NodeSystemInfo.kubeletVersion", "Kubelet Version reported by the node."},
      {"core.NodeSystemInfo.osImage",
       "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."},
      {"core.NodeSystemInfo.kernelVersion",
       "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."},
      {"core.NodeSystemInfo.containerRuntimeVersion",
       "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
       "containerd://1.4.2)."},
      {"core.NodeStatus.addresses",
       "List of addresses reachable to the node. Queried from cloud provider, if available. More "
       "info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is "
       "declared as mergeable, but the merge key is not sufficiently unique, which can cause data "
       "corruption when it is merged. Callers should instead use a full-replacement patch. See "
       "https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change "
       "during the lifetime of a Node. However, there are some exceptions where this may not be "
       "possible, such as Pods that inherit a Node's address in its own status or consumers of the "
       "downward API (status.hostIP)."},
      {"core.Event.lastTimestamp",
       "The time at which the most recent occurrence of this event was recorded."},
      {"core.Event.type",
       "Type of this event (Normal, Warning), new types could be added in the future"},
      {"core.Event.reason",
       "This should be a short, machine understandable string that gives the reason for the "
       "transition into the object's current status."},
      {"core.Event.involvedObject", "The object that this event is about."},
      {"core.ObjectReference.fieldPath",
       "If referring to a piece of an object instead of an entire object, this string should "
       "contain a valid JSON/Go field access statement, such as "
       "desiredState.manifest.containers[2]. For example, if the object reference is to a "
       "container within a pod, this would take on a value like: \"spec.containers{name}\" (where "
       "\"name\" refers to the name of the container that triggered the event) or if no container "
       "name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax "
       "is chosen only to have some well-defined way of referencing a part of an object."},
      {"core.Event.source",
       "The component reporting this event. Should be a short machine understandable string."},
      {"core.Event.message", "A human-readable description of the status of this operation."},
      {"core.Event.firstTimestamp",
       "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"},
      {"core.Event.count", "The number of times this event has occurred."},
      {"core.Secret.type",
       "Used to facilitate programmatic handling of secret data. More info: "
       "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"},
      {"core.Secret.data",
       "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' "
       "or '.'. The serialized form of the secret data is a base64 encoded string, representing "
       "the arbitrary (possibly non-string) data value here. Described in "
       "https://tools.ietf.org/html/rfc4648#section-4"},
      {"core.ServiceAccount.secrets",
       "Secrets is a list of the secrets in the same namespace that pods running using this "
       "ServiceAccount are allowed to use. Pods are only limited to this list if this service "
       "account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The "
       "\"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer "
       "separate namespaces to isolate access to mounted secrets. This field should not be used to "
       "find auto-generated service account token secrets for use outside of pods. Instead, tokens "
       "can be requested directly using the TokenRequest API, or service account token secrets can "
       "be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret"},
      {"core.PersistentVolumeSpec.capacity",
       "capacity is the description of the persistent volume's resources and capacity. More info: "
       "https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"},
      {"core.PersistentVolumeSpec.accessModes",
       "accessModes contains all ways the volume can be mounted. More info: "
       "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"},
      {"core.PersistentVolumeSpec.persistentVolumeReclaimPolicy",
       "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released "
       "from its claim. Valid options are Retain (default for manually created PersistentVolumes), "
       "Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). "
       "Recycle must be supported by the volume plugin underlying this PersistentVolume. More "
       "info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"},
      {"core.PersistentVolumeStatus.phase",
       "phase indicates if a volume is available, bound to a claim, or released by a claim. More "
       "info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"},
      {"core.PersistentVolumeSpec.claimRef",
       "claimRef is part of a bi-directional binding between PersistentVolume and "
       "PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the "
       "authoritative bind between PV and PVC. More info: "
       "https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"},
      {"core.PersistentVolumeStatus.reason",
       "reason is a brief CamelCase string that describes any failure and is meant for machine "
       "parsing and tidy display in the CLI."},
      {"core.PersistentVolumeSpec.volumeMode",
       "volumeMode defines if a volume is intended to be used with a formatted filesystem or to "
       "remain in raw block state. Value of Filesystem is implied when not included in spec."},
      {"core.PersistentVolumeClaimStatus.phase",
       "phase represents the current phase of PersistentVolumeClaim."},
      {"core.PersistentVolumeClaimSpec.volumeName",
       "volumeName is the binding reference to the PersistentVolume backing this claim."},
      {"core.PersistentVolumeClaimStatus.capacity",
       "capacity represents the actual resources of the underlying volume."},
      {"core.PersistentVolumeClaimStatus.accessModes",
       "accessModes contains the actual access modes the volume backing the PVC has. More info: "
       "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"},
      {"core.PersistentVolumeClaimSpec.volumeMode",
       "volumeMode defines what type of volume is required by the claim. Value of Filesystem is "
       "implied when not included in claim spec."},
      {"core.ConfigMap.data",
       "Data contains the configuration data. Each key must consist of alphanumeric characters, "
       "'-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The "
       "keys stored in Data must not overlap with the keys in the BinaryData field, this is "
       "enforced during validation process."},
      {"ext.ReplicaSetSpec.replicas",
       "Replicas is the number of desired replicas. This is a pointer to distinguish between "
       "explicit zero and unspecified. Defaults to 1. More info: "
       "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/"
       "#what-is-a-replicationcontroller"},
      {"ext.ReplicaSetStatus.replicas",
       "Replicas is the most recently observed number of replicas. More info: "
       "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/"
       "#what-is-a-replicationcontroller"},
      {"ext.ReplicaSetStatus.readyReplicas", "The number of ready replicas for this replica set."},
      {"ext.ReplicaSetSpec.selector",
       "Selector is a label query over pods that should match the replica count. If the selector "
       "is empty, it is defaulted to the labels present on the pod template. Label keys and values "
       "that must match in order to be controlled by this replica set. More info: "
       "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"},
      {"ext.DaemonSetStatus.desiredNumberScheduled",
       "The total number of nodes that should be running the daemon pod (including nodes correctly "
       "running the daemon pod). More info: "
       "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"},
      {"ext.DaemonSetStatus.currentNumberScheduled",
       "The number of nodes that are running at least 1 daemon pod and are supposed to run the "
       "daemon pod. More info: "
       "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"},
      {"ext.DaemonSetStatus.numberReady",
       "The number of nodes that should be running the daemon pod and have one or more of the "
       "daemon pod running and ready."},
      {"ext.DaemonSetStatus.updatedNumberScheduled",
       "The total number of nodes that are running updated daemon pod"},
      {"ext.DaemonSetStatus.numberAvailable",
       "The number of nodes that should be running the daemon pod and have one or more of the "
       "daemon pod running and available (ready for at least spec.minReadySeconds)"},
      {"ext.DaemonSetSpec.selector",
       "A label query over pods that are managed by the daemon set. Must match in order to be "
       "controlled. If empty, defaulted to labels on Pod template. More info: "
       "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"},
      {"ext.DeploymentStatus.updatedReplicas",
       "Total number of non-terminated pods targeted by this deployment that have the desired "
       "template spec."},
      {"ext.DeploymentStatus.availableReplicas",
       "Total number of available pods (ready for at least minReadySeconds) targeted by this "
       "deployment."},
      {"ext.DeploymentSpec.selector",
       "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the "
       "ones affected by this deployment."},
      {"ext.NetworkPolicySpec.podSelector",
       "Selects the pods to which this NetworkPolicy object applies.  The array of ingress rules "
       "is applied to any pods selected by this field. Multiple network policies can select the "
       "same set of pods.  In this case, the ingress rules for each are combined additively. This "
       "field is NOT optional and follows standard label selector semantics. An empty podSelector "
       "matches all pods in this namespace."},
      {"batch.JobStatus.succeeded",
       "The number of pods which reached phase Succeeded. The value increases monotonically for a "
       "given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."},
      {"batch.JobSpec.selector",
       "A label query over pods that should match the pod count. Normally, the system sets this "
       "field for you. More info: "
       "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"},
      {"batchb.CronJobSpec.schedule",
       "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."},
      {"batchb.CronJobSpec.timeZone",
       "The time zone name for the given schedule, see "
       "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will "
       "default to the time zone of the kube-controller-manager process. The set of valid time "
       "zone names and the time zone offset is loaded from the system-wide time zone database by "
       "the API server during CronJob validation and the controller manager during execution. If "
       "no system-wide time zone database can be found a bundled version of the database is used "
       "instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to "
       "a change in host configuration, the controller will stop creating new new Jobs and will "
       "create a system event with the reason UnknownTimeZone. More information can be found in "
       "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"},
      {"batchb.CronJobSpec.suspend",
       "This flag tells the controller to suspend subsequent executions, it does not apply to "
       "already started executions.  Defaults to false."},
      {"batchb.CronJobStatus.active", "A list of pointers to currently running jobs."},
      {"batchb.CronJobStatus.lastScheduleTime",
       "Information when was the last time the job was successfully scheduled."},
      {"hpa.HorizontalPodAutoscalerSpec.scaleTargetRef",
       "scaleTargetRef points to the target resource to scale, and is used to the pods for which "
       "metrics should be collected, as well as to actually change the replica count."},
      {"hpa.HorizontalPodAutoscalerSpec.metrics",
       "metrics contains the specifications for which to use to calculate the desired replica "
       "count (the maximum replica count across all metrics will be used).  The desired replica "
       "count is calculated multiplying the ratio between the target value and the current value "
       "by the current number of pods.  Ergo, metrics used must decrease as the pod count is "
       "increased, and vice-versa.  See the individual metric source types for more information "
       "about how each type of metric must respond."},
      {"hpa.HorizontalPodAutoscalerSpec.minReplicas",
       "minReplicas is the lower limit for the number of replicas to which the autoscaler can "
       "scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature "
       "gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  "
       "Scaling is active as long as at least one metric value is available."},
      {"hpa.HorizontalPodAutoscalerSpec.maxReplicas",
       "maxReplicas is the upper limit for the number of replicas to which the autoscaler can "
       "scale up. It cannot be less that minReplicas."},
      {"hpa.HorizontalPodAutoscalerStatus.currentReplicas",
       "currentReplicas is current number of replicas of pods managed by this autoscaler, as last "
       "seen by the autoscaler."},
      {"rbacb.RoleBinding.roleRef",
       "RoleRef can reference a Role in the current namespace or a ClusterRole in the global "
       "namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."},
      {"rbacb.ClusterRoleBinding.roleRef",
       "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be "
       "resolved, the Authorizer must return an error."},
      {"coord.LeaseSpec.holderIdentity",
       "holderIdentity contains the identity of the holder of a current lease. If Coordinated "
       "Leader Election is used, the holder identity must be equal to the elected "
       "LeaseCandidate.metadata.name field."},
      {"storage.StorageClass.provisioner", "provisioner indicates the type of the provisioner."},
      {"storage.StorageClass.reclaimPolicy",
       "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of "
       "this storage class. Defaults to Delete."},
      {"storage.StorageClass.volumeBindingMode",
       "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  "
       "When unset, VolumeBindingImmediate is used. This field is only honored by servers that "
       "enable the VolumeScheduling feature."},
      {"storage.StorageClass.allowVolumeExpansion",
       "allowVolumeExpansion shows whether the storage class allow volume expand."},
      {"appsb.ControllerRevision.revision",
       "revision indicates the revision of the state represented by Data."},
      {"discb.EndpointSlice.addressType",
       "addressType specifies the type of address carried by this EndpointSlice. All addresses in "
       "this slice must be the same type. This field is immutable after creation. The following "
       "address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: "
       "Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name."},
      {"discb.EndpointSlice.ports",
       "ports specifies the list of network ports exposed by each endpoint in this slice. Each "
       "port must have a unique name. When ports is empty, it indicates that there are no defined "
       "ports. When a port is defined with a nil port value, it indicates \"all ports\". Each "
       "slice may include a maximum of 100 ports."},
      {"discb.EndpointSlice.endpoints",
       "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of "
       "1000 endpoints."},
      {"sched.PriorityClass.value",
       "value represents the integer value of this priority class. This is the actual priority "
       "that pods receive when they have the name of this class in their pod spec."},
      {"sched.PriorityClass.globalDefault",
       "globalDefault specifies whether this PriorityClass should be considered as the default "
       "priority for pods that do not have any priority class. Only one PriorityClass can be "
       "marked as `globalDefault`. However, if more than one PriorityClasses exists with their "
       "`globalDefault` field set to true, the smallest value of such global default "
       "PriorityClasses will be used as the default priority."},
      {"sched.PriorityClass.preemptionPolicy",
       "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, "
       "PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."},
  };
  auto it = kDocs->find(key);
  return it == kDocs->end() ? std::string_view() : it->second;
}

constexpr std::string_view kContainersDoc = "Names of each container in the template.";
constexpr std::string_view kImagesDoc = "Images referenced by each container in the template.";

Column NameColumn() {
  return {"Name", "string", "name", std::string(Doc("meta.ObjectMeta.name"))};
}
Column AgeColumn() {
  return {"Age", "string", "", std::string(Doc("meta.ObjectMeta.creationTimestamp"))};
}
Column Col(std::string name, std::string type, std::string_view description, int priority = 0) {
  return {std::move(name), std::move(type), "", std::string(description), priority};
}
Column DocCol(std::string name, std::string type, std::string_view doc_key, int priority = 0) {
  return Col(std::move(name), std::move(type), Doc(doc_key), priority);
}
Column ContainersColumn() {
  return Col("Containers", "string", kContainersDoc, 1);
}
Column ImagesColumn() {
  return Col("Images", "string", kImagesDoc, 1);
}

json ColumnsJson(const std::vector<Column>& columns) {
  json out = json::array();
  for (const Column& c : columns) {
    out.push_back({{"name", c.name},
                   {"type", c.type},
                   {"format", c.format},
                   {"description", c.description},
                   {"priority", c.priority}});
  }
  return out;
}

// layoutContainerCells: the names and images of a container list, comma-separated.
std::pair<std::string, std::string> ContainerCells(const json& containers) {
  std::vector<std::string> names, images;
  for (const json& c : Items(containers)) {
    names.push_back(Str(Field(c, {"name"})));
    images.push_back(Str(Field(c, {"image"})));
  }
  return {Join(names, ","), Join(images, ",")};
}

// The condition of `type` in a conditions list (the first one), or null.
const json& Condition(const json& conditions, std::string_view type) {
  for (const json& c : Items(conditions)) {
    if (Str(Field(c, {"type"})) == type) return c;
  }
  return Null();
}

bool ConditionTrue(const json& conditions, std::string_view type) {
  return Str(Field(Condition(conditions, type), {"status"})) == "True";
}

// ---------------------------------------------------------------------------------------------
// Printers: the columns of a kind and the cells of one object. Row conditions (only pods have
// them) are written to `conditions`.

struct Printer {
  std::vector<Column> columns;
  std::function<Cells(const json& obj, Clock::time_point now, json& conditions)> cells;
};

// Pods (printPod).

bool IsRestartableInit(const json& init_container) {
  return Str(Field(init_container, {"restartPolicy"})) == "Always";
}

// The latest of `current` and a container status's lastState.terminated.finishedAt.
void LatestTermination(const json& status, std::optional<int64_t>& current) {
  std::optional<int64_t> t = Timestamp(Field(status, {"lastState", "terminated", "finishedAt"}));
  if (t && (!current || *current < *t)) current = t;
}

Cells PodCells(const json& pod, Clock::time_point now, json& conditions) {
  const json& spec = Field(pod, {"spec"});
  const json& status = Field(pod, {"status"});
  int64_t restarts = 0;
  int64_t restartable_init_restarts = 0;
  int64_t total = static_cast<int64_t>(Size(Field(spec, {"containers"})));
  int64_t ready = 0;
  std::optional<int64_t> last_restart;
  std::optional<int64_t> last_restartable_init_restart;

  const std::string phase = Str(Field(status, {"phase"}));
  std::string reason = phase;
  if (!Str(Field(status, {"reason"})).empty()) reason = Str(Field(status, {"reason"}));
  for (const json& c : Items(Field(status, {"conditions"}))) {
    if (Str(Field(c, {"type"})) == "PodScheduled" &&
        Str(Field(c, {"reason"})) == "SchedulingGated") {
      reason = "SchedulingGated";
    }
  }
  if (phase == "Succeeded") {
    conditions = json::array({{{"type", "Completed"},
                               {"status", "True"},
                               {"reason", "Succeeded"},
                               {"message", "The pod has completed successfully."}}});
  } else if (phase == "Failed") {
    conditions = json::array({{{"type", "Completed"},
                               {"status", "True"},
                               {"reason", "Failed"},
                               {"message", "The pod failed."}}});
  }

  std::map<std::string, const json*> init_containers;
  const json& init_specs = Items(Field(spec, {"initContainers"}));
  for (const json& c : init_specs) {
    init_containers[Str(Field(c, {"name"}))] = &c;
    if (IsRestartableInit(c)) ++total;
  }
  auto restartable = [&](const json& container_status) {
    auto it = init_containers.find(Str(Field(container_status, {"name"})));
    return it != init_containers.end() && IsRestartableInit(*it->second);
  };

  bool initializing = false;
  const json& init_statuses = Items(Field(status, {"initContainerStatuses"}));
  for (size_t i = 0; i < init_statuses.size(); ++i) {
    const json& c = init_statuses[i];
    restarts += Int(Field(c, {"restartCount"}));
    LatestTermination(c, last_restart);
    if (restartable(c)) {
      restartable_init_restarts += Int(Field(c, {"restartCount"}));
      LatestTermination(c, last_restartable_init_restart);
    }
    const json& terminated = Field(c, {"state", "terminated"});
    const json& waiting = Field(c, {"state", "waiting"});
    if (terminated.is_object() && Int(Field(terminated, {"exitCode"})) == 0) continue;
    if (restartable(c) && Bool(Field(c, {"started"}))) {
      if (Bool(Field(c, {"ready"}))) ++ready;
      continue;
    }
    if (terminated.is_object()) {
      const std::string why = Str(Field(terminated, {"reason"}));
      if (why.empty()) {
        reason = Int(Field(terminated, {"signal"})) != 0
                     ? fmt::format("Init:Signal:{}", Int(Field(terminated, {"signal"})))
                     : fmt::format("Init:ExitCode:{}", Int(Field(terminated, {"exitCode"})));
      } else {
        reason = "Init:" + why;
      }
    } else if (waiting.is_object() && !Str(Field(waiting, {"reason"})).empty() &&
               Str(Field(waiting, {"reason"})) != "PodInitializing") {
      reason = "Init:" + Str(Field(waiting, {"reason"}));
    } else {
      reason = fmt::format("Init:{}/{}", i, init_specs.size());
    }
    initializing = true;
    break;
  }

  if (!initializing || ConditionTrue(Field(status, {"conditions"}), "Initialized")) {
    restarts = restartable_init_restarts;
    last_restart = last_restartable_init_restart;
    bool has_running = false;
    const json& statuses = Items(Field(status, {"containerStatuses"}));
    for (size_t i = statuses.size(); i-- > 0;) {
      const json& c = statuses[i];
      restarts += Int(Field(c, {"restartCount"}));
      LatestTermination(c, last_restart);
      const json& waiting = Field(c, {"state", "waiting"});
      const json& terminated = Field(c, {"state", "terminated"});
      if (waiting.is_object() && !Str(Field(waiting, {"reason"})).empty()) {
        reason = Str(Field(waiting, {"reason"}));
      } else if (terminated.is_object() && !Str(Field(terminated, {"reason"})).empty()) {
        reason = Str(Field(terminated, {"reason"}));
      } else if (terminated.is_object()) {
        reason = Int(Field(terminated, {"signal"})) != 0
                     ? fmt::format("Signal:{}", Int(Field(terminated, {"signal"})))
                     : fmt::format("ExitCode:{}", Int(Field(terminated, {"exitCode"})));
      } else if (Bool(Field(c, {"ready"})) && Field(c, {"state", "running"}).is_object()) {
        has_running = true;
        ++ready;
      }
    }
    // Back to Running if a container still runs after another completed.
    if (reason == "Completed" && has_running) {
      reason = ConditionTrue(Field(status, {"conditions"}), "Ready") ? "Running" : "NotReady";
    }
  }

  const bool deleting = Field(pod, {"metadata", "deletionTimestamp"}).is_string();
  if (deleting && Str(Field(status, {"reason"})) == "NodeLost") {
    reason = "Unknown";
  } else if (deleting && phase != "Failed" && phase != "Succeeded") {
    reason = "Terminating";
  }

  std::string restarts_cell = std::to_string(restarts);
  if (restarts != 0 && last_restart) {
    restarts_cell = fmt::format("{} ({} ago)", restarts, HumanSince(*last_restart, now));
  }

  std::string ip;
  const json& ips = Items(Field(status, {"podIPs"}));
  if (!ips.empty()) {
    ip = Str(Field(ips[0], {"ip"}));
  } else {
    ip = Str(Field(status, {"podIP"}));
  }
  std::string node = Str(Field(spec, {"nodeName"}));
  std::string nominated = Str(Field(status, {"nominatedNodeName"}));
  std::string gates = "<none>";
  const json& readiness_gates = Items(Field(spec, {"readinessGates"}));
  if (!readiness_gates.empty()) {
    int true_conditions = 0;
    for (const json& gate : readiness_gates) {
      const json& c = Condition(Field(status, {"conditions"}), Str(Field(gate, {"conditionType"})));
      if (Str(Field(c, {"status"})) == "True") ++true_conditions;
    }
    gates = fmt::format("{}/{}", true_conditions, readiness_gates.size());
  }
  return {Str(Field(pod, {"metadata", "name"})),
          fmt::format("{}/{}", ready, total),
          reason,
          restarts_cell,
          Age(pod, now),
          ip.empty() ? "<none>" : ip,
          node.empty() ? "<none>" : node,
          nominated.empty() ? "<none>" : nominated,
          gates};
}

// Services (printService).

std::string LoadBalancerString(const json& ingress_list) {
  std::set<std::string> result;
  for (const json& ingress : Items(ingress_list)) {
    if (!Str(Field(ingress, {"ip"})).empty()) {
      result.insert(Str(Field(ingress, {"ip"})));
    } else if (!Str(Field(ingress, {"hostname"})).empty()) {
      result.insert(Str(Field(ingress, {"hostname"})));
    }
  }
  // The server prints wide, so the 16-character clipping of narrow output never applies.
  return Join({result.begin(), result.end()}, ",");
}

std::vector<std::string> Strings(const json& array) {
  std::vector<std::string> out;
  for (const json& v : Items(array)) out.push_back(Str(v));
  return out;
}

std::string ServiceExternalIp(const json& svc) {
  const std::string type = Str(Field(svc, {"spec", "type"}));
  const std::vector<std::string> external_ips = Strings(Field(svc, {"spec", "externalIPs"}));
  if (type == "ClusterIP" || type == "NodePort") {
    return external_ips.empty() ? "<none>" : Join(external_ips, ",");
  }
  if (type == "LoadBalancer") {
    std::string lb = LoadBalancerString(Field(svc, {"status", "loadBalancer", "ingress"}));
    if (!external_ips.empty()) {
      std::vector<std::string> results;
      if (!lb.empty()) {
        size_t start = 0;
        while (true) {
          size_t comma = lb.find(',', start);
          results.push_back(lb.substr(start, comma == std::string::npos ? comma : comma - start));
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      }
      results.insert(results.end(), external_ips.begin(), external_ips.end());
      return Join(results, ",");
    }
    return lb.empty() ? "<pending>" : lb;
  }
  if (type == "ExternalName") return Str(Field(svc, {"spec", "externalName"}));
  return "<unknown>";
}

std::string PortString(const json& ports) {
  std::vector<std::string> pieces;
  for (const json& p : Items(ports)) {
    std::string protocol = Str(Field(p, {"protocol"}));
    if (protocol.empty()) protocol = "TCP";  // defaulted upstream
    const int64_t node_port = Int(Field(p, {"nodePort"}));
    pieces.push_back(node_port > 0
                         ? fmt::format("{}:{}/{}", Int(Field(p, {"port"})), node_port, protocol)
                         : fmt::format("{}/{}", Int(Field(p, {"port"})), protocol));
  }
  return Join(pieces, ",");
}

Cells ServiceCells(const json& svc, Clock::time_point now, json&) {
  std::string cluster_ip = "<none>";
  const json& ips = Items(Field(svc, {"spec", "clusterIPs"}));
  if (!ips.empty()) {
    cluster_ip = Str(ips[0]);
  } else if (!Str(Field(svc, {"spec", "clusterIP"})).empty()) {
    cluster_ip = Str(Field(svc, {"spec", "clusterIP"}));
  }
  std::string ports = PortString(Field(svc, {"spec", "ports"}));
  return {Str(Field(svc, {"metadata", "name"})),
          Str(Field(svc, {"spec", "type"})),
          cluster_ip,
          ServiceExternalIp(svc),
          ports.empty() ? "<none>" : ports,
          Age(svc, now),
          FormatLabels(Field(svc, {"spec", "selector"}))};
}

// Nodes (printNode).

Cells NodeCells(const json& node, Clock::time_point now, json&) {
  std::vector<std::string> status;
  const json& ready = Condition(Field(node, {"status", "conditions"}), "Ready");
  if (ready.is_object())
    status.push_back(Str(Field(ready, {"status"})) == "True" ? "Ready" : "NotReady");
  if (status.empty()) status.push_back("Unknown");
  if (Bool(Field(node, {"spec", "unschedulable"}))) status.push_back("SchedulingDisabled");

  std::set<std::string> roles;
  const json& labels = Field(node, {"metadata", "labels"});
  if (labels.is_object()) {
    constexpr std::string_view kRolePrefix = "node-role.kubernetes.io/";
    for (const auto& [key, value] : labels.items()) {
      if (std::string_view(key).starts_with(kRolePrefix)) {
        if (key.size() > kRolePrefix.size()) roles.insert(key.substr(kRolePrefix.size()));
      } else if (key == "kubernetes.io/role" && !Str(value).empty()) {
        roles.insert(Str(value));
      }
    }
  }
  auto address = [&](std::string_view type) {
    for (const json& a : Items(Field(node, {"status", "addresses"}))) {
      if (Str(Field(a, {"type"})) == type) return Str(Field(a, {"address"}));
    }
    return std::string("<none>");
  };
  auto or_unknown = [](std::string s) { return s.empty() ? std::string("<unknown>") : s; };
  const json& info = Field(node, {"status", "nodeInfo"});
  std::string role_cell = Join({roles.begin(), roles.end()}, ",");
  return {Str(Field(node, {"metadata", "name"})),
          Join(status, ","),
          role_cell.empty() ? "<none>" : role_cell,
          Age(node, now),
          Str(Field(info, {"kubeletVersion"})),
          address("InternalIP"),
          address("ExternalIP"),
          or_unknown(Str(Field(info, {"osImage"}))),
          or_unknown(Str(Field(info, {"kernelVersion"}))),
          or_unknown(Str(Field(info, {"containerRuntimeVersion"})))};
}

// Workloads.

// The replicas of a spec, 1 when absent as upstream defaults it.
int64_t Replicas(const json& obj) {
  return OptInt(Field(obj, {"spec", "replicas"})).value_or(1);
}

Cells DeploymentCells(const json& d, Clock::time_point now, json&) {
  auto [names, images] = ContainerCells(Field(d, {"spec", "template", "spec", "containers"}));
  Result<LabelSelector> selector = LabelSelector::FromJson(Field(d, {"spec", "selector"}));
  return {Str(Field(d, {"metadata", "name"})),
          fmt::format("{}/{}", Int(Field(d, {"status", "readyReplicas"})), Replicas(d)),
          Int(Field(d, {"status", "updatedReplicas"})),
          Int(Field(d, {"status", "availableReplicas"})),
          Age(d, now),
          names,
          images,
          selector.ok() ? selector->String() : "<invalid>"};
}

Cells ReplicaSetCells(const json& rs, Clock::time_point now, json&) {
  auto [names, images] = ContainerCells(Field(rs, {"spec", "template", "spec", "containers"}));
  return {Str(Field(rs, {"metadata", "name"})),
          Replicas(rs),
          Int(Field(rs, {"status", "replicas"})),
          Int(Field(rs, {"status", "readyReplicas"})),
          Age(rs, now),
          names,
          images,
          FormatLabelSelector(Field(rs, {"spec", "selector"}))};
}

Cells ReplicationControllerCells(const json& rc, Clock::time_point now, json&) {
  auto [names, images] = ContainerCells(Field(rc, {"spec", "template", "spec", "containers"}));
  return {Str(Field(rc, {"metadata", "name"})),
          Replicas(rc),
          Int(Field(rc, {"status", "replicas"})),
          Int(Field(rc, {"status", "readyReplicas"})),
          Age(rc, now),
          names,
          images,
          FormatLabels(Field(rc, {"spec", "selector"}))};
}

Cells DaemonSetCells(const json& ds, Clock::time_point now, json&) {
  auto [names, images] = ContainerCells(Field(ds, {"spec", "template", "spec", "containers"}));
  const json& st = Field(ds, {"status"});
  return {Str(Field(ds, {"metadata", "name"})),
          Int(Field(st, {"desiredNumberScheduled"})),
          Int(Field(st, {"currentNumberScheduled"})),
          Int(Field(st, {"numberReady"})),
          Int(Field(st, {"updatedNumberScheduled"})),
          Int(Field(st, {"numberAvailable"})),
          FormatLabels(Field(ds, {"spec", "template", "spec", "nodeSelector"})),
          Age(ds, now),
          names,
          images,
          FormatLabelSelector(Field(ds, {"spec", "selector"}))};
}

Cells StatefulSetCells(const json& sts, Clock::time_point now, json&) {
  auto [names, images] = ContainerCells(Field(sts, {"spec", "template", "spec", "containers"}));
  return {Str(Field(sts, {"metadata", "name"})),
          fmt::format("{}/{}", Int(Field(sts, {"status", "readyReplicas"})), Replicas(sts)),
          Age(sts, now), names, images};
}

// hasJobCondition: the first condition of the type decides.
bool JobCondition(const json& job, std::string_view type) {
  return ConditionTrue(Field(job, {"status", "conditions"}), type);
}

Cells JobCells(const json& job, Clock::time_point now, json&) {
  const int64_t succeeded = Int(Field(job, {"status", "succeeded"}));
  std::string completions;
  if (std::optional<int64_t> want = OptInt(Field(job, {"spec", "completions"}))) {
    completions = fmt::format("{}/{}", succeeded, *want);
  } else if (int64_t parallelism = Int(Field(job, {"spec", "parallelism"})); parallelism > 1) {
    completions = fmt::format("{}/1 of {}", succeeded, parallelism);
  } else {
    completions = fmt::format("{}/1", succeeded);
  }
  std::string duration;
  std::optional<int64_t> start = Timestamp(Field(job, {"status", "startTime"}));
  std::optional<int64_t> completion = Timestamp(Field(job, {"status", "completionTime"}));
  if (start && !completion) {
    duration = HumanSince(*start, now);
  } else if (start) {
    duration = HumanDuration(
        std::chrono::nanoseconds(Saturate(static_cast<__int128>(*completion) - *start)));
  }
  std::string status;
  if (JobCondition(job, "Complete")) {
    status = "Complete";
  } else if (JobCondition(job, "Failed")) {
    status = "Failed";
  } else if (Field(job, {"metadata", "deletionTimestamp"}).is_string()) {
    status = "Terminating";
  } else if (JobCondition(job, "Suspended")) {
    status = "Suspended";
  } else if (JobCondition(job, "FailureTarget")) {
    status = "FailureTarget";
  } else {
    status = "Running";
  }
  auto [names, images] = ContainerCells(Field(job, {"spec", "template", "spec", "containers"}));
  return {Str(Field(job, {"metadata", "name"})),
          status,
          completions,
          duration,
          Age(job, now),
          names,
          images,
          FormatLabelSelector(Field(job, {"spec", "selector"}))};
}

Cells CronJobCells(const json& cj, Clock::time_point now, json&) {
  const json& last = Field(cj, {"status", "lastScheduleTime"});
  const json& tz = Field(cj, {"spec", "timeZone"});
  const json& suspend = Field(cj, {"spec", "suspend"});
  // printBoolPtr; upstream defaults suspend to false, so a stored object always has it.
  std::string suspend_cell = suspend.is_boolean() ? (suspend.get<bool>() ? "True" : "False")
                                                  : (suspend.is_null() ? "False" : "<unset>");
  const json& job_spec = Field(cj, {"spec", "jobTemplate", "spec"});
  auto [names, images] = ContainerCells(Field(job_spec, {"template", "spec", "containers"}));
  return {Str(Field(cj, {"metadata", "name"})),
          Str(Field(cj, {"spec", "schedule"})),
          tz.is_string() ? tz.get<std::string>() : "<none>",
          suspend_cell,
          static_cast<int64_t>(Size(Field(cj, {"status", "active"}))),
          last.is_string() ? Since(last, now) : "<none>",
          Age(cj, now),
          names,
          images,
          FormatLabelSelector(Field(job_spec, {"selector"}))};
}

Cells ControllerRevisionCells(const json& cr, Clock::time_point now, json&) {
  std::string controller = "<none>";
  for (const json& ref : Items(Field(cr, {"metadata", "ownerReferences"}))) {
    if (!Bool(Field(ref, {"controller"}))) continue;
    const std::string api_version = Str(Field(ref, {"apiVersion"}));
    const size_t slash = api_version.find('/');
    const std::string group = slash == std::string::npos ? "" : api_version.substr(0, slash);
    const std::string kind = Str(Field(ref, {"kind"}));
    const std::string name = Str(Field(ref, {"name"}));
    if (kind.empty() && group.empty()) {
      controller = name;
    } else {
      controller = Lower(group.empty() ? kind : kind + "." + group) + "/" + name;
    }
    break;
  }
  return {Str(Field(cr, {"metadata", "name"})), controller, Int(Field(cr, {"revision"})),
          Age(cr, now)};
}

Cells PodDisruptionBudgetCells(const json& pdb, Clock::time_point now, json&) {
  const json& min = Field(pdb, {"spec", "minAvailable"});
  const json& max = Field(pdb, {"spec", "maxUnavailable"});
  return {Str(Field(pdb, {"metadata", "name"})), min.is_null() ? "N/A" : IntOrString(min),
          max.is_null() ? "N/A" : IntOrString(max),
          Int(Field(pdb, {"status", "disruptionsAllowed"})), Age(pdb, now)};
}

Cells PodTemplateCells(const json& pt, Clock::time_point, json&) {
  auto [names, images] = ContainerCells(Field(pt, {"template", "spec", "containers"}));
  return {Str(Field(pt, {"metadata", "name"})), names, images,
          FormatLabels(Field(pt, {"template", "metadata", "labels"}))};
}

// formatHPAMetrics over the autoscaling/v2 shape; autoscaling/v1 objects are read through their
// CPU utilization fields, as upstream converts them.
std::string HpaMetrics(const json& hpa) {
  json specs = Field(hpa, {"spec", "metrics"});
  json statuses = Field(hpa, {"status", "currentMetrics"});
  if (!specs.is_array()) {
    specs = json::array();
    statuses = json::array();
    if (OptInt(Field(hpa, {"spec", "targetCPUUtilizationPercentage"}))) {
      specs.push_back({{"type", "Resource"},
                       {"resource",
                        {{"name", "cpu"},
                         {"target",
                          {{"type", "Utilization"},
                           {"averageUtilization",
                            Int(Field(hpa, {"spec", "targetCPUUtilizationPercentage"}))}}}}}});
      if (std::optional<int64_t> cur =
              OptInt(Field(hpa, {"status", "currentCPUUtilizationPercentage"}))) {
        statuses.push_back(
            {{"type", "Resource"},
             {"resource", {{"name", "cpu"}, {"current", {{"averageUtilization", *cur}}}}}});
      }
    }
  }
  if (Size(specs) == 0) return "<none>";
  std::vector<std::string> list;
  const json& status_items = Items(statuses);
  auto status_at = [&](size_t i, const char* member) -> const json& {
    return i < status_items.size() ? Field(status_items[i], {member}) : Null();
  };
  for (size_t i = 0; i < specs.size(); ++i) {
    const json& spec = specs[i];
    const std::string type = Str(Field(spec, {"type"}));
    if (type == "External" || type == "Object") {
      const char* member = type == "External" ? "external" : "object";
      const json& target = Field(spec, {member, "target"});
      const json& st = status_at(i, member);
      if (!Field(target, {"averageValue"}).is_null()) {
        std::string current = "<unknown>";
        if (st.is_object() && !Field(st, {"current", "averageValue"}).is_null()) {
          current = QuantityString(Field(st, {"current", "averageValue"}));
        }
        list.push_back(
            fmt::format("{}/{} (avg)", current, QuantityString(Field(target, {"averageValue"}))));
      } else {
        std::string current = "<unknown>";
        if (st.is_object()) current = QuantityString(Field(st, {"current", "value"}));
        list.push_back(fmt::format("{}/{}", current, QuantityString(Field(target, {"value"}))));
      }
    } else if (type == "Pods") {
      const json& st = status_at(i, "pods");
      std::string current =
          st.is_object() ? QuantityString(Field(st, {"current", "averageValue"})) : "<unknown>";
      list.push_back(fmt::format("{}/{}", current,
                                 QuantityString(Field(spec, {"pods", "target", "averageValue"}))));
    } else if (type == "Resource" || type == "ContainerResource") {
      const char* member = type == "Resource" ? "resource" : "containerResource";
      const json& source = Field(spec, {member});
      const json& st = status_at(i, member);
      const std::string name = Str(Field(source, {"name"}));
      if (!Field(source, {"target", "averageValue"}).is_null()) {
        std::string current =
            st.is_object() ? QuantityString(Field(st, {"current", "averageValue"})) : "<unknown>";
        list.push_back(fmt::format("{}: {}/{}", name, current,
                                   QuantityString(Field(source, {"target", "averageValue"}))));
      } else {
        std::string current = "<unknown>";
        if (st.is_object() && OptInt(Field(st, {"current", "averageUtilization"}))) {
          current = fmt::format("{}%", Int(Field(st, {"current", "averageUtilization"})));
        }
        std::string target = "<auto>";
        if (OptInt(Field(source, {"target", "averageUtilization"}))) {
          target = fmt::format("{}%", Int(Field(source, {"target", "averageUtilization"})));
        }
        list.push_back(fmt::format("{}: {}/{}", name, current, target));
      }
    } else {
      list.push_back("<unknown type>");
    }
  }
  constexpr size_t kMax = 2;
  if (list.size() > kMax) {
    const size_t count = list.size();
    list.resize(kMax);
    return fmt::format("{} + {} more...", Join(list, ", "), count - kMax);
  }
  return Join(list, ", ");
}

Cells HpaCells(const json& hpa, Clock::time_point now, json&) {
  std::optional<int64_t> min = OptInt(Field(hpa, {"spec", "minReplicas"}));
  return {Str(Field(hpa, {"metadata", "name"})),
          Str(Field(hpa, {"spec", "scaleTargetRef", "kind"})) + "/" +
              Str(Field(hpa, {"spec", "scaleTargetRef", "name"})),
          HpaMetrics(hpa),
          min ? std::to_string(*min) : "<unset>",
          Int(Field(hpa, {"spec", "maxReplicas"})),
          Int(Field(hpa, {"status", "currentReplicas"})),
          Age(hpa, now)};
}

// Networking.

std::string JoinHostPort(const std::string& host, int64_t port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

// formatEndpoints with all ports.
std::string EndpointsString(const json& ep) {
  const json& subsets = Items(Field(ep, {"subsets"}));
  if (subsets.empty()) return "<none>";
  std::vector<std::string> list;
  constexpr size_t kMax = 3;
  bool more = false;
  size_t count = 0;
  for (const json& ss : subsets) {
    const json& addresses = Items(Field(ss, {"addresses"}));
    const json& ports = Items(Field(ss, {"ports"}));
    if (ports.empty()) {
      count += addresses.size();
      for (const json& a : addresses) {
        if (list.size() == kMax) {
          more = true;
          break;
        }
        list.push_back(Str(Field(a, {"ip"})));
      }
      continue;
    }
    for (const json& port : ports) {
      count += addresses.size();
      for (const json& a : addresses) {
        if (list.size() == kMax) {
          more = true;
          break;
        }
        list.push_back(JoinHostPort(Str(Field(a, {"ip"})), Int(Field(port, {"port"}))));
      }
    }
  }
  std::string ret = Join(list, ",");
  if (more) return fmt::format("{} + {} more...", ret, count - kMax);
  return ret;
}

std::string ListWithMore(const std::vector<std::string>& list, bool more, size_t count,
                         size_t max) {
  std::string ret = Join(list, ",");
  if (more) return fmt::format("{} + {} more...", ret, count - max);
  return ret.empty() ? "<unset>" : ret;
}

Cells EndpointSliceCells(const json& es, Clock::time_point now, json&) {
  constexpr size_t kMax = 3;
  std::vector<std::string> ports;
  bool more_ports = false;
  size_t port_count = 0;
  for (const json& p : Items(Field(es, {"ports"}))) {
    if (ports.size() < kMax) {
      if (OptInt(Field(p, {"port"}))) {
        ports.push_back(std::to_string(Int(Field(p, {"port"}))));
      } else if (Field(p, {"name"}).is_string()) {
        ports.push_back(Str(Field(p, {"name"})));
      } else {
        ports.push_back("*");
      }
    } else {
      more_ports = true;
    }
    ++port_count;
  }
  std::vector<std::string> addresses;
  bool more_addresses = false;
  size_t address_count = 0;
  for (const json& e : Items(Field(es, {"endpoints"}))) {
    for (const json& a : Items(Field(e, {"addresses"}))) {
      if (addresses.size() < kMax) {
        addresses.push_back(Str(a));
      } else {
        more_addresses = true;
      }
      ++address_count;
    }
  }
  return {Str(Field(es, {"metadata", "name"})), Str(Field(es, {"addressType"})),
          ListWithMore(ports, more_ports, port_count, kMax),
          ListWithMore(addresses, more_addresses, address_count, kMax), Age(es, now)};
}

Cells IngressCells(const json& ing, Clock::time_point now, json&) {
  const json& rules = Items(Field(ing, {"spec", "rules"}));
  std::vector<std::string> hosts;
  constexpr size_t kMax = 3;
  bool more = false;
  for (const json& rule : rules) {
    if (hosts.size() == kMax) more = true;
    if (!more && !Str(Field(rule, {"host"})).empty()) hosts.push_back(Str(Field(rule, {"host"})));
  }
  std::string host_cell = hosts.empty() ? "*" : Join(hosts, ",");
  if (!hosts.empty() && more)
    host_cell = fmt::format("{} + {} more...", host_cell, rules.size() - kMax);
  const json& class_name = Field(ing, {"spec", "ingressClassName"});
  return {Str(Field(ing, {"metadata", "name"})),
          class_name.is_string() ? class_name.get<std::string>() : "<none>",
          host_cell,
          LoadBalancerString(Field(ing, {"status", "loadBalancer", "ingress"})),
          Size(Field(ing, {"spec", "tls"})) != 0 ? "80, 443" : "80",
          Age(ing, now)};
}

Cells IngressClassCells(const json& ic, Clock::time_point now, json&) {
  std::string parameters = "<none>";
  const json& p = Field(ic, {"spec", "parameters"});
  if (p.is_object()) {
    parameters = Str(Field(p, {"kind"}));
    if (Field(p, {"apiGroup"}).is_string()) parameters += "." + Str(Field(p, {"apiGroup"}));
    parameters += "/" + Str(Field(p, {"name"}));
  }
  return {Str(Field(ic, {"metadata", "name"})), Str(Field(ic, {"spec", "controller"})), parameters,
          Age(ic, now)};
}

Cells NetworkPolicyCells(const json& np, Clock::time_point now, json&) {
  // podSelector is a struct upstream, never nil: an absent one is the empty selector.
  const json& selector = Field(np, {"spec", "podSelector"});
  return {Str(Field(np, {"metadata", "name"})),
          FormatLabelSelector(selector.is_null() ? json::object() : selector), Age(np, now)};
}

// Events: both core/v1 and events.k8s.io/v1 objects print alike (upstream prints the internal
// type both convert to).
Cells EventCells(const json& raw, Clock::time_point now, json&) {
  const bool v1 = raw.contains("regarding") || raw.contains("note") ||
                  raw.contains("deprecatedSource") || raw.contains("reportingController");
  auto field = [&](const char* core, const char* events) -> const json& {
    return Field(raw, {v1 ? events : core});
  };
  const json& involved = field("involvedObject", "regarding");
  const json& source = field("source", "deprecatedSource");
  std::string first = Since(field("firstTimestamp", "deprecatedFirstTimestamp"), now);
  if (!Timestamp(field("firstTimestamp", "deprecatedFirstTimestamp"))) {
    first = Since(Field(raw, {"eventTime"}), now);
  }
  std::string last = Since(field("lastTimestamp", "deprecatedLastTimestamp"), now);
  if (!Timestamp(field("lastTimestamp", "deprecatedLastTimestamp"))) last = first;
  int64_t count = Int(field("count", "deprecatedCount"));
  const json& series = Field(raw, {"series"});
  if (series.is_object()) {
    last = Since(Field(series, {"lastObservedTime"}), now);
    count = Int(Field(series, {"count"}));
  } else if (count == 0) {
    count = 1;  // singleton events of the new API have no count
  }
  const std::string kind = Lower(Str(Field(involved, {"kind"})));
  const std::string name = Str(Field(involved, {"name"}));
  std::string component = Str(Field(source, {"component"}));
  if (component.empty()) component = Str(field("reportingComponent", "reportingController"));
  std::string host = Str(Field(source, {"host"}));
  if (host.empty()) host = Str(Field(raw, {"reportingInstance"}));
  std::string message = Str(field("message", "note"));
  const size_t b = message.find_first_not_of(" \t\n\r\v\f");
  message = b == std::string::npos
                ? ""
                : message.substr(b, message.find_last_not_of(" \t\n\r\v\f") - b + 1);
  return {last,
          Str(Field(raw, {"type"})),
          Str(Field(raw, {"reason"})),
          name.empty() ? kind : kind + "/" + name,
          Str(Field(involved, {"fieldPath"})),
          host.empty() ? component : component + ", " + host,
          message,
          first,
          count,
          Str(Field(raw, {"metadata", "name"}))};
}

// Configuration and storage.

Cells NamespaceCells(const json& ns, Clock::time_point now, json&) {
  return {Str(Field(ns, {"metadata", "name"})), Str(Field(ns, {"status", "phase"})), Age(ns, now)};
}

Cells SecretCells(const json& s, Clock::time_point now, json&) {
  return {Str(Field(s, {"metadata", "name"})), Str(Field(s, {"type"})),
          static_cast<int64_t>(Size(Field(s, {"data"}))), Age(s, now)};
}

Cells ConfigMapCells(const json& cm, Clock::time_point now, json&) {
  return {Str(Field(cm, {"metadata", "name"})),
          static_cast<int64_t>(Size(Field(cm, {"data"})) + Size(Field(cm, {"binaryData"}))),
          Age(cm, now)};
}

Cells ServiceAccountCells(const json& sa, Clock::time_point now, json&) {
  return {Str(Field(sa, {"metadata", "name"})), static_cast<int64_t>(Size(Field(sa, {"secrets"}))),
          Age(sa, now)};
}

// helper.GetAccessModesAsString.
std::string AccessModes(const json& modes) {
  std::set<std::string> have;
  for (const json& m : Items(modes)) have.insert(Str(m));
  std::vector<std::string> out;
  static constexpr std::pair<std::string_view, std::string_view> kModes[] = {
      {"ReadWriteOnce", "RWO"},
      {"ReadOnlyMany", "ROX"},
      {"ReadWriteMany", "RWX"},
      {"ReadWriteOncePod", "RWOP"},
  };
  for (const auto& [mode, abbreviation] : kModes) {
    if (have.count(std::string(mode)) != 0) out.emplace_back(abbreviation);
  }
  return Join(out, ",");
}

constexpr std::string_view kBetaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class";

std::string StorageClassOf(const json& obj) {
  const json& annotation = Field(obj, {"metadata", "annotations", kBetaStorageClassAnnotation});
  if (annotation.is_string()) return annotation.get<std::string>();
  return Str(Field(obj, {"spec", "storageClassName"}));
}

std::string Terminating(const json& obj, std::string phase) {
  return Field(obj, {"metadata", "deletionTimestamp"}).is_string() ? "Terminating" : phase;
}

std::string OrUnset(const json& v) {
  return v.is_string() ? v.get<std::string>() : "<unset>";
}

Cells PersistentVolumeCells(const json& pv, Clock::time_point now, json&) {
  std::string claim;
  const json& ref = Field(pv, {"spec", "claimRef"});
  if (ref.is_object()) claim = Str(Field(ref, {"namespace"})) + "/" + Str(Field(ref, {"name"}));
  return {Str(Field(pv, {"metadata", "name"})),
          QuantityString(Field(pv, {"spec", "capacity", "storage"})),
          AccessModes(Field(pv, {"spec", "accessModes"})),
          Str(Field(pv, {"spec", "persistentVolumeReclaimPolicy"})),
          Terminating(pv, Str(Field(pv, {"status", "phase"}))),
          claim,
          StorageClassOf(pv),
          OrUnset(Field(pv, {"spec", "volumeAttributesClassName"})),
          Str(Field(pv, {"status", "reason"})),
          Age(pv, now),
          OrUnset(Field(pv, {"spec", "volumeMode"}))};
}

Cells PersistentVolumeClaimCells(const json& pvc, Clock::time_point now, json&) {
  const std::string volume = Str(Field(pvc, {"spec", "volumeName"}));
  std::string capacity, modes;
  if (!volume.empty()) {
    modes = AccessModes(Field(pvc, {"status", "accessModes"}));
    capacity = QuantityString(Field(pvc, {"status", "capacity", "storage"}));
  }
  return {Str(Field(pvc, {"metadata", "name"})),
          Terminating(pvc, Str(Field(pvc, {"status", "phase"}))),
          volume,
          capacity,
          modes,
          StorageClassOf(pvc),
          OrUnset(Field(pvc, {"spec", "volumeAttributesClassName"})),
          Age(pvc, now),
          OrUnset(Field(pvc, {"spec", "volumeMode"}))};
}

Cells StorageClassCells(const json& sc, Clock::time_point now, json&) {
  std::string name = Str(Field(sc, {"metadata", "name"}));
  const json& annotations = Field(sc, {"metadata", "annotations"});
  if (Str(Field(annotations, {"storageclass.kubernetes.io/is-default-class"})) == "true" ||
      Str(Field(annotations, {"storageclass.beta.kubernetes.io/is-default-class"})) == "true") {
    name += " (default)";
  }
  const std::string reclaim = Str(Field(sc, {"reclaimPolicy"}));
  const std::string binding = Str(Field(sc, {"volumeBindingMode"}));
  return {name,
          Str(Field(sc, {"provisioner"})),
          reclaim.empty() ? "Delete" : reclaim,
          binding.empty() ? "Immediate" : binding,
          Bool(Field(sc, {"allowVolumeExpansion"})),
          Age(sc, now)};
}

Cells ResourceQuotaCells(const json& rq, Clock::time_point now, json&) {
  const json& hard = Field(rq, {"status", "hard"});
  const json& used = Field(rq, {"status", "used"});
  std::vector<std::string> requests, limits;
  if (hard.is_object()) {
    for (const auto& [resource, quantity] : hard.items()) {  // sorted by name, as upstream sorts
      std::string piece = fmt::format(
          "{}: {}/{}", resource, QuantityString(Field(used, {resource})), QuantityString(quantity));
      const bool is_limit = resource.starts_with("limits.");
      (is_limit ? limits : requests).push_back(std::move(piece));
    }
  }
  return {Str(Field(rq, {"metadata", "name"})), Join(requests, ", "), Join(limits, ", "),
          Age(rq, now)};
}

Cells LeaseCells(const json& lease, Clock::time_point now, json&) {
  return {Str(Field(lease, {"metadata", "name"})), Str(Field(lease, {"spec", "holderIdentity"})),
          Age(lease, now)};
}

Cells PriorityClassCells(const json& pc, Clock::time_point now, json&) {
  return {Str(Field(pc, {"metadata", "name"})), Int(Field(pc, {"value"})),
          Bool(Field(pc, {"globalDefault"})), Age(pc, now), Str(Field(pc, {"preemptionPolicy"}))};
}

Cells RuntimeClassCells(const json& rc, Clock::time_point now, json&) {
  return {Str(Field(rc, {"metadata", "name"})), Str(Field(rc, {"handler"})), Age(rc, now)};
}

Cells WebhookConfigurationCells(const json& wc, Clock::time_point now, json&) {
  return {Str(Field(wc, {"metadata", "name"})), static_cast<int64_t>(Size(Field(wc, {"webhooks"}))),
          Age(wc, now)};
}

// rbac.SubjectsStrings, joined as the printer joins them.
Cells RoleBindingCells(const json& rb, Clock::time_point now, json&) {
  std::vector<std::string> users, groups, sas;
  for (const json& s : Items(Field(rb, {"subjects"}))) {
    const std::string kind = Str(Field(s, {"kind"}));
    if (kind == "ServiceAccount") {
      sas.push_back(Str(Field(s, {"namespace"})) + "/" + Str(Field(s, {"name"})));
    } else if (kind == "User") {
      users.push_back(Str(Field(s, {"name"})));
    } else if (kind == "Group") {
      groups.push_back(Str(Field(s, {"name"})));
    }
  }
  return {Str(Field(rb, {"metadata", "name"})),
          Str(Field(rb, {"roleRef", "kind"})) + "/" + Str(Field(rb, {"roleRef", "name"})),
          Age(rb, now),
          Join(users, ", "),
          Join(groups, ", "),
          Join(sas, ", ")};
}

// Name and age, for resources without a printer of their own.
Cells NameAgeCells(const json& obj, Clock::time_point now, json&) {
  return {Str(Field(obj, {"metadata", "name"})), Age(obj, now)};
}

// The default table convertor's cells: the creation time in UTC RFC 3339.
Cells NameCreatedAtCells(const json& obj, Clock::time_point, json&) {
  std::string created = "0001-01-01T00:00:00Z";
  if (std::optional<int64_t> t = Timestamp(Field(obj, {"metadata", "creationTimestamp"}))) {
    int64_t secs = *t / kNanosPerSecond - (*t % kNanosPerSecond < 0 ? 1 : 0);
    int64_t days = secs / 86400 - (secs % 86400 < 0 ? 1 : 0);
    int64_t rem = secs - days * 86400;
    // civil_from_days (H. Hinnant).
    int64_t z = days + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    const int64_t d = doy - (153 * mp + 2) / 5 + 1;
    const int64_t m = mp < 10 ? mp + 3 : mp - 9;
    const int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
    created = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", y, m, d, rem / 3600,
                          rem / 60 % 60, rem % 60);
  }
  return {Str(Field(obj, {"metadata", "name"})), created};
}

const std::map<std::pair<std::string, std::string>, Printer>& Printers() {
  static const auto* const kPrinters = new std::map<std::pair<std::string, std::string>, Printer>{
      {{"", "pods"},
       {{NameColumn(),
         Col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
         Col("Status", "string", "The aggregate status of the containers in this pod."),
         Col("Restarts", "string",
             "The number of times the containers in this pod have been restarted and when the "
             "last container in this pod has restarted."),
         AgeColumn(), DocCol("IP", "string", "core.PodStatus.podIP", 1),
         DocCol("Node", "string", "core.PodSpec.nodeName", 1),
         DocCol("Nominated Node", "string", "core.PodStatus.nominatedNodeName", 1),
         DocCol("Readiness Gates", "string", "core.PodSpec.readinessGates", 1)},
        PodCells}},
      {{"", "podtemplates"},
       {{NameColumn(), Col("Containers", "string", kContainersDoc),
         Col("Images", "string", kImagesDoc),
         Col("Pod Labels", "string", "The labels for the pod template.")},
        PodTemplateCells}},
      {{"policy", "poddisruptionbudgets"},
       {{NameColumn(),
         Col("Min Available", "string", "The minimum number of pods that must be available."),
         Col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
         Col("Allowed Disruptions", "integer",
             "Calculated number of pods that may be disrupted at this time."),
         AgeColumn()},
        PodDisruptionBudgetCells}},
      {{"", "replicationcontrollers"},
       {{NameColumn(), DocCol("Desired", "integer", "core.ReplicationControllerSpec.replicas"),
         DocCol("Current", "integer", "core.ReplicationControllerStatus.replicas"),
         DocCol("Ready", "integer", "core.ReplicationControllerStatus.readyReplicas"), AgeColumn(),
         ContainersColumn(), ImagesColumn(),
         DocCol("Selector", "string", "core.ReplicationControllerSpec.selector", 1)},
        ReplicationControllerCells}},
      {{"apps", "replicasets"},
       {{NameColumn(), DocCol("Desired", "integer", "ext.ReplicaSetSpec.replicas"),
         DocCol("Current", "integer", "ext.ReplicaSetStatus.replicas"),
         DocCol("Ready", "integer", "ext.ReplicaSetStatus.readyReplicas"), AgeColumn(),
         ContainersColumn(), ImagesColumn(),
         DocCol("Selector", "string", "ext.ReplicaSetSpec.selector", 1)},
        ReplicaSetCells}},
      {{"apps", "daemonsets"},
       {{NameColumn(), DocCol("Desired", "integer", "ext.DaemonSetStatus.desiredNumberScheduled"),
         DocCol("Current", "integer", "ext.DaemonSetStatus.currentNumberScheduled"),
         DocCol("Ready", "integer", "ext.DaemonSetStatus.numberReady"),
         DocCol("Up-to-date", "integer", "ext.DaemonSetStatus.updatedNumberScheduled"),
         DocCol("Available", "integer", "ext.DaemonSetStatus.numberAvailable"),
         DocCol("Node Selector", "string", "core.PodSpec.nodeSelector"), AgeColumn(),
         ContainersColumn(), ImagesColumn(),
         DocCol("Selector", "string", "ext.DaemonSetSpec.selector", 1)},
        DaemonSetCells}},
      {{"batch", "jobs"},
       {{NameColumn(), Col("Status", "string", "Status of the job."),
         DocCol("Completions", "string", "batch.JobStatus.succeeded"),
         Col("Duration", "string", "Time required to complete the job."), AgeColumn(),
         ContainersColumn(), ImagesColumn(),
         DocCol("Selector", "string", "batch.JobSpec.selector", 1)},
        JobCells}},
      {{"batch", "cronjobs"},
       {{NameColumn(), DocCol("Schedule", "string", "batchb.CronJobSpec.schedule"),
         DocCol("Timezone", "string", "batchb.CronJobSpec.timeZone"),
         DocCol("Suspend", "boolean", "batchb.CronJobSpec.suspend"),
         DocCol("Active", "integer", "batchb.CronJobStatus.active"),
         DocCol("Last Schedule", "string", "batchb.CronJobStatus.lastScheduleTime"), AgeColumn(),
         ContainersColumn(), ImagesColumn(),
         DocCol("Selector", "string", "batch.JobSpec.selector", 1)},
        CronJobCells}},
      {{"", "services"},
       {{NameColumn(), DocCol("Type", "string", "core.ServiceSpec.type"),
         DocCol("Cluster-IP", "string", "core.ServiceSpec.clusterIP"),
         DocCol("External-IP", "string", "core.ServiceSpec.externalIPs"),
         DocCol("Port(s)", "string", "core.ServiceSpec.ports"), AgeColumn(),
         DocCol("Selector", "string", "core.ServiceSpec.selector", 1)},
        ServiceCells}},
      {{"networking.k8s.io", "ingresses"},
       {{NameColumn(),
         Col("Class", "string",
             "The name of the IngressClass resource that should be used for additional "
             "configuration"),
         Col("Hosts", "string",
             "Hosts that incoming requests are matched against before the ingress rule"),
         Col("Address", "string",
             "Address is a list containing ingress points for the load-balancer"),
         Col("Ports", "string", "Ports of TLS configurations that open"), AgeColumn()},
        IngressCells}},
      {{"networking.k8s.io", "ingressclasses"},
       {{NameColumn(),
         Col("Controller", "string", "Controller that is responsible for handling this class"),
         Col("Parameters", "string", "A reference to a resource with additional parameters"),
         AgeColumn()},
        IngressClassCells}},
      {{"apps", "statefulsets"},
       {{NameColumn(), Col("Ready", "string", "Number of the pod with ready state"), AgeColumn(),
         ContainersColumn(), ImagesColumn()},
        StatefulSetCells}},
      {{"", "endpoints"},
       {{NameColumn(), DocCol("Endpoints", "string", "core.Endpoints.subsets"), AgeColumn()},
        [](const json& ep, Clock::time_point now, json&) -> Cells {
          return {Str(Field(ep, {"metadata", "name"})), EndpointsString(ep), Age(ep, now)};
        }}},
      {{"", "nodes"},
       {{NameColumn(), Col("Status", "string", "The status of the node"),
         Col("Roles", "string", "The roles of the node"), AgeColumn(),
         DocCol("Version", "string", "core.NodeSystemInfo.kubeletVersion"),
         DocCol("Internal-IP", "string", "core.NodeStatus.addresses", 1),
         DocCol("External-IP", "string", "core.NodeStatus.addresses", 1),
         DocCol("OS-Image", "string", "core.NodeSystemInfo.osImage", 1),
         DocCol("Kernel-Version", "string", "core.NodeSystemInfo.kernelVersion", 1),
         DocCol("Container-Runtime", "string", "core.NodeSystemInfo.containerRuntimeVersion", 1)},
        NodeCells}},
      {{"", "events"},
       {{DocCol("Last Seen", "string", "core.Event.lastTimestamp"),
         DocCol("Type", "string", "core.Event.type"),
         DocCol("Reason", "string", "core.Event.reason"),
         DocCol("Object", "string", "core.Event.involvedObject"),
         DocCol("Subobject", "string", "core.ObjectReference.fieldPath", 1),
         DocCol("Source", "string", "core.Event.source", 1),
         DocCol("Message", "string", "core.Event.message"),
         DocCol("First Seen", "string", "core.Event.firstTimestamp", 1),
         DocCol("Count", "string", "core.Event.count", 1),
         {"Name", "string", "name", std::string(Doc("meta.ObjectMeta.name")), 1}},
        EventCells}},
      {{"", "namespaces"},
       {{NameColumn(), Col("Status", "string", "The status of the namespace"), AgeColumn()},
        NamespaceCells}},
      {{"", "secrets"},
       {{NameColumn(), DocCol("Type", "string", "core.Secret.type"),
         DocCol("Data", "string", "core.Secret.data"), AgeColumn()},
        SecretCells}},
      {{"", "serviceaccounts"},
       {{NameColumn(), DocCol("Secrets", "string", "core.ServiceAccount.secrets"), AgeColumn()},
        ServiceAccountCells}},
      {{"", "persistentvolumes"},
       {{NameColumn(), DocCol("Capacity", "string", "core.PersistentVolumeSpec.capacity"),
         DocCol("Access Modes", "string", "core.PersistentVolumeSpec.accessModes"),
         DocCol("Reclaim Policy", "string",
                "core.PersistentVolumeSpec.persistentVolumeReclaimPolicy"),
         DocCol("Status", "string", "core.PersistentVolumeStatus.phase"),
         DocCol("Claim", "string", "core.PersistentVolumeSpec.claimRef"),
         Col("StorageClass", "string", "StorageClass of the pv"),
         Col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
         DocCol("Reason", "string", "core.PersistentVolumeStatus.reason"), AgeColumn(),
         DocCol("VolumeMode", "string", "core.PersistentVolumeSpec.volumeMode", 1)},
        PersistentVolumeCells}},
      {{"", "persistentvolumeclaims"},
       {{NameColumn(), DocCol("Status", "string", "core.PersistentVolumeClaimStatus.phase"),
         DocCol("Volume", "string", "core.PersistentVolumeClaimSpec.volumeName"),
         DocCol("Capacity", "string", "core.PersistentVolumeClaimStatus.capacity"),
         DocCol("Access Modes", "string", "core.PersistentVolumeClaimStatus.accessModes"),
         Col("StorageClass", "string", "StorageClass of the pvc"),
         Col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"), AgeColumn(),
         DocCol("VolumeMode", "string", "core.PersistentVolumeClaimSpec.volumeMode", 1)},
        PersistentVolumeClaimCells}},
      {{"apps", "deployments"},
       {{NameColumn(), Col("Ready", "string", "Number of the pod with ready state"),
         DocCol("Up-to-date", "string", "ext.DeploymentStatus.updatedReplicas"),
         DocCol("Available", "string", "ext.DeploymentStatus.availableReplicas"), AgeColumn(),
         ContainersColumn(), ImagesColumn(),
         DocCol("Selector", "string", "ext.DeploymentSpec.selector", 1)},
        DeploymentCells}},
      {{"autoscaling", "horizontalpodautoscalers"},
       {{NameColumn(),
         DocCol("Reference", "string", "hpa.HorizontalPodAutoscalerSpec.scaleTargetRef"),
         DocCol("Targets", "string", "hpa.HorizontalPodAutoscalerSpec.metrics"),
         DocCol("MinPods", "string", "hpa.HorizontalPodAutoscalerSpec.minReplicas"),
         DocCol("MaxPods", "string", "hpa.HorizontalPodAutoscalerSpec.maxReplicas"),
         DocCol("Replicas", "string", "hpa.HorizontalPodAutoscalerStatus.currentReplicas"),
         AgeColumn()},
        HpaCells}},
      {{"", "configmaps"},
       {{NameColumn(), DocCol("Data", "string", "core.ConfigMap.data"), AgeColumn()},
        ConfigMapCells}},
      {{"networking.k8s.io", "networkpolicies"},
       {{NameColumn(), DocCol("Pod-Selector", "string", "ext.NetworkPolicySpec.podSelector"),
         AgeColumn()},
        NetworkPolicyCells}},
      {{"rbac.authorization.k8s.io", "rolebindings"},
       {{NameColumn(), DocCol("Role", "string", "rbacb.RoleBinding.roleRef"), AgeColumn(),
         Col("Users", "string", "Users in the roleBinding", 1),
         Col("Groups", "string", "Groups in the roleBinding", 1),
         Col("ServiceAccounts", "string", "ServiceAccounts in the roleBinding", 1)},
        RoleBindingCells}},
      {{"rbac.authorization.k8s.io", "clusterrolebindings"},
       {{NameColumn(), DocCol("Role", "string", "rbacb.ClusterRoleBinding.roleRef"), AgeColumn(),
         Col("Users", "string", "Users in the clusterRoleBinding", 1),
         Col("Groups", "string", "Groups in the clusterRoleBinding", 1),
         Col("ServiceAccounts", "string", "ServiceAccounts in the clusterRoleBinding", 1)},
        RoleBindingCells}},
      {{"coordination.k8s.io", "leases"},
       {{NameColumn(), DocCol("Holder", "string", "coord.LeaseSpec.holderIdentity"), AgeColumn()},
        LeaseCells}},
      {{"storage.k8s.io", "storageclasses"},
       {{NameColumn(), DocCol("Provisioner", "string", "storage.StorageClass.provisioner"),
         DocCol("ReclaimPolicy", "string", "storage.StorageClass.reclaimPolicy"),
         DocCol("VolumeBindingMode", "string", "storage.StorageClass.volumeBindingMode"),
         DocCol("AllowVolumeExpansion", "string", "storage.StorageClass.allowVolumeExpansion"),
         AgeColumn()},
        StorageClassCells}},
      {{"apps", "controllerrevisions"},
       {{NameColumn(), Col("Controller", "string", "Controller of the object"),
         DocCol("Revision", "string", "appsb.ControllerRevision.revision"), AgeColumn()},
        ControllerRevisionCells}},
      {{"", "resourcequotas"},
       {{NameColumn(),
         Col("Request", "string",
             "Request represents a minimum amount of cpu/memory that a container may consume."),
         Col("Limit", "string",
             "Limits control the maximum amount of cpu/memory that a container may use "
             "independent of contention on the node."),
         AgeColumn()},
        ResourceQuotaCells}},
      {{"scheduling.k8s.io", "priorityclasses"},
       {{NameColumn(), DocCol("Value", "integer", "sched.PriorityClass.value"),
         DocCol("Global-Default", "boolean", "sched.PriorityClass.globalDefault"), AgeColumn(),
         DocCol("PreemptionPolicy", "string", "sched.PriorityClass.preemptionPolicy")},
        PriorityClassCells}},
      {{"node.k8s.io", "runtimeclasses"},
       {{NameColumn(), Col("Handler", "string", ""), AgeColumn()}, RuntimeClassCells}},
      {{"discovery.k8s.io", "endpointslices"},
       {{NameColumn(), DocCol("AddressType", "string", "discb.EndpointSlice.addressType"),
         DocCol("Ports", "string", "discb.EndpointSlice.ports"),
         DocCol("Endpoints", "string", "discb.EndpointSlice.endpoints"), AgeColumn()},
        EndpointSliceCells}},
      {{"admissionregistration.k8s.io", "mutatingwebhookconfigurations"},
       {{NameColumn(),
         Col("Webhooks", "integer",
             "Webhooks indicates the number of webhooks registered in this configuration"),
         AgeColumn()},
        WebhookConfigurationCells}},
      {{"admissionregistration.k8s.io", "validatingwebhookconfigurations"},
       {{NameColumn(),
         Col("Webhooks", "integer",
             "Webhooks indicates the number of webhooks registered in this configuration"),
         AgeColumn()},
        WebhookConfigurationCells}},
  };
  return *kPrinters;
}

// Resources upstream serves with its default table convertor (no printer of their own).
bool UsesDefaultConvertor(const std::string& group, const std::string& resource) {
  static const std::set<std::pair<std::string, std::string>> kDefault = {
      {"", "limitranges"},
      {"rbac.authorization.k8s.io", "roles"},
      {"rbac.authorization.k8s.io", "clusterroles"},
      {"apiextensions.k8s.io", "customresourcedefinitions"},
  };
  return kDefault.count({group, resource}) != 0;
}

// ---------------------------------------------------------------------------------------------
// JSONPath.

using Step = JsonPath::Step;
using StepPtr = std::shared_ptr<const Step>;

class PathParser {
 public:
  explicit PathParser(std::string_view s) : s_(s) {}

  Result<std::vector<StepPtr>> ParseRoot() {
    SkipSpace();
    bool braces = Peek() == '{';
    if (braces) ++pos_;
    SkipSpace();
    if (Peek() == '$' || Peek() == '@') ++pos_;
    Result<std::vector<StepPtr>> steps = ParseSteps(/*in_filter=*/false);
    if (!steps.ok()) return steps;
    SkipSpace();
    if (braces) {
      if (Peek() != '}') return Error();
      ++pos_;
      SkipSpace();
    }
    if (pos_ != s_.size()) return Error();
    return steps;
  }

 private:
  char Peek(size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  Status Error() const {
    return InvalidArgument(fmt::format("unrecognized JSONPath expression {}", std::string(s_)));
  }

  static bool Terminates(char c) {
    return std::string_view(".[]{}()=!<>,|& \t").find(c) != std::string_view::npos || c == '\0';
  }

  Result<std::vector<StepPtr>> ParseSteps(bool in_filter) {
    std::vector<StepPtr> steps;
    while (pos_ < s_.size()) {
      char c = Peek();
      if (c == '.') {
        ++pos_;
        if (Peek() == '.') return Error();  // recursive descent is not supported
        auto step = std::make_shared<Step>();
        if (Peek() == '*' && !in_filter) {
          ++pos_;
          step->kind = Step::Kind::kWildcard;
        } else {
          std::string name;
          while (!Terminates(Peek())) {
            if (Peek() == '\\' && pos_ + 1 < s_.size()) ++pos_;
            name += s_[pos_++];
          }
          if (name.empty()) return Error();
          step->field = std::move(name);
        }
        steps.push_back(std::move(step));
      } else if (c == '[') {
        ++pos_;
        Result<StepPtr> step = ParseBracket(in_filter);
        if (!step.ok()) return step.status();
        steps.push_back(std::move(*step));
      } else {
        break;
      }
    }
    return steps;
  }

  Result<std::string> ParseQuoted() {
    const char quote = Peek();
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) return Error();
    ++pos_;
    return out;
  }

  std::optional<json> ParseNumber() {
    size_t start = pos_;
    if (Peek() == '-' || Peek() == '+') ++pos_;
    bool is_float = false;
    while (pos_ < s_.size() &&
           (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.')) {
      is_float = is_float || s_[pos_] == '.';
      ++pos_;
    }
    std::string text(s_.substr(start, pos_ - start));
    if (text.empty() || text == "-" || text == "+") return std::nullopt;
    try {
      if (is_float) return json(std::stod(text));
      return json(static_cast<int64_t>(std::stoll(text)));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  Result<StepPtr> ParseBracket(bool in_filter) {
    SkipSpace();
    auto step = std::make_shared<Step>();
    char c = Peek();
    if (c == '*') {
      ++pos_;
      step->kind = Step::Kind::kWildcard;
    } else if (c == '\'' || c == '"') {
      Result<std::string> name = ParseQuoted();
      if (!name.ok()) return name.status();
      step->field = std::move(*name);
    } else if (c == '?' && !in_filter) {
      ++pos_;
      SkipSpace();
      if (Peek() != '(') return Error();
      ++pos_;
      SkipSpace();
      if (Peek() != '@') return Error();
      ++pos_;
      step->kind = Step::Kind::kFilter;
      Result<std::vector<StepPtr>> lhs = ParseSteps(/*in_filter=*/true);
      if (!lhs.ok()) return lhs.status();
      step->lhs = std::move(*lhs);
      SkipSpace();
      for (std::string_view op : {"==", "!=", "<=", ">=", "<", ">"}) {
        if (s_.substr(pos_).starts_with(op)) {
          step->op = std::string(op);
          pos_ += op.size();
          break;
        }
      }
      if (!step->op.empty()) {
        SkipSpace();
        if (Peek() == '\'' || Peek() == '"') {
          Result<std::string> literal = ParseQuoted();
          if (!literal.ok()) return literal.status();
          step->literal = std::move(*literal);
        } else if (s_.substr(pos_).starts_with("true")) {
          step->literal = true;
          pos_ += 4;
        } else if (s_.substr(pos_).starts_with("false")) {
          step->literal = false;
          pos_ += 5;
        } else if (std::optional<json> number = ParseNumber()) {
          step->literal = std::move(*number);
        } else {
          return Error();
        }
      }
      SkipSpace();
      if (Peek() != ')') return Error();
      ++pos_;
    } else {
      std::optional<json> number = ParseNumber();
      if (!number || !number->is_number_integer()) return Error();
      step->kind = Step::Kind::kIndex;
      step->index = number->get<int64_t>();
    }
    SkipSpace();
    if (Peek() != ']') return Error();
    ++pos_;
    return StepPtr(std::move(step));
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// template.Equal/Less on two JSON scalars; nullopt when they cannot be compared.
std::optional<bool> CompareJson(const json& a, const std::string& op, const json& b) {
  int cmp = 0;
  if (a.is_string() && b.is_string()) {
    const auto& x = a.get_ref<const std::string&>();
    const auto& y = b.get_ref<const std::string&>();
    cmp = x < y ? -1 : (x > y ? 1 : 0);
  } else if (a.is_number_integer() && b.is_number_integer()) {
    int64_t x = a.get<int64_t>(), y = b.get<int64_t>();
    cmp = x < y ? -1 : (x > y ? 1 : 0);
  } else if (a.is_number_float() && b.is_number_float()) {
    double x = a.get<double>(), y = b.get<double>();
    cmp = x < y ? -1 : (x > y ? 1 : 0);
  } else if (a.is_boolean() && b.is_boolean() && (op == "==" || op == "!=")) {
    cmp = a.get<bool>() == b.get<bool>() ? 0 : 1;
  } else {
    return std::nullopt;
  }
  if (op == "==") return cmp == 0;
  if (op == "!=") return cmp != 0;
  if (op == "<") return cmp < 0;
  if (op == "<=") return cmp <= 0;
  if (op == ">") return cmp > 0;
  return cmp >= 0;
}

// Applies the steps; nullopt when evaluation fails as a whole (a filter that cannot compare).
std::optional<std::vector<const json*>> Evaluate(const std::vector<StepPtr>& steps,
                                                 std::vector<const json*> current) {
  for (const StepPtr& step : steps) {
    std::vector<const json*> next;
    for (const json* node : current) {
      switch (step->kind) {
        case Step::Kind::kField:
          if (node->is_object()) {
            auto it = node->find(step->field);
            if (it != node->end()) next.push_back(&*it);
          }
          break;
        case Step::Kind::kIndex:
          if (node->is_array()) {
            int64_t i =
                step->index < 0 ? step->index + static_cast<int64_t>(node->size()) : step->index;
            if (i >= 0 && i < static_cast<int64_t>(node->size())) {
              next.push_back(&(*node)[static_cast<size_t>(i)]);
            }
          }
          break;
        case Step::Kind::kWildcard:
          if (node->is_array() || node->is_object()) {
            for (const json& child : *node) next.push_back(&child);
          }
          break;
        case Step::Kind::kFilter:
          if (!node->is_array()) break;
          for (const json& element : *node) {
            std::optional<std::vector<const json*>> lhs = Evaluate(step->lhs, {&element});
            if (!lhs) return std::nullopt;
            if (step->op.empty()) {
              if (!lhs->empty()) next.push_back(&element);
              continue;
            }
            if (lhs->size() != 1) return std::nullopt;  // "can only compare one element at a time"
            std::optional<bool> pass = CompareJson(*(*lhs)[0], step->op, step->literal);
            if (!pass) return std::nullopt;
            if (*pass) next.push_back(&element);
          }
          break;
      }
    }
    current = std::move(next);
  }
  return current;
}

// ---------------------------------------------------------------------------------------------
// Rows.

json RowObject(const json& obj, IncludeObject include) {
  switch (include) {
    case IncludeObject::kNone:
      return nullptr;
    case IncludeObject::kObject:
      return obj;
    case IncludeObject::kMetadata:
      break;
  }
  const json& metadata = Field(obj, {"metadata"});
  return {{"kind", "PartialObjectMetadata"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", metadata.is_object() ? metadata : json::object()}};
}

Status CheckObjects(const std::vector<const json*>& objects) {
  for (const json* obj : objects) {
    if (obj == nullptr || !obj->is_object()) return InvalidArgument("table rows must be objects");
  }
  return Status::Ok();
}

json EmptyTable(const std::vector<Column>& columns) {
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", json::object()},
          {"columnDefinitions", ColumnsJson(columns)},
          {"rows", json::array()}};
}

// A CRD column's cell (tableconvertor.ConvertToTable and cellForJSONValue).
json CustomCell(const JsonPath& path, const std::string& type, const json& obj,
                Clock::time_point now) {
  std::vector<const json*> results = path.Find(obj);
  if (results.empty()) return nullptr;
  const json& value = *results[0];
  if (value.is_null()) return nullptr;
  if (type == "string") {
    if (value.is_string()) return value;
    if (value.is_object() || value.is_array()) return value.dump();
    if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
    if (value.is_number_integer()) return value.dump();
    if (value.is_number_float()) return GoFloat(value.get<double>());
    return nullptr;
  }
  if (type == "integer") {
    if (value.is_number_integer()) return value.get<int64_t>();
    if (value.is_number_float()) return static_cast<int64_t>(value.get<double>());
    return nullptr;
  }
  if (type == "number") {
    if (value.is_number()) return value.get<double>();
    return nullptr;
  }
  if (type == "boolean") {
    if (value.is_boolean()) return value;
    return nullptr;
  }
  if (type == "date") {
    if (!value.is_string()) return nullptr;
    const std::string& text = value.get_ref<const std::string&>();
    if (text.empty() || text == "null") return "<unknown>";
    std::optional<int64_t> t = ParseTimestampNanos(text);
    if (!t) return "<invalid>";
    if (*t == std::numeric_limits<int64_t>::min()) return "<unknown>";
    return HumanSince(*t, now);
  }
  return nullptr;
}

}  // namespace

// -------------------------------------------------------------------------------------------------

Result<IncludeObject> ParseIncludeObject(std::string_view value) {
  if (value.empty() || value == "Metadata") return IncludeObject::kMetadata;
  if (value == "Object") return IncludeObject::kObject;
  if (value == "None") return IncludeObject::kNone;
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return InvalidArgument("unrecognized includeObject value: " + quoted + "\"");
}

std::string HumanDuration(std::chrono::nanoseconds d) {
  const int64_t ns = d.count();
  const int64_t seconds = ns / kNanosPerSecond;
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return fmt::format("{}s", seconds);
  const int64_t minutes = ns / (60 * kNanosPerSecond);
  if (minutes < 10) {
    const int64_t s = seconds % 60;
    return s == 0 ? fmt::format("{}m", minutes) : fmt::format("{}m{}s", minutes, s);
  }
  if (minutes < 60 * 3) return fmt::format("{}m", minutes);
  const int64_t hours = ns / (3600 * kNanosPerSecond);
  if (hours < 8) {
    const int64_t m = minutes % 60;
    return m == 0 ? fmt::format("{}h", hours) : fmt::format("{}h{}m", hours, m);
  }
  if (hours < 48) return fmt::format("{}h", hours);
  if (hours < 24 * 8) {
    const int64_t h = hours % 24;
    return h == 0 ? fmt::format("{}d", hours / 24) : fmt::format("{}d{}h", hours / 24, h);
  }
  if (hours < 24 * 365 * 2) return fmt::format("{}d", hours / 24);
  if (hours < 24 * 365 * 8) {
    const int64_t dy = hours / 24 % 365;
    return dy == 0 ? fmt::format("{}y", hours / 24 / 365)
                   : fmt::format("{}y{}d", hours / 24 / 365, dy);
  }
  return fmt::format("{}y", hours / 24 / 365);
}

Result<JsonPath> JsonPath::Parse(std::string_view expression) {
  Result<std::vector<std::shared_ptr<const Step>>> steps = PathParser(expression).ParseRoot();
  if (!steps.ok()) return steps.status();
  JsonPath path;
  path.steps_ = std::move(*steps);
  return path;
}

std::vector<const json*> JsonPath::Find(const json& root) const {
  std::optional<std::vector<const json*>> found = Evaluate(steps_, {&root});
  return found ? std::move(*found) : std::vector<const json*>();
}

Result<json> BuildTable(const std::string& resource, const std::string& group,
                        const std::vector<const json*>& objects, IncludeObject include,
                        std::chrono::system_clock::time_point now) {
  if (Status s = CheckObjects(objects); !s.ok()) return s;
  const Printer* printer = nullptr;
  auto it = Printers().find({group, resource});
  static const Printer kNameAge{{NameColumn(), AgeColumn()}, NameAgeCells};
  static const Printer kNameCreatedAt{
      {NameColumn(),
       {"Created At", "date", "", std::string(Doc("meta.ObjectMeta.creationTimestamp"))}},
      NameCreatedAtCells};
  if (it != Printers().end()) {
    printer = &it->second;
  } else if (group == "events.k8s.io" && resource == "events") {
    printer = &Printers().at({"", "events"});
  } else if (UsesDefaultConvertor(group, resource)) {
    printer = &kNameCreatedAt;
  } else {
    printer = &kNameAge;
  }
  json table = EmptyTable(printer->columns);
  json& rows = table["rows"];
  for (const json* obj : objects) {
    json conditions;
    json row = {{"cells", printer->cells(*obj, now, conditions)}};
    if (!conditions.is_null()) row["conditions"] = std::move(conditions);
    row["object"] = RowObject(*obj, include);
    rows.push_back(std::move(row));
  }
  return table;
}

Result<json> BuildCustomResourceTable(const json& printer_columns,
                                      const std::vector<const json*>& objects,
                                      IncludeObject include,
                                      std::chrono::system_clock::time_point now) {
  if (Status s = CheckObjects(objects); !s.ok()) return s;
  json definitions = printer_columns;
  if (!definitions.is_array() || definitions.empty()) {
    definitions =
        json::array({{{"name", "Age"},
                      {"type", "date"},
                      {"description", std::string(Doc("meta.ObjectMeta.creationTimestamp"))},
                      {"jsonPath", ".metadata.creationTimestamp"}}});
  }
  std::vector<Column> columns = {NameColumn()};
  std::vector<JsonPath> paths;
  for (const json& def : definitions) {
    const std::string json_path = Str(Field(def, {"jsonPath"}));
    Result<JsonPath> path = JsonPath::Parse(json_path);
    if (!path.ok()) break;  // upstream keeps the columns before an unparsable one
    std::string description = Str(Field(def, {"description"}));
    if (description.empty()) {
      description = "Custom resource definition column (in JSONPath format): " + json_path;
    }
    columns.push_back({Str(Field(def, {"name"})), Str(Field(def, {"type"})),
                       Str(Field(def, {"format"})), description,
                       static_cast<int>(Int(Field(def, {"priority"})))});
    paths.push_back(std::move(*path));
  }
  json table = EmptyTable(columns);
  json& rows = table["rows"];
  for (const json* obj : objects) {
    json cells = json::array({Str(Field(*obj, {"metadata", "name"}))});
    for (size_t i = 0; i < paths.size(); ++i) {
      cells.push_back(CustomCell(paths[i], columns[i + 1].type, *obj, now));
    }
    rows.push_back({{"cells", std::move(cells)}, {"object", RowObject(*obj, include)}});
  }
  return table;
}

}  // namespace orch::api
