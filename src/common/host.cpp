// Implementation of orch/host.h: the real host (files, PATH, sockets) and the node defaults and
// `check-config` checks computed from any Host.
#include "orch/host.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <sstream>

#include "orch/names.h"

namespace orch {
namespace {

// Owns a file descriptor; closes it on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

class SystemHost : public Host {
 public:
  Result<std::string> ReadFile(const std::string& path) override {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) return NotFound(path + ": no such file");
      return Unavailable(fmt::format("{}: {}", path, std::strerror(errno)));
    }
    // /proc files report size 0, so read until EOF rather than trusting stat.
    std::string content;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Unavailable(fmt::format("{}: {}", path, std::strerror(errno)));
      if (n == 0) break;
      content.append(buf, static_cast<size_t>(n));
    }
    return content;
  }

  bool PathExists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  bool IsExecutable(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
  }

  std::string FindExecutable(const std::string& name) override {
    const char* env = std::getenv("PATH");
    // The sbin folders hold iptables and runc on Debian but are not on a normal user's PATH.
    std::string path = std::string(env ? env : "") + ":/usr/local/sbin:/usr/sbin:/sbin";
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (dir.empty()) continue;
      std::string candidate = dir + "/" + name;
      if (IsExecutable(candidate)) return candidate;
    }
    return "";
  }

  bool IsRoot() override { return ::geteuid() == 0; }

  Result<std::string> HostName() override {
    char buf[256] = {};
    if (::gethostname(buf, sizeof(buf) - 1) != 0) {
      return Unavailable(fmt::format("gethostname: {}", std::strerror(errno)));
    }
    return std::string(buf);
  }

  Result<IpAddress> SourceAddressFor(const IpAddress& destination) override {
    // connect(2) on a UDP socket only makes the kernel choose a route and a source address.
    sockaddr_storage addr{};
    socklen_t len;
    int family;
    if (destination.is_v4()) {
      auto* in = reinterpret_cast<sockaddr_in*>(&addr);
      in->sin_family = family = AF_INET;
      in->sin_port = htons(53);
      std::memcpy(&in->sin_addr, destination.bytes().data(), 4);
      len = sizeof(sockaddr_in);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
      in6->sin6_family = family = AF_INET6;
      in6->sin6_port = htons(53);
      std::memcpy(&in6->sin6_addr, destination.bytes().data(), 16);
      len = sizeof(sockaddr_in6);
    }
    Fd fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return Unavailable(fmt::format("socket: {}", std::strerror(errno)));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      return Unavailable(
          fmt::format("no route to {}: {}", destination.ToString(), std::strerror(errno)));
    }
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
      return Unavailable(fmt::format("getsockname: {}", std::strerror(errno)));
    }
    if (local.ss_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&local);
      return IpAddress::FromBytes(IpFamily::kV4, reinterpret_cast<uint8_t*>(&in->sin_addr));
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&local);
    return IpAddress::FromBytes(IpFamily::kV6, reinterpret_cast<uint8_t*>(&in6->sin6_addr));
  }
};

