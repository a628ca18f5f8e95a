// File: process_collector.h
//
// The standard process_* metric families (CPU seconds, virtual and
// resident memory, start time, open and maximum file descriptors), read
// from /proc/self on each scrape: prometheus-cpp 1.0 has no process
// collector. Linux only.
#ifndef ANORAND_SERVER_PROCESS_COLLECTOR_H_
#define ANORAND_SERVER_PROCESS_COLLECTOR_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace anorand {

class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_PROCESS_COLLECTOR_H_
