// Drift detection through the real server (models.proto GetDrift;
// server/drift_report.h, server/drift_metrics.h): a version trained on one
// slice of a draw scores later slices of it, then records with one feature
// shifted; GetDrift, GetModel's VersionInfo.drift and the metrics endpoint
// name the shifted feature, Score and StreamScore records both count, and
// every refusal names its problem. Drift off, or a model file without a
// profile, reports tracked = false.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
constexpr int kD = 6;
constexpr int kShifted = 4;  // beyond drift_feature_series = 4: folded

class DriftServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    draw_ = new Dataset(DemoData(8000, kD, 3));
    model_ = new v1::ModelFile(TinyModelOn(SliceRows(*draw_, 0, 1500), 3, 2));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete draw_;
  }
  static ServerOptions Options(int64_t window) {
    ServerOptions o;
    o.poll_seconds = 0;
    o.model_dir = "models";
    o.metrics_address = "127.0.0.1:0";
    o.drift_window_records = window;
    o.drift_sample = 1;  // every record: the counts below are exact
    o.drift_feature_series = 4;
    return o;
  }
  // Rows [from, from + rows) of the draw, feature kShifted moved by `shift`.
  static v1::ScoreRequest Request(int64_t from, int64_t rows, float shift = 0) {
    Dataset d = SliceRows(*draw_, from, rows);
    for (int64_t r = 0; r < rows; ++r) d.x[r * kD + kShifted] += shift;
    v1::ScoreRequest req;
    req.mutable_model()->set_name("m");
    req.mutable_batch()->set_num_features(kD);
    req.mutable_batch()->mutable_values()->Add(d.x.begin(), d.x.end());
    return req;
  }
  static void Score(ServerEnv& env, int64_t from, int64_t rows, float shift = 0) {
    for (int64_t at = from; at < from + rows; at += 250) {
      grpc::ClientContext ctx;
      v1::ScoreResponse resp;
      ASSERT_TRUE(env.scoring()->Score(&ctx, Request(at, 250, shift), &resp).ok());
    }
  }
  static grpc::Status Drift(ServerEnv& env, v1::DriftReport* out, int top = 0,
                            const std::string& name = "m", int64_t version = 0,
                            const std::string& alias = "") {
    grpc::ClientContext ctx;
    v1::GetDriftRequest req;
    req.mutable_model()->set_name(name);
    if (version != 0) req.mutable_model()->set_version(version);
    if (!alias.empty()) req.mutable_model()->set_alias(alias);
    req.set_top(top);
    return env.models()->GetDrift(&ctx, req, out);
  }
  static float Shift() {
    const v1::DistributionSketch& s = model_->drift_profile().features(kShifted);
    return 2 * (s.max() - s.min());
  }
  static Dataset* draw_;
  static v1::ModelFile* model_;
};
Dataset* DriftServerTest::draw_ = nullptr;
v1::ModelFile* DriftServerTest::model_ = nullptr;

