// Reservoirs of recent traffic over real gRPC on loopback (server/
// reservoirs.h): a model that opted in (--reservoir_records) keeps a sample
// of the records it answered, bounded in rows, written to the store at
// shutdown and read back at start; a SubmitJob with from_reservoir trains on
// every replica's sample; every misuse of the source is refused with the
// status the proto documents, and a damaged file neither stops the server
// nor trains a job.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model_file.h"
#include "model/reservoir.h"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

constexpr int kCols = 4;

ServerOptions WithReservoir(const std::string& replica, int64_t rows) {
  ServerOptions o;
  o.poll_seconds = 0;
  o.replica_id = replica;
  o.reservoir_records = {{"m", rows}};
  o.reservoir_flush_seconds = 3600;  // written at shutdown or for a job
  return o;
}

void ScoreRows(ServerEnv& env, const std::string& model, int batches, int rows, uint64_t seed) {
  auto stub = env.scoring();
  for (int b = 0; b < batches; ++b) {
    grpc::ClientContext ctx;
    v1::ScoreResponse resp;
    const grpc::Status s = stub->Score(&ctx, MakeRequest(model, rows, kCols, seed + b), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
}

// The same over one StreamScore stream.
void StreamRows(ServerEnv& env, const std::string& model, int batches, int rows, uint64_t seed) {
  auto stub = env.scoring();
  grpc::ClientContext ctx;
  auto rw = stub->StreamScore(&ctx);
  for (int b = 0; b < batches; ++b) ASSERT_TRUE(rw->Write(MakeRequest(model, rows, kCols, seed + b)));
  rw->WritesDone();
  v1::ScoreResponse resp;
  int answered = 0;
  while (rw->Read(&resp)) ++answered;
  EXPECT_EQ(answered, batches);
  EXPECT_TRUE(rw->Finish().ok());
}

ReservoirSnapshot ReadFile(const std::string& path) {
  auto bytes = ReadFileBounded(path, 1 << 30);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  auto s = ParseReservoir(bytes.ok() ? *bytes : "", path);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : ReservoirSnapshot();
}

grpc::Status Submit(ServerEnv& env, const v1::JobSpec& spec, v1::Job* job,
                    bool extra_chunk = false) {
  auto stub = v1::Training::NewStub(env.channel());
  grpc::ClientContext ctx;
  auto w = stub->SubmitJob(&ctx, job);
  v1::SubmitJobRequest head;
  *head.mutable_spec() = spec;
  w->Write(head);
  if (extra_chunk) {
    v1::SubmitJobRequest c;
    c.mutable_chunk()->set_data("a,b\n1,2\n");
    w->Write(c);
  }
  w->WritesDone();
  return w->Finish();
}

v1::JobSpec FromReservoir(const std::string& model) {
  v1::JobSpec spec;
  spec.set_model_name(model);
  spec.set_from_reservoir(true);
  spec.mutable_params()->set_max_epochs(2);
  spec.mutable_params()->set_min_steps(0);
  spec.mutable_params()->set_ensemble_size(1);
  return spec;
}

v1::Job AwaitJob(ServerEnv& env, const std::string& id) {
  auto stub = v1::Training::NewStub(env.channel());
  grpc::ClientContext ctx;
  v1::WatchJobRequest req;
  req.set_job_id(id);
  auto r = stub->WatchJob(&ctx, req);
  v1::JobProgress p;
  while (r->Read(&p)) {
  }
  EXPECT_TRUE(r->Finish().ok());
  grpc::ClientContext gc;
  v1::GetJobRequest get;
  get.set_job_id(id);
  v1::Job job;
  EXPECT_TRUE(stub->GetJob(&gc, get, &job).ok());
  return job;
}

TEST(ReservoirServerTest, AnsweredRecordsAreKeptBoundedSurviveARestartAndTrainAJob) {
  ServerOptions o = WithReservoir("a", 100);
  o.metrics_address = "127.0.0.1:0";
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", TinyModel(kCols, 1)).ok());
  ASSERT_TRUE(env.Import("other", TinyModel(kCols, 2)).ok());
  ScoreRows(env, "m", 15, 20, 1);      // 300 records of m
  ScoreRows(env, "other", 5, 20, 50);  // not kept: "other" did not opt in
  const std::string metrics = HttpGetRaw(env.server().metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("anorand_reservoir_records{model=\"m\"} 50\n"));
  EXPECT_THAT(metrics, HasSubstr("anorand_reservoir_seen_records{model=\"m\"} 300\n"));
  EXPECT_THAT(metrics, HasSubstr("anorand_reservoir_bytes{model=\"m\"} 800\n"));
  EXPECT_THAT(metrics, Not(HasSubstr("anorand_reservoir_records{model=\"other\"}")));
  env.Stop();

  const std::string file = env.model_dir() + "/.reservoir/m/a.rsv";
  ASSERT_TRUE(fs::exists(file));
  EXPECT_FALSE(fs::exists(env.model_dir() + "/.reservoir/other"));
  ReservoirSnapshot s = ReadFile(file);
  EXPECT_EQ(s.cols, kCols);
  EXPECT_EQ(s.rows(), 50);  // half of 100: the current half
  EXPECT_EQ(s.seen(), 300);

  // After a restart the sample continues from the file.
  env.Start();
  ScoreRows(env, "m", 2, 10, 80);
  v1::Job job;
  const grpc::Status submitted = Submit(env, FromReservoir("m"), &job);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  EXPECT_EQ(job.data_rows(), 50);
  const v1::Job done = AwaitJob(env, job.id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  EXPECT_EQ(done.published_version(), 2);
  EXPECT_EQ(ReadFile(file).seen(), 320);  // written for the job
}

TEST(ReservoirServerTest, AJobTrainsOnEveryReplicasSample) {
  ServerEnv a(WithReservoir("a", 40));
  ServerOptions ob = WithReservoir("b", 40);
  ob.model_dir = a.model_dir();
  ServerEnv b(ob);
  ASSERT_TRUE(a.Import("m", TinyModel(kCols, 3)).ok());
  // b's store poll is off: it loads the version at its next rescan, which
  // a restart gives.
  b.Stop();
  b.Start();
  ScoreRows(a, "m", 3, 10, 1);  // 30 records, of which a half of 40 keeps 20
  StreamRows(b, "m", 1, 7, 9);  // 7 records, by a stream
  b.Stop();                     // b's sample is written at shutdown
  v1::Job job;
  const grpc::Status submitted = Submit(a, FromReservoir("m"), &job);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  EXPECT_EQ(job.data_rows(), 20 + 7);
  EXPECT_EQ(AwaitJob(a, job.id()).state(), v1::JOB_STATE_SUCCEEDED);
}

TEST(ReservoirServerTest, MisusesOfTheSourceAreRefusedAndSubmitNoJob) {
  ServerEnv env(WithReservoir("a", 100));
  ASSERT_TRUE(env.Import("m", TinyModel(kCols, 4)).ok());
  v1::Job job;
  // Nothing scored yet.
  grpc::Status s = Submit(env, FromReservoir("m"), &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("score some traffic first"));
  // A model no replica keeps a reservoir of.
  s = Submit(env, FromReservoir("nobody"), &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("--reservoir_records nobody=ROWS"));
  ScoreRows(env, "m", 2, 10, 1);
  v1::JobSpec labelled = FromReservoir("m");
  labelled.set_label_column("y");
  s = Submit(env, labelled, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("carry no labels"));
  v1::JobSpec off = FromReservoir("m");
  off.set_from_reservoir(false);
  s = Submit(env, off, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("from_reservoir"));
  s = Submit(env, FromReservoir("m"), &job, /*extra_chunk=*/true);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("spec sets from_reservoir"));

  auto stub = v1::Training::NewStub(env.channel());
  grpc::ClientContext ctx;
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(stub->ListJobs(&ctx, v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
}

TEST(ReservoirServerTest, ADamagedFileStartsEmptyAndIsNeverTrainedOn) {
  ServerEnv env(WithReservoir("a", 100), /*start=*/false);
  const std::string dir = env.model_dir() + "/.reservoir/m";
  fs::create_directories(dir);
  { std::ofstream(dir + "/a.rsv") << "not a reservoir"; }
  { std::ofstream(dir + "/z.rsv") << "damaged too"; }  // another replica's
  { std::ofstream(dir + "/a.rsv.tmp.123.0") << "a write cut short"; }
  env.Start();
  EXPECT_FALSE(fs::exists(dir + "/a.rsv.tmp.123.0")) << "the crashed write's temporary stays";
  ASSERT_TRUE(env.Import("m", TinyModel(kCols, 5)).ok());
  ScoreRows(env, "m", 1, 10, 1);
  v1::Job job;
  // a.rsv is rewritten from the fresh sample; z.rsv is still damaged.
  grpc::Status s = Submit(env, FromReservoir("m"), &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("z.rsv"));
  EXPECT_THAT(s.error_message(), HasSubstr("delete the file"));
  EXPECT_EQ(ReadFile(dir + "/a.rsv").seen(), 10);
  fs::remove(dir + "/z.rsv");
  s = Submit(env, FromReservoir("m"), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job.data_rows(), 10);
}

}  // namespace
}  // namespace anorand::test_support
