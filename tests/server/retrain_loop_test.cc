// Closing the loop through the real server (models.proto SetRetrainPolicy;
// server/retrain_loop.h): a model serving an alias sees a drifting stream
// (the demo-data generator with a shift); the loop submits a job on the
// reservoir, shadows its version, and promotes it when the comparison
// passes, or holds it when it does not; every step is in the history, the
// job record and the metrics, the job includes the operators' feedback,
// a restart resumes the stage, a paused or
// cleared policy takes no step, and every bad policy is refused with
// nothing written.
#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "anorand/v1/feedback.grpc.pb.h"
#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/trainer.h"
#include "server/retrain_loop.h"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"

namespace anorand::test_support {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
constexpr int kD = 6;
constexpr uint64_t kSeed = 5;
constexpr double kShift = 3;  // standard deviations: a major drift

class RetrainLoopTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    v1::TrainingParams p;
    p.set_max_epochs(3);
    p.set_min_steps(0);
    p.set_ensemble_size(1);
    p.set_seed(kSeed);
    p.add_encoder_widths(16);
    p.add_encoder_widths(8);
    p.add_decoder_widths(16);
    auto m = TrainModel(SliceRows(DemoData(1500, kD, kSeed), 0, 1500), p);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = new v1::ModelFile(*std::move(m));
    drifted_ = new Dataset(DemoData(4000, kD, kSeed + 1, kShift));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete drifted_;
  }

  static ServerOptions Options() {
    ServerOptions o;
    o.poll_seconds = 0;
    o.model_dir = "models";
    o.metrics_address = "127.0.0.1:0";
    o.drift_window_records = 400;
    o.drift_sample = 1;
    o.reservoir_records = {{"m", 2000}};
    o.retrain_check_seconds = 0.05;
    return o;
  }
  static v1::RetrainPolicy Policy() {
    v1::RetrainPolicy p;
    p.set_alias("production");
    p.set_score_psi_threshold(0.25);
    p.set_sustained_seconds(0.3);
    p.set_shadow_sample_fraction(1);
    p.set_min_compared_records(300);
    p.set_min_rank_correlation(-1);
    p.set_max_shadow_only_flagged_ratio(1);
    return p;
  }
  static grpc::Status SetPolicy(ServerEnv& env, const v1::RetrainPolicy& policy,
                                v1::ModelInfo* info, const std::string& name = "m") {
    grpc::ClientContext ctx;
    v1::SetRetrainPolicyRequest req;
    req.set_model_name(name);
    *req.mutable_policy() = policy;
    return env.models()->SetRetrainPolicy(&ctx, req, info);
  }
  static v1::ModelInfo Get(ServerEnv& env) { return env.GetModel("m"); }
  static std::vector<v1::ModelEventKind> Kinds(ServerEnv& env,
                                               std::vector<v1::ModelEvent>* events = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::GetModelHistoryRequest req;
    req.set_model_name("m");
    v1::ModelHistory h;
    const grpc::Status s = env.models()->GetModelHistory(&ctx, req, &h);
    EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
    std::vector<v1::ModelEventKind> kinds;
    for (const auto& e : h.events()) kinds.push_back(e.kind());
    if (events) events->assign(h.events().begin(), h.events().end());
    return kinds;
  }
  // 250 drifted records to the alias, from row `at` of the drifted draw.
  static void ScoreDrifted(ServerEnv& env, int64_t at) {
    at %= drifted_->rows - 250;
    v1::ScoreRequest req;
    req.mutable_model()->set_name("m");
    req.mutable_model()->set_alias("production");
    req.mutable_batch()->set_num_features(kD);
    req.mutable_batch()->mutable_values()->Add(drifted_->x.begin() + at * kD,
                                               drifted_->x.begin() + (at + 250) * kD);
    grpc::ClientContext ctx;
    v1::ScoreResponse resp;
    ASSERT_TRUE(env.scoring()->Score(&ctx, req, &resp).ok());
  }
  // Scores drifted records until the history's last event is `kind`.
  static bool DriftUntil(ServerEnv& env, v1::ModelEventKind kind) {
    int64_t at = 0;
    return WaitUntil(
        [&] {
          ScoreDrifted(env, at);
          at += 250;
          const auto kinds = Kinds(env);
          return !kinds.empty() && kinds.back() == kind;
        },
        120, 10);
  }
  static v1::Job GetJob(ServerEnv& env, const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id(id);
    v1::Job job;
    EXPECT_TRUE(v1::Training::NewStub(env.channel())->GetJob(&ctx, req, &job).ok());
    return job;
  }
  // Whether the metrics endpoint shows this sample line.
  static bool HasSample(ServerEnv& env, const std::string& line) {
    return HttpGetRaw(env.server().metrics_port(), "/metrics").find("\n" + line + "\n") !=
           std::string::npos;
  }

  static v1::ModelFile* model_;
  static Dataset* drifted_;
};
v1::ModelFile* RetrainLoopTest::model_ = nullptr;
Dataset* RetrainLoopTest::drifted_ = nullptr;

