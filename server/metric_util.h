// File: metric_util.h
//
// Small helpers of the collectors that build metric families on each
// scrape (metrics.cc, drift_metrics.cc, shadow_metrics.cc,
// reservoir_metrics.cc).
#ifndef ANORAND_SERVER_METRIC_UTIL_H_
#define ANORAND_SERVER_METRIC_UTIL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "prometheus/client_metric.h"

namespace anorand {

// A gauge sample with these labels.
inline prometheus::ClientMetric GaugeMetric(std::vector<prometheus::ClientMetric::Label> labels,
                                            double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

// A version's label value: "" for 0 (none resolved).
inline std::string VersionLabel(int64_t v) { return v > 0 ? std::to_string(v) : std::string(); }

}  // namespace anorand

#endif  // ANORAND_SERVER_METRIC_UTIL_H_
