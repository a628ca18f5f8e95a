// File: synthetic_data.h
//
// A seeded generator of demo data in the spirit of scikit-learn's
// make_classification, with an injected anomaly class, plus a CSV writer
// for it.
//
// Normal rows (label 0) come from a mixture of `clusters` Gaussian clusters
// in a random `informative`-dimensional latent space, mapped into `cols`
// features by a random linear map, then given per-feature scales and offsets
// and small Gaussian noise (5% of the per-feature scale). Features are
// therefore strongly correlated and close to a low-rank subspace: structure
// an autoencoder can learn.
// Anomaly rows (label 1) start as normal rows; then a random quarter of the
// features (at least one) is shifted by 4 to 8 standard deviations of that
// feature, with a random sign. That breaks the correlation structure and
// moves the row far from every cluster in those features. Exactly
// round(rows * anomaly_fraction) rows are anomalies, at random positions.
// With anomaly_size > 0 every anomaly is of one kind instead: the first
// ceil(cols / 4) features moved by +anomaly_size standard deviations, a
// subtle, recurring pattern (one kind of fraud) that labels teach better
// than distance does.
//
// Reproducibility: draws come from std::mt19937_64 (fully specified by the
// C++ standard) turned into uniforms from raw bits and normals by
// Box-Muller, so a seed yields the same data with every standard library
// (given IEEE doubles and a faithful libm log/cos/sin/sqrt).
// Feature names are "f0" .. "f<cols-1>"; labels are always filled.
//
// Out-of-range options are clamped, not rejected: rows >= 0, cols in
// [1, 100000], informative in [1, cols], clusters >= 1, anomaly_fraction in
// [0, 1] (NaN means 0), shift finite (else 0), anomaly_size finite and >= 0
// (else 0). Memory is rows * cols floats.
//
// Thread safety: stateless functions; safe to call concurrently.
// Failure behaviour: MakeSyntheticData cannot fail. WriteCsv returns
// InvalidArgument for an inconsistent dataset and an I/O error status
// naming the path when writing fails. Never throws.
#ifndef ANORAND_MODEL_DATA_SYNTHETIC_DATA_H_
#define ANORAND_MODEL_DATA_SYNTHETIC_DATA_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "model/dataset.h"

namespace anorand {

struct SyntheticOptions {
  int64_t rows = 10000;
  int cols = 20;
  double anomaly_fraction = 0.03;
  // Dimension of the latent space the normal rows live in.
  int informative = 5;
  // Gaussian clusters of normal rows.
  int clusters = 3;
  uint64_t seed = 1;
  // Drift: every value of feature j moves by shift x the feature's standard
  // deviation. The draws do not depend on it, so a seed gives the same
  // rows at every shift, only moved (a drifting stream for tests and demos).
  double shift = 0;
  // 0: anomalies as above (4-8 sd, random features and signs); > 0: one
  // kind, the first ceil(cols / 4) features + anomaly_size sd.
  double anomaly_size = 0;
};

Dataset MakeSyntheticData(const SyntheticOptions& options);

// Writes `data` as comma-separated text with a header: the feature names
// (or "f0".. when the dataset has none) and, when `include_labels`, a last
// column "label". Values are written with %.9g so floats read back exactly.
absl::Status WriteCsv(const Dataset& data, const std::string& path,
                      bool include_labels);

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_SYNTHETIC_DATA_H_
