// MakeSyntheticData. WriteCsv is in csv_writer.cc.
#include "model/data/synthetic_data.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace anorand {
namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;
constexpr double kNoiseScale = 0.05;
constexpr double kCenterSpread = 3.0;
constexpr double kMinShiftSd = 4.0;
constexpr double kShiftRangeSd = 4.0;
constexpr int kMaxCols = 100000;

// Uniform and normal draws defined here, not by <random>'s distributions,
// so that the numbers are the same with every standard library.
class Draws {
 public:
  explicit Draws(uint64_t seed) : engine_(seed) {}

  // Uniform in [0, 1) from the top 53 bits.
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

  // Uniform integer in [0, n), n >= 1.
  uint64_t Below(uint64_t n) { return engine_() % n; }

  // Standard normal by Box-Muller; the second value of a pair is kept.
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - Uniform();  // (0, 1]: log is finite.
    const double u2 = Uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(kTwoPi * u2);
    has_spare_ = true;
    return r * std::cos(kTwoPi * u2);
  }

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

SyntheticOptions Clamp(SyntheticOptions o) {
  o.rows = std::max<int64_t>(o.rows, 0);
  o.cols = std::clamp(o.cols, 1, kMaxCols);
  o.informative = std::clamp(o.informative, 1, o.cols);
  o.clusters = std::max(o.clusters, 1);
  if (!(o.anomaly_fraction >= 0.0)) o.anomaly_fraction = 0.0;  // Also NaN.
  o.anomaly_fraction = std::min(o.anomaly_fraction, 1.0);
  if (!std::isfinite(o.shift)) o.shift = 0.0;
  if (!(o.anomaly_size >= 0.0) || !std::isfinite(o.anomaly_size)) o.anomaly_size = 0.0;
  return o;
}

// The random structure shared by all rows.
struct Model {
  int cols = 0;
  int latent = 0;
  std::vector<double> mixing;   // cols x latent, row-major.
  std::vector<double> scale;    // Per feature.
  std::vector<double> offset;   // Per feature.
  std::vector<double> centers;  // clusters x latent.
  std::vector<double> sd;       // Per-feature sd of normal rows.
};

// Exact per-feature standard deviation of normal rows: latent covariance is
// I plus the covariance of the equally weighted centres.
void ComputeSd(int clusters, Model* m) {
  std::vector<double> mean(m->latent, 0.0);
  for (int c = 0; c < clusters; ++c) {
    for (int i = 0; i < m->latent; ++i) {
      mean[i] += m->centers[c * m->latent + i] / clusters;
    }
  }
  m->sd.resize(m->cols);
  for (int j = 0; j < m->cols; ++j) {
    const double* a = &m->mixing[static_cast<size_t>(j) * m->latent];
    double var = 0.0;
    for (int i = 0; i < m->latent; ++i) var += a[i] * a[i];
    for (int c = 0; c < clusters; ++c) {
      double dot = 0.0;
      for (int i = 0; i < m->latent; ++i) {
        dot += a[i] * (m->centers[c * m->latent + i] - mean[i]);
      }
      var += dot * dot / clusters;
    }
    var = var / m->latent + kNoiseScale * kNoiseScale;
    m->sd[j] = m->scale[j] * std::sqrt(var);
  }
}

Model MakeModel(const SyntheticOptions& o, Draws* draws) {
  Model m;
  m.cols = o.cols;
  m.latent = o.informative;
  m.mixing.resize(static_cast<size_t>(o.cols) * o.informative);
  for (double& v : m.mixing) v = draws->Normal();
  m.scale.resize(o.cols);
  m.offset.resize(o.cols);
  for (int j = 0; j < o.cols; ++j) {
    m.scale[j] = 0.5 + 1.5 * draws->Uniform();
    m.offset[j] = 2.0 * draws->Normal();
  }
  m.centers.resize(static_cast<size_t>(o.clusters) * o.informative);
  for (double& v : m.centers) v = kCenterSpread * draws->Normal();
  ComputeSd(o.clusters, &m);
  return m;
}

// Exactly `count` of `rows` flags set, at uniformly random positions
// (partial Fisher-Yates).
std::vector<char> PickAnomalies(int64_t rows, int64_t count, Draws* draws) {
  std::vector<int64_t> order(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) order[i] = i;
  std::vector<char> flags(static_cast<size_t>(rows), 0);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t j = i + static_cast<int64_t>(draws->Below(rows - i));
    std::swap(order[i], order[j]);
    flags[order[i]] = 1;
  }
  return flags;
}

void NormalRow(const Model& m, int clusters, Draws* draws, double* out) {
  const auto c = static_cast<int>(draws->Below(clusters));
  std::vector<double> z(m.latent);
  for (int i = 0; i < m.latent; ++i) {
    z[i] = m.centers[c * m.latent + i] + draws->Normal();
  }
  const double norm = 1.0 / std::sqrt(static_cast<double>(m.latent));
  for (int j = 0; j < m.cols; ++j) {
    const double* a = &m.mixing[static_cast<size_t>(j) * m.latent];
    double y = 0.0;
    for (int i = 0; i < m.latent; ++i) y += a[i] * z[i];
    const double noise = kNoiseScale * draws->Normal();
    out[j] = m.scale[j] * (y * norm + noise) + m.offset[j];
  }
}

// Shifts a random quarter of the features (at least one) by 4-8 sd.
void MakeAnomalous(const Model& m, Draws* draws, double* row) {
  const int count = std::max(1, m.cols / 4);
  std::vector<int> features(m.cols);
  for (int j = 0; j < m.cols; ++j) features[j] = j;
  for (int i = 0; i < count; ++i) {
    const int pick = i + static_cast<int>(draws->Below(m.cols - i));
    std::swap(features[i], features[pick]);
    const double sign = draws->Uniform() < 0.5 ? -1.0 : 1.0;
    const double size = kMinShiftSd + kShiftRangeSd * draws->Uniform();
    row[features[i]] += sign * size * m.sd[features[i]];
  }
}

}  // namespace

Dataset MakeSyntheticData(const SyntheticOptions& options) {
  const SyntheticOptions o = Clamp(options);
  Draws draws(o.seed);
  const Model model = MakeModel(o, &draws);
  const auto anomalies = static_cast<int64_t>(
      std::llround(static_cast<double>(o.rows) * o.anomaly_fraction));
  const std::vector<char> flags = PickAnomalies(o.rows, anomalies, &draws);
  Dataset data;
  data.rows = o.rows;
  data.cols = o.cols;
  data.x.resize(static_cast<size_t>(o.rows) * o.cols);
  data.labels.resize(static_cast<size_t>(o.rows));
  for (int j = 0; j < o.cols; ++j)
    data.feature_names.push_back(absl::StrCat("f", j));
  std::vector<double> row(o.cols);
  for (int64_t r = 0; r < o.rows; ++r) {
    NormalRow(model, o.clusters, &draws, row.data());
    if (flags[r] && o.anomaly_size > 0) {
      for (int j = 0; j < (o.cols + 3) / 4; ++j) row[j] += o.anomaly_size * model.sd[j];
    } else if (flags[r]) {
      MakeAnomalous(model, &draws, row.data());
    }
    for (int j = 0; j < o.cols; ++j) {
      data.x[static_cast<size_t>(r) * o.cols + j] =
          static_cast<float>(row[j] + o.shift * model.sd[j]);
    }
    data.labels[r] = flags[r] ? 1 : 0;
  }
  return data;
}

}  // namespace anorand
