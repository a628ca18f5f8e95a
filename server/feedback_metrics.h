// File: feedback_metrics.h
//
// The anorand_feedback_* metric families, one series per model of the
// registry that has feedback, read from the store (feedback_store.h) on
// each scrape (only the bytes appended since the last read):
//   anorand_feedback_records{model,label}   records stored, label
//                                           "anomaly" or "normal"
//   anorand_feedback_skipped_lines{model}   lines of the file that are not
//                                           a record (torn, edited)
#ifndef ANORAND_SERVER_FEEDBACK_METRICS_H_
#define ANORAND_SERVER_FEEDBACK_METRICS_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/feedback_store.h"
#include "server/registry.h"

namespace anorand {

class FeedbackCollector final : public prometheus::Collectable {
 public:
  // Both must outlive the collector.
  FeedbackCollector(const Registry* models, FeedbackStore* store)
      : models_(models), store_(store) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const Registry* models_;
  FeedbackStore* store_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_FEEDBACK_METRICS_H_
