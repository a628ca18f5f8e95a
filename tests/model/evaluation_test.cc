// The ADBench protocol on one real dataset (skipped without ../shared).
#include "model/evaluation.h"

#include <cmath>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "model/data/data_loader.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

TEST(EvaluationTest, RunsTheProtocolOnARealDataset) {
  ANORAND_REQUIRE_SHARED(path, "datasets/adbench/42_WBC.npz");
  LoadOptions lo;
  lo.require_labels = true;
  auto data = LoadDataset(path, lo);
  ASSERT_TRUE(data.ok()) << data.status().message();
  v1::TrainingParams p;
  p.set_max_epochs(10);
  auto r = EvaluateSeed(*data, p, 1);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(r->auc_roc, 0.5);  // WBC is easy; a broken pipeline lands near 0.5 or below
  EXPECT_LE(r->auc_roc, 1.0);
  EXPECT_GT(r->auc_pr, 0.0);
  // Each block alone, both metrics (WBC: both blocks rank well above chance).
  EXPECT_GT(r->auc_roc_noise, 0.5);
  EXPECT_GT(r->auc_roc_reconstruction, 0.5);
  EXPECT_GT(r->auc_pr_noise, 0.0);
  EXPECT_LE(r->auc_pr_noise, 1.0);
  EXPECT_GT(r->auc_pr_reconstruction, 0.0);
  EXPECT_LE(r->auc_pr_reconstruction, 1.0);
  EXPECT_GT(r->fit_seconds, 0.0);
  // The same seed gives the same split and model.
  auto again = EvaluateSeed(*data, p, 1);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->auc_roc, r->auc_roc);
}

TEST(EvaluationTest, MaxRowsCapsTheRowsBeforeTheSplit) {
  Dataset d = DemoData(12000, 3, 1);
  ASSERT_TRUE(d.has_labels());
  v1::TrainingParams p;
  p.set_max_epochs(1);
  p.set_min_steps(0);
  p.set_ensemble_size(1);
  for (const auto& [max_rows, expected] :
       {std::pair<int64_t, int64_t>{kProtocolMaxRows, 10000}, {0, 12000}, {2000, 2000}}) {
    auto r = EvaluateSeed(d, p, 1, {}, max_rows);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->train_rows + r->test_rows, expected) << "max_rows " << max_rows;
    EXPECT_GT(r->train_rows, 2 * r->test_rows) << "a 70/30 split";
  }
}

TEST(EvaluationTest, PicksTheLabelledShareOfTheTrainingAnomaliesAtLeastOne) {
  std::vector<int> labels(200, 0);
  for (int i = 0; i < 200; i += 10) labels[i] = 1;  // 20 anomalies
  EXPECT_TRUE(PickLabeledAnomalies(labels, 0, 1).empty());
  for (const auto& [fraction, expected] :
       {std::pair<double, size_t>{0.01, 1}, {0.05, 1}, {0.25, 5}, {0.26, 6}, {1.0, 20}}) {
    const std::vector<int64_t> picked = PickLabeledAnomalies(labels, fraction, 1);
    ASSERT_EQ(picked.size(), expected) << fraction;
    for (int64_t i : picked) EXPECT_EQ(labels[i], 1) << "row " << i << " is not an anomaly";
  }
  EXPECT_NE(PickLabeledAnomalies(labels, 0.25, 1), PickLabeledAnomalies(labels, 0.25, 2));
  EXPECT_EQ(PickLabeledAnomalies(labels, 0.25, 3), PickLabeledAnomalies(labels, 0.25, 3));
  EXPECT_TRUE(PickLabeledAnomalies(std::vector<int>(50, 0), 0.5, 1).empty());
}

TEST(EvaluationTest, ReportsTheLabelledAnomaliesAndRefusesABadFraction) {
  Dataset d = DemoData(2000, 3, 1);
  v1::TrainingParams p;
  p.set_max_epochs(1);
  p.set_min_steps(0);
  p.set_ensemble_size(1);
  int64_t anomalies = 0;
  for (int v : d.labels) anomalies += v;
  ASSERT_GT(anomalies, 4);
  auto none = EvaluateSeed(d, p, 1);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_EQ(none->labeled_anomalies, 0);
  auto all = EvaluateSeed(d, p, 1, {}, kProtocolMaxRows, 1.0);
  ASSERT_TRUE(all.ok()) << all.status().message();
  // Every training anomaly: the anomalies outside the 30% test share.
  EXPECT_EQ(all->labeled_anomalies, anomalies - std::llround(0.3 * anomalies));
  EXPECT_EQ(all->train_rows, none->train_rows);
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    EXPECT_EQ(EvaluateSeed(d, p, 1, {}, kProtocolMaxRows, bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(EvaluationTest, NeedsLabels) {
  Dataset d = DemoData(100, 3, 1);
  d.labels.clear();
  EXPECT_EQ(EvaluateSeed(d, v1::TrainingParams(), 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace anorand::test_support
