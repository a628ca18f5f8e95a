// File: score_rule.h
//
// How the two block outputs become one score, and how the stored scoring
// statistics are fitted at the end of training (METHOD.md section 6).
// Pure functions; thread-safe.
#ifndef ANORAND_MODEL_SCORE_RULE_H_
#define ANORAND_MODEL_SCORE_RULE_H_

#include <cmath>
#include <vector>

#include "anorand/v1/model.pb.h"

namespace anorand {

inline float Sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// The score in [0, 1] of one record from its noise-detection output y_hat
// and its mean squared reconstruction error e (normalised units).
float CombineScore(const v1::ScoreStats& stats, float y_hat, float e);

// Fits alpha, the Q3 values, the quantile tables and the threshold from
// the training rows' block outputs. `params` must be resolved.
v1::ScoreStats FitScoreStats(const std::vector<float>& y_hat, const std::vector<float>& e,
                             const v1::TrainingParams& params);

// The q-quantile (q in [0, 1]) of `v` with linear interpolation (NumPy's
// default), v need not be sorted.
double Quantile(std::vector<float> v, double q);

}  // namespace anorand

#endif  // ANORAND_MODEL_SCORE_RULE_H_
