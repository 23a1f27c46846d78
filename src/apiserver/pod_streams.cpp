// Pod streaming subresources (pod_streams.h): upstream's checks and messages, then the agent's
// answer relayed to the client byte for byte, with only its response head made close-delimited.
#include "pod_streams.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>

#include "errors.h"
#include "object.h"
#include "orch/log.h"
#include "orch/node_link.h"

namespace orch::api {
namespace {

std::vector<std::string> ContainerNames(const json& pod, const char* field) {
  std::vector<std::string> names;
  if (!pod.contains("spec") || !pod["spec"].contains(field) || !pod["spec"][field].is_array()) {
    return names;
  }
  for (const json& c : pod["spec"][field]) {
    if (c.is_object() && c.contains("name") && c["name"].is_string()) {
      names.push_back(c["name"].get<std::string>());
    }
  }
  return names;
}

std::string GoList(const std::vector<std::string>& names) {
  return fmt::format("[{}]", fmt::join(names, " "));
}

// The container a request means: the one named, else the only one. Upstream's wording.
ApiResult<std::string> ResolveContainer(const json& pod, const std::string& pod_name,
                                        const std::string& requested) {
  auto containers = ContainerNames(pod, "containers");
  auto init = ContainerNames(pod, "initContainers");
  auto ephemeral = ContainerNames(pod, "ephemeralContainers");
  if (requested.empty()) {
    if (containers.size() == 1) return containers.front();
    std::string message =
        fmt::format("a container name must be specified for pod {}, choose one of: {}", pod_name,
                    GoList(containers));
    if (!init.empty()) message += " or one of the init containers: " + GoList(init);
    if (!ephemeral.empty()) message += " or one of the ephemeral containers: " + GoList(ephemeral);
    return ApiError::BadRequest(message);
  }
  for (const auto* list : {&containers, &init, &ephemeral}) {
    if (std::find(list->begin(), list->end(), requested) != list->end()) return requested;
  }
  return ApiError::BadRequest(
      fmt::format("container {} is not valid for pod {}", requested, pod_name));
}

const json* ContainerStatusOf(const json& pod, const std::string& container) {
  if (!pod.contains("status")) return nullptr;
  for (const char* field :
       {"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"}) {
    if (!pod["status"].contains(field) || !pod["status"][field].is_array()) continue;
    for (const json& s : pod["status"][field]) {
      if (s.is_object() && s.value("name", "") == container) return &s;
    }
  }
  return nullptr;
}

std::string StateField(const json& status, const char* state_key, const char* state,
                       const char* field) {
  if (!status.contains(state_key) || !status[state_key].is_object()) return "";
  const json& s = status[state_key];
  if (!s.contains(state) || !s[state].is_object()) return "";
  const json& v = s[state];
  return v.contains(field) && v[field].is_string() ? v[field].get<std::string>() : "";
}

std::string StripRuntime(const std::string& id) {
  auto at = id.find("://");
  return at == std::string::npos ? id : id.substr(at + 3);
}

// The runtime ID of the container run whose log is wanted, as the kubelet picks it.
ApiResult<std::string> LogContainerId(const json& pod, const std::string& pod_name,
                                      const std::string& container, bool previous) {
  const json* status = ContainerStatusOf(pod, container);
  if (status == nullptr) {
    return ApiError::BadRequest(
        fmt::format("container \"{}\" in pod \"{}\" is waiting to start: ContainerCreating",
                    container, pod_name));
  }
  std::string last = StateField(*status, "lastState", "terminated", "containerID");
  if (previous) {
    if (last.empty()) {
      return ApiError::BadRequest(fmt::format(
          "previous terminated container \"{}\" in pod \"{}\" not found", container, pod_name));
    }
    return StripRuntime(last);
  }
  // Running or terminated: the run is the status's own containerID.
  bool started =
      status->contains("state") && (*status)["state"].is_object() &&
      ((*status)["state"].contains("running") || (*status)["state"].contains("terminated"));
  if (started) {
    std::string id = status->contains("containerID") && (*status)["containerID"].is_string()
                         ? (*status)["containerID"].get<std::string>()
                         : StateField(*status, "state", "terminated", "containerID");
    if (!id.empty()) return StripRuntime(id);
  }
  // Waiting: a container in back-off shows its last run, as upstream does.
  if (!last.empty()) return StripRuntime(last);
  std::string reason = StateField(*status, "state", "waiting", "reason");
  return ApiError::BadRequest(fmt::format("container \"{}\" in pod \"{}\" is waiting to start: {}",
                                          container, pod_name,
                                          reason.empty() ? "ContainerCreating" : reason));
}

ApiError LogOptionsError(const Query& q) {
  auto positive = [&](const char* name, int64_t min, const char* must) -> std::string {
    if (!q.Has(name)) return "";
    try {
      size_t used = 0;
      std::string v = q.Get(name);
      int64_t n = std::stoll(v, &used);
      if (used != v.size()) throw std::invalid_argument(name);
      if (n < min) return fmt::format("{}: Invalid value: {}: {}", name, n, must);
    } catch (const std::exception&) {
      return fmt::format("{}: Invalid value: \"{}\": must be an integer", name, q.Get(name));
    }
    return "";
  };
  for (auto message : {positive("tailLines", 0, "must be greater than or equal to 0"),
                       positive("limitBytes", 1, "must be greater than 0"),
                       positive("sinceSeconds", 1, "must be greater than 0")}) {
    if (!message.empty()) return ApiError::BadRequest(message);
  }
  if (q.Has("sinceSeconds") && q.Has("sinceTime")) {
    return ApiError::BadRequest("at most one of `sinceTime` or `sinceSeconds` may be specified");
  }
  return ApiError{0, "", "", json()};
}

// Reads the agent's response head, makes it close-delimited, sends it on, then splices.
struct Relay : std::enable_shared_from_this<Relay> {
  std::shared_ptr<RawConnection> client, agent;
  std::string head;  // request head for the agent, then the response head read back
  std::array<char, 4096> buffer{};

