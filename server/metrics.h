// File: metrics.h
//
// Prometheus metrics for the server (docs/OBSERVABILITY.md, "Metrics and
// alerts", lists every family). One prometheus::Registry; every family is
// created once, in the constructor. Serve() adds the HTTP endpoint
// (GET /metrics) with one prometheus::Exposer.
//
// Hooks, all thread-safe:
//   - OnScore: ScoreHandler's observer (score_handler.h), one call per
//     Score request or StreamScore message; ObserveLatency: the scoring
//     service's timing hook (scoring_service.h), called after OnScore for
//     the same request on the same thread.
//   - OnLoad: ModelManager's load hook; OnStreamChange: streams opening and
//     closing; OnTrainingCounts/OnTrainingJobFinished: JobManager's events
//     (or SetTrainingJobs/ObserveTrainingJob/SetTrainingQueueDepth);
//     OnTrainingThrottled: the training throttle's pauses; SetIntakeTasks:
//     the intake work queue's load (work_queue.h).
// Read on each scrape, no hook needed: anorand_model_versions (a registry
// snapshot), anorand_compiled_models (CompiledModel::LiveCount()), the
// anorand_shadow_* comparisons (shadow.h), the anorand_*drift* figures of
// each version's drift window (drift_metrics.h) and the process_* figures
// (from /proc/self).
//
// Label values stay bounded: a request whose model is not in the registry
// (or whose name is invalid) counts under model="_unknown_", version="";
// version is "" whenever the request did not resolve one. Metric objects
// are created once per label set and cached; after the first request for a
// (model, version) the scoring path takes only reader locks and atomics.
#ifndef ANORAND_SERVER_METRICS_H_
#define ANORAND_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "anorand/v1/training.pb.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/feedback_store.h"
#include "server/metrics_auth.h"
#include "server/model_manager.h"
#include "server/registry.h"
#include "server/reservoirs.h"
#include "server/score_handler.h"
#include "server/scoring_service.h"
#include "server/shadow.h"

namespace prometheus {
class Exposer;
}

namespace anorand {

class RetrainLoop;

// The label value for every model name not in the registry.
inline constexpr char kUnknownModelLabel[] = "_unknown_";

class Metrics {
 public:
  // `models` is read on each scrape (anorand_model_versions and the drift
  // families, with `drift_feature_series` features per version), and so is
  // `shadow` (anorand_shadow_*; null: none), `reservoirs`
  // (anorand_reservoir_*), `retrain` (anorand_retrain_*) and `feedback`
  // (anorand_feedback_*); each must outlive this object.
  explicit Metrics(const Registry* models, const ShadowScorer* shadow = nullptr,
                   int drift_feature_series = 32, ReservoirSet* reservoirs = nullptr,
                   const RetrainLoop* retrain = nullptr, FeedbackStore* feedback = nullptr);
  ~Metrics();  // stops the HTTP endpoint, if any
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Serves GET /metrics on `address` (HOST:PORT; port 0 picks a free one),
  // behind HTTP basic authentication when `auth` is given (metrics_auth.h;
  // a request without the pair gets 401). UNAVAILABLE when it cannot
  // listen there. Call at most once.
  absl::Status Serve(const std::string& address,
                     std::optional<BasicAuthCredentials> auth = std::nullopt);
  // The bound port, 0 when not serving.
  int port() const { return port_; }

  // Scoring.
  void OnScore(ScoreMethod method, const ScoreEvent& event);
  void ObserveLatency(ScoreMethod method, const std::string& model, double seconds);
  void OnStreamChange(int delta);
  // One forward pass of the dynamic batcher and how many requests it
  // served (batcher.h).
  void OnBatchedPass(int requests);

  // Model loading.
  void OnLoad(const LoadEvent& event);

  // Training. `state` is one of queued, running, succeeded, failed,
  // cancelled (the lower-case JobState names); jobs in a terminal state
  // are observed once in anorand_training_job_seconds{state}.
  void SetTrainingJobs(const std::string& state, int64_t count);
  void ObserveTrainingJob(const std::string& state, double seconds);
  void SetTrainingQueueDepth(int64_t depth);
  // The same from JobManager's events (job_manager.h).
  void OnTrainingCounts(const std::map<v1::JobState, int>& counts, int queue_depth);
  void OnTrainingJobFinished(v1::JobState state, double seconds);
  // A training pause that let scoring run (training_throttle.h), when it ends.
  void OnTrainingThrottled(double seconds);
  // Work waiting for an intake thread and being handled (--intake_threads:
  // uploads, imports, loads, exports, history reads, Feedback calls).
  void SetIntakeTasks(int64_t queued, int64_t running);
  // "queued", ..., "cancelled"; "" for JOB_STATE_UNSPECIFIED or unknown.
  static std::string JobStateLabel(v1::JobState state);

  // Everything a scrape would return, in the text format (tests, debugging).
  std::string Render() const;

  // Bucket bounds (tests and docs).
  static std::vector<double> LatencyBuckets();
  static std::vector<double> ScoreBuckets();

 private:
  static constexpr int kMethods = 2;
  static constexpr int kCodes = 17;  // absl::StatusCode 0..16

  struct VersionSeries {
    prometheus::Counter* records = nullptr;
    prometheus::Counter* anomalies = nullptr;
    std::array<std::array<std::atomic<prometheus::Counter*>, kCodes>, kMethods> requests{};
  };
  struct ModelSeries {
    std::string label;
    std::array<prometheus::Histogram*, kMethods> latency{};
    prometheus::Histogram* scores = nullptr;
    mutable absl::Mutex mu;
    std::map<int64_t, std::unique_ptr<VersionSeries>> versions ABSL_GUARDED_BY(mu);  // 0: ""
  };

  ModelSeries* ModelFor(const std::string& label, bool create);
  VersionSeries* VersionFor(ModelSeries* model, int64_t version);
  void ObserveScores(ModelSeries* model, const v1::ScoreResponse& response);

  const Registry* models_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> runtime_;  // model versions, compiled models
  std::shared_ptr<prometheus::Collectable> process_;  // process_*
  std::shared_ptr<prometheus::Collectable> shadow_;   // anorand_shadow_*, or null
  std::shared_ptr<prometheus::Collectable> drift_;    // anorand_*drift*
  std::shared_ptr<prometheus::Collectable> reservoir_;  // anorand_reservoir_*, or null
  std::shared_ptr<prometheus::Collectable> retrain_;    // anorand_retrain_*, or null
  std::shared_ptr<prometheus::Collectable> feedback_;   // anorand_feedback_*, or null
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
  int port_ = 0;

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& records_;
  prometheus::Family<prometheus::Counter>& anomalies_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Histogram& batch_records_;
  prometheus::Family<prometheus::Histogram>& score_value_;
  prometheus::Histogram& load_seconds_;
  prometheus::Family<prometheus::Counter>& load_failures_;
  prometheus::Family<prometheus::Gauge>& training_jobs_;
  prometheus::Family<prometheus::Histogram>& training_job_seconds_;
  prometheus::Gauge& training_queue_depth_;
  prometheus::Counter& training_throttled_seconds_;
  prometheus::Gauge& stream_active_;
  prometheus::Histogram& batched_requests_;
  prometheus::Family<prometheus::Gauge>& intake_tasks_;
  prometheus::Gauge& intake_queued_;
  prometheus::Gauge& intake_running_;

  mutable absl::Mutex series_mu_;
  std::unordered_map<std::string, std::unique_ptr<ModelSeries>> series_ ABSL_GUARDED_BY(series_mu_);
  ModelSeries* unknown_ = nullptr;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_METRICS_H_
