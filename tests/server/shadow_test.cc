// Shadow scoring (models.proto SetShadow; server/shadow.h): the rank
// correlation itself, the scorer behind a real ScoreHandler (sampling,
// the bounded queue, a version never compared with itself), then through
// the real server over gRPC: SetShadow/ClearShadow/CompareShadow, their
// refusals, the responses left unchanged, the metrics, and the shadow kept
// in the store for a restart and a second replica.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics.h"
#include "server/score_handler.h"
#include "server/shadow.h"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

ScoreHooks WithShadow(ShadowScorer* shadow) {
  ScoreHooks hooks;
  hooks.shadow = shadow;
  return hooks;
}
constexpr int kD = 6;

TEST(SpearmanTest, MatchesTheDefinition) {
  EXPECT_DOUBLE_EQ(SpearmanCorrelation({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
  EXPECT_DOUBLE_EQ(SpearmanCorrelation({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  // Monotone but not linear: ranks agree.
  EXPECT_DOUBLE_EQ(SpearmanCorrelation({1, 2, 3, 4, 5}, {1, 8, 27, 64, 125}), 1.0);
  // Ties take their mean rank: ranks (1, 2.5, 2.5, 4) and (1, 2, 3, 4) have
  // Pearson correlation 4.5 / sqrt(4.5 * 5).
  EXPECT_NEAR(SpearmanCorrelation({1, 2, 2, 3}, {1, 2, 3, 4}), 4.5 / std::sqrt(4.5 * 5), 1e-12);
  // One swap in five: 1 - 6 * 2 / (5 * 24) = 0.9.
  EXPECT_NEAR(SpearmanCorrelation({1, 2, 3, 4, 5}, {2, 1, 3, 4, 5}), 0.9, 1e-12);
  EXPECT_EQ(SpearmanCorrelation({1, 1, 1}, {1, 2, 3}), 0.0) << "a constant side";
  EXPECT_EQ(SpearmanCorrelation({1}, {2}), 0.0);
  EXPECT_EQ(SpearmanCorrelation({}, {}), 0.0);
}

// A registry with model "m": versions 1 and 2 from the same model file
// (identical scores), version 3 from another.
class ShadowScorerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Add(1, TinyModel(kD, 1));
    Add(2, TinyModel(kD, 1));
    Add(3, TinyModel(kD, 2));
  }
  void Add(int64_t version, v1::ModelFile file) {
    auto compiled = CompiledModel::Create(std::move(file));
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    VersionEntry e;
    e.state = VersionState::kReady;
    e.model = *compiled;
    registry_.SetVersion("m", version, std::move(e));
  }
  absl::Status Score(const ScoreHandler& h, int64_t version, int64_t rows, uint64_t seed = 7) {
    v1::ScoreRequest req = MakeRequest("m", rows, kD, seed);
    req.mutable_model()->set_version(version);
    v1::ScoreResponse resp;
    return h.Score(req, &resp);
  }
  Registry registry_;
};

TEST_F(ShadowScorerTest, IdenticalVersionsAgreeExactlyAndADifferentOneDoesNot) {
  ShadowScorer shadow(&registry_, ShadowOptions{});
  shadow.Start();
  ScoreHandler h(&registry_, ScoreLimits{}, WithShadow(&shadow));
  registry_.SetShadow("m", ShadowSpec{2, "", 1.0});
  ASSERT_TRUE(Score(h, 1, 300).ok());
  shadow.Flush();
  registry_.SetShadow("m", ShadowSpec{3, "", 1.0});
  ASSERT_TRUE(Score(h, 1, 300, 8).ok());
  // Version 3 answering with version 3 as its shadow: nothing to compare.
  ASSERT_TRUE(Score(h, 3, 50).ok());
  shadow.Flush();
  auto c = shadow.Compare("m");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].shadow_version, 3) << "most recently updated first";
  EXPECT_EQ(c[1].version, 1);
  EXPECT_EQ(c[1].shadow_version, 2);
  EXPECT_EQ(c[1].compared, 300);
  EXPECT_EQ(c[1].window, 300);
  EXPECT_DOUBLE_EQ(c[1].rank_correlation, 1.0);
  EXPECT_EQ(c[1].serving_only_flagged, 0.0);
  EXPECT_EQ(c[1].shadow_only_flagged, 0.0);
  EXPECT_EQ(c[1].serving_scores.p50, c[1].shadow_scores.p50);
  EXPECT_EQ(c[1].serving_scores.p99, c[1].shadow_scores.p99);
  EXPECT_EQ(c[0].version, 1);
  EXPECT_EQ(c[0].compared, 300);
  EXPECT_LT(c[0].rank_correlation, 0.9999) << "another model ranks the records differently";
  EXPECT_NE(c[0].serving_scores.p50, c[0].shadow_scores.p50);
  EXPECT_EQ(shadow.Dropped("m"), 0);
}

TEST_F(ShadowScorerTest, TheWindowKeepsTheMostRecentRecords) {
  ShadowScorer shadow(&registry_, ShadowOptions{100000, 50});
  shadow.Start();
  ScoreHandler h(&registry_, ScoreLimits{}, WithShadow(&shadow));
  registry_.SetShadow("m", ShadowSpec{2, "", 1.0});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Score(h, 1, 30, 20 + i).ok());
  shadow.Flush();
  auto c = shadow.Compare("m");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].compared, 120);
  EXPECT_EQ(c[0].window, 50);
}

