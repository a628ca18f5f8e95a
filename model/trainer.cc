#include "model/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "model/compiled_model.h"
#include "model/drift_profile.h"
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

// Rows per block between cancellation polls in the row-wise phases
// (normalising, statistics): well under 100 ms of work at 1,000 features.
constexpr int64_t kRowBlock = int64_t{1} << 14;

bool IsCancelled(const TrainOptions& o) { return o.cancelled && o.cancelled(); }

absl::Status CancelledIn(TrainPhase phase, int member, int members) {
  if (members <= 1) return absl::CancelledError(absl::StrCat("cancelled while ", TrainPhaseName(phase)));
  return absl::CancelledError(absl::StrCat("cancelled while ", TrainPhaseName(phase), " (member ",
                                           member + 1, " of ", members, ")"));
}

// How the fraction of the whole fit is laid out: preparing, then an equal
// share per member (synthetic labels, epochs, statistics), then the
// ensemble threshold. The shares are estimates of each phase's cost.
struct FitLayout {
  static constexpr double kPrepare = 0.02, kFinish = 0.01;
  static constexpr double kLabels = 0.1, kEpochs = 0.8;  // of a member's share; statistics the rest
  int members = 1;
  double At(int member, TrainPhase phase, double within = 0) const {
    if (phase == TrainPhase::kPreparing) return kPrepare * within;
    const double share = (1.0 - kPrepare - kFinish) / members;
    double f = kPrepare + share * member;
    if (phase == TrainPhase::kSyntheticLabels) return f + share * kLabels * within;
    f += share * kLabels;
    if (phase == TrainPhase::kEpochs) return f + share * kEpochs * within;
    return f + share * kEpochs + share * (1.0 - kLabels - kEpochs) * within;
  }
};

void ReportPhase(const TrainOptions& o, const FitLayout& layout, TrainPhase phase, int member,
                 const std::function<double()>& elapsed) {
  if (!o.on_phase) return;
  PhaseProgress p;
  p.phase = phase;
  p.member = member;
  p.members = layout.members;
  p.fraction = layout.At(member, phase);
  p.elapsed_seconds = elapsed();
  o.on_phase(p);
}

// ApplyNormalizer in row blocks, polling for cancellation between them.
absl::Status ApplyNormalizerPolled(const v1::Normalizer& n, const float* x, int64_t rows, int d,
                                   float* out, const TrainOptions& o, int member, int members) {
  for (int64_t at = 0; at < rows; at += kRowBlock) {
    if (IsCancelled(o)) return CancelledIn(TrainPhase::kPreparing, member, members);
    const int64_t count = std::min(kRowBlock, rows - at);
    ApplyNormalizer(n, x + at * d, count, d, out + at * d);
  }
  return absl::OkStatus();
}

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

// Known anomalies (`known`, indices into x's rows) become positives at
// their own values (noise_originals noised the ones that were seeds too).
// With labeled_weight w > 0 they are then repeated, each about equally and
// appended after the synthetic rows, until they are a share w of the
// positives.
void AddKnownAnomalies(const float* x, int d, const std::vector<int64_t>& known, double weight,
                       LabelledSet* set) {
  for (int64_t k : known) {
    set->labels[k] = 1.0f;
    std::memcpy(&set->x[k * d], &x[k * d], d * sizeof(float));
  }
  if (!(weight > 0) || known.empty()) return;
  int64_t positives = 0;
  for (float l : set->labels) positives += l > 0 ? 1 : 0;
  const int64_t others = positives - static_cast<int64_t>(known.size());
  const int64_t want = std::llround(weight / (1.0 - weight) * static_cast<double>(others));
  const int64_t extra = want - static_cast<int64_t>(known.size());
  if (extra <= 0) return;
  const int64_t first = set->rows;
  set->rows += extra;
  set->x.resize(static_cast<size_t>(set->rows) * d);
  set->labels.resize(set->rows, 1.0f);
  for (int64_t i = 0; i < extra; ++i) {
    const int64_t k = known[i % known.size()];
    std::memcpy(&set->x[(first + i) * d], &x[k * d], d * sizeof(float));
  }
}

// One network trained on `rows` normalised rows (synthetic labels,
// validation split, Adam with early stopping, best weights kept).
struct TrainedNetwork {
  v1::Network network;
  int epochs_run = 0, best_epoch = 0;
  double best_loss = INFINITY, last_train = 0;
  int64_t synthetic = 0;
};

