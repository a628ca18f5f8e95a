// File: evaluation.h
//
// The ADBench protocol (../shared/datasets/adbench/README.md) for one
// labelled dataset and one seed: resample (under 1,000 rows: with
// replacement up to 1,000; over `max_rows`, 10,000 in the protocol:
// without replacement to `max_rows`; 0 keeps every row),
// stratified 70/30 split, fit on the training part without its labels
// (min-max scaling is the model's own normaliser, fitted on that part),
// score the test part, report AUC-ROC and average precision.
// The split is drawn from this project's generator, not sklearn's, so the
// rows differ from ADBench's; the protocol is the same.
#ifndef ANORAND_MODEL_EVALUATION_H_
#define ANORAND_MODEL_EVALUATION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "anorand/v1/model.pb.h"
#include "model/dataset.h"
#include "model/trainer.h"

namespace anorand {

struct SeedResult {
  uint64_t seed = 0;
  int64_t train_rows = 0, test_rows = 0;
  double auc_roc = 0, auc_pr = 0;
  double fit_seconds = 0;
  int epochs = 0;
  double alpha = 0;
  // Each block output alone, for the accuracy study.
  double auc_roc_noise = 0, auc_roc_reconstruction = 0;
  double auc_pr_noise = 0, auc_pr_reconstruction = 0;
  // Training-split anomalies that kept label 1 (label-informed protocol).
  int64_t labeled_anomalies = 0;
};

// The training rows that keep label 1 under the label-informed protocol:
// indices into `train_labels` (the true labels of the training split),
// ceil(fraction * anomalies) of its anomalies drawn at random from `seed`,
// at least one when fraction > 0 and the split has an anomaly.
std::vector<int64_t> PickLabeledAnomalies(const std::vector<int>& train_labels, double fraction,
                                          uint64_t seed);

// The protocol's cap on rows before the split.
inline constexpr int64_t kProtocolMaxRows = 10000;

// `params.seed` is replaced by `seed` (split and model). Needs labels.
// `labeled_fraction` in [0, 1] is ADBench's label-informed protocol
// (../shared/datasets/adbench/LABEL-INFORMED.md): after the split, a random
// ceil(fraction * anomalies) of the training split's anomalies (at least one
// when the fraction is above 0) keep label 1 and every other training row
// gets 0 (unlabelled); with 0 the fit gets no labels at all.
absl::StatusOr<SeedResult> EvaluateSeed(const Dataset& data, const v1::TrainingParams& params,
                                        uint64_t seed, const TrainOptions& options = {},
                                        int64_t max_rows = kProtocolMaxRows,
                                        double labeled_fraction = 0);

}  // namespace anorand

#endif  // ANORAND_MODEL_EVALUATION_H_
