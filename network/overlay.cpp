// The VXLAN overlay of the vxlan backend (include/orch/node_network.h): the flannel.1 device and
// its permanent neighbour and forwarding entries, kept with `ip` and `bridge`.
#include <fmt/format.h>

#include <sstream>

#include "orch/node_network.h"
#include "tool_runner.h"

namespace orch {
namespace {

struct Interface {
  std::string name;
  int mtu = 0;
};

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(std::move(w));
  return words;
}

std::vector<std::string> Lines(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(std::move(line));
  }
  return lines;
}

// The word after `key` in `words`, "" when absent.
std::string After(const std::vector<std::string>& words, const std::string& key) {
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    if (words[i] == key) return words[i + 1];
  }
  return "";
}

Result<std::string> Output(const std::vector<std::string>& argv) {
  auto out = net::RunTool(argv);
  if (!out.ok()) return out.status();
  if (out->exit_code != 0) {
    std::string command = argv[0].substr(argv[0].rfind('/') + 1);
    for (size_t i = 1; i < argv.size(); ++i) command += " " + argv[i];
    return Unavailable(fmt::format("{}: {}", command, net::TrimmedOutput(out->text)));
  }
  return std::move(out->text);
}

// The interface that holds `ip`, with its MTU, from `ip -o addr` and `ip -o link` (not /sys,
// which shows the namespace that mounted it rather than the caller's).
Result<Interface> InterfaceWith(const std::string& ip_tool, const std::string& ip) {
  auto addrs = Output({ip_tool, "-o", "-4", "addr", "show"});
  if (!addrs.ok()) return addrs.status();
  Interface found;
  for (const std::string& line : Lines(*addrs)) {
    // "2: eth0    inet 172.31.250.11/24 brd 172.31.250.255 scope global eth0\ ..."
    std::vector<std::string> words = Words(line);
    if (words.size() < 4 || words[2] != "inet") continue;
    if (words[3].substr(0, words[3].find('/')) != ip) continue;
    found.name = words[1].substr(0, words[1].find('@'));
    break;
  }
  if (found.name.empty()) {
    return NotFound(fmt::format("no interface of this node holds the node IP {}", ip));
  }
  auto link = Output({ip_tool, "-o", "link", "show", "dev", found.name});
  if (!link.ok()) return link.status();
  std::string mtu = After(Words(*link), "mtu");
  found.mtu = mtu.empty() ? 1500 : std::atoi(mtu.c_str());
  return found;
}

class SystemOverlay : public Overlay {
 public:
  SystemOverlay() : ip_(net::FindTool("ip")), bridge_(net::FindTool("bridge")) {}

  Result<std::string> Ensure(const std::string& node_ip, const std::string& address) override {
    auto parent = InterfaceWith(ip_, node_ip);
    if (!parent.ok()) return parent.status();
    auto details = net::RunTool({ip_, "-d", "-o", "link", "show", "dev", kVxlanDevice});
    if (!details.ok()) return details.status();
    bool exists = details->exit_code == 0;
    // A device made for another address, interface or VNI (the node IP changed) is rebuilt.
    std::string want =
        fmt::format("vxlan id {} local {} dev {} ", kVxlanVni, node_ip, parent->name);
    if (exists &&
        (details->text.find(want) == std::string::npos ||
         details->text.find(fmt::format("dstport {} ", kVxlanPort)) == std::string::npos)) {
      if (Status s = Ip({"link", "del", kVxlanDevice}); !s.ok()) return s;
      exists = false;
    }
    if (!exists) {
      // nolearning: the entries come from the Node annotations, never from traffic.
      if (Status s = Ip({"link", "add", kVxlanDevice, "type", "vxlan", "id",
                         std::to_string(kVxlanVni), "local", node_ip, "dev", parent->name,
                         "dstport", std::to_string(kVxlanPort), "nolearning"});
          !s.ok()) {
        return s;
      }
    }
    if (Status s = Ip({"link", "set", "dev", kVxlanDevice, "mtu",
                       std::to_string(parent->mtu - kVxlanOverhead)});
        !s.ok()) {
      return s;
    }
    auto addrs = Output({ip_, "-o", "-4", "addr", "show", "dev", kVxlanDevice});
    if (!addrs.ok()) return addrs.status();
    std::vector<std::string> have;
    for (const std::string& line : Lines(*addrs)) {
      std::vector<std::string> words = Words(line);
      if (words.size() >= 4 && words[2] == "inet") have.push_back(words[3]);
    }
    std::string cidr = address + "/32";
    if (have != std::vector<std::string>{cidr}) {
      if (Status s = Ip({"addr", "flush", "dev", kVxlanDevice}); !s.ok()) return s;
      if (Status s = Ip({"addr", "add", cidr, "dev", kVxlanDevice}); !s.ok()) return s;
    }
    if (Status s = Ip({"link", "set", "dev", kVxlanDevice, "up"}); !s.ok()) return s;
    auto link = Output({ip_, "-o", "link", "show", "dev", kVxlanDevice});
    if (!link.ok()) return link.status();
    std::string mac = After(Words(*link), "link/ether");
    if (mac.empty()) return Unavailable(fmt::format("{} has no MAC address", kVxlanDevice));
    return mac;
  }

