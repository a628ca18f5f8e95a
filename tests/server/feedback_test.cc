// The Feedback service over real gRPC on loopback, and its store on real
// files: records stored, listed and exported; idempotent by id; every
// malformed request refused with nothing stored; the bound; a torn line;
// two stores (replicas) on one folder; the token; the metrics; a training
// job that includes the feedback; and the worked example's loop (train
// unsupervised, score, label flagged records, retrain with feedback).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>

#include "anorand/v1/feedback.grpc.pb.h"
#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/synthetic_data.h"
#include "model/ranking_metrics.h"
#include "server/feedback_store.h"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
constexpr int kD = 8;

class FeedbackTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions o = {}) {
    o.poll_seconds = 0;
    o.metrics_address = "127.0.0.1:0";
    env_ = std::make_unique<ServerEnv>(o);
    env_->token = token_;
    stub_ = v1::Feedback::NewStub(env_->channel());
    training_ = v1::Training::NewStub(env_->channel());
  }
  void SetUp() override {
    StartServer();
    ASSERT_TRUE(env_->Import("m", TinyModel(kD)).ok());
  }

  grpc::Status Add(const v1::AddFeedbackRequest& req, v1::AddFeedbackResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
    v1::AddFeedbackResponse ignored;
    return stub_->AddFeedback(&ctx, req, resp ? resp : &ignored);
  }
  v1::FeedbackCounts Counts(const std::string& model = "m") {
    grpc::ClientContext ctx;
    if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
    v1::ListFeedbackRequest req;
    req.set_model_name(model);
    v1::ListFeedbackResponse resp;
    grpc::Status s = stub_->ListFeedback(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.models_size() == 1 ? resp.models(0) : v1::FeedbackCounts();
  }
  std::vector<v1::FeedbackRecord> Export(const std::string& model, grpc::Status* status,
                                         int* messages = nullptr) {
    grpc::ClientContext ctx;
    if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
    v1::ExportFeedbackRequest req;
    req.set_model_name(model);
    auto reader = stub_->ExportFeedback(&ctx, req);
    std::vector<v1::FeedbackRecord> out;
    v1::FeedbackRecords page;
    int n = 0;
    while (reader->Read(&page)) {
      ++n;
      out.insert(out.end(), page.records().begin(), page.records().end());
    }
    *status = reader->Finish();
    if (messages) *messages = n;
    return out;
  }

  TempDir data_;
  std::string token_;
  std::unique_ptr<ServerEnv> env_;
  std::unique_ptr<v1::Feedback::Stub> stub_;
  std::unique_ptr<v1::Training::Stub> training_;
};

// Records `from`..`from + n` of DemoData(200, kD, seed), every one `label`,
// with ids "<prefix>-<i>" (no ids when prefix is empty).
v1::AddFeedbackRequest Request(int from, int n, v1::FeedbackLabel label,
                               const std::string& prefix = "", uint64_t seed = 5) {
  const Dataset d = DemoData(200, kD, seed);
  v1::AddFeedbackRequest req;
  req.set_model_name("m");
  req.set_num_features(kD);
  req.mutable_values()->Add(d.x.begin() + from * kD, d.x.begin() + (from + n) * kD);
  req.add_labels(label);
  for (int i = 0; i < n && !prefix.empty(); ++i) req.add_ids(prefix + "-" + std::to_string(from + i));
  return req;
}

