// The Training service over real gRPC on loopback: submit by upload (CSV,
// NPZ-less dense) and by path, watch to completion, the published version
// scores and carries the job id, cancel, queue full, every invalid
// hyperparameter, path escapes, restart, the token, known anomalies from a
// label column or DENSE labels.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "google/protobuf/util/json_util.h"
#include "model/data/synthetic_data.h"
#include "tests/server/server_env.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
constexpr int kD = 5;

std::string CsvBytes(int64_t rows, uint64_t seed) {
  TempDir dir;
  Dataset d = DemoData(rows, kD, seed);
  EXPECT_TRUE(WriteCsv(d, dir.File("d.csv"), false).ok());
  std::ifstream f(dir.File("d.csv"));
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class TrainingTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions o = {}) {
    o.poll_seconds = 0;
    if (o.data_dir.empty()) o.data_dir = data_.path();
    env_ = std::make_unique<ServerEnv>(o);
    stub_ = v1::Training::NewStub(env_->channel());
  }
  void SetUp() override { StartServer(); }

  grpc::Status Submit(const v1::JobSpec& spec, const std::string& bytes, v1::Job* job,
                      size_t chunk = 4096) {
    grpc::ClientContext ctx;
    if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
    auto w = stub_->SubmitJob(&ctx, job);
    v1::SubmitJobRequest head;
    *head.mutable_spec() = spec;
    w->Write(head);
    for (size_t at = 0; at < bytes.size(); at += chunk) {
      v1::SubmitJobRequest c;
      c.mutable_chunk()->set_data(bytes.substr(at, chunk));
      if (!w->Write(c)) break;
    }
    w->WritesDone();
    return w->Finish();
  }
  grpc::Status SubmitCsv(v1::JobSpec spec, int64_t rows, v1::Job* job) {
    spec.set_upload_format(v1::UPLOAD_FORMAT_CSV);
    return Submit(spec, CsvBytes(rows, 3), job);
  }
  // Watches to the end; returns every message.
  std::vector<v1::JobProgress> Watch(const std::string& id) {
    grpc::ClientContext ctx;
    v1::WatchJobRequest req;
    req.set_job_id(id);
    auto r = stub_->WatchJob(&ctx, req);
    std::vector<v1::JobProgress> out;
    v1::JobProgress p;
    while (r->Read(&p)) out.push_back(p);
    EXPECT_TRUE(r->Finish().ok());
    return out;
  }
  v1::Job Get(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id(id);
    v1::Job job;
    EXPECT_TRUE(stub_->GetJob(&ctx, req, &job).ok());
    return job;
  }
  void WaitFor(const std::string& id, v1::JobState state) {
    WaitUntil([&] { return Get(id).state() == state; }, 120, 10);
    ASSERT_EQ(Get(id).state(), state);
  }

  TempDir data_;
  std::string token_;
  std::unique_ptr<ServerEnv> env_;
  std::unique_ptr<v1::Training::Stub> stub_;
};

TEST_F(TrainingTest, UploadWatchPublishAndScoreWithTheNewVersion) {
  v1::JobSpec spec = SmallJobSpec("fraud", 4);
  spec.set_promote_to_alias("production");
  v1::Job job;
  ASSERT_TRUE(SubmitCsv(spec, 600, &job).ok());
  EXPECT_FALSE(job.id().empty());
  EXPECT_EQ(job.data_rows(), 600);
  EXPECT_EQ(job.data_features(), kD);
  EXPECT_TRUE(job.spec().params().has_noise_scale());  // values actually used
  EXPECT_EQ(job.spec().params().max_epochs(), 4);
  const auto progress = Watch(job.id());
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().state(), v1::JOB_STATE_SUCCEEDED);
  int epochs_seen = 0;
  for (const auto& p : progress) epochs_seen = std::max(epochs_seen, p.epoch());
  EXPECT_EQ(epochs_seen, 4);
  const v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done.published_version(), 1);
  EXPECT_EQ(done.summary().epochs_run(), 4);
  EXPECT_GT(done.finished_unix_ms(), 0);
  // It scores through the alias, and the version carries the job id.
  grpc::ClientContext sctx;
  v1::ScoreRequest req = MakeRequest("fraud", 3, kD);
  req.mutable_model()->set_alias("production");
  v1::ScoreResponse resp;
  ASSERT_TRUE(env_->scoring()->Score(&sctx, req, &resp).ok());
  EXPECT_EQ(resp.model_version(), 1);
  grpc::ClientContext gctx;
  v1::GetModelRequest greq;
  greq.mutable_model()->set_name("fraud");
  greq.mutable_model()->set_version(1);
  v1::ModelInfo info;
  ASSERT_TRUE(env_->models()->GetModel(&gctx, greq, &info).ok());
  EXPECT_EQ(info.versions(0).training_job_id(), job.id());
}