absl::StatusOr<TrainedNetwork> TrainOneNetwork(const float* xn, int64_t rows, int d,
                                               const v1::TrainingParams& p, Rng& rng,
                                               const TrainOptions& options,
                                               const std::function<double()>& elapsed,
                                               int member, const FitLayout& layout,
                                               const std::vector<int64_t>& known) {
  TrainedNetwork out;
  ReportPhase(options, layout, TrainPhase::kSyntheticLabels, member, elapsed);
  if (IsCancelled(options)) return CancelledIn(TrainPhase::kSyntheticLabels, member, layout.members);
  auto labelled = MakeSyntheticLabels(xn, rows, d, p, rng, options.cancelled);
  if (absl::IsCancelled(labelled.status())) {
    return CancelledIn(TrainPhase::kSyntheticLabels, member, layout.members);
  }
  if (!labelled.ok()) return labelled.status();
  AddKnownAnomalies(xn, d, known, p.labeled_weight(), &*labelled);
  const LabelledSet& set = *labelled;
  out.synthetic = set.synthetic;
  if (IsCancelled(options)) return CancelledIn(TrainPhase::kSyntheticLabels, member, layout.members);
  const Split split = SplitValidation(set, p.validation_fraction(), rng);
  const int batch = static_cast<int>(std::min<int64_t>(p.batch_size(), split.n_train));
  const int64_t steps_per_epoch = std::max<int64_t>(1, split.n_train / batch);
  int max_epochs = p.max_epochs();
  if (p.min_steps() > 0) {
    const int64_t need = (p.min_steps() + steps_per_epoch - 1) / steps_per_epoch;
    max_epochs = static_cast<int>(std::clamp<int64_t>(need, max_epochs, std::max(max_epochs, kMaxStretchedEpochs)));
  }
  TrainingNetwork net(p, d, batch, rng);
  const std::vector<Param*> params = net.Params();
  out.network = net.ToProto();
  int since_best = 0;
  std::vector<int64_t> order(split.n_train);
  std::iota(order.begin(), order.end(), 0);
  std::vector<float> bx(static_cast<size_t>(batch) * d), by(batch);
  int64_t step = 0;
  ReportPhase(options, layout, TrainPhase::kEpochs, member, elapsed);
  for (int epoch = 1; epoch <= max_epochs; ++epoch) {
    rng.Shuffle(order.begin(), order.end());
    LossParts sum;
    int64_t batches = 0;
    for (int64_t at = 0; at + 1 < split.n_train; at += batch) {
      if (IsCancelled(options)) {
        absl::Status s = CancelledIn(TrainPhase::kEpochs, member, layout.members);
        return absl::CancelledError(absl::StrCat(s.message(), " in epoch ", epoch));
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
    out.epochs_run = epoch;
    EpochProgress progress;
    progress.epoch = epoch;
    progress.max_epochs = max_epochs;
    progress.member = member;
    progress.members = p.ensemble_size();
    progress.fraction = layout.At(member, TrainPhase::kEpochs,
                                  static_cast<double>(epoch) / std::max(max_epochs, 1));
    progress.train_loss = sum.total / std::max<int64_t>(batches, 1);
    progress.classification_loss = sum.classification / std::max<int64_t>(batches, 1);
    progress.reconstruction_loss = sum.reconstruction / std::max<int64_t>(batches, 1);
    out.last_train = progress.train_loss;
    progress.validation_loss =
        split.n_val > 0 ? net.EvalLoss(split.x_val.data(), split.y_val.data(), split.n_val).total
                        : progress.train_loss;
    if (!std::isfinite(progress.train_loss)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "training diverged in epoch ", epoch, " (loss is not finite); lower learning_rate"));
    }
    if (progress.validation_loss < out.best_loss) {
      out.best_loss = progress.validation_loss;
      out.best_epoch = epoch;
      out.network = net.ToProto();
      since_best = 0;
    } else {
      ++since_best;
    }
    progress.elapsed_seconds = elapsed();
    if (options.on_epoch) options.on_epoch(progress);
    if (p.patience() > 0 && since_best >= p.patience()) break;
  }
  return out;
}

// The rows of `v` (known.size() rows of `width` values) not marked in
// `known`.
std::vector<float> UnmarkedRows(const float* v, int width, const std::vector<char>& known) {
  std::vector<float> out;
  out.reserve(known.size() * width);
  for (size_t r = 0; r < known.size(); ++r) {
    if (!known[r]) out.insert(out.end(), v + r * width, v + (r + 1) * width);
  }
  return out;
}