TEST_F(FeedbackTest, RecordsAreStoredListedAndExportedInOrder) {
  v1::AddFeedbackResponse resp;
  grpc::Status s = Add(Request(0, 3, v1::FEEDBACK_LABEL_ANOMALY, "inc"), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.added(), 3);
  EXPECT_EQ(resp.duplicates(), 0);
  EXPECT_THAT(std::vector<std::string>(resp.ids().begin(), resp.ids().end()),
              ::testing::ElementsAre("inc-0", "inc-1", "inc-2"));
  ASSERT_TRUE(Add(Request(3, 2, v1::FEEDBACK_LABEL_NORMAL), &resp).ok());
  EXPECT_EQ(resp.added(), 2);
  ASSERT_EQ(resp.ids_size(), 2);
  EXPECT_THAT(resp.ids(0), ::testing::MatchesRegex("srv-[0-9a-f]{16}"));
  EXPECT_EQ(resp.stored().anomalies(), 3);
  EXPECT_EQ(resp.stored().normal(), 2);
  EXPECT_EQ(resp.stored().num_features(), kD);
  EXPECT_EQ(resp.stored().max_records(), 100000);

  const v1::FeedbackCounts c = Counts();
  EXPECT_EQ(c.anomalies(), 3);
  EXPECT_EQ(c.normal(), 2);
  EXPECT_TRUE(std::filesystem::exists(env_->model_dir() + "/m/feedback.jsonl"));

  grpc::Status es;
  const auto records = Export("m", &es);
  ASSERT_TRUE(es.ok()) << es.error_message();
  ASSERT_EQ(records.size(), 5u);
  const Dataset d = DemoData(200, kD, 5);
  for (int r = 0; r < 5; ++r) {
    ASSERT_EQ(records[r].values_size(), kD);
    for (int j = 0; j < kD; ++j) EXPECT_EQ(records[r].values(j), d.x[r * kD + j]) << r << "," << j;
    EXPECT_EQ(records[r].label(), r < 3 ? v1::FEEDBACK_LABEL_ANOMALY : v1::FEEDBACK_LABEL_NORMAL);
    EXPECT_GT(records[r].received_unix_ms(), 0);
  }
  EXPECT_EQ(records[0].id(), "inc-0");

  // A restart reads the same file.
  env_->Stop();
  env_->Start();
  stub_ = v1::Feedback::NewStub(env_->channel());
  EXPECT_EQ(Counts().anomalies(), 3);
}

TEST_F(FeedbackTest, ARetryIsADuplicateAndAnIdWithAnotherLabelIsRefusedStoringNothing) {
  ASSERT_TRUE(Add(Request(0, 3, v1::FEEDBACK_LABEL_ANOMALY, "inc")).ok());
  v1::AddFeedbackResponse resp;
  ASSERT_TRUE(Add(Request(0, 4, v1::FEEDBACK_LABEL_ANOMALY, "inc"), &resp).ok());
  EXPECT_EQ(resp.added(), 1);
  EXPECT_EQ(resp.duplicates(), 3);
  EXPECT_EQ(resp.stored().anomalies(), 4);

  // inc-4 is new, inc-0 conflicts: neither is stored.
  v1::AddFeedbackRequest conflict = Request(4, 1, v1::FEEDBACK_LABEL_NORMAL, "inc");
  const std::vector<float> first(conflict.values().begin(), conflict.values().end());
  conflict.mutable_values()->Add(first.begin(), first.end());
  conflict.add_ids("inc-0");
  grpc::Status s = Add(conflict);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(s.error_message(), HasSubstr("'inc-0'"));
  EXPECT_THAT(s.error_message(), HasSubstr("another label"));
  // Same id and label, other values.
  v1::AddFeedbackRequest moved = Request(10, 1, v1::FEEDBACK_LABEL_ANOMALY);
  moved.add_ids("inc-1");
  EXPECT_THAT(Add(moved).error_message(), HasSubstr("other values"));
  const v1::FeedbackCounts c = Counts();
  EXPECT_EQ(c.anomalies(), 4);
  EXPECT_EQ(c.normal(), 0);
}

