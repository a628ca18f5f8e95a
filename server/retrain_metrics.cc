#include "server/retrain_metrics.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "server/metric_util.h"

namespace anorand {
namespace {

// "RETRAIN_STAGE_HELD" -> "held", "MODEL_EVENT_PROMOTED" -> "promoted".
std::string Label(const std::string& enum_name, const std::string& prefix) {
  return absl::AsciiStrToLower(enum_name.substr(prefix.size()));
}

}  // namespace

std::vector<prometheus::MetricFamily> RetrainCollector::Collect() const {
  using prometheus::MetricType;
  prometheus::MetricFamily stage{
      "anorand_retrain_stage",
      "1 for the stage the model's retrain policy is in (held: a retrained version failed its "
      "comparison and waits for an operator), 0 for the others.",
      MetricType::Gauge, {}};
  prometheus::MetricFamily events{"anorand_retrain_events_total",
                                  "Retrain history events this process recorded, by kind.",
                                  MetricType::Counter, {}};
  for (const auto& [model, status] : loop_->StatusAll()) {
    for (v1::RetrainStage s : {v1::RETRAIN_STAGE_WATCHING, v1::RETRAIN_STAGE_TRAINING,
                               v1::RETRAIN_STAGE_SHADOWING, v1::RETRAIN_STAGE_HELD,
                               v1::RETRAIN_STAGE_PAUSED}) {
      stage.metric.push_back(
          GaugeMetric({{"model", model}, {"stage", Label(v1::RetrainStage_Name(s), "RETRAIN_STAGE_")}},
                      status.stage() == s ? 1 : 0));
    }
  }
  for (const auto& [key, count] : loop_->EventCounts()) {
    prometheus::ClientMetric m;
    m.label = {{"model", key.first},
               {"kind", Label(v1::ModelEventKind_Name(key.second), "MODEL_EVENT_")}};
    m.counter.value = static_cast<double>(count);
    events.metric.push_back(std::move(m));
  }
  std::vector<prometheus::MetricFamily> out;
  if (!stage.metric.empty()) out.push_back(std::move(stage));
  if (!events.metric.empty()) out.push_back(std::move(events));
  return out;
}

}  // namespace anorand
