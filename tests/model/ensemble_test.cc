// The measured additions to the method (docs/ACCURACY.md): ensembles in one
// model file, per-feature error scaling, the noise head's logit, trimmed
// reconstruction, and the uniform-box / shuffle synthetic anomalies. Each is
// checked through the real interfaces: TrainModel, the model file, and
// CompiledModel::Score against a reference evaluation of the stored
// networks in training code (TrainingNetwork, eval mode).
#include <algorithm>
#include <cmath>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/inference_plan.h"
#include "model/ranking_metrics.h"
#include "model/model_file.h"
#include "model/network.h"
#include "model/normalizer.h"
#include "model/params.h"
#include "model/score_rule.h"
#include "model/synthetic_labels.h"
#include "model/trainer.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

v1::TrainingParams EnsembleParams() {
  v1::TrainingParams p;
  p.set_max_epochs(3);
  p.set_min_steps(0);
  p.set_patience(0);
  p.set_ensemble_size(3);
  p.set_member_rows(300);
  p.set_error_scaling(true);
  p.set_trim_fraction(0.2);
  p.set_uniform_fraction(0.3);
  p.set_alternate_scaling(v1::Normalizer::KIND_ROBUST);
  return p;
}

// The reference score of every record of `d`: each member's stored network
// run on its own (a separately compiled plan, or, with `training_code`, the
// training network in eval mode), then the score rule written out: mean of
// the members' surprisals.
std::vector<float> ReferenceScores(const v1::ModelFile& m, const Dataset& d, bool training_code) {
  const int cols = static_cast<int>(d.cols);
  std::vector<double> s(d.rows, 0.0);
  struct Member {
    const v1::Network* net;
    const v1::ScoreStats* stats;
    const v1::Normalizer* norm;
  };
  std::vector<Member> members = {{&m.network(), &m.score_stats(), &m.normalizer()}};
  for (const auto& e : m.ensemble())
    members.push_back({&e.network(), &e.score_stats(),
                       e.has_normalizer() ? &e.normalizer() : &m.normalizer()});
  const bool weighted = m.score_stats().member_weight() > 0;
  for (const auto& [net, stats, norm] : members) {
    std::vector<float> xn(d.x.size());
    ApplyNormalizer(*norm, d.x.data(), d.rows, cols, xn.data());
    std::vector<float> y(d.rows), xh(d.x.size());
    if (training_code) {
      auto tn = TrainingNetwork::FromProto(*net, m.params(), static_cast<int>(d.rows));
      EXPECT_TRUE(tn.ok());
      (*tn)->ForwardEval(xn.data(), static_cast<int>(d.rows), y.data(), xh.data());
      if (stats->noise_logit())
        for (float& v : y) v = std::log(v / (1 - v));
    } else {
      auto plan = InferencePlan::Compile(*net, !stats->noise_logit());
      EXPECT_TRUE(plan.ok());
      EXPECT_TRUE((*plan)->Run(xn.data(), d.rows, y.data(), xh.data()).ok());
    }
    for (int64_t r = 0; r < d.rows; ++r) {
      const float e = RowError(*stats, &xn[r * cols], &xh[r * cols], cols);
      s[r] += weighted ? stats->member_weight() * MemberSurprisal(*stats, y[r], e)
                       : MemberSurprisal(*stats, y[r], e);
    }
  }
  std::vector<float> out(d.rows);
  for (int64_t r = 0; r < d.rows; ++r)
    out[r] = SurprisalToScore(weighted ? s[r] : s[r] / members.size());
  return out;
}

