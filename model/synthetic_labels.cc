#include "model/synthetic_labels.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace anorand {
namespace {

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

// For each seed row, the indices (into `seeds`) of its k nearest other seed
// rows by Euclidean distance; ties broken by index for determinism.
std::vector<std::vector<int64_t>> NearestNeighbours(const float* x, int cols,
                                                    const std::vector<int64_t>& seeds, int k) {
  const int64_t s = static_cast<int64_t>(seeds.size());
  std::vector<std::vector<int64_t>> nn(s);
  std::vector<std::pair<double, int64_t>> dist;
  for (int64_t i = 0; i < s; ++i) {
    dist.clear();
    const float* a = x + seeds[i] * cols;
    for (int64_t j = 0; j < s; ++j) {
      if (j == i) continue;
      const float* b = x + seeds[j] * cols;
      double d = 0;
      for (int c = 0; c < cols; ++c) d += (a[c] - b[c]) * double(a[c] - b[c]);
      dist.emplace_back(d, j);
    }
    const int64_t kk = std::min<int64_t>(k, static_cast<int64_t>(dist.size()));
    std::partial_sort(dist.begin(), dist.begin() + kk, dist.end());
    for (int64_t t = 0; t < kk; ++t) nn[i].push_back(dist[t].second);
  }
  return nn;
}

}  // namespace

LabelledSet MakeSyntheticLabels(const float* x, int64_t rows, int cols,
                                const v1::TrainingParams& params, Rng& rng) {
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

  const std::vector<double> sd = FeatureStd(x, rows, cols);
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
  const auto nn = NearestNeighbours(x, cols, seeds, params.smote_k());
  for (int64_t t = 0; t < n_syn; ++t) {
    const int64_t i = static_cast<int64_t>(rng.Below(seeds.size()));
    const float* base = x + seeds[i] * cols;
    const float* other = nn[i].empty() ? base : x + seeds[nn[i][rng.Below(nn[i].size())]] * cols;
    const float u = static_cast<float>(rng.Uniform());
    float* row = &out.x[(rows + t) * cols];
    for (int c = 0; c < cols; ++c) row[c] = base[c] + u * (other[c] - base[c]);
    add_noise(row);
    out.labels[rows + t] = 1.0f;
  }
  return out;
}

}  // namespace anorand
