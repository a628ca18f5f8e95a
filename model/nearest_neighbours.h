// File: nearest_neighbours.h
//
// The k nearest other rows of every row of a set, by Euclidean distance:
// SMOTE's neighbours (METHOD.md section 2). Exact, with the same answer as
// comparing every pair: a row's neighbours are the k smallest (squared
// distance, index) pairs over the other rows, the squared distance summed
// feature by feature in double from float differences, so ties (duplicate
// rows) go to the lower index.
//
// Narrow data (cols <= kKdTreeMaxCols) searches a k-d tree (nanoflann):
// about O(n log n) for the low-dimensional tables this serves. Wide data
// compares every pair (O(n^2 cols)); docs/PERFORMANCE.md has both costs.
//
// Thread safety: a pure function; safe to call concurrently.
// Cancellation: `cancelled` (may be empty) is polled at least every few
// milliseconds of work; a cancelled search returns CANCELLED.
#ifndef ANORAND_MODEL_NEAREST_NEIGHBOURS_H_
#define ANORAND_MODEL_NEAREST_NEIGHBOURS_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"

namespace anorand {

// Widest rows searched with the k-d tree (measured: docs/PERFORMANCE.md).
inline constexpr int kKdTreeMaxCols = 32;

struct Neighbours {
  int k = 0;                    // neighbours per row: min(k asked, rows - 1)
  std::vector<int64_t> index;   // rows * k; row r's are index[r*k .. r*k+k), nearest first
};

// `rows` rows of `cols` floats at `x`, row-major, finite. k >= 1.
absl::StatusOr<Neighbours> NearestNeighbours(const float* x, int64_t rows, int cols, int k,
                                             const std::function<bool()>& cancelled);

}  // namespace anorand

#endif  // ANORAND_MODEL_NEAREST_NEIGHBOURS_H_
