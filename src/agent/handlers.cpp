// Probe and hook actions (handlers.h): exec through CRI, HTTP GET with cpp-httplib (Debian's
// shared library; CMake passes its defines), TCP connect with a non-blocking socket and poll.
#include "handlers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "orch/version.h"

namespace orch::agent {
namespace {

// Upstream reads at most this much of a probe's HTTP body.
constexpr size_t kMaxBody = 10 * 1024;

std::string HostPort(const std::string& host, int port) {
  // IPv6 literals in brackets, as Go's net.JoinHostPort writes them.
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

// strerror as Go words it: "connection refused", not "Connection refused".
std::string GoErrno(int err) {
  std::string s = strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

std::string Joined(const json& command) {
  std::string out;
  for (const json& part : command) {
    if (!part.is_string()) continue;
    if (!out.empty()) out += ' ';
    out += part.get<std::string>();
  }
  return out;
}

}  // namespace

std::string ProbeUserAgent() {
  std::string v = kKubernetesVersion;  // "v1.32.0"
  if (!v.empty() && v[0] == 'v') v.erase(0, 1);
  auto last = v.rfind('.');
  if (last != std::string::npos) v.resize(last);
  return "kube-probe/" + v;
}

Result<int> ResolvePort(const json& port, const json& container) {
  int64_t number = -1;
  if (port.is_number_integer()) {
    number = port.get<int64_t>();
  } else if (port.is_string()) {
    const std::string name = port.get<std::string>();
    bool digits = !name.empty() && std::all_of(name.begin(), name.end(),
                                               [](char c) { return c >= '0' && c <= '9'; });
    if (digits && name.size() < 7) {
      number = std::stoll(name);
    } else {
      for (const json& p : Array(container, {"ports"})) {
        if (Str(p, {"name"}) == name) number = Int(p, {"containerPort"}, -1);
      }
      if (number < 0) return InvalidArgument(fmt::format("couldn't find port: {}", port.dump()));
    }
  } else {
    return InvalidArgument("missing port");
  }
  if (number <= 0 || number > 65535) {
    return InvalidArgument(fmt::format("invalid port number: {}", number));
  }
  return static_cast<int>(number);
}

HandlerResult RunExecAction(cri::Runtime& runtime, const std::string& container_id,
                            const json& exec, std::chrono::seconds timeout) {
  std::vector<std::string> cmd;
  for (const json& part : Array(exec, {"command"})) {
    if (part.is_string()) cmd.push_back(part.get<std::string>());
  }
  if (cmd.empty()) return {HandlerOutcome::kError, "exec action has no command"};
  auto run = runtime.ExecSync(container_id, cmd, timeout);
  if (!run.ok()) return {HandlerOutcome::kError, run.status().message()};
  if (run->timed_out) {
    return {HandlerOutcome::kFailure,
            fmt::format("command \"{}\" timed out", Joined(At(exec, {"command"})))};
  }
  std::string output = run->stdout_data + run->stderr_data;
  return {run->exit_code == 0 ? HandlerOutcome::kSuccess : HandlerOutcome::kFailure,
          std::move(output)};
}

HandlerResult RunHttpGetAction(const json& http_get, const json& container,
                               const std::string& pod_ip, std::chrono::seconds timeout,
                               const std::string& user_agent) {
  auto port = ResolvePort(At(http_get, {"port"}), container);
  if (!port.ok()) return {HandlerOutcome::kError, port.status().message()};
  std::string host = Str(http_get, {"host"}, pod_ip);
  if (host.empty()) return {HandlerOutcome::kError, "the pod has no IP address yet"};
  std::string scheme = Str(http_get, {"scheme"}, "HTTP");
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "http" && scheme != "https") {
    return {HandlerOutcome::kError, fmt::format("unsupported scheme {}", scheme)};
  }
  std::string path = Str(http_get, {"path"}, "/");
  if (path.empty() || path[0] != '/') path = "/" + path;
  const std::string url = fmt::format("{}://{}{}", scheme, HostPort(host, *port), path);

  httplib::Headers headers;
  bool has_agent = false, has_accept = false;
  for (const json& h : Array(http_get, {"httpHeaders"})) {
    std::string name = Str(h, {"name"});
    if (name.empty()) continue;
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    has_agent = has_agent || lower == "user-agent";
    has_accept = has_accept || lower == "accept";
    headers.emplace(name, Str(h, {"value"}));
  }
  if (!has_agent && !user_agent.empty()) headers.emplace("User-Agent", user_agent);
  if (!has_accept) headers.emplace("Accept", "*/*");

  httplib::Client client(fmt::format("{}://{}", scheme, HostPort(host, *port)));
  if (scheme == "https") client.enable_server_certificate_verification(false);
  auto secs = static_cast<time_t>(std::max<int64_t>(timeout.count(), 1));
  client.set_connection_timeout(secs, 0);
  client.set_read_timeout(secs, 0);
  client.set_write_timeout(secs, 0);
  client.set_keep_alive(false);
  client.set_follow_location(false);
  std::string body;
  auto response = client.Get(path, headers, [&](const char* data, size_t len) {
    body.append(data, std::min(len, kMaxBody - std::min(kMaxBody, body.size())));
    return true;
  });
  if (!response) {
    std::string why = httplib::to_string(response.error());
    if (response.error() == httplib::Error::Read || response.error() == httplib::Error::Write) {
      why = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
    }
    return {HandlerOutcome::kFailure, fmt::format("Get \"{}\": {}", url, why)};
  }
  int code = response->status;
  if (code >= 200 && code < 400) return {HandlerOutcome::kSuccess, body};
  return {HandlerOutcome::kFailure, fmt::format("HTTP probe failed with statuscode: {}", code)};
}

HandlerResult RunTcpSocketAction(const json& tcp, const json& container, const std::string& pod_ip,
                                 std::chrono::seconds timeout) {
  auto port = ResolvePort(At(tcp, {"port"}), container);
  if (!port.ok()) return {HandlerOutcome::kError, port.status().message()};
  std::string host = Str(tcp, {"host"}, pod_ip);
  if (host.empty()) return {HandlerOutcome::kError, "the pod has no IP address yet"};
  const std::string where = fmt::format("dial tcp {}", HostPort(host, *port));

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port_text = std::to_string(*port);
  if (int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found); rc != 0) {
    return {HandlerOutcome::kFailure,
            fmt::format("{}: lookup {}: {}", where, host, gai_strerror(rc))};
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return {HandlerOutcome::kError, fmt::format("{}: socket: {}", where, GoErrno(errno))};
  auto fail = [&](const std::string& why) {
    ::close(fd);
    return HandlerResult{HandlerOutcome::kFailure, fmt::format("{}: {}", where, why)};
  };
  if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return fail("connect: " + GoErrno(errno));
    pollfd p{fd, POLLOUT, 0};
    int ms = static_cast<int>(std::max<int64_t>(timeout.count(), 1) * 1000);
    int ready;
    do {
      ready = ::poll(&p, 1, ms);
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) return fail("i/o timeout");
    int err = 0;
    socklen_t len = sizeof err;
    if (ready < 0)
      err = errno;
    else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = errno;
    if (err != 0) return fail("connect: " + GoErrno(err));
  }
  ::close(fd);
  return {HandlerOutcome::kSuccess, ""};
}

}  // namespace orch::agent
