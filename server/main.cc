// anorand-server: the AnoRand scoring service. `anorand-server --help`
// lists every flag; README.md and docs/OPERATIONS.md explain them.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <pthread.h>

#include "absl/flags/flag.h"
#include "absl/flags/internal/parse.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "model/model_file.h"
#include "server/reservoirs.h"
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
ABSL_FLAG(int64_t, max_upload_bytes, 1ll << 30, "Largest model import or dataset upload, and the most an NPZ's members may decompress to, in bytes.");
ABSL_FLAG(double, drain_seconds, 10,
          "On SIGTERM/SIGINT: how long calls in flight may run before they are cancelled.");
ABSL_FLAG(double, stream_idle_seconds, 600,
          "Close a StreamScore stream after this long without a request read or a response "
          "written (a client that stopped reading is cut off). 0 = never.");
ABSL_FLAG(int64_t, max_loaded_model_bytes, 0,
          "Cap on the total model-file bytes of loaded versions; a load or import past it fails "
          "with RESOURCE_EXHAUSTED and the versions serving are kept. 0 = no cap.");
ABSL_FLAG(bool, enable_batching, false,
          "Dynamic batching of unary Score requests: requests for the same model version "
          "that wait at the same time share one forward pass (StreamScore messages are "
          "batches already).");
ABSL_FLAG(int64_t, batch_max_records, 256,
          "With --enable_batching: most records merged into one forward pass.");
ABSL_FLAG(int64_t, batch_max_delay_us, 0,
          "With --enable_batching: how long a forward pass waits after its oldest request for "
          "more to arrive. 0 = never wait: merge only requests that queued while every slot "
          "was busy (no added latency).");
ABSL_FLAG(int64_t, batch_max_queued_records, 65536,
          "With --enable_batching: most records waiting for a forward pass, all models "
          "together; beyond it requests get RESOURCE_EXHAUSTED.");
ABSL_FLAG(int32_t, batch_max_parallel, 0,
          "With --enable_batching: forward passes at once per model version. 0 = one per core.");
ABSL_FLAG(std::string, require_models, "",
          "Comma-separated model names that must have a ready version before the Scoring "
          "service reports SERVING on grpc.health.v1.");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0:9464",
          "Address of the Prometheus metrics endpoint, GET /metrics (HOST:PORT; port 0 picks a "
          "free one; empty = no metrics).");
ABSL_FLAG(std::string, metrics_basic_auth_file, "",
          "File with one line USER:PASSWORD: GET /metrics then requires HTTP basic "
          "authentication with that pair (Prometheus basic_auth). Empty = /metrics is open to "
          "whoever reaches --metrics_address.");
ABSL_FLAG(std::string, data_dir, "",
          "Folder that Training.SubmitJob data_path is relative to; paths that resolve outside "
          "it are refused. Empty = uploads only.");
ABSL_FLAG(int32_t, max_queued_jobs, 16, "Most training jobs waiting to start; 0 = this server does not train.");
ABSL_FLAG(std::string, jobs_dir, "",
          "Where training job records are kept (default <model_dir>/.jobs). Give each replica "
          "that trains its own folder when the model folder is shared.");
ABSL_FLAG(int32_t, training_threads, 1, "Training jobs that run at once.");
ABSL_FLAG(int32_t, intake_threads, 2,
          "Threads that parse SubmitJob data and compile ImportVersion models, off the gRPC "
          "threads; submissions beyond them wait their turn.");
ABSL_FLAG(int64_t, shadow_queue_records, 100000,
          "Sampled records that may wait for a model's shadow version (Models.SetShadow); "
          "beyond it they are dropped and counted, never delaying a response.");
ABSL_FLAG(int64_t, shadow_window_records, 10000,
          "The most recent records each shadow comparison (rank correlation, flag "
          "disagreement, quantiles) is computed over.");
ABSL_FLAG(int64_t, drift_window_records, 10000,
          "The most recent records each model version's drift figures (PSI of every feature "
          "and of the score against the training data) describe; 0 = drift is not tracked.");
ABSL_FLAG(double, drift_sample, 0.1,
          "The share of scored records, drawn at random, that enter the drift window, in "
          "(0, 1]; the window then spans 1/F times as much traffic for the same precision.");
ABSL_FLAG(int32_t, drift_feature_series, 32,
          "Features per model version with their own anorand_feature_drift_psi series; the "
          "others are folded into one series, feature=\"other_max\".");
ABSL_FLAG(std::string, reservoir_records, "",
          "Models that keep a reservoir of recent traffic for retraining (SubmitJob "
          "from_reservoir), with the records kept: NAME=ROWS[,NAME=ROWS...]; \"\" = none.");
