// File: retrain_metrics.h
//
// The anorand_retrain_* metric families, read from the retrain loop
// (retrain_loop.h) on each scrape, for the models with a policy:
//   anorand_retrain_stage{model,stage}         1 for the model's stage, 0
//                                              for the others (watching,
//                                              training, shadowing, held,
//                                              paused)
//   anorand_retrain_events_total{model,kind}   history events this process
//                                              recorded since it started
#ifndef ANORAND_SERVER_RETRAIN_METRICS_H_
#define ANORAND_SERVER_RETRAIN_METRICS_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/retrain_loop.h"

namespace anorand {

class RetrainCollector final : public prometheus::Collectable {
 public:
  // `loop` must outlive the collector.
  explicit RetrainCollector(const RetrainLoop* loop) : loop_(loop) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const RetrainLoop* loop_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_RETRAIN_METRICS_H_
