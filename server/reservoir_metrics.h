// File: reservoir_metrics.h
//
// The anorand_reservoir_* metric families, read from the reservoirs
// (reservoirs.h) on each scrape, one series per model that keeps one:
//   anorand_reservoir_records{model}       records kept now (both halves)
//   anorand_reservoir_seen_records{model}  records offered in the halves' periods
//   anorand_reservoir_bytes{model}         bytes of the values kept
#ifndef ANORAND_SERVER_RESERVOIR_METRICS_H_
#define ANORAND_SERVER_RESERVOIR_METRICS_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/reservoirs.h"

namespace anorand {

class ReservoirCollector final : public prometheus::Collectable {
 public:
  // `reservoirs` must outlive the collector.
  explicit ReservoirCollector(ReservoirSet* reservoirs) : reservoirs_(reservoirs) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  ReservoirSet* reservoirs_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_RESERVOIR_METRICS_H_
