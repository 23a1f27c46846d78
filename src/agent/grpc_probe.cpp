// gRPC health probes (grpc_probe.h). The two tiny health messages are encoded by hand: one
// string field out, one enum field back, not worth a generated proto in the agent.
#include "grpc_probe.h"

#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/rpc_method.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>

namespace orch::agent {
namespace {

const char* kCheckMethod = "/grpc.health.v1.Health/Check";

const char* StatusName(int status) {
  switch (status) {
    case 0:
      return "UNKNOWN";
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    case 3:
      return "SERVICE_UNKNOWN";
    default:
      return "UNKNOWN";
  }
}

// Go's grpc codes.Code.String(), as upstream's messages print them.
const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : "Unknown";
}

bool ReadVarint(const std::string& s, size_t& at, uint64_t& out) {
  out = 0;
  for (int shift = 0; shift < 64 && at < s.size(); shift += 7) {
    auto byte = static_cast<uint8_t>(s[at++]);
    out |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

std::string EncodeHealthCheckRequest(const std::string& service) {
  if (service.empty()) return "";  // proto3 leaves a default field out
  std::string out = "\x0a";
  uint64_t n = service.size();
  while (n >= 0x80) {
    out += static_cast<char>((n & 0x7f) | 0x80);
    n >>= 7;
  }
  out += static_cast<char>(n);
  return out + service;
}

int DecodeHealthCheckStatus(const std::string& bytes) {
  int status = 0;  // absent = UNKNOWN
  size_t at = 0;
  while (at < bytes.size()) {
    uint64_t key = 0;
    if (!ReadVarint(bytes, at, key)) return -1;
    uint64_t value = 0;
    switch (key & 7) {
      case 0:  // varint
        if (!ReadVarint(bytes, at, value)) return -1;
        if (key >> 3 == 1) status = static_cast<int>(value);
        break;
      case 1:
        at += 8;
        break;
      case 2:
        if (!ReadVarint(bytes, at, value)) return -1;
        at += value;
        break;
      case 5:
        at += 4;
        break;
      default:
        return -1;
    }
    if (at > bytes.size()) return -1;
  }
  return status;
}

HandlerResult RunGrpcAction(const json& grpc_spec, const std::string& pod_ip,
                            std::chrono::seconds timeout, const std::string& user_agent) {
  const json& port_value = At(grpc_spec, {"port"});
  if (!port_value.is_number_integer() || port_value.get<int64_t>() < 1 ||
      port_value.get<int64_t>() > 65535) {
    return {HandlerOutcome::kError, "grpc probe: port must be a number from 1 to 65535"};
  }
  if (pod_ip.empty()) return {HandlerOutcome::kError, "the pod has no IP address yet"};
  const std::string service = Str(grpc_spec, {"service"});
  const std::string target = pod_ip.find(':') != std::string::npos
                                 ? fmt::format("[{}]:{}", pod_ip, port_value.get<int64_t>())
                                 : fmt::format("{}:{}", pod_ip, port_value.get<int64_t>());
  const auto deadline =
      std::chrono::system_clock::now() + std::max(timeout, std::chrono::seconds(1));

  grpc::ChannelArguments args;
  args.SetUserAgentPrefix(user_agent);
  // One connection per attempt, as upstream dials per probe; no retries, no shared subchannel.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(deadline)) {
    return {HandlerOutcome::kFailure,
            fmt::format("timeout: failed to connect service \"{}\" within {}s: context deadline "
                        "exceeded",
                        target, timeout.count())};
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline);
  std::string request_bytes = EncodeHealthCheckRequest(service);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::internal::RpcMethod method(kCheckMethod, grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::Status s = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel.get(), method, &ctx, request, &response);
  if (!s.ok()) {
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return {HandlerOutcome::kFailure,
              fmt::format("timeout: health rpc did not complete within {}s", timeout.count())};
    }
    return {HandlerOutcome::kFailure,
            fmt::format("error: health rpc probe failed: rpc error: code = {} desc = {}",
                        CodeName(s.error_code()), s.error_message())};
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const auto& piece : slices) {
      bytes.append(reinterpret_cast<const char*>(piece.begin()), piece.size());
    }
  }
  int status = DecodeHealthCheckStatus(bytes);
  if (status == 1) return {HandlerOutcome::kSuccess, ""};
  return {HandlerOutcome::kFailure,
          fmt::format("service unhealthy (responded with \"{}\")", StatusName(status))};
}

}  // namespace orch::agent
