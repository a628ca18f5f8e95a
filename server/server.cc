#include "server/server.h"

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/auth.h"
#include "server/client_paths.h"
#include "server/feedback_service.h"
#include "server/feedback_store.h"
#include "server/metrics_auth.h"
#include "server/metrics.h"
#include "server/model_manager.h"
#include "server/models_service.h"
#include "server/names.h"
#include "server/score_handler.h"
#include "server/scoring_service.h"
#include "server/reservoirs.h"
#include "server/retrain_loop.h"
#include "server/shadow.h"
#include "server/job_manager.h"
#include "server/training_service.h"

namespace anorand {
namespace {

constexpr char kScoringService[] = "anorand.v1.Scoring";
constexpr char kModelsService[] = "anorand.v1.Models";
constexpr char kTrainingService[] = "anorand.v1.Training";
constexpr char kFeedbackService[] = "anorand.v1.Feedback";

class ServerImpl final : public AnorandServer {
 public:
  explicit ServerImpl(const ServerOptions& o)
      : options_(o),
        folders_({{o.model_dir, "the model store (--model_dir)"},
                  {o.jobs_dir, "the job records folder (--jobs_dir)"},
                  {o.data_dir, "the data folder (--data_dir)"}}),
        auth_(o.auth_token),
        throttle_(o.training_throttle,
                  [this](const TrainingPause& p) {
                    if (p.ended && metrics_) metrics_->OnTrainingThrottled(p.seconds);
                    if (options_.on_training_pause) options_.on_training_pause(p);
                  }),
        shadow_(&registry_, ShadowOptions{o.shadow_queue_records, o.shadow_window_records,
                                          throttle_.load()}),
        reservoirs_(ReservoirOptions{o.model_dir + "/.reservoir", ReplicaId(o.replica_id),
                                     o.reservoir_records, o.reservoir_max_bytes,
                                     o.reservoir_period_seconds, o.reservoir_flush_seconds}),
        feedback_store_(ModelStore(o.model_dir), o.max_feedback_records),
        retrain_(ModelStore(o.model_dir), &manager_, &jobs_, &reservoirs_, &shadow_,
                 RetrainLoopOptions{o.retrain_check_seconds, ReplicaId(o.replica_id)},
                 &feedback_store_),
        manager_(ModelStore(o.model_dir), &registry_,
                 ModelManagerOptions{o.max_loaded_model_bytes,
                                     [this](const LoadEvent& e) { OnModelLoad(e); },
                                     o.before_model_load, o.drift_window_records,
                                     o.drift_sample}),
        handler_(&registry_, ScoreLimits{o.max_batch_records, o.max_message_bytes},
                 Hooks(ScoreMethod::kScore)),
        stream_handler_(&registry_, ScoreLimits{o.max_batch_records, o.max_message_bytes},
                        Hooks(ScoreMethod::kStreamScore)),
        batcher_(&handler_, o.batching,
                 [this](int requests, int64_t) {
                   if (metrics_) metrics_->OnBatchedPass(requests);
                 },
                 ScoringLoadIfThrottled()),
        scoring_(&handler_,
                 ScoringServiceOptions{
                     o.max_streams, &stream_handler_, o.stream_idle_seconds,
                     o.enable_batching ? &batcher_ : nullptr,
                     o.require_token_for_scoring ? &auth_ : nullptr,
                     [this](int delta) {
                       if (metrics_) metrics_->OnStreamChange(delta);
                     },
                     [this](ScoreMethod method, const v1::ScoreRequest& r, double seconds) {
                       if (metrics_) metrics_->ObserveLatency(method, r.model().name(), seconds);
                     }}),
        intake_(o.intake_threads,
                [this](int64_t queued, int64_t running) {
                  if (metrics_) metrics_->SetIntakeTasks(queued, running);
                }),
        admin_(1),
        models_(&manager_, &auth_, Upload("ImportVersion"), &intake_, &admin_, &shadow_,
                &retrain_),
        jobs_(&manager_, JobOptions{o.jobs_dir.empty() ? o.model_dir + "/.jobs" : o.jobs_dir,
                                    o.max_queued_jobs, o.training_threads,
                                    o.training_omp_threads, o.training_low_priority,
                                    &throttle_, o.before_publish, JobMetricEvents()}),
        training_(&jobs_, &auth_, TrainingLimits{o.data_dir, Upload("SubmitJob")}, &intake_,
                  &reservoirs_, &feedback_store_),
        feedback_(&feedback_store_, &registry_, &auth_, &intake_) {}

