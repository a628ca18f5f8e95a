#include "model/compiled_model.h"

#include <atomic>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/model_file.h"
#include "model/normalizer.h"
#include "model/score_rule.h"

namespace anorand {
namespace {
std::atomic<int64_t> live_models{0};
}  // namespace

CompiledModel::CompiledModel() { live_models.fetch_add(1); }
CompiledModel::~CompiledModel() { live_models.fetch_sub(1); }
int64_t CompiledModel::LiveCount() { return live_models.load(); }

absl::StatusOr<std::shared_ptr<const CompiledModel>> CompiledModel::Create(v1::ModelFile file) {
  if (absl::Status s = ValidateModel(file); !s.ok()) return s;
  std::shared_ptr<CompiledModel> m(new CompiledModel());
  auto add = [&](const v1::Network& net, const v1::ScoreStats& stats) -> absl::Status {
    auto plan = InferencePlan::Compile(net, /*head_sigmoid=*/!stats.noise_logit());
    if (!plan.ok()) return plan.status();
    m->plans_.push_back(std::move(plan).value());
    return absl::OkStatus();
  };
  if (absl::Status s = add(file.network(), file.score_stats()); !s.ok()) return s;
  for (const auto& member : file.ensemble()) {
    if (absl::Status s = add(member.network(), member.score_stats()); !s.ok()) return s;
  }
  // An ensemble's members side by side in one plan for small batches
  // (InferencePlan::CompileGroup: 2.2x faster for one record with 4
  // members); members that differ in shape keep only their own plans.
  if (file.ensemble_size() > 0) {
    std::vector<const v1::Network*> nets = {&file.network()};
    bool same_head = true;
    for (const auto& member : file.ensemble()) {
      nets.push_back(&member.network());
      same_head &= member.score_stats().noise_logit() == file.score_stats().noise_logit();
    }
    if (same_head) {
      auto group = InferencePlan::CompileGroup(nets, !file.score_stats().noise_logit(),
                                               kGroupMaxRows);
      if (group.ok()) m->group_ = std::move(group).value();
    }
  }
  file.clear_network();
  for (auto& member : *file.mutable_ensemble()) member.clear_network();
  m->info_ = std::move(file);
  m->stats_.push_back(&m->info_.score_stats());
  m->norms_.push_back(nullptr);
  for (const auto& member : m->info_.ensemble()) {
    m->stats_.push_back(&member.score_stats());
    m->norms_.push_back(member.has_normalizer() ? &member.normalizer() : nullptr);
  }
  if (m->stats_.size() > 1 && m->stats_[0]->member_weight() > 0) {
    for (const v1::ScoreStats* s : m->stats_) m->weights_.push_back(s->member_weight());
  }
  return std::shared_ptr<const CompiledModel>(std::move(m));
}

absl::Status CompiledModel::Score(const float* x, int64_t rows, const ScoreOutputs& out) const {
  const int d = input_features();
  for (int64_t i = 0; i < rows * d; ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "record ", i / d, ", feature ", i % d, " is ", x[i],
          "; every value must be a finite number (impute or drop missing values first)"));
    }
  }
  std::vector<float> xn(static_cast<size_t>(rows) * d), xhat(xn.size()), yhat(rows);
  ApplyNormalizer(info_.normalizer(), x, rows, d, xn.data());
  const v1::ScoreStats& stats = info_.score_stats();
  const int members = static_cast<int>(plans_.size());
  if (members == 1) {
    if (absl::Status s = plans_[0]->Run(xn.data(), rows, yhat.data(), xhat.data()); !s.ok())
      return s;
    std::vector<double> terms(d);
    for (int64_t r = 0; r < rows; ++r) {
      const float e = RowError(stats, &xn[r * d], &xhat[r * d], d, terms.data());
      const float score = CombineScore(stats, yhat[r], e);
      if (out.score) out.score[r] = score;
      if (out.is_anomaly) out.is_anomaly[r] = score >= stats.threshold();
      if (out.noise_probability)
        out.noise_probability[r] = stats.noise_logit() ? Sigmoid(yhat[r]) : yhat[r];
      if (out.reconstruction_probability) out.reconstruction_probability[r] = Sigmoid(e);
      if (out.reconstruction_error) out.reconstruction_error[r] = e;
      if (out.contributions) {
        double sum = 0;
        for (int c = 0; c < d; ++c) sum += terms[c];
        float* c_out = out.contributions + r * d;
        for (int c = 0; c < d; ++c) c_out[c] = sum > 0 ? static_cast<float>(terms[c] / sum) : 1.0f / d;
      }
    }
    return absl::OkStatus();
  }
  // Ensemble (calibrated rule only, ValidateModel checks): the mean of the
  // members' surprisals, or their weighted sum when the model stores
  // member weights; the block outputs reported are member means.
  std::vector<double> surprisal(rows, 0.0), prob(rows, 0.0), err(rows, 0.0);
  std::vector<double> contrib(out.contributions ? static_cast<size_t>(rows) * d : 0, 0.0);
  std::vector<double> terms(d);
  std::vector<float> own;  // a member's own scaling of the records
  // Small batches: every member in one call of the group plan, inputs and
  // outputs member after member.
  const size_t n = xn.size();
  const bool grouped = group_ != nullptr && rows <= kGroupMaxRows;
  std::vector<float> group_in, group_yhat, group_xhat;
  if (grouped) {
    group_in.resize(members * n);
    group_yhat.resize(members * rows);
    group_xhat.resize(members * n);
    for (int m = 0; m < members; ++m) {
      if (norms_[m] != nullptr) {
        ApplyNormalizer(*norms_[m], x, rows, d, &group_in[m * n]);
      } else {
        std::copy(xn.begin(), xn.end(), group_in.begin() + m * n);
      }
    }
    if (absl::Status s = group_->Run(group_in.data(), rows, group_yhat.data(), group_xhat.data());
        !s.ok())
      return s;
  }
  for (int m = 0; m < members; ++m) {
    const v1::ScoreStats& ms = *stats_[m];
    const float* in = xn.data();
    const float* y_hat = yhat.data();
    const float* x_hat = xhat.data();
    if (grouped) {
      in = &group_in[m * n];
      y_hat = &group_yhat[m * rows];
      x_hat = &group_xhat[m * n];
    } else {
      if (norms_[m] != nullptr) {
        own.resize(n);
        ApplyNormalizer(*norms_[m], x, rows, d, own.data());
        in = own.data();
      }
      if (absl::Status s = plans_[m]->Run(in, rows, yhat.data(), xhat.data()); !s.ok())
        return s;
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float e = RowError(ms, &in[r * d], &x_hat[r * d], d, terms.data());
      surprisal[r] += weights_.empty() ? MemberSurprisal(ms, y_hat[r], e)
                                       : weights_[m] * MemberSurprisal(ms, y_hat[r], e);
      prob[r] += ms.noise_logit() ? Sigmoid(y_hat[r]) : y_hat[r];
      err[r] += e;
      if (out.contributions) {
        double sum = 0;
        for (int c = 0; c < d; ++c) sum += terms[c];
        for (int c = 0; c < d; ++c) contrib[r * d + c] += sum > 0 ? terms[c] / sum : 1.0 / d;
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float score = SurprisalToScore(weights_.empty() ? surprisal[r] / members : surprisal[r]);
    const float e = static_cast<float>(err[r] / members);
    if (out.score) out.score[r] = score;
    if (out.is_anomaly) out.is_anomaly[r] = score >= stats.threshold();
    if (out.noise_probability) out.noise_probability[r] = static_cast<float>(prob[r] / members);
    if (out.reconstruction_probability) out.reconstruction_probability[r] = Sigmoid(e);
    if (out.reconstruction_error) out.reconstruction_error[r] = e;
    if (out.contributions) {
      for (int c = 0; c < d; ++c)
        out.contributions[r * d + c] = static_cast<float>(contrib[r * d + c] / members);
    }
  }
  return absl::OkStatus();
}

}  // namespace anorand