std::vector<std::string> SplitWhitespace(std::string_view line) {
  std::vector<std::string> fields;
  std::istringstream in{std::string(line)};
  std::string field;
  while (in >> field) fields.push_back(field);
  return fields;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

HostCheck Pass(std::string name, std::string detail) {
  return {std::move(name), HostCheck::Outcome::kPass, std::move(detail)};
}
HostCheck Warn(std::string name, std::string detail) {
  return {std::move(name), HostCheck::Outcome::kWarn, std::move(detail)};
}
HostCheck Fail(std::string name, std::string detail) {
  return {std::move(name), HostCheck::Outcome::kFail, std::move(detail)};
}

// Whether a kernel module file exists for the running kernel (compressed or not), i.e. whether
// the kernel can load it on demand.
bool ModuleAvailable(Host& host, const std::string& release, const std::string& relative) {
  for (const char* suffix : {"", ".xz", ".zst", ".gz"}) {
    if (host.PathExists(fmt::format("/lib/modules/{}/kernel/{}{}", release, relative, suffix))) {
      return true;
    }
  }
  return false;
}

HostCheck CheckKernel(const std::string& release) {
  if (release.empty()) return Fail("kernel", "cannot read /proc/sys/kernel/osrelease");
  int major = 0, minor = 0;
  std::sscanf(release.c_str(), "%d.%d", &major, &minor);
  if (major > 4 || (major == 4 && minor >= 15)) {
    return Pass("kernel", fmt::format("{} (4.15 or newer needed)", release));
  }
  return Fail("kernel", fmt::format("{} is too old: upgrade to Linux 4.15 or newer", release));
}

HostCheck CheckCgroups(Host& host) {
  auto v2 = host.ReadFile("/sys/fs/cgroup/cgroup.controllers");
  if (v2.ok()) {
    std::vector<std::string> controllers = SplitWhitespace(*v2);
    std::vector<std::string> missing;
    for (const char* needed : {"cpu", "memory"}) {
      if (std::find(controllers.begin(), controllers.end(), needed) == controllers.end()) {
        missing.emplace_back(needed);
      }
    }
    if (missing.empty()) return Pass("cgroups", "v2 (unified), cpu and memory controllers");
    return Fail("cgroups", fmt::format("v2 without the {} controller(s): enable them (kernel "
                                       "command line cgroup_enable=memory, or delegate them)",
                                       fmt::join(missing, ", ")));
  }
  auto v1 = host.ReadFile("/proc/cgroups");
  if (!v1.ok()) return Fail("cgroups", "no cgroup support found (/proc/cgroups is missing)");
  // Lines: subsys_name hierarchy num_cgroups enabled
  std::vector<std::string> missing;
  for (const char* needed : {"cpu", "memory"}) {
    bool enabled = false;
    std::istringstream lines(*v1);
    std::string line;
    while (std::getline(lines, line)) {
      std::vector<std::string> f = SplitWhitespace(line);
      if (f.size() >= 4 && f[0] == needed && f[3] == "1") enabled = true;
    }
    if (!enabled || !host.PathExists(std::string("/sys/fs/cgroup/") + needed)) {
      missing.emplace_back(needed);
    }
  }
  if (missing.empty()) return Pass("cgroups", "v1, cpu and memory controllers mounted");
  return Fail("cgroups",
              fmt::format("v1 without the {} controller(s) mounted: enable them (kernel command "
                          "line cgroup_enable=memory cgroup_memory=1) and mount /sys/fs/cgroup",
                          fmt::join(missing, ", ")));
}

HostCheck CheckOverlay(Host& host, const std::string& release) {
  auto filesystems = host.ReadFile("/proc/filesystems");
  if (filesystems.ok() && filesystems->find("\toverlay\n") != std::string::npos) {
    return Pass("overlayfs", "supported by the kernel");
  }
  if (ModuleAvailable(host, release, "fs/overlayfs/overlay.ko")) {
    return Pass("overlayfs", "available as a module (loaded on first use)");
  }
  return Fail("overlayfs",
              "the kernel has no overlay filesystem, which containerd's snapshotter "
              "needs: use a kernel with CONFIG_OVERLAY_FS");
}

HostCheck CheckFirewall(Host& host) {
  std::vector<std::string> found;
  for (const char* tool : {"iptables", "nft"}) {
    std::string path = host.FindExecutable(tool);
    if (!path.empty()) found.push_back(path);
  }
  if (found.empty()) {
    return Fail("iptables/nftables", "neither iptables nor nft found: apt-get install iptables");
  }
  return Pass("iptables/nftables", fmt::format("{}", fmt::join(found, ", ")));
}

HostCheck CheckExecutable(Host& host, const std::string& name, const std::string& package) {
  std::string path = host.FindExecutable(name);
  if (path.empty()) {
    return Fail(name, fmt::format("not found in PATH: apt-get install {}", package));
  }
  return Pass(name, path);
}

HostCheck CheckCniPlugins(Host& host) {
  static constexpr const char* kPlugins[] = {"bridge", "host-local", "portmap", "loopback"};
  std::vector<std::string> best_missing;
  for (const char* dir : {"/usr/lib/cni", "/opt/cni/bin"}) {
    std::vector<std::string> missing;
    for (const char* plugin : kPlugins) {
      if (!host.IsExecutable(fmt::format("{}/{}", dir, plugin))) missing.emplace_back(plugin);
    }
    if (missing.empty()) {
      return Pass("cni plugins", fmt::format("bridge, host-local, portmap, loopback in {}", dir));
    }
    if (best_missing.empty() || missing.size() < best_missing.size()) best_missing = missing;
  }
  return Fail("cni plugins", fmt::format("missing {} in /usr/lib/cni: apt-get install "
                                         "containernetworking-plugins",
                                         fmt::join(best_missing, ", ")));
}

HostCheck CheckIpForward(Host& host) {
  auto value = host.ReadFile("/proc/sys/net/ipv4/ip_forward");
  if (!value.ok()) return Fail("ip forwarding", "/proc/sys/net/ipv4/ip_forward is missing");
  if (Trim(*value) == "1") return Pass("ip forwarding", "on");
  return Warn("ip forwarding",
              "off now; the orch agent turns it on when it starts "
              "(net.ipv4.ip_forward=1)");
}

HostCheck CheckBrNetfilter(Host& host, const std::string& release) {
  if (host.PathExists("/proc/sys/net/bridge/bridge-nf-call-iptables")) {
    return Pass("br_netfilter", "loaded");
  }
  if (ModuleAvailable(host, release, "net/bridge/br_netfilter.ko")) {
    return Warn("br_netfilter", "available but not loaded: modprobe br_netfilter");
  }
  return Fail("br_netfilter",
              "not available: service traffic between pods on one node needs "
              "it; use a kernel with CONFIG_BRIDGE_NETFILTER");
}

}  // namespace

