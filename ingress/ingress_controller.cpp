// The server's ingress controller (include/orch/ingress.h): the default IngressClass "orch" and
// status.loadBalancer.ingress of the Ingresses the nodes' proxies serve. Keys: "@class" (queued
// at start) and "ns/name" of Ingresses.
#include <fmt/format.h>

#include <algorithm>

#include "ingress_routes.h"
#include "orch/ingress.h"
#include "orch/log.h"
#include "orch/net.h"
#include "orch/work_queue.h"

namespace orch {
namespace {

using json = nlohmann::json;

constexpr std::string_view kLog = "ingress-controller";
constexpr char kClassKey[] = "@class";
constexpr char kExcludeLbLabel[] = "node.kubernetes.io/exclude-from-external-load-balancers";
constexpr std::chrono::seconds kSyncWait(5);

json OrchIngressClass() {
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "IngressClass"},
          {"metadata",
           {{"name", kIngressClassName},
            {"labels", {{"app.kubernetes.io/managed-by", "orch"}}},
            {"annotations", {{ingress::kDefaultClassAnnotation, "true"}}}}},
          {"spec", {{"controller", kIngressControllerName}}}};
}

bool NodeReady(const json& node) {
  const json& conditions = ingress::Field(node, {"status", "conditions"});
  if (!conditions.is_array()) return false;
  for (const json& c : conditions) {
    if (ingress::String(c, {"type"}) == "Ready") return ingress::String(c, {"status"}) == "True";
  }
  return false;
}

// Where the Ingresses answer: every Ready node's ExternalIPs, or its InternalIPs when it has
// none (as servicelb lists them for LoadBalancer Services); sorted, no duplicates.
std::vector<std::string> ServingAddresses(const std::vector<ObjectPtr>& nodes) {
  std::vector<IpAddress> ips;
  for (const ObjectPtr& node : nodes) {
    if (!NodeReady(*node) || !ingress::Field(*node, {"metadata", "deletionTimestamp"}).is_null())
      continue;
    const json& labels = ingress::Field(*node, {"metadata", "labels"});
    if (labels.is_object() && labels.contains(kExcludeLbLabel)) continue;
    const json& addresses = ingress::Field(*node, {"status", "addresses"});
    if (!addresses.is_array()) continue;
    for (const char* type : {"ExternalIP", "InternalIP"}) {
      bool found = false;
      for (const json& a : addresses) {
        if (ingress::String(a, {"type"}) != type) continue;
        auto ip = IpAddress::Parse(ingress::String(a, {"address"}));
        if (!ip.ok()) continue;
        ips.push_back(*ip);
        found = true;
      }
      if (found) break;
    }
  }
  std::sort(ips.begin(), ips.end());
  ips.erase(std::unique(ips.begin(), ips.end()), ips.end());
  std::vector<std::string> out;
  for (const IpAddress& ip : ips) out.push_back(ip.ToString());
  return out;
}

std::string NodeFingerprint(const json& node) {
  const json& labels = ingress::Field(node, {"metadata", "labels"});
  return fmt::format("{}|{}|{}|{}", NodeReady(node),
                     !ingress::Field(node, {"metadata", "deletionTimestamp"}).is_null(),
                     labels.is_object() && labels.contains(kExcludeLbLabel),
                     ingress::Field(node, {"status", "addresses"}).dump());
}

class IngressController final : public Component {
 public:
  IngressController(ControllerContext& context, bool enabled)
      : client_(context.client),
        informers_(context.informers),
        enabled_(enabled),
        ingresses_(context.informers.For(resources::kIngresses)),
        classes_(context.informers.For(resources::kIngressClasses)),
        nodes_(context.informers.For(resources::kNodes)) {}
  ~IngressController() override { Stop(); }

  std::string_view Name() const override { return "ingress"; }

  Status Start() override {
    if (enabled_) {
      auto ingress_changed = [this](const ObjectPtr& ing) { queue_.Add(ObjectKey(*ing)); };
      ingresses_.AddHandler(
          {ingress_changed,
           [ingress_changed](const ObjectPtr&, const ObjectPtr& ing) { ingress_changed(ing); },
           nullptr});
      auto all = [this](const ObjectPtr&) { AddAll(); };
      classes_.AddHandler({all, [this](const ObjectPtr&, const ObjectPtr&) { AddAll(); }, all});
      nodes_.AddHandler({all,
                         [this](const ObjectPtr& old_node, const ObjectPtr& node) {
                           // Heartbeats rewrite nodes often; only what the status reads counts.
                           if (NodeFingerprint(*old_node) != NodeFingerprint(*node)) AddAll();
                         },
                         all});
    }
    queue_.Add(kClassKey);
    pool_ = std::make_unique<WorkerPool>("ingress", queue_, 1,
                                         [this](const std::string& key) { return Sync(key); });
    return Status::Ok();
  }

  void Stop() override {
    queue_.ShutDown();
    pool_.reset();
  }

 private:
  void AddAll() {
    for (const ObjectPtr& ing : ingresses_.List()) queue_.Add(ObjectKey(*ing));
  }

  Status Sync(const std::string& key) {
    if (!informers_.WaitForSync(kSyncWait)) return Unavailable("informers not synced yet");
    if (key == kClassKey) return enabled_ ? EnsureClass() : RemoveClass();
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr ing = ingresses_.Get(ns, name);
    if (!ing || !ingress::ServedByOrch(*ing, classes_.List())) return Status::Ok();
    json want = json::array();
    for (const std::string& ip : ServingAddresses(nodes_.List())) want.push_back({{"ip", ip}});
    const json& have = ingress::Field(*ing, {"status", "loadBalancer", "ingress"});
    if ((have.is_null() && want.empty()) || have == want) return Status::Ok();
    json next = *ing;
    next["status"]["loadBalancer"] = want.empty() ? json::object() : json{{"ingress", want}};
    auto updated = client_.Update(resources::kIngresses, ns, next, "status");
    if (!updated.ok() && updated.status().code() == StatusCode::kNotFound) return Status::Ok();
    if (updated.ok()) log::Debug(kLog, "{}: loadBalancer {}", key, want.dump());
    return updated.status();
  }

  // Like k3s's packaged Traefik: installed at start, a class the user deleted comes back at the
  // next start only.
  Status EnsureClass() {
    if (classes_.Get("", kIngressClassName)) return Status::Ok();
    auto created = client_.Create(resources::kIngressClasses, "", OrchIngressClass());
    if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) {
      return created.status();
    }
    if (created.ok()) log::Info(kLog, "created the default IngressClass {}", kIngressClassName);
    return Status::Ok();
  }

  // `--disable ingress`: the class goes, and with it every node's listener.
  Status RemoveClass() {
    ObjectPtr existing = classes_.Get("", kIngressClassName);
    if (!existing || ingress::String(*existing, {"spec", "controller"}) != kIngressControllerName) {
      return Status::Ok();
    }
    auto deleted = client_.Delete(resources::kIngressClasses, "", kIngressClassName);
    if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound) return deleted.status();
    log::Info(kLog, "ingress disabled: deleted IngressClass {}", kIngressClassName);
    return Status::Ok();
  }

  ApiClient& client_;
  InformerFactory& informers_;
  const bool enabled_;
  Informer& ingresses_;
  Informer& classes_;
  Informer& nodes_;
  WorkQueue queue_;
  std::unique_ptr<WorkerPool> pool_;  // last: its threads use the members above
};

}  // namespace

std::unique_ptr<Component> NewIngressController(ControllerContext& context, bool enabled) {
  return std::make_unique<IngressController>(context, enabled);
}

}  // namespace orch