TEST_F(RetrainLoopTest, DriftRetrainsOnTheReservoirShadowsAndPromotes) {
  ServerEnv env(Options());
  ASSERT_TRUE(env.Import("m", *model_, 0, "production").ok());
  v1::ModelInfo info;
  ASSERT_TRUE(SetPolicy(env, Policy(), &info).ok());
  ASSERT_TRUE(info.has_retrain());
  EXPECT_EQ(info.retrain().stage(), v1::RETRAIN_STAGE_WATCHING);

  ASSERT_TRUE(DriftUntil(env, v1::MODEL_EVENT_PROMOTED));
  std::vector<v1::ModelEvent> events;
  EXPECT_THAT(Kinds(env, &events),
              ElementsAre(v1::MODEL_EVENT_POLICY_SET, v1::MODEL_EVENT_RETRAIN_SUBMITTED,
                          v1::MODEL_EVENT_SHADOW_SET, v1::MODEL_EVENT_PROMOTED));
  EXPECT_THAT(events[1].detail(), HasSubstr("score PSI"));
  EXPECT_EQ(events[1].version(), 1);
  EXPECT_EQ(events[3].candidate_version(), 2);
  EXPECT_THAT(events[3].detail(), HasSubstr("rank correlation"));

  // The job says why it ran, and trained on the reservoir with version 1's params.
  const v1::Job job = GetJob(env, events[1].job_id());
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_TRUE(job.spec().from_reservoir());
  EXPECT_THAT(job.spec().description(), HasSubstr("retrain policy of alias 'production'"));
  EXPECT_EQ(job.spec().params().encoder_widths_size(), 2);
  EXPECT_EQ(job.published_version(), 2);

  info = Get(env);
  EXPECT_EQ(info.aliases().at("production"), 2);
  EXPECT_FALSE(info.has_shadow());
  EXPECT_EQ(info.retrain().stage(), v1::RETRAIN_STAGE_WATCHING);
  ASSERT_EQ(info.versions_size(), 2);
  EXPECT_THAT(info.versions(1).feature_names(),
              ::testing::ElementsAreArray(info.versions(0).feature_names()));

  // The new version fits the drifted traffic its reservoir held.
  for (int64_t at = 0; at < 500; at += 250) ScoreDrifted(env, at);
  grpc::ClientContext ctx;
  v1::GetDriftRequest req;
  req.mutable_model()->set_name("m");
  req.mutable_model()->set_alias("production");
  v1::DriftReport drift;
  ASSERT_TRUE(env.models()->GetDrift(&ctx, req, &drift).ok());
  EXPECT_EQ(drift.version(), 2);
  EXPECT_LT(drift.score_psi(), 0.25);

  EXPECT_TRUE(HasSample(env, "anorand_retrain_events_total{model=\"m\",kind=\"promoted\"} 1"));
  EXPECT_TRUE(HasSample(env, "anorand_retrain_stage{model=\"m\",stage=\"watching\"} 1"));
}

