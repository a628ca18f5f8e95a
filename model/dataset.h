// File: dataset.h
//
// A table of records held in memory: the one shape every loader produces and
// every consumer (trainer, scorer, evaluation) reads. Plain value type, no
// invariants beyond the documented sizes; not synchronised.
#ifndef ANORAND_MODEL_DATASET_H_
#define ANORAND_MODEL_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

namespace anorand {

struct Dataset {
  int64_t rows = 0;
  int64_t cols = 0;
  // rows * cols values, row-major, every one finite.
  std::vector<float> x;
  // cols names when the source had them (CSV header), else empty.
  std::vector<std::string> feature_names;
  // rows labels (0 = normal, 1 = anomaly) when the source had them, else empty.
  std::vector<int> labels;

  const float* row(int64_t r) const { return x.data() + r * cols; }
  bool has_labels() const { return !labels.empty(); }
};

}  // namespace anorand

#endif  // ANORAND_MODEL_DATASET_H_