  ~ServerImpl() override {
    Shutdown();
    Wait();
  }

  absl::Status Init() {
    if (!options_.metrics_address.empty()) InitMetrics();
    shadow_.Start();
    if (absl::Status s = reservoirs_.Start(); !s.ok()) return s;
    if (absl::Status s = manager_.Start(options_.poll_seconds); !s.ok()) return s;
    if (absl::Status s = jobs_.Start(); !s.ok()) return s;
    retrain_.Start();

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    auto credentials = MakeServerCredentials(options_.tls);
    if (!credentials.ok()) return credentials.status();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.grpc_address, *credentials, &port_);
    // gRPC turns SO_REUSEPORT on by default: a second server on a taken port
    // would start and take a share of the new connections. Off, its bind
    // fails and it exits with the message below.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
    builder.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
    builder.RegisterService(&scoring_);
    builder.RegisterService(&models_);
    builder.RegisterService(&training_);
    builder.RegisterService(&feedback_);
    {
      absl::MutexLock lock(&health_mu_);  // the store poller may call UpdateHealth already
      server_ = builder.BuildAndStart();
    }
    if (!server_ || port_ == 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", options_.grpc_address,
          " (address in use, perhaps by another server, or not valid; change --grpc_address "
          "or stop the other process)"));
    }
    UpdateHealth();
    return absl::OkStatus();
  }

  int port() const override { return port_; }
  int metrics_port() const override { return metrics_ ? metrics_->port() : 0; }

  void Shutdown() override {
    std::call_once(shutdown_once_, [this] {
      draining_ = true;
      // Health first, then jobs: a running job is cancelled within a
      // mini-batch, queued ones fail, and every WatchJob stream gets its
      // final message before the drain deadline instead of being cut at it.
      {
        absl::MutexLock health_lock(&health_mu_);  // not held while draining below
        if (server_) server_->GetHealthCheckService()->Shutdown();  // NOT_SERVING, for good
      }
      retrain_.Stop();  // before jobs_ and manager_, which its steps call
      jobs_.Stop();
      // Open streams are told to reconnect once their in-flight request is
      // answered, instead of being cancelled at the drain deadline.
      scoring_.BeginShutdown();
      if (server_) {
        const auto deadline = std::chrono::system_clock::now() +
                              std::chrono::milliseconds(
                                  static_cast<int64_t>(options_.drain_seconds * 1000));
        server_->Shutdown(deadline);
      }
      intake_.Stop();  // after the calls whose work it runs have ended
      admin_.Stop();
      shadow_.Stop();
      reservoirs_.Stop();  // writes what the last calls added
      manager_.Stop();
    });
  }

  void Wait() override {
    if (server_) server_->Wait();
  }

 private:
  // Metrics are not worth refusing to serve for: when the address cannot
  // be bound the server runs without them and says so.
  void InitMetrics() {
    auto metrics = std::make_unique<Metrics>(&registry_, &shadow_, options_.drift_feature_series,
                                             &reservoirs_, &retrain_, &feedback_store_);
    std::optional<BasicAuthCredentials> auth;
    if (!options_.metrics_basic_auth_file.empty()) {
      auto read = ReadBasicAuthFile(options_.metrics_basic_auth_file);
      if (!read.ok()) {  // checked at start-up; the file changed since
        fprintf(stderr, "anorand-server: warning: metrics off: %s\n",
                std::string(read.status().message()).c_str());
        return;
      }
      auth = *std::move(read);
    }
    if (absl::Status s = metrics->Serve(options_.metrics_address, std::move(auth)); !s.ok()) {
      fprintf(stderr, "anorand-server: warning: metrics off: %s\n",
              std::string(s.message()).c_str());
      return;
    }
    metrics_ = std::move(metrics);
  }

  // The components' hooks, given at construction, report to metrics_ when
  // it is set: InitMetrics sets it before any thread or call can report.
  ScoreHooks Hooks(ScoreMethod method) {
    return ScoreHooks{[this, method](const ScoreEvent& e) {
                        if (metrics_) metrics_->OnScore(method, e);
                        if (options_.after_score) {
                          options_.after_score(e.code == absl::StatusCode::kOk ? e.records : 0);
                        }
                      },
                      ScoringLoadIfThrottled(), &shadow_, &reservoirs_};
  }

  UploadLimits Upload(const std::string& method) const {
    UploadLimits limits;
    limits.max_bytes = options_.max_upload_bytes;
    if (options_.after_upload_message) {
      limits.after_message = [hook = options_.after_upload_message, method](int64_t messages) {
        hook(method, messages);
      };
    }
    return limits;
  }

  // Scoring counts its in-flight work for the throttle only when training
  // may yield to it.
  ScoringLoad* ScoringLoadIfThrottled() {
    return throttle_.enabled() ? throttle_.load() : nullptr;
  }

  JobEvents JobMetricEvents() {
    JobEvents events;
    events.on_counts = [this](const std::map<v1::JobState, int>& counts, int depth) {
      if (metrics_) metrics_->OnTrainingCounts(counts, depth);
    };
    events.on_finished = [this](v1::JobState state, double seconds) {
      if (metrics_) metrics_->OnTrainingJobFinished(state, seconds);
    };
    return events;
  }

  void OnModelLoad(const LoadEvent& e) {
    if (!e.ok) {
      fprintf(stderr, "anorand-server: model %s version %lld failed to load: %s\n",
              e.model.c_str(), static_cast<long long>(e.version), e.error.c_str());
    }
    if (metrics_) metrics_->OnLoad(e);
    UpdateHealth();
  }

  void UpdateHealth() ABSL_LOCKS_EXCLUDED(health_mu_) {
    absl::MutexLock lock(&health_mu_);
    if (!server_ || draining_) return;
    bool ready = true;
    for (const std::string& name : options_.required_models) {
      ready &= registry_.Resolve(name, 0, "").ok();
    }
    auto* health = server_->GetHealthCheckService();
    health->SetServingStatus("", true);
    health->SetServingStatus(kScoringService, ready);
    health->SetServingStatus(kModelsService, true);
    health->SetServingStatus(kTrainingService, true);
    health->SetServingStatus(kFeedbackService, true);
  }

  ServerOptions options_;
  ClientFolders folders_;  // clients see paths relative to these
  TokenAuth auth_;
  Registry registry_;
  // Scoring's in-flight count lives here: read by shadow_'s worker and polled
  // by jobs_, so it outlives both.
  TrainingThrottle throttle_;
  ShadowScorer shadow_;  // reads registry_; outlives metrics_, which reads it
  ReservoirSet reservoirs_;  // outlives the handlers and training_, which use it
  FeedbackStore feedback_store_;  // outlives metrics_, training_ and feedback_
  // Outlives metrics_ and models_, which read it; stopped by Shutdown before
  // jobs_ and manager_, which it calls.
  RetrainLoop retrain_;
  std::unique_ptr<Metrics> metrics_;  // null when off; outlives the services below
  ModelManager manager_;
  ScoreHandler handler_;         // Score
  ScoreHandler stream_handler_;  // StreamScore
  DynamicBatcher batcher_;       // Score, when --enable_batching
  ScoringService scoring_;
  // Uploads' parses and imports' compiles, off the callback threads.
  WorkQueue intake_;
  // The Models calls that write the store without compiling (one at a
  // time: they take ModelManager's admin lock anyway), off the callback
  // threads and never behind a compile.
  WorkQueue admin_;
  ModelsService models_;
  JobManager jobs_;
  TrainingService training_;
  FeedbackService feedback_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> draining_{false};
  // Orders server_'s assignment (in Init) and the health service's
  // shutdown before any later UpdateHealth, which the store poller may call
  // from its own thread; draining_ is atomic. server_ is otherwise read
  // without it: it is set once, before the server takes calls.
  absl::Mutex health_mu_;
  std::once_flag shutdown_once_;
};

}  // namespace

