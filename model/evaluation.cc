#include "model/evaluation.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "model/compiled_model.h"
#include "model/ranking_metrics.h"
#include "model/rng.h"

namespace anorand {
namespace {

Dataset Take(const Dataset& data, const std::vector<int64_t>& idx) {
  Dataset out;
  out.rows = static_cast<int64_t>(idx.size());
  out.cols = data.cols;
  out.feature_names = data.feature_names;
  out.x.resize(out.rows * out.cols);
  out.labels.resize(out.rows);
  for (int64_t i = 0; i < out.rows; ++i) {
    std::memcpy(&out.x[i * out.cols], data.row(idx[i]), out.cols * sizeof(float));
    out.labels[i] = data.labels[idx[i]];
  }
  return out;
}

}  // namespace

std::vector<int64_t> PickLabeledAnomalies(const std::vector<int>& train_labels, double fraction,
                                          uint64_t seed) {
  std::vector<int64_t> anomalies;
  for (size_t i = 0; i < train_labels.size(); ++i) {
    if (train_labels[i] == 1) anomalies.push_back(static_cast<int64_t>(i));
  }
  if (!(fraction > 0) || anomalies.empty()) return {};
  size_t keep = static_cast<size_t>(std::ceil(fraction * static_cast<double>(anomalies.size())));
  keep = std::clamp<size_t>(keep, 1, anomalies.size());
  // A generator of its own, so the split and the model draw exactly what they
  // draw without labels.
  Rng rng(seed ^ 0x6c6162656c6c6564ULL);
  rng.Shuffle(anomalies.begin(), anomalies.end());
  anomalies.resize(keep);
  std::sort(anomalies.begin(), anomalies.end());
  return anomalies;
}

absl::StatusOr<SeedResult> EvaluateSeed(const Dataset& data, const v1::TrainingParams& params,
                                        uint64_t seed, const TrainOptions& options,
                                        int64_t max_rows, double labeled_fraction) {
  if (!data.has_labels()) {
    return absl::InvalidArgumentError("evaluation needs labels (a y array or a label column)");
  }
  if (!(labeled_fraction >= 0 && labeled_fraction <= 1)) {
    return absl::InvalidArgumentError("labelled anomaly fraction must be in [0, 1], got " +
                                      std::to_string(labeled_fraction));
  }
  Rng rng(seed);
  std::vector<int64_t> idx;
  if (data.rows < 1000) {
    for (int i = 0; i < 1000; ++i) idx.push_back(static_cast<int64_t>(rng.Below(data.rows)));
  } else {
    idx.resize(data.rows);
    for (int64_t i = 0; i < data.rows; ++i) idx[i] = i;
    if (max_rows > 0 && data.rows > max_rows) {
      rng.Shuffle(idx.begin(), idx.end());
      idx.resize(max_rows);
    }
  }
  // Stratified 70/30: 30% of each class to the test part.
  std::vector<int64_t> cls[2], train, test;
  for (int64_t i : idx) cls[data.labels[i] ? 1 : 0].push_back(i);
  for (auto& c : cls) {
    rng.Shuffle(c.begin(), c.end());
    const size_t n_test = static_cast<size_t>(std::llround(0.3 * c.size()));
    test.insert(test.end(), c.begin(), c.begin() + n_test);
    train.insert(train.end(), c.begin() + n_test, c.end());
  }
  rng.Shuffle(train.begin(), train.end());
  Dataset tr = Take(data, train), te = Take(data, test);
  const std::vector<int64_t> labeled = PickLabeledAnomalies(tr.labels, labeled_fraction, seed);
  if (labeled.empty()) {
    tr.labels.clear();  // unsupervised: the fit never sees them
  } else {
    tr.labels.assign(tr.rows, 0);
    for (int64_t i : labeled) tr.labels[i] = 1;
  }

  v1::TrainingParams p = params;
  p.set_seed(seed);
  auto model = TrainModel(tr, p, options);
  if (!model.ok()) return model.status();
  SeedResult r;
  r.seed = seed;
  r.labeled_anomalies = static_cast<int64_t>(labeled.size());
  r.train_rows = tr.rows;
  r.test_rows = te.rows;
  r.fit_seconds = model->summary().seconds();
  r.epochs = model->summary().epochs_run();
  r.alpha = model->score_stats().alpha();
  auto compiled = CompiledModel::Create(*std::move(model));
  if (!compiled.ok()) return compiled.status();
  std::vector<float> score(te.rows), nd(te.rows), err(te.rows);
  ScoreOutputs out;
  out.score = score.data();
  out.noise_probability = nd.data();
  out.reconstruction_error = err.data();
  if (absl::Status s = (*compiled)->Score(te.x.data(), te.rows, out); !s.ok()) return s;
  r.auc_roc = AucRoc(score, te.labels);
  r.auc_pr = AveragePrecision(score, te.labels);
  r.auc_roc_noise = AucRoc(nd, te.labels);
  r.auc_roc_reconstruction = AucRoc(err, te.labels);
  r.auc_pr_noise = AveragePrecision(nd, te.labels);
  r.auc_pr_reconstruction = AveragePrecision(err, te.labels);
  return r;
}

}  // namespace anorand