std::unique_ptr<Host> NewSystemHost() {
  return std::make_unique<SystemHost>();
}

Result<IpAddress> ParseDefaultGateway(std::string_view proc_net_route) {
  // Columns: Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT, addresses in
  // hex as the kernel stores them (network byte order read as a native integer).
  std::istringstream lines{std::string(proc_net_route)};
  std::string line;
  bool found = false;
  long best_metric = std::numeric_limits<long>::max();
  uint32_t best_gateway = 0;
  while (std::getline(lines, line)) {
    std::vector<std::string> f = SplitWhitespace(line);
    if (f.size() < 8 || f[0] == "Iface") continue;
    if (f[1] != "00000000" || f[7] != "00000000") continue;
    unsigned long flags = std::strtoul(f[3].c_str(), nullptr, 16);
    if ((flags & 0x1) == 0) continue;  // RTF_UP
    long metric = std::strtol(f[6].c_str(), nullptr, 10);
    if (metric < best_metric) {
      best_metric = metric;
      best_gateway = static_cast<uint32_t>(std::strtoul(f[2].c_str(), nullptr, 16));
      found = true;
    }
  }
  if (!found) return NotFound("no IPv4 default route");
  uint8_t bytes[4];
  std::memcpy(bytes, &best_gateway, 4);
  return IpAddress::FromBytes(IpFamily::kV4, bytes);
}

Result<std::string> DefaultNodeName(Host& host) {
  auto name = host.HostName();
  if (!name.ok()) return name.status();
  std::string lower = *name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!ValidateDnsSubdomain(lower).ok()) {
    return InvalidArgument(
        fmt::format("the host name '{}' is not a valid node name: pass --node-name", lower));
  }
  return lower;
}

Result<IpAddress> DefaultNodeIp(Host& host) {
  auto routes = host.ReadFile("/proc/net/route");
  if (!routes.ok()) {
    return Unavailable("cannot read /proc/net/route to find the node IP: pass --node-ip");
  }
  auto gateway = ParseDefaultGateway(*routes);
  if (!gateway.ok()) {
    return Unavailable("no IPv4 default route to pick the node IP from: pass --node-ip");
  }
  // A default route without a gateway (a point-to-point link) still routes any address; a
  // documentation address stands in for "anywhere" (nothing is sent).
  IpAddress destination = gateway->IsUnspecified() ? IpAddress::V4(0xC0000201) : *gateway;
  auto source = host.SourceAddressFor(destination);
  if (!source.ok()) {
    return Unavailable(
        fmt::format("cannot find the node IP ({}): pass --node-ip", source.status().message()));
  }
  return source;
}

std::vector<HostCheck> CheckHost(Host& host) {
  auto release_text = host.ReadFile("/proc/sys/kernel/osrelease");
  std::string release = release_text.ok() ? Trim(*release_text) : "";
  std::vector<HostCheck> checks;
  checks.push_back(CheckKernel(release));
  checks.push_back(CheckCgroups(host));
  checks.push_back(CheckOverlay(host, release));
  checks.push_back(CheckFirewall(host));
  checks.push_back(CheckExecutable(host, "containerd", "containerd"));
  checks.push_back(CheckExecutable(host, "runc", "runc"));
  checks.push_back(CheckCniPlugins(host));
  checks.push_back(CheckIpForward(host));
  checks.push_back(CheckBrNetfilter(host, release));
  if (host.IsRoot()) {
    checks.push_back(Pass("root", "running as root"));
  } else {
    checks.push_back(Fail("root", "orch server and orch agent must run as root (sudo)"));
  }
  return checks;
}

void RaiseOpenFileLimit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur >= files.rlim_max) return;
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
}

}  // namespace orch