TEST_F(FeedbackTest, EveryMalformedRequestIsRefusedNamingTheFaultAndNothingIsStored) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    const char* what;
    std::function<void(v1::AddFeedbackRequest*)> edit;
    grpc::StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"no model", [](auto* r) { r->clear_model_name(); }, grpc::StatusCode::INVALID_ARGUMENT, "model"},
      {"bad name", [](auto* r) { r->set_model_name("a/b"); }, grpc::StatusCode::INVALID_ARGUMENT, "model"},
      {"unknown model", [](auto* r) { r->set_model_name("nope"); }, grpc::StatusCode::NOT_FOUND, "no model 'nope'"},
      {"zero width", [](auto* r) { r->set_num_features(0); }, grpc::StatusCode::INVALID_ARGUMENT, "num_features must be >= 1"},
      {"other width", [](auto* r) { r->set_num_features(4); }, grpc::StatusCode::INVALID_ARGUMENT, "takes 8"},
      {"no values", [](auto* r) { r->clear_values(); }, grpc::StatusCode::INVALID_ARGUMENT, "whole records"},
      {"partial record", [](auto* r) { r->add_values(1); }, grpc::StatusCode::INVALID_ARGUMENT, "whole records"},
      {"nan", [nan](auto* r) { r->set_values(9, nan); }, grpc::StatusCode::INVALID_ARGUMENT, "record 1, feature 1 is not finite"},
      {"labels count", [](auto* r) { r->add_labels(v1::FEEDBACK_LABEL_NORMAL); }, grpc::StatusCode::INVALID_ARGUMENT, "2 labels for 3 records"},
      {"no label", [](auto* r) { r->clear_labels(); }, grpc::StatusCode::INVALID_ARGUMENT, "0 labels"},
      {"unspecified", [](auto* r) { r->set_labels(0, v1::FEEDBACK_LABEL_UNSPECIFIED); }, grpc::StatusCode::INVALID_ARGUMENT, "label 0 is 0"},
      {"unknown label", [](auto* r) { r->set_labels(0, static_cast<v1::FeedbackLabel>(7)); }, grpc::StatusCode::INVALID_ARGUMENT, "label 0 is 7"},
      {"ids count", [](auto* r) { r->add_ids("a"); }, grpc::StatusCode::INVALID_ARGUMENT, "1 ids for 3 records"},
      {"bad id", [](auto* r) { for (auto s : {"a", "b c", "d"}) r->add_ids(s); }, grpc::StatusCode::INVALID_ARGUMENT, "record 1: feedback id 'b c'"},
      {"empty id", [](auto* r) { for (auto s : {"a", "b", ""}) r->add_ids(s); }, grpc::StatusCode::INVALID_ARGUMENT, "1 to 128"},
      {"long id", [](auto* r) { for (auto s : {"a", "b"}) r->add_ids(s); r->add_ids(std::string(129, 'x')); }, grpc::StatusCode::INVALID_ARGUMENT, "got 129"},
      {"id twice", [](auto* r) { for (auto s : {"a", "b", "a"}) r->add_ids(s); }, grpc::StatusCode::INVALID_ARGUMENT, "'a' is given twice"},
  };
  for (const Case& c : cases) {
    v1::AddFeedbackRequest req = Request(0, 3, v1::FEEDBACK_LABEL_ANOMALY);
    c.edit(&req);
    grpc::Status s = Add(req);
    EXPECT_EQ(s.error_code(), c.code) << c.what << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message)) << c.what;
  }
  EXPECT_EQ(Counts().anomalies() + Counts().normal(), 0);
  EXPECT_FALSE(std::filesystem::exists(env_->model_dir() + "/m/feedback.jsonl"));

  grpc::Status es;
  Export("nope", &es);
  EXPECT_EQ(es.error_code(), grpc::StatusCode::NOT_FOUND);
  Export("", &es);
  EXPECT_EQ(es.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  int messages = 0;
  EXPECT_TRUE(Export("m", &es, &messages).empty());
  EXPECT_TRUE(es.ok());
  EXPECT_EQ(messages, 1) << "an empty export still sends its one message";
}

