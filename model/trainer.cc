#include "model/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "model/inference_plan.h"
#include "model/network.h"
#include "model/normalizer.h"
#include "model/params.h"
#include "model/rng.h"
#include "model/score_rule.h"
#include "model/synthetic_labels.h"

namespace anorand {
namespace {

constexpr int kMaxStretchedEpochs = 2000;

void AdamStep(const std::vector<Param*>& params, const v1::TrainingParams& p, int64_t t) {
  const float lr = static_cast<float>(p.learning_rate());
  const float b1 = static_cast<float>(p.adam_beta1()), b2 = static_cast<float>(p.adam_beta2());
  const float c1 = static_cast<float>(1.0 - std::pow(p.adam_beta1(), static_cast<double>(t)));
  const float c2 = static_cast<float>(1.0 - std::pow(p.adam_beta2(), static_cast<double>(t)));
  for (Param* q : params) {
    const size_t n = q->value.size();
    float* w = q->value.data();
    const float* g = q->grad.data();
    float* m = q->m.data();
    float* v = q->v.data();
    for (size_t i = 0; i < n; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      w[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + 1e-8f);
    }
  }
}

struct Split {
  std::vector<float> x_train, y_train, x_val, y_val;
  int64_t n_train = 0, n_val = 0;
};

Split SplitValidation(const LabelledSet& set, double fraction, Rng& rng) {
  std::vector<int64_t> idx(set.rows);
  std::iota(idx.begin(), idx.end(), 0);
  rng.Shuffle(idx.begin(), idx.end());
  Split s;
  s.n_val = static_cast<int64_t>(std::floor(fraction * set.rows));
  if (set.rows - s.n_val < 2) s.n_val = 0;
  s.n_train = set.rows - s.n_val;
  const int d = set.cols;
  auto take = [&](int64_t from, int64_t count, std::vector<float>* x, std::vector<float>* y) {
    x->resize(count * d);
    y->resize(count);
    for (int64_t i = 0; i < count; ++i) {
      std::memcpy(&(*x)[i * d], &set.x[idx[from + i] * d], d * sizeof(float));
      (*y)[i] = set.labels[idx[from + i]];
    }
  };
  take(0, s.n_val, &s.x_val, &s.y_val);
  take(s.n_val, s.n_train, &s.x_train, &s.y_train);
  return s;
}

}  // namespace

absl::StatusOr<v1::ModelFile> TrainModel(const Dataset& data, const v1::TrainingParams& user,
                                         const TrainOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  if (data.rows < 10) {
    return absl::InvalidArgumentError(
        absl::StrCat("the training data has ", data.rows, " rows; at least 10 are needed"));
  }
  if (data.cols < 1 || static_cast<int64_t>(data.x.size()) != data.rows * data.cols) {
    return absl::InvalidArgumentError("the training data has no features or a wrong size");
  }
  auto resolved = ResolveParams(user, static_cast<int>(data.cols));
  if (!resolved.ok()) return resolved.status();
  const v1::TrainingParams& p = *resolved;
  // Threads: as asked, else one for narrow networks (two threads are slower
  // than one below a few hundred units per layer: fork/join cost; measured
  // in docs/PERFORMANCE.md) and every core for wide ones.
  int widest = 0;
  for (const auto* w : {&p.noise_detector_widths(), &p.encoder_widths(), &p.decoder_widths()})
    for (int v : *w) widest = std::max(widest, v);
  // More threads than cores is capped: OpenMP's spinning workers made an
  // oversubscribed fit hundreds of times slower.
  const int cores = std::max(1, omp_get_num_procs());
  omp_set_num_threads(options.threads > 0 ? std::min(options.threads, cores)
                                          : (widest >= 256 ? cores : 1));
  const int d = static_cast<int>(data.cols);

  Rng rng(p.seed());
  v1::ModelFile model;
  *model.mutable_normalizer() = FitNormalizer(p.scaling(), data.x.data(), data.rows, d);
  std::vector<float> xn(data.x.size());
  ApplyNormalizer(model.normalizer(), data.x.data(), data.rows, d, xn.data());

  const LabelledSet set = MakeSyntheticLabels(xn.data(), data.rows, d, p, rng);
  const Split split = SplitValidation(set, p.validation_fraction(), rng);
  const int batch = static_cast<int>(std::min<int64_t>(p.batch_size(), split.n_train));
  const int64_t steps_per_epoch = std::max<int64_t>(1, split.n_train / batch);
  int max_epochs = p.max_epochs();
  if (p.min_steps() > 0) {
    const int64_t need = (p.min_steps() + steps_per_epoch - 1) / steps_per_epoch;
    max_epochs = static_cast<int>(std::clamp<int64_t>(need, max_epochs, std::max(max_epochs, kMaxStretchedEpochs)));
  }

  try {
    TrainingNetwork net(p, d, batch, rng);
    const std::vector<Param*> params = net.Params();
    v1::Network best = net.ToProto();
    double best_loss = INFINITY;
    int best_epoch = 0, epochs_run = 0, since_best = 0;
    double last_train = 0;
    std::vector<int64_t> order(split.n_train);
    std::iota(order.begin(), order.end(), 0);
    std::vector<float> bx(static_cast<size_t>(batch) * d), by(batch);
    int64_t step = 0;
    for (int epoch = 1; epoch <= max_epochs; ++epoch) {
      rng.Shuffle(order.begin(), order.end());
      LossParts sum;
      int64_t batches = 0;
      for (int64_t at = 0; at + 1 < split.n_train; at += batch) {
        if (options.cancelled && options.cancelled()) {
          return absl::CancelledError(absl::StrCat("training cancelled in epoch ", epoch));
        }
        const int b = static_cast<int>(std::min<int64_t>(batch, split.n_train - at));
        if (b < 2) break;  // batch statistics need two rows
        for (int i = 0; i < b; ++i) {
          std::memcpy(&bx[i * d], &split.x_train[order[at + i] * d], d * sizeof(float));
          by[i] = split.y_train[order[at + i]];
        }
        const LossParts l = net.ForwardBackward(bx.data(), by.data(), b, rng);
        AdamStep(params, p, ++step);
        sum.total += l.total;
        sum.classification += l.classification;
        sum.reconstruction += l.reconstruction;
        ++batches;
      }
      epochs_run = epoch;
      EpochProgress progress;
      progress.epoch = epoch;
      progress.max_epochs = max_epochs;
      progress.train_loss = sum.total / std::max<int64_t>(batches, 1);
      progress.classification_loss = sum.classification / std::max<int64_t>(batches, 1);
      progress.reconstruction_loss = sum.reconstruction / std::max<int64_t>(batches, 1);
      last_train = progress.train_loss;
      progress.validation_loss =
          split.n_val > 0 ? net.EvalLoss(split.x_val.data(), split.y_val.data(), split.n_val).total
                          : progress.train_loss;
      if (!std::isfinite(progress.train_loss)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "training diverged in epoch ", epoch, " (loss is not finite); lower learning_rate"));
      }
      if (progress.validation_loss < best_loss) {
        best_loss = progress.validation_loss;
        best_epoch = epoch;
        best = net.ToProto();
        since_best = 0;
      } else {
        ++since_best;
      }
      progress.elapsed_seconds = elapsed();
      if (options.on_epoch) options.on_epoch(progress);
      if (p.patience() > 0 && since_best >= p.patience()) break;
    }
    *model.mutable_network() = std::move(best);

