// File: trainer.h
//
// Fits an AnoRand model on unlabelled rows (METHOD.md sections 1 to 6):
// normaliser, synthetic labels, the two-block network trained with Adam
// and early stopping (best weights restored), then the scoring statistics
// fitted on the training rows. Returns a complete model file.
//
// Blocking; run it on a training thread. Cancellation is cooperative: the
// `cancelled` callback is polled in every phase (between row blocks of the
// normalising and the statistics, inside the synthetic labels, before every
// mini-batch) and the fit ends with CANCELLED naming the phase. Progress is
// reported from the calling thread at the start of every phase (on_phase)
// and once per epoch (on_epoch); both carry the fraction of the whole fit
// done, which never decreases. The summary's epoch counts are the first
// network's. One seed gives the same model bit for bit on the same machine
// and thread count.
#ifndef ANORAND_MODEL_TRAINER_H_
#define ANORAND_MODEL_TRAINER_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "anorand/v1/model.pb.h"
#include "model/dataset.h"

namespace anorand {

// The phases of a fit, in order; an ensemble repeats the last three per
// member.
enum class TrainPhase { kPreparing, kSyntheticLabels, kEpochs, kStatistics };

// "preparing the data", "drawing synthetic labels", "training",
// "scoring statistics".
const char* TrainPhaseName(TrainPhase phase);

struct PhaseProgress {
  TrainPhase phase = TrainPhase::kPreparing;
  int member = 0, members = 1;  // member is 0-based
  double fraction = 0;          // of the whole fit, in [0, 1)
  double elapsed_seconds = 0;
};

struct EpochProgress {
  int epoch = 0;       // 1-based
  int max_epochs = 0;  // after min_steps stretched it
  double train_loss = 0, classification_loss = 0, reconstruction_loss = 0;
  double validation_loss = 0;
  double elapsed_seconds = 0;
  // Ensembles (TrainingParams.ensemble_size) train their networks one after
  // another; each counts its epochs from 1. member is 0-based.
  int member = 0, members = 1;
  double fraction = 0;  // of the whole fit, in [0, 1)
};

struct TrainOptions {
  std::function<void(const EpochProgress&)> on_epoch;  // may be empty
  std::function<void(const PhaseProgress&)> on_phase;  // may be empty
  std::function<bool()> cancelled;                     // may be empty
  int threads = 0;  // oneDNN/OpenMP threads for this fit; 0 = leave as is
};

// The rows labelled 1 (known anomalies), ascending, when the resolved
// params `p` use labels and `data` has them; else none. INVALID_ARGUMENT
// for labels that are not one per row, not 0 or 1, or that leave no
// unlabelled row.
absl::StatusOr<std::vector<int64_t>> KnownAnomalyRows(const Dataset& data,
                                                      const v1::TrainingParams& p);

// Known anomalies (KnownAnomalyRows) are positives of the noise-detection
// block in every member, repeated to labeled_weight, and stay out of the
// reconstruction term, the error scales, quantile tables and threshold.
// INVALID_ARGUMENT for bad parameters or labels, data too small to train on (fewer
// than 10 rows) or data in which every feature is constant (all rows one
// record: nothing to learn, and the threshold would flag every record);
// CANCELLED if cancelled, INTERNAL if oneDNN fails.
absl::StatusOr<v1::ModelFile> TrainModel(const Dataset& data, const v1::TrainingParams& params,
                                         const TrainOptions& options = {});

}  // namespace anorand

#endif  // ANORAND_MODEL_TRAINER_H_