TEST_F(FeedbackTest, PastTheBoundNothingIsStoredAndTheRoomLeftIsNamed) {
  ServerOptions o;
  o.max_feedback_records = 4;
  StartServer(o);
  ASSERT_TRUE(env_->Import("m", TinyModel(kD)).ok());
  ASSERT_TRUE(Add(Request(0, 3, v1::FEEDBACK_LABEL_NORMAL, "n")).ok());
  grpc::Status s = Add(Request(3, 2, v1::FEEDBACK_LABEL_ANOMALY, "n"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_feedback_records"));
  EXPECT_THAT(s.error_message(), HasSubstr("room for 1 more"));
  EXPECT_EQ(Counts().anomalies(), 0);
  // Duplicates take no room.
  v1::AddFeedbackResponse resp;
  ASSERT_TRUE(Add(Request(2, 2, v1::FEEDBACK_LABEL_NORMAL, "n"), &resp).ok());
  EXPECT_EQ(resp.added(), 1);
  EXPECT_EQ(resp.duplicates(), 1);
  EXPECT_EQ(Counts().normal(), 4);
}

TEST_F(FeedbackTest, TheTokenIsRequiredWhenConfigured) {
  ServerOptions o;
  o.auth_token = "t0ken";
  token_ = "t0ken";
  StartServer(o);
  ASSERT_TRUE(env_->Import("m", TinyModel(kD)).ok());
  token_ = "nope";
  EXPECT_EQ(Add(Request(0, 1, v1::FEEDBACK_LABEL_ANOMALY)).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status es;
  Export("m", &es);
  EXPECT_EQ(es.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  token_ = "t0ken";
  EXPECT_TRUE(Add(Request(0, 1, v1::FEEDBACK_LABEL_ANOMALY)).ok());
}

TEST_F(FeedbackTest, TheMetricsCountStoredRecordsByLabel) {
  ASSERT_TRUE(Add(Request(0, 3, v1::FEEDBACK_LABEL_ANOMALY, "a")).ok());
  ASSERT_TRUE(Add(Request(3, 2, v1::FEEDBACK_LABEL_NORMAL, "a")).ok());
  const std::string text = HttpGetRaw(env_->server().metrics_port(), "/metrics");
  EXPECT_THAT(text, HasSubstr("anorand_feedback_records{model=\"m\",label=\"anomaly\"} 3"));
  EXPECT_THAT(text, HasSubstr("anorand_feedback_records{model=\"m\",label=\"normal\"} 2"));
  EXPECT_THAT(text, HasSubstr("anorand_feedback_skipped_lines{model=\"m\"} 0"));
}

TEST(FeedbackStoreTest, TwoStoresOnOneFolderSeeEachOthersRecordsAndSkipATornLine) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/m");
  FeedbackStore a(ModelStore(dir.path()), 100), b(ModelStore(dir.path()), 100);
  auto record = [](const std::string& id, float v, v1::FeedbackLabel label) {
    v1::FeedbackRecord r;
    r.set_id(id);
    r.set_label(label);
    r.add_values(v);
    r.add_values(-v);
    return r;
  };
  ASSERT_TRUE(a.Add("m", 2, {record("x", 1, v1::FEEDBACK_LABEL_ANOMALY)}).ok());
  auto added = b.Add("m", 2, {record("x", 1, v1::FEEDBACK_LABEL_ANOMALY),
                              record("y", 2, v1::FEEDBACK_LABEL_NORMAL)});
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->duplicates, 1) << "b read a's record";
  EXPECT_EQ(added->added, 1);
  EXPECT_EQ(b.Add("m", 2, {record("y", 2, v1::FEEDBACK_LABEL_ANOMALY)}).status().code(),
            absl::StatusCode::kAlreadyExists);
  // A crash mid-append leaves a line without its end; the next append ends it.
  {
    std::ofstream f(dir.path() + "/m/feedback.jsonl", std::ios::app);
    f << "{\"id\":\"torn\",\"label\":\"FEEDBACK_LAB";
  }
  ASSERT_TRUE(a.Add("m", 2, {record("z", 3, v1::FEEDBACK_LABEL_ANOMALY)}).ok());
  auto tally = b.Count("m");
  ASSERT_TRUE(tally.ok());
  EXPECT_EQ(tally->anomalies, 2);
  EXPECT_EQ(tally->normal, 1);
  EXPECT_EQ(tally->skipped_lines, 1);
  FeedbackTally read;
  auto records = a.Records("m", &read);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 3u);
  EXPECT_EQ((*records)[2].id(), "z");
  EXPECT_EQ(read.skipped_lines, 1);
  // Another width is refused once records are stored.
  v1::FeedbackRecord wide = record("w", 1, v1::FEEDBACK_LABEL_NORMAL);
  wide.add_values(0);
  auto refused = a.Add("m", 3, {wide});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("feedback.jsonl away"));
}

// ---------------------------------------------------------------------------
// Training with the feedback.

v1::Job WaitForJob(v1::Training::Stub* stub, const std::string& id) {
  v1::Job job;
  WaitUntil([&] {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id(id);
    return stub->GetJob(&ctx, req, &job).ok() && job.state() >= v1::JOB_STATE_SUCCEEDED;
  }, 300, 20);
  return job;
}