// Scoring statistics of one network from the real training rows (no
// synthetic ones, and none marked in `known`: known anomalies): per-feature
// error scales, quantile tables, alpha, and the network's own threshold.
// `noise` and `err` receive every row's noise value (y_hat or logit) and
// reconstruction error. `known` is empty or has one entry per row.
absl::StatusOr<v1::ScoreStats> FitMemberStats(const v1::Network& network, const float* xn,
                                              int64_t rows, int d, const v1::TrainingParams& p,
                                              const std::vector<char>& known,
                                              std::vector<float>* noise, std::vector<float>* err,
                                              const TrainOptions& options, int member,
                                              int members) {
  const bool logit = p.noise_logit() && p.score_rule() == v1::SCORE_RULE_CALIBRATED;
  auto plan = InferencePlan::Compile(network, /*head_sigmoid=*/!logit);
  if (!plan.ok()) return plan.status();
  noise->assign(rows, 0.0f);
  err->assign(rows, 0.0f);
  std::vector<float> xhat(static_cast<size_t>(rows) * d);
  for (int64_t at = 0; at < rows; at += kRowBlock) {
    if (IsCancelled(options)) return CancelledIn(TrainPhase::kStatistics, member, members);
    const int64_t count = std::min(kRowBlock, rows - at);
    absl::Status s = (*plan)->Run(xn + at * d, count, noise->data() + at, xhat.data() + at * d);
    if (!s.ok()) return s;
  }
  if (IsCancelled(options)) return CancelledIn(TrainPhase::kStatistics, member, members);
  v1::ScoreStats scale;
  if (p.error_scaling()) {
    if (known.empty()) {
      FitErrorScale(xn, xhat.data(), rows, d, &scale, p.error_scale_trim());
    } else {
      const std::vector<float> x_normal = UnmarkedRows(xn, d, known);
      const std::vector<float> xhat_normal = UnmarkedRows(xhat.data(), d, known);
      FitErrorScale(x_normal.data(), xhat_normal.data(),
                    static_cast<int64_t>(x_normal.size()) / d, d, &scale, p.error_scale_trim());
    }
  }
  for (int64_t r = 0; r < rows; ++r) (*err)[r] = RowError(scale, xn + r * d, &xhat[r * d], d);
  v1::ScoreStats stats = known.empty() ? FitScoreStats(*noise, *err, p)
                                       : FitScoreStats(UnmarkedRows(noise->data(), 1, known),
                                                       UnmarkedRows(err->data(), 1, known), p);
  *stats.mutable_error_feature_scale() = scale.error_feature_scale();
  return stats;
}

}  // namespace

namespace {

// True when every row equals the first one.
bool AllColumnsConstant(const Dataset& data) {
  const size_t d = static_cast<size_t>(data.cols);
  for (size_t k = d; k < data.x.size(); ++k) {
    if (data.x[k] != data.x[k % d]) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> KnownAnomalyRows(const Dataset& data,
                                                      const v1::TrainingParams& p) {
  if (!p.use_labels() || !data.has_labels()) return std::vector<int64_t>();
  if (static_cast<int64_t>(data.labels.size()) != data.rows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the training data has ", data.labels.size(), " labels for ", data.rows,
        " rows; give one label per row (1 = known anomaly, 0 = unlabelled)"));
  }
  std::vector<int64_t> known;
  for (int64_t i = 0; i < data.rows; ++i) {
    const int label = data.labels[i];
    if (label != 0 && label != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "row ", i, " has label ", label, "; labels are 1 (known anomaly) or 0 (unlabelled)"));
    }
    if (label == 1) known.push_back(i);
  }
  if (static_cast<int64_t>(known.size()) == data.rows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "every one of the ", data.rows, " training rows is labelled a known anomaly, so none "
        "describes normal data; label only the anomalies you know (1) and leave the rest 0"));
  }
  return known;
}

const char* TrainPhaseName(TrainPhase phase) {
  switch (phase) {
    case TrainPhase::kPreparing: return "preparing the data";
    case TrainPhase::kSyntheticLabels: return "drawing synthetic labels";
    case TrainPhase::kEpochs: return "training";
    case TrainPhase::kStatistics: return "scoring statistics";
  }
  return "training";
}