TEST(EnsembleTest, OneFileRoundTripsBitExactAndScoresLikeTheReference) {
  Dataset d = DemoData(600, 5, 3);
  d.labels.clear();  // unsupervised: DemoData's labels would be known anomalies
  auto m = TrainModel(d, EnsembleParams());
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->ensemble_size(), 2);  // members beyond the first
  EXPECT_EQ(m->score_stats().error_feature_scale_size(), 5);
  for (const auto& e : m->ensemble()) {
    EXPECT_EQ(e.score_stats().error_feature_scale_size(), 5);
    EXPECT_EQ(e.score_stats().threshold(), m->score_stats().threshold());
  }
  // Member 1 scales its inputs its own way (alternate_scaling); member 2
  // uses the model's.
  EXPECT_EQ(m->ensemble(0).normalizer().kind(), v1::Normalizer::KIND_ROBUST);
  EXPECT_FALSE(m->ensemble(1).has_normalizer());
  EXPECT_EQ(m->normalizer().kind(), m->params().scaling());
  EXPECT_NE(m->normalizer().kind(), v1::Normalizer::KIND_ROBUST);
  // The members differ (own seeds and subsamples).
  EXPECT_NE(m->ensemble(0).network().noise_head().weight(0),
            m->network().noise_head().weight(0));

  TempDir dir;
  ASSERT_TRUE(SaveModelFile(*m, dir.File("e.anorand")).ok());
  auto loaded = LoadModelFile(dir.File("e.anorand"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(SerializeModel(*loaded), SerializeModel(*m));

  auto c = CompiledModel::Create(*loaded);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ((*c)->members(), 3);
  std::vector<float> score(d.rows), contrib(d.rows * d.cols);
  std::vector<uint8_t> flag_bytes(d.rows);
  bool* flags = reinterpret_cast<bool*>(flag_bytes.data());
  ScoreOutputs out;
  out.score = score.data();
  out.is_anomaly = flags;
  out.contributions = contrib.data();
  ASSERT_TRUE((*c)->Score(d.x.data(), d.rows, out).ok());
  // Exactly the per-member plans combined by the rule; and close to the
  // training code's eval-mode networks (a quantile table magnifies the
  // 1e-6 differences of folded batch norm where its entries crowd).
  const std::vector<float> ref = ReferenceScores(*loaded, d, false);
  const std::vector<float> train_ref = ReferenceScores(*loaded, d, true);
  int flagged = 0;
  for (int64_t r = 0; r < d.rows; ++r) {
    EXPECT_EQ(score[r], ref[r]) << "row " << r;
    EXPECT_NEAR(score[r], train_ref[r], 2e-3) << "row " << r;
    EXPECT_EQ(flags[r], score[r] >= m->score_stats().threshold());
    flagged += flags[r];
    double sum = 0;
    for (int c = 0; c < d.cols; ++c) sum += contrib[r * d.cols + c];
    EXPECT_NEAR(sum, 1.0, 1e-4);
  }
  // The threshold is the ensemble score's (1 - contamination) quantile.
  EXPECT_NEAR(flagged / 600.0, m->params().contamination(), 0.01);
  // One record at a time (the one-row shape class) gives the same scores.
  for (int64_t r = 0; r < d.rows; r += 53) {
    float one = 0;
    ScoreOutputs single;
    single.score = &one;
    ASSERT_TRUE((*c)->Score(d.row(r), 1, single).ok());
    EXPECT_FLOAT_EQ(one, score[r]);
  }
}

TEST(EnsembleTest, RobustScalingUsesMedianAndInterquartileRange) {
  std::vector<float> x;
  for (int r = 0; r < 101; ++r) {
    x.push_back(static_cast<float>(r));                 // median 50, IQR 50
    x.push_back(r < 90 ? 0.0f : 1.0f);                  // IQR 0: range 1
    x.push_back(7.0f);                                  // constant: scale 1
  }
  const v1::Normalizer n = FitNormalizer(v1::Normalizer::KIND_ROBUST, x.data(), 101, 3);
  EXPECT_FLOAT_EQ(n.offset(0), 50);
  EXPECT_FLOAT_EQ(n.scale(0), 50);
  EXPECT_FLOAT_EQ(n.offset(1), 0);
  EXPECT_FLOAT_EQ(n.scale(1), 1);
  EXPECT_FLOAT_EQ(n.offset(2), 7);
  EXPECT_FLOAT_EQ(n.scale(2), 1);
}

TEST(EnsembleTest, SameSeedSameEnsemble) {
  Dataset d = DemoData(400, 4, 2);
  auto a = TrainModel(d, EnsembleParams());
  auto b = TrainModel(d, EnsembleParams());
  ASSERT_TRUE(a.ok() && b.ok());
  a->clear_created_unix_seconds();
  b->clear_created_unix_seconds();
  a->mutable_summary()->clear_seconds();
  b->mutable_summary()->clear_seconds();
  EXPECT_EQ(SerializeModel(*a), SerializeModel(*b));
}

TEST(EnsembleTest, NoiseLogitScoresTheLogitAndReportsTheProbability) {
  Dataset d = DemoData(500, 4, 4);
  d.labels.clear();  // unsupervised: DemoData's labels would be known anomalies
  v1::TrainingParams p = EnsembleParams();
  p.set_ensemble_size(1);
  p.set_noise_logit(true);
  auto m = TrainModel(d, p);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(m->score_stats().noise_logit());
  auto c = CompiledModel::Create(*m);
  ASSERT_TRUE(c.ok());
  std::vector<float> score(d.rows), prob(d.rows);
  ScoreOutputs out;
  out.score = score.data();
  out.noise_probability = prob.data();
  ASSERT_TRUE((*c)->Score(d.x.data(), d.rows, out).ok());
  const std::vector<float> ref = ReferenceScores(*m, d, false);
  auto tn = TrainingNetwork::FromProto(m->network(), m->params(), static_cast<int>(d.rows));
  ASSERT_TRUE(tn.ok());
  std::vector<float> xn(d.x.size()), y(d.rows);
  ApplyNormalizer(m->normalizer(), d.x.data(), d.rows, 4, xn.data());
  (*tn)->ForwardEval(xn.data(), static_cast<int>(d.rows), y.data(), nullptr);
  for (int64_t r = 0; r < d.rows; ++r) {
    EXPECT_NEAR(prob[r], y[r], 1e-5);
    EXPECT_EQ(score[r], ref[r]) << r;
  }
  // Its quantile table is in logit units: its ends are the extreme logits
  // of the training rows (d is the training data here).
  const auto& q = m->score_stats().noise_quantiles();
  float lo = 1e30f, hi = -1e30f;
  for (float v : y) {
    lo = std::min(lo, std::log(v / (1 - v)));
    hi = std::max(hi, std::log(v / (1 - v)));
  }
  EXPECT_NEAR(q[0], lo, 1e-3);
  EXPECT_NEAR(q[q.size() - 1], hi, 1e-3);
}

TEST(EnsembleTest, ValidationRefusesABadMember) {
  Dataset d = DemoData(400, 4, 2);
  v1::TrainingParams p = EnsembleParams();
  p.set_ensemble_size(2);
  auto m = TrainModel(d, p);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(ValidateModel(*m).ok());
  {
    v1::ModelFile bad = *m;
    bad.mutable_ensemble(0)->mutable_network()->mutable_reconstruction()->add_bias(0);
    EXPECT_THAT(std::string(ValidateModel(bad).message()), HasSubstr("ensemble member 1"));
  }
  {
    v1::ModelFile bad = *m;
    bad.mutable_ensemble(0)->mutable_score_stats()->set_rule(v1::SCORE_RULE_PAPER);
    EXPECT_THAT(std::string(ValidateModel(bad).message()), HasSubstr("calibrated"));
  }
  {
    v1::ModelFile bad = *m;
    bad.mutable_ensemble(0)->mutable_score_stats()->set_error_feature_scale(1, 0.0f);
    EXPECT_THAT(std::string(ValidateModel(bad).message()), HasSubstr("error feature scales"));
  }
  {
    v1::ModelFile bad = *m;
    bad.mutable_score_stats()->add_error_feature_scale(1.0f);
    EXPECT_FALSE(ValidateModel(bad).ok());
  }
  {
    v1::ModelFile bad = *m;
    bad.mutable_ensemble(0)->mutable_network()->set_input_features(5);
    EXPECT_FALSE(ValidateModel(bad).ok());
  }
  {
    v1::ModelFile bad = *m;
    bad.mutable_ensemble(0)->mutable_normalizer()->set_scale(2, -1.0f);
    EXPECT_THAT(std::string(ValidateModel(bad).message()), HasSubstr("normalizer"));
  }
}

TEST(EnsembleTest, ParametersAreChecked) {
  for (auto [set, field] :
       std::vector<std::pair<std::function<void(v1::TrainingParams*)>, std::string>>{
           {[](auto* p) { p->set_ensemble_size(0); }, "ensemble_size"},
           {[](auto* p) { p->set_ensemble_size(33); }, "ensemble_size"},
           {[](auto* p) {
              p->set_ensemble_size(2);
              p->set_score_rule(v1::SCORE_RULE_PAPER);
            }, "ensemble_size"},
           {[](auto* p) { p->set_trim_fraction(0.5); }, "trim_fraction"},
           {[](auto* p) { p->set_uniform_fraction(0.7); p->set_shuffle_fraction(0.4); },
            "shuffle_fraction"},
           {[](auto* p) { p->set_member_rows(-1); }, "member_rows"},
           {[](auto* p) { p->set_ae_weight(1.5); }, "ae_weight"},
           {[](auto* p) { p->set_error_scale_trim(1); }, "error_scale_trim must be in [0, 1)"},
           {[](auto* p) { p->set_error_scale_trim(-0.1); }, "error_scale_trim must be in [0, 1)"},
           {[](auto* p) { p->set_alternate_noise_scale(-1); },
            "alternate_noise_scale must be 0 (same as noise_scale) or in (0, 100]"},
           {[](auto* p) { p->set_alternate_noise_scale(101); }, "alternate_noise_scale"},
           {[](auto* p) { p->set_alternate_weight(1); },
            "alternate_weight must be in [0, 1) (0 = every member weighs the same)"},
           {[](auto* p) {
              p->set_alternate_weight(0.6);
              p->set_ensemble_size(1);
            }, "alternate_weight must be 0 unless ensemble_size >= 2 and alternate_scaling is set"},
           {[](auto* p) {
              p->set_alternate_weight(0.6);
              p->set_alternate_scaling(v1::Normalizer::KIND_UNSPECIFIED);
            }, "alternate_weight must be 0 unless"}}) {
    v1::TrainingParams p;
    set(&p);
    auto r = ResolveParams(p, 4);
    EXPECT_FALSE(r.ok()) << field;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(field));
  }
  v1::TrainingParams off;
  ASSERT_TRUE(SetParamFromString("alternate_scaling=robust", &off).ok());
  EXPECT_EQ(off.alternate_scaling(), v1::Normalizer::KIND_ROBUST);
  ASSERT_TRUE(SetParamFromString("alternate_scaling=off", &off).ok());
  EXPECT_TRUE(off.has_alternate_scaling());
  EXPECT_EQ(off.alternate_scaling(), v1::Normalizer::KIND_UNSPECIFIED);
  EXPECT_FALSE(SetParamFromString("scaling=off", &off).ok());
  v1::TrainingParams paper;
  paper.set_preset("paper");
  auto r = ResolveParams(paper, 4);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ensemble_size(), 1);
  EXPECT_FALSE(r->error_scaling());
  EXPECT_EQ(r->trim_fraction(), 0);
  EXPECT_EQ(r->uniform_fraction(), 0);
  EXPECT_DOUBLE_EQ(r->ae_weight(), 1 - r->loss_weight());
  EXPECT_EQ(r->error_scale_trim(), 0);
  EXPECT_FALSE(r->robust_noise());
  EXPECT_EQ(r->alternate_noise_scale(), 0);
  EXPECT_EQ(r->alternate_weight(), 0);
  // The default preset as docs/ACCURACY.md measured it (issue #10).
  auto def = ResolveParams(v1::TrainingParams(), 4);
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->scaling(), v1::Normalizer::KIND_Z_SCORE);
  EXPECT_EQ(def->alternate_scaling(), v1::Normalizer::KIND_ROBUST);
  EXPECT_EQ(def->ensemble_size(), 4);
  EXPECT_EQ(def->error_scale_trim(), 0.2);
  EXPECT_EQ(def->ae_weight(), 0.9);
  EXPECT_FALSE(def->robust_noise());
  EXPECT_EQ(def->alternate_noise_scale(), 0);
  EXPECT_EQ(def->alternate_weight(), 0);
  v1::TrainingParams text;
  ASSERT_TRUE(SetParamFromString("error_scale_trim=0.2", &text).ok());
  ASSERT_TRUE(SetParamFromString("robust_noise=true", &text).ok());
  ASSERT_TRUE(SetParamFromString("alternate_noise_scale=0.5", &text).ok());
  EXPECT_EQ(text.error_scale_trim(), 0.2);
  EXPECT_TRUE(text.robust_noise());
  EXPECT_EQ(text.alternate_noise_scale(), 0.5);
}

