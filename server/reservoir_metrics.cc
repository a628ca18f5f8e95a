#include "server/reservoir_metrics.h"

#include <string>
#include <utility>

#include "server/metric_util.h"

namespace anorand {

std::vector<prometheus::MetricFamily> ReservoirCollector::Collect() const {
  using prometheus::MetricType;
  prometheus::MetricFamily rows{"anorand_reservoir_records",
                                "Records the model's reservoir of recent traffic keeps now.",
                                MetricType::Gauge, {}};
  prometheus::MetricFamily seen{"anorand_reservoir_seen_records",
                                "Records offered to the reservoir during its two halves' periods.",
                                MetricType::Gauge, {}};
  prometheus::MetricFamily bytes{"anorand_reservoir_bytes",
                                 "Bytes of feature values the reservoir keeps now.",
                                 MetricType::Gauge, {}};
  for (const ReservoirStats& s : reservoirs_->Stats()) {
    for (auto [family, value] : {std::pair{&rows, s.rows}, {&seen, s.seen}, {&bytes, s.bytes}}) {
      family->metric.push_back(GaugeMetric({{"model", s.model}}, static_cast<double>(value)));
    }
  }
  if (rows.metric.empty()) return {};
  return {std::move(rows), std::move(seen), std::move(bytes)};
}

}  // namespace anorand