TEST_F(FeedbackTest, AJobThatIncludesFeedbackTrainsOnItAndSaysHowManyRows) {
  const Dataset d = DemoData(300, kD, 9);
  v1::JobSpec spec = SmallJobSpec("m", 2);
  spec.set_include_feedback(true);
  v1::Job job;
  grpc::Status s = SubmitDenseJob(training_.get(), spec, d, d.rows, {}, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("no stored feedback"));

  ASSERT_TRUE(Add(Request(0, 4, v1::FEEDBACK_LABEL_ANOMALY, "a")).ok());
  ASSERT_TRUE(Add(Request(4, 3, v1::FEEDBACK_LABEL_NORMAL, "a")).ok());
  v1::JobSpec paper = spec;
  paper.mutable_params()->set_preset("paper");
  s = SubmitDenseJob(training_.get(), paper, d, d.rows, {}, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("include_feedback needs params.use_labels"));

  Dataset narrow = DemoData(300, kD - 1, 9);
  s = SubmitDenseJob(training_.get(), spec, narrow, narrow.rows, {}, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("has 8 features per record; the training data has 7"));

  s = SubmitDenseJob(training_.get(), spec, d, d.rows, {}, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job.data_rows(), 307);
  EXPECT_EQ(job.data_feedback_rows(), 7);
  EXPECT_EQ(job.data_labeled_anomalies(), 4);
  const v1::Job done = WaitForJob(training_.get(), job.id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  EXPECT_EQ(done.summary().known_anomalies(), 4);
  EXPECT_EQ(done.data_feedback_rows(), 7);
}

uint64_t FeedbackSeed() {
  const char* env = std::getenv("ANORAND_FEEDBACK_SEED");
  return env && *env ? std::strtoull(env, nullptr, 10) : 21;
}

// docs/OPERATIONS.md, "Feedback": the loop an operator runs.
TEST_F(FeedbackTest, TheWorkedExampleTrainScoreLabelTheFlaggedRecordsRetrainFindsTheirKindBetter) {
  constexpr int kCols = 6;
  // One distribution: the training rows, the traffic scored and labelled,
  // and held-out rows that judge both versions. Its anomalies are of one
  // subtle kind, the kind an incident team keeps finding: two features
  // moved together by one standard deviation, each value still within the
  // normal range.
  SyntheticOptions so;
  so.rows = 7000;
  so.cols = kCols;
  so.anomaly_fraction = 0.04;
  so.anomaly_size = 1.0;
  so.seed = FeedbackSeed();
  const Dataset all = MakeSyntheticData(so);
  auto slice = [&](int64_t from, int64_t count) {
    Dataset d = SliceRows(all, from, count);  // features only
    d.labels.assign(all.labels.begin() + from, all.labels.begin() + from + count);
    return d;
  };
  const Dataset train = SliceRows(all, 0, 2000);  // trained on unlabelled
  const Dataset traffic = slice(2000, 2000);
  const Dataset holdout = slice(4000, 3000);
  auto score = [&](const Dataset& data, int64_t version) {
    grpc::ClientContext ctx;
    v1::ScoreRequest req;
    req.mutable_model()->set_name("loop");
    req.mutable_model()->set_version(version);
    req.mutable_batch()->set_num_features(kCols);
    req.mutable_batch()->mutable_values()->Add(data.x.begin(), data.x.end());
    v1::ScoreResponse resp;
    grpc::Status s = env_->scoring()->Score(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return std::vector<float>(resp.scores().begin(), resp.scores().end());
  };
  auto train_version = [&](bool include_feedback) {
    v1::JobSpec spec = SmallJobSpec("loop", 20);
    spec.set_include_feedback(include_feedback);
    v1::Job job;
    grpc::Status s = SubmitDenseJob(training_.get(), spec, train, train.rows, {}, &job);
    EXPECT_TRUE(s.ok()) << s.error_message();
    const v1::Job done = WaitForJob(training_.get(), job.id());
    EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
    return done;
  };
  const v1::Job first = train_version(false);
  ASSERT_EQ(first.published_version(), 1);

  // The operator looks at the 60 highest-scored records of the traffic and
  // labels each: a real anomaly or a false alarm.
  const std::vector<float> scores = score(traffic, 1);
  ASSERT_EQ(scores.size(), static_cast<size_t>(traffic.rows));
  std::vector<int64_t> order(traffic.rows);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  v1::AddFeedbackRequest req;
  req.set_model_name("loop");
  req.set_num_features(kCols);
  int anomalies = 0;
  for (int i = 0; i < 60; ++i) {
    const int64_t r = order[i];
    req.mutable_values()->Add(traffic.row(r), traffic.row(r) + kCols);
    const bool real = traffic.labels[r] == 1;
    anomalies += real;
    req.add_labels(real ? v1::FEEDBACK_LABEL_ANOMALY : v1::FEEDBACK_LABEL_NORMAL);
    req.add_ids("traffic-" + std::to_string(r));
  }
  ASSERT_GT(anomalies, 0);
  ASSERT_TRUE(Add(req).ok());

  const v1::Job second = train_version(true);
  ASSERT_EQ(second.published_version(), 2);
  EXPECT_EQ(second.data_feedback_rows(), 60);
  EXPECT_EQ(second.data_labeled_anomalies(), anomalies);
  EXPECT_EQ(second.summary().known_anomalies(), anomalies);

  const double before = AucRoc(score(holdout, 1), holdout.labels);
  const double after = AucRoc(score(holdout, 2), holdout.labels);
  RecordProperty("auc_before", std::to_string(before));
  RecordProperty("auc_after", std::to_string(after));
  std::printf("held-out AUC-ROC: version 1 %.4f, version 2 (with %d labelled anomalies) %.4f\n",
              before, anomalies, after);
  EXPECT_GT(after, before) << "feedback on the flagged records made the detector worse";
}

}  // namespace
}  // namespace anorand::test_support
