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
  auto plan = InferencePlan::Compile(file.network());
  if (!plan.ok()) return plan.status();
  std::shared_ptr<CompiledModel> m(new CompiledModel());
  m->plan_ = std::move(plan).value();
  file.clear_network();
  m->info_ = std::move(file);
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
  if (absl::Status s = plan_->Run(xn.data(), rows, yhat.data(), xhat.data()); !s.ok()) return s;
  const v1::ScoreStats& stats = info_.score_stats();
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = &xn[r * d];
    const float* b = &xhat[r * d];
    double sum = 0;
    for (int c = 0; c < d; ++c) sum += (a[c] - b[c]) * static_cast<double>(a[c] - b[c]);
    const float e = static_cast<float>(sum / d);
    const float score = CombineScore(stats, yhat[r], e);
    if (out.score) out.score[r] = score;
    if (out.is_anomaly) out.is_anomaly[r] = score >= stats.threshold();
    if (out.noise_probability) out.noise_probability[r] = yhat[r];
    if (out.reconstruction_probability) out.reconstruction_probability[r] = Sigmoid(e);
    if (out.reconstruction_error) out.reconstruction_error[r] = e;
    if (out.contributions) {
      float* c_out = out.contributions + r * d;
      for (int c = 0; c < d; ++c) {
        const double sq = (a[c] - b[c]) * static_cast<double>(a[c] - b[c]);
        c_out[c] = sum > 0 ? static_cast<float>(sq / sum) : 1.0f / d;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace anorand
