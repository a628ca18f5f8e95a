// `anorand health`: one gRPC health check, exit 0 only on SERVING.
#include <cstdio>

#include "client/args.h"
#include "client/commands.h"
#include "client/connection.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace anorand::cli {

int RunHealth(const Argv& argv) {
  const auto specs = WithConnectionFlags({{"service", true, "service to ask about (default: the server as a whole)"}});
  const char* const usage_head =
      "usage: anorand health [--address HOST:PORT] [--service anorand.v1.Scoring]\n"
      "Exit 0 only when the server answers SERVING (a container health check).\n";
  int exit = kExitOk;
  auto setup = ParseAndConnect(argv, specs, usage_head, &exit);
  if (!setup) return exit;
  auto& [a, conn, usage] = *setup;
  auto stub = grpc::health::v1::Health::NewStub(conn.channel);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(a.Get("service"));
  grpc::health::v1::HealthCheckResponse resp;
  auto ctx = conn.NewContext();
  grpc::Status s = stub->Check(ctx.get(), req, &resp);
  if (!s.ok()) return ReportRpcError(s);
  const bool serving = resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::printf("%s\n", serving ? "SERVING" : "NOT_SERVING");
  return serving ? kExitOk : kExitFailed;
}

}  // namespace anorand::cli
