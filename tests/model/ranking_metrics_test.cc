#include "model/ranking_metrics.h"

#include <cmath>

#include "gtest/gtest.h"

namespace anorand {
namespace {

// Reference values from sklearn.metrics (roc_auc_score,
// average_precision_score) on the same inputs, worked by hand here.
TEST(MetricsTest, AucRocMatchesSklearnIncludingTies) {
  EXPECT_DOUBLE_EQ(AucRoc({0.1f, 0.4f, 0.35f, 0.8f}, {0, 0, 1, 1}), 0.75);
  EXPECT_DOUBLE_EQ(AucRoc({0.5f, 0.5f, 0.5f, 0.5f}, {0, 1, 0, 1}), 0.5);
  EXPECT_DOUBLE_EQ(AucRoc({1, 2, 3, 4}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(AucRoc({4, 3, 2, 1}, {0, 0, 1, 1}), 0.0);
  EXPECT_TRUE(std::isnan(AucRoc({1, 2}, {1, 1})));
}

TEST(MetricsTest, AveragePrecisionMatchesSklearn) {
  // sklearn: average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.8333...
  EXPECT_NEAR(AveragePrecision({0.1f, 0.4f, 0.35f, 0.8f}, {0, 0, 1, 1}), 0.833333333, 1e-9);
  EXPECT_DOUBLE_EQ(AveragePrecision({1, 2, 3, 4}, {0, 0, 1, 1}), 1.0);
  // All tied: precision at the single threshold is the positive rate.
  EXPECT_DOUBLE_EQ(AveragePrecision({1, 1, 1, 1}, {0, 1, 0, 0}), 0.25);
}

}  // namespace
}  // namespace anorand
