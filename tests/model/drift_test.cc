// Drift detection in the model library: sketches of the training data
// stored in the model file (drift_profile.h) and the serving-time window
// that compares records with them (drift_window.h).
#include <algorithm>
#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/drift_profile.h"
#include "model/drift_window.h"
#include "model/model_file.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

const std::vector<double> kDeciles = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};

TEST(DriftProfileTest, SketchHasDecileEdgesAndTheShareOfEachBin) {
  std::vector<float> v(1000);
  for (int i = 0; i < 1000; ++i) v[i] = static_cast<float>(999 - i);
  v1::DistributionSketch s = SketchValues(v, kDeciles);
  EXPECT_EQ(s.min(), 0);
  EXPECT_EQ(s.max(), 999);
  ASSERT_EQ(s.edges_size(), 9);
  ASSERT_EQ(s.fractions_size(), 10);
  for (int b = 0; b < 10; ++b) EXPECT_NEAR(s.fractions(b), 0.1, 0.002) << b;
  // A value's bin is the number of edges strictly below it.
  EXPECT_EQ(SketchBin(s.edges().data(), 9, -5), 0);
  EXPECT_EQ(SketchBin(s.edges().data(), 9, s.edges(0)), 0);
  EXPECT_EQ(SketchBin(s.edges().data(), 9, s.edges(0) + 0.5f), 1);
  EXPECT_EQ(SketchBin(s.edges().data(), 9, 5000), 9);
}

TEST(DriftProfileTest, TiedValuesMergeEdgesAndKeepTheSplit) {
  // A 0/1 feature, 30% ones: its zeros and ones land in different bins.
  std::vector<float> v(1000, 0.0f);
  std::fill(v.begin() + 700, v.end(), 1.0f);
  v1::DistributionSketch s = SketchValues(v, kDeciles);
  ASSERT_EQ(s.edges_size(), 2);
  EXPECT_EQ(s.edges(0), 0);
  EXPECT_EQ(s.edges(1), 1);
  ASSERT_EQ(s.fractions_size(), 3);
  EXPECT_NEAR(s.fractions(0), 0.7, 1e-6);
  EXPECT_NEAR(s.fractions(1), 0.3, 1e-6);
  EXPECT_NEAR(s.fractions(2), 0.0, 1e-6);
  // A constant feature: one edge, every row in the first bin.
  v1::DistributionSketch c = SketchValues(std::vector<float>(50, 3.0f), kDeciles);
  ASSERT_EQ(c.edges_size(), 1);
  EXPECT_EQ(c.fractions(0), 1.0f);
}

TEST(DriftProfileTest, PsiIsNearZeroForTheSameSharesAndLargeForShiftedOnes) {
  const float expected[4] = {0.25f, 0.25f, 0.25f, 0.25f};
  const int64_t same[4] = {250, 250, 250, 250};
  EXPECT_NEAR(PopulationStabilityIndex(same, 1000, expected, 1000, 4), 0.0, 1e-9);
  const int64_t shifted[4] = {0, 0, 100, 900};
  EXPECT_GT(PopulationStabilityIndex(shifted, 1000, expected, 1000, 4), 1.0);
  EXPECT_EQ(PopulationStabilityIndex(same, 0, expected, 1000, 4), 0.0);
}

class DriftWindowTest : public ::testing::Test {
 protected:
  // The model is trained on the first 1500 rows of one draw; Rows() hands
  // out later rows of the same draw, records from the same distribution.
  static void SetUpTestSuite() {
    all_ = new Dataset(DemoData(5000, 6, 3));
    model_ = new v1::ModelFile(TinyModelOn(Rows(0, 1500), 3, 2));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete all_;
  }
  static Dataset Rows(int64_t from, int64_t count) { return SliceRows(*all_, from, count); }

  // Scores `data` with the model and observes it.
  static void ObserveAll(DriftWindow* w, const Dataset& data) {
    auto compiled = CompiledModel::Create(*model_);
    ASSERT_TRUE(compiled.ok()) << compiled.status().message();
    std::vector<float> scores(data.rows);
    ScoreOutputs out;
    out.score = scores.data();
    ASSERT_TRUE((*compiled)->Score(data.x.data(), data.rows, out).ok());
    w->Observe(data.x.data(), data.rows, scores.data());
  }

  static v1::ModelFile* model_;
  static Dataset* all_;
};
v1::ModelFile* DriftWindowTest::model_ = nullptr;
Dataset* DriftWindowTest::all_ = nullptr;

TEST_F(DriftWindowTest, TrainingStoresAProfileThatTheModelFileValidates) {
  ASSERT_TRUE(model_->has_drift_profile());
  const v1::DriftProfile& p = model_->drift_profile();
  EXPECT_EQ(p.rows(), 1500);
  ASSERT_EQ(p.features_size(), 6);
  for (const auto& f : p.features()) {
    EXPECT_EQ(f.edges_size(), 9);
    EXPECT_LT(f.min(), f.edges(0));
    EXPECT_GT(f.max(), f.edges(8));
  }
  EXPECT_EQ(p.score().edges_size(), 11);
  EXPECT_NEAR(p.score().fractions(11), 0.01, 0.005);  // above the 99th percentile
  EXPECT_TRUE(ValidateModel(*model_).ok());
}

