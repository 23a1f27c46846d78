// Service ClusterIP and NodePort allocation and the load balancer's port book
// (service_allocator.h), with upstream's messages.
#include "service_allocator.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace orch::api {
namespace {

constexpr char kIpPrefix[] = "/registry/ranges/serviceips/";
constexpr char kPortPrefix[] = "/registry/ranges/servicenodeports/";
constexpr char kLbPortPrefix[] = "/registry/ranges/serviceloadbalancerports/";

bool IsService(const ResourceType& type) { return type.group.empty() && type.kind == "Service"; }

std::string TypeOf(const json& spec) {
  return spec.is_object() && spec.contains("type") && spec["type"].is_string()
             ? spec["type"].get<std::string>()
             : "ClusterIP";
}

bool NeedsNodePorts(const json& spec) {
  std::string t = TypeOf(spec);
  if (t == "NodePort") return true;
  if (t != "LoadBalancer") return false;
  return !spec.contains("allocateLoadBalancerNodePorts") ||
         spec["allocateLoadBalancerNodePorts"] != false;
}

std::string Owner(const json& service) { return Namespace(service) + "/" + Name(service); }

std::string ProtocolOf(const json& port) {
  return port.contains("protocol") && port["protocol"].is_string()
             ? port["protocol"].get<std::string>()
             : "TCP";
}

// The load balancer keys of `service`, one per port, in port order ("" for a port without a
// number, which validation refuses anyway).
std::vector<std::string> LoadBalancerKeys(const json& service) {
  std::vector<std::string> keys;
  if (!ServiceAllocator::UsesNodeLoadBalancer(service)) return keys;
  const json& ports = service["spec"].contains("ports") ? service["spec"]["ports"] : json();
  if (!ports.is_array()) return keys;
  for (const json& p : ports) {
    bool numbered = p.is_object() && p.contains("port") && p["port"].is_number_integer();
    keys.push_back(numbered ? ServiceAllocator::LoadBalancerPortKey(ProtocolOf(p), p["port"])
                            : std::string());
  }
  return keys;
}

}  // namespace

ServiceAllocator::ServiceAllocator(Store& store, Cidr service_cidr)
    : store_(store), cidr_(service_cidr), random_(std::random_device{}()) {}

std::string ServiceAllocator::IpKey(const std::string& ip) { return kIpPrefix + ip; }
std::string ServiceAllocator::PortKey(int port) { return kPortPrefix + std::to_string(port); }
std::string ServiceAllocator::LoadBalancerPortKey(const std::string& protocol, int port) {
  return fmt::format("{}{}/{}", kLbPortPrefix, protocol, port);
}

std::vector<int> ServiceAllocator::LoadBalancerNodePorts(const json& service) {
  std::vector<int> out;
  if (!UsesNodeLoadBalancer(service)) return out;
  const json& spec = service["spec"];
  if (!spec.contains("ports") || !spec["ports"].is_array()) return out;
  for (const json& p : spec["ports"]) {
    if (!p.is_object() || !p.contains("port") || !p["port"].is_number_integer()) continue;
    int port = p["port"].get<int>();
    if (port >= kNodePortMin && port <= kNodePortMax) out.push_back(port);
  }
  return out;
}

bool ServiceAllocator::UsesNodeLoadBalancer(const json& service) {
  if (!service.is_object() || !service.contains("spec") || !service["spec"].is_object()) {
    return false;
  }
  const json& spec = service["spec"];
  if (TypeOf(spec) != "LoadBalancer") return false;
  return !spec.contains("loadBalancerClass") || !spec["loadBalancerClass"].is_string() ||
         spec["loadBalancerClass"].get<std::string>().empty();
}

