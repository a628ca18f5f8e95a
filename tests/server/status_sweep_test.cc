// Documented status codes that the per-service tests leave out (#18):
// ImportVersion's stream-structure and header refusals, Score without a
// batch or with a response over --max_message_bytes, and every RPC during
// and after the drain. Real server, real gRPC.
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "anorand/v1/feedback.grpc.pb.h"
#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/server/server_env.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
using C = grpc::StatusCode;
constexpr int kD = 6;

// Sends `chunks` as one ImportVersion call and returns its status.
grpc::Status ImportChunks(ServerEnv& env, const std::vector<v1::ImportChunk>& chunks) {
  grpc::ClientContext ctx;
  v1::VersionInfo info;
  auto stub = env.models();
  auto w = stub->ImportVersion(&ctx, &info);
  for (const auto& c : chunks) w->Write(c);
  w->WritesDone();
  return w->Finish();
}

v1::ImportChunk Header(const std::string& name, int64_t version = 0,
                       const std::string& alias = "") {
  v1::ImportChunk c;
  c.mutable_header()->set_model_name(name);
  c.mutable_header()->set_version(version);
  c.mutable_header()->set_alias(alias);
  return c;
}

v1::ImportChunk Data(const std::string& bytes) {
  v1::ImportChunk c;
  c.set_data(bytes);
  return c;
}

TEST(StatusSweepTest, ImportVersionRefusesABadStreamOrHeaderAndStoresNothing) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);
  const std::string good = SerializeModel(TinyModel(kD, 1));
  ASSERT_TRUE(env.ImportBytes("m", good).ok());
  struct Case {
    const char* name;
    std::vector<v1::ImportChunk> chunks;
    C code;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"nothing sent", {}, C::INVALID_ARGUMENT, "no ImportChunk was sent"},
           {"data first", {Data(good)}, C::INVALID_ARGUMENT,
            "the first ImportChunk must carry the header"},
           {"second header", {Header("m"), Data(good), Header("m")}, C::INVALID_ARGUMENT,
            "only the first ImportChunk may carry a header"},
           {"header only", {Header("m")}, C::INVALID_ARGUMENT, "the header came with no data"},
           {"empty data only", {Header("m"), Data("")}, C::INVALID_ARGUMENT,
            "the header came with no data"},
           {"alias latest", {Header("m", 0, "latest"), Data(good)}, C::INVALID_ARGUMENT,
            "'latest' is reserved"},
           {"bad alias", {Header("m", 0, "Bad Alias"), Data(good)}, C::INVALID_ARGUMENT,
            "alias 'Bad Alias' is invalid"},
           {"negative version", {Header("m", -1), Data(good)}, C::INVALID_ARGUMENT, "version"},
           {"bad name", {Header(""), Data(good)}, C::INVALID_ARGUMENT, "it is empty"},
           {"version taken", {Header("m", 1), Data(good)}, C::ALREADY_EXISTS,
            "model m already has version 1"}}) {
    SCOPED_TRACE(c.name);
    grpc::Status s = ImportChunks(env, c.chunks);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
  grpc::ClientContext ctx;
  v1::GetModelRequest req;
  req.mutable_model()->set_name("m");
  v1::ModelInfo info;
  ASSERT_TRUE(env.models()->GetModel(&ctx, req, &info).ok());
  EXPECT_EQ(info.versions_size(), 1) << "no refused import made a version";
  EXPECT_TRUE(info.aliases().empty());
  EXPECT_FALSE(std::filesystem::exists(env.model_dir() + "/m/2"));
}

TEST(StatusSweepTest, ScoreWithoutABatchOrWithAResponseOverTheMessageLimit) {
  ServerOptions o;
  o.poll_seconds = 0;
  o.max_message_bytes = 20000;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", TinyModel(kD, 1)).ok());
  auto scoring = env.scoring();
  auto unary = [&](const v1::ScoreRequest& req) {
    grpc::ClientContext ctx;
    v1::ScoreResponse resp;
    return scoring->Score(&ctx, req, &resp);
  };
  auto stream = [&](const v1::ScoreRequest& req) {
    grpc::ClientContext ctx;
    auto s = scoring->StreamScore(&ctx);
    s->Write(req);
    s->WritesDone();
    v1::ScoreResponse resp;
    while (s->Read(&resp)) {
    }
    return s->Finish();
  };
  v1::ScoreRequest no_batch = MakeRequest("m", 4, kD);
  no_batch.clear_batch();
  // 450 records of 6 features: a 10.8 kB request; with explain the response
  // would need about 450 * (5 * 5 + 4 * 6) bytes, over 20,000.
  v1::ScoreRequest big = MakeRequest("m", 450, kD);
  big.set_explain(true);
  for (const auto& call : {std::function<grpc::Status(const v1::ScoreRequest&)>(unary),
                           std::function<grpc::Status(const v1::ScoreRequest&)>(stream)}) {
    grpc::Status s = call(no_batch);
    EXPECT_EQ(s.error_code(), C::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("batch.num_features is 0"));
    s = call(big);
    EXPECT_EQ(s.error_code(), C::RESOURCE_EXHAUSTED);
    EXPECT_THAT(s.error_message(), HasSubstr("over the limit of 20000 (--max_message_bytes)"));
  }
  big.set_explain(false);
  EXPECT_TRUE(unary(big).ok()) << "the same records without explain fit";
}