ABSL_FLAG(int64_t, reservoir_max_bytes, int64_t{64} << 20,
          "At most this many bytes of values per model's reservoir (fewer rows for wide "
          "records).");
ABSL_FLAG(int64_t, reservoir_period_seconds, 43200,
          "A reservoir's half collects for this long, then serves one more period: records "
          "are kept for at most twice this (24 h by default).");
ABSL_FLAG(int64_t, reservoir_flush_seconds, 60,
          "How often a changed reservoir is written to <model_dir>/.reservoir (and at "
          "shutdown).");
ABSL_FLAG(std::string, replica_id, "",
          "Names this server's reservoir files (replicas sharing a --model_dir need distinct "
          "ones); \"\" = the host name.");
ABSL_FLAG(double, retrain_check_seconds, 30,
          "How often the models with a retrain policy (SetRetrainPolicy) are checked and "
          "their next step taken, seconds.");
ABSL_FLAG(int64_t, max_feedback_records, 100000,
          "The most operators' feedback records (AddFeedback) one model keeps; past it "
          "AddFeedback is RESOURCE_EXHAUSTED.");
ABSL_FLAG(int32_t, training_omp_threads, 1,
          "oneDNN/OpenMP threads per running training job (scoring keeps its own threads).");
ABSL_FLAG(bool, training_low_priority, true,
          "Run training threads and their OpenMP workers at SCHED_IDLE, so scoring wins the "
          "CPU; false = training competes with scoring as an equal.");
ABSL_FLAG(int32_t, training_yield_inflight, 1,
          "Training pauses between mini-batches while at least this many scoring requests are "
          "in flight (or were within the last millisecond); 0 = training never yields. The "
          "default, 1, kept p99 while training within 1.2x of idle (docs/PERFORMANCE.md).");
ABSL_FLAG(int32_t, training_yield_max_pause_ms, 20,
          "Longest one training pause for scoring, in ms, so training still progresses under "
          "load that never ends: at least 1 ms of training per pause.");
ABSL_FLAG(std::string, admin_token_file, "",
          "File holding the bearer token for Models and Training (whitespace trimmed); "
          "overrides --auth_token.");
ABSL_FLAG(bool, require_token_for_scoring, false,
          "Require the bearer token on the Scoring service as well.");
ABSL_FLAG(std::string, auth_token, "",
          "Bearer token required on the Models and Training services (default: the "
          "ANORAND_AUTH_TOKEN environment variable; empty = no check).");

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain the gRPC port presents; with --tls_key turns TLS on "
          "(plaintext is then refused).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert (unencrypted).");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: when set, clients must present a certificate signed by it (mutual "
          "TLS).");
ABSL_FLAG(int32_t, tls_reload_seconds, 60,
          "How often the TLS files are re-read, so renewed certificates are used without a "
          "restart.");

