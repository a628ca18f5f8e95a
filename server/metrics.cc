#include "server/metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "model/compiled_model.h"
#include "prometheus/exposer.h"
#include "server/drift_metrics.h"
#include "server/listener_knocker.h"
#include "server/metric_util.h"
#include "server/process_collector.h"
#include "server/shadow_metrics.h"
#include "server/feedback_metrics.h"
#include "server/reservoir_metrics.h"
#include "server/retrain_metrics.h"
#include "prometheus/text_serializer.h"

namespace anorand {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr const char* kMethodNames[] = {"Score", "StreamScore"};
constexpr const char* kCodeNames[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
constexpr const char* kVersionStates[] = {"loading", "ready", "unloaded", "failed"};
constexpr const char* kJobStates[] = {"queued", "running", "succeeded", "failed", "cancelled"};
constexpr const char* kTerminalJobStates[] = {"succeeded", "failed", "cancelled"};

int MethodIndex(ScoreMethod m) { return m == ScoreMethod::kStreamScore ? 1 : 0; }

// anorand_model_versions{model,state} from a registry snapshot and
// anorand_compiled_models from CompiledModel::LiveCount(), on each scrape.
class RuntimeCollector final : public prometheus::Collectable {
 public:
  explicit RuntimeCollector(const Registry* models) : models_(models) {}

  std::vector<MetricFamily> Collect() const override {
    MetricFamily versions{"anorand_model_versions",
                          "Model versions in this replica's registry, by state "
                          "(loading, ready, unloaded, failed).",
                          MetricType::Gauge,
                          {}};
    for (const auto& [name, entry] : models_->Snapshot()) {
      int count[4] = {0, 0, 0, 0};
      for (const auto& [version, v] : entry.versions) ++count[static_cast<int>(v.state)];
      for (int s = 0; s < 4; ++s) {
        versions.metric.push_back(
            GaugeMetric({{"model", name}, {"state", kVersionStates[s]}}, count[s]));
      }
    }
    MetricFamily compiled{"anorand_compiled_models",
                          "Compiled models alive in the process, including retired versions "
                          "still held by requests in flight.",
                          MetricType::Gauge,
                          {}};
    compiled.metric.push_back(GaugeMetric({}, static_cast<double>(CompiledModel::LiveCount())));
    return {std::move(versions), std::move(compiled)};
  }

 private:
  const Registry* models_;
};

std::vector<double> LoadBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}
std::vector<double> BatchBuckets() {
  std::vector<double> b;
  for (double v = 1; v <= (1 << 24); v *= 4) b.push_back(v);
  return b;
}
std::vector<double> TrainingBuckets() {
  return {1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400};
}

}  // namespace

std::vector<double> Metrics::LatencyBuckets() {
  // 10 us .. 10 s: 1, 2.5, 5 per decade.
  std::vector<double> b;
  for (double decade = 1e-5; decade < 5; decade *= 10) {
    for (double m : {1.0, 2.5, 5.0}) b.push_back(decade * m);
  }
  b.push_back(10);
  return b;
}

std::vector<double> Metrics::ScoreBuckets() {
  std::vector<double> b;
  for (int i = 1; i <= 20; ++i) b.push_back(i / 20.0);
  return b;
}

