// The CRI v1 gRPC client behind include/orch/runtime.h: translates orch's plain structs to and
// from the generated messages of runtime/proto/cri_api.proto, one unary call with a deadline each.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <utility>

#include "cri_api.grpc.pb.h"
#include "orch/runtime.h"

namespace orch::cri {
namespace {

namespace pb = ::runtime::v1;

// gRPC's default reconnect back-off starts at 1 s and grows to 120 s; a containerd restarted by
// its supervisor is back within a second, and the agent should notice at once. Note that a
// reconnection makes progress only while some call waits for it (otherwise only gRPC's 5 s
// backup poller drives it): Version and Status wait for readiness, the other calls fail fast.
constexpr int kMinReconnectMs = 100;
constexpr int kMaxReconnectMs = 2000;
// Stop and exec calls run for the caller's timeout plus this much runtime work.
constexpr std::chrono::seconds kCallSlack(30);

Status FromGrpc(const grpc::Status& s, std::string_view what) {
  const std::string& msg = s.error_message();
  std::string text = fmt::format("{}: {}", what, msg);
  switch (s.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      return NotFound(std::move(text));
    case grpc::StatusCode::ALREADY_EXISTS:
      return AlreadyExists(std::move(text));
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return InvalidArgument(std::move(text));
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
      return Unavailable(std::move(text));
    case grpc::StatusCode::CANCELLED:
      return Cancelled(std::move(text));
    default:
      // containerd answers a taken sandbox or container name with Unknown and this wording.
      if (msg.find("is reserved for") != std::string::npos) return AlreadyExists(std::move(text));
      // Pulls of an absent image or tag come back as Unknown with "not found" from the resolver.
      if (msg.find(": not found") != std::string::npos) return NotFound(std::move(text));
      return Internal(std::move(text));
  }
}

// --- orch structs -> messages ---

pb::NamespaceMode ToPb(NamespaceMode m) {
  switch (m) {
    case NamespaceMode::kPod:
      return pb::POD;
    case NamespaceMode::kContainer:
      return pb::CONTAINER;
    case NamespaceMode::kNode:
      return pb::NODE;
  }
  return pb::POD;
}

void FillNamespaces(const NamespaceOptions& in, pb::NamespaceOption* out) {
  out->set_network(ToPb(in.network));
  out->set_pid(ToPb(in.pid));
  out->set_ipc(ToPb(in.ipc));
}

template <typename Map>
void FillMap(const Labels& in, Map* out) {
  for (const auto& [k, v] : in) (*out)[k] = v;
}

template <typename Map>
Labels ToLabels(const Map& in) {
  return Labels(in.begin(), in.end());
}

void FillSandboxConfig(const PodSandboxConfig& in, pb::PodSandboxConfig* out) {
  auto* meta = out->mutable_metadata();
  meta->set_name(in.name);
  meta->set_uid(in.uid);
  meta->set_namespace_(in.namespace_);
  meta->set_attempt(in.attempt);
  out->set_hostname(in.hostname);
  out->set_log_directory(in.log_directory);
  if (!in.dns.servers.empty() || !in.dns.searches.empty() || !in.dns.options.empty()) {
    auto* dns = out->mutable_dns_config();
    for (const auto& s : in.dns.servers) dns->add_servers(s);
    for (const auto& s : in.dns.searches) dns->add_searches(s);
    for (const auto& s : in.dns.options) dns->add_options(s);
  }
  for (const auto& p : in.port_mappings) {
    auto* pm = out->add_port_mappings();
    pm->set_protocol(p.protocol == Protocol::kUdp    ? pb::UDP
                     : p.protocol == Protocol::kSctp ? pb::SCTP
                                                     : pb::TCP);
    pm->set_container_port(p.container_port);
    pm->set_host_port(p.host_port);
    pm->set_host_ip(p.host_ip);
  }
  FillMap(in.labels, out->mutable_labels());
  FillMap(in.annotations, out->mutable_annotations());
  auto* linux = out->mutable_linux();
  linux->set_cgroup_parent(in.cgroup_parent);
  FillMap(in.sysctls, linux->mutable_sysctls());
  auto* sc = linux->mutable_security_context();
  FillNamespaces(in.security.namespaces, sc->mutable_namespace_options());
  if (in.security.run_as_user) sc->mutable_run_as_user()->set_value(*in.security.run_as_user);
  if (in.security.run_as_group) sc->mutable_run_as_group()->set_value(*in.security.run_as_group);
  for (int64_t g : in.security.supplemental_groups) sc->add_supplemental_groups(g);
  sc->set_privileged(in.security.privileged);
  sc->set_readonly_rootfs(in.security.readonly_rootfs);
}

void FillContainerConfig(const ContainerConfig& in, pb::ContainerConfig* out) {
  out->mutable_metadata()->set_name(in.name);
  out->mutable_metadata()->set_attempt(in.attempt);
  out->mutable_image()->set_image(in.image);
  for (const auto& s : in.command) out->add_command(s);
  for (const auto& s : in.args) out->add_args(s);
  out->set_working_dir(in.working_dir);
  for (const auto& [k, v] : in.env) {
    auto* kv = out->add_envs();
    kv->set_key(k);
    kv->set_value(v);
  }
  for (const auto& m : in.mounts) {
    auto* pm = out->add_mounts();
    pm->set_host_path(m.host_path);
    pm->set_container_path(m.container_path);
    pm->set_readonly(m.readonly);
    pm->set_propagation(
        m.propagation == MountPropagation::kBidirectional     ? pb::PROPAGATION_BIDIRECTIONAL
        : m.propagation == MountPropagation::kHostToContainer ? pb::PROPAGATION_HOST_TO_CONTAINER
                                                              : pb::PROPAGATION_PRIVATE);
  }
  FillMap(in.labels, out->mutable_labels());
  FillMap(in.annotations, out->mutable_annotations());
  out->set_log_path(in.log_path);
  out->set_stdin(in.open_stdin);
  out->set_stdin_once(in.stdin_once);
  out->set_tty(in.tty);
  auto* res = out->mutable_linux()->mutable_resources();
  res->set_cpu_shares(in.resources.cpu_shares);
  res->set_cpu_quota(in.resources.cpu_quota);
  res->set_cpu_period(in.resources.cpu_period);
  res->set_memory_limit_in_bytes(in.resources.memory_limit_bytes);
  res->set_oom_score_adj(in.resources.oom_score_adj);
  auto* sc = out->mutable_linux()->mutable_security_context();
  const ContainerSecurityContext& s = in.security;
  FillNamespaces(s.namespaces, sc->mutable_namespace_options());
  if (s.run_as_user) sc->mutable_run_as_user()->set_value(*s.run_as_user);
  if (s.run_as_group) sc->mutable_run_as_group()->set_value(*s.run_as_group);
  for (int64_t g : s.supplemental_groups) sc->add_supplemental_groups(g);
  sc->set_privileged(s.privileged);
  sc->set_readonly_rootfs(s.readonly_rootfs);
  sc->set_no_new_privs(s.no_new_privs);
  if (!s.capabilities_add.empty() || !s.capabilities_drop.empty()) {
    auto* caps = sc->mutable_capabilities();
    for (const auto& c : s.capabilities_add) caps->add_add_capabilities(c);
    for (const auto& c : s.capabilities_drop) caps->add_drop_capabilities(c);
  }
}

pb::ContainerState ToPb(ContainerState s) {
  switch (s) {
    case ContainerState::kCreated:
      return pb::CONTAINER_CREATED;
    case ContainerState::kRunning:
      return pb::CONTAINER_RUNNING;
    case ContainerState::kExited:
      return pb::CONTAINER_EXITED;
    case ContainerState::kUnknown:
      return pb::CONTAINER_UNKNOWN;
  }
  return pb::CONTAINER_UNKNOWN;
}

// --- messages -> orch structs ---

ContainerState FromPb(pb::ContainerState s) {
  switch (s) {
    case pb::CONTAINER_CREATED:
      return ContainerState::kCreated;
    case pb::CONTAINER_RUNNING:
      return ContainerState::kRunning;
    case pb::CONTAINER_EXITED:
      return ContainerState::kExited;
    default:
      return ContainerState::kUnknown;
  }
}

SandboxState FromPb(pb::PodSandboxState s) {
  return s == pb::SANDBOX_READY ? SandboxState::kReady : SandboxState::kNotReady;
}

void FillSandboxMeta(const pb::PodSandboxMetadata& m, PodSandbox* out) {
  out->name = m.name();
  out->uid = m.uid();
  out->namespace_ = m.namespace_();
  out->attempt = m.attempt();
}

PodSandbox ToSandbox(const pb::PodSandbox& in) {
  PodSandbox out;
  out.id = in.id();
  FillSandboxMeta(in.metadata(), &out);
  out.state = FromPb(in.state());
  out.created_at = in.created_at();
  out.labels = ToLabels(in.labels());
  out.annotations = ToLabels(in.annotations());
  return out;
}

Container ToContainer(const pb::Container& in) {
  Container out;
  out.id = in.id();
  out.sandbox_id = in.pod_sandbox_id();
  out.name = in.metadata().name();
  out.attempt = in.metadata().attempt();
  out.image = in.image().image();
  out.image_ref = in.image_ref();
  out.state = FromPb(in.state());
  out.created_at = in.created_at();
  out.labels = ToLabels(in.labels());
  out.annotations = ToLabels(in.annotations());
  return out;
}

ContainerStats ToStats(const pb::ContainerStats& in) {
  ContainerStats out;
  out.id = in.attributes().id();
  out.name = in.attributes().metadata().name();
  out.cpu_timestamp = in.cpu().timestamp();
  out.cpu_usage_core_nanoseconds = in.cpu().usage_core_nano_seconds().value();
  out.cpu_usage_nano_cores = in.cpu().usage_nano_cores().value();
  out.memory_timestamp = in.memory().timestamp();
  out.memory_working_set_bytes = in.memory().working_set_bytes().value();
  out.memory_usage_bytes = in.memory().usage_bytes().value();
  out.writable_layer_used_bytes = in.writable_layer().used_bytes().value();
  return out;
}

Image ToImage(const pb::Image& in) {
  Image out;
  out.id = in.id();
  out.repo_tags.assign(in.repo_tags().begin(), in.repo_tags().end());
  out.repo_digests.assign(in.repo_digests().begin(), in.repo_digests().end());
  out.size = in.size();
  if (in.has_uid()) out.uid = in.uid().value();
  out.username = in.username();
  out.pinned = in.pinned();
  return out;
}

// "unix:///run/x.sock" or "/run/x.sock" -> gRPC's "unix:///run/x.sock".
Result<std::string> GrpcTarget(const std::string& endpoint) {
  std::string path;
  if (endpoint.rfind("unix://", 0) == 0) {
    path = endpoint.substr(7);
  } else if (!endpoint.empty() && endpoint[0] == '/') {
    path = endpoint;
  }
  if (path.empty() || path[0] != '/') {
    return InvalidArgument(
        fmt::format("container runtime endpoint {:?} is not unix:///absolute/path.sock", endpoint));
  }
  return "unix://" + path;
}

class CriClient final : public Runtime {
 public:
  CriClient(const CriClientOptions& options, const std::string& target) : options_(options) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kMinReconnectMs);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kMinReconnectMs);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectMs);
    // Image and container lists of a busy node exceed gRPC's 4 MiB default.
    args.SetMaxReceiveMessageSize(16 << 20);
    channel_ = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    runtime_ = pb::RuntimeService::NewStub(channel_);
    images_ = pb::ImageService::NewStub(channel_);
  }

  Result<VersionInfo> GetVersion() override {
    pb::VersionRequest req;
    req.set_version("v1");
    pb::VersionResponse resp;
    auto ctx = Context(options_.probe_timeout, /*wait_for_ready=*/true);
    grpc::Status s = runtime_->Version(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "CRI Version");
    return VersionInfo{resp.runtime_api_version(), resp.runtime_name(), resp.runtime_version()};
  }

  Result<RuntimeStatus> GetRuntimeStatus() override {
    pb::StatusRequest req;
    pb::StatusResponse resp;
    auto ctx = Context(options_.probe_timeout, /*wait_for_ready=*/true);
    grpc::Status s = runtime_->Status(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "CRI Status");
    RuntimeStatus out;
    for (const auto& c : resp.status().conditions()) {
      out.conditions.push_back({c.type(), c.status(), c.reason(), c.message()});
      if (c.type() == "RuntimeReady") out.runtime_ready = c.status();
      if (c.type() == "NetworkReady") out.network_ready = c.status();
    }
    return out;
  }

  Result<std::string> RunPodSandbox(const PodSandboxConfig& config) override {
    pb::RunPodSandboxRequest req;
    FillSandboxConfig(config, req.mutable_config());
    pb::RunPodSandboxResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->RunPodSandbox(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "RunPodSandbox " + config.namespace_ + "/" + config.name);
    return resp.pod_sandbox_id();
  }

  Status StopPodSandbox(const std::string& sandbox_id) override {
    pb::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(sandbox_id);
    pb::StopPodSandboxResponse resp;
    auto ctx = Context(options_.call_timeout);
    return Tolerate(runtime_->StopPodSandbox(ctx.get(), req, &resp),
                    "StopPodSandbox " + sandbox_id);
  }

  Status RemovePodSandbox(const std::string& sandbox_id) override {
    pb::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(sandbox_id);
    pb::RemovePodSandboxResponse resp;
    auto ctx = Context(options_.call_timeout);
    return Tolerate(runtime_->RemovePodSandbox(ctx.get(), req, &resp),
                    "RemovePodSandbox " + sandbox_id);
  }

  Result<PodSandboxStatus> GetPodSandboxStatus(const std::string& sandbox_id) override {
    pb::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(sandbox_id);
    pb::PodSandboxStatusResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->PodSandboxStatus(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "PodSandboxStatus " + sandbox_id);
    const pb::PodSandboxStatus& st = resp.status();
    PodSandboxStatus out;
    out.sandbox.id = st.id();
    FillSandboxMeta(st.metadata(), &out.sandbox);
    out.sandbox.state = FromPb(st.state());
    out.sandbox.created_at = st.created_at();
    out.sandbox.labels = ToLabels(st.labels());
    out.sandbox.annotations = ToLabels(st.annotations());
    out.ip = st.network().ip();
    for (const auto& ip : st.network().additional_ips()) out.additional_ips.push_back(ip.ip());
    out.host_network = st.linux().namespaces().options().network() == pb::NODE;
    return out;
  }

  Result<std::vector<PodSandbox>> ListPodSandboxes(const SandboxFilter& filter) override {
    pb::ListPodSandboxRequest req;
    auto* f = req.mutable_filter();
    f->set_id(filter.id);
    if (filter.state) {
      f->mutable_state()->set_state(*filter.state == SandboxState::kReady ? pb::SANDBOX_READY
                                                                          : pb::SANDBOX_NOTREADY);
    }
    FillMap(filter.label_selector, f->mutable_label_selector());
    pb::ListPodSandboxResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->ListPodSandbox(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "ListPodSandbox");
    std::vector<PodSandbox> out;
    out.reserve(resp.items_size());
    for (const auto& item : resp.items()) out.push_back(ToSandbox(item));
    return out;
  }

  Result<std::string> CreateContainer(const std::string& sandbox_id, const ContainerConfig& config,
                                      const PodSandboxConfig& sandbox) override {
    pb::CreateContainerRequest req;
    req.set_pod_sandbox_id(sandbox_id);
    FillContainerConfig(config, req.mutable_config());
    FillSandboxConfig(sandbox, req.mutable_sandbox_config());
    pb::CreateContainerResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->CreateContainer(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "CreateContainer " + config.name);
    return resp.container_id();
  }

  Status StartContainer(const std::string& container_id) override {
    pb::StartContainerRequest req;
    req.set_container_id(container_id);
    pb::StartContainerResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->StartContainer(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "StartContainer " + container_id);
    return Status::Ok();
  }

  Status StopContainer(const std::string& container_id, std::chrono::seconds grace) override {
    pb::StopContainerRequest req;
    req.set_container_id(container_id);
    req.set_timeout(grace.count());
    pb::StopContainerResponse resp;
    auto ctx = Context(options_.call_timeout + grace);
    return Tolerate(runtime_->StopContainer(ctx.get(), req, &resp),
                    "StopContainer " + container_id);
  }

  Status RemoveContainer(const std::string& container_id) override {
    pb::RemoveContainerRequest req;
    req.set_container_id(container_id);
    pb::RemoveContainerResponse resp;
    auto ctx = Context(options_.call_timeout);
    return Tolerate(runtime_->RemoveContainer(ctx.get(), req, &resp),
                    "RemoveContainer " + container_id);
  }

  Result<ContainerStatus> GetContainerStatus(const std::string& container_id) override {
    pb::ContainerStatusRequest req;
    req.set_container_id(container_id);
    pb::ContainerStatusResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->ContainerStatus(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "ContainerStatus " + container_id);
    const pb::ContainerStatus& st = resp.status();
    ContainerStatus out;
    Container& c = out.container;
    c.id = st.id();
    c.name = st.metadata().name();
    c.attempt = st.metadata().attempt();
    c.image = st.image().image();
    c.image_ref = st.image_ref();
    c.state = FromPb(st.state());
    c.created_at = st.created_at();
    c.labels = ToLabels(st.labels());
    c.annotations = ToLabels(st.annotations());
    out.started_at = st.started_at();
    out.finished_at = st.finished_at();
    out.exit_code = st.exit_code();
    out.reason = st.reason();
    out.message = st.message();
    out.log_path = st.log_path();
    return out;
  }

  Result<std::vector<Container>> ListContainers(const ContainerFilter& filter) override {
    pb::ListContainersRequest req;
    auto* f = req.mutable_filter();
    f->set_id(filter.id);
    if (filter.state) f->mutable_state()->set_state(ToPb(*filter.state));
    f->set_pod_sandbox_id(filter.sandbox_id);
    FillMap(filter.label_selector, f->mutable_label_selector());
    pb::ListContainersResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->ListContainers(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "ListContainers");
    std::vector<Container> out;
    out.reserve(resp.containers_size());
    for (const auto& c : resp.containers()) out.push_back(ToContainer(c));
    return out;
  }

  Status ReopenContainerLog(const std::string& container_id) override {
    pb::ReopenContainerLogRequest req;
    req.set_container_id(container_id);
    pb::ReopenContainerLogResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->ReopenContainerLog(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "ReopenContainerLog " + container_id);
    return Status::Ok();
  }

  Result<ExecSyncResult> ExecSync(const std::string& container_id,
                                  const std::vector<std::string>& cmd,
                                  std::chrono::seconds timeout) override {
    pb::ExecSyncRequest req;
    req.set_container_id(container_id);
    for (const auto& a : cmd) req.add_cmd(a);
    req.set_timeout(timeout.count());
    pb::ExecSyncResponse resp;
    // The runtime enforces `timeout` itself (and says so with DEADLINE_EXCEEDED); our deadline
    // is only a backstop for a runtime that hangs.
    auto ctx = Context(timeout.count() > 0 ? std::chrono::milliseconds(timeout + kCallSlack)
                                           : options_.call_timeout);
    grpc::Status s = runtime_->ExecSync(ctx.get(), req, &resp);
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && timeout.count() > 0) {
      ExecSyncResult out;
      out.timed_out = true;
      out.exit_code = -1;
      return out;
    }
    if (!s.ok()) return FromGrpc(s, "ExecSync in " + container_id);
    return ExecSyncResult{resp.stdout(), resp.stderr(), resp.exit_code(), false};
  }

  Result<std::string> Exec(const std::string& container_id, const std::vector<std::string>& cmd,
                           const StreamOptions& options) override {
    pb::ExecRequest req;
    req.set_container_id(container_id);
    for (const auto& a : cmd) req.add_cmd(a);
    req.set_tty(options.tty);
    req.set_stdin(options.attach_stdin);
    req.set_stdout(options.attach_stdout);
    req.set_stderr(options.attach_stderr);
    pb::ExecResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->Exec(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "Exec in " + container_id);
    return resp.url();
  }

  Result<std::string> Attach(const std::string& container_id,
                             const StreamOptions& options) override {
    pb::AttachRequest req;
    req.set_container_id(container_id);
    req.set_stdin(options.attach_stdin);
    req.set_tty(options.tty);
    req.set_stdout(options.attach_stdout);
    req.set_stderr(options.attach_stderr);
    pb::AttachResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->Attach(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "Attach to " + container_id);
    return resp.url();
  }

  Result<std::string> PortForward(const std::string& sandbox_id,
                                  const std::vector<int32_t>& ports) override {
    pb::PortForwardRequest req;
    req.set_pod_sandbox_id(sandbox_id);
    for (int32_t p : ports) req.add_port(p);
    pb::PortForwardResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->PortForward(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "PortForward to " + sandbox_id);
    return resp.url();
  }

  Result<ContainerStats> GetContainerStats(const std::string& container_id) override {
    pb::ContainerStatsRequest req;
    req.set_container_id(container_id);
    pb::ContainerStatsResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->ContainerStats(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "ContainerStats " + container_id);
    return ToStats(resp.stats());
  }

  Result<std::vector<ContainerStats>> ListContainerStats(
      const ContainerStatsFilter& filter) override {
    pb::ListContainerStatsRequest req;
    auto* f = req.mutable_filter();
    f->set_id(filter.id);
    f->set_pod_sandbox_id(filter.sandbox_id);
    FillMap(filter.label_selector, f->mutable_label_selector());
    pb::ListContainerStatsResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = runtime_->ListContainerStats(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "ListContainerStats");
    std::vector<ContainerStats> out;
    out.reserve(resp.stats_size());
    for (const auto& st : resp.stats()) out.push_back(ToStats(st));
    return out;
  }

  Result<std::string> PullImage(const std::string& image, const std::optional<AuthConfig>& auth,
                                const PodSandboxConfig* sandbox) override {
    pb::PullImageRequest req;
    req.mutable_image()->set_image(image);
    if (auth) {
      auto* a = req.mutable_auth();
      a->set_username(auth->username);
      a->set_password(auth->password);
      a->set_auth(auth->auth);
      a->set_server_address(auth->server_address);
      a->set_identity_token(auth->identity_token);
      a->set_registry_token(auth->registry_token);
    }
    if (sandbox != nullptr) FillSandboxConfig(*sandbox, req.mutable_sandbox_config());
    pb::PullImageResponse resp;
    auto ctx = Context(options_.pull_timeout);
    grpc::Status s = images_->PullImage(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "pull " + image);
    return resp.image_ref();
  }

  Result<Image> GetImageStatus(const std::string& image) override {
    pb::ImageStatusRequest req;
    req.mutable_image()->set_image(image);
    pb::ImageStatusResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = images_->ImageStatus(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "ImageStatus " + image);
    // CRI's way of saying "not present" is an OK answer without an image.
    if (!resp.has_image() || resp.image().id().empty()) {
      return NotFound(fmt::format("image {} is not present", image));
    }
    return ToImage(resp.image());
  }

  Result<std::vector<Image>> ListImages() override {
    pb::ListImagesRequest req;
    pb::ListImagesResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = images_->ListImages(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "ListImages");
    std::vector<Image> out;
    out.reserve(resp.images_size());
    for (const auto& i : resp.images()) out.push_back(ToImage(i));
    return out;
  }

  Status RemoveImage(const std::string& image) override {
    pb::RemoveImageRequest req;
    req.mutable_image()->set_image(image);
    pb::RemoveImageResponse resp;
    auto ctx = Context(options_.call_timeout);
    return Tolerate(images_->RemoveImage(ctx.get(), req, &resp), "RemoveImage " + image);
  }

  Result<std::vector<FilesystemUsage>> ImageFsInfo() override {
    pb::ImageFsInfoRequest req;
    pb::ImageFsInfoResponse resp;
    auto ctx = Context(options_.call_timeout);
    grpc::Status s = images_->ImageFsInfo(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "ImageFsInfo");
    std::vector<FilesystemUsage> out;
    for (const auto& fs : resp.image_filesystems()) {
      out.push_back({fs.fs_id().mountpoint(), fs.timestamp(), fs.used_bytes().value(),
                     fs.inodes_used().value()});
    }
    return out;
  }

 private:
  static std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout,
                                                      bool wait_for_ready = false) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + timeout);
    ctx->set_wait_for_ready(wait_for_ready);
    return ctx;
  }

  // Stop and remove calls are idempotent by contract: "already gone" is success.
  static Status Tolerate(const grpc::Status& s, std::string_view what) {
    if (s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND) return Status::Ok();
    return FromGrpc(s, what);
  }

  const CriClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::RuntimeService::Stub> runtime_;
  std::unique_ptr<pb::ImageService::Stub> images_;
};

}  // namespace

Result<std::unique_ptr<Runtime>> NewCriClient(const CriClientOptions& options) {
  auto target = GrpcTarget(options.endpoint);
  if (!target.ok()) return target.status();
  return std::unique_ptr<Runtime>(std::make_unique<CriClient>(options, *target));
}

}  // namespace orch::cri