TEST_F(TrainingTest, SubmitByPathAndByDenseUpload) {
  {
    std::ofstream(data_.File("train.csv")) << CsvBytes(300, 4);
    v1::JobSpec spec = SmallJobSpec("bypath", 2);
    spec.set_data_path("train.csv");
    v1::Job job;
    ASSERT_TRUE(Submit(spec, "", &job).ok());
    EXPECT_EQ(job.data_rows(), 300);
    EXPECT_EQ(Watch(job.id()).back().state(), v1::JOB_STATE_SUCCEEDED);
  }
  {
    v1::JobSpec spec = SmallJobSpec("dense", 2);
    spec.set_upload_format(v1::UPLOAD_FORMAT_DENSE);
    Dataset d = DemoData(200, kD, 9);
    grpc::ClientContext ctx;
    v1::Job job;
    auto w = stub_->SubmitJob(&ctx, &job);
    v1::SubmitJobRequest head;
    *head.mutable_spec() = spec;
    w->Write(head);
    for (int part = 0; part < 2; ++part) {
      v1::SubmitJobRequest c;
      c.mutable_chunk()->set_num_features(kD);
      if (part == 0)
        for (const auto& n : d.feature_names) c.mutable_chunk()->add_feature_names(n);
      c.mutable_chunk()->mutable_values()->Add(d.x.begin() + part * 100 * kD,
                                               d.x.begin() + (part + 1) * 100 * kD);
      w->Write(c);
    }
    w->WritesDone();
    ASSERT_TRUE(w->Finish().ok());
    EXPECT_EQ(job.data_rows(), 200);
    EXPECT_EQ(Watch(job.id()).back().state(), v1::JOB_STATE_SUCCEEDED);
  }
}