TEST(EnsembleTest, TrimmedErrorScaleLeavesOutTheLargestErrors) {
  // Feature 0 errs by 1 on 90 rows and by 100 on 10 (the training set's
  // own anomalies); feature 1 errs by 2 everywhere.
  const int rows = 100, d = 2;
  std::vector<float> x(rows * d, 0.0f), xh(rows * d);
  for (int r = 0; r < rows; ++r) {
    xh[r * d] = r < 90 ? 1.0f : 100.0f;
    xh[r * d + 1] = 2.0f;
  }
  v1::ScoreStats plain, trimmed, light;
  FitErrorScale(x.data(), xh.data(), rows, d, &plain);
  FitErrorScale(x.data(), xh.data(), rows, d, &trimmed, 0.1);
  FitErrorScale(x.data(), xh.data(), rows, d, &light, 0.05);
  EXPECT_FLOAT_EQ(plain.error_feature_scale(0), (90 * 1 + 10 * 10000) / 100.0f);
  EXPECT_FLOAT_EQ(trimmed.error_feature_scale(0), 1.0f);  // the 90 smallest
  EXPECT_FLOAT_EQ(light.error_feature_scale(0), (90 * 1 + 5 * 10000) / 95.0f);
  for (const auto* s : {&plain, &trimmed, &light}) EXPECT_FLOAT_EQ(s->error_feature_scale(1), 4.0f);
  // The anomalous rows' errors now stand out in units of the normal rows'.
  EXPECT_GT(RowError(trimmed, &x[95 * d], &xh[95 * d], d), 1000.0f);
  EXPECT_LT(RowError(plain, &x[95 * d], &xh[95 * d], d), 10.0f);
  // Through training: the stored scales follow the parameter.
  Dataset data = DemoData(400, 4, 6);
  v1::TrainingParams p = EnsembleParams();
  p.set_ensemble_size(1);
  p.set_member_rows(0);
  p.set_error_scale_trim(0);
  auto m0 = TrainModel(data, p);
  p.set_error_scale_trim(0.2);
  auto m1 = TrainModel(data, p);
  ASSERT_TRUE(m0.ok() && m1.ok());
  EXPECT_EQ(m0->network().SerializeAsString(), m1->network().SerializeAsString());
  for (int c = 0; c < 4; ++c)
    EXPECT_LT(m1->score_stats().error_feature_scale(c), m0->score_stats().error_feature_scale(c));
}

