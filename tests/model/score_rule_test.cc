#include "model/score_rule.h"

#include "gtest/gtest.h"
#include "model/params.h"

namespace anorand {
namespace {

v1::ScoreStats Fitted(v1::ScoreRule rule) {
  std::vector<float> yhat, err;
  for (int i = 0; i < 2000; ++i) {
    yhat.push_back(static_cast<float>(i % 100) / 100.0f);
    err.push_back(0.001f * static_cast<float>((i * 7) % 1000));
  }
  v1::TrainingParams user;
  user.set_preset(rule == v1::SCORE_RULE_PAPER ? "paper" : "default");
  auto p = ResolveParams(user, 4);
  EXPECT_TRUE(p.ok());
  return FitScoreStats(yhat, err, *p);
}

TEST(ScoreRuleTest, PaperRuleIsThePapersFormula) {
  v1::ScoreStats s = Fitted(v1::SCORE_RULE_PAPER);
  EXPECT_NEAR(s.q3_noise(), 0.7425, 1e-3);
  const double alpha = s.q3_noise() / (s.q3_noise() + s.q3_reconstruction());
  EXPECT_NEAR(s.alpha(), alpha, 1e-12);
  const float e = 0.3f, y = 0.6f;
  EXPECT_NEAR(CombineScore(s, y, e), (1 - alpha) * y + alpha / (1 + std::exp(-e)), 1e-6);
}

TEST(ScoreRuleTest, CalibratedRuleIsMonotoneAndKeepsExtremesApart) {
  v1::ScoreStats s = Fitted(v1::SCORE_RULE_CALIBRATED);
  ASSERT_EQ(s.noise_quantiles_size(), 1001);
  float prev = -1;
  for (float e : {0.0f, 0.1f, 0.5f, 0.9f, 0.999f, 1.5f, 3.0f, 30.0f, 300.0f}) {
    const float v = CombineScore(s, 0.5f, e);
    EXPECT_GT(v, prev) << e;  // strictly: no ties beyond the training maximum
    EXPECT_GE(v, 0.0f);
    EXPECT_LT(v, 1.0f);
    prev = v;
  }
  EXPECT_GT(CombineScore(s, 0.99f, 0.2f), CombineScore(s, 0.5f, 0.2f));
  // About `contamination` of the training rows score at or above the threshold.
  EXPECT_EQ(s.contamination(), 0.05);
  int above = 0;
  for (int i = 0; i < 2000; ++i) {
    above += CombineScore(s, static_cast<float>(i % 100) / 100.0f,
                          0.001f * static_cast<float>((i * 7) % 1000)) >= s.threshold();
  }
  EXPECT_NEAR(above / 2000.0, 0.05, 0.01);
}

TEST(ScoreRuleTest, QuantileMatchesNumpyLinearInterpolation) {
  EXPECT_DOUBLE_EQ(Quantile({1, 2, 3, 4}, 0.75), 3.25);  // numpy.quantile([1,2,3,4], .75)
  EXPECT_DOUBLE_EQ(Quantile({5}, 0.75), 5.0);
}

}  // namespace
}  // namespace anorand
