#include "model/params.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace anorand {
namespace {

using ::testing::HasSubstr;

TEST(ParamsTest, PaperPresetHasThePapersValuesAndWidths) {
  v1::TrainingParams user;
  user.set_preset("paper");
  auto p = ResolveParams(user, 21);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->seed_fraction(), 0.02);
  EXPECT_EQ(p->anomaly_fraction(), 0.05);
  EXPECT_EQ(p->noise_scale(), 1.0);
  EXPECT_EQ(p->loss_weight(), 0.2);
  EXPECT_EQ(p->batch_size(), 256);
  EXPECT_EQ(p->max_epochs(), 50);
  EXPECT_EQ(p->score_rule(), v1::SCORE_RULE_PAPER);
  EXPECT_THAT(std::vector<int>(p->encoder_widths().begin(), p->encoder_widths().end()),
              ::testing::ElementsAre(64, 32, 16));
  EXPECT_THAT(std::vector<int>(p->decoder_widths().begin(), p->decoder_widths().end()),
              ::testing::ElementsAre(32, 64));
  EXPECT_EQ(p->contamination(), 0.05);
}

TEST(ParamsTest, WidthRuleAdaptsToTheInputWidth) {
  EXPECT_EQ(DefaultEncoderWidths(3), (std::vector<int>{64, 32, 16}));
  EXPECT_EQ(DefaultEncoderWidths(100), (std::vector<int>{128, 64, 32}));
  EXPECT_EQ(DefaultEncoderWidths(1555), (std::vector<int>{512, 256, 128}));
  EXPECT_EQ(DefaultDecoderWidths(1555), (std::vector<int>{256, 512}));
}

TEST(ParamsTest, UserValuesOverrideThePreset) {
  v1::TrainingParams user;
  user.set_noise_scale(3);
  user.add_encoder_widths(10);
  auto p = ResolveParams(user, 5);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->preset(), "default");
  EXPECT_EQ(p->noise_scale(), 3);
  EXPECT_EQ(p->encoder_widths_size(), 1);
  EXPECT_EQ(p->noise_detector_widths(0), 10);  // follows the encoder
}

TEST(ParamsTest, EveryBadFieldIsNamedInOneMessage) {
  v1::TrainingParams user;
  user.set_learning_rate(-1);
  user.set_batch_size(0);
  user.set_dropout(1.5);
  user.add_decoder_widths(0);
  auto p = ResolveParams(user, 5);
  ASSERT_FALSE(p.ok());
  const std::string m(p.status().message());
  EXPECT_THAT(m, HasSubstr("learning_rate must be in (0, 1]"));
  EXPECT_THAT(m, HasSubstr("batch_size must be in [1, 65536]"));
  EXPECT_THAT(m, HasSubstr("dropout must be in [0, 1)"));
  EXPECT_THAT(m, HasSubstr("decoder_widths widths must be in [1, 8192]"));
  user.Clear();
  user.set_preset("fancy");
  EXPECT_THAT(std::string(ResolveParams(user, 5).status().message()),
              HasSubstr("known presets: default, paper"));
}

TEST(ParamsTest, SetFromStringCoversEveryFieldType) {
  v1::TrainingParams p;
  for (const char* kv : {"noise_scale=2.5", "batch_size=64", "seed=7", "noise_originals=true",
                         "scaling=z_score", "score_rule=paper", "encoder_widths=32,16",
                         "preset=paper"}) {
    ASSERT_TRUE(SetParamFromString(kv, &p).ok()) << kv;
  }
  EXPECT_EQ(p.noise_scale(), 2.5);
  EXPECT_EQ(p.batch_size(), 64);
  EXPECT_EQ(p.seed(), 7u);
  EXPECT_TRUE(p.noise_originals());
  EXPECT_EQ(p.scaling(), v1::Normalizer::KIND_Z_SCORE);
  EXPECT_EQ(p.score_rule(), v1::SCORE_RULE_PAPER);
  EXPECT_EQ(p.encoder_widths_size(), 2);
  EXPECT_THAT(std::string(SetParamFromString("nosuch=1", &p).message()),
              HasSubstr("unknown parameter 'nosuch'"));
  EXPECT_THAT(std::string(SetParamFromString("batch_size=big", &p).message()),
              HasSubstr("is not an integer"));
  EXPECT_THAT(std::string(SetParamFromString("noise_scale=nan", &p).message()),
              HasSubstr("finite number"));
  EXPECT_THAT(std::string(SetParamFromString("noequals", &p).message()),
              HasSubstr("NAME=VALUE"));
}

}  // namespace
}  // namespace anorand