TEST_F(RetrainLoopTest, TheLoopsJobIncludesTheOperatorsFeedback) {
  ServerEnv env(Options());
  ASSERT_TRUE(env.Import("m", *model_, 0, "production").ok());
  // Three drifted records confirmed anomalous, two confirmed normal.
  v1::AddFeedbackRequest fb;
  fb.set_model_name("m");
  fb.set_num_features(kD);
  fb.mutable_values()->Add(drifted_->x.begin(), drifted_->x.begin() + 5 * kD);
  for (auto label : {v1::FEEDBACK_LABEL_ANOMALY, v1::FEEDBACK_LABEL_ANOMALY,
                     v1::FEEDBACK_LABEL_ANOMALY, v1::FEEDBACK_LABEL_NORMAL,
                     v1::FEEDBACK_LABEL_NORMAL}) {
    fb.add_labels(label);
  }
  {
    grpc::ClientContext ctx;
    v1::AddFeedbackResponse resp;
    ASSERT_TRUE(v1::Feedback::NewStub(env.channel())->AddFeedback(&ctx, fb, &resp).ok());
  }
  v1::ModelInfo info;
  ASSERT_TRUE(SetPolicy(env, Policy(), &info).ok());
  ASSERT_TRUE(DriftUntil(env, v1::MODEL_EVENT_SHADOW_SET));
  std::vector<v1::ModelEvent> events;
  Kinds(env, &events);
  ASSERT_GE(events.size(), 2u);
  EXPECT_THAT(events[1].detail(), HasSubstr("reservoir records and 5 feedback records"));
  const v1::Job job = GetJob(env, events[1].job_id());
  EXPECT_TRUE(job.spec().from_reservoir());
  EXPECT_TRUE(job.spec().include_feedback());
  EXPECT_EQ(job.data_feedback_rows(), 5);
  EXPECT_EQ(job.data_labeled_anomalies(), 3);
  EXPECT_EQ(job.summary().known_anomalies(), 3);
}

TEST_F(RetrainLoopTest, ACandidateThatFailsTheComparisonIsHeldInShadowAcrossARestart) {
  ServerEnv env(Options());
  ASSERT_TRUE(env.Import("m", *model_, 0, "production").ok());
  v1::RetrainPolicy policy = Policy();
  policy.set_min_rank_correlation(1);  // no other version ranks records exactly alike
  v1::ModelInfo info;
  ASSERT_TRUE(SetPolicy(env, policy, &info).ok());
  ASSERT_TRUE(DriftUntil(env, v1::MODEL_EVENT_HELD));
  std::vector<v1::ModelEvent> events;
  Kinds(env, &events);
  EXPECT_THAT(events.back().detail(), HasSubstr("below the policy's min_rank_correlation"));

  info = Get(env);
  EXPECT_EQ(info.aliases().at("production"), 1);
  EXPECT_EQ(info.shadow().version(), 2);
  EXPECT_EQ(info.retrain().stage(), v1::RETRAIN_STAGE_HELD);
  EXPECT_EQ(info.retrain().candidate_version(), 2);
  EXPECT_TRUE(HasSample(env, "anorand_retrain_stage{model=\"m\",stage=\"held\"} 1"));

  // Held until an operator acts, across a restart: the stage is the history's.
  env.Stop();
  env.Start();
  for (int64_t at = 0; at < 1000; at += 250) ScoreDrifted(env, at);
  EXPECT_TRUE(WaitUntil([&] { return Get(env).has_retrain(); }, 10));
  info = Get(env);
  EXPECT_EQ(info.retrain().stage(), v1::RETRAIN_STAGE_HELD);
  EXPECT_EQ(info.aliases().at("production"), 1);
  EXPECT_EQ(Kinds(env).back(), v1::MODEL_EVENT_HELD);

  // Setting the policy again releases it.
  ASSERT_TRUE(SetPolicy(env, Policy(), &info).ok());
  EXPECT_EQ(info.retrain().stage(), v1::RETRAIN_STAGE_WATCHING);
}