TEST(EnsembleTest, RobustNoiseUsesTheInterquartileRange) {
  // Feature 0: a bulk of spread about 1 and a far 5% tail that inflates its
  // standard deviation to about 22; feature 1: a 0/1 flag, IQR 0, so its
  // noise keeps the standard deviation.
  const int n = 2000, d = 2;
  std::vector<float> x(n * d);
  Rng g(4);
  for (int r = 0; r < n; ++r) {
    x[r * d] = r % 20 == 0 ? 100.0f : static_cast<float>(g.Normal());
    x[r * d + 1] = r % 10 == 0 ? 1.0f : 0.0f;
  }
  v1::TrainingParams user;
  user.set_noise_originals(true);
  auto p = ResolveParams(user, d);
  ASSERT_TRUE(p.ok());
  v1::TrainingParams robust = *p;
  robust.set_robust_noise(true);
  // RMS displacement of the noised seed rows per feature.
  auto spread = [&](const v1::TrainingParams& params) {
    Rng rng(8);
    LabelledSet s = MakeSyntheticLabels(x.data(), n, d, params, rng, {}).value();
    std::vector<double> sq(d, 0.0);
    int moved = 0;
    for (int r = 0; r < n; ++r) {
      if (s.labels[r] != 1) continue;
      ++moved;
      for (int c = 0; c < d; ++c) sq[c] += std::pow(s.x[r * d + c] - x[r * d + c], 2);
    }
    for (double& v : sq) v = std::sqrt(v / moved);
    return sq;
  };
  const std::vector<double> plain = spread(*p), iqr = spread(robust);
  EXPECT_GT(plain[0], 15);
  EXPECT_NEAR(iqr[0], 1.0, 0.2);
  EXPECT_NEAR(plain[1], 0.3, 0.05);
  EXPECT_NEAR(iqr[1], plain[1], 0.05);
}

