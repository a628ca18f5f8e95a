// Training with known anomalies (TrainingParams.use_labels): which rows
// count, the errors for labels that cannot be used, and what they buy: a
// cluster of anomalies that sits inside the normal range, which the
// unsupervised fit ranks poorly, is found once a few of its rows are
// labelled.
#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/ranking_metrics.h"
#include "model/rng.h"
#include "model/trainer.h"

namespace anorand::test_support {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int kD = 4;

// `normal` rows from N(0, 1) and `hidden` rows from a tight cluster at
// (1.5, 1.5, 0, 0), inside the normal range; labels 1 for the cluster.
Dataset Mixture(int64_t normal, int64_t hidden, uint64_t seed) {
  Rng rng(seed);
  Dataset d;
  d.cols = kD;
  d.rows = normal + hidden;
  for (int64_t r = 0; r < d.rows; ++r) {
    const bool anomaly = r >= normal;
    for (int c = 0; c < kD; ++c) {
      const double centre = anomaly && c < 2 ? 1.5 : 0.0;
      d.x.push_back(static_cast<float>(centre + (anomaly ? 0.2 : 1.0) * rng.Normal()));
    }
    d.labels.push_back(anomaly ? 1 : 0);
  }
  return d;
}

v1::TrainingParams Params(bool use_labels) {
  v1::TrainingParams p;  // the default preset, one network
  p.set_ensemble_size(1);
  p.set_alternate_scaling(v1::Normalizer::KIND_UNSPECIFIED);
  p.set_max_epochs(30);
  p.set_use_labels(use_labels);
  return p;
}

double TestAuc(const v1::ModelFile& model, const Dataset& test) {
  auto c = CompiledModel::Create(model);
  EXPECT_TRUE(c.ok()) << c.status();
  std::vector<float> score(test.rows);
  ScoreOutputs out;
  out.score = score.data();
  EXPECT_TRUE((*c)->Score(test.x.data(), test.rows, out).ok());
  return AucRoc(score, test.labels);
}

TEST(KnownAnomaliesTest, RowsLabelledOneCountOnlyWhenTheParamsUseLabels) {
  Dataset d = Mixture(20, 0, 1);
  d.labels[3] = d.labels[11] = 1;
  auto on = KnownAnomalyRows(d, Params(true));
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_THAT(*on, ElementsAre(3, 11));
  auto off = KnownAnomalyRows(d, Params(false));
  ASSERT_TRUE(off.ok());
  EXPECT_THAT(*off, IsEmpty());
  d.labels.clear();
  EXPECT_THAT(*KnownAnomalyRows(d, Params(true)), IsEmpty());
}

TEST(KnownAnomaliesTest, LabelsThatCannotBeUsedAreInvalidArgument) {
  Dataset d = Mixture(20, 0, 1);
  d.labels.pop_back();
  EXPECT_THAT(std::string(KnownAnomalyRows(d, Params(true)).status().message()),
              HasSubstr("19 labels for 20 rows"));
  d = Mixture(20, 0, 1);
  d.labels[5] = 2;
  auto two = TrainModel(d, Params(true));
  EXPECT_EQ(two.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(two.status().message()), HasSubstr("row 5 has label 2"));
  d.labels.assign(d.rows, 1);
  EXPECT_THAT(std::string(KnownAnomalyRows(d, Params(true)).status().message()),
              HasSubstr("every one of the 20 training rows is labelled"));
  // Ignored labels are not checked.
  EXPECT_TRUE(KnownAnomalyRows(d, Params(false)).ok());
}

TEST(KnownAnomaliesTest, AFewLabelledRowsOfAHiddenClusterLetTheModelFindTheRest) {
  // Training: 3,000 normal rows and 60 of the cluster, 10 of them labelled.
  Dataset train = Mixture(3000, 60, 7);
  int labelled = 0;
  for (int64_t r = 0; r < train.rows; ++r) {
    if (train.labels[r] == 1 && labelled++ >= 10) train.labels[r] = 0;
  }
  const Dataset test = Mixture(2000, 40, 8);
  Dataset unlabelled = train;
  unlabelled.labels.clear();
  auto without = TrainModel(unlabelled, Params(true));
  auto with = TrainModel(train, Params(true));
  ASSERT_TRUE(without.ok()) << without.status();
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_EQ(without->summary().known_anomalies(), 0);
  EXPECT_EQ(with->summary().known_anomalies(), 10);
  const double auc_without = TestAuc(*without, test), auc_with = TestAuc(*with, test);
  EXPECT_GT(auc_with, auc_without + 0.1) << "without labels " << auc_without;
  // The paper preset ignores them.
  v1::TrainingParams paper;
  paper.set_preset("paper");
  paper.set_max_epochs(5);
  auto literal = TrainModel(train, paper);
  ASSERT_TRUE(literal.ok());
  EXPECT_EQ(literal->summary().known_anomalies(), 0);
}

}  // namespace
}  // namespace anorand::test_support