    // Scoring statistics from the real training rows (no synthetic ones).
    auto plan = InferencePlan::Compile(model.network());
    if (!plan.ok()) return plan.status();
    std::vector<float> yhat(data.rows), xhat(data.x.size()), err(data.rows);
    if (absl::Status s = (*plan)->Run(xn.data(), data.rows, yhat.data(), xhat.data()); !s.ok())
      return s;
    for (int64_t r = 0; r < data.rows; ++r) {
      double e = 0;
      for (int c = 0; c < d; ++c) {
        const double diff = xn[r * d + c] - xhat[r * d + c];
        e += diff * diff;
      }
      err[r] = static_cast<float>(e / d);
    }
    *model.mutable_score_stats() = FitScoreStats(yhat, err, p);
    *model.mutable_params() = p;
    v1::TrainingSummary* summary = model.mutable_summary();
    summary->set_rows(data.rows);
    summary->set_features(d);
    summary->set_epochs_run(epochs_run);
    summary->set_best_epoch(best_epoch);
    summary->set_best_validation_loss(best_loss);
    summary->set_final_train_loss(last_train);
    summary->set_synthetic_rows(set.synthetic);
    summary->set_seconds(elapsed());
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN failed during training: ", e.what()));
  }
  for (const auto& name : data.feature_names) model.add_feature_names(name);
  model.set_created_unix_seconds(
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch()).count());
  model.set_producer("anorand 0.1.0");
  return model;
}

}  // namespace anorand
