// Discovery documents (discovery.h), shaped as upstream serves them.
#include "discovery.h"

namespace orch::api {
namespace {

json GroupVersionEntry(const std::string& group, const std::string& version) {
  return {{"groupVersion", group + "/" + version}, {"version", version}};
}

json ResourceEntry(const ResourceType& t) {
  json r = {{"name", t.plural},
            {"singularName", t.singular},
            {"namespaced", t.namespaced},
            {"kind", t.kind},
            {"verbs", t.Verbs()}};
  if (!t.short_names.empty()) r["shortNames"] = t.short_names;
  if (!t.categories.empty()) r["categories"] = t.categories;
  return r;
}

json SubresourceEntry(const ResourceType& t, const Subresource& s) {
  json r = {{"name", t.plural + "/" + s.name},
            {"singularName", ""},
            {"namespaced", t.namespaced},
            {"kind", s.kind.empty() ? t.kind : s.kind},
            {"verbs", s.verbs}};
  if (!s.group.empty()) r["group"] = s.group;
  if (!s.version.empty()) r["version"] = s.version;
  return r;
}

}  // namespace

json ApiVersions(const std::string& server_address) {
  return {{"kind", "APIVersions"},
          {"versions", {"v1"}},
          {"serverAddressByClientCIDRs",
           {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address}}}}};
}

json ApiGroup(const ResourceSet& resources, const std::string& group) {
  for (const auto& [name, versions] : resources.Groups()) {
    if (name != group) continue;
    json list = json::array();
    for (const auto& v : versions) list.push_back(GroupVersionEntry(name, v));
    return {{"kind", "APIGroup"},
            {"apiVersion", "v1"},
            {"name", name},
            {"versions", list},
            {"preferredVersion", GroupVersionEntry(name, versions.front())}};
  }
  return nullptr;
}

json ApiGroupList(const ResourceSet& resources) {
  json groups = json::array();
  for (const auto& [name, versions] : resources.Groups()) {
    json g = ApiGroup(resources, name);
    g.erase("kind");
    g.erase("apiVersion");
    groups.push_back(std::move(g));
  }
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
}

json ApiResourceList(const ResourceSet& resources, const std::string& group,
                     const std::string& version) {
  json list = json::array();
  bool found = false;
  for (const auto& t : resources.all()) {
    if (t->group != group || t->version != version) continue;
    found = true;
    list.push_back(ResourceEntry(*t));
    for (const Subresource& s : t->subresources) list.push_back(SubresourceEntry(*t, s));
  }
  if (!found) return nullptr;
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", group.empty() ? version : group + "/" + version},
          {"resources", list}};
}

json AggregatedDiscovery(const ResourceSet& resources, bool legacy,
                         const std::string& api_version) {
  json items = json::array();
  auto add_group = [&](const std::string& group, const std::vector<std::string>& versions) {
    json version_list = json::array();
    for (const auto& v : versions) {
      json rs = json::array();
      for (const auto& t : resources.all()) {
        if (t->group != group || t->version != v) continue;
        json r = {{"resource", t->plural},
                  {"responseKind", {{"group", t->group}, {"version", t->version}, {"kind", t->kind}}},
                  {"scope", t->namespaced ? "Namespaced" : "Cluster"},
                  {"singularResource", t->singular},
                  {"verbs", t->Verbs()}};
        if (!t->short_names.empty()) r["shortNames"] = t->short_names;
        if (!t->categories.empty()) r["categories"] = t->categories;
        json subs = json::array();
        for (const Subresource& s : t->subresources) {
          subs.push_back({{"subresource", s.name},
                          {"responseKind",
                           {{"group", s.group.empty() ? t->group : s.group},
                            {"version", s.version.empty() ? t->version : s.version},
                            {"kind", s.kind.empty() ? t->kind : s.kind}}},
                          {"verbs", s.verbs}});
        }
        if (!subs.empty()) r["subresources"] = subs;
        rs.push_back(std::move(r));
      }
      version_list.push_back({{"version", v}, {"resources", rs}, {"freshness", "Current"}});
    }
    items.push_back({{"metadata", {{"name", group}, {"creationTimestamp", nullptr}}},
                     {"versions", version_list}});
  };
  if (legacy) {
    add_group("", {"v1"});
  } else {
    for (const auto& [name, versions] : resources.Groups()) add_group(name, versions);
  }
  return {{"kind", "APIGroupDiscoveryList"},
          {"apiVersion", api_version},
          {"metadata", json::object()},
          {"items", items}};
}

std::string AggregatedDiscoveryVersion(const std::string& accept) {
  // Offers are tried in the client's order; the first aggregated one we serve wins.
  size_t start = 0;
  while (start <= accept.size()) {
    size_t end = accept.find(',', start);
    std::string offer = accept.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (offer.find("as=APIGroupDiscoveryList") != std::string::npos &&
        offer.find("g=apidiscovery.k8s.io") != std::string::npos) {
      if (offer.find("v=v2beta1") != std::string::npos) return "v2beta1";
      if (offer.find("v=v2") != std::string::npos) return "v2";
    } else if (offer.find("application/json") != std::string::npos ||
               offer.find("*/*") != std::string::npos) {
      return "";
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

}  // namespace orch::api
