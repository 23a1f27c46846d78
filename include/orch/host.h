// The machine orch runs on, behind a small interface so what reads it (node defaults,
// `orch check-config`) is unit-tested with a fake host and e2e-tested with the real one.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "orch/net.h"
#include "orch/status.h"

namespace orch {

// Read-only questions about the host. Implementations are thread-compatible (no shared state).
class Host {
 public:
  virtual ~Host() = default;

  // The whole content of a (small) file such as /proc/net/route. kNotFound if it does not
  // exist, kUnavailable if it cannot be read.
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  virtual bool PathExists(const std::string& path) = 0;
  // True for a regular file the current user may execute.
  virtual bool IsExecutable(const std::string& path) = 0;
  // The full path of `name` in $PATH (plus the sbin folders, which a non-root PATH may lack),
  // or "" if absent.
  virtual std::string FindExecutable(const std::string& name) = 0;
  virtual bool IsRoot() = 0;
  virtual Result<std::string> HostName() = 0;
  // The local address the kernel picks to reach `destination` (a UDP connect: nothing is sent).
  virtual Result<IpAddress> SourceAddressFor(const IpAddress& destination) = 0;
};

// The real machine.
std::unique_ptr<Host> NewSystemHost();

// Raises this process's soft limit of open files to its hard limit: every watch, client and
// container stream is a descriptor, and the usual soft limit of 1024 is far too low for a server
// (Go programs such as k3s do the same at start). Children inherit it.
void RaiseOpenFileLimit();

// The gateway of the IPv4 default route with the lowest metric, from the text of
// /proc/net/route. kNotFound if there is no default route.
Result<IpAddress> ParseDefaultGateway(std::string_view proc_net_route);

// The node name orch uses when --node-name is not given: the host name, lowercased.
// kInvalidArgument if that is not a valid node name (the user must pass --node-name).
Result<std::string> DefaultNodeName(Host& host);

// The node IP orch uses when --node-ip is not given: the source address of the default route.
Result<IpAddress> DefaultNodeIp(Host& host);

// One line of `orch check-config`.
struct HostCheck {
  enum class Outcome { kPass, kWarn, kFail };
  std::string name;  // "cgroups", "containerd", ...
  Outcome outcome = Outcome::kPass;
  std::string detail;  // what was found, and for kWarn/kFail what to do about it
};

// Everything a node needs from the host: kernel, cgroups, overlayfs, iptables/nftables,
// containerd, runc, CNI plugins, IP forwarding, br_netfilter, root. A kFail means a server with
// an embedded agent, or an agent, cannot run pods here; kWarn is informative (orch fixes it).
std::vector<HostCheck> CheckHost(Host& host);

}  // namespace orch