TEST_F(DriftWindowTest, RecordsLikeTheTrainingDataShowNoDrift) {
  DriftWindow w(model_->drift_profile(), 4000);
  ObserveAll(&w, Rows(1500, 2000));
  DriftStats s = w.Stats();
  EXPECT_EQ(s.observed, 2000);
  EXPECT_EQ(s.window, 2000);
  EXPECT_LT(s.score_psi, 0.1);
  EXPECT_LT(s.out_of_range, 0.05);
  ASSERT_EQ(s.features.size(), 6u);
  for (const auto& f : s.features) EXPECT_LT(f.psi, 0.1) << "feature " << f.feature;
}

TEST_F(DriftWindowTest, AShiftedFeatureStandsOutAndMovesTheScores) {
  DriftWindow w(model_->drift_profile(), 4000);
  Dataset data = Rows(1500, 2000);
  const v1::DistributionSketch& f2 = model_->drift_profile().features(2);
  const float shift = 2 * (f2.max() - f2.min());
  for (int64_t r = 0; r < data.rows; ++r) data.x[r * 6 + 2] += shift;
  ObserveAll(&w, data);
  DriftStats s = w.Stats();
  const auto worst = std::max_element(s.features.begin(), s.features.end(),
                                      [](const auto& a, const auto& b) { return a.psi < b.psi; });
  EXPECT_EQ(worst->feature, 2);
  EXPECT_GT(worst->psi, 1.0);
  EXPECT_NEAR(worst->out_of_range, 1.0, 1e-9);
  EXPECT_NEAR(s.out_of_range, 1.0, 1e-9);
  EXPECT_LT(s.features[0].psi, 0.1);
  EXPECT_GT(s.score_psi, 0.25);
}

TEST_F(DriftWindowTest, TheWindowForgetsRecordsOlderThanItsLength) {
  DriftWindow w(model_->drift_profile(), 1000);
  Dataset shifted = Rows(1500, 500);
  for (float& v : shifted.x) v += 100;
  ObserveAll(&w, shifted);
  EXPECT_GT(w.Stats().score_psi, 0.25);
  // Two half-windows of ordinary records push the shifted ones out.
  ObserveAll(&w, Rows(2000, 500));
  ObserveAll(&w, Rows(2500, 500));
  DriftStats s = w.Stats();
  EXPECT_EQ(s.observed, 1500);
  EXPECT_EQ(s.window, 500);  // the current half just rotated out
  EXPECT_LT(s.score_psi, 0.1);
  EXPECT_LT(s.out_of_range, 0.05);
}

TEST_F(DriftWindowTest, ASampledWindowDrawsThatShareOfRecordsInBatchesOfAnySize) {
  DriftWindow w(model_->drift_profile(), 100000, 0.1);
  EXPECT_EQ(w.sample(), 0.1);
  // 3500 records like the training data, in batches of 1 to 13 records: a
  // draw that started again badly at each batch would miss the share.
  int64_t from = 1500, size = 1;
  while (from < 5000) {
    const int64_t n = std::min<int64_t>(size, 5000 - from);
    ObserveAll(&w, Rows(from, n));
    from += n;
    size = size % 13 + 1;
  }
  DriftStats s = w.Stats();
  EXPECT_EQ(s.observed, 3500) << "every record offered is counted";
  // Binomial(3500, 0.1): mean 350, standard deviation 17.7; five of them.
  EXPECT_GE(s.window, 350 - 89);
  EXPECT_LE(s.window, 350 + 89);
  EXPECT_LT(s.score_psi, 0.1);
  for (const auto& f : s.features) EXPECT_LT(f.psi, 0.1) << "feature " << f.feature;
  // The records drawn are the records offered: a shifted feature is seen.
  Dataset shifted = Rows(1500, 3500);
  for (int64_t r = 0; r < shifted.rows; ++r) shifted.x[r * 6 + 2] += 1000;
  DriftWindow v(model_->drift_profile(), 100000, 0.1);
  ObserveAll(&v, shifted);
  s = v.Stats();
  EXPECT_NEAR(s.out_of_range, 1.0, 1e-9);
  EXPECT_NEAR(s.features[2].out_of_range, 1.0, 1e-9);
  EXPECT_GT(s.features[2].psi, 1.0);
}

TEST_F(DriftWindowTest, TheModelFileRefusesAMalformedProfile) {
  auto expect_refused = [](v1::ModelFile m, const std::string& what) {
    absl::Status s = ValidateModel(m);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << what;
    EXPECT_THAT(std::string(s.message()), HasSubstr("drift_profile")) << what;
  };
  v1::ModelFile m = *model_;
  m.mutable_drift_profile()->mutable_features(1)->set_edges(3, -1e9f);
  expect_refused(m, "edges not ascending");
  m = *model_;
  m.mutable_drift_profile()->mutable_features(0)->add_fractions(0.0f);
  expect_refused(m, "one fraction too many");
  m = *model_;
  m.mutable_drift_profile()->mutable_score()->set_fractions(0, 0.9f);
  expect_refused(m, "fractions that do not sum to 1");
  m = *model_;
  m.mutable_drift_profile()->mutable_features()->RemoveLast();
  expect_refused(m, "a feature without a sketch");
  m = *model_;
  m.mutable_drift_profile()->mutable_features(4)->set_max(NAN);
  expect_refused(m, "max not finite");
  // A file written before drift detection has no profile, and is valid.
  m = *model_;
  m.clear_drift_profile();
  EXPECT_TRUE(ValidateModel(m).ok());
}

}  // namespace
}  // namespace anorand::test_support
