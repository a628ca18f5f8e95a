// The anorand-server binary as a user runs it: it starts on a free port,
// answers grpc.health.v1 and server reflection, Training RPCs answer
// with codes and messages, bad flags exit 2 with a message, --help
// prints usage to stdout and exits 0, and SIGTERM drains open streams and
// exits 0.
#include <signal.h>

#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include "anorand/v1/models.grpc.pb.h"
#include "anorand/v1/scoring.grpc.pb.h"
#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "proto/grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/model_file.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {ServerBinary(), "--grpc_address=127.0.0.1:0",
                                     "--model_dir=" + dir_.File("models"), "--drain_seconds=5"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Subprocess>(argv, dir_.File("out"), dir_.File("err"));
    const std::regex port_re("listening on port ([0-9]+)");
    WaitUntil(
        [&] {
          std::smatch m;
          const std::string out = ReadWholeFile(dir_.File("out"));
          if (std::regex_search(out, m, port_re)) port_ = std::stoi(m[1]);
          return port_ != 0;
        },
        60);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  int port() const { return port_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  Subprocess& proc() { return *proc_; }
  std::string err() { return ReadWholeFile(dir_.File("err")); }

 private:
  TempDir dir_;
  std::unique_ptr<Subprocess> proc_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST(ServerBinaryTest, AnswersHealthPerService) {
  ServerProcess server;
  ASSERT_GT(server.port(), 0) << server.err();
  auto health = grpc::health::v1::Health::NewStub(server.channel());
  for (const char* service : {"", "anorand.v1.Scoring", "anorand.v1.Models", "anorand.v1.Training",
                              "anorand.v1.Feedback"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

TEST(ServerBinaryTest, ScoringIsNotServingUntilRequiredModelsAreReady) {
  ServerProcess server({"--require_models=fraud"});
  ASSERT_GT(server.port(), 0) << server.err();
  auto health = grpc::health::v1::Health::NewStub(server.channel());
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("anorand.v1.Scoring");
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
}

TEST(ServerBinaryTest, ReflectionListsEveryService) {
  ServerProcess server;
  ASSERT_GT(server.port(), 0) << server.err();
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(server.channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  ASSERT_TRUE(stream->Write(req));
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::set<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.insert(s.name());
  for (const char* want : {"anorand.v1.Scoring", "anorand.v1.Models", "anorand.v1.Training",
                           "anorand.v1.Feedback", "grpc.health.v1.Health"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(ServerBinaryTest, TrainingRpcsAnswerWithCodesAndMessages) {
  ServerProcess server;
  ASSERT_GT(server.port(), 0) << server.err();
  auto stub = v1::Training::NewStub(server.channel());
  {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id("job-none");
    v1::Job job;
    grpc::Status s = stub->GetJob(&ctx, req, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(), HasSubstr("no job 'job-none'"));
  }
  {
    grpc::ClientContext ctx;
    v1::WatchJobRequest req;
    auto reader = stub->WatchJob(&ctx, req);
    v1::JobProgress p;
    EXPECT_FALSE(reader->Read(&p));
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("job_id is empty"));
  }
}

TEST(ServerBinaryTest, BadFlagsExitTwoWithAMessage) {
  TempDir dir;
  std::string out, err;
  EXPECT_EQ(RunCommand({ServerBinary(), "--poll_seconds=-1", "--model_dir=" + dir.path()}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--poll_seconds must be in [0, 86400]"));
  EXPECT_EQ(RunCommand({ServerBinary(), "--grpc_address=256.1.1.1:99999", "--model_dir=" + dir.path()},
                       &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--grpc_address"));
  EXPECT_NE(RunCommand({ServerBinary(), "--no_such_flag=1"}, &out, &err), 0);
  EXPECT_THAT(err, HasSubstr("no_such_flag"));
}

TEST(ServerBinaryTest, HelpPrintsUsageToStdoutAndExitsZero) {
  TempDir dir;
  for (const char* flag : {"--help", "--helpfull"}) {
    std::string out, err;
    EXPECT_EQ(RunCommand({ServerBinary(), flag, "--model_dir=" + dir.File("models")}, &out, &err), 0)
        << flag << ": " << err;
    EXPECT_THAT(out, HasSubstr("Usage: anorand-server")) << flag;
    EXPECT_THAT(out, HasSubstr("--grpc_address")) << flag;
    EXPECT_EQ(out.find("listening on port"), std::string::npos) << flag << ": the server started";
    EXPECT_EQ(err, "") << flag;
  }
}

TEST(ServerBinaryTest, SigtermWithOpenStreamsDrainsAndExitsZero) {
  ServerProcess server;
  ASSERT_GT(server.port(), 0) << server.err();
  auto stub = v1::Scoring::NewStub(server.channel());
  grpc::ClientContext ctx;
  auto stream = stub->StreamScore(&ctx);
  v1::ScoreRequest req;
  req.mutable_model()->set_name("absent");
  // The stream is open (nothing sent yet) when the signal arrives.
  server.proc().Signal(SIGTERM);
  // The stream ends after the server has begun to drain.
  EXPECT_TRUE(WaitUntil([&] { return server.err().find("draining") != std::string::npos; }, 60))
      << server.err();
  stream->WritesDone();
  grpc::Status s = stream->Finish();  // finishes cleanly or is cancelled at the deadline
  EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::UNAVAILABLE ||
              s.error_code() == grpc::StatusCode::CANCELLED)
      << s.error_message();
  EXPECT_EQ(server.proc().Wait(30), 0) << server.err();
  EXPECT_THAT(server.err(), HasSubstr("draining"));
  // New calls are refused once it is gone.
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::ScoreResponse resp;
  EXPECT_FALSE(stub->Score(&ctx2, req, &resp).ok());
}

// An open stream is told to reconnect once its answers are delivered,
// instead of being cancelled at the drain deadline with gRPC's "Cancelling
// all calls".
TEST(ServerBinaryTest, SigtermEndsOpenStreamsWithUnavailableAfterTheirAnswers) {
  ServerProcess server({"--drain_seconds=30"});
  ASSERT_GT(server.port(), 0) << server.err();
  constexpr int kD = 8;
  {
    grpc::ClientContext ctx;
    v1::VersionInfo info;
    auto writer = v1::Models::NewStub(server.channel())->ImportVersion(&ctx, &info);
    v1::ImportChunk header;
    header.mutable_header()->set_model_name("m");
    ASSERT_TRUE(writer->Write(header));
    v1::ImportChunk data;
    data.set_data(SerializeModel(TinyModel(kD)));
    ASSERT_TRUE(writer->Write(data));
    writer->WritesDone();
    const grpc::Status imported = writer->Finish();
    ASSERT_TRUE(imported.ok()) << imported.error_message();
  }
  v1::ScoreRequest req;
  req.mutable_model()->set_name("m");
  req.mutable_batch()->set_num_features(kD);
  for (int i = 0; i < 3 * kD; ++i) req.mutable_batch()->add_values(0.1f * (i % 7));
  auto stub = v1::Scoring::NewStub(server.channel());
  grpc::ClientContext ctx;
  auto stream = stub->StreamScore(&ctx);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(stream->Write(req));
    v1::ScoreResponse resp;
    ASSERT_TRUE(stream->Read(&resp)) << "answer " << i;
    EXPECT_EQ(resp.scores_size(), 3);
  }
  const auto sent = std::chrono::steady_clock::now();
  server.proc().Signal(SIGTERM);
  // The client keeps its side open and waits: the server ends the stream.
  v1::ScoreResponse extra;
  EXPECT_FALSE(stream->Read(&extra));
  const grpc::Status s = stream->Finish();
  std::printf("stream ended %.2f s after SIGTERM (--drain_seconds=30)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("server shutting down; reconnect"));
  EXPECT_EQ(server.proc().Wait(60), 0) << server.err();
}

}  // namespace
}  // namespace anorand::test_support
