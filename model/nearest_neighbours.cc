#include "model/nearest_neighbours.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nanoflann.hpp"

namespace anorand {
namespace {

// Squared distance as the brute force sums it: in feature order, each
// float difference squared in double.
inline double SquaredDistance(const float* a, const float* b, int cols) {
  double d = 0;
  for (int c = 0; c < cols; ++c) d += (a[c] - b[c]) * double(a[c] - b[c]);
  return d;
}

struct RowsAdaptor {
  const float* x;
  int64_t rows;
  int cols;
  size_t kdtree_get_point_count() const { return static_cast<size_t>(rows); }
  float kdtree_get_pt(uint32_t r, size_t c) const { return x[static_cast<int64_t>(r) * cols + c]; }
  template <class Box>
  bool kdtree_get_bbox(Box&) const { return false; }
};

// nanoflann's distance interface with SquaredDistance's arithmetic, so the
// tree compares exactly the numbers the brute force would.
struct ExactL2 {
  using ElementType = float;
  using DistanceType = double;
  const RowsAdaptor& data;
  explicit ExactL2(const RowsAdaptor& d) : data(d) {}
  double evalMetric(const float* a, uint32_t b, size_t size) const {
    return SquaredDistance(a, data.x + static_cast<int64_t>(b) * data.cols, static_cast<int>(size));
  }
  template <typename U, typename V>
  double accum_dist(const U a, const V b, size_t) const {
    return (a - b) * double(a - b);
  }
};

using KdTree = nanoflann::KDTreeSingleIndexAdaptor<ExactL2, RowsAdaptor, -1, uint32_t>;

// The `capacity` smallest (distance, index) pairs offered. worstDist() is
// just above the largest kept distance so that a point at exactly that
// distance is still offered (the tree only offers dist < worstDist) and a
// lower index wins the tie.
class LexicographicKnn {
 public:
  explicit LexicographicKnn(size_t capacity) : capacity_(capacity) { items_.reserve(capacity + 1); }
  void Clear() { items_.clear(); }
  size_t size() const { return items_.size(); }
  bool full() const { return items_.size() == capacity_; }
  double worstDist() const {
    if (!full()) return std::numeric_limits<double>::max();
    return std::nextafter(items_.back().first, std::numeric_limits<double>::infinity());
  }
  bool addPoint(double dist, uint32_t index) {
    const std::pair<double, int64_t> item(dist, index);
    if (full() && !(item < items_.back())) return true;
    items_.insert(std::upper_bound(items_.begin(), items_.end(), item), item);
    if (items_.size() > capacity_) items_.pop_back();
    return true;
  }
  const std::vector<std::pair<double, int64_t>>& items() const { return items_; }

 private:
  size_t capacity_;
  std::vector<std::pair<double, int64_t>> items_;
};

absl::Status Cancelled() {
  return absl::CancelledError("training cancelled while finding SMOTE neighbours");
}

absl::Status KdTreeSearch(const float* x, int64_t rows, int cols,
                          const std::function<bool()>& cancelled, Neighbours* out) {
  const RowsAdaptor adaptor{x, rows, cols};
  KdTree tree(cols, adaptor, nanoflann::KDTreeSingleIndexAdaptorParams(16));
  if (cancelled && cancelled()) return Cancelled();
  // The row itself is among its k + 1 nearest (distance 0) unless k + 1
  // duplicates of lower index precede it; either way the first k others
  // are the answer.
  LexicographicKnn knn(static_cast<size_t>(out->k) + 1);
  const nanoflann::SearchParams search;
  for (int64_t r = 0; r < rows; ++r) {
    if ((r & 255) == 0 && cancelled && cancelled()) return Cancelled();
    knn.Clear();
    tree.findNeighbors(knn, x + r * cols, search);
    int64_t* dst = &out->index[r * out->k];
    int t = 0;
    for (const auto& [dist, j] : knn.items()) {
      if (j == r || t == out->k) continue;
      dst[t++] = j;
    }
  }
  return absl::OkStatus();
}

absl::Status BruteForceSearch(const float* x, int64_t rows, int cols,
                              const std::function<bool()>& cancelled, Neighbours* out) {
  std::vector<std::pair<double, int64_t>> dist;
  dist.reserve(rows);
  // Poll about every 2^22 distance terms (a few milliseconds).
  const int64_t poll_every = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, rows * cols));
  for (int64_t i = 0; i < rows; ++i) {
    if (i % poll_every == 0 && cancelled && cancelled()) return Cancelled();
    dist.clear();
    const float* a = x + i * cols;
    for (int64_t j = 0; j < rows; ++j) {
      if (j == i) continue;
      dist.emplace_back(SquaredDistance(a, x + j * cols, cols), j);
    }
    std::partial_sort(dist.begin(), dist.begin() + out->k, dist.end());
    for (int t = 0; t < out->k; ++t) out->index[i * out->k + t] = dist[t].second;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Neighbours> NearestNeighbours(const float* x, int64_t rows, int cols, int k,
                                             const std::function<bool()>& cancelled) {
  if (rows < 0 || cols < 1 || k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("nearest neighbours need rows >= 0, cols >= 1, k >= 1; got ", rows, ", ",
                     cols, ", ", k));
  }
  if (rows > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("nearest neighbours among ", rows, " rows: at most 2^32 - 1 are supported"));
  }
  Neighbours out;
  out.k = static_cast<int>(std::min<int64_t>(k, std::max<int64_t>(rows - 1, 0)));
  out.index.assign(static_cast<size_t>(rows) * out.k, 0);
  if (out.k == 0) return out;
  absl::Status s = cols <= kKdTreeMaxCols ? KdTreeSearch(x, rows, cols, cancelled, &out)
                                          : BruteForceSearch(x, rows, cols, cancelled, &out);
  if (!s.ok()) return s;
  return out;
}

}  // namespace anorand
