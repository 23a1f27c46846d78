// The Endpoints controller: keeps one Endpoints object per Service with a selector, listing the
// matching pods' addresses (ready or not) with each Service port resolved on each pod.
#include "endpoints_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "orch/log.h"

namespace orch {
namespace ctrl {

bool ServiceHasSelector(const json& service) {
  const json& selector = Field(service, {"spec", "selector"});
  return selector.is_object() && !selector.empty();
}

std::vector<std::string> ServicesSelecting(const Informer& services, const json& pod) {
  std::vector<std::string> keys;
  for (const ObjectPtr& s : services.List(NamespaceOf(pod))) {
    if (ServiceHasSelector(*s) &&
        LabelSelector::FromMap(Field(*s, {"spec", "selector"})).Matches(LabelsOf(pod))) {
      keys.push_back(ObjectKey(*s));
    }
  }
  return keys;
}

bool IsHeadlessService(const json& service) {
  return StringField(service, {"spec", "clusterIP"}) == "None";
}

std::string PodIPv4(const json& pod) {
  const json& ips = Field(pod, {"status", "podIPs"});
  if (ips.is_array()) {
    for (const json& ip : ips) {
      std::string address = StringField(ip, {"ip"});
      if (!address.empty() && address.find(':') == std::string::npos) return address;
    }
  }
  std::string ip = StringField(pod, {"status", "podIP"});
  return ip.find(':') == std::string::npos ? ip : "";
}

bool ShouldPodBeInEndpoints(const json& pod, bool include_terminating) {
  std::string phase = PodPhase(pod);
  if (phase == "Succeeded" || phase == "Failed") return false;
  if (PodIPv4(pod).empty()) return false;
  if (IsBeingDeleted(pod) && !include_terminating) return false;
  return true;
}

std::optional<int64_t> FindPodPort(const json& pod, const json& service_port) {
  const json& target = Field(service_port, {"targetPort"});
  if (target.is_number_integer()) return target.get<int64_t>();
  if (!target.is_string() || target.get<std::string>().empty()) {
    return IntField(service_port, {"port"});
  }
  const std::string name = target.get<std::string>();
  // An all-digit string is a number the client sent as a string.
  if (std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::stoll(name);
  }
  const std::string protocol = StringField(service_port, {"protocol"}, "TCP");
  const json& containers = Field(pod, {"spec", "containers"});
  if (!containers.is_array()) return std::nullopt;
  for (const json& container : containers) {
    const json& ports = Field(container, {"ports"});
    if (!ports.is_array()) continue;
    for (const json& port : ports) {
      if (StringField(port, {"name"}) == name &&
          StringField(port, {"protocol"}, "TCP") == protocol) {
        return IntField(port, {"containerPort"});
      }
    }
  }
  return std::nullopt;
}

json EndpointPort(const json& service_port, int64_t port) {
  json out = {{"port", port}, {"protocol", StringField(service_port, {"protocol"}, "TCP")}};
  std::string name = StringField(service_port, {"name"});
  if (!name.empty()) out["name"] = name;
  std::string app_protocol = StringField(service_port, {"appProtocol"});
  if (!app_protocol.empty()) out["appProtocol"] = app_protocol;
  return out;
}

json PodTargetRef(const json& pod) {
  return {
      {"kind", "Pod"}, {"namespace", NamespaceOf(pod)}, {"name", NameOf(pod)}, {"uid", UidOf(pod)}};
}

std::string EndpointHostname(const json& pod, const json& service) {
  std::string hostname = StringField(pod, {"spec", "hostname"});
  if (hostname.empty()) return "";
  if (StringField(pod, {"spec", "subdomain"}) != NameOf(service)) return "";
  if (NamespaceOf(pod) != NamespaceOf(service)) return "";
  return hostname;
}

json EndpointLabels(const json& service) {
  json labels = json::object();
  const json& own = LabelsOf(service);
  if (own.is_object()) labels = own;
  if (IsHeadlessService(service)) {
    labels[kHeadlessLabel] = "";
  } else {
    labels.erase(kHeadlessLabel);
  }
  return labels;
}

json EndpointSubsets(const json& service, const std::vector<ObjectPtr>& pods) {
  const bool publish_not_ready = BoolField(service, {"spec", "publishNotReadyAddresses"});
  const json& service_ports = Field(service, {"spec", "ports"});
  const bool no_ports = !service_ports.is_array() || service_ports.empty();
  // Pods resolving to the same ports share a subset (upstream's repacking).
  struct Subset {
    json ports;
    std::vector<json> ready, not_ready;
  };
  std::map<std::string, Subset> subsets;
  for (const ObjectPtr& p : pods) {
    const json& pod = *p;
    if (!ShouldPodBeInEndpoints(pod, publish_not_ready)) continue;
    json ports = json::array();
    if (!no_ports) {
      for (const json& sp : service_ports) {
        if (auto port = FindPodPort(pod, sp)) ports.push_back(EndpointPort(sp, *port));
      }
      if (ports.empty()) continue;  // no Service port resolves on this pod
    } else if (!IsHeadlessService(service)) {
      continue;
    }
    std::sort(ports.begin(), ports.end(), [](const json& a, const json& b) {
      return std::make_tuple(a.value("name", ""), a.value("port", 0), a.value("protocol", "")) <
             std::make_tuple(b.value("name", ""), b.value("port", 0), b.value("protocol", ""));
    });
    json address = {{"ip", PodIPv4(pod)}, {"targetRef", PodTargetRef(pod)}};
    std::string node = StringField(pod, {"spec", "nodeName"});
    if (!node.empty()) address["nodeName"] = node;
    std::string hostname = EndpointHostname(pod, service);
    if (!hostname.empty()) address["hostname"] = hostname;
    Subset& subset = subsets[ports.dump()];
    subset.ports = ports;
    if (publish_not_ready || IsPodReady(pod)) {
      subset.ready.push_back(std::move(address));
    } else {
      subset.not_ready.push_back(std::move(address));
    }
  }
  auto by_ip = [](const json& a, const json& b) {
    return std::make_tuple(a.value("ip", ""), a["targetRef"].value("name", "")) <
           std::make_tuple(b.value("ip", ""), b["targetRef"].value("name", ""));
  };
  json out = json::array();
  for (auto& [key, subset] : subsets) {
    std::sort(subset.ready.begin(), subset.ready.end(), by_ip);
    std::sort(subset.not_ready.begin(), subset.not_ready.end(), by_ip);
    json s = json::object();
    if (!subset.ready.empty()) s["addresses"] = subset.ready;
    if (!subset.not_ready.empty()) s["notReadyAddresses"] = subset.not_ready;
    if (!subset.ports.empty()) s["ports"] = subset.ports;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ctrl

namespace {

using ctrl::json;

constexpr char kName[] = "endpoints";

// Whether a pod change can change any Service's endpoints.
bool PodChangeMatters(const json& a, const json& b) {
  for (auto path : {std::initializer_list<std::string_view>{"metadata", "labels"},
                    {"metadata", "deletionTimestamp"},
                    {"status", "podIP"},
                    {"status", "podIPs"},
                    {"status", "phase"},
                    {"spec", "nodeName"},
                    {"spec", "hostname"},
                    {"spec", "subdomain"},
                    {"spec", "containers"}}) {
    if (ctrl::Field(a, path) != ctrl::Field(b, path)) return true;
  }
  return ctrl::IsPodReady(a) != ctrl::IsPodReady(b);
}

class EndpointsController : public Component {
 public:
  explicit EndpointsController(ControllerContext& context)
      : context_(context),
        services_(context.informers.For(resources::kServices)),
        pods_(context.informers.For(resources::kPods)),
        endpoints_(context.informers.For(resources::kEndpoints)),
        loop_(
            kName, context.informers, context.workers, std::chrono::minutes(5),
            [this] { return ctrl::InformerKeys(services_); },
            [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return kName; }

  Status Start() override {
    services_.AddHandler(
        {[this](const ObjectPtr& s) { loop_.Add(ObjectKey(*s)); },
         [this](const ObjectPtr&, const ObjectPtr& s) { loop_.Add(ObjectKey(*s)); },
         [this](const ObjectPtr& s) { loop_.Add(ObjectKey(*s)); }});
    pods_.AddHandler({[this](const ObjectPtr& p) { EnqueueServicesOf(*p); },
                      [this](const ObjectPtr& old_p, const ObjectPtr& p) {
                        if (!PodChangeMatters(*old_p, *p)) return;
                        EnqueueServicesOf(*p);
                        if (ctrl::LabelsOf(*old_p) != ctrl::LabelsOf(*p)) EnqueueServicesOf(*old_p);
                      },
                      [this](const ObjectPtr& p) { EnqueueServicesOf(*p); }});
    // Someone else changing or deleting an Endpoints we manage: put it back.
    endpoints_.AddHandler({nullptr,
                           [this](const ObjectPtr&, const ObjectPtr& e) { EnqueueIfManaged(*e); },
                           [this](const ObjectPtr& e) { EnqueueIfManaged(*e); }});
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  void EnqueueServicesOf(const json& pod) {
    for (const std::string& key : ctrl::ServicesSelecting(services_, pod)) loop_.Add(key);
  }

  void EnqueueIfManaged(const json& endpoints) {
    ObjectPtr service = services_.Get(ctrl::NamespaceOf(endpoints), ctrl::NameOf(endpoints));
    if (service && ctrl::ServiceHasSelector(*service)) loop_.Add(ObjectKey(endpoints));
  }

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr service = services_.Get(ns, name);
    ObjectPtr existing = endpoints_.Get(ns, name);
    if (!service) {
      // The Service is gone: so are its endpoints (upstream deletes them whoever wrote them).
      if (!existing) return Status::Ok();
      auto deleted = context_.client.Delete(resources::kEndpoints, ns, name);
      if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound) {
        return deleted.status();
      }
      return Status::Ok();
    }
    if (!ctrl::ServiceHasSelector(*service)) return Status::Ok();
    if (ctrl::IsBeingDeleted(*service)) return Status::Ok();

    LabelSelector selector = LabelSelector::FromMap(ctrl::Field(*service, {"spec", "selector"}));
    std::vector<ObjectPtr> pods;
    for (ObjectPtr& p : pods_.List(ns)) {
      if (selector.Matches(ctrl::LabelsOf(*p))) pods.push_back(std::move(p));
    }
    json subsets = ctrl::EndpointSubsets(*service, pods);
    json labels = ctrl::EndpointLabels(*service);

    if (existing) {
      const json& old_labels = ctrl::LabelsOf(*existing);
      if (ctrl::DropEmpty(ctrl::Field(*existing, {"subsets"})) == ctrl::DropEmpty(subsets) &&
          ctrl::DropEmpty(old_labels) == ctrl::DropEmpty(labels)) {
        return Status::Ok();
      }
      json next = *existing;
      next["metadata"]["labels"] = labels;
      next["subsets"] = subsets;
      auto written = context_.client.Update(resources::kEndpoints, ns, next);
      if (!written.ok()) {
        // A stale cache: the informer's event brings the newer version and syncs again.
        if (written.status().code() == StatusCode::kConflict ||
            written.status().code() == StatusCode::kNotFound) {
          loop_.AddRateLimited(key);
          return Status::Ok();
        }
        return written.status();
      }
      return Status::Ok();
    }
    json endpoints = {{"apiVersion", "v1"},
                      {"kind", "Endpoints"},
                      {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
                      {"subsets", subsets}};
    auto created = context_.client.Create(resources::kEndpoints, ns, endpoints);
    if (!created.ok()) {
      if (created.status().code() == StatusCode::kAlreadyExists) {
        loop_.AddRateLimited(key);
        return Status::Ok();
      }
      // Creating in a namespace being deleted fails until the namespace is gone: not an error
      // worth retrying fast.
      log::Debug(kName, "{}: create: {}", key, created.status().message());
      return created.status();
    }
    return Status::Ok();
  }

  ControllerContext& context_;
  Informer& services_;
  Informer& pods_;
  Informer& endpoints_;
  ctrl::ControllerLoop loop_;
};

}  // namespace

std::unique_ptr<Component> NewEndpointsController(ControllerContext& context) {
  return std::make_unique<EndpointsController>(context);
}

}  // namespace orch
