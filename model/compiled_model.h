// File: compiled_model.h
//
// An immutable, ready-to-score model: the stored normaliser, the compiled
// inference plan (inference_plan.h) and the scoring statistics. Create()
// validates the model first (model_file.h). Score() is thread-safe; share
// one instance through std::shared_ptr<const CompiledModel>.
#ifndef ANORAND_MODEL_COMPILED_MODEL_H_
#define ANORAND_MODEL_COMPILED_MODEL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "anorand/v1/model.pb.h"
#include "model/inference_plan.h"

namespace anorand {

// Caller-owned output arrays, `rows` entries each (contributions: rows x
// input_features). Any pointer may be null to skip that output.
struct ScoreOutputs {
  float* score = nullptr;
  bool* is_anomaly = nullptr;
  // An ensemble reports the mean over its members of y_hat, e and the
  // contributions.
  float* noise_probability = nullptr;           // y_hat
  float* reconstruction_probability = nullptr;  // y0_hat = sigmoid(e)
  float* reconstruction_error = nullptr;        // e (score_rule.h RowError)
  float* contributions = nullptr;               // each row sums to 1
};

class CompiledModel {
 public:
  // Validates `file` (ValidateModel) and compiles it. INVALID_ARGUMENT for
  // a bad model, INTERNAL if oneDNN refuses it.
  static absl::StatusOr<std::shared_ptr<const CompiledModel>> Create(v1::ModelFile file);

  // Scores `rows` raw (unnormalised) records of input_features() values.
  // INVALID_ARGUMENT names the first NaN or infinite value (row, column).
  absl::Status Score(const float* x, int64_t rows, const ScoreOutputs& out) const;

  // Block outputs of the first network on already-normalised rows
  // (training statistics, tests, the forward benchmark). y_hat is the
  // logit when score_stats().noise_logit().
  absl::Status Forward(const float* x_norm, int64_t rows, float* y_hat, float* x_hat) const {
    return plans_[0]->Run(x_norm, rows, y_hat, x_hat);
  }

  // Compiled models alive in this process (tests check that retired
  // versions are freed; the server exports it as a gauge).
  static int64_t LiveCount();
  ~CompiledModel();

  int input_features() const { return plans_[0]->input_features(); }
  // The first network's plan; an ensemble has members() of them.
  const InferencePlan& plan() const { return *plans_[0]; }
  int members() const { return static_cast<int>(plans_.size()); }
  // The model's metadata (everything but the network weights, dropped
  // after compilation to halve memory).
  const v1::ModelFile& info() const { return info_; }
  const v1::ScoreStats& score_stats() const { return info_.score_stats(); }

 private:
  CompiledModel();
  v1::ModelFile info_;
  // Batches up to this many records run an ensemble's group plan.
  static constexpr int kGroupMaxRows = 16;
  std::vector<std::unique_ptr<InferencePlan>> plans_;  // one per ensemble member
  std::unique_ptr<InferencePlan> group_;  // all members at once, or null
  std::vector<const v1::ScoreStats*> stats_;           // into info_, same order
  std::vector<const v1::Normalizer*> norms_;           // a member's own, or null
  // ScoreStats.member_weight of each member; empty = the plain mean.
  std::vector<double> weights_;
};

}  // namespace anorand

#endif  // ANORAND_MODEL_COMPILED_MODEL_H_