Metrics::Metrics(const Registry* models, const ShadowScorer* shadow, int drift_feature_series,
                 ReservoirSet* reservoirs, const RetrainLoop* retrain, FeedbackStore* feedback)
    : models_(models),
      registry_(std::make_shared<prometheus::Registry>()),
      runtime_(std::make_shared<RuntimeCollector>(models)),
      process_(std::make_shared<ProcessCollector>()),
      shadow_(shadow ? std::make_shared<ShadowCollector>(shadow) : nullptr),
      drift_(std::make_shared<DriftCollector>(models, drift_feature_series)),
      reservoir_(reservoirs ? std::make_shared<ReservoirCollector>(reservoirs) : nullptr),
      retrain_(retrain ? std::make_shared<RetrainCollector>(retrain) : nullptr),
      feedback_(feedback ? std::make_shared<FeedbackCollector>(models, feedback) : nullptr),
      requests_(prometheus::BuildCounter()
                    .Name("anorand_score_requests_total")
                    .Help("Score requests and StreamScore messages handled, by model, resolved "
                          "version, method and status code.")
                    .Register(*registry_)),
      records_(prometheus::BuildCounter()
                   .Name("anorand_scored_records_total")
                   .Help("Records scored successfully, by model and version.")
                   .Register(*registry_)),
      anomalies_(prometheus::BuildCounter()
                     .Name("anorand_anomalies_total")
                     .Help("Records flagged is_anomaly (score >= the model's threshold), by model "
                           "and version.")
                     .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("anorand_score_latency_seconds")
                   .Help("Time to validate and score one request or stream message, by model "
                         "and method.")
                   .Register(*registry_)),
      batch_records_(prometheus::BuildHistogram()
                         .Name("anorand_batch_records")
                         .Help("Records per successfully scored request or stream message.")
                         .Register(*registry_)
                         .Add({}, BatchBuckets())),
      score_value_(prometheus::BuildHistogram()
                       .Name("anorand_score_value")
                       .Help("The scores returned, in [0, 1], by model.")
                       .Register(*registry_)),
      load_seconds_(prometheus::BuildHistogram()
                        .Name("anorand_model_load_seconds")
                        .Help("Time to read, validate and compile one model version (successful "
                              "loads).")
                        .Register(*registry_)
                        .Add({}, LoadBuckets())),
      load_failures_(prometheus::BuildCounter()
                         .Name("anorand_model_load_failures_total")
                         .Help("Model versions that failed to load, by model.")
                         .Register(*registry_)),
      training_jobs_(prometheus::BuildGauge()
                         .Name("anorand_training_jobs")
                         .Help("Training jobs known to this replica, by state.")
                         .Register(*registry_)),
      training_job_seconds_(prometheus::BuildHistogram()
                                .Name("anorand_training_job_seconds")
                                .Help("Run time of finished training jobs, by final state.")
                                .Register(*registry_)),
      training_queue_depth_(prometheus::BuildGauge()
                                .Name("anorand_training_queue_depth")
                                .Help("Training jobs queued, waiting for a training thread.")
                                .Register(*registry_)
                                .Add({})),
      training_throttled_seconds_(
          prometheus::BuildCounter()
              .Name("anorand_training_throttled_seconds_total")
              .Help("Time training threads spent paused so that scoring could run "
                    "(--training_yield_inflight).")
              .Register(*registry_)
              .Add({})),
      stream_active_(prometheus::BuildGauge()
                         .Name("anorand_stream_active")
                         .Help("StreamScore streams open.")
                         .Register(*registry_)
                         .Add({})),
      batched_requests_(prometheus::BuildHistogram()
                            .Name("anorand_batched_requests")
                            .Help("Score requests served by one forward pass of the dynamic "
                                  "batcher (--enable_batching).")
                            .Register(*registry_)
                            .Add({}, prometheus::Histogram::BucketBoundaries{
                                         1, 2, 4, 8, 16, 32, 64, 128, 256, 1024})),
      intake_tasks_(prometheus::BuildGauge()
                        .Name("anorand_intake_tasks")
                        .Help("Work of the intake queue being handled (state=running) and "
                              "waiting for one of the --intake_threads (state=queued): "
                              "SubmitJob parses, ImportVersion and LoadVersion compiles, "
                              "ExportVersion and GetModelHistory reads, Feedback calls.")
                        .Register(*registry_)),
      intake_queued_(intake_tasks_.Add({{"state", "queued"}})),
      intake_running_(intake_tasks_.Add({{"state", "running"}})) {
  for (const char* s : kJobStates) training_jobs_.Add({{"state", s}});
  for (const char* s : kTerminalJobStates) {
    training_job_seconds_.Add({{"state", s}}, TrainingBuckets());
  }
  unknown_ = ModelFor(kUnknownModelLabel, true);
}