TEST(EnsembleTest, AlternateWeightWeighsTheAlternateMembers) {
  Dataset data = DemoData(500, 4, 8);
  data.labels.clear();  // unsupervised: DemoData's labels would be known anomalies
  v1::TrainingParams p = EnsembleParams();
  p.set_ensemble_size(4);
  p.set_member_rows(0);
  auto plain = TrainModel(data, p);
  p.set_alternate_weight(0.7);
  auto m = TrainModel(data, p);
  ASSERT_TRUE(plain.ok() && m.ok()) << m.status().message();
  // Same networks and tables; only the weights and the threshold differ.
  EXPECT_EQ(plain->ensemble(0).network().SerializeAsString(),
            m->ensemble(0).network().SerializeAsString());
  EXPECT_EQ(plain->score_stats().member_weight(), 0);
  EXPECT_DOUBLE_EQ(m->score_stats().member_weight(), 0.15);
  EXPECT_DOUBLE_EQ(m->ensemble(0).score_stats().member_weight(), 0.35);
  EXPECT_DOUBLE_EQ(m->ensemble(1).score_stats().member_weight(), 0.15);
  EXPECT_DOUBLE_EQ(m->ensemble(2).score_stats().member_weight(), 0.35);
  auto c = CompiledModel::Create(*m);
  ASSERT_TRUE(c.ok()) << c.status().message();
  std::vector<float> score(data.rows);
  ScoreOutputs out;
  out.score = score.data();
  ASSERT_TRUE((*c)->Score(data.x.data(), data.rows, out).ok());
  const std::vector<float> ref = ReferenceScores(*m, data, false);
  for (int64_t r = 0; r < data.rows; ++r) EXPECT_EQ(score[r], ref[r]) << r;
  // The threshold is still the weighted score's (1 - contamination) quantile.
  int flagged = 0;
  for (float v : score) flagged += v >= m->score_stats().threshold();
  EXPECT_NEAR(flagged / 500.0, m->params().contamination(), 0.01);
  // A file whose weights are partly set or do not sum to 1 is refused.
  v1::ModelFile bad = *m;
  bad.mutable_ensemble(0)->mutable_score_stats()->set_member_weight(0);
  EXPECT_THAT(std::string(ValidateModel(bad).message()),
              HasSubstr("ensemble member weights must all be 0 or all be positive"));
  bad = *m;
  bad.mutable_score_stats()->set_member_weight(0.3);
  EXPECT_FALSE(ValidateModel(bad).ok());
  bad = *m;
  bad.mutable_score_stats()->set_member_weight(-1);
  EXPECT_THAT(std::string(ValidateModel(bad).message()), HasSubstr("in [0, 1]"));
}

