// The gRPC probe action (probe.grpc): the standard gRPC health checking protocol
// (grpc.health.v1.Health/Check) over plaintext HTTP/2 to the pod's IP, as the kubelet runs it.
#pragma once

#include <chrono>
#include <string>

#include "handlers.h"

namespace orch::agent {

// `grpc` ({port, service}): success when Check answers SERVING for `service` (default "") at
// pod_ip:port within `timeout`; NOT_SERVING or SERVICE_UNKNOWN, a failed call or no connection
// in time is a failure whose output follows upstream's wording. Blocking; thread-safe.
HandlerResult RunGrpcAction(const json& grpc, const std::string& pod_ip,
                            std::chrono::seconds timeout, const std::string& user_agent);

// The wire form of grpc.health.v1.HealthCheckRequest{service} and the status field of a
// HealthCheckResponse (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN; -1 when the
// bytes are not a response). Exposed for tests.
std::string EncodeHealthCheckRequest(const std::string& service);
int DecodeHealthCheckStatus(const std::string& bytes);

}  // namespace orch::agent