TEST_F(ShadowScorerTest, SamplesTheShareAsked) {
  ShadowScorer shadow(&registry_, ShadowOptions{});
  shadow.Start();
  ScoreHandler h(&registry_, ScoreLimits{}, WithShadow(&shadow));
  registry_.SetShadow("m", ShadowSpec{0, "latest", 0.25});  // latest = 3
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Score(h, 1, 1000, 30 + i).ok());
  shadow.Flush();
  auto c = shadow.Compare("m");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].shadow_version, 3);
  // Binomial(8000, 0.25): mean 2000, standard deviation about 39.
  EXPECT_GT(c[0].compared, 1750);
  EXPECT_LT(c[0].compared, 2250);
}

// While scoring is busy the worker waits (up to yield_max_pause per pass)
// instead of taking CPU from the answers; a pause that long still lets it
// through, so a replica that stays busy gets some comparison.
TEST_F(ShadowScorerTest, TheWorkerWaitsWhileScoringIsBusyForAtMostItsPause) {
  ScoringLoad load(/*busy_at=*/1);
  ShadowOptions options;
  options.scoring_load = &load;
  options.yield_max_pause = absl::Minutes(10);
  ShadowScorer shadow(&registry_, options);
  shadow.Start();
  ScoreHandler h(&registry_, ScoreLimits{}, WithShadow(&shadow));
  registry_.SetShadow("m", ShadowSpec{2, "", 1.0});
  load.Begin();  // a request in flight
  ASSERT_TRUE(Score(h, 1, 300).ok());
  absl::SleepFor(absl::Milliseconds(200));  // an observation window: nothing may happen in it
  EXPECT_TRUE(shadow.Compare("m").empty());
  load.End();
  shadow.Flush();
  auto c = shadow.Compare("m");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].compared, 300);

  ShadowOptions brief = options;
  brief.yield_max_pause = absl::Milliseconds(5);
  ShadowScorer patient(&registry_, brief);
  patient.Start();
  ScoreHandler to_patient(&registry_, ScoreLimits{}, WithShadow(&patient));
  load.Begin();  // busy for good: each pass waits 5 ms, then goes
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Score(to_patient, 1, 200, 40 + i).ok());
  patient.Flush();
  c = patient.Compare("m");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].compared, 600);
  load.End();
}