Metrics::~Metrics() {
  if (exposer_) {
    ListenerKnocker knock(address_, port_);
    exposer_.reset();
  }
}

absl::Status Metrics::Serve(const std::string& address,
                            std::optional<BasicAuthCredentials> auth) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address,
                                               " for metrics (address in use or not valid; "
                                               "change --metrics_address): ",
                                               e.what()));
  }
  address_ = address;
  const std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? 0 : ports.front();
  if (auth) {
    exposer_->RegisterAuth(
        [credentials = *std::move(auth)](const std::string& user, const std::string& password) {
          return credentials.Matches(user, password);
        },
        "anorand metrics");
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(runtime_);
  exposer_->RegisterCollectable(process_);
  if (shadow_) exposer_->RegisterCollectable(shadow_);
  exposer_->RegisterCollectable(drift_);
  if (reservoir_) exposer_->RegisterCollectable(reservoir_);
  if (retrain_) exposer_->RegisterCollectable(retrain_);
  if (feedback_) exposer_->RegisterCollectable(feedback_);
  return absl::OkStatus();
}

Metrics::ModelSeries* Metrics::ModelFor(const std::string& label, bool create) {
  {
    absl::ReaderMutexLock lock(&series_mu_);
    auto it = series_.find(label);
    if (it != series_.end()) return it->second.get();
  }
  if (!create) return nullptr;
  absl::MutexLock lock(&series_mu_);
  auto& slot = series_[label];
  if (!slot) {
    auto m = std::make_unique<ModelSeries>();
    m->label = label;
    for (int i = 0; i < kMethods; ++i) {
      m->latency[i] =
          &latency_.Add({{"model", label}, {"method", kMethodNames[i]}}, LatencyBuckets());
    }
    m->scores = &score_value_.Add({{"model", label}}, ScoreBuckets());
    slot = std::move(m);
  }
  return slot.get();
}

Metrics::VersionSeries* Metrics::VersionFor(ModelSeries* model, int64_t version) {
  {
    absl::ReaderMutexLock lock(&model->mu);
    auto it = model->versions.find(version);
    if (it != model->versions.end()) return it->second.get();
  }
  absl::MutexLock lock(&model->mu);
  auto& slot = model->versions[version];
  if (!slot) {
    auto v = std::make_unique<VersionSeries>();
    const prometheus::Labels labels = {{"model", model->label}, {"version", VersionLabel(version)}};
    v->records = &records_.Add(labels);
    v->anomalies = &anomalies_.Add(labels);
    slot = std::move(v);
  }
  return slot.get();
}

void Metrics::OnScore(ScoreMethod method, const ScoreEvent& e) {
  static const std::string kEmpty;
  const std::string& name = e.model ? *e.model : kEmpty;
  // known_model is decided when the name is resolved; a request that fails
  // validation before that, for a model that exists, still counts under it.
  const bool known =
      e.known_model || (e.code != absl::StatusCode::kOk && models_->GetModel(name).has_value());
  ModelSeries* model = known ? ModelFor(name, true) : unknown_;
  VersionSeries* v = VersionFor(model, known ? e.version : 0);

  const int m = MethodIndex(method);
  int code = static_cast<int>(e.code);
  if (code < 0 || code >= kCodes) code = static_cast<int>(absl::StatusCode::kUnknown);
  std::atomic<prometheus::Counter*>& slot = v->requests[m][code];
  prometheus::Counter* requests = slot.load(std::memory_order_acquire);
  if (requests == nullptr) {
    // Family::Add returns the existing metric for the same labels, so a
    // race here only stores the same pointer twice.
    requests = &requests_.Add({{"model", model->label},
                               {"version", VersionLabel(known ? e.version : 0)},
                               {"method", kMethodNames[m]},
                               {"code", kCodeNames[code]}});
    slot.store(requests, std::memory_order_release);
  }
  requests->Increment();

  if (e.code != absl::StatusCode::kOk) return;
  v->records->Increment(static_cast<double>(e.records));
  v->anomalies->Increment(static_cast<double>(e.anomalies));
  batch_records_.Observe(static_cast<double>(e.records));
  if (e.response != nullptr) ObserveScores(model, *e.response);
}

