// File: shadow.h
//
// Shadow scoring (models.proto SetShadow): once a request for a model with
// a shadow is scored, before its response is sent (on the request's
// thread), Offer() draws each of its records with the shadow's
// sample fraction and queues the drawn ones, with the scores and flags they
// were answered with, for one worker thread that scores them again with the
// shadow version. The request thread only resolves the shadow, draws and
// copies; when the queue holds --shadow_queue_records records, a request's
// drawn records are dropped (and counted) instead of queued. The worker runs
// at SCHED_IDLE (thread_priority.h) and yields to scoring by the training
// throttle's rule (--training_yield_inflight; ShadowOptions.scoring_load):
// on a busy machine it falls behind and drops, rather than taking CPU from
// the answers.
//
// Per (model, serving version, shadow version) the scorer keeps the number
// of records compared and a window of the most recent ones, from which
// Compare() derives Spearman's rank correlation of the two scores, the share
// flagged by one version and not the other, and each version's score
// quantiles (computed on a copy, outside the lock). Nothing here is
// persisted: a restart starts the comparison again. No gRPC. Thread-safe.
#ifndef ANORAND_SERVER_SHADOW_H_
#define ANORAND_SERVER_SHADOW_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "anorand/v1/scoring.pb.h"
#include "server/registry.h"
#include "server/scoring_load.h"

namespace anorand {

struct ShadowOptions {
  int64_t queue_records = 100000;  // --shadow_queue_records
  int64_t window_records = 10000;  // --shadow_window_records
  // Scoring's in-flight count (scoring_load.h; null, or a load nobody
  // counts into: never busy). While scoring is busy (at least busy_at()
  // requests in flight now or within the last yield_slice) the worker
  // waits up to yield_max_pause before each pass, and a pass then takes at
  // most kBusyPassRecords: on a saturated replica the shadow gets a few
  // percent of one core and its queue drops the rest (counted).
  const ScoringLoad* scoring_load = nullptr;
  absl::Duration yield_slice = absl::Milliseconds(1);
  absl::Duration yield_max_pause = absl::Milliseconds(20);
};

struct ScoreQuantileSet {
  double p50 = 0, p90 = 0, p99 = 0;
};

struct ShadowComparisonStats {
  std::string model;
  int64_t version = 0;         // the version that answered
  int64_t shadow_version = 0;  // the shadow that scored the same records
  int64_t compared = 0;        // since start
  int64_t window = 0;          // records the figures below describe
  double rank_correlation = 0;
  double serving_only_flagged = 0;  // share of the window
  double shadow_only_flagged = 0;
  ScoreQuantileSet serving_scores, shadow_scores;
};

// Spearman's rank correlation (ties get their mean rank); 0 with fewer than
// two values or when either side is constant.
double SpearmanCorrelation(const std::vector<float>& a, const std::vector<float>& b);

class ShadowScorer {
 public:
  ShadowScorer(const Registry* registry, ShadowOptions options);
  ~ShadowScorer();  // Stop()
  ShadowScorer(const ShadowScorer&) = delete;
  ShadowScorer& operator=(const ShadowScorer&) = delete;

  void Start();
  // Stops the worker; records still queued are discarded.
  void Stop();

  // A request answered OK with `response`. Returns at once.
  void Offer(const v1::ScoreRequest& request, const v1::ScoreResponse& response);

  // The model's comparisons, most recently updated first.
  std::vector<ShadowComparisonStats> Compare(const std::string& model) const;
  std::vector<ShadowComparisonStats> CompareAll() const;
  // Drawn records dropped because the queue was full.
  int64_t Dropped(const std::string& model) const;
  std::map<std::string, int64_t> DroppedAll() const;

  // Blocks until every record queued before the call has been compared
  // (tests, benchmarks).
  void Flush();

 private:
  struct Task {
    std::string model;
    int64_t version = 0;
    ModelHandle shadow;
    std::vector<float> x;  // rows x features, raw
    std::vector<float> score;
    std::vector<char> flag;
  };
  struct Sample {
    float serving = 0, shadow = 0;
    bool serving_flag = false, shadow_flag = false;
  };
  struct Pair {
    int64_t compared = 0;
    uint64_t updated = 0;  // order of the last update
    std::vector<Sample> window;  // a ring of at most window_records
    size_t next = 0;
  };
  using PairKey = std::tuple<std::string, int64_t, int64_t>;

  void Work();
  // Waits while scoring is busy, up to yield_max_pause; true if it still is.
  bool YieldToScoring() ABSL_LOCKS_EXCLUDED(queue_mu_);
  // Scores a run of tasks that share model, version and shadow in one pass.
  void ScoreRun(const std::vector<Task>& run);
  static ShadowComparisonStats Summarise(const PairKey& key, const Pair& pair);

  const Registry* registry_;
  const ShadowOptions options_;

  absl::Mutex queue_mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(queue_mu_);
  int64_t queued_records_ ABSL_GUARDED_BY(queue_mu_) = 0;
  uint64_t pushed_ ABSL_GUARDED_BY(queue_mu_) = 0;  // tasks ever queued
  uint64_t done_ ABSL_GUARDED_BY(queue_mu_) = 0;    // tasks compared or discarded
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread worker_;

  mutable absl::Mutex stats_mu_;
  std::map<PairKey, Pair> pairs_ ABSL_GUARDED_BY(stats_mu_);
  std::map<std::string, int64_t> dropped_ ABSL_GUARDED_BY(stats_mu_);
  uint64_t updates_ ABSL_GUARDED_BY(stats_mu_) = 0;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_SHADOW_H_
