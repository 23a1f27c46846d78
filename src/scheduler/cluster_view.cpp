// Parsing of Pod and Node JSON into the scheduler's typed views, and label/node selector matching
// with the semantics of k8s.io/apimachinery labels and the core/v1 node affinity helpers.
#include "cluster_view.h"

#include <algorithm>
#include <functional>

#include "orch/json_path.h"
#include "orch/quantity.h"

namespace orch::sched {
namespace {

using nlohmann::json;

using json_path::Field;
using json_path::String;

std::vector<std::string> Strings(const json& list) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  for (const json& item : list) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

// A resource list ({"cpu": "100m", "memory": "1Gi", ...}) into `out`, adding to what is there.
// Unparsable quantities count as zero: the API server validated them already.
void AddResourceList(const json& list, Resources* out, bool* has_cpu, bool* has_memory) {
  if (!list.is_object()) return;
  for (auto it = list.begin(); it != list.end(); ++it) {
    Result<Quantity> q = Quantity::FromJson(it.value());
    if (!q.ok()) continue;
    const std::string& name = it.key();
    if (name == "cpu") {
      out->milli_cpu += q->MilliValue();
      if (has_cpu) *has_cpu = true;
    } else if (name == "memory") {
      out->memory += q->Value();
      if (has_memory) *has_memory = true;
    } else if (name == "ephemeral-storage") {
      out->ephemeral_storage += q->Value();
    } else if (name == "pods") {
      // Not a per-pod request; allocatable pods is read separately.
    } else {
      out->AddScalar(name, q->Value());
    }
  }
}

// One container's requests, with limits standing in for requests that are not given (the API
// server's defaulting does the same), and the non-zero cpu/memory used for scoring.
struct ContainerRequests {
  Resources requests;
  int64_t non_zero_cpu = 0;
  int64_t non_zero_memory = 0;
};

constexpr int64_t kDefaultMilliCpuRequest = 100;                // upstream DefaultMilliCPURequest
constexpr int64_t kDefaultMemoryRequest = 200LL * 1024 * 1024;  // upstream DefaultMemoryRequest

ContainerRequests ParseContainerRequests(const json& container) {
  ContainerRequests out;
  const json& resources = Field(container, "resources");
  const json& requests = Field(resources, "requests");
  const json& limits = Field(resources, "limits");
  bool has_cpu = false;
  bool has_memory = false;
  AddResourceList(requests, &out.requests, &has_cpu, &has_memory);
  if (limits.is_object()) {
    json missing = json::object();
    for (auto it = limits.begin(); it != limits.end(); ++it) {
      if (!requests.is_object() || !requests.contains(it.key())) missing[it.key()] = it.value();
    }
    AddResourceList(missing, &out.requests, &has_cpu, &has_memory);
  }
  out.non_zero_cpu = has_cpu ? out.requests.milli_cpu : kDefaultMilliCpuRequest;
  out.non_zero_memory = has_memory ? out.requests.memory : kDefaultMemoryRequest;
  return out;
}

void AddHostPorts(const json& container, std::vector<HostPort>* out) {
  const json& ports = Field(container, "ports");
  if (!ports.is_array()) return;
  for (const json& port : ports) {
    const json& host_port = Field(port, "hostPort");
    if (!host_port.is_number_integer() || host_port.get<int64_t>() <= 0) continue;
    HostPort hp;
    hp.port = static_cast<int32_t>(host_port.get<int64_t>());
    std::string protocol = String(port, "protocol");
    if (!protocol.empty()) hp.protocol = protocol;
    std::string ip = String(port, "hostIP");
    if (!ip.empty()) hp.host_ip = ip;
    out->push_back(std::move(hp));
  }
}

// Requests of the whole pod: the larger of (containers + sidecars) and the peak while init
// containers run one by one (each next to the sidecars started before it), plus the overhead.
void ComputePodRequests(const json& spec, PodView* pod) {
  Resources regular;
  int64_t regular_cpu = 0;
  int64_t regular_memory = 0;
  const json& containers = Field(spec, "containers");
  if (containers.is_array()) {
    for (const json& c : containers) {
      ContainerRequests r = ParseContainerRequests(c);
      regular.Add(r.requests);
      regular_cpu += r.non_zero_cpu;
      regular_memory += r.non_zero_memory;
      AddHostPorts(c, &pod->host_ports);
    }
  }
  Resources sidecars;
  int64_t sidecar_cpu = 0;
  int64_t sidecar_memory = 0;
  Resources init_peak;
  int64_t init_peak_cpu = 0;
  int64_t init_peak_memory = 0;
  const json& init = Field(spec, "initContainers");
  if (init.is_array()) {
    for (const json& c : init) {
      ContainerRequests r = ParseContainerRequests(c);
      Resources during = r.requests;
      int64_t during_cpu = r.non_zero_cpu;
      int64_t during_memory = r.non_zero_memory;
      if (String(c, "restartPolicy") == "Always") {
        sidecars.Add(r.requests);
        sidecar_cpu += r.non_zero_cpu;
        sidecar_memory += r.non_zero_memory;
        during = sidecars;
        during_cpu = sidecar_cpu;
        during_memory = sidecar_memory;
        AddHostPorts(c, &pod->host_ports);
      } else {
        during.Add(sidecars);
        during_cpu += sidecar_cpu;
        during_memory += sidecar_memory;
      }
      init_peak.Max(during);
      init_peak_cpu = std::max(init_peak_cpu, during_cpu);
      init_peak_memory = std::max(init_peak_memory, during_memory);
    }
  }
  Resources total = regular;
  total.Add(sidecars);
  total.Max(init_peak);
  int64_t cpu = std::max(regular_cpu + sidecar_cpu, init_peak_cpu);
  int64_t memory = std::max(regular_memory + sidecar_memory, init_peak_memory);
  const json& overhead = Field(spec, "overhead");
  if (overhead.is_object()) {
    Resources extra;
    AddResourceList(overhead, &extra, nullptr, nullptr);
    total.Add(extra);
    cpu += extra.milli_cpu;
    memory += extra.memory;
  }
  pod->requests = std::move(total);
  pod->non_zero_milli_cpu = cpu;
  pod->non_zero_memory = memory;
}

// A PodAffinityTerm; matchLabelKeys / mismatchLabelKeys take the owning pod's label values.
AffinityTerm ParseAffinityTerm(const json& term, const Labels& own_labels, int32_t weight) {
  AffinityTerm out;
  out.selector = SelectorFromJson(Field(term, "labelSelector"));
  out.namespaces = Strings(Field(term, "namespaces"));
  const json& ns_selector = Field(term, "namespaceSelector");
  if (ns_selector.is_object()) {
    out.has_namespace_selector = true;
    out.namespace_selector = SelectorFromJson(ns_selector);
  }
  out.topology_key = String(term, "topologyKey");
  out.weight = weight;
  if (!out.selector.IsNothing()) {
    for (const std::string& key : Strings(Field(term, "matchLabelKeys"))) {
      if (const std::string* v = own_labels.Find(key))
        out.selector.Add({key, LabelSelector::Op::kIn, {*v}});
    }
    for (const std::string& key : Strings(Field(term, "mismatchLabelKeys"))) {
      if (const std::string* v = own_labels.Find(key))
        out.selector.Add({key, LabelSelector::Op::kNotIn, {*v}});
    }
  }
  return out;
}

void ParsePodAffinity(const json& affinity, const Labels& own_labels,
                      std::vector<AffinityTerm>* required, std::vector<AffinityTerm>* preferred) {
  const json& req = Field(affinity, "requiredDuringSchedulingIgnoredDuringExecution");
  if (req.is_array()) {
    for (const json& term : req) required->push_back(ParseAffinityTerm(term, own_labels, 0));
  }
  const json& pref = Field(affinity, "preferredDuringSchedulingIgnoredDuringExecution");
  if (pref.is_array()) {
    for (const json& weighted : pref) {
      const json& w = Field(weighted, "weight");
      int32_t weight = w.is_number_integer() ? static_cast<int32_t>(w.get<int64_t>()) : 0;
      preferred->push_back(
          ParseAffinityTerm(Field(weighted, "podAffinityTerm"), own_labels, weight));
    }
  }
}

bool ResourcesEqual(const Resources& a, const Resources& b) {
  return a.milli_cpu == b.milli_cpu && a.memory == b.memory &&
         a.ephemeral_storage == b.ephemeral_storage && a.scalars == b.scalars;
}

}  // namespace

// ----- Label selectors -----

LabelSelector SelectorFromJson(const json& selector) {
  Result<LabelSelector> parsed = LabelSelector::FromJson(selector);
  return parsed.ok() ? std::move(parsed).value() : LabelSelector::Nothing();
}

// ----- Resources -----

int64_t Resources::Scalar(std::string_view name) const {
  for (const auto& [n, v] : scalars) {
    if (n == name) return v;
  }
  return 0;
}

void Resources::AddScalar(const std::string& name, int64_t amount) {
  auto it = std::lower_bound(scalars.begin(), scalars.end(), name,
                             [](const auto& item, const std::string& n) { return item.first < n; });
  if (it != scalars.end() && it->first == name) {
    it->second += amount;
  } else {
    scalars.emplace(it, name, amount);
  }
}

void Resources::Add(const Resources& other) {
  milli_cpu += other.milli_cpu;
  memory += other.memory;
  ephemeral_storage += other.ephemeral_storage;
  for (const auto& [name, v] : other.scalars) AddScalar(name, v);
}

void Resources::Sub(const Resources& other) {
  milli_cpu -= other.milli_cpu;
  memory -= other.memory;
  ephemeral_storage -= other.ephemeral_storage;
  for (const auto& [name, v] : other.scalars) AddScalar(name, -v);
}

void Resources::Max(const Resources& other) {
  milli_cpu = std::max(milli_cpu, other.milli_cpu);
  memory = std::max(memory, other.memory);
  ephemeral_storage = std::max(ephemeral_storage, other.ephemeral_storage);
  for (const auto& [name, v] : other.scalars) {
    int64_t have = Scalar(name);
    if (v > have) AddScalar(name, v - have);
  }
}

bool Resources::IsZero() const {
  if (milli_cpu != 0 || memory != 0 || ephemeral_storage != 0) return false;
  for (const auto& [name, v] : scalars) {
    if (v != 0) return false;
  }
  return true;
}

bool HostPort::ConflictsWith(const HostPort& other) const {
  if (port != other.port || protocol != other.protocol) return false;
  return host_ip == other.host_ip || host_ip == "0.0.0.0" || other.host_ip == "0.0.0.0";
}

// ----- Pods -----

PodPtr ParsePod(const json& pod) {
  auto view = std::make_shared<PodView>();
  const json& meta = Field(pod, "metadata");
  const json& spec = Field(pod, "spec");
  const json& status = Field(pod, "status");
  view->ns = String(meta, "namespace");
  view->name = String(meta, "name");
  view->uid = String(meta, "uid");
  view->resource_version = String(meta, "resourceVersion");
  view->key = view->ns.empty() ? view->name : view->ns + "/" + view->name;
  const json& deletion = Field(meta, "deletionTimestamp");
  view->deleting = !deletion.is_null();
  view->labels = Labels::FromJson(Field(meta, "labels"));
  const json& owners = Field(meta, "ownerReferences");
  if (owners.is_array()) {
    for (const json& owner : owners) {
      const json& controller = Field(owner, "controller");
      if (controller.is_boolean() && controller.get<bool>()) {
        view->owner_uid = String(owner, "uid");
        break;
      }
    }
  }

  view->node_name = String(spec, "nodeName");
  view->scheduler_name = String(spec, "schedulerName");
  const json& priority = Field(spec, "priority");
  if (priority.is_number_integer()) {
    view->priority = static_cast<int32_t>(priority.get<int64_t>());
  } else {
    // The priority admission plugin fills spec.priority; the two built-in classes are known.
    std::string class_name = String(spec, "priorityClassName");
    if (class_name == "system-node-critical") view->priority = 2000001000;
    if (class_name == "system-cluster-critical") view->priority = 2000000000;
  }
  view->preempt_never = String(spec, "preemptionPolicy") == "Never";
  const json& gates = Field(spec, "schedulingGates");
  view->gated = gates.is_array() && !gates.empty();
  if (const json& volumes = Field(spec, "volumes"); volumes.is_array()) {
    for (const json& v : volumes) {
      std::string claim = String(Field(v, "persistentVolumeClaim"), "claimName");
      if (!claim.empty()) view->claims.push_back(std::move(claim));
    }
  }

  ComputePodRequests(spec, view.get());

  view->tolerations = placement::TolerationsFromJson(Field(spec, "tolerations"));
  view->node_constraints = placement::NodeConstraints::FromPodSpec(spec);

  const json& affinity = Field(spec, "affinity");
  const json& node_affinity = Field(affinity, "nodeAffinity");
  const json& preferred = Field(node_affinity, "preferredDuringSchedulingIgnoredDuringExecution");
  if (preferred.is_array()) {
    for (const json& p : preferred) {
      PreferredSchedulingTerm term;
      const json& w = Field(p, "weight");
      term.weight = w.is_number_integer() ? static_cast<int32_t>(w.get<int64_t>()) : 0;
      term.term = NodeSelectorTerm::FromJson(Field(p, "preference"));
      view->preferred_node_affinity.push_back(std::move(term));
    }
  }
  ParsePodAffinity(Field(affinity, "podAffinity"), view->labels, &view->required_affinity,
                   &view->preferred_affinity);
  ParsePodAffinity(Field(affinity, "podAntiAffinity"), view->labels, &view->required_anti_affinity,
                   &view->preferred_anti_affinity);

  const json& spread = Field(spec, "topologySpreadConstraints");
  if (spread.is_array()) {
    for (const json& c : spread) {
      SpreadConstraint sc;
      const json& skew = Field(c, "maxSkew");
      if (skew.is_number_integer()) sc.max_skew = static_cast<int32_t>(skew.get<int64_t>());
      sc.topology_key = String(c, "topologyKey");
      sc.do_not_schedule = String(c, "whenUnsatisfiable") != "ScheduleAnyway";
      sc.selector = SelectorFromJson(Field(c, "labelSelector"));
      if (!sc.selector.IsNothing()) {
        for (const std::string& key : Strings(Field(c, "matchLabelKeys"))) {
          if (const std::string* v = view->labels.Find(key))
            sc.selector.Add({key, LabelSelector::Op::kIn, {*v}});
        }
      }
      const json& min_domains = Field(c, "minDomains");
      if (min_domains.is_number_integer()) {
        sc.min_domains = static_cast<int32_t>(min_domains.get<int64_t>());
      }
      sc.honor_node_affinity = String(c, "nodeAffinityPolicy") != "Ignore";
      sc.honor_node_taints = String(c, "nodeTaintsPolicy") == "Honor";
      view->spread_constraints.push_back(std::move(sc));
    }
  }

  view->phase = String(status, "phase");
  view->nominated_node_name = String(status, "nominatedNodeName");
  if (view->node_name.empty()) {
    // Only pending pods are compared across updates; bound pods need no hash.
    std::string text = Field(meta, "labels").dump();
    text += spec.dump();
    view->spec_hash = std::hash<std::string>()(text);
  }
  return view;
}

// ----- Nodes -----

NodePtr ParseNode(const json& node) {
  auto view = std::make_shared<NodeView>();
  const json& meta = Field(node, "metadata");
  const json& spec = Field(node, "spec");
  const json& status = Field(node, "status");
  view->name = String(meta, "name");
  view->labels = Labels::FromJson(Field(meta, "labels"));
  const json& unschedulable = Field(spec, "unschedulable");
  view->unschedulable = unschedulable.is_boolean() && unschedulable.get<bool>();
  view->taints = placement::TaintsFromJson(Field(spec, "taints"));
  std::string ready;  // "" when the node reports no Ready condition
  const json& conditions = Field(status, "conditions");
  if (conditions.is_array()) {
    for (const json& c : conditions) {
      if (String(c, "type") == "Ready") ready = String(c, "status");
    }
  }
  if (ready != "True") {
    std::string key =
        ready == "Unknown" ? "node.kubernetes.io/unreachable" : "node.kubernetes.io/not-ready";
    bool present = false;
    for (const Taint& t : view->taints) {
      if (t.key == key && t.effect == "NoSchedule") present = true;
    }
    if (!present) view->taints.push_back({key, "", "NoSchedule"});
  }
  const json& allocatable = Field(status, "allocatable");
  const json& resources = allocatable.is_object() ? allocatable : Field(status, "capacity");
  AddResourceList(resources, &view->allocatable, nullptr, nullptr);
  const json& pods = Field(resources, "pods");
  if (!pods.is_null()) {
    Result<Quantity> q = Quantity::FromJson(pods);
    if (q.ok()) view->allowed_pods = q->Value();
  }
  return view;
}

bool NodeView::SameForScheduling(const NodeView& other) const {
  if (name != other.name || unschedulable != other.unschedulable ||
      allowed_pods != other.allowed_pods || !(labels == other.labels) ||
      !ResourcesEqual(allocatable, other.allocatable) || taints.size() != other.taints.size()) {
    return false;
  }
  for (size_t i = 0; i < taints.size(); ++i) {
    const Taint& a = taints[i];
    const Taint& b = other.taints[i];
    if (a.key != b.key || a.value != b.value || a.effect != b.effect) return false;
  }
  return true;
}

bool TermMatches(const AffinityTerm& term, const std::string& owner_ns, const PodView& pod,
                 const Labels* pod_ns_labels) {
  bool ns_ok = false;
  if (term.namespaces.empty() && !term.has_namespace_selector) {
    ns_ok = pod.ns == owner_ns;
  } else {
    ns_ok =
        std::find(term.namespaces.begin(), term.namespaces.end(), pod.ns) != term.namespaces.end();
    if (!ns_ok && term.has_namespace_selector) {
      static const Labels kNone;
      ns_ok = term.namespace_selector.Matches(pod_ns_labels ? *pod_ns_labels : kNone);
    }
  }
  return ns_ok && term.selector.Matches(pod.labels);
}

}  // namespace orch::sched
