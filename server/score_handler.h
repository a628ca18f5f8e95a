// File: score_handler.h
//
// One ScoreRequest -> one ScoreResponse, with no gRPC in sight: validate
// every field, resolve the model in the registry, score the whole batch in
// one forward pass, fill the columnar response. Shared by Score and
// StreamScore (scoring_service.h) and by the request fuzzer.
// Thread-safe (the registry is; the model is immutable).
#ifndef ANORAND_SERVER_SCORE_HANDLER_H_
#define ANORAND_SERVER_SCORE_HANDLER_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "anorand/v1/scoring.pb.h"
#include "server/registry.h"
#include "server/reservoirs.h"
#include "server/scoring_load.h"
#include "server/shadow.h"

namespace anorand {

struct ScoreLimits {
  int64_t max_batch_records = 65536;
  int64_t max_message_bytes = 64ll << 20;
};

// What one scored batch was, for metrics. Called once per request, also on
// failure (version 0 when the model did not resolve).
struct ScoreEvent {
  const v1::ScoreRequest* request = nullptr;  // set by Prepare
  const std::string* model = nullptr;  // as requested (may be invalid)
  int64_t version = 0;
  bool known_model = false;            // false: the name is not in the registry
  absl::StatusCode code = absl::StatusCode::kOk;
  int64_t records = 0;
  int64_t anomalies = 0;
  const v1::ScoreResponse* response = nullptr;  // set when ok
};

// A request that passed validation, with its model resolved (the handle
// keeps that version alive until the request is answered).
struct PreparedScore {
  ModelHandle handle;
  int64_t rows = 0;
};

// One request of a forward pass shared by several (ScoreTogether).
struct ScoreItem {
  const v1::ScoreRequest* request = nullptr;
  v1::ScoreResponse* response = nullptr;
  PreparedScore prepared;
  ScoreEvent event;
  absl::Status status;  // set by ScoreTogether
};

// Who else sees a scored request; each member may be left empty (none).
struct ScoreHooks {
  // Every finished request, OK or not (metrics).
  std::function<void(const ScoreEvent&)> observer;
  // Score counts each request into it while it runs (the training
  // throttle reads it).
  ScoringLoad* load = nullptr;
  // Each request answered OK is offered to the shadow scorer (shadow.h),
  // then to the reservoirs (reservoirs.h), before the observer sees it.
  ShadowScorer* shadow = nullptr;
  ReservoirSet* reservoirs = nullptr;
};

class ScoreHandler {
 public:
  ScoreHandler(const Registry* registry, ScoreLimits limits, ScoreHooks hooks = {})
      : registry_(registry), limits_(limits), hooks_(std::move(hooks)) {}

  // Prepare + Run + Observe: one request, one forward pass.
  absl::Status Score(const v1::ScoreRequest& request, v1::ScoreResponse* response) const;

  // The steps of Score, for the dynamic batcher (batcher.h). Prepare
  // validates every field and resolves the model (setting event->version
  // and known_model); it does not look at the values themselves.
  absl::StatusOr<PreparedScore> Prepare(const v1::ScoreRequest& request,
                                        ScoreEvent* event) const;
  // Scores one prepared request in its own forward pass.
  absl::Status Run(const v1::ScoreRequest& request, const PreparedScore& prepared,
                   v1::ScoreResponse* response, ScoreEvent* event) const;
  // Scores prepared requests of one model version, none with explain, in
  // one forward pass over their records laid end to end, and fills each
  // item's response, status and event. When that pass fails (a NaN or
  // infinite value in one of them), each is scored alone, so an error
  // names its own request's row and column and the others are served.
  void ScoreTogether(const std::vector<ScoreItem*>& items) const;
  // Reports a finished request to the shadow scorer and the observer
  // (metrics).
  void Observe(ScoreEvent* event, const absl::Status& status,
               const v1::ScoreResponse* response) const;

 private:
  const Registry* registry_;
  const ScoreLimits limits_;
  const ScoreHooks hooks_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_SCORE_HANDLER_H_
