// File: drift_metrics.h
//
// The anorand_*drift* metric families, read from the registry's drift
// windows (drift_window.h) on each scrape:
//   anorand_drift_window_records{model,version}    records the figures describe
//   anorand_score_drift_psi{model,version}         PSI of the score
//   anorand_feature_drift_psi{model,version,feature}
//   anorand_drift_out_of_range_ratio{model,version}
// for every READY version whose drift is tracked. The PSI and ratio series
// appear once the window holds half of --drift_window_records, so that a
// version that has just loaded does not alert on a handful of records.
// Label values stay bounded: the first `feature_series` features of a
// version have a series each, labelled as DriftFeatureLabels says; the PSI
// of the rest is folded into one series, feature="other_max", their largest.
#ifndef ANORAND_SERVER_DRIFT_METRICS_H_
#define ANORAND_SERVER_DRIFT_METRICS_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/registry.h"

namespace anorand {

class DriftCollector final : public prometheus::Collectable {
 public:
  // `models` must outlive the collector.
  DriftCollector(const Registry* models, int feature_series)
      : models_(models), feature_series_(feature_series) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const Registry* models_;
  const int feature_series_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_DRIFT_METRICS_H_
