// File: shadow_metrics.h
//
// The anorand_shadow_* metric families, read from the shadow scorer's
// comparisons (shadow.h) on each scrape: records compared, rank
// correlation, flag disagreement by direction and score quantiles per
// (model, version, shadow_version), and records dropped per model (from 0
// once a shadow compares, so that rate() sees the first drop).
#ifndef ANORAND_SERVER_SHADOW_METRICS_H_
#define ANORAND_SERVER_SHADOW_METRICS_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/shadow.h"

namespace anorand {

class ShadowCollector final : public prometheus::Collectable {
 public:
  // `shadow` must outlive the collector.
  explicit ShadowCollector(const ShadowScorer* shadow) : shadow_(shadow) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const ShadowScorer* shadow_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_SHADOW_METRICS_H_