TEST(EnsembleTest, AlternateNoiseScaleChangesOnlyTheAlternateMembers) {
  Dataset data = DemoData(400, 4, 7);
  v1::TrainingParams p = EnsembleParams();
  p.set_member_rows(0);
  p.set_uniform_fraction(0);
  auto same = TrainModel(data, p);
  p.set_alternate_noise_scale(0.25);
  auto own = TrainModel(data, p);
  ASSERT_TRUE(same.ok() && own.ok());
  // Member 0 and 2 (the model's scaling) are bit-identical, member 1 (robust) is not.
  EXPECT_EQ(same->network().SerializeAsString(), own->network().SerializeAsString());
  EXPECT_NE(same->ensemble(0).network().noise_head().weight(0),
            own->ensemble(0).network().noise_head().weight(0));
  EXPECT_EQ(same->ensemble(1).network().noise_head().weight(0),
            own->ensemble(1).network().noise_head().weight(0));
  EXPECT_EQ(own->params().alternate_noise_scale(), 0.25);
}

TEST(EnsembleTest, ErrorScaleMakesTheFittingRowsAverageOne) {
  const int rows = 200, d = 3;
  std::vector<float> x(rows * d), xh(rows * d);
  Rng g(5);
  for (int i = 0; i < rows * d; ++i) {
    x[i] = static_cast<float>(g.Uniform());
    // Feature c errs with spread 3^-c: unscaled, feature 0 would dominate.
    xh[i] = x[i] + static_cast<float>(std::pow(3.0, -(i % d)) * g.Normal());
  }
  v1::ScoreStats s;
  FitErrorScale(x.data(), xh.data(), rows, d, &s);
  ASSERT_EQ(s.error_feature_scale_size(), d);
  double mean = 0;
  std::vector<double> per(d, 0.0), terms(d);
  for (int r = 0; r < rows; ++r) {
    mean += RowError(s, &x[r * d], &xh[r * d], d, terms.data());
    for (int c = 0; c < d; ++c) per[c] += terms[c];
  }
  EXPECT_NEAR(mean / rows, 1.0, 1e-4);
  for (int c = 0; c < d; ++c) EXPECT_NEAR(per[c] / rows, 1.0, 1e-4) << c;
  // Without scales, RowError is the plain mean squared error.
  v1::ScoreStats none;
  const float e = RowError(none, &x[0], &xh[0], d);
  double want = 0;
  for (int c = 0; c < d; ++c) want += (x[c] - xh[c]) * double(x[c] - xh[c]);
  EXPECT_FLOAT_EQ(e, static_cast<float>(want / d));
}