TEST_F(ShadowScorerTest, AFullQueueDropsAndCountsWithoutTouchingTheAnswer) {
  ShadowScorer shadow(&registry_, ShadowOptions{100, 10000});  // worker not started
  ScoreHandler h(&registry_, ScoreLimits{}, WithShadow(&shadow));
  registry_.SetShadow("m", ShadowSpec{2, "", 1.0});
  v1::ScoreRequest req = MakeRequest("m", 80, kD);
  req.mutable_model()->set_version(1);
  v1::ScoreResponse first, second;
  ASSERT_TRUE(h.Score(req, &first).ok());   // 80 queued
  ASSERT_TRUE(h.Score(req, &second).ok());  // 80 more would pass 100: dropped
  EXPECT_EQ(shadow.Dropped("m"), 80);
  ScoreHandler plain(&registry_, ScoreLimits{});
  v1::ScoreResponse without;
  ASSERT_TRUE(plain.Score(req, &without).ok());
  EXPECT_EQ(second.SerializeAsString(), without.SerializeAsString());
  shadow.Start();
  shadow.Flush();
  auto c = shadow.Compare("m");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].compared, 80);
}

TEST_F(ShadowScorerTest, NoShadowOrAShadowThatCannotScoreSamplesNothing) {
  ShadowScorer shadow(&registry_, ShadowOptions{});
  shadow.Start();
  ScoreHandler h(&registry_, ScoreLimits{}, WithShadow(&shadow));
  ASSERT_TRUE(Score(h, 1, 20).ok());  // no shadow
  registry_.SetShadow("m", ShadowSpec{0, "canary", 1.0});  // no such alias
  ASSERT_TRUE(Score(h, 1, 20).ok());
  VersionEntry unloaded;
  unloaded.state = VersionState::kUnloaded;
  registry_.SetVersion("m", 4, unloaded);
  registry_.SetShadow("m", ShadowSpec{4, "", 1.0});
  ASSERT_TRUE(Score(h, 1, 20).ok());
  shadow.Flush();
  EXPECT_TRUE(shadow.Compare("m").empty());
  EXPECT_EQ(shadow.Dropped("m"), 0);
}

// Through the real server.
class ShadowServerTest : public ::testing::Test {
 protected:
  static ServerOptions Options(const std::string& dir) {
    ServerOptions o;
    o.poll_seconds = 0;
    o.model_dir = dir;
    o.metrics_address = "127.0.0.1:0";
    return o;
  }
  static void ImportThree(ServerEnv& env) {
    ASSERT_TRUE(env.Import("m", TinyModel(kD, 1)).ok());
    ASSERT_TRUE(env.Import("m", TinyModel(kD, 1)).ok());
    ASSERT_TRUE(env.Import("m", TinyModel(kD, 2)).ok());
  }
  static grpc::Status SetShadow(ServerEnv& env, const std::string& model, int64_t version,
                                const std::string& alias, double sample,
                                v1::ModelInfo* info = nullptr) {
    grpc::ClientContext ctx;
    v1::SetShadowRequest req;
    req.set_model_name(model);
    req.set_version(version);
    req.set_alias(alias);
    req.set_sample_fraction(sample);
    v1::ModelInfo ignored;
    return env.models()->SetShadow(&ctx, req, info ? info : &ignored);
  }
  static v1::CompareShadowResponse Compare(ServerEnv& env) {
    grpc::ClientContext ctx;
    v1::CompareShadowRequest req;
    req.set_model_name("m");
    v1::CompareShadowResponse resp;
    EXPECT_TRUE(env.models()->CompareShadow(&ctx, req, &resp).ok());
    return resp;
  }
  static v1::ModelInfo Get(ServerEnv& env) { return env.GetModel("m"); }
  static v1::ScoreResponse Score(ServerEnv& env, int64_t version, int64_t rows, uint64_t seed) {
    grpc::ClientContext ctx;
    v1::ScoreRequest req = MakeRequest("m", rows, kD, seed);
    req.mutable_model()->set_version(version);
    v1::ScoreResponse resp;
    EXPECT_TRUE(env.scoring()->Score(&ctx, req, &resp).ok());
    return resp;
  }
  TempDir dir_;
};