  Result<std::vector<VxlanPeer>> ListPeers() override {
    // "10.42.2.0 lladdr aa:bb:cc:dd:ee:ff PERMANENT"
    auto neigh = Output({ip_, "-4", "neigh", "show", "dev", kVxlanDevice});
    if (!neigh.ok()) return neigh.status();
    // "aa:bb:cc:dd:ee:ff dst 192.168.5.2 self permanent"
    auto fdb = Output({bridge_, "fdb", "show", "dev", kVxlanDevice});
    if (!fdb.ok()) return fdb.status();
    std::vector<VxlanPeer> peers;
    for (const std::string& line : Lines(*fdb)) {
      std::vector<std::string> words = Words(line);
      std::string dst = After(words, "dst");
      if (words.empty() || dst.empty()) continue;
      peers.push_back({"", "", words[0], dst});
    }
    for (const std::string& line : Lines(*neigh)) {
      std::vector<std::string> words = Words(line);
      std::string mac = After(words, "lladdr");
      if (words.empty() || mac.empty()) continue;
      bool matched = false;
      for (VxlanPeer& peer : peers) {
        if (peer.mac == mac && peer.gateway.empty()) {
          peer.gateway = words[0];
          matched = true;
          break;
        }
      }
      // A second CIDR of the same peer, or an entry without its forwarding half.
      if (!matched) {
        std::string node_ip;
        for (const VxlanPeer& peer : peers) {
          if (peer.mac == mac) node_ip = peer.node_ip;
        }
        peers.push_back({"", words[0], mac, node_ip});
      }
    }
    return peers;
  }

  Status AddPeer(const VxlanPeer& peer) override {
    if (Status s = Ip({"neigh", "replace", peer.gateway, "lladdr", peer.mac, "dev", kVxlanDevice,
                       "nud", "permanent"});
        !s.ok()) {
      return s;
    }
    return net::RunToolChecked({bridge_, "fdb", "replace", peer.mac, "dev", kVxlanDevice, "dst",
                                peer.node_ip, "self", "permanent"});
  }

  Status DeletePeer(const VxlanPeer& peer) override {
    Status result = Status::Ok();
    if (!peer.gateway.empty()) result = Ip({"neigh", "del", peer.gateway, "dev", kVxlanDevice});
    if (!peer.node_ip.empty()) {
      // Another CIDR of the same peer may still need the forwarding entry.
      Status s = net::RunToolChecked(
          {bridge_, "fdb", "del", peer.mac, "dev", kVxlanDevice, "dst", peer.node_ip, "self"});
      if (result.ok()) result = s;
    }
    return result;
  }

  Status Remove() override {
    auto out = net::RunTool({ip_, "-o", "link", "show", "dev", kVxlanDevice});
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) return Status::Ok();  // none
    return Ip({"link", "del", kVxlanDevice});
  }

 private:
  Status Ip(std::vector<std::string> args) {
    args.insert(args.begin(), ip_);
    return net::RunToolChecked(args);
  }

  const std::string ip_;
  const std::string bridge_;
};

}  // namespace

std::unique_ptr<Overlay> NewSystemOverlay() {
  return std::make_unique<SystemOverlay>();
}

Result<int> PodMtu(const std::string& backend, const std::string& node_ip) {
  auto parent = InterfaceWith(net::FindTool("ip"), node_ip);
  if (!parent.ok()) return parent.status();
  if (backend == "vxlan") return parent->mtu - kVxlanOverhead;
  // Routed as they are: only a link narrower than the bridge plugin's 1500 matters.
  return parent->mtu < 1500 ? parent->mtu : 0;
}

}  // namespace orch
