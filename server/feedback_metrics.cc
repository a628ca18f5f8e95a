#include "server/feedback_metrics.h"

#include <string>
#include <utility>

#include "server/metric_util.h"

namespace anorand {

std::vector<prometheus::MetricFamily> FeedbackCollector::Collect() const {
  using prometheus::MetricType;
  prometheus::MetricFamily records{"anorand_feedback_records",
                                   "Operators' feedback records stored for the model, by label.",
                                   MetricType::Gauge, {}};
  prometheus::MetricFamily skipped{
      "anorand_feedback_skipped_lines",
      "Lines of the model's feedback file that are not a record (torn by a crash, or edited).",
      MetricType::Gauge, {}};
  for (const auto& [model, entry] : models_->Snapshot()) {
    auto tally = store_->Count(model);
    if (!tally.ok() || (tally->records() == 0 && tally->skipped_lines == 0)) continue;
    records.metric.push_back(GaugeMetric({{"model", model}, {"label", "anomaly"}},
                                         static_cast<double>(tally->anomalies)));
    records.metric.push_back(GaugeMetric({{"model", model}, {"label", "normal"}},
                                         static_cast<double>(tally->normal)));
    skipped.metric.push_back(
        GaugeMetric({{"model", model}}, static_cast<double>(tally->skipped_lines)));
  }
  if (records.metric.empty()) return {};
  return {std::move(records), std::move(skipped)};
}

}  // namespace anorand
