// gRPC probes against a real gRPC server in the test (grpc++'s own health service on loopback):
// SERVING passes, NOT_SERVING and unknown services fail with upstream's words, a closed port
// fails to connect in time; the health messages' wire form.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <catch2/catch.hpp>

#include "grpc_probe.h"

using namespace orch::agent;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// An empty gRPC server whose only service is the built-in health service.
class HealthServer {
 public:
  HealthServer() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    // A server needs one polled queue; the health service polls its own, the generic callback
    // service (answering UNIMPLEMENTED) provides one without a thread of the test's.
    builder.RegisterCallbackGenericService(&generic_);
    server_ = builder.BuildAndStart();
    REQUIRE(server_);
    REQUIRE(port_ > 0);
  }
  ~HealthServer() { server_->Shutdown(std::chrono::system_clock::now() + 1s); }
  int port() const { return port_; }
  grpc::HealthCheckServiceInterface* health() { return server_->GetHealthCheckService(); }

 private:
  int port_ = 0;
  grpc::CallbackGenericService generic_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace

TEST_CASE("grpc health messages on the wire") {
  CHECK(EncodeHealthCheckRequest("").empty());
  CHECK(EncodeHealthCheckRequest("db") == std::string("\x0a\x02"
                                                      "db",
                                                      4));
  CHECK(EncodeHealthCheckRequest(std::string(200, 'x')).substr(0, 3) ==
        std::string("\x0a\xc8\x01"));
  CHECK(DecodeHealthCheckStatus("") == 0);
  CHECK(DecodeHealthCheckStatus(std::string("\x08\x01", 2)) == 1);
  CHECK(DecodeHealthCheckStatus(std::string("\x08\x02", 2)) == 2);
  CHECK(DecodeHealthCheckStatus(std::string("\x08", 1)) == -1);
}

TEST_CASE("grpc probe against a health server") {
  HealthServer server;
  json spec = {{"port", server.port()}};
  auto result = RunGrpcAction(spec, "127.0.0.1", 2s, "kube-probe/1.32");
  CHECK(result.outcome == HandlerOutcome::kSuccess);

  server.health()->SetServingStatus("db", false);
  spec["service"] = "db";
  result = RunGrpcAction(spec, "127.0.0.1", 2s, "kube-probe/1.32");
  CHECK(result.outcome == HandlerOutcome::kFailure);
  CHECK(result.output == "service unhealthy (responded with \"NOT_SERVING\")");

  server.health()->SetServingStatus("db", true);
  CHECK(RunGrpcAction(spec, "127.0.0.1", 2s, "kube-probe/1.32").outcome ==
        HandlerOutcome::kSuccess);

  spec["service"] = "nope";
  result = RunGrpcAction(spec, "127.0.0.1", 2s, "kube-probe/1.32");
  CHECK(result.outcome == HandlerOutcome::kFailure);
  CHECK(result.output ==
        "error: health rpc probe failed: rpc error: code = NotFound desc = service name unknown");
}

TEST_CASE("grpc probe: nothing listening, bad spec") {
  int port = 0;
  {
    HealthServer server;  // a port that was free a moment ago and is closed again
    port = server.port();
  }
  auto result = RunGrpcAction({{"port", port}}, "127.0.0.1", 1s, "kube-probe/1.32");
  CHECK(result.outcome == HandlerOutcome::kFailure);
  CHECK(result.output == "timeout: failed to connect service \"127.0.0.1:" + std::to_string(port) +
                             "\" within 1s: context deadline exceeded");
  CHECK(RunGrpcAction({{"port", 0}}, "127.0.0.1", 1s, "").outcome == HandlerOutcome::kError);
  CHECK(RunGrpcAction({{"port", 80}}, "", 1s, "").outcome == HandlerOutcome::kError);
}
