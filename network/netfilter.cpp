// The real Netfilter of the service proxy (include/orch/service_proxy.h) and the real route
// table of the node network: iptables-restore, iptables-save and `ip route` run as child
// processes (tool_runner.h), sysctls written under /proc/sys.
#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "orch/node_network.h"
#include "orch/service_proxy.h"
#include "tool_runner.h"

namespace orch {
namespace {

class SystemNetfilter : public Netfilter {
 public:
  SystemNetfilter()
      : restore_(net::FindTool("iptables-restore")),
        save_(net::FindTool("iptables-save")),
        iptables_(net::FindTool("iptables")) {}

  Status Restore(const std::string& rules) override {
    // -w: wait for the xtables lock another tool (a CNI plugin) may hold.
    auto out = net::RunTool({restore_, "--noflush", "-w", "5"}, rules);
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) {
      return Unavailable(fmt::format("iptables-restore (exit {}): {}", out->exit_code,
                                     net::TrimmedOutput(out->text)));
    }
    return Status::Ok();
  }

  Result<std::string> Save(const std::string& table) override {
    auto out = net::RunTool({save_, "-t", table}, "");
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) {
      return Unavailable(fmt::format("iptables-save (exit {}): {}", out->exit_code,
                                     net::TrimmedOutput(out->text)));
    }
    return std::move(out->text);
  }

  Result<std::string> SaveChain(const std::string& table, const std::string& chain) override {
    auto out = net::RunTool({iptables_, "-w", "5", "-t", table, "-S", chain}, "");
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) {
      return Unavailable(fmt::format("iptables -t {} -S {} (exit {}): {}", table, chain,
                                     out->exit_code, net::TrimmedOutput(out->text)));
    }
    return std::move(out->text);
  }

  Status SetSysctl(const std::string& key, const std::string& value) override {
    std::string path = "/proc/sys/" + key;
    std::ofstream file(path);
    file << value << "\n";
    file.flush();
    if (!file) return Unavailable(fmt::format("cannot write {}", path));
    return Status::Ok();
  }

 private:
  const std::string restore_;
  const std::string save_;
  const std::string iptables_;
};

// orch's routes carry this protocol number (unassigned in iproute2's rt_protos).
constexpr char kRouteProto[] = "199";

class SystemRouteTable : public RouteTable {
 public:
  SystemRouteTable() : ip_(net::FindTool("ip")) {}

  Result<std::vector<PodRoute>> List() override {
    auto out = net::RunTool({ip_, "-4", "route", "show", "proto", kRouteProto}, "");
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) {
      return Unavailable(fmt::format("ip route show: {}", net::TrimmedOutput(out->text)));
    }
    // "10.42.1.0/24 via 192.168.5.2 dev eth0 "
    std::vector<PodRoute> routes;
    std::istringstream lines(out->text);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream words(line);
      PodRoute route;
      std::string word;
      words >> route.cidr;
      while (words >> word) {
        if (word == "via") words >> route.via;
        if (word == "dev") words >> route.dev;
      }
      if (!route.cidr.empty() && !route.via.empty()) routes.push_back(std::move(route));
    }
    return routes;
  }

  Status Replace(const PodRoute& route) override {
    if (route.dev.empty()) {
      return Ip({"route", "replace", route.cidr, "via", route.via, "proto", kRouteProto});
    }
    // Through the VXLAN device: the next hop is the peer's flannel.1 address, which no subnet
    // of this node contains.
    return Ip({"route", "replace", route.cidr, "via", route.via, "dev", route.dev, "onlink",
               "proto", kRouteProto});
  }

  Status Delete(const PodRoute& route) override {
    return Ip({"route", "del", route.cidr, "via", route.via, "proto", kRouteProto});
  }

 private:
  Status Ip(std::vector<std::string> args) {
    args.insert(args.begin(), ip_);
    auto out = net::RunTool(args, "");
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) {
      std::string command;
      for (size_t i = 1; i < args.size(); ++i) command += " " + args[i];
      return Unavailable(fmt::format("ip{}: {}", command, net::TrimmedOutput(out->text)));
    }
    return Status::Ok();
  }

  const std::string ip_;
};

}  // namespace

std::unique_ptr<RouteTable> NewSystemRouteTable() {
  return std::make_unique<SystemRouteTable>();
}

std::unique_ptr<Netfilter> NewSystemNetfilter() {
  return std::make_unique<SystemNetfilter>();
}

}  // namespace orch
