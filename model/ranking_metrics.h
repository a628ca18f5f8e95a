// File: ranking_metrics.h
//
// Ranking metrics for anomaly scores (higher score = more anomalous):
// AUC-ROC (ties count one half, as sklearn's roc_auc_score) and average
// precision (sklearn's average_precision_score: tied scores form one
// threshold). Pure functions. Both return NaN when one class is missing.
#ifndef ANORAND_MODEL_RANKING_METRICS_H_
#define ANORAND_MODEL_RANKING_METRICS_H_

#include <vector>

namespace anorand {

double AucRoc(const std::vector<float>& scores, const std::vector<int>& labels);
double AveragePrecision(const std::vector<float>& scores, const std::vector<int>& labels);

}  // namespace anorand

#endif  // ANORAND_MODEL_RANKING_METRICS_H_