  void Start(std::string request_head) {
    head = std::move(request_head);
    agent->Write(head, [self = shared_from_this()](bool ok) {
      if (!ok) return self->Fail();
      self->head.clear();
      self->ReadHead();
    });
  }

  void ReadHead() {
    agent->ReadSome(buffer.data(), buffer.size(), [self = shared_from_this()](bool ok, size_t n) {
      if (!ok) return self->Fail();
      self->head.append(self->buffer.data(), n);
      size_t length = link::HeadLength(self->head);
      if (length == 0) {
        if (self->head.size() > link::kMaxHeadBytes) return self->Fail();
        return self->ReadHead();
      }
      auto parsed = link::ParseHead(std::string_view(self->head).substr(0, length));
      if (!parsed) return self->Fail();
      std::string out = link::CloseDelimited(std::move(*parsed)) + self->head.substr(length);
      self->head = std::move(out);
      self->client->Write(self->head, [self](bool ok) {
        if (!ok) return self->Fail();
        Splice(self->client, self->agent);
      });
    });
  }

  void Fail() {
    // The agent went away before answering: tell the client in HTTP if nothing was sent yet.
    std::string body = ApiError::Unavailable("the node agent closed the stream before answering")
                           .ToStatus()
                           .dump();
    head = fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: "
        "{}\r\nConnection: close\r\n\r\n{}",
        body.size(), body);
    agent->Close();
    client->Write(head, [self = shared_from_this()](bool) { self->client->Close(); });
  }
};

}  // namespace

std::string AgentRequestHead(const Request& request, const std::string& target,
                             const std::string& node) {
  std::string head = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\n", request.method, target, node);
  for (const auto& [name, value] : request.headers.all()) {
    if (name == "authorization" || name == "host" || name == "content-length" ||
        name == "transfer-encoding" || name == "impersonate-user" || name == "impersonate-group") {
      continue;
    }
    head += name + ": " + value + "\r\n";
  }
  if (!request.body.empty()) head += fmt::format("Content-Length: {}\r\n", request.body.size());
  head += "\r\n";
  head += request.body;
  return head;
}

void PodStreams::Serve(const Request& request, const ResourceType& pods, const std::string& ns,
                       const std::string& name, const std::string& subresource,
                       std::shared_ptr<ResponseWriter> writer) {
  const bool log = subresource == "log";
  if (log ? request.method != "GET" : (request.method != "GET" && request.method != "POST")) {
    return writer->Send(ApiError::MethodNotAllowed(
                            "the server does not allow this method on the requested resource")
                            .ToResponse());
  }
  auto pod = rest_.Get(pods, ns, name);
  if (!pod.ok()) return writer->Send(pod.error().ToResponse());
  std::string node =
      pod->contains("spec") ? (*pod)["spec"].value("nodeName", std::string()) : std::string();
  if (node.empty()) {
    return writer->Send(
        ApiError::BadRequest(fmt::format("pod {} does not have a host assigned", name))
            .ToResponse());
  }
  const Query& q = request.query;
  std::string uid = Uid(*pod);
  auto qmark = request.target.find('?');
  std::string query = qmark == std::string::npos ? "" : request.target.substr(qmark + 1);
  std::string target;
  if (subresource == "portforward") {
    target = fmt::format("/portForward/{}/{}/{}", ns, name, uid);
  } else {
    auto container = ResolveContainer(*pod, name, q.Get("container"));
    if (!container.ok()) return writer->Send(container.error().ToResponse());
    if (log) {
      if (ApiError bad = LogOptionsError(q); bad.code != 0) return writer->Send(bad.ToResponse());
      std::string previous = q.Get("previous");
      bool want_previous = previous == "true" || previous == "1" || previous == "True";
      auto id = LogContainerId(*pod, name, *container, want_previous);
      if (!id.ok()) return writer->Send(id.error().ToResponse());
      query += fmt::format("{}containerID={}", query.empty() ? "" : "&", *id);
      target = fmt::format("/containerLogs/{}/{}/{}/{}", ns, name, uid, *container);
    } else {
      target = fmt::format("/{}/{}/{}/{}/{}", subresource, ns, name, uid, *container);
    }
  }
  if (!query.empty()) target += "?" + query;
  std::string head = AgentRequestHead(request, target, node);
  links_.OpenStream(
      node, [writer, head = std::move(head)](Result<std::shared_ptr<RawConnection>> agent) mutable {
        if (!agent.ok()) {
          return writer->Send(ApiError::Unavailable(agent.status().message()).ToResponse());
        }
        auto client = writer->TakeConnection();
        if (!client) {
          (*agent)->Close();
          return writer->Send(
              ApiError::BadRequest("streaming needs a network connection of its own").ToResponse());
        }
        auto relay = std::make_shared<Relay>();
        relay->client = std::move(client);
        relay->agent = std::move(*agent);
        relay->Start(std::move(head));
      });
}

}  // namespace orch::api
