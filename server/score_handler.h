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

#include "absl/status/status.h"
#include "anorand/v1/scoring.pb.h"
#include "server/registry.h"

namespace anorand {

struct ScoreLimits {
  int64_t max_batch_records = 65536;
  int64_t max_message_bytes = 64ll << 20;
};

// What one scored batch was, for metrics. Called once per request, also on
// failure (version 0 when the model did not resolve).
struct ScoreEvent {
  const std::string* model = nullptr;  // as requested (may be invalid)
  int64_t version = 0;
  bool known_model = false;            // false: the name is not in the registry
  absl::StatusCode code = absl::StatusCode::kOk;
  int64_t records = 0;
  int64_t anomalies = 0;
  const v1::ScoreResponse* response = nullptr;  // set when ok
};

class ScoreHandler {
 public:
  ScoreHandler(const Registry* registry, ScoreLimits limits)
      : registry_(registry), limits_(limits) {}

  void set_observer(std::function<void(const ScoreEvent&)> f) { observer_ = std::move(f); }

  absl::Status Score(const v1::ScoreRequest& request, v1::ScoreResponse* response) const;

 private:
  absl::Status ScoreImpl(const v1::ScoreRequest& request, v1::ScoreResponse* response,
                         ScoreEvent* event) const;

  const Registry* registry_;
  ScoreLimits limits_;
  std::function<void(const ScoreEvent&)> observer_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_SCORE_HANDLER_H_