std::vector<std::string> ServiceAllocator::KeysOf(const json& service) {
  std::vector<std::string> keys;
  const json& spec = service.contains("spec") ? service["spec"] : json::object();
  if (spec.contains("clusterIPs") && spec["clusterIPs"].is_array()) {
    for (const json& ip : spec["clusterIPs"]) {
      if (ip.is_string() && ip != "None" && ip != "") keys.push_back(IpKey(ip.get<std::string>()));
    }
  }
  if (spec.contains("ports") && spec["ports"].is_array()) {
    for (const json& p : spec["ports"]) {
      if (p.is_object() && p.contains("nodePort") && p["nodePort"].is_number_integer()) {
        keys.push_back(PortKey(p["nodePort"].get<int>()));
      }
    }
  }
  for (std::string& key : LoadBalancerKeys(service)) {
    if (!key.empty()) keys.push_back(std::move(key));
  }
  // A load balancer port in the NodePort range is a node port too: the two would meet in the
  // same rules on every node.
  for (int port : LoadBalancerNodePorts(service)) keys.push_back(PortKey(port));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

std::optional<ApiError> ServiceAllocator::AllocateIp(json& spec, const std::string& owner,
                                                     const std::string& name,
                                                     std::vector<std::string>& taken) {
  std::string requested;
  if (spec.contains("clusterIP") && spec["clusterIP"].is_string()) {
    requested = spec["clusterIP"].get<std::string>();
  } else if (spec.contains("clusterIPs") && spec["clusterIPs"].is_array() &&
             !spec["clusterIPs"].empty() && spec["clusterIPs"][0].is_string()) {
    requested = spec["clusterIPs"][0].get<std::string>();
  }
  if (requested == "None") {
    spec["clusterIP"] = "None";
    spec["clusterIPs"] = json::array({"None"});
    return std::nullopt;
  }
  auto invalid = [&](const std::string& detail) {
    return ApiError::Invalid("Service", name,
                             {FieldInvalid("spec.clusterIPs", json::array({requested}), detail)});
  };
  std::string chosen;
  if (!requested.empty()) {
    auto ip = IpAddress::Parse(requested);
    if (!ip.ok()) return invalid("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    if (!cidr_.Contains(*ip) || *ip == cidr_.network()) {
      return invalid(fmt::format("failed to allocate IP {}: the provided IP ({}) is not in the "
                                 "valid range. The range of valid IPs is {}",
                                 requested, requested, cidr_.ToString()));
    }
    auto created = store_.Create(IpKey(ip->ToString()), owner);
    if (!created.ok()) {
      if (created.status().code() == StatusCode::kAlreadyExists) {
        return invalid(
            fmt::format("failed to allocate IP {}: provided IP is already allocated", requested));
      }
      return ApiError::FromStatus(created.status());
    }
    chosen = ip->ToString();
  } else {
    // Dynamic addresses come from above the low band, which stays free for static choices
    // (as upstream does since 1.27); the whole range is the fallback.
    uint64_t size = std::min<uint64_t>(cidr_.Size(), uint64_t{1} << 20);
    if (size < 4) return ApiError::Internal("the service CIDR is too small");
    uint64_t band = std::min<uint64_t>(std::max<uint64_t>(16, size / 16), 256);
    uint64_t first = std::min(band, size - 2), count = size - 1 - first;
    uint64_t start;
    {
      std::lock_guard lock(mu_);
      start = random_() % count;
    }
    for (uint64_t i = 0; i < size - 2 && chosen.empty(); ++i) {
      uint64_t offset = i < count ? first + (start + i) % count : 1 + (i - count);
      auto ip = cidr_.AddressAt(offset);
      if (!ip.ok()) continue;
      auto created = store_.Create(IpKey(ip->ToString()), owner);
      if (created.ok()) {
        chosen = ip->ToString();
      } else if (created.status().code() != StatusCode::kAlreadyExists) {
        return ApiError::FromStatus(created.status());
      }
    }
    if (chosen.empty()) {
      return ApiError::Internal("failed to allocate a serviceIP: range is full");
    }
  }
  taken.push_back(IpKey(chosen));
  spec["clusterIP"] = chosen;
  spec["clusterIPs"] = json::array({chosen});
  if (!spec.contains("ipFamilies")) {
    spec["ipFamilies"] = json::array({cidr_.family() == IpFamily::kV4 ? "IPv4" : "IPv6"});
  }
  if (!spec.contains("ipFamilyPolicy")) spec["ipFamilyPolicy"] = "SingleStack";
  return std::nullopt;
}

std::optional<ApiError> ServiceAllocator::AllocateNodePorts(json& spec, const json* old_spec,
                                                            const std::string& owner,
                                                            const std::string& name,
                                                            std::vector<std::string>& taken) {
  if (!spec.contains("ports") || !spec["ports"].is_array()) return std::nullopt;
  std::set<int> mine;  // node ports this Service held before the write
  if (old_spec != nullptr && old_spec->contains("ports") && (*old_spec)["ports"].is_array()) {
    for (const json& p : (*old_spec)["ports"]) {
      if (p.is_object() && p.contains("nodePort") && p["nodePort"].is_number_integer()) {
        mine.insert(p["nodePort"].get<int>());
      }
    }
    for (int port : LoadBalancerNodePorts(json{{"spec", *old_spec}})) mine.insert(port);
  }
  json& ports = spec["ports"];
  for (size_t i = 0; i < ports.size(); ++i) {
    json& port = ports[i];
    if (!port.is_object()) continue;
    std::string field = fmt::format("spec.ports[{}].nodePort", i);
    if (port.contains("nodePort") && port["nodePort"].is_number_integer() &&
        port["nodePort"].get<int>() != 0) {
      int n = port["nodePort"].get<int>();
      if (mine.count(n)) continue;
      if (n < kNodePortMin || n > kNodePortMax) {
        return ApiError::Invalid(
            "Service", name,
            {FieldInvalid(field, n,
                          fmt::format("provided port is not in the valid range. The range of "
                                      "valid ports is {}-{}",
                                      kNodePortMin, kNodePortMax))});
      }
      auto created = store_.Create(PortKey(n), owner);
      if (!created.ok()) {
        if (created.status().code() == StatusCode::kAlreadyExists) {
          return ApiError::Invalid("Service", name,
                                   {FieldInvalid(field, n, "provided port is already allocated")});
        }
        return ApiError::FromStatus(created.status());
      }
      taken.push_back(PortKey(n));
      continue;
    }
    // Reuse the node port the same service port had, else take a free one.
    int reuse = 0;
    if (old_spec != nullptr && old_spec->contains("ports") && (*old_spec)["ports"].is_array()) {
      for (const json& p : (*old_spec)["ports"]) {
        if (p.is_object() && p.value("port", 0) == port.value("port", -1) &&
            p.value("protocol", "TCP") == port.value("protocol", "TCP") &&
            p.contains("nodePort")) {
          reuse = p["nodePort"].get<int>();
        }
      }
    }
    if (reuse != 0) {
      port["nodePort"] = reuse;
      continue;
    }
    const int range = kNodePortMax - kNodePortMin + 1;
    int start;
    {
      std::lock_guard lock(mu_);
      start = static_cast<int>(random_() % range);
    }
    int chosen = 0;
    for (int k = 0; k < range && chosen == 0; ++k) {
      int n = kNodePortMin + (start + k) % range;
      auto created = store_.Create(PortKey(n), owner);
      if (created.ok()) {
        chosen = n;
      } else if (created.status().code() != StatusCode::kAlreadyExists) {
        return ApiError::FromStatus(created.status());
      }
    }
    if (chosen == 0) return ApiError::Internal("failed to allocate a nodePort: range is full");
    taken.push_back(PortKey(chosen));
    port["nodePort"] = chosen;
  }
  return std::nullopt;
}

Result<std::string> ServiceAllocator::Claim(const std::string& key, const std::string& owner,
                                            bool dry_run, std::vector<std::string>& taken) {
  if (!dry_run) {
    auto created = store_.Create(key, owner);
    if (created.ok()) {
      taken.push_back(key);
      return std::string();
    }
    if (created.status().code() != StatusCode::kAlreadyExists) return created.status();
  }
  auto existing = store_.Get(key);
  if (existing.ok()) return existing->value;
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();
  if (dry_run) return std::string();
  // Released meanwhile: one more try settles it.
  auto created = store_.Create(key, owner);
  if (created.ok()) {
    taken.push_back(key);
    return std::string();
  }
  existing = store_.Get(key);
  return existing.ok() ? existing->value : std::string();
}

std::optional<ApiError> ServiceAllocator::ReserveLoadBalancerPorts(
    const json& service, const json* old, bool dry_run, std::vector<std::string>& taken) {
  std::vector<std::string> keys = LoadBalancerKeys(service);
  if (keys.empty()) return std::nullopt;
  std::vector<std::string> held = old != nullptr ? KeysOf(*old) : std::vector<std::string>{};
  const std::string owner = Owner(service);
  const json& ports = service["spec"]["ports"];
  std::set<std::string> seen;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].empty()) continue;
    const int port = ports[i]["port"].get<int>();
    const std::string protocol = ProtocolOf(ports[i]);
    // The port/protocol on the nodes, then (in the NodePort range) the number as a node port.
    std::vector<std::pair<std::string, std::string>> claims = {
        {keys[i],
         fmt::format("port {}/{} is already used by LoadBalancer Service ", port, protocol)}};
    if (port >= kNodePortMin && port <= kNodePortMax) {
      claims.emplace_back(PortKey(port), fmt::format("port {}/{} is already used as a node port "
                                                     "by Service ",
                                                     port, protocol));
    }
    for (const auto& [key, message] : claims) {
      if (!seen.insert(key).second) continue;
      if (std::binary_search(held.begin(), held.end(), key)) continue;
      auto holder = Claim(key, owner, dry_run, taken);
      if (!holder.ok()) return ApiError::FromStatus(holder.status());
      // A key of our own name that the old object did not hold is a leftover (a namesake
      // deleted without admission, before Repair ran), or our own new NodePort: ours to use.
      if (holder->empty() || *holder == owner) continue;
      return ApiError::Invalid(
          "Service", Name(service),
          {FieldInvalid(fmt::format("spec.ports[{}].port", i), port, message + *holder)});
    }
  }
  return std::nullopt;
}

