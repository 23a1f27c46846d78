// The EndpointSlice controller (slices of the pods behind Services with selectors) and the
// mirroring controller (slices for Services whose Endpoints someone else writes, `kubernetes`).
#include "endpointslice_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <tuple>

#include "endpoints_controller.h"
#include "orch/log.h"

namespace orch {
namespace ctrl {
namespace {

void SortPorts(json& ports) {
  std::sort(ports.begin(), ports.end(), [](const json& a, const json& b) {
    return std::make_tuple(a.value("name", ""), a.value("port", 0), a.value("protocol", "")) <
           std::make_tuple(b.value("name", ""), b.value("port", 0), b.value("protocol", ""));
  });
}

bool EndpointLess(const json& a, const json& b) {
  const std::string& ip_a = a["addresses"][0].get_ref<const std::string&>();
  const std::string& ip_b = b["addresses"][0].get_ref<const std::string&>();
  if (ip_a != ip_b) return ip_a < ip_b;
  return Field(a, {"targetRef", "name"}).dump() < Field(b, {"targetRef", "name"}).dump();
}

std::vector<SliceGroup> SortedGroups(std::map<std::string, SliceGroup> groups) {
  std::vector<SliceGroup> out;
  for (auto& [key, group] : groups) {
    std::sort(group.endpoints.begin(), group.endpoints.end(), EndpointLess);
    out.push_back(std::move(group));
  }
  return out;
}

std::string PortsKey(const json& ports) {
  json copy = ports.is_array() ? DropEmpty(ports) : json::array();
  if (copy.is_null()) copy = json::array();
  SortPorts(copy);
  return copy.dump();
}

}  // namespace

std::vector<SliceGroup> DesiredSliceGroups(const json& service,
                                           const std::vector<ObjectPtr>& pods) {
  const bool publish_not_ready = BoolField(service, {"spec", "publishNotReadyAddresses"});
  const json& service_ports = Field(service, {"spec", "ports"});
  const bool no_ports = !service_ports.is_array() || service_ports.empty();
  std::map<std::string, SliceGroup> groups;
  for (const ObjectPtr& p : pods) {
    const json& pod = *p;
    if (!ShouldPodBeInEndpoints(pod, true)) continue;
    json ports = json::array();
    if (!no_ports) {
      for (const json& sp : service_ports) {
        if (auto port = FindPodPort(pod, sp)) ports.push_back(EndpointPort(sp, *port));
      }
      if (ports.empty()) continue;
    } else if (!IsHeadlessService(service)) {
      continue;
    }
    SortPorts(ports);
    const bool terminating = IsBeingDeleted(pod);
    const bool ready = IsPodReady(pod);
    json endpoint = {{"addresses", json::array({PodIPv4(pod)})},
                     {"conditions",
                      {{"ready", publish_not_ready || (ready && !terminating)},
                       {"serving", publish_not_ready || ready},
                       {"terminating", terminating}}},
                     {"targetRef", PodTargetRef(pod)}};
    std::string node = StringField(pod, {"spec", "nodeName"});
    if (!node.empty()) endpoint["nodeName"] = node;
    std::string hostname = EndpointHostname(pod, service);
    if (!hostname.empty()) endpoint["hostname"] = hostname;
    SliceGroup& group = groups[ports.dump()];
    group.ports = ports;
    group.endpoints.push_back(std::move(endpoint));
  }
  return SortedGroups(std::move(groups));
}

std::vector<SliceGroup> MirroredSliceGroups(const json& endpoints) {
  std::map<std::string, SliceGroup> groups;
  const json& subsets = Field(endpoints, {"subsets"});
  if (!subsets.is_array()) return {};
  for (const json& subset : subsets) {
    json ports = json::array();
    const json& subset_ports = Field(subset, {"ports"});
    if (subset_ports.is_array()) {
      for (const json& port : subset_ports) {
        json p = {{"port", IntField(port, {"port"})},
                  {"protocol", StringField(port, {"protocol"}, "TCP")}};
        if (!StringField(port, {"name"}).empty()) p["name"] = StringField(port, {"name"});
        if (!StringField(port, {"appProtocol"}).empty()) {
          p["appProtocol"] = StringField(port, {"appProtocol"});
        }
        ports.push_back(std::move(p));
      }
    }
    SortPorts(ports);
    SliceGroup& group = groups[ports.dump()];
    group.ports = ports;
    for (auto [field, ready] : {std::pair{"addresses", true}, {"notReadyAddresses", false}}) {
      const json& addresses = Field(subset, {field});
      if (!addresses.is_array()) continue;
      for (const json& address : addresses) {
        std::string ip = StringField(address, {"ip"});
        if (ip.empty() || ip.find(':') != std::string::npos) continue;
        json endpoint = {
            {"addresses", json::array({ip})},
            {"conditions", {{"ready", ready}, {"serving", ready}, {"terminating", false}}}};
        for (const char* copy : {"nodeName", "hostname", "targetRef"}) {
          const json& value = Field(address, {copy});
          if (!value.is_null()) endpoint[copy] = value;
        }
        group.endpoints.push_back(std::move(endpoint));
      }
    }
  }
  return SortedGroups(std::move(groups));
}

SlicePlan PlanSlices(const json& service, const std::vector<SliceGroup>& groups,
                     const std::vector<ObjectPtr>& existing, const json& labels,
                     const json& owner_ref, size_t max_per_slice) {
  max_per_slice = std::max<size_t>(max_per_slice, 1);
  // The existing slices by port set, oldest name first, so reuse is stable.
  std::map<std::string, std::vector<ObjectPtr>> by_ports;
  for (const ObjectPtr& slice : existing)
    by_ports[PortsKey(Field(*slice, {"ports"}))].push_back(slice);
  for (auto& [key, slices] : by_ports) {
    std::sort(slices.begin(), slices.end(),
              [](const ObjectPtr& a, const ObjectPtr& b) { return NameOf(*a) < NameOf(*b); });
  }
  // No endpoints at all: one empty placeholder slice, as upstream keeps.
  std::vector<SliceGroup> wanted = groups;
  wanted.erase(std::remove_if(wanted.begin(), wanted.end(),
                              [](const SliceGroup& g) { return g.endpoints.empty(); }),
               wanted.end());
  if (wanted.empty()) wanted.push_back(SliceGroup{});

  SlicePlan plan;
  std::set<std::string> used_keys;
  for (const SliceGroup& group : wanted) {
    const std::string key = PortsKey(group.ports);
    used_keys.insert(key);
    std::vector<ObjectPtr>& reuse = by_ports[key];
    size_t chunks =
        std::max<size_t>(1, (group.endpoints.size() + max_per_slice - 1) / max_per_slice);
    for (size_t i = 0; i < chunks; ++i) {
      size_t begin = i * max_per_slice;
      size_t end = std::min(group.endpoints.size(), begin + max_per_slice);
      json endpoints = json::array();
      for (size_t j = begin; j < end; ++j) endpoints.push_back(group.endpoints[j]);
      json slice;
      if (i < reuse.size()) {
        slice = *reuse[i];
      } else {
        slice = {{"apiVersion", "discovery.k8s.io/v1"},
                 {"kind", "EndpointSlice"},
                 {"metadata",
                  {{"generateName", NameOf(service) + "-"}, {"namespace", NamespaceOf(service)}}}};
      }
      json before = slice;
      slice["metadata"]["labels"] = labels;
      if (!owner_ref.is_null()) slice["metadata"]["ownerReferences"] = json::array({owner_ref});
      slice["addressType"] = "IPv4";
      slice["endpoints"] = std::move(endpoints);
      slice["ports"] = group.ports;
      if (i >= reuse.size()) {
        plan.create.push_back(std::move(slice));
      } else if (DropEmpty(before) != DropEmpty(slice)) {
        plan.update.push_back(std::move(slice));
      }
    }
    for (size_t i = chunks; i < reuse.size(); ++i) plan.remove.push_back(NameOf(*reuse[i]));
  }
  for (const auto& [key, slices] : by_ports) {
    if (used_keys.count(key)) continue;
    for (const ObjectPtr& slice : slices) plan.remove.push_back(NameOf(*slice));
  }
  return plan;
}

}  // namespace ctrl

namespace {

using ctrl::json;

int64_t ResourceVersionNumber(const json& object) {
  std::string text = ctrl::StringField(object, {"metadata", "resourceVersion"});
  int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// Remembers what a controller wrote per Service until its informer has seen it: a sync on a
// cache that lacks a slice it just created would create it twice (upstream's slice tracker).
// Thread-safe.
class WrittenSlices {
 public:
  void Wrote(const std::string& key, const json& slice) {
    std::lock_guard lock(mu_);
    entries_[key][ctrl::NameOf(slice)] = ResourceVersionNumber(slice);
  }
  void Deleted(const std::string& key, const std::string& name) {
    std::lock_guard lock(mu_);
    entries_[key][name] = -1;
  }
  // True when the informer reflects every write for `key` (the entries are then dropped).
  bool Seen(const std::string& key, const Informer& slices, const std::string& ns) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return true;
    for (auto e = it->second.begin(); e != it->second.end();) {
      ObjectPtr cached = slices.Get(ns, e->first);
      bool seen = e->second < 0 ? cached == nullptr
                                : cached != nullptr && ResourceVersionNumber(*cached) >= e->second;
      if (!seen) return false;
      e = it->second.erase(e);
    }
    entries_.erase(it);
    return true;
  }
  void Forget(const std::string& key) {
    std::lock_guard lock(mu_);
    entries_.erase(key);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::map<std::string, int64_t>> entries_;  // guarded by mu_
};

// One of the two slice controllers; `mirroring` chooses which.
class SliceController : public Component {
 public:
  SliceController(ControllerContext& context, bool mirroring)
      : context_(context),
        mirroring_(mirroring),
        name_(mirroring ? "endpointslicemirroring" : "endpointslice"),
        managed_by_(mirroring ? ctrl::kMirroringControllerName : ctrl::kSliceControllerName),
        services_(context.informers.For(resources::kServices)),
        pods_(context.informers.For(resources::kPods)),
        endpoints_(context.informers.For(resources::kEndpoints)),
        slices_(context.informers.For(resources::kEndpointSlices)),
        loop_(
            name_, context.informers, context.workers, std::chrono::minutes(5),
            [this] { return ctrl::InformerKeys(services_); },
            [this](const std::string& key) { return Sync(key); }) {
    slices_.AddIndex(kServiceIndex, [](const json& slice) -> std::vector<std::string> {
      std::string service =
          ctrl::StringField(slice, {"metadata", "labels", ctrl::kServiceNameLabel});
      if (service.empty()) return {};
      return {ctrl::NamespaceOf(slice) + "/" + service};
    });
  }

  std::string_view Name() const override { return name_; }

  Status Start() override {
    services_.AddHandler(
        {[this](const ObjectPtr& s) { loop_.Add(ObjectKey(*s)); },
         [this](const ObjectPtr&, const ObjectPtr& s) { loop_.Add(ObjectKey(*s)); },
         [this](const ObjectPtr& s) { loop_.Add(ObjectKey(*s)); }});
    if (mirroring_) {
      endpoints_.AddHandler(
          {[this](const ObjectPtr& e) { loop_.Add(ObjectKey(*e)); },
           [this](const ObjectPtr&, const ObjectPtr& e) { loop_.Add(ObjectKey(*e)); },
           [this](const ObjectPtr& e) { loop_.Add(ObjectKey(*e)); }});
    } else {
      pods_.AddHandler({[this](const ObjectPtr& p) { EnqueueServicesOf(*p); },
                        [this](const ObjectPtr& old_p, const ObjectPtr& p) {
                          if (ctrl::StringField(*old_p, {"metadata", "resourceVersion"}) ==
                              ctrl::StringField(*p, {"metadata", "resourceVersion"})) {
                            return;
                          }
                          EnqueueServicesOf(*p);
                          if (ctrl::LabelsOf(*old_p) != ctrl::LabelsOf(*p))
                            EnqueueServicesOf(*old_p);
                        },
                        [this](const ObjectPtr& p) { EnqueueServicesOf(*p); }});
    }
    // Our slices changed or deleted by someone else: put them back.
    slices_.AddHandler({nullptr,
                        [this](const ObjectPtr&, const ObjectPtr& s) { EnqueueIfOurs(*s); },
                        [this](const ObjectPtr& s) { EnqueueIfOurs(*s); }});
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  static constexpr char kServiceIndex[] = "service";

  void EnqueueServicesOf(const json& pod) {
    for (const std::string& key : ctrl::ServicesSelecting(services_, pod)) loop_.Add(key);
  }

  void EnqueueIfOurs(const json& slice) {
    if (ctrl::StringField(slice, {"metadata", "labels", ctrl::kManagedByLabel}) != managed_by_) {
      return;
    }
    std::string service = ctrl::StringField(slice, {"metadata", "labels", ctrl::kServiceNameLabel});
    if (!service.empty()) loop_.Add(ctrl::NamespaceOf(slice) + "/" + service);
  }

  // The slices this controller manages for the Service `key`.
  std::vector<ObjectPtr> OurSlices(const std::string& key) const {
    std::vector<ObjectPtr> out;
    for (ObjectPtr& slice : slices_.ByIndex(kServiceIndex, key)) {
      if (ctrl::StringField(*slice, {"metadata", "labels", ctrl::kManagedByLabel}) == managed_by_) {
        out.push_back(std::move(slice));
      }
    }
    return out;
  }

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    if (!written_.Seen(key, slices_, ns)) {
      loop_.AddAfter(key, std::chrono::milliseconds(100));  // our last writes are on their way
      return Status::Ok();
    }
    ObjectPtr service = services_.Get(ns, name);
    std::vector<ctrl::SliceGroup> groups;
    json labels;
    bool wanted = service != nullptr && !ctrl::IsBeingDeleted(*service);
    if (wanted && !mirroring_) {
      wanted = ctrl::ServiceHasSelector(*service);
      if (wanted) {
        LabelSelector selector =
            LabelSelector::FromMap(ctrl::Field(*service, {"spec", "selector"}));
        std::vector<ObjectPtr> pods;
        for (ObjectPtr& p : pods_.List(ns)) {
          if (selector.Matches(ctrl::LabelsOf(*p))) pods.push_back(std::move(p));
        }
        groups = ctrl::DesiredSliceGroups(*service, pods);
        labels = ctrl::EndpointLabels(*service);
      }
    } else if (wanted) {
      ObjectPtr endpoints = endpoints_.Get(ns, name);
      wanted =
          endpoints != nullptr && !ctrl::ServiceHasSelector(*service) &&
          ctrl::StringField(*endpoints, {"metadata", "labels", ctrl::kSkipMirrorLabel}) != "true";
      if (wanted) {
        groups = ctrl::MirroredSliceGroups(*endpoints);
        labels =
            ctrl::LabelsOf(*endpoints).is_object() ? ctrl::LabelsOf(*endpoints) : json::object();
        labels.erase("endpointslice.kubernetes.io/skip-mirror");
      }
    }
    std::vector<ObjectPtr> existing = OurSlices(key);
    ctrl::SlicePlan plan;
    if (wanted) {
      labels[ctrl::kServiceNameLabel] = name;
      labels[ctrl::kManagedByLabel] = managed_by_;
      json owner_ref = ctrl::NewControllerRef(*service, "v1", "Service");
      plan = ctrl::PlanSlices(*service, groups, existing, labels, owner_ref);
    } else {
      for (const ObjectPtr& slice : existing) plan.remove.push_back(ctrl::NameOf(*slice));
    }
    return Apply(key, ns, plan);
  }

  Status Apply(const std::string& key, const std::string& ns, const ctrl::SlicePlan& plan) {
    Status first;
    auto note = [&](const Status& s, const char* verb) {
      if (s.ok()) return;
      StatusCode code = s.code();
      // Conflicts and vanished slices: a newer cache brings the next sync.
      if (code == StatusCode::kConflict || code == StatusCode::kNotFound) {
        loop_.AddRateLimited(key);
        return;
      }
      log::Debug(name_, "{}: {} a slice: {}", key, verb, s.message());
      if (first.ok()) first = s;
    };
    // Updates before creates before deletes: a Service is never left without its endpoints.
    for (const json& slice : plan.update) {
      auto written = context_.client.Update(resources::kEndpointSlices, ns, slice);
      if (written.ok()) written_.Wrote(key, *written);
      note(written.status(), "update");
    }
    for (const json& slice : plan.create) {
      auto written = context_.client.Create(resources::kEndpointSlices, ns, slice);
      if (written.ok()) written_.Wrote(key, *written);
      note(written.status(), "create");
    }
    for (const std::string& name : plan.remove) {
      auto deleted = context_.client.Delete(resources::kEndpointSlices, ns, name);
      if (deleted.ok()) written_.Deleted(key, name);
      note(deleted.status(), "delete");
    }
    return first;
  }

  ControllerContext& context_;
  const bool mirroring_;
  const std::string name_;
  const std::string managed_by_;
  Informer& services_;
  Informer& pods_;
  Informer& endpoints_;
  Informer& slices_;
  WrittenSlices written_;
  ctrl::ControllerLoop loop_;
};

}  // namespace

std::unique_ptr<Component> NewEndpointSliceController(ControllerContext& context) {
  return std::make_unique<SliceController>(context, false);
}

std::unique_ptr<Component> NewEndpointSliceMirroringController(ControllerContext& context) {
  return std::make_unique<SliceController>(context, true);
}

}  // namespace orch