TEST_F(ShadowServerTest, SetCompareAndClearThroughGrpc) {
  ServerEnv env(Options(dir_.path()));
  ImportThree(env);
  const v1::ScoreResponse before = Score(env, 1, 40, 5);
  v1::ModelInfo info;
  ASSERT_TRUE(SetShadow(env, "m", 2, "", 1.0, &info).ok());
  EXPECT_EQ(info.shadow().version(), 2);
  EXPECT_EQ(info.shadow().sample_fraction(), 1.0);
  EXPECT_EQ(Get(env).shadow().version(), 2);
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/m/shadow.json"));
  // The answer is the same with a shadow as without.
  EXPECT_EQ(Score(env, 1, 40, 5).SerializeAsString(), before.SerializeAsString());
  // A stream's records are compared too.
  {
    grpc::ClientContext ctx;
    auto stream = env.scoring()->StreamScore(&ctx);
    v1::ScoreRequest req = MakeRequest("m", 10, kD, 6);
    req.mutable_model()->set_version(1);
    ASSERT_TRUE(stream->Write(req));
    v1::ScoreResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    stream->WritesDone();
    ASSERT_TRUE(stream->Finish().ok());
  }
  ASSERT_TRUE(WaitUntil([&] {
    auto c = Compare(env);
    return c.comparisons_size() == 1 && c.comparisons(0).compared_records() == 50;
  }, 30));
  v1::CompareShadowResponse c = Compare(env);
  EXPECT_EQ(c.shadow().version(), 2);
  EXPECT_EQ(c.comparisons(0).version(), 1);
  EXPECT_EQ(c.comparisons(0).shadow_version(), 2);
  EXPECT_DOUBLE_EQ(c.comparisons(0).rank_correlation(), 1.0);
  EXPECT_EQ(c.comparisons(0).serving_only_flagged_ratio(), 0.0);

  const std::string metrics = HttpGetRaw(env.server().metrics_port(), "/metrics");
  ASSERT_THAT(metrics, HasSubstr("200 OK"));
  EXPECT_THAT(metrics, HasSubstr("anorand_shadow_compared_records_total{model=\"m\",version="
                                 "\"1\",shadow_version=\"2\"} 50"));
  EXPECT_THAT(metrics, HasSubstr("anorand_shadow_rank_correlation{model=\"m\",version=\"1\","
                                 "shadow_version=\"2\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("anorand_shadow_flag_disagreement_ratio{model=\"m\",version="
                                 "\"1\",shadow_version=\"2\",direction=\"shadow_only\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("anorand_shadow_score_quantile{model=\"m\",version=\"1\","
                                 "shadow_version=\"2\",scorer=\"shadow\",quantile=\"0.99\"}"));

  {
    grpc::ClientContext ctx;
    v1::ClearShadowRequest req;
    req.set_model_name("m");
    v1::ModelInfo cleared;
    ASSERT_TRUE(env.models()->ClearShadow(&ctx, req, &cleared).ok());
    EXPECT_FALSE(cleared.has_shadow());
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/m/shadow.json"));
  Score(env, 1, 40, 9);
  // Cleared: nothing more is sampled (the scorer is offered the request
  // before the answer is sent, so there is nothing left in flight).
  c = Compare(env);
  EXPECT_FALSE(c.has_shadow());
  ASSERT_EQ(c.comparisons_size(), 1);
  EXPECT_EQ(c.comparisons(0).compared_records(), 50) << "the comparison so far is kept";
}

TEST_F(ShadowServerTest, EveryRefusalNamesTheProblemAndStoresNothing) {
  ServerEnv env(Options(dir_.path()));
  ImportThree(env);
  struct Case {
    std::string model;
    int64_t version;
    std::string alias;
    double sample;
    grpc::StatusCode code;
    const char* message;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const Case& c : std::vector<Case>{
           {"m", 0, "", 0.5, grpc::INVALID_ARGUMENT, "exactly one of the shadow's version and alias"},
           {"m", 2, "canary", 0.5, grpc::INVALID_ARGUMENT, "exactly one"},
           {"m", -1, "", 0.5, grpc::INVALID_ARGUMENT, "version"},
           {"m", 2, "", 0, grpc::INVALID_ARGUMENT, "sample_fraction is 0; it must be in (0, 1]"},
           {"m", 2, "", 1.5, grpc::INVALID_ARGUMENT, "sample_fraction is 1.5"},
           {"m", 2, "", nan, grpc::INVALID_ARGUMENT, "sample_fraction is nan"},
           {"m", 0, "Bad Alias", 0.5, grpc::INVALID_ARGUMENT, "alias"},
           {"../m", 2, "", 0.5, grpc::INVALID_ARGUMENT, "model name"},
           {"nosuch", 2, "", 0.5, grpc::NOT_FOUND, "model 'nosuch' not found"},
           {"m", 9, "", 0.5, grpc::NOT_FOUND, "model 'm' has no version 9"},
           {"m", 0, "canary", 0.5, grpc::NOT_FOUND, "model 'm' has no alias 'canary'"}}) {
    SCOPED_TRACE(c.message);
    grpc::Status s = SetShadow(env, c.model, c.version, c.alias, c.sample);
    EXPECT_EQ(s.error_code(), c.code);
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/m/shadow.json"));
  EXPECT_FALSE(Get(env).has_shadow());
  // A valid shadow, then a refused change: the valid one stays.
  ASSERT_TRUE(SetShadow(env, "m", 0, "latest", 0.5).ok());
  EXPECT_FALSE(SetShadow(env, "m", 9, "", 0.5).ok());
  EXPECT_EQ(Get(env).shadow().alias(), "latest");
  for (const char* name : {"nosuch", "../m"}) {
    grpc::ClientContext c1, c2;
    v1::ClearShadowRequest clear;
    clear.set_model_name(name);
    v1::ModelInfo info;
    v1::CompareShadowRequest compare;
    compare.set_model_name(name);
    v1::CompareShadowResponse resp;
    const grpc::StatusCode want =
        std::string(name) == "nosuch" ? grpc::NOT_FOUND : grpc::INVALID_ARGUMENT;
    EXPECT_EQ(env.models()->ClearShadow(&c1, clear, &info).error_code(), want) << name;
    EXPECT_EQ(env.models()->CompareShadow(&c2, compare, &resp).error_code(), want) << name;
  }
}

TEST_F(ShadowServerTest, TheShadowIsKeptInTheStoreForARestartAndAnotherReplica) {
  {
    ServerEnv env(Options(dir_.path()));
    ImportThree(env);
    ASSERT_TRUE(SetShadow(env, "m", 3, "", 0.2).ok());
  }
  ServerOptions polling = Options(dir_.path());
  polling.poll_seconds = 0.1;
  ServerEnv a(polling);
  ServerEnv b(polling);
  EXPECT_EQ(Get(a).shadow().version(), 3) << "kept across a restart";
  EXPECT_DOUBLE_EQ(Get(b).shadow().sample_fraction(), 0.2);
  ASSERT_TRUE(SetShadow(a, "m", 2, "", 1.0).ok());
  ASSERT_TRUE(WaitUntil([&] { return Get(b).shadow().version() == 2; }, 30))
      << "the other replica takes the change up at its next poll";
  // A damaged shadow.json is reported by neither as a shadow, and scoring
  // goes on.
  std::ofstream(dir_.path() + "/m/shadow.json") << "{\"version\": \"two\"}";
  ServerEnv c(Options(dir_.path()));
  EXPECT_FALSE(Get(c).has_shadow());
  EXPECT_EQ(Score(c, 1, 5, 3).scores_size(), 5);
}

}  // namespace
}  // namespace anorand::test_support
