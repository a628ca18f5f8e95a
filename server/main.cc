// anorand-server: the AnoRand scoring service. `anorand-server --help`
// lists every flag; README.md and docs/OPERATIONS.md explain them.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <pthread.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "server/server.h"

ABSL_FLAG(std::string, grpc_address, "0.0.0.0:50051",
          "Address the gRPC services listen on (HOST:PORT; port 0 picks a free one).");
ABSL_FLAG(std::string, model_dir, "models",
          "Model store folder: <model_dir>/<name>/<version>/model.anorand. Created if missing.");
ABSL_FLAG(double, poll_seconds, 5,
          "How often to rescan the model store for versions added or removed by other "
          "processes or replicas. 0 = never.");
ABSL_FLAG(int64_t, max_batch_records, 65536, "Most records in one ScoreRequest.");
ABSL_FLAG(int64_t, max_message_bytes, 64ll << 20, "Largest gRPC message, in and out, in bytes.");
ABSL_FLAG(int32_t, max_streams, 1024, "Most StreamScore streams open at once.");
ABSL_FLAG(int64_t, max_upload_bytes, 1ll << 30, "Largest model import or dataset upload, bytes.");
ABSL_FLAG(double, drain_seconds, 10,
          "On SIGTERM/SIGINT: how long calls in flight may run before they are cancelled.");
ABSL_FLAG(std::string, require_models, "",
          "Comma-separated model names that must have a ready version before the Scoring "
          "service reports SERVING on grpc.health.v1.");
ABSL_FLAG(std::string, auth_token, "",
          "Bearer token required on the Models and Training services (default: the "
          "ANORAND_AUTH_TOKEN environment variable; empty = no check).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "AnoRand anomaly-scoring gRPC server.\n"
      "Usage: anorand-server [--grpc_address=0.0.0.0:50051] [--model_dir=models] [flags]");
  absl::ParseCommandLine(argc, argv);

  // Block the stop signals in every thread; one thread waits for them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  anorand::ServerOptions o;
  o.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  o.model_dir = absl::GetFlag(FLAGS_model_dir);
  o.poll_seconds = absl::GetFlag(FLAGS_poll_seconds);
  o.max_batch_records = absl::GetFlag(FLAGS_max_batch_records);
  o.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  o.max_streams = absl::GetFlag(FLAGS_max_streams);
  o.max_upload_bytes = absl::GetFlag(FLAGS_max_upload_bytes);
  o.drain_seconds = absl::GetFlag(FLAGS_drain_seconds);
  for (absl::string_view name :
       absl::StrSplit(absl::GetFlag(FLAGS_require_models), ',', absl::SkipWhitespace())) {
    o.required_models.emplace_back(name);
  }
  o.auth_token = absl::GetFlag(FLAGS_auth_token);
  if (o.auth_token.empty()) {
    if (const char* env = std::getenv("ANORAND_AUTH_TOKEN")) o.auth_token = env;
  }

  auto server = anorand::AnorandServer::Start(o);
  if (!server.ok()) {
    std::fprintf(stderr, "anorand-server: %s\n", std::string(server.status().message()).c_str());
    return 2;
  }
  std::printf("anorand-server listening on port %d (model_dir %s)\n", (*server)->port(),
              o.model_dir.c_str());
  std::fflush(stdout);

  std::thread signals([&] {
    int sig = 0;
    sigwait(&stop, &sig);
    std::fprintf(stderr, "anorand-server: signal %d, draining (up to %.0f s)\n", sig,
                 o.drain_seconds);
    (*server)->Shutdown();
  });
  (*server)->Wait();
  // Wake the signal thread if the server stopped for another reason.
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  std::fprintf(stderr, "anorand-server: stopped\n");
  return 0;
}
