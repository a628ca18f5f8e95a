// File: synthetic_labels.h
//
// The paper's synthetic anomalies (METHOD.md section 2): a random subset X00
// of the training rows, oversampled with SMOTE inside X00, plus Gaussian
// noise scaled by each feature's standard deviation, labelled 1; every
// other training row is labelled 0. Deterministic for a given Rng state.
#ifndef ANORAND_MODEL_SYNTHETIC_LABELS_H_
#define ANORAND_MODEL_SYNTHETIC_LABELS_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "anorand/v1/model.pb.h"
#include "model/rng.h"

namespace anorand {

struct LabelledSet {
  int64_t rows = 0;
  int cols = 0;
  std::vector<float> x;       // rows * cols, normalised units
  std::vector<float> labels;  // rows, 0 or 1
  int64_t originals = 0;      // |X00|
  int64_t synthetic = 0;      // |X01|
};

// `x` holds `rows` normalised training rows. Uses seed_fraction,
// anomaly_fraction, smote_k, noise_scale and noise_originals of `params`
// (resolved). The originals keep their place; synthetic rows are appended.
// SMOTE interpolates between seed rows and their exact nearest neighbours
// (model/nearest_neighbours.h) among the seeds, or, when there are more
// than SmotePoolSize(cols) seeds, among a uniform random subset of that many
// (also the rows SMOTE starts from; every seed is still labelled 1). The
// search costs about seeds^2 x cols on rows of 20 or more features even
// with the k-d tree, so the bound keeps this phase from growing with rows
// and, on wide rows, with features (docs/PERFORMANCE.md). At or below the
// bound the draws are unchanged.
//
// `cancelled` (may be empty) is polled every few milliseconds of work, so a
// call returns CANCELLED within about 100 ms of it turning true; the Rng
// state is then unspecified.
inline constexpr int64_t kMaxSmoteSeeds = 10'000;
// The neighbour search's work bound, in squared-distance terms (seeds^2 x
// cols): what kMaxSmoteSeeds seeds of 20 features cost.
inline constexpr double kMaxSmoteDistanceTerms = 2e9;

// Most seeds SMOTE searches among for rows of `cols` features:
// kMaxSmoteSeeds, or fewer on rows wider than 20 features so that
// seeds^2 x cols stays within kMaxSmoteDistanceTerms (1,134 seeds at 1,555
// features); at least 1.
int64_t SmotePoolSize(int cols);

absl::StatusOr<LabelledSet> MakeSyntheticLabels(const float* x, int64_t rows, int cols,
                                                const v1::TrainingParams& params, Rng& rng,
                                                const std::function<bool()>& cancelled);

}  // namespace anorand

#endif  // ANORAND_MODEL_SYNTHETIC_LABELS_H_
