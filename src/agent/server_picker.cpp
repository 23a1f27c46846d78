// The load balancer's choice of API server (server_picker.h): list, health, current server,
// and the conversions from URLs, Endpoints objects and the stored list.
#include "server_picker.h"

#include <fmt/format.h>

#include <algorithm>

#include "orch/net.h"

namespace orch::agent {

using json = nlohmann::json;

ServerPicker::ServerPicker(std::string join_server) : join_server_(std::move(join_server)) {
  Rebuild({});
  current_ = join_server_;
}

ServerPicker::Entry* ServerPicker::Find(const std::string& server) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const Entry& e) { return e.server == server; });
  return it == entries_.end() ? nullptr : &*it;
}

const ServerPicker::Entry* ServerPicker::Find(const std::string& server) const {
  return const_cast<ServerPicker*>(this)->Find(server);
}

void ServerPicker::Rebuild(const std::vector<std::string>& learned) {
  std::vector<Entry> next;
  auto add = [&](const std::string& server) {
    if (server.empty()) return;
    if (std::any_of(next.begin(), next.end(), [&](const Entry& e) { return e.server == server; })) {
      return;
    }
    const Entry* old = Find(server);
    next.push_back({server, old == nullptr || old->healthy});
  };
  learned_.clear();
  for (const std::string& s : learned) {
    size_t before = next.size();
    add(s);
    if (next.size() > before) learned_.push_back(s);
  }
  add(join_server_);
  entries_ = std::move(next);
}

bool ServerPicker::SetServers(const std::vector<std::string>& servers) {
  std::vector<std::string> cleaned;
  for (const std::string& s : servers) {
    if (!s.empty() && std::find(cleaned.begin(), cleaned.end(), s) == cleaned.end()) {
      cleaned.push_back(s);
    }
  }
  if (cleaned.empty() || cleaned == learned_) return false;
  Rebuild(cleaned);
  if (Find(current_) == nullptr) {
    // The current server left the cluster: the first healthy one takes over.
    auto order = DialOrder();
    current_ = order.empty() ? join_server_ : order.front();
  }
  return true;
}

std::vector<std::string> ServerPicker::servers() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.server);
  return out;
}

std::vector<std::string> ServerPicker::DialOrder() const {
  std::vector<std::string> healthy, unhealthy;
  // Start at the current server and go round the list, so that the servers after it are tried
  // before those before it: a failover walks the list instead of always restarting at its head.
  size_t start = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].server == current_) start = i;
  }
  for (size_t n = 0; n < entries_.size(); ++n) {
    const Entry& e = entries_[(start + n) % entries_.size()];
    (e.healthy ? healthy : unhealthy).push_back(e.server);
  }
  healthy.insert(healthy.end(), unhealthy.begin(), unhealthy.end());
  return healthy;
}

void ServerPicker::ReportConnected(const std::string& server) {
  Entry* e = Find(server);
  if (e == nullptr) return;
  e->healthy = true;
  const Entry* current = Find(current_);
  if (current == nullptr || !current->healthy) current_ = server;
}

bool ServerPicker::ReportFailed(const std::string& server) {
  Entry* e = Find(server);
  if (e == nullptr) return false;
  e->healthy = false;
  if (server != current_) return false;
  for (const std::string& next : DialOrder()) {
    const Entry* candidate = Find(next);
    if (candidate != nullptr && candidate->healthy) {
      current_ = next;
      return true;
    }
  }
  return false;  // nobody better: stay, and keep the connections that may still work
}

void ServerPicker::ReportHealthy(const std::string& server) {
  if (Entry* e = Find(server)) e->healthy = true;
}

std::string ServerPicker::current() const {
  return current_;
}

bool ServerPicker::healthy(const std::string& server) const {
  const Entry* e = Find(server);
  return e != nullptr && e->healthy;
}

std::string FormatServerList(const std::vector<std::string>& servers) {
  return json{{"servers", servers}}.dump() + "\n";
}

std::vector<std::string> ParseServerList(const std::string& text) {
  std::vector<std::string> out;
  json doc = json::parse(text, nullptr, false);
  if (!doc.is_object() || !doc.contains("servers") || !doc["servers"].is_array()) return out;
  for (const json& s : doc["servers"]) {
    if (s.is_string() && !s.get<std::string>().empty()) out.push_back(s.get<std::string>());
  }
  return out;
}

Result<std::string> ServerOfUrl(const std::string& url) {
  auto parsed = ParseHttpsUrl(url);
  if (!parsed.ok()) return parsed.status();
  if (parsed->host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", parsed->host, parsed->port);
  }
  return fmt::format("{}:{}", parsed->host, parsed->port);
}

std::vector<std::string> ServersOfEndpoints(const json& endpoints) {
  std::vector<std::string> out;
  if (!endpoints.is_object() || !endpoints.contains("subsets") ||
      !endpoints["subsets"].is_array()) {
    return out;
  }
  for (const json& subset : endpoints["subsets"]) {
    if (!subset.is_object() || !subset.contains("ports") || !subset["ports"].is_array()) continue;
    const json& ports = subset["ports"];
    int port = 0;
    for (const json& p : ports) {
      if (!p.is_object() || !p.contains("port") || !p["port"].is_number_integer()) continue;
      bool https = p.contains("name") && p["name"] == "https";
      if (https || (ports.size() == 1)) port = p["port"].get<int>();
      if (https) break;
    }
    if (port <= 0 || !subset.contains("addresses") || !subset["addresses"].is_array()) continue;
    for (const json& a : subset["addresses"]) {
      if (!a.is_object() || !a.contains("ip") || !a["ip"].is_string()) continue;
      std::string ip = a["ip"];
      if (ip.empty()) continue;
      std::string server = ip.find(':') != std::string::npos ? fmt::format("[{}]:{}", ip, port)
                                                             : fmt::format("{}:{}", ip, port);
      if (std::find(out.begin(), out.end(), server) == out.end()) out.push_back(server);
    }
  }
  return out;
}

}  // namespace orch::agent
