// The anorand-server binary receiving SIGTERM while a training job runs:
// the job is cancelled (never half-published), the process exits 0 inside
// its drain, and after a restart on the same model folder the job reads
// CANCELLED with the reason. Two server processes sharing one jobs folder:
// the second neither trains nor touches the first's records, even when it
// restarts while the first's job runs.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "anorand/v1/models.grpc.pb.h"
#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/data/synthetic_data.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

// One run of the server binary over `model_dir`.
class Server {
 public:
  Server(const TempDir& dir, const std::string& run) {
    proc_ = std::make_unique<Subprocess>(
        std::vector<std::string>{ServerBinary(), "--grpc_address=127.0.0.1:0",
                                 "--model_dir=" + dir.File("models"), "--drain_seconds=2",
                                 "--poll_seconds=0"},
        dir.File(run + ".out"), dir.File(run + ".err"));
    err_path_ = dir.File(run + ".err");
    const std::regex port_re("listening on port ([0-9]+)");
    int port = 0;
    WaitUntil(
        [&] {
          std::smatch m;
          const std::string out = ReadWholeFile(dir.File(run + ".out"));
          if (std::regex_search(out, m, port_re)) port = std::stoi(m[1]);
          return port != 0;
        },
        60);
    port_ = port;
    stub_ = v1::Training::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                      grpc::InsecureChannelCredentials()));
    models_ = v1::Models::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                      grpc::InsecureChannelCredentials()));
  }
  int port() const { return port_; }
  Subprocess& proc() { return *proc_; }
  v1::Training::Stub* stub() { return stub_.get(); }
  v1::Models::Stub* models() { return models_.get(); }
  std::string err() { return ReadWholeFile(err_path_); }
  v1::Job Get(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id(id);
    v1::Job job;
    EXPECT_TRUE(stub_->GetJob(&ctx, req, &job).ok());
    return job;
  }

 private:
  std::unique_ptr<Subprocess> proc_;
  std::string err_path_;
  int port_ = 0;
  std::unique_ptr<v1::Training::Stub> stub_;
  std::unique_ptr<v1::Models::Stub> models_;
};

// Submits a job on `csv_bytes` that trains until cancelled.
grpc::Status SubmitEndless(v1::Training::Stub* stub, const std::string& csv_bytes, v1::Job* job) {
  v1::SubmitJobRequest head;
  head.mutable_spec()->set_model_name("m");
  head.mutable_spec()->set_upload_format(v1::UPLOAD_FORMAT_CSV);
  head.mutable_spec()->mutable_params()->set_max_epochs(100'000);
  head.mutable_spec()->mutable_params()->set_patience(0);
  grpc::ClientContext ctx;
  auto w = stub->SubmitJob(&ctx, job);
  w->Write(head);
  v1::SubmitJobRequest chunk;
  chunk.mutable_chunk()->set_data(csv_bytes);
  w->Write(chunk);
  w->WritesDone();
  return w->Finish();
}

TEST(DrainJobsTest, SigtermCancelsTheRunningJobAndTheRecordSaysSoAfterARestart) {
  TempDir dir;
  std::string job_id;
  {
    Server server(dir, "first");
    ASSERT_GT(server.port(), 0) << server.err();
    TempDir csv;
    ASSERT_TRUE(WriteCsv(DemoData(2000, 5, 1), csv.File("d.csv"), false).ok());
    v1::Job job;
    const grpc::Status submitted =
        SubmitEndless(server.stub(), ReadWholeFile(csv.File("d.csv")), &job);
    ASSERT_TRUE(submitted.ok()) << submitted.error_message();
    job_id = job.id();
    // Training (an epoch done) when the signal arrives.
    grpc::ClientContext wctx;
    v1::WatchJobRequest req;
    req.set_job_id(job_id);
    auto watch = server.stub()->WatchJob(&wctx, req);
    v1::JobProgress p;
    while (watch->Read(&p) && p.epoch() < 1) {
    }
    ASSERT_EQ(p.state(), v1::JOB_STATE_RUNNING);
    const auto sent = std::chrono::steady_clock::now();
    server.proc().Signal(SIGTERM);
    // The watch ends with the job's terminal message or with the server.
    while (watch->Read(&p)) {
    }
    (void)watch->Finish();
    EXPECT_EQ(server.proc().Wait(60), 0) << server.err();
    std::printf("exited %.2f s after SIGTERM (--drain_seconds=2)\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count());
  }
  Server again(dir, "second");
  ASSERT_GT(again.port(), 0) << again.err();
  const v1::Job after = again.Get(job_id);
  EXPECT_EQ(after.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(after.error(), HasSubstr("cancelled while training"));
  EXPECT_THAT(after.error(), HasSubstr("the server is shutting down"));
  EXPECT_EQ(after.published_version(), 0);
  grpc::ClientContext ctx;
  v1::ListModelsResponse models;
  ASSERT_TRUE(again.models()->ListModels(&ctx, v1::ListModelsRequest(), &models).ok());
  EXPECT_EQ(models.models_size(), 0);
}

TEST(DrainJobsTest, ASecondServerOnTheSameJobsFolderLeavesTheFirstsRunningJobAlone) {
  TempDir dir;
  Server first(dir, "first");
  ASSERT_GT(first.port(), 0) << first.err();
  TempDir csv;
  ASSERT_TRUE(WriteCsv(DemoData(2000, 5, 2), csv.File("d.csv"), false).ok());
  const std::string bytes = ReadWholeFile(csv.File("d.csv"));
  auto submit = [&bytes](v1::Training::Stub* stub, v1::Job* job) {
    return SubmitEndless(stub, bytes, job);
  };
  v1::Job job;
  const grpc::Status submitted = submit(first.stub(), &job);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  ASSERT_TRUE(WaitUntil([&] { return first.Get(job.id()).state() == v1::JOB_STATE_RUNNING; }, 60));

  const std::string record = dir.File("models") + "/.jobs/" + job.id() + ".json";
  for (const char* run : {"second", "second-again"}) {
    // The second server starts (and in the second round restarts) while the
    // first's job runs: the record on disk still says RUNNING.
    Server second(dir, run);
    ASSERT_GT(second.port(), 0) << second.err();
    EXPECT_THAT(second.err(), HasSubstr("belongs to another server process"));
    EXPECT_THAT(ReadWholeFile(record), HasSubstr("JOB_STATE_RUNNING"));
    v1::Job refused;
    const grpc::Status s = submit(second.stub(), &refused);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(s.error_message(), HasSubstr("give this one its own --jobs_dir"));
    grpc::ClientContext gctx;
    v1::GetJobRequest get;
    get.set_job_id(job.id());
    v1::Job seen;
    EXPECT_EQ(second.stub()->GetJob(&gctx, get, &seen).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
    second.proc().Signal(SIGTERM);
    EXPECT_EQ(second.proc().Wait(60), 0) << second.err();
  }
  EXPECT_EQ(first.Get(job.id()).state(), v1::JOB_STATE_RUNNING);
  EXPECT_THAT(ReadWholeFile(record), HasSubstr("JOB_STATE_RUNNING"));
  grpc::ClientContext cctx;
  v1::CancelJobRequest cancel;
  cancel.set_job_id(job.id());
  v1::Job after;
  EXPECT_TRUE(first.stub()->CancelJob(&cctx, cancel, &after).ok());
}

}  // namespace
}  // namespace anorand::test_support
