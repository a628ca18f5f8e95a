#include "model/synthetic_labels.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "model/nearest_neighbours.h"
#include "model/score_rule.h"

namespace anorand {
namespace {

absl::Status Cancelled() {
  return absl::CancelledError("training cancelled while making synthetic anomalies");
}

std::vector<double> FeatureStd(const float* x, int64_t rows, int cols) {
  std::vector<double> mean(cols, 0.0), sq(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) mean[c] += x[r * cols + c];
  for (int c = 0; c < cols; ++c) mean[c] /= std::max<int64_t>(rows, 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const double d = x[r * cols + c] - mean[c];
      sq[c] += d * d;
    }
  for (int c = 0; c < cols; ++c) sq[c] = std::sqrt(sq[c] / std::max<int64_t>(rows, 1));
  return sq;
}

// Per feature: interquartile range / 1.349 (a normal distribution's
// standard deviation), or the standard deviation `sd` where the IQR is 0
// (a feature that is mostly one value, e.g. a binary flag).
absl::StatusOr<std::vector<double>> FeatureRobustSpread(const float* x, int64_t rows, int cols,
                                                        const std::vector<double>& sd,
                                                        const std::function<bool()>& cancelled) {
  std::vector<double> out(cols);
  std::vector<float> col(rows);
  for (int c = 0; c < cols; ++c) {
    if (cancelled && cancelled()) return Cancelled();
    for (int64_t r = 0; r < rows; ++r) col[r] = x[r * cols + c];
    const double iqr = Quantile(col, 0.75) - Quantile(col, 0.25);
    out[c] = iqr > 0 ? iqr / 1.349 : sd[c];
  }
  return out;
}

}  // namespace

int64_t SmotePoolSize(int cols) {
  const double by_work = std::floor(std::sqrt(kMaxSmoteDistanceTerms / std::max(1, cols)));
  return std::min<int64_t>(kMaxSmoteSeeds, static_cast<int64_t>(by_work));
}

absl::StatusOr<LabelledSet> MakeSyntheticLabels(const float* x, int64_t rows, int cols,
                                                const v1::TrainingParams& params, Rng& rng,
                                                const std::function<bool()>& cancelled) {
  LabelledSet out;
  out.cols = cols;
  const double a = params.anomaly_fraction();
  int64_t n_seed = std::llround(params.seed_fraction() * rows);
  n_seed = std::clamp<int64_t>(n_seed, 1, rows);
  // (|X00| + |X01|) / (n + |X01|) = a  =>  |X01| = (a n - |X00|) / (1 - a).
  const int64_t n_syn = std::max<int64_t>(0, std::llround((a * rows - n_seed) / (1.0 - a)));

  std::vector<int64_t> order(rows);
  std::iota(order.begin(), order.end(), 0);
  rng.Shuffle(order.begin(), order.end());
  std::vector<int64_t> seeds(order.begin(), order.begin() + n_seed);
  std::sort(seeds.begin(), seeds.end());
  // SMOTE's rows: every seed, or the first SmotePoolSize(cols) of the
  // shuffled order (a uniform random subset of the seeds, drawing nothing
  // more).
  std::vector<int64_t> pool(order.begin(),
                            order.begin() + std::min<int64_t>(n_seed, SmotePoolSize(cols)));
  std::sort(pool.begin(), pool.end());
  order = std::vector<int64_t>();

  std::vector<double> sd = FeatureStd(x, rows, cols);
  if (params.robust_noise()) {
    auto robust = FeatureRobustSpread(x, rows, cols, sd, cancelled);
    if (!robust.ok()) return robust.status();
    sd = *std::move(robust);
  }
  const double lo = params.noise_scale();
  const double hi = std::max(lo, params.noise_scale_max());
  auto add_noise = [&](float* row) {
    double scale = lo;
    if (hi > lo && lo > 0) scale = lo * std::exp(rng.Uniform() * std::log(hi / lo));
    for (int c = 0; c < cols; ++c) row[c] += static_cast<float>(scale * sd[c] * rng.Normal());
  };

  out.rows = rows + n_syn;
  out.originals = n_seed;
  out.synthetic = n_syn;
  out.x.assign(x, x + rows * cols);
  out.x.resize(out.rows * cols);
  out.labels.assign(out.rows, 0.0f);
  for (int64_t s : seeds) {
    out.labels[s] = 1.0f;
    if (params.noise_originals()) add_noise(&out.x[s * cols]);
  }
  // SMOTE's neighbours among the pool's rows, copied side by side.
  std::vector<float> seed_x(pool.size() * cols);
  for (size_t i = 0; i < pool.size(); ++i)
    std::copy(x + pool[i] * cols, x + (pool[i] + 1) * cols, &seed_x[i * cols]);
  auto nn = NearestNeighbours(seed_x.data(), static_cast<int64_t>(pool.size()), cols,
                              params.smote_k(), cancelled);
  if (!nn.ok()) return nn.status();
  seed_x = std::vector<float>();
  // Other kinds of synthetic rows (uniform box, per-feature shuffles): no
  // draws at all when both shares are 0, so the paper's stream is unchanged.
  const double f_uniform = params.uniform_fraction(), f_shuffle = params.shuffle_fraction();
  const bool other_kinds = f_uniform > 0 || f_shuffle > 0;
  std::vector<float> lo_box(cols, 0.0f), hi_box(cols, 0.0f);
  if (other_kinds && rows > 0) {
    for (int c = 0; c < cols; ++c) {
      float mn = x[c], mx = x[c];
      for (int64_t r = 1; r < rows; ++r) {
        mn = std::min(mn, x[r * cols + c]);
        mx = std::max(mx, x[r * cols + c]);
      }
      const float pad = 0.1f * (mx - mn);
      lo_box[c] = mn - pad;
      hi_box[c] = mx + pad;
    }
  }
  for (int64_t t = 0; t < n_syn; ++t) {
    if ((t & 4095) == 0 && cancelled && cancelled()) return Cancelled();
    float* row = &out.x[(rows + t) * cols];
    out.labels[rows + t] = 1.0f;
    if (other_kinds) {
      const double kind = rng.Uniform();
      if (kind < f_uniform) {
        for (int c = 0; c < cols; ++c)
          row[c] = lo_box[c] + static_cast<float>(rng.Uniform()) * (hi_box[c] - lo_box[c]);
        continue;
      }
      if (kind < f_uniform + f_shuffle) {
        const int64_t b = static_cast<int64_t>(rng.Below(rows));
        std::copy(x + b * cols, x + (b + 1) * cols, row);
        // The donor of a feature is any row but the base row.
        auto donor = [&] {
          if (rows < 2) return b;
          const int64_t j = static_cast<int64_t>(rng.Below(rows - 1));
          return j >= b ? j + 1 : j;
        };
        int swapped = 0;
        for (int c = 0; c < cols; ++c) {
          if (rng.Uniform() < 0.5) {
            row[c] = x[donor() * cols + c];
            ++swapped;
          }
        }
        if (swapped == 0) {
          const int c = static_cast<int>(rng.Below(cols));
          row[c] = x[donor() * cols + c];
        }
        continue;
      }
    }
    const int64_t i = static_cast<int64_t>(rng.Below(pool.size()));
    const float* base = x + pool[i] * cols;
    const float* other =
        nn->k == 0 ? base : x + pool[nn->index[i * nn->k + rng.Below(nn->k)]] * cols;
    const float u = static_cast<float>(rng.Uniform());
    for (int c = 0; c < cols; ++c) row[c] = base[c] + u * (other[c] - base[c]);
    add_noise(row);
  }
  return out;
}

}  // namespace anorand