// HOST:PORT with PORT in 0..65535 (0 = a free one) and an IPv6 host in
// brackets, or a unix: socket path; gRPC would otherwise default a missing
// port to 443 and wrap one over 65535.
absl::Status ValidateListenAddress(const std::string& flag, const std::string& address,
                                   const std::string& example) {
  if (address.rfind("unix:", 0) == 0 && address.size() > 5) return absl::OkStatus();
  const size_t colon = address.rfind(':');
  const std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  std::string why;
  if (colon == std::string::npos || port.empty()) {
    why = "it has no port";
  } else if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
             std::stoi(port) > 65535) {
    why = "the port '" + port + "' is not a number in 0..65535";
  } else if (host.empty()) {
    why = "it has no host";
  } else if (host.find(':') != std::string::npos && !bracketed) {
    why = "an IPv6 host must be in brackets, e.g. [::]:50051";
  }
  if (why.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", address, " is invalid: ", why,
                                                 "; use HOST:PORT (port 0 picks a free one), e.g. ",
                                                 example));
}

absl::Status ValidateServerOptions(const ServerOptions& o) {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError(m); };
  if (o.grpc_address.empty()) return bad("--grpc_address is empty; use HOST:PORT, e.g. 0.0.0.0:50051");
  if (absl::Status s = ValidateListenAddress("grpc_address", o.grpc_address, "0.0.0.0:50051");
      !s.ok()) {
    return s;
  }
  if (o.model_dir.empty()) return bad("--model_dir is empty; name a folder for the model store");
  if (!(o.poll_seconds >= 0 && o.poll_seconds <= 86400))
    return bad("--poll_seconds must be in [0, 86400] (0 = no polling)");
  if (o.max_batch_records < 1 || o.max_batch_records > (1 << 24))
    return bad("--max_batch_records must be in [1, 16777216]");
  if (o.max_message_bytes < 1024 || o.max_message_bytes > (1ll << 31) - 1)
    return bad("--max_message_bytes must be in [1024, 2147483647]");
  if (o.max_streams < 1 || o.max_streams > 1000000) return bad("--max_streams must be in [1, 1000000]");
  if (o.max_upload_bytes < 1024) return bad("--max_upload_bytes must be at least 1024");
  if (!(o.drain_seconds >= 0 && o.drain_seconds <= 3600))
    return bad("--drain_seconds must be in [0, 3600]");
  if (!(o.stream_idle_seconds >= 0 && o.stream_idle_seconds <= 86400 * 7))
    return bad("--stream_idle_seconds must be in [0, 604800] (0 = never close idle streams)");
  if (o.max_loaded_model_bytes < 0)
    return bad("--max_loaded_model_bytes must be >= 0 (0 = no cap)");
  if (o.require_token_for_scoring && o.auth_token.empty())
    return bad("--require_token_for_scoring needs a token (--auth_token or --admin_token_file)");
  if (o.max_queued_jobs < 0 || o.max_queued_jobs > 100000)
    return bad("--max_queued_jobs must be in [0, 100000] (0 = this server does not train)");
  if (o.training_threads < 1 || o.training_threads > 64)
    return bad("--training_threads must be in [1, 64]");
  if (o.intake_threads < 1 || o.intake_threads > 64)
    return bad("--intake_threads must be in [1, 64]");
  if (o.shadow_queue_records < 1 || o.shadow_queue_records > (int64_t{1} << 30))
    return bad("--shadow_queue_records must be in [1, 1073741824]");
  if (o.shadow_window_records < 2 || o.shadow_window_records > 10000000)
    return bad("--shadow_window_records must be in [2, 10000000]");
  if (o.drift_window_records != 0 &&
      (o.drift_window_records < 2 || o.drift_window_records > 10000000))
    return bad("--drift_window_records must be 0 (drift is not tracked) or in [2, 10000000]");
  if (!(o.drift_sample > 0 && o.drift_sample <= 1))
    return bad("--drift_sample must be in (0, 1]: the share of scored records drawn into "
               "each version's drift window");
  if (o.drift_feature_series < 0 || o.drift_feature_series > 10000)
    return bad("--drift_feature_series must be in [0, 10000]");
  if (o.max_feedback_records < 1 || o.max_feedback_records > 10000000)
    return bad("--max_feedback_records must be in [1, 10000000]");
  if (!(o.retrain_check_seconds > 0 && o.retrain_check_seconds <= 86400))
    return bad("--retrain_check_seconds must be in (0, 86400]");
  if (o.reservoir_max_bytes < 1024 || o.reservoir_max_bytes > (int64_t{1} << 36))
    return bad("--reservoir_max_bytes must be in [1024, 68719476736]");
  if (o.reservoir_period_seconds < 1 || o.reservoir_period_seconds > 86400 * 366)
    return bad("--reservoir_period_seconds must be in [1, 31622400]");
  if (o.reservoir_flush_seconds < 1 || o.reservoir_flush_seconds > 86400)
    return bad("--reservoir_flush_seconds must be in [1, 86400]");
  for (const auto& [name, rows] : o.reservoir_records) {
    if (absl::Status s = ValidateReservoirEntry(name, rows); !s.ok()) return s;
  }
  if (absl::Status s = ValidateReplicaId(ReplicaId(o.replica_id)); !s.ok()) return s;
  if (o.training_omp_threads < 1 || o.training_omp_threads > 1024)
    return bad("--training_omp_threads must be in [1, 1024]");
  if (!o.metrics_basic_auth_file.empty()) {
    if (o.metrics_address.empty()) {
      return bad("--metrics_basic_auth_file is set but --metrics_address is empty (no metrics "
                 "endpoint to protect); set both or neither");
    }
    if (auto read = ReadBasicAuthFile(o.metrics_basic_auth_file); !read.ok()) return read.status();
  }
  if (!o.metrics_address.empty()) {
    if (absl::Status s = ValidateListenAddress("metrics_address", o.metrics_address,
                                               "0.0.0.0:9464 (empty = no metrics)");
        !s.ok()) {
      return s;
    }
  }
  for (const std::string& name : o.required_models) {
    if (absl::Status s = ValidateModelName(name); !s.ok()) {
      return bad(absl::StrCat("--require_models: ", s.message()));
    }
  }
  if (!o.data_dir.empty() && !std::filesystem::is_directory(o.data_dir)) {
    return bad(absl::StrCat("--data_dir=", o.data_dir,
                            " is not a folder; create it or give the folder that holds the "
                            "training data (empty = uploads only)"));
  }
  if (o.tls.reload_seconds < 1 || o.tls.reload_seconds > 86400) {
    return bad("--tls_reload_seconds must be in [1, 86400]");
  }
  if (absl::Status s = ValidateBatchingOptions(o.batching); !s.ok()) return s;
  if (absl::Status s = ValidateThrottleOptions(o.training_throttle); !s.ok()) return s;
  return ValidateTlsOptions(o.tls);
}

absl::StatusOr<std::unique_ptr<AnorandServer>> AnorandServer::Start(const ServerOptions& options) {
  if (absl::Status s = ValidateServerOptions(options); !s.ok()) return s;
  auto server = std::make_unique<ServerImpl>(options);
  if (absl::Status s = server->Init(); !s.ok()) return s;
  return std::unique_ptr<AnorandServer>(std::move(server));
}

}  // namespace anorand
