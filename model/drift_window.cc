#include "model/drift_window.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "model/drift_profile.h"

namespace anorand {

double PopulationStabilityIndex(const int64_t* counts, int64_t n, const float* expected,
                                int64_t expected_n, int bins) {
  if (n <= 0 || bins <= 0) return 0;
  const double an = static_cast<double>(n) + 0.5 * bins;
  const double en = static_cast<double>(expected_n) + 0.5 * bins;
  double psi = 0;
  for (int b = 0; b < bins; ++b) {
    const double a = (static_cast<double>(counts[b]) + 0.5) / an;
    const double e = (static_cast<double>(expected[b]) * static_cast<double>(expected_n) + 0.5) / en;
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

DriftWindow::DriftWindow(const v1::DriftProfile& profile, int64_t window_records, double sample)
    : d_(profile.features_size()),
      window_records_(std::max<int64_t>(window_records, 2)),
      sample_(sample > 0 && sample < 1 ? sample : 1),
      profile_rows_(profile.rows()) {
  for (const auto& s : profile.features()) feature_edges_ = std::max(feature_edges_, s.edges_size());
  feature_stride_ = feature_edges_ + 1;
  edges_.assign(static_cast<size_t>(feature_edges_) * d_, std::numeric_limits<float>::infinity());
  expected_.assign(static_cast<size_t>(feature_stride_) * d_, 0.0f);
  for (int j = 0; j < d_; ++j) {
    const v1::DistributionSketch& s = profile.features(j);
    for (int k = 0; k < s.edges_size(); ++k) edges_[static_cast<size_t>(k) * d_ + j] = s.edges(k);
    for (int b = 0; b < s.fractions_size(); ++b) expected_[j * feature_stride_ + b] = s.fractions(b);
    bins_.push_back(s.fractions_size());
    lo_.push_back(s.min());
    hi_.push_back(s.max());
  }
  score_edges_.assign(profile.score().edges().begin(), profile.score().edges().end());
  score_expected_.assign(profile.score().fractions().begin(), profile.score().fractions().end());
  current_ = Empty();
  previous_ = Empty();
}

DriftWindow::Counts DriftWindow::Empty() const {
  Counts c;
  c.feature_bins.assign(static_cast<size_t>(d_) * feature_stride_, 0);
  c.out.assign(d_, 0);
  c.score_bins.assign(score_edges_.size() + 1, 0);
  return c;
}

void DriftWindow::Add(const Counts& from, Counts* to) {
  to->records += from.records;
  to->any_out += from.any_out;
  for (size_t i = 0; i < from.feature_bins.size(); ++i) to->feature_bins[i] += from.feature_bins[i];
  for (size_t i = 0; i < from.out.size(); ++i) to->out[i] += from.out[i];
  for (size_t i = 0; i < from.score_bins.size(); ++i) to->score_bins[i] += from.score_bins[i];
}

void DriftWindow::Observe(const float* x, int64_t rows, const float* scores) {
  if (rows <= 0) return;
  // The records drawn: all of them, or gaps drawn from the geometric
  // distribution (memoryless, so starting again at each batch keeps every
  // record's chance at sample_).
  std::vector<int64_t> drawn;
  if (sample_ < 1) {
    thread_local std::mt19937_64 gen{std::random_device{}()};
    std::geometric_distribution<int64_t> gap(sample_);
    for (int64_t r = std::min(gap(gen), rows); r < rows; r += 1 + std::min(gap(gen), rows))
      drawn.push_back(r);
    if (drawn.empty()) {
      absl::MutexLock lock(&mu_);
      observed_ += rows;
      return;
    }
  }
  const int64_t n = sample_ < 1 ? static_cast<int64_t>(drawn.size()) : rows;
  Counts batch = Empty();
  batch.records = n;
  std::vector<int32_t> bin(d_);
  std::vector<int32_t> out(d_);
  const float* edges = edges_.data();
  const float* lo = lo_.data();
  const float* hi = hi_.data();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = sample_ < 1 ? drawn[i] : i;
    const float* v = x + r * d_;
    int32_t* b = bin.data();
    int32_t* o = out.data();
    for (int j = 0; j < d_; ++j) {
      b[j] = 0;
      o[j] = (v[j] < lo[j]) | (v[j] > hi[j]);
    }
    for (int k = 0; k < feature_edges_; ++k) {
      const float* e = edges + static_cast<size_t>(k) * d_;
      for (int j = 0; j < d_; ++j) b[j] += v[j] > e[j];
    }
    int32_t any = 0;
    for (int j = 0; j < d_; ++j) {
      ++batch.feature_bins[static_cast<size_t>(j) * feature_stride_ + b[j]];
      batch.out[j] += o[j];
      any |= o[j];
    }
    batch.any_out += any;
    ++batch.score_bins[SketchBin(score_edges_.data(), static_cast<int>(score_edges_.size()),
                                 scores[r])];
  }
  absl::MutexLock lock(&mu_);
  Add(batch, &current_);
  observed_ += rows;
  if (current_.records >= window_records_ / 2) {
    previous_ = std::move(current_);
    current_ = Empty();
  }
}

DriftStats DriftWindow::Stats() const {
  Counts window = Empty();
  DriftStats stats;
  {
    absl::MutexLock lock(&mu_);
    Add(previous_, &window);
    Add(current_, &window);
    stats.observed = observed_;
  }
  const int64_t n = window.records;
  stats.window = n;
  stats.out_of_range = n > 0 ? static_cast<double>(window.any_out) / n : 0;
  stats.score_psi =
      PopulationStabilityIndex(window.score_bins.data(), n, score_expected_.data(), profile_rows_,
                               static_cast<int>(score_expected_.size()));
  stats.features.reserve(d_);
  for (int j = 0; j < d_; ++j) {
    FeatureDriftStats f;
    f.feature = j;
    f.psi = PopulationStabilityIndex(&window.feature_bins[static_cast<size_t>(j) * feature_stride_],
                                     n, &expected_[static_cast<size_t>(j) * feature_stride_],
                                     profile_rows_, bins_[j]);
    f.out_of_range = n > 0 ? static_cast<double>(window.out[j]) / n : 0;
    stats.features.push_back(f);
  }
  return stats;
}

}  // namespace anorand