TEST_F(TrainingTest, KnownAnomaliesFromACsvLabelColumnOrDenseLabelsTrainTheModel) {
  Dataset d = DemoData(300, kD, 4);
  const int64_t anomalies = std::count(d.labels.begin(), d.labels.end(), 1);
  ASSERT_GT(anomalies, 0);
  {
    ASSERT_TRUE(WriteCsv(d, data_.File("labelled.csv"), true).ok());
    v1::JobSpec spec = SmallJobSpec("csvlabels", 2);
    spec.set_data_path("labelled.csv");
    spec.set_label_column("label");
    v1::Job job;
    grpc::Status s = Submit(spec, "", &job);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(job.data_features(), kD);
    EXPECT_EQ(job.data_labeled_anomalies(), anomalies);
    EXPECT_EQ(Watch(job.id()).back().state(), v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(Get(job.id()).summary().known_anomalies(), anomalies);
  }
  std::vector<std::vector<int>> labels = {{d.labels.begin(), d.labels.begin() + 150},
                                          {d.labels.begin() + 150, d.labels.end()}};
  {
    v1::Job job;
    grpc::Status s =
        SubmitDenseJob(stub_.get(), SmallJobSpec("denselabels", 2), d, 150, labels, &job);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(job.data_labeled_anomalies(), anomalies);
    EXPECT_EQ(Watch(job.id()).back().state(), v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(Get(job.id()).summary().known_anomalies(), anomalies);
  }
  {
    v1::JobSpec spec = SmallJobSpec("paperlabels", 2);
    spec.mutable_params()->set_preset("paper");
    v1::Job job;
    ASSERT_TRUE(SubmitDenseJob(stub_.get(), spec, d, 150, labels, &job).ok());
    EXPECT_EQ(job.data_labeled_anomalies(), anomalies);
    EXPECT_EQ(Watch(job.id()).back().state(), v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(Get(job.id()).summary().known_anomalies(), 0) << "the paper preset ignores labels";
  }
}

TEST_F(TrainingTest, DenseLabelsThatDoNotFitTheRecordsAreRefusedAndNoJobIsMade) {
  const Dataset d = DemoData(200, kD, 4);
  const std::vector<int> zeros(100, 0);
  std::vector<int> two = zeros;
  two[7] = 2;
  const std::vector<int> all(100, 1);
  struct Case {
    std::vector<std::vector<int>> labels;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {{std::vector<int>(99, 0), zeros}, "chunk 0 has 99 labels for 100 records"},
           {{two, zeros}, "chunk 0, label 7 is 2"},
           {{zeros}, "chunk 1 has no labels but the first chunk with records had them"},
           {{{}, zeros}, "chunk 1 has labels but the first chunk with records had none"},
           {{all, all}, "every one of the 200 training rows is labelled a known anomaly"}}) {
    SCOPED_TRACE(c.message);
    v1::Job job;
    grpc::Status s =
        SubmitDenseJob(stub_.get(), SmallJobSpec("badlabels", 1), d, 100, c.labels, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
  v1::JobSpec csv = SmallJobSpec("badlabels", 1);
  csv.set_upload_format(v1::UPLOAD_FORMAT_CSV);
  grpc::ClientContext ctx;
  v1::Job job;
  auto w = stub_->SubmitJob(&ctx, &job);
  v1::SubmitJobRequest head, chunk;
  *head.mutable_spec() = csv;
  w->Write(head);
  chunk.mutable_chunk()->set_data("a,b\n1,2\n");
  chunk.mutable_chunk()->add_labels(1);
  w->Write(chunk);
  w->WritesDone();
  grpc::Status s = w->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("only DENSE chunks carry labels"));
  grpc::ClientContext lc;
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(stub_->ListJobs(&lc, v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
}

TEST_F(TrainingTest, PathsOutsideTheDataFolderAreRefused) {
  TempDir outside;
  std::ofstream(outside.File("secret.csv")) << CsvBytes(50, 1);
  std::filesystem::create_symlink(outside.File("secret.csv"), data_.File("link.csv"));
  std::filesystem::create_directories(data_.File("sub"));
  std::filesystem::create_directories(data_.File("folder.csv"));
  struct {
    std::string path;
    grpc::StatusCode code;
    std::string message;
  } cases[] = {
      {"../secret.csv", grpc::StatusCode::PERMISSION_DENIED, "outside --data_dir"},
      {"sub/../../x.csv", grpc::StatusCode::PERMISSION_DENIED, "outside --data_dir"},
      {outside.File("secret.csv"), grpc::StatusCode::PERMISSION_DENIED, "is absolute"},
      {"/etc/passwd", grpc::StatusCode::PERMISSION_DENIED, "is absolute"},
      {"link.csv", grpc::StatusCode::PERMISSION_DENIED, "symbolic link"},
      {"missing.csv", grpc::StatusCode::NOT_FOUND, "is not a file under --data_dir"},
      {"sub", grpc::StatusCode::NOT_FOUND, "is a folder, not a file"},
      {"folder.csv", grpc::StatusCode::NOT_FOUND, "is a folder, not a file"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    v1::JobSpec spec = SmallJobSpec("m", 1);
    spec.set_data_path(c.path);
    v1::Job job;
    grpc::Status s = Submit(spec, "", &job);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
}

TEST_F(TrainingTest, EveryInvalidHyperparameterIsNamed) {
  struct {
    std::function<void(v1::TrainingParams*)> set;
    std::string message;
  } cases[] = {
      {[](auto* p) { p->set_seed_fraction(0); }, "seed_fraction must be in (0, 1)"},
      {[](auto* p) { p->set_anomaly_fraction(0.7); }, "anomaly_fraction must be in (0, 0.5)"},
      {[](auto* p) { p->set_smote_k(0); }, "smote_k must be in [1, 100]"},
      {[](auto* p) { p->set_noise_scale(-1); }, "noise_scale must be in [0, 100]"},
      {[](auto* p) { p->add_noise_detector_widths(0); }, "noise_detector_widths widths"},
      {[](auto* p) { p->set_loss_weight(2); }, "loss_weight must be in [0, 1]"},
      {[](auto* p) { p->set_learning_rate(0); }, "learning_rate must be in (0, 1]"},
      {[](auto* p) { p->set_adam_beta1(1); }, "adam_beta1 must be in [0, 1)"},
      {[](auto* p) { p->set_adam_beta2(-0.1); }, "adam_beta2 must be in [0, 1)"},
      {[](auto* p) { p->set_batch_size(0); }, "batch_size must be in [1, 65536]"},
      {[](auto* p) { p->set_max_epochs(0); }, "max_epochs must be in [1, 100000]"},
      {[](auto* p) { p->set_patience(-1); }, "patience must be in [0, 100000]"},
      {[](auto* p) { p->set_validation_fraction(0.9); }, "validation_fraction must be in [0, 0.5]"},
      {[](auto* p) { p->set_dropout(1); }, "dropout must be in [0, 1)"},
      {[](auto* p) { p->set_contamination(0); }, "contamination must be in (0, 0.5]"},
      {[](auto* p) { p->set_batch_norm_momentum(0); }, "batch_norm_momentum must be in (0, 1]"},
      {[](auto* p) { p->set_min_steps(-5); }, "min_steps must be in [0, 10000000]"},
      {[](auto* p) { p->set_preset("fast"); }, "unknown preset 'fast'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    v1::JobSpec spec = SmallJobSpec("m", 1);
    c.set(spec.mutable_params());
    v1::Job job;
    grpc::Status s = SubmitCsv(spec, 50, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
  // Several bad fields: one message names them all.
  v1::JobSpec spec = SmallJobSpec("m", 1);
  spec.mutable_params()->set_dropout(3);
  spec.mutable_params()->set_smote_k(0);
  v1::Job job;
  grpc::Status s = SubmitCsv(spec, 50, &job);
  EXPECT_THAT(s.error_message(), HasSubstr("smote_k"));
  EXPECT_THAT(s.error_message(), HasSubstr("dropout"));
}

TEST_F(TrainingTest, BadSpecsAndDataAreRefused) {
  v1::Job job;
  v1::JobSpec spec = SmallJobSpec("bad name!", 1);
  EXPECT_EQ(SubmitCsv(spec, 50, &job).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  spec = SmallJobSpec("m", 1);
  EXPECT_THAT(Submit(spec, "", &job).error_message(), HasSubstr("set data_path"));
  spec.set_upload_format(v1::UPLOAD_FORMAT_CSV);
  EXPECT_THAT(Submit(spec, "a,b\n1,x\n", &job).error_message(), HasSubstr("line 2"));
  EXPECT_THAT(Submit(spec, "", &job).error_message(), HasSubstr("no chunk was sent"));
  spec.set_promote_to_alias("latest");
  EXPECT_THAT(SubmitCsv(spec, 50, &job).error_message(), HasSubstr("reserved"));
}

TEST_F(TrainingTest, UploadOverTheLimitIsResourceExhausted) {
  ServerOptions o;
  o.max_upload_bytes = 4096;
  StartServer(o);
  v1::Job job;
  grpc::Status s = SubmitCsv(SmallJobSpec("m", 1), 2000, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_upload_bytes"));
}

TEST_F(TrainingTest, AServerThatDoesNotTrainRefusesJobsNamingTheFlag) {
  ServerOptions o;
  o.max_queued_jobs = 0;
  StartServer(o);
  v1::Job job;
  grpc::Status s = SubmitCsv(SmallJobSpec("m", 1), 100, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_queued_jobs=0"));
}

TEST_F(TrainingTest, CancelARunningJobAndAQueuedOne) {
  ServerOptions o;
  o.max_queued_jobs = 1;
  StartServer(o);
  v1::Job running, queued, refused;
  ASSERT_TRUE(SubmitCsv(SmallJobSpec("m", 100000), 3000, &running).ok());
  WaitFor(running.id(), v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(SubmitCsv(SmallJobSpec("m", 5), 100, &queued).ok());
  EXPECT_EQ(queued.state(), v1::JOB_STATE_QUEUED);
  grpc::Status full = SubmitCsv(SmallJobSpec("m", 5), 100, &refused);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(full.error_message(), HasSubstr("--max_queued_jobs"));
  {
    grpc::ClientContext ctx;
    v1::CancelJobRequest req;
    req.set_job_id(queued.id());
    v1::Job after;
    ASSERT_TRUE(stub_->CancelJob(&ctx, req, &after).ok());
    EXPECT_EQ(after.state(), v1::JOB_STATE_CANCELLED);
  }
  {
    grpc::ClientContext ctx;
    v1::CancelJobRequest req;
    req.set_job_id(running.id());
    v1::Job after;
    ASSERT_TRUE(stub_->CancelJob(&ctx, req, &after).ok());
  }
  WaitFor(running.id(), v1::JOB_STATE_CANCELLED);
  // Nothing was published; cancelling again is a precondition failure.
  grpc::ClientContext ctx;
  v1::ListModelsResponse models;
  ASSERT_TRUE(env_->models()->ListModels(&ctx, v1::ListModelsRequest(), &models).ok());
  EXPECT_EQ(models.models_size(), 0);
  grpc::ClientContext ctx2;
  v1::CancelJobRequest again;
  again.set_job_id(running.id());
  v1::Job j;
  EXPECT_EQ(stub_->CancelJob(&ctx2, again, &j).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(TrainingTest, ListFiltersAndPages) {
  v1::Job a, b, c;
  ASSERT_TRUE(SubmitCsv(SmallJobSpec("alpha", 1), 100, &a).ok());
  ASSERT_TRUE(SubmitCsv(SmallJobSpec("beta", 1), 100, &b).ok());
  ASSERT_TRUE(SubmitCsv(SmallJobSpec("alpha", 1), 100, &c).ok());
  for (const auto* j : {&a, &b, &c}) WaitFor(j->id(), v1::JOB_STATE_SUCCEEDED);
  grpc::ClientContext ctx;
  v1::ListJobsRequest req;
  req.set_model_name("alpha");
  req.set_page_size(1);
  v1::ListJobsResponse page1;
  ASSERT_TRUE(stub_->ListJobs(&ctx, req, &page1).ok());
  ASSERT_EQ(page1.jobs_size(), 1);
  EXPECT_EQ(page1.jobs(0).id(), c.id());  // newest first
  ASSERT_FALSE(page1.next_page_token().empty());
  req.set_page_token(page1.next_page_token());
  grpc::ClientContext ctx2;
  v1::ListJobsResponse page2;
  ASSERT_TRUE(stub_->ListJobs(&ctx2, req, &page2).ok());
  ASSERT_EQ(page2.jobs_size(), 1);
  EXPECT_EQ(page2.jobs(0).id(), a.id());
  EXPECT_TRUE(page2.next_page_token().empty());
  req.set_model_name("beta");  // token from other filters
  grpc::ClientContext ctx3;
  v1::ListJobsResponse bad;
  EXPECT_EQ(stub_->ListJobs(&ctx3, req, &bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext ctx4;
  v1::ListJobsRequest by_state;
  by_state.add_states(v1::JOB_STATE_FAILED);
  v1::ListJobsResponse none;
  ASSERT_TRUE(stub_->ListJobs(&ctx4, by_state, &none).ok());
  EXPECT_EQ(none.jobs_size(), 0);
}

TEST_F(TrainingTest, RestartKeepsFinishedJobsAndFailsInterruptedOnes) {
  v1::Job done;
  ASSERT_TRUE(SubmitCsv(SmallJobSpec("m", 1), 100, &done).ok());
  WaitFor(done.id(), v1::JOB_STATE_SUCCEEDED);
  const std::string model_dir = env_->model_dir();
  env_->Stop();
  // A job that was running when the process died (as a crash leaves it).
  v1::Job crashed = done;
  crashed.set_id("job-crashed");
  crashed.set_state(v1::JOB_STATE_RUNNING);
  crashed.set_published_version(0);
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(crashed, &json).ok());
  std::ofstream(model_dir + "/.jobs/job-crashed.json") << json;
  std::ofstream(model_dir + "/.jobs/junk.json") << "{not json";
  env_->Start();
  stub_ = v1::Training::NewStub(env_->channel());
  EXPECT_EQ(Get(done.id()).state(), v1::JOB_STATE_SUCCEEDED);
  const v1::Job after = Get("job-crashed");
  EXPECT_EQ(after.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(after.error(), HasSubstr("interrupted by server restart"));
  // The published version is still there.
  grpc::ClientContext sctx;
  v1::ScoreResponse resp;
  EXPECT_TRUE(env_->scoring()->Score(&sctx, MakeRequest("m", 2, kD), &resp).ok());
}

TEST_F(TrainingTest, TokenIsRequiredWhenConfigured) {
  ServerOptions o;
  o.auth_token = "t0ken";
  StartServer(o);
  v1::Job job;
  EXPECT_EQ(SubmitCsv(SmallJobSpec("m", 1), 100, &job).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  token_ = "nope";
  EXPECT_EQ(SubmitCsv(SmallJobSpec("m", 1), 100, &job).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext ctx;
  v1::GetJobRequest req;
  req.set_job_id("x");
  EXPECT_EQ(stub_->GetJob(&ctx, req, &job).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  token_ = "t0ken";
  EXPECT_TRUE(SubmitCsv(SmallJobSpec("m", 1), 100, &job).ok());
}

// Every SubmitJob, GetJob, ListJobs, CancelJob and WatchJob code that
// training.proto and docs/API.md promise and the tests above do not check.
TEST_F(TrainingTest, EveryDocumentedStatusCodeOfTheTrainingRpcs) {
  using C = grpc::StatusCode;
  std::ofstream(data_.File("data.json")) << "[[1, 2], [3, 4]]\n";
  std::filesystem::create_directories(data_.File("folder.csv"));
  auto send = [&](const std::vector<v1::SubmitJobRequest>& messages) {
    grpc::ClientContext ctx;
    v1::Job job;
    auto w = stub_->SubmitJob(&ctx, &job);
    for (const auto& m : messages) {
      if (!w->Write(m)) break;
    }
    w->WritesDone();
    return w->Finish();
  };
  auto head = [](v1::JobSpec spec) {
    v1::SubmitJobRequest r;
    *r.mutable_spec() = std::move(spec);
    return r;
  };
  auto bytes = [](const std::string& data) {
    v1::SubmitJobRequest r;
    r.mutable_chunk()->set_data(data);
    return r;
  };
  auto dense = [](int d, std::vector<float> values, std::vector<std::string> names = {}) {
    v1::SubmitJobRequest r;
    r.mutable_chunk()->set_num_features(d);
    r.mutable_chunk()->mutable_values()->Add(values.begin(), values.end());
    for (auto& n : names) r.mutable_chunk()->add_feature_names(n);
    return r;
  };
  auto upload = [](v1::UploadFormat f, std::string alias = "", std::string label = "") {
    v1::JobSpec spec = SmallJobSpec("m", 1);
    spec.set_upload_format(f);
    spec.set_promote_to_alias(alias);
    spec.set_label_column(label);
    return spec;
  };
  auto path = [](const std::string& p) {
    v1::JobSpec spec = SmallJobSpec("m", 1);
    spec.set_data_path(p);
    return spec;
  };
  std::string csv = CsvBytes(50, 3);
  std::string nan_csv = CsvBytes(50, 3);
  {  // the last line's first field becomes nan
    const size_t line = nan_csv.rfind('\n', nan_csv.size() - 2) + 1;
    nan_csv.replace(line, nan_csv.find(',', line) - line, "nan");
  }
  const v1::JobSpec csv_spec = upload(v1::UPLOAD_FORMAT_CSV);
  struct Case {
    std::string what;
    grpc::Status got;
    C code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no message at all", send({}), C::INVALID_ARGUMENT, "no SubmitJobRequest was sent"},
      {"first message a chunk", send({bytes(csv)}), C::INVALID_ARGUMENT,
       "first SubmitJobRequest must carry the spec"},
      {"a second spec", send({head(csv_spec), head(csv_spec)}), C::INVALID_ARGUMENT,
       "only the first message may carry a spec"},
      {"UPLOAD_FORMAT_UNSPECIFIED", send({head(upload(v1::UPLOAD_FORMAT_UNSPECIFIED))}),
       C::INVALID_ARGUMENT, "set data_path"},
      {"chunks with data_path", send({head(path("data.csv")), bytes(csv)}), C::INVALID_ARGUMENT,
       "the spec names a data_path"},
      {"DENSE chunk with bytes", send({head(upload(v1::UPLOAD_FORMAT_DENSE)), bytes("1,2")}),
       C::INVALID_ARGUMENT, "DENSE chunks carry values"},
      {"CSV chunk with values", send({head(csv_spec), dense(2, {1, 2})}), C::INVALID_ARGUMENT,
       "only DENSE chunks carry values"},
      {"CSV chunk with num_features only", send({head(csv_spec), dense(2, {})}),
       C::INVALID_ARGUMENT, "only DENSE chunks carry values, num_features"},
      {"DENSE names in a later chunk", send({head(upload(v1::UPLOAD_FORMAT_DENSE)),
                                             dense(2, {1, 2}, {"a", "b"}),
                                             dense(2, {3, 4}, {"a", "b"})}),
       C::INVALID_ARGUMENT, "chunk 1 carries feature_names; only the first DENSE chunk may"},
      {"DENSE width changes", send({head(upload(v1::UPLOAD_FORMAT_DENSE)), dense(2, {1, 2}),
                                    dense(3, {1, 2, 3})}),
       C::INVALID_ARGUMENT, "has num_features 3; the first had 2"},
      {"DENSE record split", send({head(upload(v1::UPLOAD_FORMAT_DENSE)), dense(2, {1, 2, 3})}),
       C::INVALID_ARGUMENT, "not a multiple of num_features"},
      {"DENSE names count", send({head(upload(v1::UPLOAD_FORMAT_DENSE)), dense(2, {1, 2}, {"a"})}),
       C::INVALID_ARGUMENT, "feature_names must have num_features entries"},
      {"DENSE NaN", send({head(upload(v1::UPLOAD_FORMAT_DENSE)), dense(2, {1, NAN})}),
       C::INVALID_ARGUMENT, "value 1 is not finite"},
      {"CSV NaN", send({head(csv_spec), bytes(nan_csv)}), C::INVALID_ARGUMENT, "nan"},
      {"too few rows", send({head(csv_spec), bytes(CsvBytes(5, 3))}), C::INVALID_ARGUMENT,
       "training needs at least 10"},
      {"unknown label_column", send({head(upload(v1::UPLOAD_FORMAT_CSV, "", "nope")), bytes(csv)}),
       C::INVALID_ARGUMENT, "nope"},
      {"malformed promote_to_alias", send({head(upload(v1::UPLOAD_FORMAT_CSV, "Bad")), bytes(csv)}),
       C::INVALID_ARGUMENT, "alias 'Bad'"},
      {"unknown data_path extension", send({head(path("data.json"))}), C::INVALID_ARGUMENT,
       "data.json"},
      {"data_path a folder", send({head(path("folder.csv"))}), C::NOT_FOUND, "folder.csv"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.got.error_code(), c.code) << c.what << ": " << c.got.error_message();
    EXPECT_THAT(c.got.error_message(), HasSubstr(c.message)) << c.what;
  }

  // The job RPCs: an empty id and an unknown one.
  for (const std::string& id : {std::string(), std::string("job-unknown")}) {
    SCOPED_TRACE("job id '" + id + "'");
    const C code = id.empty() ? C::INVALID_ARGUMENT : C::NOT_FOUND;
    const std::string message = id.empty() ? "job_id is empty" : "no job 'job-unknown'";
    std::vector<grpc::Status> got;
    {
      grpc::ClientContext ctx;
      v1::GetJobRequest req;
      req.set_job_id(id);
      v1::Job job;
      got.push_back(stub_->GetJob(&ctx, req, &job));
    }
    {
      grpc::ClientContext ctx;
      v1::CancelJobRequest req;
      req.set_job_id(id);
      v1::Job job;
      got.push_back(stub_->CancelJob(&ctx, req, &job));
    }
    {
      grpc::ClientContext ctx;
      v1::WatchJobRequest req;
      req.set_job_id(id);
      auto r = stub_->WatchJob(&ctx, req);
      v1::JobProgress p;
      EXPECT_FALSE(r->Read(&p));
      got.push_back(r->Finish());
    }
    for (const grpc::Status& s : got) {
      EXPECT_EQ(s.error_code(), code) << s.error_message();
      EXPECT_THAT(s.error_message(), HasSubstr(message));
    }
  }
  auto list = [&](const v1::ListJobsRequest& req) {
    grpc::ClientContext ctx;
    v1::ListJobsResponse resp;
    return stub_->ListJobs(&ctx, req, &resp);
  };
  v1::ListJobsRequest negative;
  negative.set_page_size(-1);
  v1::ListJobsRequest unspecified;
  unspecified.add_states(v1::JOB_STATE_UNSPECIFIED);
  v1::ListJobsRequest bad_name;
  bad_name.set_model_name("../m");
  v1::ListJobsRequest foreign_token;
  foreign_token.set_page_token("not-a-token");
  for (const auto& [req, message] : std::vector<std::pair<v1::ListJobsRequest, std::string>>{
           {negative, "page_size"}, {unspecified, "is not a job state"},
           {bad_name, "model name"}, {foreign_token, "page_token"}}) {
    grpc::Status s = list(req);
    EXPECT_EQ(s.error_code(), C::INVALID_ARGUMENT) << message << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(message));
  }
}

TEST_F(TrainingTest, DataPathOnAServerWithoutADataFolderIsAFailedPrecondition) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);  // no --data_dir
  auto stub = v1::Training::NewStub(env.channel());
  grpc::ClientContext ctx;
  v1::Job job;
  auto w = stub->SubmitJob(&ctx, &job);
  v1::SubmitJobRequest head;
  *head.mutable_spec() = SmallJobSpec("m", 1);
  head.mutable_spec()->set_data_path("data.csv");
  w->Write(head);
  w->WritesDone();
  grpc::Status s = w->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("no --data_dir"));
}

TEST_F(TrainingTest, OneMessageOverTheSizeLimitIsResourceExhausted) {
  ServerOptions o;
  o.max_message_bytes = 64 << 10;
  StartServer(o);
  v1::Job job;
  v1::JobSpec spec = SmallJobSpec("m", 1);
  spec.set_upload_format(v1::UPLOAD_FORMAT_CSV);
  const std::string csv = CsvBytes(3000, 3);
  ASSERT_GT(csv.size(), size_t{64 << 10});
  grpc::Status s = Submit(spec, csv, &job, csv.size());  // one chunk
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
}

}  // namespace
}  // namespace anorand::test_support
