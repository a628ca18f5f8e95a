// File: drift_window.h
//
// Drift of served records against a model's DriftProfile (drift_profile.h):
// Observe() bins each scored record's features and score by the profile's
// sketches; Stats() compares the recent records with the profile.
//
// The window is two halves: records are counted into the current half, and
// when it holds window_records / 2 records it becomes the previous half and
// a new one starts. Stats() describes both halves together, so the figures
// always cover between window_records / 2 and window_records (plus one
// batch) of the most recent records, and forget what came before.
//
// With sample < 1, each scored record enters the window with probability
// `sample` (geometric gaps between drawn records, so the cost follows the
// records drawn). The PSI's precision depends on the records in the window,
// not on the traffic's rate, so a sample keeps the figures as precise and
// stretches the time the window spans (its cost against the forward pass:
// docs/PERFORMANCE.md, "Drift tracking").
//
// Per feature: the population stability index of the window against the
// profile, PSI = sum over bins of (a - e) * ln(a / e) with a and e the
// window's and the profile's bin shares, each smoothed by half a record per
// bin (Jeffreys) so that an empty bin does not make it infinite; and the
// share of records outside the training range [min, max]. The same PSI for
// the score, and the share of records with any feature out of range.
// Rules of thumb: below 0.1 stable, 0.1 to 0.25 a moderate shift, above
// 0.25 a major one. No gRPC. Thread-safe: Observe bins outside the lock and
// adds its counts under it; Stats copies the counts and computes outside it.
#ifndef ANORAND_MODEL_DRIFT_WINDOW_H_
#define ANORAND_MODEL_DRIFT_WINDOW_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "anorand/v1/model.pb.h"

namespace anorand {

struct FeatureDriftStats {
  int feature = 0;            // index into the record
  double psi = 0;             // against the profile's sketch of it
  double out_of_range = 0;    // share of the window outside [min, max]
};

struct DriftStats {
  int64_t observed = 0;  // records offered to Observe since the window was created
  int64_t window = 0;    // records the figures below describe
  double score_psi = 0;
  double out_of_range = 0;  // share of the window with any feature out of range
  std::vector<FeatureDriftStats> features;  // every feature, in record order
};

// The PSI of `counts` (n records in `bins` bins) against `expected` shares
// measured on `expected_n` records, both smoothed by half a record per bin.
// 0 when n is 0.
double PopulationStabilityIndex(const int64_t* counts, int64_t n, const float* expected,
                                int64_t expected_n, int bins);

class DriftWindow {
 public:
  // `profile` must have passed ValidateDriftProfile; window_records >= 2;
  // sample in (0, 1].
  DriftWindow(const v1::DriftProfile& profile, int64_t window_records, double sample = 1);

  // rows records of the profile's width (raw values, row-major) and their
  // scores, all finite: each enters the window with probability sample().
  void Observe(const float* x, int64_t rows, const float* scores);

  DriftStats Stats() const;

  int features() const { return d_; }
  int64_t window_records() const { return window_records_; }
  double sample() const { return sample_; }

 private:
  struct Counts {
    int64_t records = 0;
    int64_t any_out = 0;
    std::vector<int64_t> feature_bins;  // d_ x feature_stride_
    std::vector<int64_t> out;           // d_
    std::vector<int64_t> score_bins;    // score edges + 1
  };
  Counts Empty() const;
  static void Add(const Counts& from, Counts* to);

  const int d_;
  const int64_t window_records_;
  const double sample_;
  const int64_t profile_rows_;
  // Feature edges padded with +inf to the widest sketch, laid out edge-major
  // (edge k of feature j at k * d_ + j) so that binning a record is a few
  // comparisons per feature, vectorised across features.
  int feature_edges_ = 0;
  int feature_stride_ = 0;  // feature_edges_ + 1 bins per feature
  std::vector<float> edges_;
  std::vector<int> bins_;               // bins of each feature's own sketch
  std::vector<float> expected_;         // d_ x feature_stride_, 0-padded
  std::vector<float> lo_, hi_;          // training range per feature
  std::vector<float> score_edges_;
  std::vector<float> score_expected_;

  mutable absl::Mutex mu_;
  Counts current_ ABSL_GUARDED_BY(mu_);
  Counts previous_ ABSL_GUARDED_BY(mu_);
  int64_t observed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace anorand

#endif  // ANORAND_MODEL_DRIFT_WINDOW_H_