std::optional<ApiError> ServiceAllocator::Admit(AdmissionRequest& request) {
  if (!IsService(*request.type) || request.subresource == "status" || request.object == nullptr) {
    return std::nullopt;
  }
  json& service = *request.object;
  if (!service.contains("spec") || !service["spec"].is_object()) service["spec"] = json::object();
  json& spec = service["spec"];
  const json* old_spec = request.old != nullptr && request.old->contains("spec")
                             ? &(*request.old)["spec"]
                             : nullptr;
  std::string name = Name(service);
  std::string owner = Owner(service);
  std::vector<std::string> taken;
  auto fail = [&](ApiError e) {
    Release(taken);
    return e;
  };

  if (old_spec != nullptr) {
    // Allocated values carry over when the new object leaves them out (replace, apply).
    for (const char* f : {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"}) {
      if ((!spec.contains(f) || spec[f] == "" || spec[f].is_null()) && old_spec->contains(f)) {
        spec[f] = (*old_spec)[f];
      }
    }
    if (spec.value("clusterIP", json("")) != old_spec->value("clusterIP", json("")) &&
        TypeOf(spec) != "ExternalName" && TypeOf(*old_spec) != "ExternalName") {
      return ApiError::Invalid(
          "Service", name,
          {FieldInvalid("spec.clusterIPs[0]", spec.value("clusterIP", json("")),
                        "may not change once set")});
    }
  }
  if (TypeOf(spec) == "ExternalName") {
    spec.erase("clusterIP");
    spec.erase("clusterIPs");
  } else if (old_spec == nullptr || !old_spec->contains("clusterIP") ||
             TypeOf(*old_spec) == "ExternalName") {
    if (request.dry_run) {
      if (!spec.contains("clusterIP")) spec["clusterIP"] = "";
    } else if (auto e = AllocateIp(spec, owner, name, taken)) {
      return fail(*e);
    }
  }
  if (NeedsNodePorts(spec)) {
    if (!spec.contains("externalTrafficPolicy")) spec["externalTrafficPolicy"] = "Cluster";
    if (!request.dry_run) {
      if (auto e = AllocateNodePorts(spec, old_spec, owner, name, taken)) return fail(*e);
    }
  } else if (spec.contains("ports") && spec["ports"].is_array() && TypeOf(spec) == "ClusterIP") {
    for (json& p : spec["ports"]) {
      if (p.is_object()) p.erase("nodePort");
    }
  }
  if (TypeOf(spec) != "ExternalName" && !spec.contains("internalTrafficPolicy")) {
    spec["internalTrafficPolicy"] = "Cluster";
  }
  if (auto e = ReserveLoadBalancerPorts(service, request.old, request.dry_run, taken)) {
    return fail(*e);
  }
  std::lock_guard lock(mu_);
  pending_[request.object] = std::move(taken);
  return std::nullopt;
}

void ServiceAllocator::Committed(const AdmissionRequest& request) {
  if (!IsService(*request.type)) return;
  {
    std::lock_guard lock(mu_);
    pending_.erase(request.object);
  }
  if (request.old == nullptr) return;
  std::vector<std::string> keep = request.object ? KeysOf(*request.object) : std::vector<std::string>{};
  std::vector<std::string> drop;
  for (const std::string& key : KeysOf(*request.old)) {
    if (!std::binary_search(keep.begin(), keep.end(), key)) drop.push_back(key);
  }
  Release(drop);
}

void ServiceAllocator::Aborted(const AdmissionRequest& request) {
  if (!IsService(*request.type)) return;
  std::vector<std::string> taken;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(request.object);
    if (it == pending_.end()) return;
    taken = std::move(it->second);
    pending_.erase(it);
  }
  Release(taken);
}

void ServiceAllocator::Release(const std::vector<std::string>& keys) {
  for (const std::string& key : keys) (void)store_.Delete(key);
}

void ServiceAllocator::Repair(const std::vector<json>& services) {
  std::map<std::string, std::set<std::string>> wanted;  // key -> the Services that hold it
  for (const json& svc : services) {
    for (const std::string& key : KeysOf(svc)) wanted[key].insert(Owner(svc));
  }
  for (const char* prefix : {kIpPrefix, kPortPrefix, kLbPortPrefix}) {
    RangeOptions options;
    options.prefix = prefix;
    auto listed = store_.List(options);
    if (!listed.ok()) continue;
    for (const KeyValue& kv : listed->kvs) {
      auto it = wanted.find(kv.key);
      if (it != wanted.end() && it->second.count(kv.value)) {
        wanted.erase(it);  // its holder still has it
        continue;
      }
      // Its holder is gone or has let it go; a Service that has it gets it below.
      (void)store_.Delete(kv.key, kv.mod_revision);
    }
  }
  for (const auto& [key, owners] : wanted) (void)store_.Create(key, *owners.begin());
}

}  // namespace orch::api
