// File: server.h
//
// The anorand server: the gRPC services (Scoring, Models, Training,
// Feedback), the
// standard health service (per service: "anorand.v1.Scoring" is SERVING
// once every model named in required_models has a ready version, and
// NOT_SERVING while draining), server reflection, and the model manager's
// store polling. Start() returns once the port is bound and the initial
// store scan is done. Shutdown() drains: health turns NOT_SERVING, new
// calls are refused, calls in flight get drain_seconds to finish.
#ifndef ANORAND_SERVER_SERVER_H_
#define ANORAND_SERVER_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/batcher.h"
#include "server/tls.h"
#include "server/training_throttle.h"

namespace anorand {

struct ServerOptions {
  std::string grpc_address = "0.0.0.0:50051";
  std::string model_dir = "models";
  double poll_seconds = 5;
  int64_t max_batch_records = 65536;
  int64_t max_message_bytes = 64ll << 20;
  int max_streams = 1024;
  int64_t max_upload_bytes = 1ll << 30;
  double drain_seconds = 10;
  // Streams with no completed read or write for this long are closed (0 = never).
  double stream_idle_seconds = 600;
  // Cap on the model-file bytes of loaded versions (0 = no cap).
  int64_t max_loaded_model_bytes = 0;
  // Dynamic batching of unary Score requests (batcher.h); off by default.
  bool enable_batching = false;
  BatchingOptions batching;
  std::vector<std::string> required_models;
  std::string auth_token;
  bool require_token_for_scoring = false;  // scoring needs the token too
  // Training.
  std::string data_dir;          // "" = uploads only
  std::string jobs_dir;          // "" = <model_dir>/.jobs
  int max_queued_jobs = 16;
  int training_threads = 1;      // jobs at once
  // Threads that run, in arrival order (work_queue.h): SubmitJob parses,
  // ImportVersion and LoadVersion compiles, ExportVersion and
  // GetModelHistory reads, and every Feedback call.
  int intake_threads = 2;
  // Shadow scoring (shadow.h): records waiting for the shadow, and the
  // records each comparison's figures describe.
  int64_t shadow_queue_records = 100000;
  int64_t shadow_window_records = 10000;
  // Drift (drift_window.h): the recent records each ready version's drift
  // figures describe (0 = not tracked), and the features per version with
  // a series of their own in the metrics (the rest fold into one).
  int64_t drift_window_records = 10000;
  double drift_sample = 0.1;  // share of scored records drawn into the window
  int drift_feature_series = 32;
  // Reservoirs of recent traffic (reservoirs.h), opt-in per model: model
  // name -> records kept (--reservoir_records), bounded also in bytes of
  // values per model; a half of the sample collects for one period, so
  // records are kept for at most two; written to
  // <model_dir>/.reservoir/<model>/<replica_id>.rsv every flush period
  // and at shutdown. replica_id "" = the host name.
  std::map<std::string, int64_t> reservoir_records;
  int64_t reservoir_max_bytes = int64_t{64} << 20;
  int64_t reservoir_period_seconds = 43200;
  int64_t reservoir_flush_seconds = 60;
  std::string replica_id;
  // How often the retrain loop (retrain_loop.h) checks the models with a
  // retrain policy, seconds, > 0.
  double retrain_check_seconds = 30;
  // The most feedback records (feedback.proto) one model holds.
  int64_t max_feedback_records = 100000;
  int training_omp_threads = 1;  // oneDNN threads per job
  bool training_low_priority = true;  // training threads at SCHED_IDLE
  // Training pauses between mini-batches while scoring is busy
  // (training_throttle.h; --training_yield_inflight, whose anorand-server
  // default is 1 while embedders and tests start from 0 here;
  // --training_yield_max_pause_ms).
  ThrottleOptions training_throttle;
  // Prometheus endpoint (GET /metrics), HOST:PORT; port 0 picks a free one.
  // Empty = no metrics. anorand-server's --metrics_address defaults to
  // 0.0.0.0:9464; embedders and tests opt in here.
  std::string metrics_address;
  // A file with one line USER:PASSWORD: /metrics then requires HTTP basic
  // authentication with that pair (metrics_auth.h). Empty = open.
  std::string metrics_basic_auth_file;
  // TLS on the gRPC port (off when every file is empty); see tls.h.
  TlsOptions tls;
  // Called once a version is LOADING, before its file is read and compiled,
  // with no lock held (model_manager.h). Empty in anorand-server; tests hold
  // a load here.
  std::function<void(const std::string& model, int64_t version)> before_model_load;
  // Called on the training thread when a throttle pause begins and when it
  // ends (training_throttle.h). Empty in anorand-server; tests hold a pause
  // here.
  std::function<void(const TrainingPause&)> on_training_pause;
  // Called on the training thread once a job is PUBLISHING, before its
  // version is written (job_manager.h). Empty in anorand-server; tests hold
  // a publish here.
  std::function<void(const std::string& job_id)> before_publish;
  // Called on the gRPC callback thread after each message of an upload is
  // taken, with the method ("SubmitJob", "ImportVersion") and the number
  // of messages its call has taken so far (upload_limits.h). Empty in
  // anorand-server; tests wait here until the server has read an upload.
  std::function<void(const std::string& method, int64_t messages)> after_upload_message;
  // Called on the scoring thread once a Score request or StreamScore
  // message is scored, before its answer is sent, with its record count
  // (0 when it failed). Empty in anorand-server; tests hold a pass here.
  std::function<void(int64_t records)> after_score;
};

// Checks ranges; INVALID_ARGUMENT names the flag.
absl::Status ValidateServerOptions(const ServerOptions& options);

class AnorandServer {
 public:
  static absl::StatusOr<std::unique_ptr<AnorandServer>> Start(const ServerOptions& options);
  virtual ~AnorandServer() = default;

  virtual int port() const = 0;
  // The metrics endpoint's port; 0 when metrics are off or the address
  // could not be bound (the server then runs without them, with a warning).
  virtual int metrics_port() const = 0;
  // Drains and stops; safe to call more than once and from any thread.
  virtual void Shutdown() = 0;
  // Blocks until the server has stopped.
  virtual void Wait() = 0;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_SERVER_H_