TEST(EnsembleTest, TrimmedReconstructionDropsTheLargestErrors) {
  const int d = 4, rows = 40;
  v1::TrainingParams user;
  user.set_dropout(0);
  user.set_trim_fraction(0);
  auto p0 = ResolveParams(user, d);
  ASSERT_TRUE(p0.ok());
  v1::TrainingParams pt = *p0;
  pt.set_trim_fraction(0.25);
  Rng a(7), b(7);
  TrainingNetwork plain(*p0, d, rows, a), trimmed(pt, d, rows, b);
  std::vector<float> x(rows * d), y(rows, 0.0f), xh(rows * d);
  Rng g(9);
  for (float& v : x) v = static_cast<float>(g.Uniform());
  for (int i = 0; i < d; ++i) x[3 * d + i] = 50.0f;  // one huge error
  plain.ForwardEval(x.data(), rows, nullptr, xh.data());
  std::vector<double> err(rows);
  for (int r = 0; r < rows; ++r) {
    double e = 0;
    for (int c = 0; c < d; ++c) e += (x[r * d + c] - xh[r * d + c]) * double(x[r * d + c] - xh[r * d + c]);
    err[r] = e / d;
  }
  std::vector<double> sorted = err;
  std::sort(sorted.begin(), sorted.end());
  double kept = 0;
  for (int i = 0; i < 30; ++i) kept += sorted[i];
  double all = 0;
  for (double e : err) all += e;
  EXPECT_NEAR(plain.EvalLoss(x.data(), y.data(), rows).reconstruction, all / rows, 1e-6 * all);
  EXPECT_NEAR(trimmed.EvalLoss(x.data(), y.data(), rows).reconstruction, kept / 30, 1e-6 * all);
}

TEST(EnsembleTest, UniformAndShuffledAnomaliesHaveTheirShapes) {
  const int n = 400, d = 3;
  std::vector<float> x(n * d);
  Rng g(1);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < d; ++c) x[r * d + c] = static_cast<float>(c + g.Uniform());
  v1::TrainingParams user;
  user.set_uniform_fraction(0.5);
  user.set_shuffle_fraction(0.5);
  auto p = ResolveParams(user, d);
  ASSERT_TRUE(p.ok());
  Rng rng(2);
  LabelledSet s = MakeSyntheticLabels(x.data(), n, d, *p, rng, {}).value();
  ASSERT_GT(s.synthetic, 100);
  std::vector<std::set<float>> column(d);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < d; ++c) column[c].insert(x[r * d + c]);
  int uniform = 0, shuffled = 0;
  for (int64_t r = n; r < s.rows; ++r) {
    EXPECT_EQ(s.labels[r], 1.0f);
    bool all_real = true, inside = true;
    for (int c = 0; c < d; ++c) {
      const float v = s.x[r * d + c];
      all_real = all_real && column[c].count(v) > 0;
      // Range [c, c + 1) widened by 10% each side.
      inside = inside && v >= c - 0.1f - 1e-5f && v <= c + 1.1f + 1e-5f;
    }
    EXPECT_TRUE(inside) << r;
    if (all_real) {
      ++shuffled;  // every value is some real row's value of that feature
      bool is_a_row = false;
      for (int o = 0; o < n && !is_a_row; ++o)
        is_a_row = std::equal(&x[o * d], &x[o * d] + d, &s.x[r * d]);
      EXPECT_FALSE(is_a_row) << "a shuffled row equals a real row: " << r;
    } else {
      ++uniform;
    }
  }
  EXPECT_NEAR(uniform, shuffled, 0.25 * s.synthetic);
  // With both shares at 0 the generator draws exactly what the paper's did.
  v1::TrainingParams plain_user;
  auto plain = ResolveParams(plain_user, d);
  v1::TrainingParams zero = *plain;
  zero.set_uniform_fraction(0);
  zero.set_shuffle_fraction(0);
  Rng r1(3), r2(3);
  EXPECT_EQ(MakeSyntheticLabels(x.data(), n, d, *plain, r1, {}).value().x,
            MakeSyntheticLabels(x.data(), n, d, zero, r2, {}).value().x);
  EXPECT_EQ(r1.Next(), r2.Next());
}

}  // namespace
}  // namespace anorand::test_support
