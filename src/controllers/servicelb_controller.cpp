// The service load balancer controller (servicelb_controller.h): keys are Services; a sync
// writes the serving nodes' addresses to the status of a LoadBalancer Service orch handles.
#include "servicelb_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "orch/log.h"
#include "orch/net.h"

namespace orch {
namespace ctrl {
namespace {

bool IsNodeReady(const json& node) {
  const json* ready = FindCondition(Field(node, {"status"}), "Ready");
  return ready != nullptr && StringField(*ready, {"status"}) == "True";
}

std::string Label(const json& object, const char* key) {
  const json& labels = LabelsOf(object);
  if (!labels.is_object()) return "";
  auto it = labels.find(key);
  return it != labels.end() && it->is_string() ? it->get<std::string>() : "";
}

bool HasLabel(const json& object, const char* key) {
  const json& labels = LabelsOf(object);
  return labels.is_object() && labels.contains(key);
}

// The addresses of `type` in the node's status, in its order.
std::vector<std::string> NodeAddresses(const json& node, const char* type) {
  std::vector<std::string> out;
  const json& addresses = Field(node, {"status", "addresses"});
  if (!addresses.is_array()) return out;
  for (const json& a : addresses) {
    if (StringField(a, {"type"}) == type) {
      std::string ip = StringField(a, {"address"});
      if (!ip.empty()) out.push_back(std::move(ip));
    }
  }
  return out;
}

// The families the Service asks for ("IPv4", "IPv6"); empty: any.
std::set<std::string> Families(const json& service) {
  std::set<std::string> out;
  const json& families = Field(service, {"spec", "ipFamilies"});
  if (families.is_array()) {
    for (const json& f : families) {
      if (f.is_string()) out.insert(f.get<std::string>());
    }
  }
  return out;
}

std::vector<std::string> IngressIps(const json& service) {
  std::vector<std::string> out;
  const json& ingress = Field(service, {"status", "loadBalancer", "ingress"});
  if (!ingress.is_array()) return out;
  for (const json& i : ingress) out.push_back(StringField(i, {"ip"}));
  return out;
}

}  // namespace

bool ServiceLbHandles(const json& service) {
  return StringField(service, {"spec", "type"}) == "LoadBalancer" &&
         StringField(service, {"spec", "loadBalancerClass"}).empty();
}

std::vector<std::string> LoadBalancerIps(const json& service, const std::vector<ObjectPtr>& nodes) {
  bool pool_mode = false;  // some node opted in with enablelb=true
  for (const ObjectPtr& node : nodes) {
    if (Label(*node, kEnableLbLabel) == "true") pool_mode = true;
  }
  const std::string pool = Label(service, kLbPoolLabel);
  const std::set<std::string> families = Families(service);
  std::vector<IpAddress> ips;
  for (const ObjectPtr& node : nodes) {
    if (IsBeingDeleted(*node) || !IsNodeReady(*node) || HasLabel(*node, kExcludeLbLabel)) continue;
    if (pool_mode && Label(*node, kEnableLbLabel) != "true") continue;
    if (!pool.empty() && Label(*node, kLbPoolLabel) != pool) continue;
    // As k3s: a node's external address when it has one, as that is what clients reach.
    std::vector<std::string> addresses = NodeAddresses(*node, "ExternalIP");
    if (addresses.empty()) addresses = NodeAddresses(*node, "InternalIP");
    for (const std::string& text : addresses) {
      auto ip = IpAddress::Parse(text);
      if (!ip.ok()) continue;
      if (!families.empty() && !families.count(ip->is_v4() ? "IPv4" : "IPv6")) continue;
      ips.push_back(*ip);
    }
  }
  std::sort(ips.begin(), ips.end());
  ips.erase(std::unique(ips.begin(), ips.end()), ips.end());
  std::vector<std::string> out;
  out.reserve(ips.size());
  for (const IpAddress& ip : ips) out.push_back(ip.ToString());
  return out;
}

json IngressFor(const std::vector<std::string>& ips) {
  json ingress = json::array();
  for (const std::string& ip : ips) ingress.push_back({{"ip", ip}});
  return ingress;
}

std::string LoadBalancerNodeFingerprint(const json& node) {
  std::string out = fmt::format("{}|{}|{}|{}|{}", IsNodeReady(node), IsBeingDeleted(node),
                                Label(node, kEnableLbLabel), Label(node, kLbPoolLabel),
                                HasLabel(node, kExcludeLbLabel));
  const json& addresses = Field(node, {"status", "addresses"});
  if (addresses.is_array()) {
    for (const json& a : addresses) {
      out += fmt::format("|{}={}", StringField(a, {"type"}), StringField(a, {"address"}));
    }
  }
  return out;
}

}  // namespace ctrl

namespace {

using json = nlohmann::json;

constexpr char kComponent[] = "servicelb";

class ServiceLbController : public Component {
 public:
  explicit ServiceLbController(ControllerContext& context)
      : client_(context.client),
        events_(context.events),
        services_(context.informers.For(resources::kServices)),
        nodes_(context.informers.For(resources::kNodes)),
        loop_(
            kComponent, context.informers, context.workers, std::chrono::minutes(5),
            [this] { return ctrl::InformerKeys(services_); },
            [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return kComponent; }

  Status Start() override {
    services_.AddHandler({
        [this](const ObjectPtr& svc) { loop_.Add(ObjectKey(*svc)); },
        [this](const ObjectPtr&, const ObjectPtr& svc) { loop_.Add(ObjectKey(*svc)); },
        nullptr,  // a deleted Service has no status to keep
    });
    nodes_.AddHandler({
        [this](const ObjectPtr&) { AddLoadBalancers(); },
        [this](const ObjectPtr& old_node, const ObjectPtr& node) {
          // Heartbeats rewrite nodes every few seconds; only what the ingress reads matters.
          if (ctrl::LoadBalancerNodeFingerprint(*old_node) !=
              ctrl::LoadBalancerNodeFingerprint(*node)) {
            AddLoadBalancers();
          }
        },
        [this](const ObjectPtr&) { AddLoadBalancers(); },
    });
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  void AddLoadBalancers() {
    for (const ObjectPtr& svc : services_.List()) {
      if (ctrl::StringField(*svc, {"spec", "type"}) == "LoadBalancer") loop_.Add(ObjectKey(*svc));
    }
  }

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr svc = services_.Get(ns, name);
    if (!svc) return Status::Ok();
    std::vector<std::string> have = ctrl::IngressIps(*svc);
    json involved = ctrl::EventRef(*svc, "v1", "Service");
    if (!ctrl::ServiceLbHandles(*svc)) {
      // A Service that stopped being a LoadBalancer loses its addresses (upstream's controller
      // does the same); one of another class is its implementation's business.
      if (ctrl::StringField(*svc, {"spec", "type"}) == "LoadBalancer" || have.empty()) {
        return Status::Ok();
      }
      events_.Record(involved, "Normal", "DeletingLoadBalancer", "Deleting load balancer");
      if (Status s = WriteIngress(*svc, {}); !s.ok()) return s;
      events_.Record(involved, "Normal", "DeletedLoadBalancer", "Deleted load balancer");
      return Status::Ok();
    }
    std::vector<std::string> want = ctrl::LoadBalancerIps(*svc, nodes_.List());
    if (want == have) return Status::Ok();
    if (have.empty()) {
      events_.Record(involved, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer");
    }
    if (Status s = WriteIngress(*svc, want); !s.ok()) return s;
    if (want.empty()) {
      events_.Record(involved, "Warning", "UnAvailableLoadBalancer",
                     "There are no available nodes for LoadBalancer");
    } else if (have.empty()) {
      events_.Record(involved, "Normal", "EnsuredLoadBalancer", "Ensured load balancer");
    } else {
      events_.Record(involved, "Normal", "UpdatedLoadBalancer",
                     "Updated load balancer with new hosts");
    }
    log::Debug(kComponent, "{}: ingress [{}]", key, fmt::join(want, ", "));
    return Status::Ok();
  }

  // A status update with the cached resourceVersion: a conflict means a newer Service is on its
  // way through the informer, and the retry works from that.
  Status WriteIngress(const json& svc, const std::vector<std::string>& ips) {
    json next = svc;
    next["status"]["loadBalancer"] =
        ips.empty() ? json::object() : json{{"ingress", ctrl::IngressFor(ips)}};
    auto updated = client_.Update(resources::kServices, ctrl::NamespaceOf(svc), next, "status");
    if (!updated.ok() && updated.status().code() == StatusCode::kNotFound) return Status::Ok();
    return updated.status();
  }

  ApiClient& client_;
  EventRecorder& events_;
  Informer& services_;
  Informer& nodes_;
  ctrl::ControllerLoop loop_;  // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewServiceLbController(ControllerContext& context) {
  return std::make_unique<ServiceLbController>(context);
}

}  // namespace orch