// No reservoir to train on: the step is recorded with the reason, the model
// stays watching, and the next attempt waits a whole sustained period.
TEST_F(RetrainLoopTest, ADriftWithNothingToTrainOnIsRecordedAndWatchingGoesOn) {
  ServerOptions o = Options();
  o.reservoir_records.clear();
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *model_, 0, "production").ok());
  v1::ModelInfo info;
  ASSERT_TRUE(SetPolicy(env, Policy(), &info).ok());
  ASSERT_TRUE(DriftUntil(env, v1::MODEL_EVENT_RETRAIN_NOT_SUBMITTED));
  std::vector<v1::ModelEvent> events;
  Kinds(env, &events);
  EXPECT_THAT(events.back().detail(), HasSubstr("--reservoir_records m=ROWS"));
  EXPECT_EQ(events.back().version(), 1);
  info = Get(env);
  EXPECT_EQ(info.retrain().stage(), v1::RETRAIN_STAGE_WATCHING);
  EXPECT_EQ(info.versions_size(), 1);
  EXPECT_TRUE(HasSample(env, "anorand_retrain_events_total{model=\"m\",kind=\"retrain_not_submitted\"} 1"));
}

TEST_F(RetrainLoopTest, APausedOrClearedPolicyTakesNoStep) {
  ServerEnv env(Options());
  ASSERT_TRUE(env.Import("m", *model_, 0, "production").ok());
  v1::RetrainPolicy policy = Policy();
  policy.set_paused(true);
  v1::ModelInfo info;
  ASSERT_TRUE(SetPolicy(env, policy, &info).ok());
  EXPECT_EQ(info.retrain().stage(), v1::RETRAIN_STAGE_PAUSED);
  // Drift sustained for several times the policy's period, checked every 50 ms.
  const auto drift_for = [&](double seconds) {
    int64_t at = 0;
    WaitUntil(
        [&] {
          ScoreDrifted(env, at);
          at += 250;
          return false;
        },
        seconds, 10);
  };
  drift_for(1.5);
  EXPECT_THAT(Kinds(env), ElementsAre(v1::MODEL_EVENT_POLICY_SET));

  grpc::ClientContext ctx;
  v1::ClearRetrainPolicyRequest clear;
  clear.set_model_name("m");
  ASSERT_TRUE(env.models()->ClearRetrainPolicy(&ctx, clear, &info).ok());
  EXPECT_FALSE(info.has_retrain());
  drift_for(1.5);
  EXPECT_THAT(Kinds(env), ElementsAre(v1::MODEL_EVENT_POLICY_SET, v1::MODEL_EVENT_POLICY_CLEARED));
  EXPECT_EQ(Get(env).versions_size(), 1);
  grpc::ClientContext again;
  EXPECT_TRUE(env.models()->ClearRetrainPolicy(&again, clear, &info).ok());  // none: no-op
  EXPECT_EQ(Kinds(env).size(), 2u);
}

