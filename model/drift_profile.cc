#include "model/drift_profile.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "model/rng.h"

namespace anorand {
namespace {

const std::vector<double>& FeatureLevels() {
  static const std::vector<double> levels = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  return levels;
}

// The score's tail holds the anomalies: it gets bins of its own.
const std::vector<double>& ScoreLevels() {
  static const std::vector<double> levels = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6,
                                             0.7, 0.8, 0.9, 0.95, 0.99};
  return levels;
}

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("invalid model: drift_profile ", what));
}

absl::Status ValidateSketch(const v1::DistributionSketch& s, const std::string& where) {
  if (!std::isfinite(s.min()) || !std::isfinite(s.max()) || s.min() > s.max()) {
    return Bad(absl::StrCat(where, ": min and max must be finite with min <= max"));
  }
  if (s.edges_size() > kMaxSketchEdges) {
    return Bad(absl::StrCat(where, ": ", s.edges_size(), " edges; at most ", kMaxSketchEdges));
  }
  for (int i = 0; i < s.edges_size(); ++i) {
    if (!std::isfinite(s.edges(i)) || (i > 0 && !(s.edges(i) > s.edges(i - 1)))) {
      return Bad(absl::StrCat(where, ": edges must be finite and strictly ascending"));
    }
  }
  if (s.fractions_size() != s.edges_size() + 1) {
    return Bad(absl::StrCat(where, ": ", s.fractions_size(), " fractions for ", s.edges_size(),
                            " edges; one more than the edges is needed"));
  }
  double sum = 0;
  for (float f : s.fractions()) {
    if (!(f >= 0 && f <= 1)) return Bad(absl::StrCat(where, ": fractions must be in [0, 1]"));
    sum += f;
  }
  if (std::abs(sum - 1.0) > 1e-3) return Bad(absl::StrCat(where, ": fractions sum to ", sum));
  return absl::OkStatus();
}

}  // namespace

int SketchBin(const float* edges, int edge_count, float value) {
  return static_cast<int>(std::lower_bound(edges, edges + edge_count, value) - edges);
}

v1::DistributionSketch SketchValues(std::vector<float> values, const std::vector<double>& levels) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  v1::DistributionSketch s;
  s.set_min(values.front());
  s.set_max(values.back());
  for (double level : levels) {
    const float q = values[static_cast<size_t>(level * static_cast<double>(n - 1))];
    if (s.edges_size() == 0 || q > s.edges(s.edges_size() - 1)) s.add_edges(q);
  }
  // The values are sorted: each bin is a run, ending where the next edge
  // is reached.
  size_t from = 0;
  for (int b = 0; b <= s.edges_size(); ++b) {
    const size_t to =
        b < s.edges_size()
            ? static_cast<size_t>(std::upper_bound(values.begin(), values.end(), s.edges(b)) -
                                  values.begin())
            : n;
    s.add_fractions(static_cast<float>(static_cast<double>(to - from) / static_cast<double>(n)));
    from = to;
  }
  return s;
}

absl::StatusOr<v1::DriftProfile> FitDriftProfile(const CompiledModel& model, const float* x,
                                                 int64_t rows, int d, uint64_t seed) {
  if (rows < 1 || d < 1) return absl::InvalidArgumentError("no rows to profile");
  std::vector<int64_t> sample(static_cast<size_t>(rows));
  std::iota(sample.begin(), sample.end(), 0);
  if (rows > kDriftProfileRows) {
    Rng rng(seed ^ 0xD51F7u);
    // A partial Fisher-Yates shuffle: the first kDriftProfileRows entries
    // are a uniform sample without replacement.
    for (int64_t i = 0; i < kDriftProfileRows; ++i) {
      const int64_t j = i + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(rows - i)));
      std::swap(sample[i], sample[j]);
    }
    sample.resize(kDriftProfileRows);
    std::sort(sample.begin(), sample.end());
  }
  const int64_t n = static_cast<int64_t>(sample.size());
  std::vector<float> picked(static_cast<size_t>(n) * d);
  for (int64_t i = 0; i < n; ++i)
    std::copy(x + sample[i] * d, x + (sample[i] + 1) * d, picked.begin() + i * d);

  v1::DriftProfile profile;
  profile.set_rows(n);
  std::vector<float> column(static_cast<size_t>(n));
  for (int j = 0; j < d; ++j) {
    for (int64_t i = 0; i < n; ++i) column[i] = picked[i * d + j];
    v1::DistributionSketch* s = profile.add_features();
    *s = SketchValues(column, FeatureLevels());
    // The training range is every row's, not only the sample's.
    float lo = s->min(), hi = s->max();
    for (int64_t r = 0; r < rows; ++r) {
      lo = std::min(lo, x[r * d + j]);
      hi = std::max(hi, x[r * d + j]);
    }
    s->set_min(lo);
    s->set_max(hi);
  }
  std::vector<float> scores(static_cast<size_t>(n));
  ScoreOutputs out;
  out.score = scores.data();
  if (absl::Status s = model.Score(picked.data(), n, out); !s.ok()) return s;
  *profile.mutable_score() = SketchValues(std::move(scores), ScoreLevels());
  return profile;
}

absl::Status ValidateDriftProfile(const v1::DriftProfile& profile, int input_features) {
  if (profile.rows() < 1) return Bad("rows must be at least 1");
  if (profile.features_size() != input_features) {
    return Bad(absl::StrCat("has ", profile.features_size(), " feature sketches for ",
                            input_features, " features"));
  }
  for (int j = 0; j < input_features; ++j) {
    if (absl::Status s = ValidateSketch(profile.features(j), absl::StrCat("feature ", j));
        !s.ok())
      return s;
  }
  return ValidateSketch(profile.score(), "score");
}

}  // namespace anorand