// Abseil's parser exits 1 on a value it cannot parse (--port=many); every
// other bad flag exits 2 (docs/OPERATIONS.md), so the values of known flags
// are parsed here first. Unknown flags are left to the parser.
bool FlagValuesParse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    const size_t eq = arg.find('=');
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(arg.substr(0, eq));
    if (flag == nullptr) continue;
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (flag->IsOfType<bool>() || i + 1 >= argc) {
      continue;
    } else {
      value = argv[++i];
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "anorand-server: --%s=%s: %s\n", std::string(flag->Name()).c_str(),
                   value.c_str(), error.c_str());
      return false;
    }
  }
  return true;
}

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "AnoRand anomaly-scoring gRPC server.\n"
      "Usage: anorand-server [--grpc_address=0.0.0.0:50051] [--model_dir=models] [flags]");
  // --help lists this file's flags (absl matches the program name otherwise).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  absl::SetFlagsUsageConfig(usage);
  // absl::ParseCommandLine as in Abseil, except that --help (and --helpfull,
  // --version, ...) prints to stdout and exits 0: Abseil 20220623 exits 1.
  if (!FlagValuesParse(argc, argv)) return 2;
  namespace fi = absl::flags_internal;
  fi::ParseCommandLineImpl(argc, argv, fi::ArgvListAction::kRemoveParsedArgs,
                           fi::UsageFlagsAction::kIgnoreUsage,
                           fi::OnUndefinedFlag::kAbortIfUndefined);
  if (fi::HandleUsageFlags(std::cout, absl::ProgramUsageMessage()) != -1) {
    std::cout.flush();
    return 0;
  }

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
  o.stream_idle_seconds = absl::GetFlag(FLAGS_stream_idle_seconds);
  o.max_loaded_model_bytes = absl::GetFlag(FLAGS_max_loaded_model_bytes);
  o.enable_batching = absl::GetFlag(FLAGS_enable_batching);
  o.batching.max_records = absl::GetFlag(FLAGS_batch_max_records);
  o.batching.max_delay_us = absl::GetFlag(FLAGS_batch_max_delay_us);
  o.batching.max_queued_records = absl::GetFlag(FLAGS_batch_max_queued_records);
  o.batching.max_parallel = absl::GetFlag(FLAGS_batch_max_parallel);
  for (absl::string_view name :
       absl::StrSplit(absl::GetFlag(FLAGS_require_models), ',', absl::SkipWhitespace())) {
    o.required_models.emplace_back(name);
  }
  o.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  o.metrics_basic_auth_file = absl::GetFlag(FLAGS_metrics_basic_auth_file);
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  o.max_queued_jobs = absl::GetFlag(FLAGS_max_queued_jobs);
  o.jobs_dir = absl::GetFlag(FLAGS_jobs_dir);
  o.require_token_for_scoring = absl::GetFlag(FLAGS_require_token_for_scoring);
  o.training_threads = absl::GetFlag(FLAGS_training_threads);
  o.intake_threads = absl::GetFlag(FLAGS_intake_threads);
  o.shadow_queue_records = absl::GetFlag(FLAGS_shadow_queue_records);
  o.shadow_window_records = absl::GetFlag(FLAGS_shadow_window_records);
  o.drift_window_records = absl::GetFlag(FLAGS_drift_window_records);
  o.drift_sample = absl::GetFlag(FLAGS_drift_sample);
  o.drift_feature_series = absl::GetFlag(FLAGS_drift_feature_series);
  auto reservoirs = anorand::ParseReservoirRecords(absl::GetFlag(FLAGS_reservoir_records));
  if (!reservoirs.ok()) {
    std::fprintf(stderr, "anorand-server: %s\n", std::string(reservoirs.status().message()).c_str());
    return 2;
  }
  o.reservoir_records = *std::move(reservoirs);
  o.reservoir_max_bytes = absl::GetFlag(FLAGS_reservoir_max_bytes);
  o.reservoir_period_seconds = absl::GetFlag(FLAGS_reservoir_period_seconds);
  o.reservoir_flush_seconds = absl::GetFlag(FLAGS_reservoir_flush_seconds);
  o.replica_id = absl::GetFlag(FLAGS_replica_id);
  o.retrain_check_seconds = absl::GetFlag(FLAGS_retrain_check_seconds);
  o.max_feedback_records = absl::GetFlag(FLAGS_max_feedback_records);
  o.training_omp_threads = absl::GetFlag(FLAGS_training_omp_threads);
  o.training_low_priority = absl::GetFlag(FLAGS_training_low_priority);
  o.training_throttle.yield_inflight = absl::GetFlag(FLAGS_training_yield_inflight);
  o.training_throttle.max_pause =
      absl::Milliseconds(absl::GetFlag(FLAGS_training_yield_max_pause_ms));
  o.auth_token = absl::GetFlag(FLAGS_auth_token);
  o.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  o.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  o.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  o.tls.reload_seconds = absl::GetFlag(FLAGS_tls_reload_seconds);
  if (const std::string file = absl::GetFlag(FLAGS_admin_token_file); !file.empty()) {
    auto token = anorand::ReadFileBounded(file, 4096);
    if (!token.ok()) {
      std::fprintf(stderr, "anorand-server: --admin_token_file: %s\n",
                   std::string(token.status().message()).c_str());
      return 2;
    }
    o.auth_token = std::string(absl::StripAsciiWhitespace(*token));
    if (o.auth_token.empty()) {
      std::fprintf(stderr, "anorand-server: --admin_token_file %s is empty\n", file.c_str());
      return 2;
    }
  }
  if (o.auth_token.empty() && absl::GetFlag(FLAGS_admin_token_file).empty()) {
    if (const char* env = std::getenv("ANORAND_AUTH_TOKEN")) o.auth_token = env;
  }

  auto server = anorand::AnorandServer::Start(o);
  if (!server.ok()) {
    std::fprintf(stderr, "anorand-server: %s\n", std::string(server.status().message()).c_str());
    return 2;
  }
  std::printf("anorand-server listening on port %d (%s, model_dir %s)\n", (*server)->port(),
              o.tls.client_ca_file.empty() ? (o.tls.enabled() ? "TLS" : "plaintext")
                                           : "mutual TLS",
              o.model_dir.c_str());
  if ((*server)->metrics_port() > 0) {
    std::printf("anorand-server metrics on port %d (GET /metrics)\n", (*server)->metrics_port());
  }
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
