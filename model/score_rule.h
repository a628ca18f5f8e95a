// File: score_rule.h
//
// How the two block outputs become one score, and how the stored scoring
// statistics are fitted at the end of training (METHOD.md section 6).
// Pure functions; thread-safe.
#ifndef ANORAND_MODEL_SCORE_RULE_H_
#define ANORAND_MODEL_SCORE_RULE_H_

#include <cmath>
#include <cstdint>
#include <vector>

#include "anorand/v1/model.pb.h"

namespace anorand {

inline float Sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// The score in [0, 1] of one record from its noise-detection output y_hat
// (or its logit when stats.noise_logit()) and its reconstruction error e
// (RowError).
float CombineScore(const v1::ScoreStats& stats, float y_hat, float e);

// SCORE_RULE_CALIBRATED: one network's mixed tail surprisal
// (1 - alpha) S_nd + alpha S_ae, >= 0. An ensemble averages it over its
// members; SurprisalToScore maps the result into [0, 1).
double MemberSurprisal(const v1::ScoreStats& stats, float noise_value, float e);
inline float SurprisalToScore(double s) { return static_cast<float>(s / (1.0 + s)); }

// A record's reconstruction error: the mean over features of
// (x - x_hat)^2, each divided by stats.error_feature_scale when it is set.
// `terms` (d values, may be null) receives the per-feature terms.
float RowError(const v1::ScoreStats& stats, const float* x, const float* x_hat, int d,
               double* terms = nullptr);

// Fits alpha, the Q3 values, the quantile tables and the threshold from
// the training rows' block outputs. `params` must be resolved.
v1::ScoreStats FitScoreStats(const std::vector<float>& y_hat, const std::vector<float>& e,
                             const v1::TrainingParams& params);

// SCORE_RULE_CALIBRATED: fills stats->error_feature_scale from the rows'
// mean squared error per feature (rows x d values of x and x_hat), floored
// at 1e-3 of the features' average so a feature the network reproduces
// exactly cannot divide by zero. `trim` in [0, 1) (TrainingParams
// .error_scale_trim): each feature's mean leaves out its trim share of
// largest squared errors.
void FitErrorScale(const float* x, const float* x_hat, int64_t rows, int d,
                   v1::ScoreStats* stats, double trim = 0);

// The q-quantile (q in [0, 1]) of `v` with linear interpolation (NumPy's
// default), v need not be sorted.
double Quantile(std::vector<float> v, double q);

}  // namespace anorand

#endif  // ANORAND_MODEL_SCORE_RULE_H_