TEST_F(DriftServerTest, AShiftedFeatureIsNamedByGetDriftGetModelAndTheMetrics) {
  ServerEnv env(Options(2000));
  ASSERT_TRUE(env.Import("m", *model_).ok());
  v1::DriftReport r;
  ASSERT_TRUE(Drift(env, &r).ok());
  EXPECT_TRUE(r.tracked());
  EXPECT_EQ(r.version(), 1);
  EXPECT_EQ(r.observed_records(), 0);
  EXPECT_EQ(r.window_capacity(), 2000);
  std::string metrics = HttpGetRaw(env.server().metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("anorand_drift_window_records{model=\"m\",version=\"1\"} 0"));
  EXPECT_THAT(metrics, Not(HasSubstr("anorand_score_drift_psi{")))
      << "no PSI before half a window";

  // Records like the training data.
  Score(env, 1500, 2000);
  ASSERT_TRUE(Drift(env, &r, 100).ok());
  EXPECT_EQ(r.observed_records(), 2000);
  EXPECT_GE(r.window_records(), 1000);
  EXPECT_LE(r.window_records(), 2000);
  EXPECT_LT(r.score_psi(), 0.1);
  ASSERT_EQ(r.worst_features_size(), kD) << "top larger than the features: all of them";
  for (const auto& f : r.worst_features()) EXPECT_LT(f.psi(), 0.1) << f.name();

  // Then feature 4 moves by twice its training range; one request goes by
  // a stream.
  Score(env, 3500, 1750, Shift());
  {
    grpc::ClientContext ctx;
    auto stream = env.scoring()->StreamScore(&ctx);
    ASSERT_TRUE(stream->Write(Request(5250, 250, Shift())));
    v1::ScoreResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    stream->WritesDone();
    ASSERT_TRUE(stream->Finish().ok());
  }
  ASSERT_TRUE(Drift(env, &r, 3).ok());
  EXPECT_EQ(r.observed_records(), 4000);
  ASSERT_EQ(r.worst_features_size(), 3);
  EXPECT_EQ(r.worst_features(0).index(), kShifted);
  EXPECT_EQ(r.worst_features(0).name(), "f4");
  EXPECT_GT(r.worst_features(0).psi(), 1.0);
  EXPECT_NEAR(r.worst_features(0).out_of_range_ratio(), 1.0, 1e-9)
      << "the window holds shifted records only";
  EXPECT_GT(r.worst_features(0).psi(), r.worst_features(1).psi());
  EXPECT_NEAR(r.out_of_range_ratio(), 1.0, 1e-9);
  EXPECT_GT(r.score_psi(), 0.25);

  {
    grpc::ClientContext ctx;
    v1::GetModelRequest req;
    req.mutable_model()->set_name("m");
    v1::ModelInfo info;
    ASSERT_TRUE(env.models()->GetModel(&ctx, req, &info).ok());
    const v1::DriftReport& d = info.versions(0).drift();
    EXPECT_TRUE(d.tracked());
    EXPECT_EQ(d.worst_features_size(), 5);
    EXPECT_EQ(d.worst_features(0).name(), "f4");
  }

  metrics = HttpGetRaw(env.server().metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("anorand_score_drift_psi{model=\"m\",version=\"1\"}"));
  EXPECT_THAT(metrics, HasSubstr("anorand_drift_out_of_range_ratio{model=\"m\",version=\"1\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("anorand_feature_drift_psi{model=\"m\",version=\"1\",feature=\"f0\"}"));
  EXPECT_THAT(metrics,
              HasSubstr("anorand_feature_drift_psi{model=\"m\",version=\"1\",feature=\"f3\"}"));
  EXPECT_THAT(metrics, Not(HasSubstr("feature=\"f4\""))) << "beyond the series cap";
  const std::string other =
      "anorand_feature_drift_psi{model=\"m\",version=\"1\",feature=\"other_max\"} ";
  const size_t at = metrics.find(other);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_NEAR(std::stod(metrics.substr(at + other.size())), r.worst_features(0).psi(), 1e-3);
}

TEST_F(DriftServerTest, EveryRefusalNamesTheProblem) {
  ServerEnv env(Options(1000));
  ASSERT_TRUE(env.Import("m", *model_).ok());
  ASSERT_TRUE(env.Import("m", *model_).ok());
  {
    grpc::ClientContext ctx;
    v1::UnloadVersionRequest req;
    req.set_model_name("m");
    req.set_version(2);
    v1::VersionInfo info;
    ASSERT_TRUE(env.models()->UnloadVersion(&ctx, req, &info).ok());
  }
  struct Case {
    std::string name;
    int64_t version;
    std::string alias;
    int top;
    grpc::StatusCode code;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"../m", 0, "", 0, grpc::INVALID_ARGUMENT, "model name"},
           {"", 0, "", 0, grpc::INVALID_ARGUMENT, "model name"},
           {"m", -1, "", 0, grpc::INVALID_ARGUMENT, "model.version must be >= 1"},
           {"m", 0, "Bad Alias", 0, grpc::INVALID_ARGUMENT, "alias"},
           {"m", 0, "", -1, grpc::INVALID_ARGUMENT, "top must be >= 0"},
           {"nosuch", 0, "", 0, grpc::NOT_FOUND, "model 'nosuch' not found"},
           {"m", 9, "", 0, grpc::NOT_FOUND, "no version 9"},
           {"m", 0, "canary", 0, grpc::NOT_FOUND, "model 'm' has no alias 'canary'"},
           {"m", 2, "", 0, grpc::FAILED_PRECONDITION, "unloaded"}}) {
    SCOPED_TRACE(c.message);
    v1::DriftReport r;
    grpc::Status s = Drift(env, &r, c.top, c.name, c.version, c.alias);
    EXPECT_EQ(s.error_code(), c.code);
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
  v1::DriftReport r;
  ASSERT_TRUE(Drift(env, &r, 0, "m", 0, "latest").ok());
  EXPECT_EQ(r.version(), 1) << "the newest READY version";
  EXPECT_EQ(r.worst_features_size(), kD) << "top 0: ten, or all six";
}

TEST_F(DriftServerTest, OffOrWithoutAProfileIsNotTrackedAndExportsNothing) {
  v1::ModelFile old = *model_;
  old.clear_drift_profile();
  for (int64_t window : {int64_t{0}, int64_t{1000}}) {
    SCOPED_TRACE(window);
    ServerEnv env(Options(window));
    ASSERT_TRUE(env.Import("m", window == 0 ? *model_ : old).ok());
    Score(env, 1500, 1000);
    v1::DriftReport r;
    ASSERT_TRUE(Drift(env, &r).ok());
    EXPECT_FALSE(r.tracked());
    EXPECT_EQ(r.observed_records(), 0);
    EXPECT_EQ(r.worst_features_size(), 0);
    EXPECT_THAT(HttpGetRaw(env.server().metrics_port(), "/metrics"),
                Not(HasSubstr("anorand_drift_window_records{")));
  }
}

}  // namespace
}  // namespace anorand::test_support
