#include "server/drift_metrics.h"

#include <algorithm>
#include <string>

#include "server/drift_report.h"
#include "server/metric_util.h"

namespace anorand {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

std::vector<MetricFamily> DriftCollector::Collect() const {
  MetricFamily window{"anorand_drift_window_records",
                      "Recent records scored by the version that its drift figures describe "
                      "(at most --drift_window_records).",
                      MetricType::Gauge,
                      {}};
  MetricFamily score{"anorand_score_drift_psi",
                     "Population stability index of the version's scores over the drift "
                     "window against its scores of the training data (> 0.25: a major shift).",
                     MetricType::Gauge,
                     {}};
  MetricFamily feature{"anorand_feature_drift_psi",
                       "Population stability index of a feature over the drift window against "
                       "the training data; feature=\"other_max\": the largest of the features "
                       "beyond --drift_feature_series.",
                       MetricType::Gauge,
                       {}};
  MetricFamily out{"anorand_drift_out_of_range_ratio",
                   "Share of the drift window with at least one feature outside its training "
                   "range.",
                   MetricType::Gauge,
                   {}};
  // The snapshot holds the windows alive; the figures are computed with no
  // registry lock held.
  for (const auto& [name, entry] : models_->Snapshot()) {
    for (const auto& [version, v] : entry.versions) {
      if (v.state != VersionState::kReady || !v.drift || !v.model) continue;
      const DriftStats stats = v.drift->Stats();
      const std::vector<ClientMetric::Label> labels = {{"model", name},
                                                       {"version", std::to_string(version)}};
      window.metric.push_back(GaugeMetric(labels, static_cast<double>(stats.window)));
      if (stats.window < v.drift->window_records() / 2) continue;
      score.metric.push_back(GaugeMetric(labels, stats.score_psi));
      out.metric.push_back(GaugeMetric(labels, stats.out_of_range));
      const std::vector<std::string> names = DriftFeatureLabels(*v.model);
      const int own = std::min(static_cast<int>(stats.features.size()), feature_series_);
      for (int j = 0; j < own; ++j) {
        std::vector<ClientMetric::Label> l = labels;
        l.push_back({"feature", names[j]});
        feature.metric.push_back(GaugeMetric(std::move(l), stats.features[j].psi));
      }
      if (own < static_cast<int>(stats.features.size())) {
        double worst = 0;
        for (size_t j = own; j < stats.features.size(); ++j)
          worst = std::max(worst, stats.features[j].psi);
        std::vector<ClientMetric::Label> l = labels;
        l.push_back({"feature", "other_max"});
        feature.metric.push_back(GaugeMetric(std::move(l), worst));
      }
    }
  }
  return {std::move(window), std::move(score), std::move(feature), std::move(out)};
}

}  // namespace anorand
