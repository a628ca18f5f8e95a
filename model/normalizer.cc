#include "model/normalizer.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace anorand {

v1::Normalizer FitNormalizer(v1::Normalizer::Kind kind, const float* x, int64_t rows, int cols) {
  v1::Normalizer n;
  n.set_kind(kind);
  std::vector<double> offset(cols, 0.0), scale(cols, 1.0);
  if (kind == v1::Normalizer::KIND_MIN_MAX && rows > 0) {
    std::vector<double> lo(x, x + cols), hi(x, x + cols);
    for (int64_t r = 1; r < rows; ++r) {
      const float* row = x + r * cols;
      for (int c = 0; c < cols; ++c) {
        lo[c] = std::min<double>(lo[c], row[c]);
        hi[c] = std::max<double>(hi[c], row[c]);
      }
    }
    for (int c = 0; c < cols; ++c) {
      offset[c] = lo[c];
      scale[c] = hi[c] > lo[c] ? hi[c] - lo[c] : 1.0;
    }
  } else if (kind == v1::Normalizer::KIND_Z_SCORE && rows > 0) {
    std::vector<double> sum(cols, 0.0), sq(cols, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x + r * cols;
      for (int c = 0; c < cols; ++c) sum[c] += row[c];
    }
    for (int c = 0; c < cols; ++c) offset[c] = sum[c] / rows;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x + r * cols;
      for (int c = 0; c < cols; ++c) sq[c] += (row[c] - offset[c]) * (row[c] - offset[c]);
    }
    for (int c = 0; c < cols; ++c) {
      const double sd = std::sqrt(sq[c] / rows);
      scale[c] = sd > 1e-12 ? sd : 1.0;
    }
  } else if (kind == v1::Normalizer::KIND_ROBUST && rows > 0) {
    std::vector<float> col(rows);
    auto at = [&](double q) {
      const size_t k = static_cast<size_t>(std::llround(q * (rows - 1)));
      std::nth_element(col.begin(), col.begin() + k, col.end());
      return static_cast<double>(col[k]);
    };
    for (int c = 0; c < cols; ++c) {
      for (int64_t r = 0; r < rows; ++r) col[r] = x[r * cols + c];
      const double lo = *std::min_element(col.begin(), col.end());
      const double hi = *std::max_element(col.begin(), col.end());
      offset[c] = at(0.5);
      const double iqr = at(0.75) - at(0.25);
      scale[c] = iqr > 1e-12 ? iqr : (hi - lo > 1e-12 ? hi - lo : 1.0);
    }
  }
  for (int c = 0; c < cols; ++c) {
    n.add_offset(static_cast<float>(offset[c]));
    n.add_scale(static_cast<float>(scale[c]));
  }
  return n;
}

void ApplyNormalizer(const v1::Normalizer& n, const float* x, int64_t rows, int cols, float* out) {
  const float* off = n.offset().data();
  const float* sc = n.scale().data();
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * cols;
    float* o = out + r * cols;
    for (int c = 0; c < cols; ++c) o[c] = (in[c] - off[c]) / sc[c];
  }
}

}  // namespace anorand