void Metrics::ObserveScores(ModelSeries* model, const v1::ScoreResponse& response) {
  static const std::vector<double> bounds = ScoreBuckets();
  thread_local std::vector<double> counts;
  counts.assign(bounds.size() + 1, 0.0);
  double sum = 0;
  for (const float s : response.scores()) {
    if (!std::isfinite(s)) continue;
    // The bucket a single Observe(s) would pick: the first bound >= s.
    const size_t i =
        std::lower_bound(bounds.begin(), bounds.end(), static_cast<double>(s)) - bounds.begin();
    counts[i] += 1;
    sum += s;
  }
  model->scores->ObserveMultiple(counts, sum);
}

void Metrics::ObserveLatency(ScoreMethod method, const std::string& model, double seconds) {
  // OnScore ran first for this request: the model has series iff it was
  // counted under its own name.
  ModelSeries* series = ModelFor(model, false);
  if (series == nullptr) series = unknown_;
  series->latency[MethodIndex(method)]->Observe(seconds);
}

void Metrics::OnStreamChange(int delta) { stream_active_.Increment(delta); }

void Metrics::OnBatchedPass(int requests) {
  batched_requests_.Observe(static_cast<double>(requests));
}

void Metrics::OnLoad(const LoadEvent& e) {
  // Created at 0 on the first load so that increase() sees the first failure.
  prometheus::Counter& failures = load_failures_.Add({{"model", e.model}});
  if (e.ok) {
    load_seconds_.Observe(e.seconds);
  } else {
    failures.Increment();
  }
}

void Metrics::SetTrainingJobs(const std::string& state, int64_t count) {
  training_jobs_.Add({{"state", state}}).Set(static_cast<double>(count));
}

void Metrics::ObserveTrainingJob(const std::string& state, double seconds) {
  training_job_seconds_.Add({{"state", state}}, TrainingBuckets()).Observe(seconds);
}

void Metrics::SetIntakeTasks(int64_t queued, int64_t running) {
  intake_queued_.Set(static_cast<double>(queued));
  intake_running_.Set(static_cast<double>(running));
}

void Metrics::SetTrainingQueueDepth(int64_t depth) {
  training_queue_depth_.Set(static_cast<double>(depth));
}

void Metrics::OnTrainingThrottled(double seconds) { training_throttled_seconds_.Increment(seconds); }

std::string Metrics::JobStateLabel(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED:
      return "queued";
    case v1::JOB_STATE_RUNNING:
      return "running";
    case v1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "";
  }
}

void Metrics::OnTrainingCounts(const std::map<v1::JobState, int>& counts, int queue_depth) {
  for (const auto& [state, n] : counts) {
    const std::string label = JobStateLabel(state);
    if (!label.empty()) SetTrainingJobs(label, n);
  }
  SetTrainingQueueDepth(queue_depth);
}

void Metrics::OnTrainingJobFinished(v1::JobState state, double seconds) {
  const std::string label = JobStateLabel(state);
  if (!label.empty()) ObserveTrainingJob(label, seconds);
}

std::string Metrics::Render() const {
  std::vector<MetricFamily> all = registry_->Collect();
  for (const auto* c :
       {runtime_.get(), process_.get(), shadow_.get(), drift_.get(), reservoir_.get(),
        retrain_.get(), feedback_.get()}) {
    if (!c) continue;
    for (auto& f : c->Collect()) all.push_back(std::move(f));
  }
  return prometheus::TextSerializer().Serialize(all);
}

}  // namespace anorand