// Every service's calls answer UNAVAILABLE while the server drains (an
// upload in progress holds the drain open, and completes) and after it has
// stopped.
TEST(StatusSweepTest, EveryRpcIsUnavailableWhileAndAfterTheServerDrains) {
  ServerOptions o;
  o.poll_seconds = 0;
  o.drain_seconds = 5;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", TinyModel(kD, 1)).ok());
  auto channel = env.channel();
  auto models = v1::Models::NewStub(channel);
  auto scoring = v1::Scoring::NewStub(channel);
  auto training = v1::Training::NewStub(channel);
  auto feedback = v1::Feedback::NewStub(channel);
  auto health = grpc::health::v1::Health::NewStub(channel);
  auto deadline = [](grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  };
  // The calls, each on its own context.
  std::vector<std::pair<const char*, std::function<grpc::Status()>>> calls = {
      {"Score", [&] {
         grpc::ClientContext ctx;
         deadline(&ctx);
         v1::ScoreResponse r;
         return scoring->Score(&ctx, MakeRequest("m", 2, kD), &r);
       }},
      {"StreamScore", [&] {
         grpc::ClientContext ctx;
         deadline(&ctx);
         auto s = scoring->StreamScore(&ctx);
         s->Write(MakeRequest("m", 2, kD));
         s->WritesDone();
         v1::ScoreResponse r;
         while (s->Read(&r)) {
         }
         return s->Finish();
       }},
      {"ListModels", [&] {
         grpc::ClientContext ctx;
         deadline(&ctx);
         v1::ListModelsResponse r;
         return models->ListModels(&ctx, v1::ListModelsRequest(), &r);
       }},
      {"SetAlias", [&] {
         grpc::ClientContext ctx;
         deadline(&ctx);
         v1::SetAliasRequest req;
         req.set_model_name("m");
         req.set_alias("production");
         req.set_version(1);
         v1::ModelInfo r;
         return models->SetAlias(&ctx, req, &r);
       }},
      {"ListJobs", [&] {
         grpc::ClientContext ctx;
         deadline(&ctx);
         v1::ListJobsResponse r;
         return training->ListJobs(&ctx, v1::ListJobsRequest(), &r);
       }},
      {"AddFeedback", [&] {
         grpc::ClientContext ctx;
         deadline(&ctx);
         v1::AddFeedbackRequest req;
         req.set_model_name("m");
         req.set_num_features(kD);
         req.mutable_values()->Resize(kD, 0.5f);
         req.add_labels(v1::FEEDBACK_LABEL_ANOMALY);
         v1::AddFeedbackResponse r;
         return feedback->AddFeedback(&ctx, req, &r);
       }},
      {"SubmitJob", [&] {
         grpc::ClientContext ctx;
         deadline(&ctx);
         v1::Job job;
         auto w = training->SubmitJob(&ctx, &job);
         v1::SubmitJobRequest head;
         head.mutable_spec()->set_model_name("t");
         head.mutable_spec()->set_data_path("x.csv");
         w->Write(head);
         w->WritesDone();
         return w->Finish();
       }},
      {"Health", [&] {
         grpc::ClientContext ctx;
         deadline(&ctx);
         grpc::health::v1::HealthCheckResponse r;
         return health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &r);
       }},
  };
  // An import that has sent its file but not closed: the drain waits for it.
  grpc::ClientContext upload_ctx;
  v1::VersionInfo imported;
  auto upload = models->ImportVersion(&upload_ctx, &imported);
  ASSERT_TRUE(upload->Write(Header("m")));
  ASSERT_TRUE(upload->Write(Data(SerializeModel(TinyModel(kD, 2)))));
  std::thread drain([&] { env.server().Shutdown(); });
  // The drain has begun once the first call is refused.
  WaitUntil([&] { return calls.front().second().error_code() == C::UNAVAILABLE; }, 30);
  for (const auto& [name, call] : calls) {
    grpc::Status s = call();
    EXPECT_EQ(s.error_code(), C::UNAVAILABLE) << name << " while draining: " << s.error_message();
  }
  upload->WritesDone();
  const grpc::Status upload_status = upload->Finish();
  EXPECT_TRUE(upload_status.ok()) << "a call in flight when the drain began completes: "
                                  << upload_status.error_message();
  EXPECT_EQ(imported.version(), 2);
  drain.join();
  for (const auto& [name, call] : calls) {
    grpc::Status s = call();
    EXPECT_EQ(s.error_code(), C::UNAVAILABLE) << name << " after the drain: " << s.error_message();
  }
}

}  // namespace
}  // namespace anorand::test_support
