#include "model/score_rule.h"

#include <algorithm>

namespace anorand {
namespace {

constexpr int kQuantiles = 1001;

// Empirical CDF from a sorted quantile table, interpolated between entries.
float Cdf(const google::protobuf::RepeatedField<float>& q, float v) {
  const int n = q.size();
  if (n == 0) return 0.5f;
  if (v <= q[0]) return 0.0f;
  if (v >= q[n - 1]) return 1.0f;
  const int hi = static_cast<int>(std::upper_bound(q.begin(), q.end(), v) - q.begin());
  const int lo = hi - 1;
  const float span = q[hi] - q[lo];
  const float frac = span > 0 ? (v - q[lo]) / span : 0.0f;
  return (lo + frac) / (n - 1);
}

void FillTable(std::vector<float> v, google::protobuf::RepeatedField<float>* out) {
  std::sort(v.begin(), v.end());
  for (int i = 0; i < kQuantiles; ++i) {
    const double pos = static_cast<double>(i) * (v.size() - 1) / (kQuantiles - 1);
    const size_t lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, v.size() - 1);
    out->Add(static_cast<float>(v[lo] + (pos - lo) * (v[hi] - v[lo])));
  }
}

}  // namespace

double Quantile(std::vector<float> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * (v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - lo) * (static_cast<double>(v[hi]) - v[lo]);
}

float CombineScore(const v1::ScoreStats& s, float y_hat, float e) {
  const float a = static_cast<float>(s.alpha());
  if (s.rule() == v1::SCORE_RULE_CALIBRATED) {
    return (1 - a) * Cdf(s.noise_quantiles(), y_hat) + a * Cdf(s.error_quantiles(), e);
  }
  return (1 - a) * y_hat + a * Sigmoid(e);
}

v1::ScoreStats FitScoreStats(const std::vector<float>& y_hat, const std::vector<float>& e,
                             const v1::TrainingParams& params) {
  v1::ScoreStats s;
  s.set_rule(params.score_rule());
  std::vector<float> y0(e.size());
  for (size_t i = 0; i < e.size(); ++i) y0[i] = Sigmoid(e[i]);
  s.set_q3_noise(Quantile(y_hat, 0.75));
  s.set_q3_reconstruction(Quantile(y0, 0.75));
  const double denom = s.q3_noise() + s.q3_reconstruction();
  if (params.score_rule() == v1::SCORE_RULE_CALIBRATED) {
    // Both terms are CDF values; the reconstruction term carries the
    // weight 1 - loss_weight (the loss's own balance of the two blocks).
    s.set_alpha(1.0 - params.loss_weight());
    FillTable(y_hat, s.mutable_noise_quantiles());
    FillTable(e, s.mutable_error_quantiles());
  } else {
    s.set_alpha(denom > 0 ? s.q3_noise() / denom : 0.5);
  }
  s.set_contamination(params.contamination());
  std::vector<float> scores(e.size());
  for (size_t i = 0; i < e.size(); ++i) scores[i] = CombineScore(s, y_hat[i], e[i]);
  s.set_threshold(Quantile(scores, 1.0 - params.contamination()));
  return s;
}

}  // namespace anorand