TEST_F(RetrainLoopTest, EveryBadPolicyIsRefusedAndNothingIsWritten) {
  ServerEnv env(Options());
  ASSERT_TRUE(env.Import("m", *model_, 0, "production").ok());
  struct Case {
    std::function<void(v1::RetrainPolicy*)> change;
    std::string message;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<Case> cases = {
      {[](v1::RetrainPolicy* p) { p->clear_alias(); }, "policy.alias is required"},
      {[](v1::RetrainPolicy* p) { p->set_alias("latest"); }, "cannot be 'latest'"},
      {[](v1::RetrainPolicy* p) { p->set_alias("Bad Alias"); }, "alias"},
      {[](v1::RetrainPolicy* p) { p->set_score_psi_threshold(-1); }, "score_psi_threshold"},
      {[&](v1::RetrainPolicy* p) { p->set_score_psi_threshold(nan); }, "score_psi_threshold"},
      {[](v1::RetrainPolicy* p) { p->set_sustained_seconds(-5); }, "sustained_seconds"},
      {[](v1::RetrainPolicy* p) { p->set_shadow_sample_fraction(1.5); },
       "shadow_sample_fraction"},
      {[](v1::RetrainPolicy* p) { p->set_min_compared_records(1); }, "min_compared_records"},
      {[](v1::RetrainPolicy* p) { p->set_min_rank_correlation(2); }, "min_rank_correlation"},
      {[](v1::RetrainPolicy* p) { p->set_max_shadow_only_flagged_ratio(-0.1); },
       "max_shadow_only_flagged_ratio"},
  };
  for (const Case& c : cases) {
    v1::RetrainPolicy p = Policy();
    c.change(&p);
    v1::ModelInfo info;
    grpc::Status s = SetPolicy(env, p, &info);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
  v1::ModelInfo info;
  EXPECT_EQ(SetPolicy(env, Policy(), &info, "nope").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(SetPolicy(env, Policy(), &info, "bad name").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext ctx;
  v1::GetModelHistoryRequest history;
  history.set_model_name("m");
  history.set_limit(-1);
  v1::ModelHistory h;
  EXPECT_EQ(env.models()->GetModelHistory(&ctx, history, &h).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Kinds(env).empty());
  EXPECT_FALSE(Get(env).has_retrain());

  // Unset fields take the documented defaults.
  v1::RetrainPolicy minimal;
  minimal.set_alias("production");
  ASSERT_TRUE(SetPolicy(env, minimal, &info).ok());
  const v1::RetrainPolicy& p = info.retrain().policy();
  EXPECT_EQ(p.score_psi_threshold(), 0.25);
  EXPECT_EQ(p.sustained_seconds(), 3600);
  EXPECT_EQ(p.shadow_sample_fraction(), 0.1);
  EXPECT_EQ(p.min_compared_records(), 1000);
  EXPECT_EQ(p.min_rank_correlation(), 0);
  EXPECT_EQ(p.max_shadow_only_flagged_ratio(), 0.05);

  // A damaged policy file (a hand edit) is not applied, and setting the
  // policy again replaces it.
  {
    std::ofstream damaged(env.model_dir() + "/m/retrain_policy.json", std::ios::trunc);
    damaged << "{\"alias\": ";
  }
  EXPECT_TRUE(WaitUntil([&] { return !Get(env).has_retrain(); }, 10));
  ASSERT_TRUE(SetPolicy(env, minimal, &info).ok());
  EXPECT_EQ(Get(env).retrain().policy().alias(), "production");
}

TEST(JudgeCandidateTest, PromotesOnlyWithinBothThresholds) {
  v1::RetrainPolicy p;
  p.set_min_rank_correlation(0.5);
  p.set_max_shadow_only_flagged_ratio(0.05);
  ShadowComparisonStats c;
  c.rank_correlation = 0.7;
  c.shadow_only_flagged = 0.01;
  c.serving_only_flagged = 0.9;  // not limited: the old version flags drifted traffic
  EXPECT_TRUE(JudgeCandidate(p, c).ok());
  c.rank_correlation = 0.4;
  EXPECT_THAT(std::string(JudgeCandidate(p, c).message()), HasSubstr("min_rank_correlation"));
  c.rank_correlation = 0.7;
  c.shadow_only_flagged = 0.06;
  EXPECT_THAT(std::string(JudgeCandidate(p, c).message()),
              HasSubstr("max_shadow_only_flagged_ratio"));
}

}  // namespace
}  // namespace anorand::test_support
