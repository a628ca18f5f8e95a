#include "server/drift_report.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace anorand {

std::vector<std::string> DriftFeatureLabels(const CompiledModel& model) {
  const int d = model.input_features();
  const auto& names = model.info().feature_names();
  std::vector<std::string> labels(static_cast<size_t>(d));
  std::map<std::string, int> uses;
  for (const std::string& n : names) ++uses[n];
  for (int j = 0; j < d; ++j) {
    if (names.size() != d) {
      labels[j] = absl::StrCat("#", j);
    } else if (names[j].empty() || uses[names[j]] > 1) {
      labels[j] = absl::StrCat(names[j], "#", j);
    } else {
      labels[j] = names[j];
    }
  }
  return labels;
}

std::vector<FeatureDriftStats> WorstFeatures(std::vector<FeatureDriftStats> features, int top) {
  const size_t keep = std::min(features.size(), static_cast<size_t>(std::max(top, 0)));
  std::partial_sort(features.begin(), features.begin() + keep, features.end(),
                    [](const FeatureDriftStats& a, const FeatureDriftStats& b) {
                      return a.psi != b.psi ? a.psi > b.psi : a.feature < b.feature;
                    });
  features.resize(keep);
  return features;
}

void FillDriftReport(const std::string& name, int64_t version, const CompiledModel& model,
                     const DriftWindow* drift, int top, v1::DriftReport* report) {
  report->set_model_name(name);
  report->set_version(version);
  report->set_tracked(drift != nullptr);
  if (!drift) return;
  const DriftStats stats = drift->Stats();
  report->set_observed_records(stats.observed);
  report->set_window_records(stats.window);
  report->set_window_capacity(drift->window_records());
  report->set_score_psi(stats.score_psi);
  report->set_out_of_range_ratio(stats.out_of_range);
  const std::vector<std::string> labels = DriftFeatureLabels(model);
  for (const FeatureDriftStats& f : WorstFeatures(stats.features, top)) {
    v1::FeatureDrift* out = report->add_worst_features();
    out->set_index(f.feature);
    out->set_name(labels[f.feature]);
    out->set_psi(f.psi);
    out->set_out_of_range_ratio(f.out_of_range);
  }
}

}  // namespace anorand
