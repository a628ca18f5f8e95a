// The trainer: progress per epoch, cancellation within one mini-batch,
// early stopping with the best weights, min_steps, data too small.
#include "model/trainer.h"

#include <atomic>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/ranking_metrics.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

v1::TrainingParams Quick(int epochs) {
  v1::TrainingParams p;
  p.set_max_epochs(epochs);
  p.set_min_steps(0);
  p.set_patience(0);
  return p;
}

TEST(TrainerTest, ReportsEveryEpochAndRecordsTheSummary) {
  Dataset d = DemoData(800, 6, 1);
  std::vector<EpochProgress> seen;
  TrainOptions o;
  o.on_epoch = [&](const EpochProgress& p) { seen.push_back(p); };
  auto m = TrainModel(d, Quick(5), o);
  ASSERT_TRUE(m.ok()) << m.status().message();
  // Each network of the ensemble (the default has several) reports its
  // epochs 1 to 5 in turn.
  const int members = m->params().ensemble_size();
  EXPECT_EQ(m->ensemble_size(), members - 1);
  ASSERT_EQ(seen.size(), 5u * members);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].epoch, static_cast<int>(i % 5) + 1);
    EXPECT_EQ(seen[i].member, static_cast<int>(i / 5));
    EXPECT_EQ(seen[i].members, members);
    EXPECT_EQ(seen[i].max_epochs, 5);
    EXPECT_GT(seen[i].train_loss, 0);
    EXPECT_GT(seen[i].validation_loss, 0);
    if (i) {
      EXPECT_GE(seen[i].elapsed_seconds, seen[i - 1].elapsed_seconds);
    }
  }
  EXPECT_EQ(m->summary().epochs_run(), 5);
  EXPECT_EQ(m->summary().rows(), 800);
  EXPECT_EQ(m->summary().features(), 6);
  EXPECT_GT(m->summary().synthetic_rows(), 0);
  EXPECT_EQ(m->feature_names_size(), 6);
  EXPECT_TRUE(m->params().has_noise_scale());  // values actually used
  // The best epoch's validation loss is the smallest one the first network
  // reported (the summary describes it).
  double best = 1e300;
  for (const auto& p : seen)
    if (p.member == 0) best = std::min(best, p.validation_loss);
  EXPECT_DOUBLE_EQ(m->summary().best_validation_loss(), best);
}

TEST(TrainerTest, CancellationStopsWithinOneMiniBatch) {
  Dataset d = DemoData(3000, 6, 1);
  std::atomic<int> polls{0};
  std::atomic<bool> in_epochs{false};
  TrainOptions o;
  // Counts the polls of the epochs phase only (the earlier phases poll too).
  o.on_phase = [&](const PhaseProgress& p) { in_epochs = p.phase == TrainPhase::kEpochs; };
  o.cancelled = [&] { return in_epochs && ++polls > 3; };
  auto m = TrainModel(d, Quick(50), o);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("cancelled while training (member 1 of 4) in epoch 1"));
  EXPECT_EQ(polls.load(), 4);
}

TEST(TrainerTest, EarlyStoppingEndsBeforeMaxEpochs) {
  Dataset d = DemoData(400, 4, 2);
  v1::TrainingParams p = Quick(300);
  p.set_patience(2);
  p.set_learning_rate(0.05);
  auto m = TrainModel(d, p);
  ASSERT_TRUE(m.ok());
  EXPECT_LT(m->summary().epochs_run(), 300);
  EXPECT_EQ(m->summary().epochs_run(), m->summary().best_epoch() + 2);
}

TEST(TrainerTest, MinStepsStretchesEpochsOnSmallData) {
  Dataset d = DemoData(300, 4, 2);  // ~1 step per epoch at batch 256
  v1::TrainingParams p = Quick(5);
  p.set_min_steps(40);
  auto m = TrainModel(d, p);
  ASSERT_TRUE(m.ok());
  EXPECT_GE(m->summary().epochs_run(), 40);
}

TEST(TrainerTest, RefusesTooLittleDataAndBadParameters) {
  Dataset tiny = DemoData(10, 3, 1);
  tiny.rows = 5;
  tiny.x.resize(15);
  EXPECT_THAT(std::string(TrainModel(tiny, Quick(1)).status().message()),
              HasSubstr("at least 10 are needed"));
  v1::TrainingParams bad = Quick(1);
  bad.set_validation_fraction(0.9);
  EXPECT_THAT(std::string(TrainModel(DemoData(100, 3, 1), bad).status().message()),
              HasSubstr("validation_fraction"));
}

TEST(TrainerTest, DetectsTheDemoAnomalies) {
  Dataset d = DemoData(4000, 10, 5);
  std::vector<int> labels = d.labels;
  d.labels.clear();
  v1::TrainingParams p;
  p.set_max_epochs(20);
  auto m = TrainModel(d, p);
  ASSERT_TRUE(m.ok());
  auto c = CompiledModel::Create(*m);
  ASSERT_TRUE(c.ok());
  std::vector<float> score(d.rows);
  ScoreOutputs out;
  out.score = score.data();
  ASSERT_TRUE((*c)->Score(d.x.data(), d.rows, out).ok());
  EXPECT_GT(AucRoc(score, labels), 0.9);
}

}  // namespace
}  // namespace anorand::test_support
