// File: drift_profile.h
//
// What the training data looked like, stored in the model file
// (model.proto DriftProfile) so that a server can tell when the records it
// scores stop looking like it (drift_window.h). FitDriftProfile sketches
// each feature at its deciles and the model's own scores of the training
// rows at their deciles and 95th and 99th percentiles; a sketch's bins are
// delimited by its edges, a value falling in the bin whose index is the
// number of edges below it (DistributionSketch in model.proto). Pure
// functions, no state.
#ifndef ANORAND_MODEL_DRIFT_PROFILE_H_
#define ANORAND_MODEL_DRIFT_PROFILE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "anorand/v1/model.pb.h"
#include "model/compiled_model.h"

namespace anorand {

// Rows sketched at most: a uniform sample beyond it (min and max are over
// every row). 20,000 rows put a decile's sampling error near 0.2 points.
inline constexpr int64_t kDriftProfileRows = 20000;
// A sketch holds at most this many edges (ValidateDriftProfile).
inline constexpr int kMaxSketchEdges = 32;

// The sketch of `values` at the quantile `levels` (ascending, in (0, 1)):
// edges are the sample quantiles with ties merged, fractions the share of
// the values in each bin. `values` must not be empty.
v1::DistributionSketch SketchValues(std::vector<float> values, const std::vector<double>& levels);

// The bin of `value` in a sketch with these edges: the number of edges
// strictly below it.
int SketchBin(const float* edges, int edge_count, float value);

// Profiles rows x d raw training values (row-major) and `model`'s scores of
// them. `seed` draws the sample when rows > kDriftProfileRows.
absl::StatusOr<v1::DriftProfile> FitDriftProfile(const CompiledModel& model, const float* x,
                                                 int64_t rows, int d, uint64_t seed);

// INVALID_ARGUMENT unless `profile` has one sketch per input feature and
// every sketch keeps DistributionSketch's rules.
absl::Status ValidateDriftProfile(const v1::DriftProfile& profile, int input_features);

}  // namespace anorand

#endif  // ANORAND_MODEL_DRIFT_PROFILE_H_
