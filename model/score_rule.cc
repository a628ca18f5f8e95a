#include "model/score_rule.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace anorand {
namespace {

constexpr int kQuantiles = 1001;

// Tail surprisal S = -log(1 - F) of v under the empirical CDF F of a
// sorted quantile table: F interpolated between entries and scaled into
// [0, 1 - t], t = 1/n, then an exponential tail above the largest entry,
// 1 - F = t * exp(-(v - top) / spread), spread being the width of the
// table's top 1%. In surprisal form the tail is linear and unbounded, so
// records beyond the training maximum keep their order instead of all
// scoring F = 1 (ties cost ranking quality exactly where anomalies sit).
//
// A NaN or +infinity (a record so far out that the forward pass overflowed)
// is as surprising as it gets: kMaxSurprisal, finite, so scores stay in
// [0, 1] (before this, a NaN indexed one past the end of the table).
constexpr double kMaxSurprisal = 1e30;

double Surprisal(const google::protobuf::RepeatedField<float>& q, float v) {
  const int n = q.size();
  if (std::isnan(v) || v == std::numeric_limits<float>::infinity()) return kMaxSurprisal;
  if (n < 2) return std::log(2.0);
  const double t = 1.0 / n;
  if (v <= q[0]) return 0.0;
  if (v >= q[n - 1]) {
    const int k = std::max(0, n - 1 - std::max(1, n / 100));
    double spread = static_cast<double>(q[n - 1]) - q[k];
    if (!(spread > 0)) spread = std::max(std::abs(static_cast<double>(q[n - 1])), 1e-12);
    return std::min(kMaxSurprisal, -std::log(t) + (v - static_cast<double>(q[n - 1])) / spread);
  }
  const int hi = static_cast<int>(std::upper_bound(q.begin(), q.end(), v) - q.begin());
  const int lo = hi - 1;
  const double span = static_cast<double>(q[hi]) - q[lo];
  const double frac = span > 0 ? (v - static_cast<double>(q[lo])) / span : 0.0;
  return -std::log1p(-(lo + frac) / (n - 1) * (1.0 - t));
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

double MemberSurprisal(const v1::ScoreStats& s, float noise_value, float e) {
  // Weighted mean of the two blocks' tail surprisals (see Surprisal): a
  // record extreme under either block stays extreme (an arithmetic mean
  // of the CDFs pulled such records to the middle: 0.5 AUC-ROC points
  // lower, docs/ACCURACY.md).
  const double a = static_cast<float>(s.alpha());
  return (1 - a) * Surprisal(s.noise_quantiles(), noise_value) +
         a * Surprisal(s.error_quantiles(), e);
}

float CombineScore(const v1::ScoreStats& s, float y_hat, float e) {
  const float a = static_cast<float>(s.alpha());
  if (s.rule() == v1::SCORE_RULE_CALIBRATED) {
    // S / (1 + S) maps the surprisal into [0, 1) with float resolution to
    // spare for very large S.
    return SurprisalToScore(MemberSurprisal(s, y_hat, e));
  }
  const float score = (1 - a) * y_hat + a * Sigmoid(e);
  return std::isnan(score) ? 1.0f : score;  // an overflowed forward pass: most anomalous
}

float RowError(const v1::ScoreStats& s, const float* x, const float* x_hat, int d, double* terms) {
  const bool scaled = s.error_feature_scale_size() == d;
  double sum = 0;
  for (int c = 0; c < d; ++c) {
    double t = (x[c] - x_hat[c]) * static_cast<double>(x[c] - x_hat[c]);
    if (scaled) t /= s.error_feature_scale(c);
    if (terms) terms[c] = t;
    sum += t;
  }
  return static_cast<float>(sum / d);
}

void FitErrorScale(const float* x, const float* x_hat, int64_t rows, int d,
                   v1::ScoreStats* stats, double trim) {
  std::vector<double> mse(d, 0.0);
  // The mean over the `keep` smallest squared errors of each feature.
  const int64_t keep =
      trim > 0 ? std::clamp<int64_t>(static_cast<int64_t>(std::ceil((1.0 - trim) * rows - 1e-9)),
                                     1, std::max<int64_t>(rows, 1))
               : rows;
  if (keep < rows) {
    std::vector<double> col(rows);
    for (int c = 0; c < d; ++c) {
      for (int64_t r = 0; r < rows; ++r) {
        const double diff = x[r * d + c] - x_hat[r * d + c];
        col[r] = diff * diff;
      }
      std::nth_element(col.begin(), col.begin() + (keep - 1), col.end());
      double sum = 0;
      for (int64_t r = 0; r < keep; ++r) sum += col[r];
      mse[c] = sum * rows / keep;  // divided by rows below
    }
  } else {
    for (int64_t r = 0; r < rows; ++r)
      for (int c = 0; c < d; ++c) {
        const double diff = x[r * d + c] - x_hat[r * d + c];
        mse[c] += diff * diff;
      }
  }
  double avg = 0;
  for (double& v : mse) avg += (v /= std::max<int64_t>(rows, 1));
  avg /= d;
  const double floor = std::max(1e-3 * avg, 1e-12);
  stats->clear_error_feature_scale();
  for (double v : mse) stats->add_error_feature_scale(static_cast<float>(std::max(v, floor)));
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
    s.set_alpha(params.has_ae_weight() ? params.ae_weight() : 1.0 - params.loss_weight());
    s.set_noise_logit(params.noise_logit());
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
