// Node defaults and check-config against a fake host; the real host answers basic questions.
#include "orch/host.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>

namespace {

// A host made of a map of files and a set of executables.
class FakeHost : public orch::Host {
 public:
  std::map<std::string, std::string> files;
  std::set<std::string> executables;  // full paths
  std::set<std::string> paths;        // exist, content irrelevant
  bool root = true;
  std::string host_name = "Node-1";
  orch::Result<orch::IpAddress> source = *orch::IpAddress::Parse("192.168.1.20");
  orch::IpAddress last_destination;

  orch::Result<std::string> ReadFile(const std::string& path) override {
    auto it = files.find(path);
    if (it == files.end()) return orch::NotFound(path);
    return it->second;
  }
  bool PathExists(const std::string& path) override {
    return files.count(path) || paths.count(path) || executables.count(path);
  }
  bool IsExecutable(const std::string& path) override { return executables.count(path) > 0; }
  std::string FindExecutable(const std::string& name) override {
    for (const char* dir : {"/usr/bin/", "/usr/sbin/"}) {
      if (executables.count(dir + name)) return dir + name;
    }
    return "";
  }
  bool IsRoot() override { return root; }
  orch::Result<std::string> HostName() override { return host_name; }
  orch::Result<orch::IpAddress> SourceAddressFor(const orch::IpAddress& destination) override {
    last_destination = destination;
    return source;
  }
};

constexpr const char* kRoutes =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth1\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

// A host where every check passes (cgroup v1, as on the CI machines).
FakeHost HealthyHost() {
  FakeHost host;
  host.files["/proc/sys/kernel/osrelease"] = "6.1.0-18-amd64\n";
  host.files["/proc/cgroups"] =
      "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t1\t1\nmemory\t3\t1\t1\n";
  host.paths = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory",
                "/proc/sys/net/bridge/bridge-nf-call-iptables"};
  host.files["/proc/filesystems"] = "nodev\tsysfs\nnodev\toverlay\n";
  host.files["/proc/sys/net/ipv4/ip_forward"] = "1\n";
  host.executables = {"/usr/sbin/iptables",   "/usr/bin/containerd",     "/usr/sbin/runc",
                      "/usr/lib/cni/bridge",  "/usr/lib/cni/host-local", "/usr/lib/cni/portmap",
                      "/usr/lib/cni/loopback"};
  return host;
}

const orch::HostCheck& Find(const std::vector<orch::HostCheck>& checks, const std::string& name) {
  for (const auto& c : checks) {
    if (c.name == name) return c;
  }
  FAIL("no check named " << name);
  return checks.front();
}

}  // namespace

using Outcome = orch::HostCheck::Outcome;

TEST_CASE("The default gateway is the lowest-metric default route") {
  auto gw = orch::ParseDefaultGateway(kRoutes);
  REQUIRE(gw.ok());
  CHECK(gw->ToString() == "192.0.2.1");
  CHECK(orch::ParseDefaultGateway("Iface\tDestination\n").status().code() ==
        orch::StatusCode::kNotFound);
}

TEST_CASE("Node defaults come from the host name and the default route") {
  FakeHost host;
  host.files["/proc/net/route"] = kRoutes;
  CHECK(*orch::DefaultNodeName(host) == "node-1");
  auto ip = orch::DefaultNodeIp(host);
  REQUIRE(ip.ok());
  CHECK(ip->ToString() == "192.168.1.20");
  CHECK(host.last_destination.ToString() == "192.0.2.1");

  host.host_name = "under_score";
  CHECK_THAT(orch::DefaultNodeName(host).status().message(), Catch::Contains("--node-name"));
  host.files["/proc/net/route"] = "Iface\tDestination\n";
  CHECK_THAT(orch::DefaultNodeIp(host).status().message(), Catch::Contains("--node-ip"));
}

TEST_CASE("check-config passes on a healthy host") {
  FakeHost host = HealthyHost();
  auto checks = orch::CheckHost(host);
  CHECK(checks.size() == 10);
  for (const auto& c : checks) {
    INFO(c.name << ": " << c.detail);
    CHECK(c.outcome == Outcome::kPass);
  }
}

TEST_CASE("check-config says what to install") {
  FakeHost host = HealthyHost();
  host.executables.erase("/usr/bin/containerd");
  host.executables.erase("/usr/lib/cni/portmap");
  host.files["/proc/sys/net/ipv4/ip_forward"] = "0\n";
  host.paths.erase("/proc/sys/net/bridge/bridge-nf-call-iptables");
  host.paths.insert("/lib/modules/6.1.0-18-amd64/kernel/net/bridge/br_netfilter.ko.xz");
  host.root = false;
  auto checks = orch::CheckHost(host);

  CHECK(Find(checks, "containerd").outcome == Outcome::kFail);
  CHECK_THAT(Find(checks, "containerd").detail, Catch::Contains("apt-get install containerd"));
  CHECK(Find(checks, "cni plugins").outcome == Outcome::kFail);
  CHECK_THAT(Find(checks, "cni plugins").detail,
             Catch::Contains("portmap") && Catch::Contains("containernetworking-plugins"));
  CHECK(Find(checks, "ip forwarding").outcome == Outcome::kWarn);
  CHECK(Find(checks, "br_netfilter").outcome == Outcome::kWarn);
  CHECK(Find(checks, "root").outcome == Outcome::kFail);
  CHECK(Find(checks, "runc").outcome == Outcome::kPass);
}

TEST_CASE("check-config reads cgroup v2 and old kernels") {
  FakeHost host = HealthyHost();
  host.files["/sys/fs/cgroup/cgroup.controllers"] = "cpuset cpu io memory pids\n";
  CHECK(Find(orch::CheckHost(host), "cgroups").outcome == Outcome::kPass);
  host.files["/sys/fs/cgroup/cgroup.controllers"] = "cpuset io pids\n";
  CHECK(Find(orch::CheckHost(host), "cgroups").outcome == Outcome::kFail);
  host.files["/proc/sys/kernel/osrelease"] = "4.4.0\n";
  CHECK(Find(orch::CheckHost(host), "kernel").outcome == Outcome::kFail);
}

TEST_CASE("The system host answers") {
  auto host = orch::NewSystemHost();
  CHECK(host->ReadFile("/proc/self/status").ok());
  CHECK(host->ReadFile("/nonexistent/file").status().code() == orch::StatusCode::kNotFound);
  CHECK(host->PathExists("/"));
  CHECK_FALSE(host->FindExecutable("sh").empty());
  CHECK(host->FindExecutable("no-such-program-orch").empty());
  auto source = host->SourceAddressFor(*orch::IpAddress::Parse("127.0.0.1"));
  REQUIRE(source.ok());
  CHECK(source->IsLoopback());
}