absl::StatusOr<v1::ModelFile> TrainModel(const Dataset& data, const v1::TrainingParams& user,
                                         const TrainOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  std::function<double()> elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  if (data.rows < 10) {
    return absl::InvalidArgumentError(
        absl::StrCat("the training data has ", data.rows, " rows; at least 10 are needed"));
  }
  if (data.cols < 1 || static_cast<int64_t>(data.x.size()) != data.rows * data.cols) {
    return absl::InvalidArgumentError("the training data has no features or a wrong size");
  }
  if (AllColumnsConstant(data)) {
    // Every record is the same point: no score could tell one from another,
    // and the fitted threshold would flag all of them.
    return absl::InvalidArgumentError(absl::StrCat(
        "every feature of the training data is constant (all ", data.rows,
        " rows are the same record), so there is nothing to learn about what is normal; "
        "train on data whose features vary"));
  }
  auto resolved = ResolveParams(user, static_cast<int>(data.cols));
  if (!resolved.ok()) return resolved.status();
  const v1::TrainingParams& p = *resolved;
  auto known_rows = KnownAnomalyRows(data, p);
  if (!known_rows.ok()) return known_rows.status();
  const std::vector<int64_t>& known_idx = *known_rows;
  // What the known anomalies weigh: k / (k + labeled_prior) of
  // labeled_weight in the positives, and of the move from ae_weight to
  // labeled_ae_weight in the score (the statistics' parameters).
  v1::TrainingParams train_params = p, stats_params = p;
  if (!known_idx.empty()) {
    const double k = static_cast<double>(known_idx.size());
    const double share = k / (k + p.labeled_prior());
    train_params.set_labeled_weight(p.labeled_weight() * share);
    if (p.has_labeled_ae_weight()) {
      stats_params.set_ae_weight(p.ae_weight() + (p.labeled_ae_weight() - p.ae_weight()) * share);
    }
  }
  std::vector<char> known_mask;
  if (!known_idx.empty()) {
    known_mask.assign(data.rows, 0);
    for (int64_t k : known_idx) known_mask[k] = 1;
  }
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

  FitLayout layout;
  layout.members = p.ensemble_size();
  ReportPhase(options, layout, TrainPhase::kPreparing, 0, elapsed);
  if (IsCancelled(options)) return CancelledIn(TrainPhase::kPreparing, 0, layout.members);
  Rng rng(p.seed());
  v1::ModelFile model;
  *model.mutable_normalizer() = FitNormalizer(p.scaling(), data.x.data(), data.rows, d);
  std::vector<float> xn(data.x.size());
  if (absl::Status s = ApplyNormalizerPolled(model.normalizer(), data.x.data(), data.rows, d,
                                             xn.data(), options, 0, layout.members);
      !s.ok()) {
    return s;
  }

  try {
    // Member 0 draws from the model's generator exactly as a single network
    // always did; member m > 0 from its own generator seeded from it.
    const int members = p.ensemble_size();
    // Each member's weight in the ensemble score: 1 / members, or under
    // alternate_weight that share split among the alternate members.
    const bool has_alternate = p.alternate_scaling() != v1::Normalizer::KIND_UNSPECIFIED;
    const bool weighted = members > 1 && has_alternate && p.alternate_weight() > 0;
    auto member_weight = [&](int m) {
      if (!weighted) return 1.0 / members;
      const int alternates = members / 2;
      return m % 2 == 1 ? p.alternate_weight() / alternates
                        : (1.0 - p.alternate_weight()) / (members - alternates);
    };
    std::vector<double> surprisal(data.rows, 0.0);
    std::vector<float> noise, err;
    int64_t synthetic = 0;
    for (int m = 0; m < members; ++m) {
      Rng member_rng(m == 0 ? 0 : p.seed() * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(m));
      Rng& r = m == 0 ? rng : member_rng;
      // Odd members under alternate_scaling see the data scaled their way.
      const bool alternate =
          m % 2 == 1 && p.alternate_scaling() != v1::Normalizer::KIND_UNSPECIFIED;
      v1::Normalizer own_norm;
      std::vector<float> own_xn;
      if (alternate) {
        if (IsCancelled(options)) return CancelledIn(TrainPhase::kPreparing, m, members);
        own_norm = FitNormalizer(p.alternate_scaling(), data.x.data(), data.rows, d);
        own_xn.resize(data.x.size());
        if (absl::Status s = ApplyNormalizerPolled(own_norm, data.x.data(), data.rows, d,
                                                   own_xn.data(), options, m, members);
            !s.ok()) {
          return s;
        }
      }
      const float* member_xn = alternate ? own_xn.data() : xn.data();
      const float* rows_x = member_xn;
      int64_t n = data.rows;
      std::vector<float> subset;
      std::vector<int64_t> member_known = known_idx;  // indices into rows_x
      if (p.member_rows() > 0 && p.member_rows() < data.rows) {
        std::vector<int64_t> idx(data.rows);
        std::iota(idx.begin(), idx.end(), 0);
        r.Shuffle(idx.begin(), idx.end());
        n = std::max<int64_t>(p.member_rows(), 10);
        // Every known anomaly trains every member.
        for (int64_t i = n; i < data.rows; ++i) {
          if (!known_mask.empty() && known_mask[idx[i]]) std::swap(idx[n++], idx[i]);
        }
        idx.resize(n);
        std::sort(idx.begin(), idx.end());
        subset.resize(static_cast<size_t>(n) * d);
        member_known.clear();
        for (int64_t i = 0; i < n; ++i) {
          std::memcpy(&subset[i * d], &member_xn[idx[i] * d], d * sizeof(float));
          if (!known_mask.empty() && known_mask[idx[i]]) member_known.push_back(i);
        }
        rows_x = subset.data();
      }
      // The alternate members' own noise scale (alternate_noise_scale).
      v1::TrainingParams member_params = train_params;
      if (alternate && p.alternate_noise_scale() > 0)
        member_params.set_noise_scale(p.alternate_noise_scale());
      auto trained = TrainOneNetwork(rows_x, n, d, member_params, r, options, elapsed, m, layout,
                                     member_known);
      if (!trained.ok()) return trained.status();
      ReportPhase(options, layout, TrainPhase::kStatistics, m, elapsed);
      auto stats = FitMemberStats(trained->network, member_xn, data.rows, d, stats_params,
                                  known_mask, &noise, &err, options, m, members);
      if (!stats.ok()) return stats.status();
      synthetic += trained->synthetic;
      if (m == 0) {
        *model.mutable_network() = std::move(trained->network);
        *model.mutable_score_stats() = *std::move(stats);
        v1::TrainingSummary* summary = model.mutable_summary();
        summary->set_epochs_run(trained->epochs_run);
        summary->set_best_epoch(trained->best_epoch);
        summary->set_best_validation_loss(trained->best_loss);
        summary->set_final_train_loss(trained->last_train);
      } else {
        v1::EnsembleMember* member = model.add_ensemble();
        *member->mutable_network() = std::move(trained->network);
        *member->mutable_score_stats() = *std::move(stats);
        if (alternate) *member->mutable_normalizer() = std::move(own_norm);
      }
      if (members > 1) {
        v1::ScoreStats& ms = m == 0 ? *model.mutable_score_stats()
                                    : *model.mutable_ensemble(m - 1)->mutable_score_stats();
        if (weighted) {
          ms.set_member_weight(member_weight(m));
          for (int64_t i = 0; i < data.rows; ++i)
            surprisal[i] += ms.member_weight() * MemberSurprisal(ms, noise[i], err[i]);
        } else {
          for (int64_t i = 0; i < data.rows; ++i) surprisal[i] += MemberSurprisal(ms, noise[i], err[i]);
        }
      }
    }
    if (members > 1) {
      // The ensemble's threshold, over its own scores of the training rows
      // (known anomalies aside).
      std::vector<float> scores;
      scores.reserve(data.rows);
      for (int64_t i = 0; i < data.rows; ++i) {
        if (!known_mask.empty() && known_mask[i]) continue;
        scores.push_back(SurprisalToScore(weighted ? surprisal[i] : surprisal[i] / members));
      }
      const double threshold = Quantile(scores, 1.0 - p.contamination());
      model.mutable_score_stats()->set_threshold(threshold);
      for (auto& member : *model.mutable_ensemble()) member.mutable_score_stats()->set_threshold(threshold);
    }
    *model.mutable_params() = p;
    v1::TrainingSummary* summary = model.mutable_summary();
    summary->set_rows(data.rows);
    summary->set_features(d);
    summary->set_synthetic_rows(synthetic);
    summary->set_known_anomalies(static_cast<int64_t>(known_idx.size()));
    summary->set_seconds(elapsed());
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN failed during training: ", e.what()));
  }
  for (const auto& name : data.feature_names) model.add_feature_names(name);
  if (IsCancelled(options)) return CancelledIn(TrainPhase::kStatistics, 0, layout.members);
  {
    // What the training data looked like, for drift detection: the model
    // compiled as a server would, scoring a sample of the training rows.
    auto compiled = CompiledModel::Create(model);
    if (!compiled.ok()) return compiled.status();
    auto profile = FitDriftProfile(**compiled, data.x.data(), data.rows, d, p.seed());
    if (!profile.ok()) return profile.status();
    *model.mutable_drift_profile() = *std::move(profile);
  }
  model.set_created_unix_seconds(
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch()).count());
  model.set_producer("anorand 0.1.0");
  return model;
}

}  // namespace anorand
