#include "model/ranking_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace anorand {
namespace {

// Indices sorted by descending score.
std::vector<size_t> Descending(const std::vector<float>& s) {
  std::vector<size_t> idx(s.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
  return idx;
}

}  // namespace

double AucRoc(const std::vector<float>& scores, const std::vector<int>& labels) {
  const auto idx = Descending(scores);
  double pos = 0, neg = 0, area = 0, tp = 0;
  for (int l : labels) (l ? pos : neg) += 1;
  if (pos == 0 || neg == 0) return NAN;
  size_t i = 0;
  while (i < idx.size()) {
    double dtp = 0, dfp = 0;
    size_t j = i;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) {
      (labels[idx[j]] ? dtp : dfp) += 1;
      ++j;
    }
    area += dfp * (tp + dtp / 2);  // trapezoid over a tie group
    tp += dtp;
    i = j;
  }
  return area / (pos * neg);
}

double AveragePrecision(const std::vector<float>& scores, const std::vector<int>& labels) {
  const auto idx = Descending(scores);
  double pos = 0;
  for (int l : labels) pos += l ? 1 : 0;
  if (pos == 0 || pos == labels.size()) return NAN;
  double ap = 0, tp = 0, seen = 0, prev_recall = 0;
  size_t i = 0;
  while (i < idx.size()) {
    size_t j = i;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) {
      tp += labels[idx[j]] ? 1 : 0;
      seen += 1;
      ++j;
    }
    const double recall = tp / pos;
    ap += (recall - prev_recall) * (tp / seen);
    prev_recall = recall;
    i = j;
  }
  return ap;
}

}  // namespace anorand
